"""Recorder drivers: one plugin per protocol family, loaded from the ``dockd.recorders`` entry points.

Callers use :func:`dockd.devices.recorders.registry.get_driver` and the types of
:mod:`dockd.devices.recorders.base`; the protocol modules are pure (bytes in, values out) and the
transport modules are the only ones touching pyserial, pyusb or ioctl.
"""

from dockd.devices.recorders.base import (
    Capabilities,
    ClockReading,
    ClockSetFailed,
    ClockSetResult,
    LoginFailed,
    NoSdCard,
    ProtocolError,
    RecorderDriver,
    RecorderError,
    RecorderGone,
    RecorderIdentity,
    RecorderSession,
    RecorderTimeout,
    StorageInfo,
    SwitchOutcome,
    SwitchRefused,
    TransportSpec,
)

__all__ = [
    "Capabilities",
    "ClockReading",
    "ClockSetFailed",
    "ClockSetResult",
    "LoginFailed",
    "NoSdCard",
    "ProtocolError",
    "RecorderDriver",
    "RecorderError",
    "RecorderGone",
    "RecorderIdentity",
    "RecorderSession",
    "RecorderTimeout",
    "StorageInfo",
    "SwitchOutcome",
    "SwitchRefused",
    "TransportSpec",
]
