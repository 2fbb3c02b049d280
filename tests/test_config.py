"""The config package: typed sections, every problem at once, hostile files refused (exit 78)."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockd.config import Config, check_config_file, check_document, load_config, parse_config
from dockd.config.daemon import DaemonSection, installed_drivers
from dockd.config.loading import MAX_CONFIG_BYTES
from dockd.config.reader import TableReader
from dockd.config.root import UNREAD
from dockd.errors import ConfigError
from tests.test_cli_core import Cli

SECTIONS = [f.name for f in dataclasses.fields(Config) if f.name != "source"]


def test_every_table_is_a_typed_section_with_defaults() -> None:
    config = parse_config({})
    assert config.daemon == DaemonSection() and config.archive is None
    assert SECTIONS == ["dock", "ingest", "daemon", "health", "mqtt", "leds", "records", "archive",
                        "ledger", "metrics"]


@pytest.mark.parametrize("name", SECTIONS)
def test_an_absent_or_empty_table_is_parsed_when_first_read_and_has_no_problem(
        name: str) -> None:
    """A table the document lacks (or has empty) is parsed when its section is first read;
    waiting leaves no problem unreported, because an empty table has none."""
    table = TableReader({}, name)
    eager = getattr(importlib.import_module(f"dockd.config.{name}"), f"parse_{name}")(table)
    table.finish()
    assert not table.problems
    for doc in ({}, {name: {}}):
        config = parse_config(doc)
        assert config.__dict__[name] is UNREAD
        assert getattr(config, name) == eager and config.__dict__[name] == eager


def test_a_config_with_only_a_store_imports_no_other_section(tmp_path: Path) -> None:
    """What a reading command (log, catalog) loads: the sections its file fills, not the
    daemon's, LEDs' or ledger's modules; a filled table is still checked at load."""
    path = tmp_path / "dockd.toml"
    path.write_text(f"[dock]\nstore_dir = '{tmp_path}'\n[ingest]\n")
    code = ("import sys\nfrom pathlib import Path\nfrom dockd.config import load_config\n"
            "config = load_config(Path(sys.argv[1]))\n"
            "print(config.dock.store_dir, *sorted(m for m in sys.modules"
            " if m.startswith('dockd.config.')))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == [str(tmp_path), "dockd.config.dock", "dockd.config.loading",
                   "dockd.config.reader", "dockd.config.root"]
    path.write_text("[dock]\nstore_dir = 'relative'\n[daemon]\nstorage_wait_s = -1\n")
    with pytest.raises(ConfigError, match=r"daemon\.storage_wait_s"):
        load_config(path)


def test_a_copied_or_pickled_config_still_reads_its_unread_sections() -> None:
    config = parse_config({"dock": {"id": "dock-7"}})
    for other in (copy.deepcopy(config), pickle.loads(pickle.dumps(config))):
        assert other.__dict__["daemon"] is UNREAD
        assert other == config and other.daemon == DaemonSection() and other.dock.id == "dock-7"


def test_another_store_keeps_unread_sections_unread() -> None:
    config = parse_config({"mqtt": {"broker": "mqtt://broker.example:1883"}})
    moved = config.with_store(Path("/srv/evidence"))
    assert moved.dock.store_dir == Path("/srv/evidence") and moved.__dict__["leds"] is UNREAD
    assert moved.mqtt == config.mqtt and moved.leds == config.leds
    assert moved == dataclasses.replace(config, dock=moved.dock)


def test_every_problem_is_collected_and_the_error_names_the_first() -> None:
    doc = {"dock": {"id": "bad id!"}, "health": {"battery_min_percent": 300},
           "mqtt": {"broker": "http://x"}, "daemon": {"bays": [{"port": "1-1"}]}, "bogus": {}}
    _, problems = check_document(doc)
    keys = [m.split(":")[0] for m in problems.messages]
    assert keys == ["dock.id", "daemon.bays[0].number", "health.battery_min_percent",
                    "mqtt.broker", "bogus"]
    with pytest.raises(ConfigError) as info:
        parse_config(doc)
    assert str(info.value).startswith("dock.id: 'bad id!' is not valid")
    assert "and 4 more: dockd check-config lists them all" in str(info.value)
    assert info.value.problems == problems.messages


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_numbers_are_refused(tmp_path: Path, value: str) -> None:
    path = tmp_path / "dockd.toml"
    path.write_text(f"[health]\nmax_clock_drift_s = {value}\n")
    with pytest.raises(ConfigError, match=r"health.max_clock_drift_s: .* is not a finite number"):
        load_config(path)


