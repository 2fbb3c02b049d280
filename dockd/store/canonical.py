"""The one byte form of JSON that dockd hashes, signs, stores and publishes."""

from __future__ import annotations

import json
from typing import TypeAlias

JsonObject: TypeAlias = dict[str, object]
"""A JSON object as dockd builds it (values: JSON types, lists, nested objects)."""


def canonical_json(value: object) -> bytes:
    """Sorted keys, no spaces, UTF-8, no NaN: what is hashed and signed is exactly this."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")
