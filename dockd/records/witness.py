"""``dockd verify --against-ledger URL`` / ``--against-archive``: prove this dock's custody
log was not rolled back or rewritten, against a copy the dock cannot change.

A dock's own verification proves its log is internally consistent; a dock restored from an
old backup (or whose log was rebuilt from scratch) is consistent too. Outside witnesses
remember what the dock published: the bureau's ledger (over its read-only HTTP API) and the
WORM archive's custody segments. Every record a witness holds must be in this log with the
same hash, and this log must reach at least as far as the witness does.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockd.errors import ArchiveUnavailableError, ConfigError, UsageError
from dockd.i18n import _

PAGE = 10_000  # the ledger API's largest range


class WitnessUnavailableError(ArchiveUnavailableError):
    """The ledger page cannot be reached or answered wrongly; retry later (exit 75)."""


@dataclass(frozen=True)
class WitnessProblem:
    """One way this log disagrees with a witness."""

    kind: str      # rolled_back | differs | witness
    subject: str
    detail: str

    def to_json_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "subject": self.subject, "detail": self.detail}


@dataclass(frozen=True)
class WitnessReport:
    """The outcome against one witness."""

    witness: str
    compared: int
    witness_max_seq: int
    problems: list[WitnessProblem]


OwnHash = Callable[[int], str | None]


def against_ledger(url: str, dock: str, own_max: int, own_hash: OwnHash,
                   credentials_file: Path | None = None, ca_file: Path | None = None,
                   timeout_s: float = 30.0) -> WitnessReport:
    """Compare with what the ledger at ``url`` (``dockd ledger serve``) holds of ``dock``."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("https", "http") or not parsed.hostname or parsed.query:
        raise UsageError(_("--against-ledger: {url!r} is not an https:// URL of the ledger page")
                         .format(url=url))
    base = url.rstrip("/")
    headers = {"Accept": "application/json"}
    if credentials_file is not None:
        user, password = _credentials(credentials_file)
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)

    def get(path: str) -> Any:
        request = urllib.request.Request(base + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s,
                                        context=context if parsed.scheme == "https" else None
                                        ) as answer:
                return json.loads(answer.read(64 << 20))
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                raise ConfigError(_("the ledger {url} refused the credentials{where}").format(
                    url=url, where=f" in {credentials_file}" if credentials_file else "")
                ) from None
            if exc.code == 404:
                raise UsageError(_("the ledger {url} has no dock {dock} enrolled")
                                 .format(url=url, dock=dock)) from None
            raise WitnessUnavailableError(_("the ledger {url} answered {code}")
                                          .format(url=url, code=exc.code)) from None
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            raise WitnessUnavailableError(_("the ledger {url} cannot be reached: {error}")
                                          .format(url=url, error=exc)) from None

    head = get(f"/api/docks/{urllib.parse.quote(dock)}/head")
    witness_max = int(head.get("max_seq") or 0)
    problems: list[WitnessProblem] = []
    if witness_max > own_max:
        problems.append(WitnessProblem(
            "rolled_back", f"seq {witness_max}",
            f"the ledger holds records up to seq {witness_max} but this log ends at "
            f"{own_max}: the log was rolled back or replaced"))
    compared = 0
    for first in range(1, min(witness_max, own_max) + 1, PAGE):
        last = min(first + PAGE - 1, witness_max, own_max)
        page = get(f"/api/docks/{urllib.parse.quote(dock)}/hashes?from={first}&to={last}")
        for row in page["records"]:
            compared += 1
            mine = own_hash(int(row["seq"]))
            if mine is None:
                problems.append(WitnessProblem("differs", f"seq {row['seq']}",
                                               "the ledger holds this record; this log does not"))
            elif mine != row["hash"]:
                problems.append(WitnessProblem("differs", f"seq {row['seq']}",
                                               "this log's record differs from the one the "
                                               "ledger received (rewritten history)"))
    cp_seq, cp_hash = head.get("checkpoint_seq"), head.get("checkpoint_hash")
    if isinstance(cp_seq, int) and cp_seq <= own_max and own_hash(cp_seq) not in (None, cp_hash):
        problems.append(WitnessProblem("differs", f"seq {cp_seq}",
                                       "this log disagrees with the signed checkpoint the "
                                       "ledger holds"))
    return WitnessReport(f"ledger {url}", compared, witness_max, problems)


def against_archive(archive: Any, prefix: str, dock: str, public_key: str, own_max: int,
                    own_hash: OwnHash) -> WitnessReport:
    """Compare with the custody segments this dock archived (checked with its own key)."""
    from dockd.records.archive.custody_segments import parse_segment, segment_range

    problems: list[WitnessProblem] = []
    compared = witness_max = 0
    for key in archive.list_keys(f"{prefix}/custody/"):
        span = segment_range(key)
        if span is None:
            continue
        try:
            segment = parse_segment(archive.get_bytes(key), public_key, dock)
        except ValueError as exc:
            problems.append(WitnessProblem("witness", key, f"archived segment refused: {exc}"))
            continue
        witness_max = max(witness_max, segment.last_seq)
        for record in segment.records:
            compared += 1
            mine = own_hash(record["seq"])
            if mine is None and record["seq"] <= own_max:
                problems.append(WitnessProblem("differs", f"seq {record['seq']}",
                                               "archived, but missing from this log"))
            elif mine is not None and mine != record["hash"]:
                problems.append(WitnessProblem("differs", f"seq {record['seq']}",
                                               f"differs from the archived record ({key})"))
    if witness_max > own_max:
        problems.append(WitnessProblem(
            "rolled_back", f"seq {witness_max}",
            f"the archive holds signed records up to seq {witness_max} but this log ends at "
            f"{own_max}: the log was rolled back or replaced"))
    return WitnessReport(f"archive {archive.bucket}/{prefix}/custody", compared, witness_max,
                         problems)


def _credentials(path: Path) -> tuple[str, str]:
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(_("--ledger-credentials: {path} cannot be read: {error}")
                          .format(path=path, error=exc)) from None
    if len(lines) < 2 or not lines[0].strip():
        raise ConfigError(_("--ledger-credentials: {path} must hold the user on line 1 and the"
                            " password on line 2").format(path=path))
    return lines[0].strip(), lines[1]
