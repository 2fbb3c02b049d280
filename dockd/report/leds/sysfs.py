"""Linux LED class devices (``/sys/class/leds/<name>/``), per Documentation/leds/.

Files used, with the values the kernel accepts:

* ``max_brightness`` (read): the "on" level written to ``brightness``.
* ``brightness`` (write 0..max_brightness): 0 switches the LED off *and* removes any
  trigger; non-zero while the timer trigger runs sets the level it blinks at.
* ``trigger`` (write a trigger name): ``timer`` blinks in the kernel and creates
  ``delay_on``/``delay_off`` (milliseconds); ``none`` stops it. A kernel without
  ledtrig-timer answers EINVAL; the driver then shows the colour steady and reports it.
* multicolour LEDs: ``multi_index`` (read, e.g. ``red green blue``) names the channels of
  ``multi_intensity`` (write one integer per channel, all of them at once; each channel's
  light = brightness * intensity / max_brightness). ``multi_max_intensity`` (newer kernels)
  bounds each channel; without it max_brightness does.

Each write opens the attribute, writes one value and closes it, as ``echo > file`` does:
sysfs runs the store function on every write, and a fresh open notices an LED that was
hot-unplugged (ENOENT/ENODEV) instead of writing into a stale descriptor.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from dockd.config.leds import LedTarget, SysfsLedSpec
from dockd.i18n import _
from dockd.report.leds.driver import FaultCallback, FaultLatch
from dockd.report.leds.pattern import Colour, LedPattern, Mode

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path("/sys/class/leds")
# Colour -> light per channel (0..1). Amber is #FFBF00 where only red/green/blue exist.
_CHANNEL_MIX: dict[Colour, dict[str, float]] = {
    Colour.OFF: {},
    Colour.RED: {"red": 1.0},
    Colour.GREEN: {"green": 1.0},
    Colour.AMBER: {"red": 1.0, "green": 0.75},
}
_AMBER_CHANNELS = ("amber", "yellow", "orange")
# O_NONBLOCK and O_NOCTTY: a misconfigured name that resolves to a FIFO or a tty must fail
# at once (ENXIO/EIO) rather than hang the LED worker or become our controlling terminal.
_WRITE_FLAGS = os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK


class LedWriteError(Exception):
    """One attribute could not be read or written; carries an administrator's message."""


