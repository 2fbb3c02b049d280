"""Language (gettext): the zh_CN catalog covers every message of the records code, the
committed .mo is the .po compiled, the environment chooses the language, and the .po
compiler is robust."""

from __future__ import annotations

import ast
import contextlib
import gettext
import importlib
import io
import re
import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockd import i18n
from dockd.errors import DockdError
from dockd.records.pocompile import mo_bytes, parse_po
from tests.conftest import REPO_ROOT, run_dockd

PO = REPO_ROOT / "dockd/locale/zh_CN/LC_MESSAGES/dockd.po"
MO = PO.with_suffix(".mo")
# Every command's texts (help, errors, output), the records code, the registry's words, the
# errors of the config, the daemon, the devices, the archive, the MQTT reporter, the store's
# catalog, keys and guard, the ledger (and its web page), the simulators and the LEDs' sysfs.
SOURCES = sorted((REPO_ROOT / "dockd/records").glob("*.py")) + sorted(
    (REPO_ROOT / "dockd/commands").glob("*.py")) + [
    REPO_ROOT / f"dockd/{n}.py"
    for n in ("cli", "daemon", "store/registry", "store/queries", "store/ingest", "store/catalog",
              "store/keys", "store/key_rotation", "store/guard", "report/metrics")] + [
    path for room in ("config", "records/archive", "report/mqtt", "devices", "ledger", "sim")
    for path in sorted((REPO_ROOT / "dockd" / room).rglob("*.py"))] + [
    REPO_ROOT / "dockd/report/leds/sysfs.py"]


# The custody checks shared with `dockd watch --verify`: their sentences are shown on the
# ledger's page and reports, so the ledger's catalog translates them.
LEDGER_SHARED = [REPO_ROOT / "dockd/store/custody_check.py"]


def _ledger_words(path: Path) -> bool:
    """A ledger module whose ``_`` is the ledger's own translator (dockd/ledger/words.py,
    domain dockd_ledger: its page and reports), not dockd's."""
    if path in LEDGER_SHARED:
        return True
    speaks_dockd = any(isinstance(node, ast.ImportFrom) and node.module == "dockd.i18n"
                       and any(n.name == "_" for n in node.names)
                       for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))))
    return (REPO_ROOT / "dockd/ledger") in path.parents and not speaks_dockd


def _messages(ledger: bool = False) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in SOURCES + LEDGER_SHARED:
        if _ledger_words(path) != ledger:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) in
                    ("_", "N_", "bilingual") and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                found.setdefault(node.args[0].value, path)
    return found


def test_every_records_message_has_a_chinese_translation() -> None:
    catalog = parse_po(PO.read_text(encoding="utf-8"))
    messages = _messages()
    assert len(messages) > 150
    _assert_translated(messages, catalog, "dockd.po")


def test_every_ledger_word_has_a_chinese_translation() -> None:
    """The ledger modules that speak its own domain find every word in dockd_ledger.po."""
    catalog = parse_po(PO.with_name("dockd_ledger.po").read_text(encoding="utf-8"))
    messages = _messages(ledger=True)
    assert "seq {lo}-{hi}" in messages  # the shared custody checks are read too
    # The page's templates: every _("…") in them.
    for template in sorted((REPO_ROOT / "dockd/ledger/web/templates").glob("*.html")):
        for found in re.findall(r'_\("((?:[^"\\]|\\.)*)"\)', template.read_text("utf-8")):
            messages.setdefault(found, template)
    assert "seq {seq}" in messages and "Open" in messages
    _assert_translated(messages, catalog, "dockd_ledger.po")


def _assert_translated(messages: dict[str, Path], catalog: dict[str, str], po: str) -> None:
    """Every message has its translation in ``catalog``, with the same placeholders."""
    missing = [f"{m!r} ({p.name})" for m, p in messages.items() if m not in catalog]
    assert not missing, f"add to {po}: " + "; ".join(missing)
    fmt = string.Formatter()
    for message in messages:
        wanted = {f[1] for f in fmt.parse(message) if f[1] is not None}
        got = {f[1] for f in fmt.parse(catalog[message]) if f[1] is not None}
        assert wanted == got, f"placeholders differ for {message!r}"


