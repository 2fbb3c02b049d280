"""The evidence-core CLI contract, through the real ``dockd`` process: ingest, catalog, log,
verify, key show; exit codes 0 / 1 / 2 / 3 / 66 / 73 / 78."""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from dockd.cli import COMMANDS, build_parser

Cli = Callable[..., subprocess.CompletedProcess[str]]
Tree = Callable[[Path, Mapping[str | bytes, bytes]], Path]
NOBODY = 65534


@pytest.fixture
def src(tmp_path: Path, make_tree: Tree) -> Path:
    return make_tree(tmp_path / "src", {"DCIM/A.MP4": os.urandom(5000), "DCIM/B.MP4": b"b",
                                        b"DCIM/\xff\xfe.MP4": b"raw name"})


def test_ingest_catalog_log_verify_key(dockd_cli: Cli, src: Path, store_dir: Path) -> None:
    done = dockd_cli(["ingest", src, "--recorder", "REC-1", "--store", store_dir, "--json"])
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["result"], summary["stored"], summary["failed"]) == ("completed", 3, 0)
    again = dockd_cli(["ingest", src, "--recorder", "REC-1", "--store", store_dir])
    assert again.returncode == 0 and "already stored 3" in again.stdout
    cat = dockd_cli(["catalog", "--store", store_dir, "--json"])
    assert cat.returncode == 0
    items = json.loads(cat.stdout)
    assert len(items) == 3
    for item in items:
        assert {"sha256", "size", "recorder", "source_path", "path", "ingested_at"} <= set(item)
        assert (store_dir / item["path"]).is_file() and item["recorder"] == "REC-1"
    assert {i["source_path"] for i in items} == {"DCIM/A.MP4", "DCIM/B.MP4", "DCIM/\\xff\\xfe.MP4"}
    assert [i["source_path_b64"] for i in items if "source_path_b64" in i] == [
        base64.b64encode(b"DCIM/\xff\xfe.MP4").decode()]
    log = dockd_cli(["log", "--store", store_dir, "--json"])
    types = [r["type"] for r in json.loads(log.stdout)]
    assert types[:1] == ["session.started"] and types.count("file.ingested") == 3
    assert types.count("session.completed") == 2
    text = dockd_cli(["log", "--store", store_dir])
    assert text.returncode == 0 and "session.completed" in text.stdout
    ver = dockd_cli(["verify", "--store", store_dir, "--json"])
    assert ver.returncode == 0, ver.stdout + ver.stderr
    assert json.loads(ver.stdout)["ok"] is True
    last = json.loads(dockd_cli(["log", "--store", store_dir, "--json"]).stdout)[-1]
    assert last["type"] == "verify.completed"
    key = dockd_cli(["key", "show", "--store", store_dir, "--json"])
    assert key.returncode == 0
    info = json.loads(key.stdout)
    assert len(info["public_key"]) == 64 and info["algorithm"] == "ed25519"


def test_verify_names_missing_extra_altered_and_exits_1(dockd_cli: Cli, src: Path,
                                                        store_dir: Path) -> None:
    assert dockd_cli(["ingest", src, "--recorder", "REC-1", "--store", store_dir]).returncode == 0
    objects = sorted(p for p in (store_dir / "objects").rglob("*") if p.is_file())
    objects[0].unlink()
    objects[1].chmod(0o640)
    objects[1].write_bytes(b"altered")
    extra = store_dir / "objects/sha256/00/00" / ("00" * 32)
    extra.parent.mkdir(parents=True)
    extra.write_bytes(b"planted")
    ver = dockd_cli(["verify", "--store", store_dir, "--json"])
    assert ver.returncode == 1
    kinds = sorted(p["kind"] for p in json.loads(ver.stdout)["problems"])
    assert kinds == ["altered", "extra", "missing", "session_link"]
    text = dockd_cli(["verify", "--store", store_dir])
    assert text.returncode == 1
    for word in ("missing:", "extra:", "altered:"):
        assert word in text.stdout
    log = json.loads(dockd_cli(["log", "--store", store_dir, "--json", "--type",
                                "verify.failed"]).stdout)
    assert len(log) == 2 and log[0]["payload"]["problem_count"] == 4


def test_verify_log_truncated_through_the_cli(dockd_cli: Cli, src: Path, store_dir: Path) -> None:
    import sqlite3

    assert dockd_cli(["ingest", src, "--recorder", "REC-1", "--store", store_dir]).returncode == 0
    conn = sqlite3.connect(store_dir / "catalog.sqlite", isolation_level=None)
    conn.executescript("DROP TRIGGER custody_no_delete;"
                       "DELETE FROM custody WHERE seq = (SELECT MAX(seq) FROM custody);")
    conn.close()
    ver = dockd_cli(["verify", "--store", store_dir])
    assert ver.returncode == 1 and "log_truncated" in ver.stdout


def test_verify_of_no_store_is_a_usage_error_and_creates_nothing(dockd_cli: Cli,
                                                                 tmp_path: Path) -> None:
    for cmd in ("verify", "catalog", "log"):
        done = dockd_cli([cmd, "--store", tmp_path / "nowhere"])
        assert done.returncode == 2, (cmd, done.stderr)
        assert "no evidence store" in done.stderr
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("serial", ["a/b", "../x", "rec\n1", "rec\x1b", "", "-rec", "x" * 65])
def test_bad_serial_exits_2_and_touches_nothing(dockd_cli: Cli, src: Path, store_dir: Path,
                                                serial: str) -> None:
    done = dockd_cli(["ingest", src, f"--recorder={serial}", "--store", store_dir])
    assert done.returncode == 2
    assert "serial" in done.stderr and not store_dir.exists()


