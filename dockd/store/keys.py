"""The dock's Ed25519 signing key for custody checkpoints.

The key lives in its own file (mode 0400), outside the database, created on first use.
Its public half is printed by ``dockd key show`` and published with the dock status, so
that checkpoints can be checked off the box.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dockd.errors import ConfigError
from dockd.i18n import _
from dockd.store.fsutil import fsync_dir, make_dirs, write_all

KEY_FILE_MODE = 0o400
ROTATION_TAG = b"dockd.key-rotation.v1\x00"


class Signer:
    """Signs checkpoint bytes with the dock's key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key_hex = public_key_hex(private_key.public_key())

    def sign(self, message: bytes) -> str:
        """Base64 of the Ed25519 signature of ``message``."""
        return base64.b64encode(self._key.sign(message)).decode("ascii")


def load_or_create_signer(path: Path) -> Signer:
    """The signer of the key at ``path``; a new key is created there when none exists."""
    signer = load_signer(path)
    return signer if signer is not None else Signer(_create_key(path))


def load_signer(path: Path) -> Signer | None:
    """The signer of the key at ``path``; None when there is no file (never creates one)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except PermissionError:
        raise ConfigError(_("signing key {path} is not readable by this user").format(path=path)) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except ValueError:
        raise ConfigError(_("signing key {path} is not a PEM private key").format(path=path)) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(_("signing key {path} is not an Ed25519 key").format(path=path))
    return Signer(key)


def create_key_file(path: Path) -> Signer:
    """A new key written to ``path`` (which must not exist)."""
    return Signer(_create_key(path, exclusive=True))


def rotation_message(dock: str, old_public_hex: str, new_public_hex: str) -> bytes:
    """The bytes both keys sign in a ``key.rotated`` record: the old key vouches for the new."""
    return ROTATION_TAG + f"{dock}\x00{old_public_hex}\x00{new_public_hex}".encode()


def _create_key(path: Path, exclusive: bool = False) -> Ed25519PrivateKey:
    make_dirs(path.parent, 0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    # O_EXCL: two processes starting at once must not each write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, KEY_FILE_MODE)
    except FileExistsError:
        if exclusive:
            raise
        return load_or_create_signer(path)._key
    try:
        write_all(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)
    return key


def public_key_hex(key: Ed25519PublicKey) -> str:
    """Raw 32-byte public key as hex: the form published and stored in checkpoints."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def fingerprint(public_hex: str) -> str:
    """Short, readable fingerprint of a public key (SHA-256, first 16 bytes, colon-hex)."""
    digest = hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()[:32]
    return ":".join(digest[i:i + 4] for i in range(0, 32, 4))


def verify_signature(public_hex: str, message: bytes, signature_b64: str) -> bool:
    """True when ``signature_b64`` is a valid signature of ``message`` by ``public_hex``."""
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
        key.verify(base64.b64decode(signature_b64, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def public_key_pem(public_hex: str) -> bytes:
    """The Ed25519 public key ``public_hex`` as PEM (SubjectPublicKeyInfo), the form
    ``openssl pkey -pubin`` and other tools read."""
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