def test_committed_mo_is_the_po_compiled() -> None:
    with open(MO, "rb") as fh:
        compiled = gettext.GNUTranslations(fh)._catalog  # type: ignore[attr-defined]
    expected = parse_po(PO.read_text(encoding="utf-8"))
    assert {k: v for k, v in compiled.items() if k} == {k: v for k, v in expected.items() if k}, \
        "dockd.mo is stale: run .venv/bin/python -m dockd.records.pocompile"


@pytest.mark.parametrize("env,expected", [
    ({"LANGUAGE": "zh_CN"}, "无保全"),
    ({"LC_ALL": "zh_CN.UTF-8"}, "无保全"),
    ({"LC_MESSAGES": "zh_CN.UTF-8"}, "无保全"),
    ({"LANG": "zh_CN.UTF-8"}, "无保全"),
    ({"LANG": "C"}, "no holds"),
    ({"LC_ALL": "C", "LANG": "zh_CN.UTF-8"}, "no holds"),  # LC_ALL beats LANG
    ({"LANGUAGE": "en", "LANG": "zh_CN.UTF-8"}, "no holds"),
    ({}, "no holds"),
])
def test_environment_chooses_the_language(monkeypatch, env: dict[str, str],
                                          expected: str) -> None:
    for key in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert i18n._("no holds") == expected
    assert i18n.in_language("zh_CN", "Unit seal") == "本单位印章"


def test_cli_errors_in_chinese(tmp_path: Path) -> None:
    done = run_dockd(["hold", "list", "--store", tmp_path / "none"], env={"LANGUAGE": "zh_CN"})
    assert done.returncode == 2
    cfg = tmp_path / "c.toml"
    cfg.write_text("[records]\nretention_days = 30\n", encoding="utf-8")
    done = run_dockd(["prune", "--config", cfg], env={"LANGUAGE": "zh_CN"})
    assert done.returncode == 78 and "法定最短保存期" in done.stderr