class SysfsLedDriver:
    """Drives LED class devices under an injectable root (tests use a tmp directory)."""

    name = "sysfs"

    def __init__(self, leds: Iterable[SysfsLedSpec], on_fault: FaultCallback,
                 on_recover: FaultCallback | None = None, root: Path = DEFAULT_ROOT) -> None:
        self.root = root
        self._leds: Mapping[LedTarget, SysfsLedSpec] = {spec.target: spec for spec in leds}
        self._latch = FaultLatch(on_fault, on_recover)
        self._max: dict[str, int] = {}
        self._index: dict[str, tuple[str, ...]] = {}

    def has_target(self, target: LedTarget) -> bool:
        return target in self._leds

    def show(self, target: LedTarget, pattern: LedPattern) -> bool:
        """Write ``pattern`` to ``target``'s LED(s); never raises for a sysfs failure."""
        spec = self._leds.get(target)
        if spec is None:
            self._latch.fault(str(target), f"{_label(target)}: no LED configured in [leds]")
            return False
        try:
            exact = self._show(spec, pattern)
        except LedWriteError as exc:
            # The LED may have been replaced (hot-plug): read its limits afresh next time.
            for name in spec.names:
                self._max.pop(name, None)
                self._index.pop(name, None)
            self._latch.fault(str(target), f"{_label(target)}: {exc}")
            return False
        if exact:
            self._latch.ok(str(target), f"{_label(target)}: LED works again")
        return exact

    def maintain(self) -> None:
        return None

    def close(self) -> None:
        return None

    def failing(self) -> dict[str, str]:
        """Targets whose LED is failing, with the message of the outage."""
        return self._latch.failing()

    # -- helpers -------------------------------------------------------------------------

    def _show(self, spec: SysfsLedSpec, pattern: LedPattern) -> bool:
        if spec.multicolor is not None:
            return self._show_multicolor(spec, spec.multicolor, pattern)
        lit = _lit_leds(spec, pattern.colour)
        exact = True
        # Switch off first so a colour change never shows red and green together by mistake.
        for name in (n for n in spec.names if n not in lit):
            self._apply(spec, name, LedPattern(Colour.OFF, Mode.OFF))
        for name in lit:
            exact = self._apply(spec, name, pattern) and exact
        return exact

    def _show_multicolor(self, spec: SysfsLedSpec, name: str, pattern: LedPattern) -> bool:
        if pattern.mode is Mode.OFF:
            return self._apply(spec, name, pattern)
        channels = self._channels(name)
        limit = self._channel_limits(name, len(channels))
        mix = _channel_mix(pattern.colour, channels)
        values = [round(mix.get(ch, 0.0) * lim) for ch, lim in zip(channels, limit, strict=True)]
        self._write(name, "multi_intensity", " ".join(str(v) for v in values))
        return self._apply(spec, name, pattern)

    def _apply(self, spec: SysfsLedSpec, name: str, pattern: LedPattern) -> bool:
        """Show ``pattern``'s rhythm on one LED device; False when it had to fall back."""
        if pattern.mode is Mode.OFF:
            self._write(name, "brightness", "0")  # also removes any trigger
            return True
        level = str(self._max_brightness(name))
        if pattern.mode is Mode.STEADY:
            self._write(name, "trigger", "none")
            self._write(name, "brightness", level)
            return True
        try:
            self._write(name, "trigger", "timer")
        except LedWriteError as exc:
            if exc.__cause__ is None or getattr(exc.__cause__, "errno", None) != errno.EINVAL:
                raise
            # The kernel has no timer trigger (the refused write left the trigger as it
            # was, i.e. none): a steady colour is better than a dark bay.
            self._write(name, "brightness", level)
            raise LedWriteError(_("{reason}; showing it steady instead of blinking").format(
                reason=exc)) from None
        self._write(name, "delay_on", str(pattern.on_ms))
        self._write(name, "delay_off", str(pattern.off_ms))
        self._write(name, "brightness", level)
        return True

    def _max_brightness(self, name: str) -> int:
        if name not in self._max:
            text = self._read(name, "max_brightness")
            try:
                value = int(text)
            except ValueError:
                raise LedWriteError(_("LED {name}: max_brightness is {text}, not a number").format(
                    name=repr(name), text=repr(text))) from None
            if value <= 0:
                raise LedWriteError(_("LED {name}: max_brightness is {value}; it cannot "
                                      "light").format(name=repr(name), value=value))
            self._max[name] = value
        return self._max[name]

    def _channels(self, name: str) -> tuple[str, ...]:
        if name not in self._index:
            channels = tuple(self._read(name, "multi_index").split())
            if not channels:
                raise LedWriteError(_("LED {name}: multi_index is empty").format(name=repr(name)))
            self._index[name] = channels
        return self._index[name]

    def _channel_limits(self, name: str, count: int) -> list[int]:
        path = self.root / name / "multi_max_intensity"
        if path.exists():
            parts = self._read(name, "multi_max_intensity").split()
            if len(parts) == count and all(p.isdigit() for p in parts):
                return [int(p) for p in parts]
            raise LedWriteError(_("LED {name}: multi_max_intensity {values} does not give "
                                  "{count} numbers").format(
                                      name=repr(name), values=repr(" ".join(parts)),
                                      count=count))
        return [self._max_brightness(name)] * count

    def _read(self, name: str, attr: str) -> str:
        path = self.root / name / attr
        try:
            with open(path, encoding="ascii", errors="replace") as handle:
                return handle.read(4096).strip()
        except OSError as exc:
            raise LedWriteError(_("cannot read {path}: {reason}").format(
                path=path, reason=_describe(exc))) from exc

    def _write(self, name: str, attr: str, value: str) -> None:
        path = self.root / name / attr
        data = (value + "\n").encode("ascii")
        try:
            fd = os.open(path, _WRITE_FLAGS)
            try:
                written = os.write(fd, data)
            finally:
                os.close(fd)
        except OSError as exc:
            raise LedWriteError(_("cannot write {value} to {path}: {reason}").format(
                value=repr(value), path=path, reason=_describe(exc))) from exc
        if written != len(data):
            raise LedWriteError(_("short write of {value} to {path} ({written} of {total} "
                                  "bytes)").format(value=repr(value), path=path,
                                                   written=written, total=len(data)))


def _lit_leds(spec: SysfsLedSpec, colour: Colour) -> tuple[str, ...]:
    if colour is Colour.RED and spec.red:
        return (spec.red,)
    if colour is Colour.GREEN and spec.green:
        return (spec.green,)
    if colour is Colour.AMBER:
        if spec.amber:
            return (spec.amber,)
        return tuple(n for n in (spec.red, spec.green) if n)
    return ()


def _channel_mix(colour: Colour, channels: tuple[str, ...]) -> dict[str, float]:
    if colour is Colour.AMBER:
        for name in _AMBER_CHANNELS:
            if name in channels:
                return {name: 1.0}
    return _CHANNEL_MIX[colour]


def _describe(exc: OSError) -> str:
    code = errno.errorcode.get(exc.errno or 0, "?")
    hint = _HINTS.get(exc.errno or 0, "")
    return f"{exc.strerror or exc} ({code}){hint}"


_HINTS = {
    errno.ENOENT: "; the LED is not there: check the names in [leds] against /sys/class/leds",
    errno.ENODEV: "; the LED device has gone away",
    errno.EINVAL: "; the kernel rejected the value",
    errno.EIO: "; the LED hardware did not respond",
    errno.EACCES: "; dockd may not write LEDs: check the udev rule that grants access",
    errno.EPERM: "; dockd may not write LEDs: check the udev rule that grants access",
}


def _label(target: LedTarget) -> str:
    return "dock LED" if isinstance(target, str) else f"bay {target} LED"
