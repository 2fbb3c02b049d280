"""The bureau's ledger: every dock's custody stream verified and kept centrally in PostgreSQL.

Core (no I/O): :mod:`judge` (one message on its own), :mod:`plan` (a dock's batch against
what is kept), :mod:`gaps` (holes). Edges: :mod:`db` (PostgreSQL), :mod:`consumer` (MQTT),
:mod:`web` (the supervision page). docs/ledger.md describes tables and guarantees.
"""