def test_config_problems_and_their_hints_in_chinese(tmp_path: Path) -> None:
    """check-config in zh_CN: the problems of [mqtt] and [archive] and the hints they give
    (what a valid value looks like) are Chinese, one line each, nothing in English."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('[archive]\nbucket = "x"\n[mqtt]\nbroker = "mqtt://u:p@host"\n',
                   encoding="utf-8")
    zh = run_dockd(["check-config", "--config", cfg], env={"LANGUAGE": "zh_CN"})
    en = run_dockd(["check-config", "--config", cfg], env={"LANGUAGE": "en"})
    assert zh.returncode == en.returncode == 78 and "Traceback" not in zh.stderr
    assert "mqtt.broker: 请把用户名和密码写在 credentials_file 中" in zh.stderr
    assert "archive.bucket: 'x' 无效；应为 S3 存储桶名称" in zh.stderr
    assert "archive.endpoint_url: 缺失；应为 http:// 或 https:// 地址" in zh.stderr
    assert "mqtt.broker: put the username and password in credentials_file" in en.stderr
    assert "expected an S3 bucket name" in en.stderr
    assert "expected" not in zh.stderr and "missing" not in zh.stderr


def test_the_daemon_speaks_english_whatever_the_locale(tmp_path: Path) -> None:
    """The daemon's texts (device errors as fault details) become custody events, MQTT
    payloads and journald lines: English even on a box whose LANG is Chinese, while the
    same problem in a command is Chinese."""
    cfg = tmp_path / "c.toml"
    cfg.write_text("[records]\nretention_days = 30\n", encoding="utf-8")
    env = {"LANGUAGE": "zh_CN", "LANG": "zh_CN.UTF-8"}
    daemon = run_dockd(["run", "--config", cfg], env=env)
    command = run_dockd(["prune", "--config", cfg], env=env)
    assert daemon.returncode == command.returncode == 78
    assert "30 days is below the legal minimum of 90 days" in daemon.stderr
    assert not any("\u4e00" <= c <= "\u9fff" for c in daemon.stderr)
    assert "法定最短保存期" in command.stderr


@pytest.mark.parametrize("text,message", [
    ('msgid "a"\n', "without msgstr"),
    ('msgstr "a"\n', "msgstr without msgid"),
    ('"x"\n', "outside an entry"),
    ('msgid "a"\nmsgstr "b"\nmsgid "a"\nmsgstr "c"\n', "duplicate"),
    ('msgid a\nmsgstr "b"\n', "quoted string"),
    ('msgid "a"\nmsgid_plural "as"\n', "unsupported"),
    ('msgid "\\q\nmsgstr ""\n', "quoted string|malformed"),
])
def test_po_parser_refuses_what_it_does_not_understand(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_po(text)


def test_fuzzy_and_untranslated_entries_are_left_out() -> None:
    text = '#, fuzzy\nmsgid "a"\nmsgstr "A"\n\nmsgid "b"\nmsgstr ""\n\nmsgid "c"\nmsgstr "C"\n'
    assert parse_po(text) == {"c": "C"}


@given(st.dictionaries(st.text(min_size=1).filter(lambda s: "\x00" not in s),
                       st.text(min_size=1).filter(lambda s: "\x00" not in s), max_size=20))
def test_mo_round_trips_through_gettext(catalog: dict[str, str]) -> None:
    header = {"": "Content-Type: text/plain; charset=UTF-8\n"}
    data = mo_bytes({**catalog, **header})
    parsed = gettext.GNUTranslations(io.BytesIO(data))._catalog  # type: ignore[attr-defined]
    assert {k: v for k, v in parsed.items() if k} == catalog


@given(st.text(max_size=300))
def test_po_parser_never_crashes_on_random_text(text: str) -> None:
    with contextlib.suppress(ValueError):  # refusing is fine; any other exception is a bug
        parse_po(text)


GLOSSARY = REPO_ROOT / "docs/glossary.md"
CATALOGS = [PO, PO.with_name("dockd_ledger.po")]


def _glossary_rows() -> list[tuple[str, str, list[str]]]:
    rows = []
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] not in ("English", "---"):
            rows.append((cells[0], cells[1], [w.strip() for w in cells[2].split(",") if w]))
    return rows


def _chinese_texts() -> list[tuple[str, str]]:
    """(where, text) of every translation and every Chinese string literal of the code."""
    out = []
    for po in CATALOGS:
        for msgid, msgstr in parse_po(po.read_text(encoding="utf-8")).items():
            if msgid:
                out.append((f"{po.name}: {msgid!r}", msgstr))
    for path in (REPO_ROOT / "dockd").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and any("\u4e00" <= c <= "\u9fff" for c in node.value):
                out.append((f"{path.relative_to(REPO_ROOT)}:{node.lineno}", node.value))
    return out


def test_the_glossary_is_used() -> None:
    rows = _glossary_rows()
    assert ("offload", "采集", ["卸载"]) in rows and len(rows) > 20
    texts = _chinese_texts()
    assert len(texts) > 300
    wrong = [f"{where}: {bad!r} (glossary: {zh})" for en, zh, nots in rows for bad in nots
             for where, text in texts if bad in text]
    assert not wrong, "\n".join(wrong)


def test_offload_is_never_called_export_in_chinese() -> None:
    wrong = []
    for po in CATALOGS:
        for msgid, msgstr in parse_po(po.read_text(encoding="utf-8")).items():
            words = msgid.lower()
            if ("offload" in words or "copying" in words) and "export" not in words \
                    and "导出" in msgstr:
                wrong.append(f"{po.name}: {msgid!r} -> {msgstr!r}")
    assert not wrong, "offload is 采集 (docs/glossary.md):\n" + "\n".join(wrong)


def test_every_error_of_the_commands_goes_through_the_catalog() -> None:
    """An error a command raises with a bare string or f-string would print in English
    whatever the language: each must be ``_("...").format(...)`` (then the test above checks
    its translation). Builtin exceptions (caught and reworded) and the .po compiler (a
    developer's tool) are left out."""
    import builtins

    # dockd's own exceptions whose names do not end in Error (RecorderGone, NoSdCard, ...).
    for path in SOURCES:
        importlib.import_module(".".join(path.relative_to(REPO_ROOT).with_suffix("").parts))
    ours, todo = set(), [DockdError]
    while todo:
        cls = todo.pop()
        ours.add(cls.__name__)
        todo += cls.__subclasses__()
    bare = []
    for path in SOURCES:
        if path.name == "pocompile.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            # Every construction, not only ``raise X(...)``: a helper may build the error.
            if not (isinstance(node, ast.Call) and node.args):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if (name.endswith("Error") or name in ours) and not hasattr(builtins, name) \
                    and isinstance(node.args[0], ast.JoinedStr | ast.Constant | ast.BinOp):
                bare.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert not bare, "wrap in _(): " + ", ".join(bare)
