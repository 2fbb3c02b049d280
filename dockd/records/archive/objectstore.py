"""The edge to the S3-compatible archive bucket: the only module that imports boto3.

Every call goes through :func:`_translate`, which turns the S3 client's exceptions into
the errors an administrator acts on: refused credentials and a missing or non-WORM
bucket are ConfigError, a checksum the bucket rejects is IntegrityError, anything else
is ArchiveUnavailableError (try again later).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import boto3  # type: ignore[import-untyped]
import botocore.config  # type: ignore[import-untyped]
import botocore.exceptions  # type: ignore[import-untyped]

from dockd.config.archive import ArchiveSection
from dockd.errors import ArchiveUnavailableError, ConfigError, IntegrityError
from dockd.i18n import _
from dockd.records.archive.credentials import ArchiveCredentials

LOCK_MODE = "COMPLIANCE"
SHA256_METADATA = "sha256"  # x-amz-meta-sha256: the full-object hex digest, also for multipart

_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403",
                     "InvalidToken", "ExpiredToken", "AuthorizationHeaderMalformed"}
_DIGEST_CODES = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "InvalidChecksum"}
_NETWORK_ERRORS = (botocore.exceptions.EndpointConnectionError,
                   botocore.exceptions.ConnectionClosedError,
                   botocore.exceptions.ConnectTimeoutError,
                   botocore.exceptions.ReadTimeoutError,
                   botocore.exceptions.ProxyConnectionError,
                   botocore.exceptions.SSLError)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteObject:
    """One version of an object as the bucket describes it."""

    key: str
    version_id: str
    checksum_sha256: str  # base64; a multipart object's ends with "-<parts>"
    size: int
    content_sha256: str | None  # our x-amz-meta-sha256, when we wrote it
    lock_mode: str | None
    retain_until: dt.datetime | None
    legal_hold: bool


@dataclass(frozen=True)
class UploadedPart:
    """A part of a multipart upload the bucket has accepted."""

    number: int
    etag: str
    checksum_sha256: str
    size: int


@dataclass(frozen=True)
class Lock:
    """The Object Lock an object is written with: COMPLIANCE until ``retain_until``."""

    retain_until: dt.datetime
    legal_hold: bool


class S3Archive:
    """A WORM bucket reached with one access key. One per thread (boto3 clients are not
    shared across processes)."""

    def __init__(self, section: ArchiveSection, credentials: ArchiveCredentials,
                 credentials_name: str) -> None:
        self.bucket = section.bucket
        self.endpoint = section.endpoint_url
        self._credentials_name = credentials_name
        client_config = botocore.config.Config(
            region_name=section.region,
            s3={"addressing_style": section.addressing_style},
            connect_timeout=section.connect_timeout_s,
            read_timeout=section.read_timeout_s,
            retries={"max_attempts": 3, "mode": "standard"},
            # We send SHA-256 checksums ourselves; no extra CRC32 pass over every body.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._s3 = boto3.session.Session().client(
            "s3", endpoint_url=section.endpoint_url,
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
            verify=str(section.ca_bundle) if section.ca_bundle else True,
            config=client_config,
        )

    # -- the bucket ---------------------------------------------------------------------

    def check_worm(self) -> None:
        """Raise ConfigError unless the bucket exists, our key may use it, and Object Lock
        is enabled (which implies versioning): a bucket that is not WORM is refused."""
        with self._translate(_("reading the Object Lock configuration of")):
            try:
                answer = self._s3.get_object_lock_configuration(Bucket=self.bucket)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in ("ObjectLockConfigurationNotFoundError",
                                  "ObjectLockConfigurationNotFound"):
                    raise self._not_worm(_("it has no Object Lock configuration")) from None
                raise
        enabled = answer.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
        if enabled != "Enabled":
            raise self._not_worm(_("Object Lock is {state}").format(
                state=enabled or _("not enabled")))
        with self._translate(_("reading the versioning of")):
            versioning = self._s3.get_bucket_versioning(Bucket=self.bucket).get("Status")
        if versioning != "Enabled":
            raise self._not_worm(_("versioning is {state}").format(state=versioning or _("off")))

    # -- objects --------------------------------------------------------------------------

    def head(self, key: str, version_id: str | None = None) -> RemoteObject | None:
        """The latest (or the given) version of ``key``; None when there is none."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "ChecksumMode": "ENABLED"}
        if version_id is not None:
            args["VersionId"] = version_id
        with self._translate(_("reading {key} in").format(key=key)):
            try:
                answer = self._s3.head_object(**args)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in ("404", "NoSuchKey", "NoSuchVersion", "405"):
                    return None
                raise
        return _remote(key, answer)

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` (all pages), sorted."""
        keys: list[str] = []
        with self._translate(_("listing {prefix} in").format(prefix=prefix)):
            for page in self._s3.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=prefix):
                keys += [str(o["Key"]) for o in page.get("Contents", [])]
        return sorted(keys)

    def get_bytes(self, key: str, max_bytes: int = 64 << 20) -> bytes:
        """The latest version of a small object (segments, manifests); IntegrityError when
        it is larger than ``max_bytes`` or its bytes do not match its SHA-256 checksum."""
        with self._translate(_("reading {key} in").format(key=key)):
            answer = self._s3.get_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
            if int(answer.get("ContentLength", 0)) > max_bytes:
                raise IntegrityError(_("{key} is larger than {max_bytes} bytes").format(
                                       key=key, max_bytes=max_bytes))
            data: bytes = answer["Body"].read(max_bytes + 1)
        checksum = answer.get("ChecksumSHA256")
        if checksum is not None and "-" not in checksum and \
                checksum != sha256_b64(hashlib.sha256(data).hexdigest()):
            raise IntegrityError(_("{key} read back with bytes that do not match its checksum").format(
                                   key=key))
        return data

    def put(self, key: str, body: IO[bytes], size: int, sha256_hex: str, lock: Lock,
            content_type: str) -> RemoteObject:
        """One PUT of ``size`` bytes, refused by the bucket unless their SHA-256 is
        ``sha256_hex``; written under COMPLIANCE retention (and the legal hold, if set)."""
        checksum = sha256_b64(sha256_hex)
        with self._translate(_("uploading {key} to").format(key=key)):
            answer = self._s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentLength=size,
                ChecksumSHA256=checksum, ContentType=content_type,
                Metadata={SHA256_METADATA: sha256_hex}, **_lock_args(lock))
        returned = answer.get("ChecksumSHA256")
        if returned is not None and returned != checksum:
            raise IntegrityError(_("the archive stored {key} with checksum {returned}, expected "
                                   "{checksum}").format(key=key, returned=returned, checksum=checksum))
        return RemoteObject(key, _version(answer, key), checksum, size, sha256_hex, LOCK_MODE,
                            lock.retain_until, lock.legal_hold)

    def create_multipart(self, key: str, sha256_hex: str, lock: Lock, content_type: str) -> str:
        """Start a multipart upload with SHA-256 part checksums; its upload id."""
        with self._translate(_("starting a multipart upload of {key} to").format(key=key)):
            answer = self._s3.create_multipart_upload(
                Bucket=self.bucket, Key=key, ChecksumAlgorithm="SHA256", ContentType=content_type,
                Metadata={SHA256_METADATA: sha256_hex}, **_lock_args(lock))
        return str(answer["UploadId"])

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes,
                    sha256_digest: bytes) -> UploadedPart:
        """Upload one part; the bucket refuses it unless its SHA-256 is ``sha256_digest``."""
        checksum = base64.b64encode(sha256_digest).decode("ascii")
        with self._translate(_("uploading part {number} of {key} to").format(
                number=number, key=key)):
            answer = self._s3.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                          PartNumber=number, Body=data, ContentLength=len(data),
                                          ChecksumSHA256=checksum)
        return UploadedPart(number, str(answer["ETag"]), checksum, len(data))

    def list_parts(self, key: str, upload_id: str) -> dict[int, tuple[str, int]] | None:
        """Part number → (ETag, size) of an upload in flight; None if the bucket no longer
        knows the upload (completed, aborted or expired)."""
        parts: dict[int, tuple[str, int]] = {}
        marker = 0
        with self._translate(_("listing the parts of {key} in").format(key=key)):
            while True:
                try:
                    answer = self._s3.list_parts(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                 PartNumberMarker=marker)
                except botocore.exceptions.ClientError as exc:
                    if _code(exc) in ("NoSuchUpload", "404"):
                        return None
                    raise
                for part in answer.get("Parts", []):
                    parts[int(part["PartNumber"])] = (str(part["ETag"]), int(part["Size"]))
                if not answer.get("IsTruncated"):
                    return parts
                marker = int(answer["NextPartNumberMarker"])

    def complete_multipart(self, key: str, upload_id: str,
                           parts: list[UploadedPart]) -> tuple[str, str] | None:
        """Complete the upload; (version id, checksum as stored), or None if the bucket no
        longer knows the upload (it may have been completed before a crash)."""
        listed = [{"PartNumber": p.number, "ETag": p.etag, "ChecksumSHA256": p.checksum_sha256}
                  for p in sorted(parts, key=lambda p: p.number)]
        with self._translate(_("completing the multipart upload of {key} in").format(key=key)):
            try:
                answer = self._s3.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id,
                    MultipartUpload={"Parts": listed})
            except botocore.exceptions.ClientError as exc:
                if _code(exc) == "NoSuchUpload":
                    return None
                raise
        return _version(answer, key), str(answer.get("ChecksumSHA256") or "")

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop an upload in flight and its parts."""
        with self._translate(_("aborting the multipart upload of {key} in").format(key=key)):
            try:
                self._s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) != "NoSuchUpload":
                    raise

    def set_legal_hold(self, key: str, version_id: str, on: bool) -> None:
        """Set (ON) or release (OFF) the legal hold of one version."""
        with self._translate(_("setting the legal hold of {key} in").format(key=key)):
            self._s3.put_object_legal_hold(Bucket=self.bucket, Key=key, VersionId=version_id,
                                           LegalHold={"Status": "ON" if on else "OFF"})

    # -- errors ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        where = _("bucket {bucket} at {endpoint}").format(bucket=self.bucket, endpoint=self.endpoint)
        try:
            yield
        except botocore.exceptions.ClientError as exc:
            code, message = _code(exc), _message(exc)
            if code in _CREDENTIAL_CODES:
                raise ConfigError(
                    _("the archive refused the credentials in {credentials_name} while {what} {where} "
                      "({code}: {message}); check access_key_id, secret_access_key and the key's "
                      "permissions").format(
                      credentials_name=self._credentials_name, what=what, where=where,
                      code=code, message=message)) from None
            if code == "NoSuchBucket":
                raise ConfigError(_("archive {where} does not exist; create it with Object Lock enabled "
                                    "or correct [archive] bucket").format(where=where)) from None
            if code in _DIGEST_CODES:
                raise IntegrityError(_("the archive received bytes whose SHA-256 differs from the "
                                       "store's while {what} {where} ({code}); the local copy or the "
                                       "network is corrupting data").format(
                                       what=what, where=where, code=code)) from None
            raise ArchiveUnavailableError(_("the archive failed while {what} {where}: {code}: "
                                            "{message}").format(what=what, where=where, code=code,
                                                                message=message)) from None
        except _NETWORK_ERRORS as exc:
            raise ArchiveUnavailableError(_("the archive {where} cannot be reached while {what} it: "
                                            "{exc}").format(where=where, what=what, exc=exc)) from None
        except botocore.exceptions.NoCredentialsError:
            raise ConfigError(_("no archive credentials ({credentials_name})").format(
                                credentials_name=self._credentials_name)) from None

    def _not_worm(self, why: str) -> ConfigError:
        return ConfigError(_("archive bucket {bucket} at {endpoint} is not WORM: {why}. Evidence is only "
                             "archived to a bucket created with Object Lock enabled (S3 "
                             "--object-lock-enabled-for-bucket)").format(
                             bucket=self.bucket, endpoint=self.endpoint, why=why))


def sha256_b64(sha256_hex: str) -> str:
    """x-amz-checksum-sha256: base64 of the raw 32-byte digest, from our hex digest."""
    raw = bytes.fromhex(sha256_hex)
    if len(raw) != 32:
        raise ValueError(f"not a SHA-256 digest: {sha256_hex!r}")
    return base64.b64encode(raw).decode("ascii")


def composite_checksum(part_digests: list[bytes]) -> str:
    """The checksum S3 reports for a multipart object: SHA-256 of the parts' raw digests,
    base64, then ``-<number of parts>``."""
    joined = hashlib.sha256(b"".join(part_digests)).digest()
    return f"{base64.b64encode(joined).decode('ascii')}-{len(part_digests)}"


def _lock_args(lock: Lock) -> dict[str, Any]:
    return {"ObjectLockMode": LOCK_MODE, "ObjectLockRetainUntilDate": lock.retain_until,
            "ObjectLockLegalHoldStatus": "ON" if lock.legal_hold else "OFF"}


def _remote(key: str, answer: dict[str, Any]) -> RemoteObject:
    until = answer.get("ObjectLockRetainUntilDate")
    return RemoteObject(
        key=key, version_id=_version(answer, key),
        checksum_sha256=str(answer.get("ChecksumSHA256") or ""),
        size=int(answer.get("ContentLength", 0)),
        content_sha256=(answer.get("Metadata") or {}).get(SHA256_METADATA),
        lock_mode=answer.get("ObjectLockMode"),
        retain_until=until.astimezone(dt.UTC) if isinstance(until, dt.datetime) else None,
        legal_hold=answer.get("ObjectLockLegalHoldStatus") == "ON")


def _version(answer: dict[str, Any], key: str) -> str:
    version = answer.get("VersionId")
    if not version or version == "null":
        # Without a version id nothing pins the archived bytes: the bucket is not versioned.
        raise ConfigError(_("the archive returned no version id for {key}: the bucket is not versioned, "
                            "so it is not WORM").format(key=key))
    return str(version)


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
