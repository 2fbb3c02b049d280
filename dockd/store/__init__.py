"""The evidence core: content store, catalog, custody log, ingest, verification."""
