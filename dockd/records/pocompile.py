"""Compile gettext ``.po`` catalogs to ``.mo`` without GNU gettext installed.

``python -m dockd.records.pocompile`` rebuilds every ``dockd/locale/*/LC_MESSAGES/*.mo``
from the ``.po`` next to it (``msgfmt --check`` gives an equivalent file). A test checks
that each committed ``.mo`` holds exactly its ``.po``'s translations, so a stale one fails.
Supports what this project's catalogs use: msgid/msgstr with continued lines and C escapes,
comments, and skips ``fuzzy`` entries like msgfmt. Plural forms and contexts are refused.
"""

from __future__ import annotations

import ast
import struct
import sys
from pathlib import Path

from dockd.i18n import LOCALE_DIR

_MO_MAGIC = 0x950412DE


def parse_po(text: str, name: str = "<po>") -> dict[str, str]:
    """msgid → msgstr of every translated, non-fuzzy entry (the header under ``""``).
    ValueError naming the line on anything it does not understand."""
    entries: dict[str, str] = {}
    msgid: list[str] | None = None
    msgstr: list[str] | None = None
    current: list[str] | None = None
    fuzzy = pending_fuzzy = False

    def flush(lineno: int) -> None:
        nonlocal msgid, msgstr
        if msgid is None:
            return
        if msgstr is None:
            raise ValueError(f"{name}:{lineno}: msgid without msgstr")
        key, value = "".join(msgid), "".join(msgstr)
        if key in entries:
            raise ValueError(f"{name}:{lineno}: duplicate msgid {key!r}")
        if value and not fuzzy:
            entries[key] = value
        msgid = msgstr = None

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith("#,") and "fuzzy" in line:
                pending_fuzzy = True
            continue
        if line.startswith("msgid "):
            flush(lineno)
            fuzzy, pending_fuzzy = pending_fuzzy, False
            msgid, current = [_string(line[6:], name, lineno)], None
            current = msgid
        elif line.startswith("msgstr "):
            if msgid is None or msgstr is not None:
                raise ValueError(f"{name}:{lineno}: msgstr without msgid")
            msgstr = [_string(line[7:], name, lineno)]
            current = msgstr
        elif line.startswith('"'):
            if current is None:
                raise ValueError(f"{name}:{lineno}: continued string outside an entry")
            current.append(_string(line, name, lineno))
        else:
            raise ValueError(f"{name}:{lineno}: unsupported line {line[:40]!r}")
    flush(len(text.splitlines()) + 1)
    return entries


def mo_bytes(catalog: dict[str, str]) -> bytes:
    """The GNU ``.mo`` encoding of ``catalog`` (sorted, no hash table)."""
    keys = sorted(catalog)
    ids = b"".join(k.encode("utf-8") + b"\0" for k in keys)
    strs = b"".join(catalog[k].encode("utf-8") + b"\0" for k in keys)
    n = len(keys)
    key_start = 7 * 4 + 16 * n
    value_start = key_start + len(ids)
    offsets: list[int] = []
    pos = 0
    for k in keys:
        length = len(k.encode("utf-8"))
        offsets += [length, key_start + pos]
        pos += length + 1
    pos = 0
    for k in keys:
        length = len(catalog[k].encode("utf-8"))
        offsets += [length, value_start + pos]
        pos += length + 1
    header = struct.pack("Iiiiiii", _MO_MAGIC, 0, n, 7 * 4, 7 * 4 + 8 * n, 0, 0)
    return header + struct.pack(f"{4 * n}i", *offsets) + ids + strs


def compile_all(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    """Rebuild every ``.mo`` under ``locale_dir``; the files written."""
    written = []
    for po in sorted(locale_dir.glob("*/LC_MESSAGES/*.po")):
        mo = po.with_suffix(".mo")
        mo.write_bytes(mo_bytes(parse_po(po.read_text(encoding="utf-8"), str(po))))
        written.append(mo)
    return written


def _string(token: str, name: str, lineno: int) -> str:
    token = token.strip()
    if len(token) < 2 or not token.startswith('"') or not token.endswith('"'):
        raise ValueError(f"{name}:{lineno}: expected a quoted string")
    try:
        value = ast.literal_eval(token)
    except (ValueError, SyntaxError):
        raise ValueError(f"{name}:{lineno}: malformed string {token[:40]!r}") from None
    if not isinstance(value, str):
        raise ValueError(f"{name}:{lineno}: malformed string")
    return value


if __name__ == "__main__":
    for path in compile_all():
        sys.stdout.write(f"{path}\n")
