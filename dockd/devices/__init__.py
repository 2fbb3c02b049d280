"""The edge to the hardware: udev source, mounts and recorder drivers.

Only this package (and ``dockd.sim``) may import pyudev, pyserial or pyusb; the core talks to
recorders through :mod:`dockd.devices.recorders.base`.
"""
