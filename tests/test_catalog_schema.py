"""Creating the catalog's tables: a new catalog gets them in one transaction, all or
nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import dockd.store.catalog as catalog_module
from dockd.errors import StoreUnavailableError
from dockd.store.catalog import Catalog
from dockd.store.schema import CATALOG_DDL


def _tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger', 'index')")}
    finally:
        conn.close()


def test_a_new_catalog_gets_its_whole_schema_in_one_transaction(tmp_path: Path) -> None:
    statements: list[str] = []
    conn = sqlite3.connect(tmp_path / "catalog.sqlite", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.set_trace_callback(statements.append)
    catalog_module._create_tables(conn)
    conn.close()
    said = [s.strip().rstrip(";") for s in statements]
    begins = [s for s in said if s.startswith("BEGIN")]
    assert begins == ["BEGIN IMMEDIATE"] and said.count("COMMIT") == 1, said
    assert said.index("COMMIT") > max(i for i, s in enumerate(said) if s.startswith("CREATE"))
    # The same tables, triggers and indexes as running each part of the schema by itself.
    one_by_one = tmp_path / "one-by-one.sqlite"
    other = sqlite3.connect(one_by_one, isolation_level=None)
    for ddl in CATALOG_DDL:
        other.executescript(ddl)
    other.close()
    assert _tables(tmp_path / "catalog.sqlite") == _tables(one_by_one)
    assert {"items", "custody", "checkpoints", "sessions", "meta"} <= _tables(one_by_one)


def test_a_schema_statement_that_fails_leaves_a_new_catalog_without_any_table(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = (*CATALOG_DDL[:2], "CREATE TABLE IF NOT EXISTS broken (;", *CATALOG_DDL[2:])
    monkeypatch.setattr(catalog_module, "CATALOG_DDL", broken)
    path = tmp_path / "catalog.sqlite"
    with pytest.raises(StoreUnavailableError):
        Catalog(path)
    assert _tables(path) == set()  # nothing half made: the next open starts afresh
    monkeypatch.setattr(catalog_module, "CATALOG_DDL", CATALOG_DDL)
    Catalog(path).close()
    assert "items" in _tables(path)
