"""Key safety (issue 14.7): a store with checkpoints never silently gets a new key; the
only way to a new key is ``dockd key rotate``, recorded as a signed ``key.rotated``."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dockd.store.keys import Signer, rotation_message, verify_signature
from tests.conftest import write_tree
from tests.custody_support import RawEvent

Cli = Callable[..., subprocess.CompletedProcess[str]]


def _store_with_checkpoints(cli: Cli, tmp_path: Path) -> Path:
    store = tmp_path / "store"
    src = write_tree(tmp_path / "src", {"DCIM/A.MP4": b"a" * 3000, "DCIM/B.MP4": b"b" * 3000})
    done = cli(["ingest", src, "--recorder", "REC-1", "--store", store])
    assert done.returncode == 0, done.stderr
    return store


def _config(tmp_path: Path, store: Path, key: Path) -> Path:
    path = tmp_path / "dockd.toml"
    path.write_text(f'[dock]\nid = "dock-test"\nstore_dir = "{store}"\nsigning_key = "{key}"\n')
    return path


def _log(cli: Cli, *args: object) -> list[dict[str, object]]:
    out = cli(["log", *args, "--json"])
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout))


def test_key_show_never_creates_a_key(dockd_cli: Cli, tmp_path: Path) -> None:
    store = tmp_path / "nothing"
    done = dockd_cli(["key", "show", "--store", store])
    assert done.returncode == 78
    assert done.stderr.strip().startswith("dockd: error: no signing key at")
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (store / "keys").exists()


def test_rotate_with_the_old_key_in_place(dockd_cli: Cli, tmp_path: Path) -> None:
    store = _store_with_checkpoints(dockd_cli, tmp_path)
    key = store / "keys" / "custody.ed25519"
    before = json.loads(dockd_cli(["key", "show", "--store", store, "--json"]).stdout)
    done = dockd_cli(["key", "rotate", "--store", store, "--json"])
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["old_public_key"] == before["public_key"] and info["old_key_signed"] is True
    assert Path(info["retired_key_file"]).is_file() and key.is_file()
    after = json.loads(dockd_cli(["key", "show", "--store", store, "--json"]).stdout)
    assert after["public_key"] == info["new_public_key"] != before["public_key"]
    rotated = [r for r in _log(dockd_cli, "--store", store) if r["type"] == "key.rotated"]
    assert len(rotated) == 1 and rotated[0]["seq"] == info["seq"]
    payload = rotated[0]["payload"]
    assert isinstance(payload, dict)
    message = rotation_message(str(payload["dock"]), before["public_key"], after["public_key"])
    assert verify_signature(before["public_key"], message, payload["old_key_signature"])
    # the store works on with the new key, and verify follows the rotation
    src2 = write_tree(tmp_path / "src2", {"C.MP4": b"c" * 100})
    assert dockd_cli(["ingest", src2, "--recorder", "REC-1", "--store", store]).returncode == 0
    ver = dockd_cli(["verify", "--store", store, "--json"])
    assert ver.returncode == 0, ver.stdout
    assert json.loads(ver.stdout)["notes"] == []


def test_changed_signing_key_setting_refuses_to_start_until_rotated(dockd_cli: Cli,
                                                                    tmp_path: Path) -> None:
    store = _store_with_checkpoints(dockd_cli, tmp_path)
    old = store / "keys" / "custody.ed25519"
    config = _config(tmp_path, store, tmp_path / "newkeys" / "k.ed25519")
    src = write_tree(tmp_path / "src3", {"D.MP4": b"d" * 10})
    refused = dockd_cli(["ingest", src, "--recorder", "REC-1", "--config", config])
    assert refused.returncode == 78
    assert "dockd key rotate" in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert not (tmp_path / "newkeys" / "k.ed25519").exists()
    wrong = tmp_path / "wrong.pem"
    wrong.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    bad = dockd_cli(["key", "rotate", "--old-key", wrong, "--config", config])
    assert bad.returncode == 78 and "not the store's key" in bad.stderr
    done = dockd_cli(["key", "rotate", "--old-key", old, "--config", config])
    assert done.returncode == 0, done.stderr
    assert dockd_cli(["ingest", src, "--recorder", "REC-1", "--config", config]).returncode == 0
    assert dockd_cli(["verify", "--config", config]).returncode == 0


def test_a_lost_key_is_rotated_only_when_said_so_and_verify_notes_it(dockd_cli: Cli,
                                                                     tmp_path: Path) -> None:
    store = _store_with_checkpoints(dockd_cli, tmp_path)
    key = store / "keys" / "custody.ed25519"
    key.unlink()
    assert dockd_cli(["verify", "--store", store]).returncode == 78
    plain = dockd_cli(["key", "rotate", "--store", store])
    assert plain.returncode == 2 and "--old-key-lost" in plain.stderr
    done = dockd_cli(["key", "rotate", "--old-key-lost", "--store", store, "--json"])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["old_key_signed"] is False
    ver = dockd_cli(["verify", "--store", store, "--json"])
    assert ver.returncode == 0, ver.stdout
    notes = json.loads(ver.stdout)["notes"]
    assert len(notes) == 1 and "did not vouch" in notes[0]


def test_a_forged_rotation_is_a_key_rotation_problem(open_test_store: Callable[..., object],
                                                     tmp_path: Path) -> None:
    # An attacker without the key appends a rotation to a key of their own: the old key's
    # signature cannot be made, and their later checkpoints do not match the key in force.

    from dockd.store.evidence import EvidenceStore
    from dockd.store.ingest import Ingestor
    from dockd.store.verify import verify_store

    store = open_test_store()
    assert isinstance(store, EvidenceStore)
    src = write_tree(tmp_path / "s", {"A.MP4": b"a"})
    Ingestor(store, "test").ingest(src, "REC-1")
    mine = Signer(Ed25519PrivateKey.generate())
    old = store.custody.signer.public_key_hex
    message = rotation_message("dock-test", old, mine.public_key_hex)
    store.custody.append(RawEvent("key.rotated", "store", {
        "dock": "dock-test", "old_public_key": old, "new_public_key": mine.public_key_hex,
        "old_key_signature": mine.sign(message), "new_key_signature": mine.sign(message)}), "x",
        checkpoint=True)  # the dock checkpoints the tail the attacker extended
    problems = verify_store(store, "test").problems
    assert [(p.kind, p.detail) for p in problems if p.kind == "key_rotation"] == [
        ("key_rotation", "the old key's signature does not verify")]
    # checkpoints after the forged record are by the dock's key, not the forged "key in force"
    assert any(p.kind == "checkpoint" and "key in force" in p.detail for p in problems)