def test_unknown_driver_names_the_installed_plugins() -> None:
    model = {"name": "X", "vendor_id": "1234", "product_id": "5678", "driver": "nope",
             "control": "usb"}
    with pytest.raises(ConfigError) as info:
        parse_config({"daemon": {"models": [model]}})
    assert "daemon.models[0].driver: 'nope' is not an installed recorder driver" in str(info.value)
    assert set(installed_drivers()) >= {"amba", "gat947", "msc"}
    for name in installed_drivers():
        assert name in str(info.value)


def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "dockd.toml"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []
    reader = threading.Thread(target=lambda: _capture(outcome, fifo), daemon=True)
    reader.start()
    reader.join(5)
    assert not reader.is_alive(), "reading a FIFO config hung"
    assert isinstance(outcome[0], ConfigError) and "is not a regular file" in str(outcome[0])


def _capture(outcome: list[BaseException], path: Path) -> None:
    try:
        load_config(path)
    except BaseException as exc:  # the test inspects whatever came out
        outcome.append(exc)


@pytest.mark.parametrize("path", [Path("/dev/zero"), Path("/")])
def test_devices_and_directories_are_refused(path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a regular file"):
        load_config(path)


def test_a_file_over_one_mib_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dockd.toml"
    path.write_text("# padding\n" * (MAX_CONFIG_BYTES // 10 + 1))
    with pytest.raises(ConfigError, match="at most 1048576 bytes"):
        load_config(path)


@pytest.mark.parametrize("text", ["a = " + "[" * 5000 + "]" * 5000 + "\n",
                                  "x = " + "{ a = " * 40 + "1" + " }" * 40 + "\n",
                                  ".".join(f"k{i}" for i in range(40)) + " = 1\n"])
def test_deep_nesting_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "dockd.toml"
    path.write_text(text)
    started = time.monotonic()
    with pytest.raises(ConfigError, match="nests tables or arrays too deeply"):
        load_config(path)
    assert time.monotonic() - started < 10


def test_cli_exits_78_on_hostile_config_files(dockd_cli: Cli, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    nan = tmp_path / "nan.toml"
    nan.write_text("[daemon]\nstorage_wait_s = nan\n")
    for path, words in ((fifo, "not a regular file"), (Path("/dev/zero"), "not a regular file"),
                        (nan, "daemon.storage_wait_s")):
        done = dockd_cli(["verify", "--config", path], timeout=20)
        assert done.returncode == 78, done.stderr
        assert words in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_check_config_file_keeps_the_source(tmp_path: Path) -> None:
    path = tmp_path / "dockd.toml"
    path.write_text("[dock]\nid = 'dock-9'\n[ingest]\nchunk_bytes = 1\n")
    config, problems = check_config_file(path)
    assert config.source == path and config.dock.id == "dock-9"
    assert problems.messages == ("ingest.chunk_bytes: 1 is below the minimum 65536",)


_scalar = st.one_of(st.integers(min_value=-2**63, max_value=2**63 - 1), st.text(max_size=12),
                    st.booleans(), st.floats(), st.none())
_value = st.recursive(_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)
def _field_names() -> list[str]:
    from dockd.config.archive import ArchiveSection
    from dockd.config.ledger import LedgerSection, WebSection

    optional = {"archive", "ledger"}  # None unless the file has the table
    types = [type(getattr(Config(), s)) for s in SECTIONS if s not in optional] + [
        ArchiveSection, LedgerSection, WebSection]
    names = {f.name for t in types for f in dataclasses.fields(t)}
    return sorted(names | {"bays", "models", "bay", "homeassistant", "bogus"})


@settings(max_examples=300, deadline=None)
@given(doc=st.dictionaries(st.sampled_from([*SECTIONS, "bogus"]),
                           st.one_of(st.dictionaries(st.sampled_from(_field_names()), _value,
                                                     max_size=6), _value), max_size=4))
def test_random_documents_only_raise_config_error_with_every_problem(doc: dict[str, object]) -> None:
    config, problems = check_document(doc)  # never raises: problems are collected
    assert isinstance(config, Config)
    try:
        parse_config(doc)
    except ConfigError as exc:
        assert exc.problems == problems.messages and all(exc.problems)
    else:
        assert not problems
