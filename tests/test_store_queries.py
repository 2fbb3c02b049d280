"""The streamed listings (``catalog --json``, ``log --json``): the same records as the
decoded ones, an altered payload refused, officers found as ``officer_at`` finds them."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockd.errors import IntegrityError
from dockd.records.people import officer_at
from dockd.records.views import _OfficerLookup
from dockd.store.catalog import Catalog, catalog_path
from dockd.store.evidence import EvidenceStore
from dockd.store.ingest import Ingestor
from dockd.store.queries import custody_records, custody_records_json, write_json_lines_array

Opener = Callable[..., EvidenceStore]
Tree = Callable[[Path, Mapping[str | bytes, bytes]], Path]


def _log_json(catalog: Catalog, after: int = 0, type_: str | None = None) -> list[object]:
    out = io.StringIO()
    write_json_lines_array(out, custody_records_json(catalog, after, type_))
    return json.loads(out.getvalue())  # type: ignore[no-any-return]


def test_log_json_is_the_decoded_log_and_an_altered_payload_is_refused(
        open_test_store: Opener, make_tree: Tree, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"DCIM/执法 \"录像\"\\1.MP4": b"a", b"DCIM/\xff\x01.MP4": b"b"})
    store = open_test_store()
    Ingestor(store, "t").ingest(src, "REC-1")
    assert _log_json(store.catalog) == custody_records(store.catalog)
    assert _log_json(store.catalog, 2, "file.ingested") == custody_records(
        store.catalog, 2, "file.ingested")
    empty = io.StringIO()
    write_json_lines_array(empty, iter(()))
    assert json.loads(empty.getvalue()) == []
    raw = sqlite3.connect(catalog_path(store.root))
    raw.execute("DROP TRIGGER custody_no_update")
    raw.execute("UPDATE custody SET payload = '{\"cut' WHERE seq = 2")
    raw.commit()
    raw.close()
    with pytest.raises(IntegrityError, match="seq 2"):
        _log_json(store.catalog)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(st.text(), st.text(), st.text(),
                               st.dictionaries(st.text(), st.one_of(
                                   st.none(), st.booleans(), st.integers(), st.text()))),
                     max_size=6))
def test_log_json_lines_written_by_sqlite_decode_as_the_log(
        rows: list[tuple[str, str, str, dict[str, object]]]) -> None:
    """Any text in a record's columns (quotes, backslashes, control characters, NUL, CJK)
    and any payload: each line SQLite builds is JSON that decodes to the
    record as custody_records decodes it."""
    base = Path(tempfile.mkdtemp(prefix="dockd-logjson-"))
    try:
        catalog = Catalog(catalog_path(base))
        with catalog.transaction() as tx:
            for seq, (dock, actor, subject, payload) in enumerate(rows, start=1):
                tx.execute("INSERT INTO custody (seq, dock, event_id, time, type, actor,"
                           " subject, payload, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?)",
                           (seq, dock, f"e{seq}", "2026-01-01T00:00:00Z", "file.skipped",
                            actor, subject, json.dumps(payload, ensure_ascii=False),
                            "0" * 64, f"{seq:064x}"))
        assert _log_json(catalog) == custody_records(catalog)
        catalog.close()
    finally:
        shutil.rmtree(base)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docks=st.lists(st.tuples(st.sampled_from(["R1", "R2"]), st.integers(0, 20),
                                st.sampled_from([None, "", "O-7", "王警官"])), max_size=8),
       moments=st.lists(st.integers(0, 22), min_size=1, max_size=6))
def test_officer_lookup_agrees_with_officer_at(docks: list[tuple[str, int, str | None]],
                                               moments: list[int]) -> None:
    """Dock events in any time order (a clock set back) and moments anywhere: the lookup
    that reads them once finds the officer that officer_at finds with one query each."""
    base = Path(tempfile.mkdtemp(prefix="dockd-officer-"))
    try:
        catalog = Catalog(catalog_path(base))
        with catalog.transaction() as tx:
            for seq, (serial, minute, who) in enumerate(docks, start=1):
                # seq order is insertion order; the times are the test's, in any order
                tx.execute("INSERT INTO custody (seq, dock, event_id, time, type, actor,"
                           " subject, payload, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?)",
                           (seq, "d", f"e{seq}", f"2026-01-01T00:{minute:02}:00Z",
                            "recorder.docked", "t", serial, json.dumps({"officer_name": who}),
                            "0" * 64, f"{seq:064x}"))
        lookup = _OfficerLookup(catalog)
        for serial in ("R1", "R2"):
            for minute in moments:
                moment = f"2026-01-01T00:{minute:02}:00Z"
                assert lookup.at(serial, moment) == officer_at(catalog, serial, moment)
        catalog.close()
    finally:
        shutil.rmtree(base)