def _commands_of(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_a_command_alone_parses_and_helps_as_in_the_full_parser() -> None:
    """A run of one command builds a parser with that command's module alone: it must be
    the same command, with the same help, as in the full parser (a wrong name in the map
    would register another command, or none)."""
    full = _commands_of(build_parser())
    assert list(full) == list(COMMANDS)
    for name in COMMANDS:
        alone = _commands_of(build_parser(only=name))
        assert list(alone) == [name]
        assert alone[name].format_help() == full[name].format_help()


def test_usage_errors_exit_2(dockd_cli: Cli, src: Path, store_dir: Path) -> None:
    assert dockd_cli(["ingest", src]).returncode == 2  # no --recorder
    assert dockd_cli(["frobnicate"]).returncode == 2
    done = dockd_cli(["catalog", "--store", store_dir, "--since", "yesterday"])
    assert done.returncode == 2


@pytest.mark.parametrize("text,word", [
    ("[dock]\nstore_dirr = '/x'\n", "dock.store_dirr: unknown key"),
    ("[ingest]\nchunk_bytes = 'big'\n", "ingest.chunk_bytes: expected an integer"),
    ("[ingest]\nverify_after_copy = 'sometimes'\n", "ingest.verify_after_copy"),
    ("[ingest]\nreadback_hash = 'md5'\n", "ingest.readback_hash"),
    ("[ingest]\nhashes = ['md5']\n", "ingest.hashes"),
    ("[ingest]\nmhl = 1\n", "ingest.mhl"),
    ("[bogus]\n", "bogus: unknown key"),
    ("not toml [", "not valid TOML"),
])
def test_config_errors_exit_78_via_option_and_environment(dockd_cli: Cli, src: Path,
                                                          tmp_path: Path, text: str,
                                                          word: str) -> None:
    config = tmp_path / "dockd.toml"
    config.write_text(text)
    for args, env in (
        (["ingest", src, "--recorder", "R1", "--config", config], {}),
        (["verify", "--config", config], {}),
        (["ingest", src, "--recorder", "R1"], {"DOCKD_CONFIG": str(config)}),
        (["catalog"], {"DOCKD_CONFIG": str(config)}),
    ):
        done = dockd_cli(args, env=env)
        assert done.returncode == 78, (args, done.stderr)
        assert word in done.stderr


def test_config_file_drives_the_store(dockd_cli: Cli, src: Path, tmp_path: Path) -> None:
    store = tmp_path / "cfg-store"
    config = tmp_path / "dockd.toml"
    config.write_text(f"[dock]\nid = 'dock-7'\nstore_dir = '{store}'\n"
                      "[ingest]\nhashes = ['sha256', 'sm3']\nverify_after_copy = 'none'\n")
    done = dockd_cli(["ingest", src, "--recorder", "R1"], env={"DOCKD_CONFIG": str(config)})
    assert done.returncode == 0, done.stderr
    items = json.loads(dockd_cli(["catalog", "--config", config, "--json"]).stdout)
    assert len(items) == 3 and all(i["sm3"] for i in items)
    assert json.loads(dockd_cli(["log", "--config", config, "--json"]).stdout)[0]["dock"] == "dock-7"


def test_missing_source_exits_66(dockd_cli: Cli, tmp_path: Path, store_dir: Path) -> None:
    done = dockd_cli(["ingest", tmp_path / "no-such-volume", "--recorder", "R1",
                      "--store", store_dir])
    assert done.returncode == 66 and "does not exist" in done.stderr
    afile = tmp_path / "afile"
    afile.write_bytes(b"")
    done = dockd_cli(["ingest", afile, "--recorder", "R1", "--store", store_dir])
    assert done.returncode == 66 and "not a directory" in done.stderr


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A directory an unprivileged user can reach (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="dockd-unpriv-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_unreadable_source_and_file_as_unprivileged_user(dockd_cli: Cli, world_dir: Path,
                                                         make_tree: Tree) -> None:
    src = make_tree(world_dir / "src", {"ok.MP4": b"ok", "secret.MP4": b"no", "sub/x.MP4": b"x"})
    store = world_dir / "store"
    store.mkdir()
    os.chown(store, NOBODY, NOBODY)
    for p in (src, src / "ok.MP4", src / "sub", src / "sub/x.MP4"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    (src / "secret.MP4").chmod(0o000)
    (src / "sub").chmod(0o000)
    done = dockd_cli(["ingest", src, "--recorder", "R1", "--store", store], user=NOBODY)
    assert done.returncode == 3, done.stderr
    assert "secret.MP4 (read_error" in done.stderr and "sub (unreadable" in done.stderr
    items = json.loads(dockd_cli(["catalog", "--store", store, "--json"]).stdout)
    assert [i["source_path"] for i in items] == ["ok.MP4"]
    src.chmod(0o000)
    done = dockd_cli(["ingest", src, "--recorder", "R1", "--store", store], user=NOBODY)
    assert done.returncode == 66 and "cannot be read" in done.stderr


def test_fifo_does_not_block_the_cli(dockd_cli: Cli, src: Path, store_dir: Path) -> None:
    os.mkfifo(src / "DCIM" / "C.MP4")
    done = dockd_cli(["ingest", src, "--recorder", "R1", "--store", store_dir], timeout=30)
    assert done.returncode == 0
    assert "skipped: DCIM/C.MP4 (fifo)" in done.stderr
