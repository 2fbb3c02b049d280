"""The copier's messages (dockd.store.copier_messages): what goes through comes back the
same, and anything else is a CopierProtocolError, never a crash or a path followed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockd.store.copier_messages import (
    HEAD_LIMIT,
    CopiedAnswer,
    CopierProtocolError,
    FailedAnswer,
    Report,
    StoreAnswer,
    decode_report,
    decode_request,
    encode_report,
    encode_request,
)
from dockd.store.outcomes import FailReason
from dockd.store.source import EntryKind, SourceEntry

T = TypeVar("T")
ALGORITHMS = frozenset({"sha256", "xxh128", "c4"})
DIGESTS = {"sha256": "ab" * 32, "xxh128": "cd" * 16, "c4": "c4" + "Zz9" * 29}

counts = st.integers(0, (1 << 63) - 1)
copied = st.builds(CopiedAnswer, counts, st.integers(0, 10**12).map(lambda n: f"{n}.part"),
                   counts, st.just(DIGESTS), st.binary(max_size=HEAD_LIMIT),
                   st.integers(-(1 << 62), 1 << 62))
failed = st.builds(FailedAnswer, counts, st.sampled_from(list(FailReason)),
                   st.text(max_size=200))
store = st.builds(StoreAnswer, counts, st.sampled_from(["full", "unavailable"]),
                  st.text(max_size=200))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner,
                                                               max_size=5),
    max_leaves=30)


@settings(max_examples=200)
@given(bytes_read=st.integers(-(1 << 40), 1 << 40),
       answers=st.lists(st.one_of(copied, failed, store), max_size=20))
def test_a_report_comes_back_as_it_was_sent(bytes_read: int, answers: list[Any]) -> None:
    report = decode_report(encode_report(bytes_read, answers), ALGORITHMS)
    assert report.bytes_read == bytes_read
    assert report.answers == answers


@settings(max_examples=200)
@given(paths=st.lists(st.binary(min_size=1, max_size=300).filter(
    lambda p: not p.startswith(b"/") and b"\0" not in p and b".." not in p.split(b"/")),
    max_size=20), size=counts, mtime=st.integers(-(1 << 62), 1 << 62))
def test_a_request_comes_back_as_it_was_sent_names_in_any_bytes(
        paths: list[bytes], size: int, mtime: int) -> None:
    files = [(i, SourceEntry(p, EntryKind.FILE, size, mtime, 7, i)) for i, p in enumerate(paths)]
    assert decode_request(encode_request(files)) == files


@settings(max_examples=300)
@given(data=st.binary(max_size=300))
def test_random_bytes_are_refused_cleanly(data: bytes) -> None:
    """Nothing but CopierProtocolError comes out of bytes that are not a message (a
    UnicodeDecodeError, a RecursionError, a KeyError would end the session)."""
    report = _or_refused(decode_report, data, ALGORITHMS)
    assert report is None or isinstance(report, Report)
    files = _or_refused(decode_request, data)
    assert files is None or isinstance(files, list)


def test_deeply_nested_json_is_refused_not_a_recursion_error() -> None:
    for decode in (lambda d: decode_report(d, ALGORITHMS), decode_request):
        with pytest.raises(CopierProtocolError):
            decode(b"[" * 100_000 + b"]" * 100_000)


@settings(max_examples=300)
@given(doc=json_values, answers=st.lists(json_values, max_size=4))
def test_any_json_is_either_a_valid_message_or_refused(doc: Any, answers: list[Any]) -> None:
    for message in (doc, {"bytes": 0, "answers": answers}, {"files": answers}):
        data = json.dumps(message).encode()
        report = _or_refused(decode_report, data, ALGORITHMS)
        assert report is None or all(isinstance(a, CopiedAnswer | FailedAnswer | StoreAnswer)
                                     for a in report.answers)
        files = _or_refused(decode_request, data)
        assert files is None or all(e.relpath and not e.relpath.startswith(b"/")
                                    for _o, e in files)


def _or_refused(decode: Callable[..., T], *args: Any) -> T | None:
    """What ``decode(*args)`` gives, or None when it refuses with CopierProtocolError
    (anything else it raises fails the test)."""
    try:
        return decode(*args)
    except CopierProtocolError:
        return None


def _staged(**change: Any) -> bytes:
    answer = {"order": 1, "staged": "7.part", "size": 3, "digests": DIGESTS, "head": "YWJj",
              "mtime_ns": 5} | change
    return json.dumps({"bytes": 3, "answers": [answer]}).encode()


def test_the_valid_staged_answer_used_below_is_accepted() -> None:
    (answer,) = decode_report(_staged(), ALGORITHMS).answers
    assert answer == CopiedAnswer(1, "7.part", 3, DIGESTS, b"abc", 5)


@pytest.mark.parametrize("change, why", [
    ({"staged": "../../objects/x.part"}, "name is not one the copier makes"),
    ({"staged": "/etc/passwd"}, "name is not one the copier makes"),
    ({"staged": "7.part/.."}, "name is not one the copier makes"),
    ({"digests": {"sha256": "ab" * 32}}, "digests are not the session's"),
    ({"digests": DIGESTS | {"md5": "00"}}, "digests are not the session's"),
    ({"digests": DIGESTS | {"sha256": "not hex!"}}, "digests are not the session's"),
    ({"order": True}, "order is not a 64-bit integer"),
    ({"order": -1}, "order is negative"),
    ({"size": 1 << 64}, "size is not a 64-bit integer"),
    ({"size": 1.5}, "size is not a 64-bit integer"),
    ({"head": "YWJj!"}, "head is not base64"),
    ({"head": "A" * (HEAD_LIMIT * 2)}, "first bytes are too long"),
])
def test_a_staged_answer_out_of_the_protocol_is_refused(change: dict[str, Any], why: str) -> None:
    with pytest.raises(CopierProtocolError, match=why):
        decode_report(_staged(**change), ALGORITHMS)


@pytest.mark.parametrize("answer, why", [
    ({"order": 1, "failed": "gone_fishing", "detail": ""}, "failure reason"),
    ({"order": 1, "failed": "read_error"}, "without its detail"),
    ({"order": 1, "store": "on_fire", "detail": ""}, "neither staged, failed nor"),
    ([1, 2], "not an object"),
])
def test_other_answers_out_of_the_protocol_are_refused(answer: Any, why: str) -> None:
    with pytest.raises(CopierProtocolError, match=why):
        decode_report(json.dumps({"bytes": 0, "answers": [answer]}).encode(), ALGORITHMS)


@pytest.mark.parametrize("path", [b"/etc/passwd", b"DCIM/../../etc", b"..", b"", b"a\0b"])
def test_a_request_for_a_path_outside_the_volume_is_refused(path: bytes) -> None:
    import base64
    data = json.dumps({"files": [[0, base64.b64encode(path).decode(), 1, 1, 1, 1]]}).encode()
    with pytest.raises(CopierProtocolError, match="outside the volume"):
        decode_request(data)
