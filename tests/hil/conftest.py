"""One QEMU guest for every HIL test that boots one (tests/hil/test_hil_*.py).

A boot, udevd and dockd's start cost 30-60 s of emulation on this 2-core machine, and the
HIL tests are the longest chain of a parallel run: they share one guest instead of booting
one per module. The guest's tests run in the order that guest can serve them: the smoke test
first (it needs udevd, not dockd), then the `dockd run` scenarios and the storage-identity
scenarios (each module sets the config it needs: Dock.use_config), and last the scenario
that cuts the guest's power (marked ``hil_last``). Each test asserts on its own recorders,
sessions and faults, never on what an earlier test left in the store.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest

from .dock import TIMINGS, Dock, count_cpu, prepare_dock, prepare_guest
from .harness import Guest


@pytest.fixture(scope="package")
def hil_guest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dock]:
    """A booted guest with udevd and dockd's udev rules, its store disk attached (an ext4
    image on the host, so it survives a power cut); dockd not yet started. Powered off
    cleanly (and asserted off) after the last test that uses it."""
    work = tmp_path_factory.mktemp("hil-dock")
    store_disk = work / "store.img"
    with store_disk.open("wb") as f:
        f.truncate(1 << 30)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "DOCKSTORE", str(store_disk)], check=True)
    started = time.monotonic()
    d = Dock(Guest.boot(work / "guest", disks=[store_disk]), work, store_disk)
    try:
        TIMINGS["boot_s"] = d.guest.boot_seconds
        TIMINGS["udevd_start_s"] = prepare_guest(d)
        TIMINGS["guest_ready_s"] = time.monotonic() - started
        yield d
    except BaseException:
        print(d.log_tail())
        d.guest.power_cut()
        raise
    if d.guest.running:
        count_cpu(d.guest)
        d.guest.shutdown()
    assert not d.guest.running
    print("HIL timings:", json.dumps({k: round(v, 2) for k, v in TIMINGS.items()}))


@pytest.fixture(scope="package")
def hil_dock(hil_guest: Dock) -> Dock:
    """The shared guest running `dockd run` with the store disk mounted at /var/lib/dockd."""
    prepare_dock(hil_guest)
    TIMINGS["dockd_start_s"] = hil_guest.start_daemon()
    return hil_guest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The shared guest's tests in the order it can serve them (module docstring), in the
    places they were collected in: before dockd starts, with dockd, after the power cut."""

    def uses(item: pytest.Item, fixture: str) -> bool:
        return fixture in getattr(item, "fixturenames", ())  # only test functions have them

    def turn(item: pytest.Item) -> int:
        if item.get_closest_marker("hil_last") is not None:
            return 2
        return 1 if uses(item, "hil_dock") else 0

    places = [i for i, item in enumerate(items) if uses(item, "hil_guest")]
    for place, item in zip(places, sorted((items[i] for i in places), key=turn), strict=True):
        items[place] = item
