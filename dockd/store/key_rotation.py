"""Which key may sign a store's checkpoints, and how it is changed (``dockd key rotate``).

A store that has checkpoints is tied to the key that signed the newest one: opening it
with no key, or with another key, would make every later checkpoint unverifiable, so
:func:`store_signer` refuses (exit 78) instead of silently making a key. The only way to a
new key is :func:`rotate_key`, which records ``key.rotated``: the old key signs the new
one (``old_key_signature``), the new key signs the same bytes, and the record is
checkpointed by the new key. Verification follows these records to know which key was in
force at each seq.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dockd.clock import Clock
from dockd.config import Config
from dockd.errors import ConfigError, UsageError
from dockd.i18n import _
from dockd.store.catalog import Catalog
from dockd.store.events import KeyRotated
from dockd.store.fsutil import fsync_dir
from dockd.store.keys import (
    Signer,
    create_key_file,
    fingerprint,
    load_or_create_signer,
    load_signer,
    rotation_message,
)

ROTATED_SUFFIX = ".retired-"


@dataclass(frozen=True)
class Rotation:
    """What ``dockd key rotate`` did."""

    seq: int
    old_public_key: str
    new_public_key: str
    old_key_signed: bool
    retired_key_file: Path | None


def latest_checkpoint_key(catalog: Catalog) -> str | None:
    """The public key of the store's newest checkpoint; None when it has none."""
    row = catalog.query_one("SELECT public_key FROM checkpoints ORDER BY seq DESC LIMIT 1")
    return str(row[0]) if row is not None else None


def store_signer(catalog: Catalog, key_path: Path) -> Signer:
    """The signer for a store: its checkpoints' key, or a new key for a store without any.

    ConfigError (78) when the store has checkpoints and ``key_path`` holds no key or
    another one.
    """
    expected = latest_checkpoint_key(catalog)
    if expected is None:
        return load_or_create_signer(key_path)
    signer = load_signer(key_path)
    if signer is None:
        raise ConfigError(
            _("the store's checkpoints are signed by key {fingerprint} but there is no signing key at "
              "{key_path}; restore that key file (or fix [dock] signing_key), or run 'dockd key rotate' "
              "to continue with a new key (recorded as key.rotated)").format(
              fingerprint=fingerprint(expected), key_path=key_path))
    if signer.public_key_hex != expected:
        raise ConfigError(
            _("the signing key {key_path} ({fingerprint}) is not the key of the store's checkpoints "
              "({fingerprint2}); fix [dock] signing_key, or run 'dockd key rotate --old-key PATH' to "
              "make it the store's key").format(
              key_path=key_path, fingerprint=fingerprint(signer.public_key_hex),
              fingerprint2=fingerprint(expected)))
    return signer


def rotate_key(config: Config, clock: Clock, actor: str, old_key_path: Path | None = None,
               old_key_lost: bool = False) -> Rotation:
    """Give the store a new signing key, vouched for by the old one, as ``key.rotated``.

    The old key is ``old_key_path``, else the configured key file when it is still the
    store's key. The new key is the configured key file when it holds another key (the
    administrator put one there), else a new key made at the configured path (the old file
    renamed ``<name>.retired-<fingerprint>``). ``old_key_lost`` records a rotation the old
    key cannot sign; verification notes it.
    """
    from dockd.store.catalog import catalog_path
    from dockd.store.evidence import open_store

    key_path = config.dock.signing_key_path
    probe = Catalog(catalog_path(config.dock.store_dir), read_only=True)
    try:
        expected = latest_checkpoint_key(probe)
    finally:
        probe.close()
    if expected is None:
        raise UsageError(_("the store has no checkpoints yet: its key can simply be replaced"))
    configured = load_signer(key_path)
    old = _old_signer(expected, key_path, configured, old_key_path)
    if old is None and not old_key_lost:
        raise UsageError(
            _("the store's key ({fingerprint}) is not at {key_path}: give --old-key PATH, or "
              "--old-key-lost when it is gone for good (the rotation is then not vouched for by the old "
              "key, and verify says so)").format(fingerprint=fingerprint(expected), key_path=key_path))
    retired: Path | None = None
    if configured is not None and configured.public_key_hex != expected:
        new = configured
    else:
        if configured is not None:
            retired = key_path.with_name(f"{key_path.name}{ROTATED_SUFFIX}"
                                         f"{fingerprint(expected).replace(':', '')[:16]}")
            # Renamed before the rotation is recorded: a crash in between leaves the store
            # refusing to start with a clear line, and `--old-key <retired file>` finishes it.
            os.replace(key_path, retired)
            fsync_dir(key_path.parent)
        new = create_key_file(key_path)
    message = rotation_message(config.dock.id, expected, new.public_key_hex)
    store = open_store(config, clock, recover=False, signer=new)
    try:
        record = store.custody.append(KeyRotated(
            config.dock.id, expected, new.public_key_hex, fingerprint(expected),
            fingerprint(new.public_key_hex), old.sign(message) if old is not None else None,
            new.sign(message), "rotated" if old is not None else "old_key_lost"), actor,
            checkpoint=True)
    finally:
        store.close()
    return Rotation(record.seq, expected, new.public_key_hex, old is not None, retired)


def _old_signer(expected: str, key_path: Path, configured: Signer | None,
                old_key_path: Path | None) -> Signer | None:
    if old_key_path is not None:
        old = load_signer(old_key_path)
        if old is None:
            raise ConfigError(_("--old-key {old_key_path}: no such key file").format(
                                old_key_path=old_key_path))
        if old.public_key_hex != expected:
            raise ConfigError(_("--old-key {old_key_path} ({fingerprint}) is not the store's key "
                                "({fingerprint2})").format(
                                old_key_path=old_key_path, fingerprint=fingerprint(old.public_key_hex),
                                fingerprint2=fingerprint(expected)))
        return old
    if configured is not None and configured.public_key_hex == expected:
        return configured
    return None
