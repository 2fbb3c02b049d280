"""The ledger's systemd units and example config: systemd accepts the units as installed,
they run commands this dockd has, and the documented config parses."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockd.config import load_config, parse_config
from dockd.errors import ConfigError
from tests.conftest import REPO_ROOT, run_dockd


@pytest.mark.parametrize("unit", ["dockd-ledger.service", "dockd-ledger-web.service"])
def test_the_units_verify_and_run_existing_commands(tmp_path: Path, unit: str) -> None:
    text = (REPO_ROOT / "systemd" / unit).read_text()
    dockd = Path(sys.executable).parent / "dockd"
    installed = tmp_path / unit
    installed.write_text(text.replace("/opt/dockd/venv/bin/dockd", str(dockd)))
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(text)
    argv = parser["Service"]["ExecStart"].split()
    assert argv[1:3] == ["ledger", "run" if unit == "dockd-ledger.service" else "serve"]
    assert argv[3:] == ["--config", "/etc/dockd/ledger.toml"]
    assert run_dockd([*argv[1:3], "--help"]).returncode == 0
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: ./dev installs systemd")
    checked = subprocess.run(["systemd-analyze", "verify", "--man=no", str(installed)],
                             capture_output=True, text=True)
    assert checked.returncode == 0 and not checked.stderr, checked.stderr


def test_the_example_config_parses() -> None:
    section = load_config(REPO_ROOT / "config" / "ledger.toml").ledger
    assert section is not None
    assert section.share_group == "ledger" and section.archive is not None
    assert section.web is not None and section.web.auth == "basic"
    assert section.mqtt.broker.tls and section.mqtt.client_id == "dockd-ledger-1"

GOOD = {"database": "postgresql://ledger@db/ledger", "mqtt": {"broker": "mqtt://b:1883"}}


@pytest.mark.parametrize(("change", "message"), [
    ({"database": "mysql://x"}, "ledger.database: 'mysql://x' is not valid; expected a postgresql"),
    ({"database": "postgresql://u:pw@db/x"}, "database_password_file"),
    ({"batch_max": 5000, "receive_maximum": 100}, "ledger.batch_max: must not exceed"),
    ({"share_group": "a/b"}, "ledger.share_group"),
    ({"timezone": "Mars/Olympus"}, "ledger.timezone"),
    ({"gap_grace_s": -1}, "ledger.gap_grace_s"),
    ({"bogus": 1}, "ledger.bogus: unknown key"),
    ({"web": {"auth": "basic"}}, "ledger.web.users_file"),
    ({"web": {"users_file": "/u", "listen": "nowhere"}}, "ledger.web.listen"),
    ({"web": {"users_file": "/u"}}, "ledger.web.tls_cert_file: HTTP basic auth sends"),
    ({"web": {"auth": "proxy", "proxy_trusted": ["not-an-ip"]}}, "ledger.web.proxy_trusted"),
    ({"mqtt": {"broker": "http://b"}}, "ledger.mqtt.broker"),
])
def test_bad_ledger_config_names_the_key(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_config({"ledger": {**GOOD, **change}})


_values = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=False),
                    st.text(max_size=30), st.lists(st.text(max_size=5), max_size=3))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["database", "share_group", "batch_max", "batch_wait_s",
                                        "receive_maximum", "max_payload_bytes", "gap_grace_s",
                                        "timezone", "web", "mqtt", "archive", "other"]),
                       _values, max_size=6))
def test_any_ledger_section_is_accepted_or_refused_with_a_config_error(data: dict[str, object]
                                                                      ) -> None:
    try:
        parse_config({"ledger": {**GOOD, **data}})
    except ConfigError as exc:
        assert str(exc).startswith("ledger")


def test_every_stored_sentence_has_a_chinese_form_and_survives_its_json() -> None:
    from dockd.i18n import Note, Sentence
    from dockd.ledger import notes
    from dockd.ledger.words import words
    from dockd.store.custody_check import range_note

    zh = words("zh_CN")
    untranslated = [s.code for s in Sentence.known.values() if zh(s.template) == s.template]
    assert not untranslated, "add to dockd_ledger.po: " + ", ".join(untranslated)
    assert {"label.schema", "gap.missing", "record.fields", "fork.same_event_id"} <= set(
        Sentence.known)
    note = notes.PARTLY_FILLED(filled=[notes.FILLED_FROM(count=2, source="archive")],
                               missing=[range_note(4, 9), range_note(12, 12)])
    assert Note.from_json(note.to_json()) == note
    assert str(note) == "partly filled (2 from archive); still missing: seq 4-9, seq 12"
    assert note.render(zh) == "部分补齐（2 条来自 archive）；仍缺：序号 4–9, 序号 12"
    with pytest.raises(TypeError):
        notes.GAP(lo=1, hi=2)
    # Every rejection code has its words (the first part of a `rejected` alert).
    from dockd.ledger import consumer, judge
    assert {*judge.CODES, consumer.UNSTORABLE} <= set(notes.CODE_WORDS)


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@given(code=st.sampled_from(["link.not_onto", "rejected", "gap.partly_filled",
                             "fork.same_event_id", "nope"]), data=st.data(), other=_JSON)
def test_whatever_a_note_column_holds_the_page_shows_a_sentence_or_the_text(
        code: str, data: st.DataObject, other: Any) -> None:
    from dockd.i18n import Sentence
    from dockd.ledger.notes import shown
    from dockd.ledger.words import words

    names = sorted(Sentence.known[code].names) if code in Sentence.known else ["x"]
    args = data.draw(st.fixed_dictionaries({n: _JSON for n in names}))  # the right names
    for stored in ({"code": code, "args": args}, {"code": other, "args": {}}, other):
        for language in ("zh_CN", "en"):
            assert isinstance(shown(words(language), stored, "kept text"), str)
