"""The names dockd accepts for recorders and docks: one definition for every room.

A recorder serial becomes part of file paths, topic levels and catalog keys; a dock or site
id becomes a topic level and a key prefix. Both are therefore restricted to characters that
are safe in all of those places.
"""

from __future__ import annotations

import re

SERIAL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DOCK_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
DOCK_ID_HINT = "letters, digits, '-' or '_', at most 64 characters"
