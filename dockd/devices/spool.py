"""A device source fed from a spool directory: events as JSON files (the simulator's udev).

A simulated recorder posts what udev would report (``SpoolWriter.post``); the daemon
watches the directory (watchdog, inotify: no polling) and feeds each event to the dock
exactly like the udev source does. Files are processed in name order and removed;
a malformed one is moved to ``rejected/`` with an error in the log.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from dockd.devices.events import DeviceEvent, EventError, event_from_json_dict

log = logging.getLogger(__name__)
_counter = itertools.count()


class SpoolWriter:
    """Posts device events into a spool directory (atomically: write, then rename)."""

    def __init__(self, spool_dir: Path) -> None:
        self.spool_dir = spool_dir
        spool_dir.mkdir(parents=True, exist_ok=True)

    def post(self, event: DeviceEvent) -> Path:
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(_counter):06d}.json"
        tmp = self.spool_dir / f".{name}.tmp"
        tmp.write_text(json.dumps(event.to_json_dict()))
        final = self.spool_dir / name
        os.rename(tmp, final)
        return final


class SpoolSource:
    """Calls ``on_event`` for each event file that appears in ``spool_dir``."""

    def __init__(self, spool_dir: Path, on_event: Callable[[DeviceEvent], None]) -> None:
        self.spool_dir = spool_dir
        self.on_event = on_event
        self._lock = threading.Lock()
        self._observer: Any = None

    def start(self) -> None:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        handler = _Handler(self.drain)
        self._observer = Observer()
        self._observer.schedule(handler, str(self.spool_dir), recursive=False)
        self._observer.start()
        self.drain()  # events posted before we started watching

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    def drain(self) -> None:
        """Process every pending event file, oldest name first."""
        with self._lock:
            for path in sorted(self.spool_dir.glob("[0-9]*.json")):
                self._process(path)

    def _process(self, path: Path) -> None:
        try:
            data = json.loads(path.read_bytes())
            event = event_from_json_dict(data)
        except FileNotFoundError:
            return
        except (ValueError, EventError, UnicodeDecodeError) as exc:
            rejected = self.spool_dir / "rejected"
            rejected.mkdir(exist_ok=True)
            os.replace(path, rejected / path.name)
            log.error("malformed device event rejected", extra={"file": path.name, "error": str(exc)})
            return
        path.unlink(missing_ok=True)
        try:
            self.on_event(event)
        except Exception:
            log.exception("device event could not be handled", extra={"file": path.name})


class _Handler(FileSystemEventHandler):
    def __init__(self, drain: Callable[[], None]) -> None:
        self.drain = drain

    def on_created(self, event: FileSystemEvent) -> None:
        self._maybe(event)

    def on_moved(self, event: FileSystemEvent) -> None:
        self._maybe(event)

    def _maybe(self, event: FileSystemEvent) -> None:
        name = os.fsdecode(getattr(event, "dest_path", "") or event.src_path)
        if name.endswith(".json") and not os.path.basename(name).startswith("."):
            self.drain()
