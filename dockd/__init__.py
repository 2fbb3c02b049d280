"""dockd: the docking-station daemon for body-worn recorders."""

__version__ = "0.1.0"
