"""Windows code page 936 (the "ANSI" code page of Chinese Windows), as recorder stations use it.

The stations that write officer and unit names into GA/T 947 recorders decode and encode them
with .NET ``Encoding.Default``, i.e. CP936 on Chinese Windows. Python's ``gbk`` codec is CP936
minus two things Windows has:

* byte 0x80 is the euro sign;
* the three **user-defined areas** map to the Private Use Area, in order:
  AAA1–AFFE → U+E000–U+E233, F8A1–FEFE → U+E234–U+E4C5, A140–A7A0 → U+E4C6–U+E765.
  Bureaus put rare characters of names (生僻字) there with the Windows private character
  editor, so a name may hold them, and ``gbk`` refuses the whole field.

Pure functions; ``ValueError`` names the first byte (or character) that has no mapping.
"""

from __future__ import annotations

EURO = "\u20ac"
# (first lead, last lead, first trail, last trail, first code point); trail 0x7F never occurs.
_USER_AREAS = (
    (0xAA, 0xAF, 0xA1, 0xFE, 0xE000),
    (0xF8, 0xFE, 0xA1, 0xFE, 0xE234),
    (0xA1, 0xA7, 0x40, 0xA0, 0xE4C6),
)


def decode(raw: bytes) -> str:
    """CP936 bytes → text; ``ValueError`` at the first byte sequence CP936 does not define."""
    out: list[str] = []
    i = 0
    while i < len(raw):
        lead = raw[i]
        if lead < 0x80:
            out.append(chr(lead))
            i += 1
            continue
        if lead == 0x80:
            out.append(EURO)
            i += 1
            continue
        if lead == 0xFF or i + 1 == len(raw):
            raise ValueError(f"byte {lead:#04x} at offset {i} starts no CP936 character")
        trail = raw[i + 1]
        try:
            out.append(raw[i:i + 2].decode("gbk"))
        except UnicodeDecodeError:
            char = _user_defined(lead, trail)
            if char is None:
                raise ValueError(f"bytes {lead:02X} {trail:02X} at offset {i} are not a CP936 "
                                 f"character") from None
            out.append(char)
        i += 2
    return "".join(out)


def encode(text: str) -> bytes:
    """Text → CP936 bytes (user-defined characters included); ``ValueError`` otherwise."""
    out = bytearray()
    for index, char in enumerate(text):
        if char == EURO:
            out.append(0x80)
            continue
        try:
            out += char.encode("gbk")
            continue
        except UnicodeEncodeError:
            pair = _user_defined_bytes(ord(char))
        if pair is None:
            raise ValueError(f"character {char!r} at position {index} has no CP936 code")
        out += pair
    return bytes(out)


def _user_defined(lead: int, trail: int) -> str | None:
    for first, last, t_first, t_last, base in _USER_AREAS:
        if first <= lead <= last and t_first <= trail <= t_last and trail != 0x7F:
            per_row = t_last - t_first + 1 - (1 if t_first <= 0x7F <= t_last else 0)
            column = trail - t_first - (1 if trail > 0x7F >= t_first else 0)
            return chr(base + (lead - first) * per_row + column)
    return None


def _user_defined_bytes(code: int) -> bytes | None:
    for first, last, t_first, t_last, base in _USER_AREAS:
        per_row = t_last - t_first + 1 - (1 if t_first <= 0x7F <= t_last else 0)
        offset = code - base
        if 0 <= offset < (last - first + 1) * per_row:
            row, column = divmod(offset, per_row)
            trail = t_first + column
            if trail >= 0x7F and t_first <= 0x7F:
                trail += 1
            return bytes([first + row, trail])
    return None
