"""The ``[archive]`` section: where the central WORM archive is and how long it locks.

::

    [archive]
    endpoint_url = "https://s3.archive.bureau.example"
    bucket = "dockd-evidence"              # must have S3 Object Lock enabled
    credentials_file = "/etc/dockd/archive-credentials.toml"
    region = "us-east-1"
    key_prefix = "dock-01"                 # default: the dock id
    retention_days = 90                    # never below 90 (rule art. 12(3))
    addressing_style = "path"              # "path" | "virtual"
    ca_bundle = "/etc/dockd/archive-ca.pem"  # optional; default: system CAs
    part_bytes = 16777216                  # multipart part size (5 MiB .. 1 GiB)
    multipart_threshold_bytes = 67108864   # larger files go up in parts, resumably
    connect_timeout_s = 10
    read_timeout_s = 60

The credentials are not in this file: ``credentials_file`` names a TOML file with
``access_key_id`` and ``secret_access_key`` (read by :mod:`dockd.records.archive.credentials`).
An absent ``[archive]`` section means the dock has no archive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dockd.config.reader import TableReader
from dockd.i18n import _

MIN_RETENTION_DAYS = 90  # rule art. 12(3): keep at least three months
MIN_PART_BYTES = 5 << 20  # S3: every part but the last is at least 5 MiB
MAX_PART_BYTES = 1 << 30
MAX_SINGLE_PUT_BYTES = 5 << 30  # S3: one PUT carries at most 5 GiB
# S3 bucket names: 3-63 lowercase letters, digits, '.', '-'.
BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,63}){0,3}$")
URL_PATTERN = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")


@dataclass(frozen=True)
class ArchiveSection:
    """The parsed ``[archive]`` section."""

    endpoint_url: str
    bucket: str
    credentials_file: Path
    region: str = "us-east-1"
    key_prefix: str | None = None  # None: the dock id
    retention_days: int = MIN_RETENTION_DAYS
    addressing_style: str = "path"
    ca_bundle: Path | None = None
    part_bytes: int = 16 << 20
    multipart_threshold_bytes: int = 64 << 20
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0

    def prefix(self, dock_id: str) -> str:
        """The key prefix under which this dock's objects live."""
        return self.key_prefix or dock_id


def parse_archive(t: TableReader) -> ArchiveSection | None:
    """Validate ``[archive]``; None when the section is absent or empty (no archive)."""
    if not t.data:
        return None
    d = ArchiveSection
    hint = _("the archive needs endpoint_url, bucket and credentials_file")
    endpoint_url = t.required_string("endpoint_url", URL_PATTERN, _("an http:// or https:// URL"))
    bucket = t.required_string("bucket", BUCKET_PATTERN,
                               _("an S3 bucket name (3-63 lowercase letters, digits, '.', '-')"))
    if "credentials_file" not in t.data:
        t.problem("credentials_file", _("missing; {hint}").format(hint=hint))
    credentials_file = t.path("credentials_file", None)
    part_bytes = t.integer("part_bytes", d.part_bytes, minimum=MIN_PART_BYTES,
                           maximum=MAX_PART_BYTES)
    section = ArchiveSection(
        endpoint_url=endpoint_url,
        bucket=bucket,
        credentials_file=credentials_file or Path(),
        region=t.string("region", d.region, re.compile(r"^[a-z0-9-]{1,32}$"),
                        _("a region name such as us-east-1")),
        key_prefix=t.optional_string("key_prefix", PREFIX_PATTERN,
                                     _("1-4 '/'-separated parts of letters, digits, '_', '.', '-'")),
        retention_days=t.integer("retention_days", MIN_RETENTION_DAYS,
                                 minimum=MIN_RETENTION_DAYS, maximum=36500),
        addressing_style=t.choice("addressing_style", d.addressing_style, ("path", "virtual")),
        ca_bundle=t.path("ca_bundle", None),
        part_bytes=part_bytes,
        multipart_threshold_bytes=t.integer("multipart_threshold_bytes",
                                            max(d.multipart_threshold_bytes, part_bytes),
                                            minimum=part_bytes, maximum=MAX_SINGLE_PUT_BYTES),
        connect_timeout_s=t.number("connect_timeout_s", d.connect_timeout_s, minimum=0.1,
                                   maximum=600),
        read_timeout_s=t.number("read_timeout_s", d.read_timeout_s, minimum=0.1, maximum=3600),
    )
    return section
