"""Local time where a person reads (issue 15 item 2): ``[dock] timezone`` (an IANA name,
default the system's), times as ``2026年12月01日 09:10:00`` / ``2026-12-01 09:10:00``,
lengths as H:MM:SS; a bad zone name is a config error (exit 78) naming it. And the PDF
font helper every printed document uses: embedded, or a clear error naming the package."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockd import clock, i18n
from dockd.config import parse_config
from dockd.errors import ConfigError
from tests.conftest import run_dockd

RECORDED = dt.datetime(2026, 12, 1, 1, 10, 0, 500_000, tzinfo=dt.UTC)  # 09:10 in Shanghai
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


@pytest.fixture
def zh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANGUAGE", "zh_CN")


@pytest.fixture
def en(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANGUAGE", "en")


def test_time_in_chinese_is_the_issue_s_form(zh: None) -> None:
    assert i18n.local_time(RECORDED, SHANGHAI) == "2026年12月01日 09:10:00"
    assert i18n.local_date(dt.date(2026, 12, 1)) == "2026年12月01日"


def test_time_in_english_is_as_plain(en: None) -> None:
    assert i18n.local_time(RECORDED, SHANGHAI) == "2026-12-01 09:10:00"
    assert i18n.local_time(RECORDED, dt.UTC) == "2026-12-01 01:10:00"
    assert i18n.local_time(RECORDED, SHANGHAI, language="zh_CN") == "2026年12月01日 09:10:00"


@pytest.mark.parametrize("seconds,text", [(3.0, "0:00:03"), (0.4, "0:00:00"), (59.5, "0:01:00"),
                                          (3725, "1:02:05"), (36000, "10:00:00")])
def test_length_is_hours_minutes_seconds(seconds: float, text: str) -> None:
    assert i18n.length_text(seconds) == text


@given(st.floats(min_value=0, max_value=10 ** 7, allow_nan=False))
def test_length_reads_back_as_the_rounded_seconds(seconds: float) -> None:
    match = re.fullmatch(r"(\d+):([0-5]\d):([0-5]\d)", i18n.length_text(seconds))
    assert match is not None
    h, m, s = map(int, match.groups())
    assert h * 3600 + m * 60 + s == round(seconds)


@given(st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2099, 1, 1),
                    timezones=st.just(dt.UTC)))
def test_local_time_reads_back_as_the_same_second(moment: dt.datetime) -> None:
    text = i18n.local_time(moment, SHANGHAI, language="zh_CN")
    back = dt.datetime.strptime(text, "%Y年%m月%d日 %H:%M:%S").replace(tzinfo=SHANGHAI)
    assert back == moment.replace(microsecond=0)


def test_timezone_config_names_an_iana_zone() -> None:
    cfg = parse_config({"dock": {"timezone": "Asia/Shanghai"}})
    assert cfg.dock.timezone == "Asia/Shanghai"
    assert cfg.dock.tz.utcoffset(RECORDED) == dt.timedelta(hours=8)


@pytest.mark.parametrize("bad", ["Asia/Shanghia", "UTC+8", "+08:00", "../../etc/passwd", "x" * 300])
def test_bad_timezone_is_a_config_error_naming_it(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"dock\.timezone: .*not an IANA time zone") as info:
        parse_config({"dock": {"timezone": bad}})
    assert repr(bad)[:40] in str(info.value)


def test_cli_with_a_bad_timezone_exits_78_naming_it(tmp_path: Path) -> None:
    cfg = tmp_path / "dockd.toml"
    cfg.write_text(f'[dock]\nstore_dir = "{tmp_path / "store"}"\ntimezone = "Asia/Pekin"\n',
                   encoding="utf-8")
    done = run_dockd(["catalog", "--config", cfg])
    assert done.returncode == 78, done.stderr
    assert "dock.timezone" in done.stderr and "Asia/Pekin" in done.stderr
    assert not (tmp_path / "store").exists()
    done = run_dockd(["check-config", "--config", cfg])
    assert done.returncode == 78 and "Asia/Pekin" in done.stdout + done.stderr


def test_the_old_fixed_offset_key_says_what_replaced_it() -> None:
    with pytest.raises(ConfigError, match=r"records\.utc_offset: .*\[dock\] timezone"):
        parse_config({"records": {"utc_offset": "+08:00"}})


def test_default_is_the_system_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/Sao_Paulo")
    assert parse_config({}).dock.tz == zoneinfo.ZoneInfo("America/Sao_Paulo")
    monkeypatch.setenv("TZ", "Nowhere/Atlantis")  # a wrong TZ falls back to /etc/localtime
    fallback = clock.system_zone()
    assert fallback.utcoffset(RECORDED) is not None


def test_system_zone_follows_etc_localtime(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.delenv("TZ", raising=False)
    link = tmp_path / "localtime"
    link.symlink_to("/usr/share/zoneinfo/Asia/Shanghai")
    monkeypatch.setattr(clock, "LOCALTIME", str(link))
    assert clock.system_zone() == zoneinfo.ZoneInfo("Asia/Shanghai")
    copy = tmp_path / "copied"
    copy.write_bytes(Path("/usr/share/zoneinfo/Asia/Shanghai").read_bytes())
    monkeypatch.setattr(clock, "LOCALTIME", str(copy))
    assert clock.system_zone().utcoffset(RECORDED) == dt.timedelta(hours=8)
    monkeypatch.setattr(clock, "LOCALTIME", str(tmp_path / "absent"))
    assert clock.system_zone() is dt.UTC


# -- the PDF font ----------------------------------------------------------------------

def test_missing_font_names_the_debian_package(tmp_path: Path) -> None:
    from dockd.records.pdf import FontMissingError, register_font

    with pytest.raises(FontMissingError, match="fonts-wqy-zenhei") as info:
        register_font(tmp_path / "gone.ttc")
    assert info.value.exit_code == 69
    not_a_font = tmp_path / "fake.ttf"
    not_a_font.write_bytes(b"\x00" * 64)
    with pytest.raises(FontMissingError, match=r"fake\.ttf"):
        register_font(not_a_font)


def test_text_the_font_cannot_draw_is_refused() -> None:
    from dockd.records.pdf import FontMissingError, check_glyphs, register_font

    font = register_font()
    check_glyphs(font, ["执法记录仪 赵六 城关镇 — 2026年12月01日 09:10:00 Hikvision DSJ-X1"])
    with pytest.raises(FontMissingError, match=r"U\+1F600"):
        check_glyphs(font, ["赵六 \U0001F600"])


def test_pdf_embeds_its_only_font(tmp_path: Path) -> None:
    import subprocess

    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import Paragraph

    from dockd.records.pdf import document, page_of, register_font

    font = register_font()
    out = tmp_path / "x.pdf"
    doc = document(out, font, A4, "t", lambda n, total: page_of(n, total, "zh_CN"))
    doc.build([Paragraph("执法记录仪 ABC", ParagraphStyle("p", fontName=font))])
    fonts = subprocess.run(["pdffonts", str(out)], capture_output=True, text=True,
                           check=True).stdout.splitlines()[2:]
    assert len(fonts) == 1 and "WenQuanYi" in fonts[0]
    assert fonts[0].split()[-5] == "yes"  # emb
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "执法记录仪" in text and "第 1 页，共 1 页" in text
