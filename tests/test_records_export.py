"""Evidence export (rules art. 12(4), 13, 14): the manifest's art. 12(4) fields for a real
MP4 and for junk, the sign-off sheet PDF (rendered, with Chinese text), the ASC MHL history
(accepted by the reference tool), the ISO image (listed by xorriso, re-checked, tampering
found), the custody registration, the access register, and every refusal changing nothing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockd.records.cases import annotate_items, tag_items
from dockd.records.export import package_name
from dockd.records.fields import ART_12_4_FIELDS
from dockd.records.package import MANIFEST, DirectoryReader, verify_package
from tests.conftest import run_dockd
from tests.records_support import (
    T0,
    SettableClock,
    docked_event,
    enrol,
    ingest,
    make_mp4,
    open_clocked_store,
    snapshot,
)

CASE = "威自然资罚〔2026〕12号"
REG = ["--requester", "王法官", "--requester-unit", "威县人民法院", "--reason", "庭审质证",
       "--approved-by", "李局长"]


@pytest.fixture
def evidence(tmp_path: Path, ffmpeg: str) -> dict[str, object]:
    """A store with a real MP4 from an enrolled recorder and a junk file from an unknown
    one, both tagged with CASE; the MP4 annotated with its operator."""
    clock = SettableClock(T0)
    store = open_clocked_store(tmp_path / "store", clock)
    enrol(store, "CAM001", "Hikvision", "DSJ-X1", "0451", "赵六")
    docked_event(store, "CAM001", "0451", "赵六")
    mp4 = make_mp4(tmp_path / "make" / "clip.MP4").read_bytes()
    good = ingest(store, tmp_path / "src1", {"DCIM/20261123_083000.MP4": mp4})
    bad = ingest(store, tmp_path / "src2", {"DCIM/broken.MP4": b"\x00junk" * 100},
                 recorder="CAM777")
    shas = [good.files[0].sha256, bad.files[0].sha256]
    tag_items(store, CASE, shas, "clerk", "test", place="威县城关镇")
    annotate_items(store, [shas[0]], "clerk", "test", operator_name="钱七")
    store.close()
    return {"store": tmp_path / "store", "mp4": shas[0], "junk": shas[1]}


def _export(evidence: dict[str, object], out: Path, *extra: object, complete: bool = False,
            env: dict[str, str] | None = None):
    """Export CASE (whose junk file lacks most art. 12(4) fields: --allow-incomplete unless
    ``complete``)."""
    allow = [] if complete else ["--allow-incomplete"]
    return run_dockd(["export", "--case", CASE, *REG, "--out", out, "--store", evidence["store"],
                      "--json", *allow, *extra], env=env)


def test_manifest_has_every_art_12_4_field_known_or_null(evidence, tmp_path: Path) -> None:
    done = _export(evidence, tmp_path / "out")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text(encoding="utf-8"))
    assert (manifest["case"], manifest["requester"], manifest["approved_by"]) == \
        (CASE, "王法官", "李局长")
    by_sha = {r["sha256"]: r for r in manifest["recordings"]}
    for rec in by_sha.values():
        assert list(rec) == ["file", *ART_12_4_FIELDS, "size", "sha256"]
    mp4 = by_sha[evidence["mp4"]]
    assert mp4["officer_name"] == "赵六" and mp4["operator_name"] == "钱七"
    assert mp4["start_time"] == "2026-11-23T00:30:00.000000Z"
    assert mp4["end_time"].startswith("2026-11-23T00:30:0") and mp4["length_s"] > 1.5
    assert (mp4["device_brand"], mp4["device_model"], mp4["format"]) == \
        ("Hikvision", "DSJ-X1", "mp4")
    assert mp4["place"] == "威县城关镇"
    junk = by_sha[evidence["junk"]]
    # unknown stays null, never guessed: no metadata, no registry entry, no dock event
    for key in ("officer_name", "operator_name", "start_time", "end_time", "device_brand",
                "device_model", "format", "length_s"):
        assert junk[key] is None, key
    assert junk["place"] == "威县城关镇" and junk["size"] == 500
    for rec in manifest["recordings"]:
        data = (tmp_path / "out" / rec["file"]).read_bytes()
        import hashlib

        assert hashlib.sha256(data).hexdigest() == rec["sha256"]


def test_export_is_registered_in_the_custody_log(evidence, tmp_path: Path) -> None:
    result = json.loads(_export(evidence, tmp_path / "out", "--public").stdout)
    log = json.loads(run_dockd(["log", "--type", "export.created", "--json",
                                "--store", evidence["store"]]).stdout)
    assert len(log) == 1
    p = log[0]["payload"]
    assert (p["requester"], p["requester_unit"], p["reason"], p["approved_by"]) == \
        ("王法官", "威县人民法院", "庭审质证", "李局长")
    assert p["public_use"] is True and p["manifest_sha256"] == result["manifest_sha256"]
    assert sorted(p["items"]) == sorted([evidence["mp4"], evidence["junk"]])
    assert log[0]["time"] and log[0]["subject"] == result["export_id"]


def test_ascmhl_reference_tool_accepts_the_package(evidence, tmp_path: Path,
                                                   ascmhl_debug: Path) -> None:
    assert _export(evidence, tmp_path / "out").returncode == 0
    done = subprocess.run([str(ascmhl_debug), "verify", str(tmp_path / "out")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    (tmp_path / "out" / "files" / "0001_20261123_083000.MP4").chmod(0o644)
    with open(tmp_path / "out" / "files" / "0001_20261123_083000.MP4", "r+b") as fh:
        fh.seek(100)
        fh.write(b"X")
    done = subprocess.run([str(ascmhl_debug), "verify", str(tmp_path / "out")],
                          capture_output=True, text=True, check=False)
    assert done.returncode != 0


def _pdf_text(pdf: Path) -> str:
    text = subprocess.run(["pdftotext", "-raw", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    return "".join(text.split())  # narrow cells wrap labels over lines


def test_sheet_pdf_renders_with_chinese_and_english(evidence, tmp_path: Path) -> None:
    cfg = tmp_path / "dockd.toml"
    cfg.write_text(f'[dock]\nstore_dir = "{evidence["store"]}"\ntimezone = "Asia/Shanghai"\n'
                   '[records]\nunit_name = "威县公安局城关派出所"\n', encoding="utf-8")
    for language in ("zh_CN", "en"):
        out = tmp_path / f"out-{language}"
        done = run_dockd(["export", "--case", CASE, *REG, "--out", out, "--config", cfg,
                          "--allow-incomplete"], env={"LANGUAGE": language})
        assert done.returncode == 0, done.stderr
        pdf = out / "sign-off-sheet.pdf"
        fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True,
                               check=True).stdout.splitlines()[2:]
        assert fonts and all(line.split()[-5] == "yes" for line in fonts), fonts  # emb
        text = _pdf_text(pdf)
        for words in ("音像证据刻盘登记表", "Audio-visual evidence disc record",
                      "威县公安局城关派出所", "刻录人", "Burned by", "保管人", "Custodian",
                      "执法人员", "单位负责人", "Unit leader", "本单位印章", "Unit seal",
                      "摄录人员姓名", "设备品牌型号", "赵六", "钱七", "威县城关镇", "威县人民法院",
                      "李局长", "Hikvision", CASE, "1/1·2026_12", "0:00:02",
                      "第1页，共", "page1of"):
            assert "".join(words.split()) in text, (language, words)
        # the recording started 2026-11-23T00:30Z: 08:30 in Shanghai, to the second
        start = "2026年11月23日08:30:00" if language == "zh_CN" else "2026-11-2308:30:00"
        assert start in text and "00:30:00.000000Z" not in text
        # the junk file's missing fields are listed on the sheet
        assert "Missingart.12(4)fields" in text and "0002_broken.MP4" in text


def test_sheet_title_is_drawn_without_any_font_on_the_machine(evidence, tmp_path: Path) -> None:
    """Rendered with fontconfig pointed at an empty font directory: only the embedded font
    can draw the Chinese title, and the title area has dark pixels."""
    from PIL import Image

    assert _export(evidence, tmp_path / "out").returncode == 0
    empty = tmp_path / "fonts"
    empty.mkdir()
    conf = tmp_path / "fonts.conf"
    conf.write_text(f"<?xml version='1.0'?><fontconfig><dir>{empty}</dir>"
                    f"<cachedir>{tmp_path / 'cache'}</cachedir></fontconfig>")
    env = {"FONTCONFIG_FILE": str(conf), "PATH": "/usr/bin:/bin"}
    subprocess.run(["pdftoppm", "-r", "50", "-png", "-f", "1", "-l", "1",
                    str(tmp_path / "out" / "sign-off-sheet.pdf"), str(tmp_path / "page")],
                   check=True, env=env, capture_output=True)
    page = Image.open(tmp_path / "page-1.png").convert("L")
    width, height = page.size
    # the unit name and the Chinese half of the title (left of the centre line)
    title = page.crop((int(width * 0.27), int(height * 0.06), int(width * 0.45),
                       int(height * 0.13)))
    dark = sum(title.histogram()[:128])
    assert dark > 150, dark
    margin = page.crop((0, 0, width, int(height * 0.02)))  # above the unit name: blank
    assert sum(margin.histogram()[:128]) == 0


def test_missing_art_12_4_fields_refuse_the_export_listing_them(evidence,
                                                              tmp_path: Path) -> None:
    before = snapshot(evidence["store"])
    done = _export(evidence, tmp_path / "out", complete=True)
    assert done.returncode == 2
    assert "1 of 2 recording(s) lack art. 12(4) fields: broken.MP4" in done.stderr
    for field in ("Officer name", "Recording operator name", "Start time", "End time",
                  "Device brand", "Device model", "Format", "Length"):
        assert field in done.stderr, field
    assert "--allow-incomplete" in done.stderr and "dockd case annotate" in done.stderr
    assert not (tmp_path / "out").exists() and snapshot(evidence["store"]) == before
    zh = _export(evidence, tmp_path / "out", complete=True, env={"LANGUAGE": "zh_CN"})
    assert zh.returncode == 2 and "缺少第十二条第四项规定的信息" in zh.stderr


def test_allow_incomplete_records_what_is_missing_in_the_manifest(evidence,
                                                                 tmp_path: Path) -> None:
    assert _export(evidence, tmp_path / "out").returncode == 0
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["allow_incomplete"] is True
    assert manifest["missing_fields"] == [{"file": "files/0002_broken.MP4", "fields": [
        "officer_name", "operator_name", "start_time", "end_time", "device_brand",
        "device_model", "format", "length_s"]}]


def test_complete_export_needs_no_flag_and_reads_chronologically(tmp_path: Path,
                                                                  ffmpeg: str) -> None:
    """Three recordings made out of docking order, the operator from the officer (config):
    no field missing, no flag needed, rows in the order they were recorded."""
    clock = SettableClock(T0)
    store = open_clocked_store(tmp_path / "store", clock,
                               records={"operator_defaults_to_officer": True})
    enrol(store, "CAM001", "Hikvision", "DSJ-X1", "0451", "赵六")
    docked_event(store, "CAM001", "0451", "赵六")
    shas = []
    for i, created in enumerate(("2026-11-23T00:40:00Z", "2026-11-22T23:00:00Z",
                                 "2026-11-23T00:10:00Z")):
        mp4 = make_mp4(tmp_path / "m" / f"{i}.MP4", creation=created).read_bytes()
        shas.append(ingest(store, tmp_path / f"s{i}", {f"DCIM/c{i}.MP4": mp4}).files[0].sha256)
    tag_items(store, "C-9", shas, "clerk", "test", place="城关镇")
    store.close()
    cfg = tmp_path / "dockd.toml"
    cfg.write_text(f'[dock]\nstore_dir = "{tmp_path / "store"}"\n'
                   '[records]\noperator_defaults_to_officer = true\n', encoding="utf-8")
    done = run_dockd(["export", "--case", "C-9", *REG, "--out", tmp_path / "out",
                      "--config", cfg])
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text(encoding="utf-8"))
    assert [r["sha256"] for r in manifest["recordings"]] == [shas[1], shas[2], shas[0]]
    assert [r["file"] for r in manifest["recordings"]] == [
        "files/0001_c1.MP4", "files/0002_c2.MP4", "files/0003_c0.MP4"]
    assert {r["operator_name"] for r in manifest["recordings"]} == {"赵六"}
    assert manifest["missing_fields"] == [] and manifest["allow_incomplete"] is False


def test_missing_font_stops_the_export_naming_the_package(evidence, tmp_path: Path) -> None:
    before = snapshot(evidence["store"])
    cfg = tmp_path / "dockd.toml"
    cfg.write_text(f'[dock]\nstore_dir = "{evidence["store"]}"\n[records]\n'
                   f'pdf_font = "{tmp_path / "no-such-font.ttc"}"\n', encoding="utf-8")
    done = run_dockd(["export", "--case", CASE, *REG, "--out", tmp_path / "out", "--config",
                      cfg, "--allow-incomplete"])
    assert done.returncode == 69, done.stderr
    assert "fonts-wqy-zenhei" in done.stderr and "no-such-font.ttc" in done.stderr
    assert not (tmp_path / "out").exists() and snapshot(evidence["store"]) == before


@given(st.one_of(st.none(), st.text(max_size=80)))
def test_volume_label_follows_iso9660_rules(case_no: str | None) -> None:
    import re

    from dockd.records.iso import volume_label

    for disc, discs in ((1, 1), (2, 3), (12, 12)):
        label = volume_label(case_no, "8d1ab985-298f", disc, discs)
        assert re.fullmatch(r"[A-Z0-9_]{1,32}", label), label
        if discs > 1:
            assert label.endswith(f"_{disc}")


def test_volume_label_from_the_case_number() -> None:
    from dockd.records.iso import volume_label

    assert volume_label(CASE, "8d1ab985-298f") == "2026_12"
    assert volume_label("xz-2026/0042", "8d1ab985") == "XZ_2026_0042"
    assert volume_label("刑字号", "8d1ab985-298f") == "DOCKD_8D1AB985"
    assert volume_label(None, "8d1ab985-298f", 2, 3) == "DOCKD_8D1AB985_2"


def test_disc_can_be_checked_by_a_clerk_with_sha256sum(evidence, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _export(evidence, out).returncode == 0
    done = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True,
                          text=True, check=False, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout + done.stderr
    checked = {line.rsplit(": ", 1)[0] for line in done.stdout.splitlines()
               if line.endswith(": OK")}
    on_disc = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert checked == {p for p in on_disc if not p.startswith("ascmhl/")} - {"SHA256SUMS"}
    assert {"说明.txt", "README.txt", "custody/dock-public-key.pem", "custody/checkpoint.json",
            "custody/history.json", "custody/history.pdf", "manifest.json",
            "sign-off-sheet.pdf"} <= checked
    # a changed file is caught by the same command
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "manifest.json").chmod(0o644)
    with open(copy / "manifest.json", "ab") as fh:
        fh.write(b" ")
    bad = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=copy, capture_output=True,
                         text=True, check=False, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    assert bad.returncode == 1 and "manifest.json: FAILED" in bad.stdout


def test_readme_files_say_what_is_on_the_disc_and_how_to_check_it(evidence,
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _export(evidence, out).returncode == 0
    sums = dict(line.split("  ", 1)[::-1] for line in
                (out / "SHA256SUMS").read_text(encoding="utf-8").splitlines())
    for name, words in (("说明.txt", ("光盘内容", "sha256sum -c SHA256SUMS", "如何核对", CASE)),
                        ("README.txt", ("What is on this disc", "sha256sum -c SHA256SUMS",
                                        CASE))):
        raw = (out / name).read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw  # Notepad-safe
        text = raw.decode("utf-8-sig")
        for word in words:
            assert word in text, (name, word)
        for rel in sums:
            if rel.startswith("files/"):  # a certutil line per recording, Windows paths
                assert f"certutil -hashfile {rel.replace('/', chr(92))} SHA256" in text


def test_disc_carries_the_items_custody_history_under_a_signed_checkpoint(
        evidence, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from dockd.store.custody import checkpoint_from_dict

    out = tmp_path / "out"
    assert _export(evidence, out).returncode == 0
    history = json.loads((out / "custody/history.json").read_text(encoding="utf-8"))
    checkpoint = checkpoint_from_dict(json.loads(
        (out / "custody/checkpoint.json").read_text(encoding="utf-8")))
    key = load_pem_public_key((out / "custody/dock-public-key.pem").read_bytes())
    assert key.public_bytes_raw().hex() == checkpoint.public_key == history["public_key"]
    import base64

    key.verify(base64.b64decode(checkpoint.signature), checkpoint.signed_bytes())  # raises
    records = history["records"]
    subjects = {r["subject"] for r in records}
    assert {evidence["mp4"], evidence["junk"]} <= subjects
    types = {r["type"] for r in records}
    assert {"case.tagged", "item.annotated"} <= types
    assert max(r["seq"] for r in records) <= checkpoint.seq
    # the records are the dock's own: the same hashes as its custody log
    log = json.loads(run_dockd(["log", "--json", "--store", evidence["store"]]).stdout)
    by_seq = {r["seq"]: r["hash"] for r in log}
    assert all(by_seq[r["seq"]] == r["hash"] for r in records)
    text = _pdf_text(out / "custody/history.pdf")
    assert "监管链记录" in text and "case.tagged" in text


def test_iso_lists_verifies_and_tampering_is_found(evidence, tmp_path: Path) -> None:
    image = tmp_path / "evidence.iso"
    done = _export(evidence, tmp_path / "out", "--iso", image)
    assert done.returncode == 0, done.stderr
    listing = subprocess.run(["xorriso", "-indev", str(image), "-find", "/"],
                             capture_output=True, text=True, check=True).stdout
    for name in ("/manifest.json", "/sign-off-sheet.pdf", "/files/0001_20261123_083000.MP4",
                 "/files/0002_broken.MP4", "/ascmhl/ascmhl_chain.xml", "/SHA256SUMS",
                 "/说明.txt", "/README.txt", "/custody/history.pdf"):
        assert f"'{name}'" in listing, name
    pvd = subprocess.run(["xorriso", "-indev", str(image), "-pvd_info"], capture_output=True,
                         text=True, check=True).stdout
    assert "Volume Id    : 2026_12\n" in pvd  # from the case number
    ok = run_dockd(["export", "verify", image, "--store", evidence["store"]])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "matches the custody log" in ok.stdout
    tampered = tmp_path / "tampered.iso"
    data = bytearray(image.read_bytes())
    at = data.find(b"\x00junk\x00junk")
    assert at > 0
    data[at + 1:at + 5] = b"JUNK"
    tampered.write_bytes(data)
    bad = run_dockd(["export", "verify", tampered, "--json"])
    assert bad.returncode == 1
    diffs = json.loads(bad.stdout)["differences"]
    assert {d["path"] for d in diffs} == {"files/0002_broken.MP4"}
    assert all(d["kind"] == "altered" for d in diffs)


def test_verify_finds_missing_extra_and_rewritten_manifest(evidence, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _export(evidence, out).returncode == 0
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    for p in copy.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    assert run_dockd(["export", "verify", copy]).returncode == 0
    (copy / "files" / "0002_broken.MP4").unlink()
    (copy / "files" / "extra.bin").write_bytes(b"planted")
    done = run_dockd(["export", "verify", copy, "--json"])
    assert done.returncode == 1
    kinds = {(d["kind"], d["path"]) for d in json.loads(done.stdout)["differences"]}
    assert ("missing", "files/0002_broken.MP4") in kinds and ("extra", "files/extra.bin") in kinds
    # a consistently rewritten manifest is caught by the custody log's registered hash
    copy2 = tmp_path / "copy2"
    shutil.copytree(out, copy2)
    m = copy2 / MANIFEST
    m.chmod(0o644)
    m.write_text(m.read_text(encoding="utf-8").replace("李局长", "某某"), encoding="utf-8")
    done = run_dockd(["export", "verify", copy2, "--store", evidence["store"], "--json"])
    assert done.returncode == 1
    assert any("custody log" in d["detail"] for d in json.loads(done.stdout)["differences"])


@pytest.mark.parametrize("drop", ["--approved-by", "--requester", "--reason"])
def test_export_without_registration_fields_is_refused(evidence, tmp_path: Path,
                                                       drop: str) -> None:
    args = list(REG)
    i = args.index(drop)
    del args[i:i + 2]
    before = snapshot(evidence["store"], tmp_path)
    done = run_dockd(["export", "--case", CASE, *args, "--out", tmp_path / "out", "--store",
                      evidence["store"]])
    assert done.returncode == 2 and drop in done.stderr
    assert snapshot(evidence["store"], tmp_path) == before


def test_public_export_without_approver_cites_art_13(evidence, tmp_path: Path) -> None:
    done = run_dockd(["export", "--case", CASE, "--requester", "宣传科", "--requester-unit",
                      "局办公室", "--reason", "公开", "--public", "--out", tmp_path / "o",
                      "--store", evidence["store"]])
    assert done.returncode == 2 and "art. 13" in done.stderr
    assert not (tmp_path / "o").exists()


def test_export_into_non_empty_dir_is_refused(evidence, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("x")
    before = snapshot(evidence["store"], tmp_path)
    done = _export(evidence, out)
    assert done.returncode == 2 and "not empty" in done.stderr
    assert snapshot(evidence["store"], tmp_path) == before


def test_export_into_read_only_dir_is_refused(evidence, tmp_path: Path, loop_mounts) -> None:
    mnt = loop_mounts.make(16)
    (mnt / "out").mkdir()
    loop_mounts.remount(mnt, "ro")
    before = snapshot(evidence["store"], mnt)
    done = _export(evidence, mnt / "out")
    assert done.returncode == 2 and "not writable" in done.stderr
    done = _export(evidence, mnt / "new")
    assert done.returncode == 2 and "cannot be created" in done.stderr
    assert snapshot(evidence["store"], mnt) == before


def test_unknown_case_and_existing_iso_are_refused(evidence, tmp_path: Path) -> None:
    before = snapshot(evidence["store"], tmp_path)
    done = run_dockd(["export", "--case", "NO-SUCH", *REG, "--out", tmp_path / "o",
                      "--store", evidence["store"]])
    assert done.returncode == 2 and "unknown case" in done.stderr
    (tmp_path / "x.iso").write_bytes(b"")
    before = snapshot(evidence["store"], tmp_path)
    done = _export(evidence, tmp_path / "o", "--iso", tmp_path / "x.iso")
    assert done.returncode == 2 and "already exists" in done.stderr
    assert snapshot(evidence["store"], tmp_path) == before


def test_damaged_store_file_stops_the_export_and_leaves_nothing(evidence,
                                                                tmp_path: Path) -> None:
    obj = next((evidence["store"] / "objects").rglob(evidence["junk"]))
    obj.chmod(0o644)
    obj.write_bytes(b"tampered")
    before = snapshot(evidence["store"], tmp_path)
    done = _export(evidence, tmp_path / "out")
    assert done.returncode == 1 and "does not match the catalog" in done.stderr
    assert not (tmp_path / "out").exists()
    assert snapshot(evidence["store"], tmp_path).custody == before.custody


def test_access_register(evidence, tmp_path: Path) -> None:
    s = evidence["store"]
    before = snapshot(s)
    done = run_dockd(["access", "register", "--case", CASE, "--requester", "孙检察官",
                      "--unit", "威县人民检察院", "--reason", "审查起诉", "--store", s])
    assert done.returncode == 2 and "--approved-by" in done.stderr
    assert snapshot(s).custody == before.custody
    done = run_dockd(["access", "register", "--case", CASE, "--requester", "孙检察官",
                      "--unit", "威县人民检察院", "--reason", "审查起诉", "--approved-by",
                      "李局长", "--store", s, "--json"])
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["type"] == "access.registered"
    assert record["payload"]["requester_unit"] == "威县人民检察院"
    assert sorted(record["payload"]["items"]) == sorted([evidence["mp4"], evidence["junk"]])


@given(st.integers(1, 9999), st.text(min_size=0, max_size=300))
def test_package_names_are_joliet_safe(n: int, name: str) -> None:
    out = package_name(n, name)
    assert len(out) <= 64 and out.startswith(f"{n:04d}_")
    assert not set(out) & set('*/:;?\\"<>|') and all(ord(c) >= 32 and ord(c) != 127 for c in out)


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                         max_size=4),
                     max_leaves=20)


@settings(max_examples=60, deadline=None)
@given(manifest=st.one_of(_json, st.fixed_dictionaries({
    "format": st.just("dockd.evidence-export"), "version": st.just(1),
    "recordings": st.lists(st.dictionaries(
        st.sampled_from(["file", "size", "sha256", "sm3"]),
        st.one_of(st.text(max_size=70), st.integers(-5, 10**6), st.none(),
                  st.just("files/../../etc/passwd"), st.just("files/x"))), max_size=4)})),
       raw=st.one_of(st.none(), st.binary(max_size=64)))
def test_malformed_manifests_never_crash_and_never_touch_files(tmp_path_factory, manifest,
                                                               raw) -> None:
    pkg = tmp_path_factory.mktemp("pkg")
    (pkg / "files").mkdir()
    (pkg / "files" / "x").write_bytes(b"content")
    outside = pkg.parent / f"{pkg.name}-outside"
    outside.write_bytes(b"secret")
    data = raw if raw is not None else json.dumps(manifest).encode()
    (pkg / MANIFEST).write_bytes(data)
    check = verify_package(DirectoryReader(pkg))
    assert not check.ok  # no sheet, no MHL: never "intact"
    assert (pkg / "files" / "x").read_bytes() == b"content"
    assert outside.read_bytes() == b"secret"
    assert all(".." not in d.path.split("/") for d in check.differences)


@pytest.fixture
def three_large(tmp_path: Path) -> dict[str, object]:
    """Three 700 kB recordings (unreadable as video: exported with --allow-incomplete)."""
    import os as _os

    store = open_clocked_store(tmp_path / "store", SettableClock(T0))
    shas = [ingest(store, tmp_path / f"s{i}", {f"DCIM/big{i}.MP4": _os.urandom(700_000)},
                   recorder="CAM777").files[0].sha256 for i in range(3)]
    tag_items(store, "XZ-2026/7", shas, "clerk", "test", place="城关镇")
    store.close()
    return {"store": tmp_path / "store", "shas": shas}


def test_split_at_makes_numbered_discs_that_each_verify(three_large, tmp_path: Path) -> None:
    out, iso = tmp_path / "out", tmp_path / "case.iso"
    done = run_dockd(["export", "--case", "XZ-2026/7", *REG, "--out", out, "--iso", iso,
                      "--split-at", "2M", "--allow-incomplete", "--store",
                      three_large["store"], "--json"])
    assert done.returncode == 0, done.stderr
    discs = json.loads(done.stdout)["discs"]
    assert [d["iso"] for d in discs] == [str(tmp_path / f"case-{n}.iso") for n in (1, 2, 3)]
    assert [d["out"] for d in discs] == [str(out / f"disc{n}") for n in (1, 2, 3)]
    exported, groups = [], set()
    for n, disc in enumerate(discs, start=1):
        image = Path(disc["iso"])
        assert image.stat().st_size <= 2_000_000
        ok = run_dockd(["export", "verify", image, "--store", three_large["store"]])
        assert ok.returncode == 0 and "matches the custody log" in ok.stdout, ok.stdout
        manifest = json.loads((out / f"disc{n}" / MANIFEST).read_text(encoding="utf-8"))
        assert (manifest["disc"], manifest["discs"]) == (n, 3)
        groups.add(manifest["split_group"])
        exported += [r["sha256"] for r in manifest["recordings"]]
        pvd = subprocess.run(["xorriso", "-indev", str(image), "-pvd_info"],
                             capture_output=True, text=True, check=True).stdout
        assert f"Volume Id    : XZ_2026_7_{n}\n" in pvd
        assert f"{n}/3·XZ_2026_7_{n}" in _pdf_text(out / f"disc{n}" / "sign-off-sheet.pdf")
        # what a clerk does with the burned disc: its files, as the image holds them
        copy = tmp_path / f"read{n}"
        subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(image), "-extract", "/",
                        str(copy)], check=True, capture_output=True)
        assert subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"],
                              cwd=copy).returncode == 0
    assert sorted(exported) == sorted(three_large["shas"]) and len(groups) == 1
    log = json.loads(run_dockd(["log", "--type", "export.created", "--json", "--store",
                                three_large["store"]]).stdout)
    assert sorted(r["subject"] for r in log) == sorted(d["export_id"] for d in discs)


def test_export_larger_than_the_disc_is_refused_with_its_size(three_large,
                                                              tmp_path: Path) -> None:
    before = snapshot(three_large["store"])
    cfg = tmp_path / "dockd.toml"
    cfg.write_text(f'[dock]\nstore_dir = "{three_large["store"]}"\n[records]\n'
                   'disc_size = "2M"\n', encoding="utf-8")
    done = run_dockd(["export", "--case", "XZ-2026/7", *REG, "--out", tmp_path / "out",
                      "--iso", tmp_path / "x.iso", "--allow-incomplete", "--config", cfg])
    assert done.returncode == 2, done.stderr
    from dockd.records.export import disc_reserve

    needed = 3 * 700_000 + disc_reserve(3)  # the recordings and room for the notes
    assert f"the export needs 3.2 MB ({needed:,} bytes)" in done.stderr
    assert "more than the 2.0 MB (2,000,000 bytes) disc" in done.stderr
    assert "--split-at" in done.stderr
    big = run_dockd(["export", "--case", "XZ-2026/7", *REG, "--out", tmp_path / "out",
                     "--iso", tmp_path / "x.iso", "--allow-incomplete", "--config", cfg,
                     "--split-at", "1.5M"])
    assert big.returncode == 2, big.stderr
    assert re.search(r"big\d\.MP4 alone is 700\.0 KB .* a recording is never cut", big.stderr)
    for bad in ("4.7X", "0", "-1G", "lots"):
        done = run_dockd(["export", "--case", "XZ-2026/7", *REG, "--out", tmp_path / "out",
                          "--allow-incomplete", "--config", cfg, f"--split-at={bad}"])
        assert done.returncode == 2 and "is not a size" in done.stderr, (bad, done.stderr)
    assert not (tmp_path / "out").exists() and not (tmp_path / "x.iso").exists()
    assert snapshot(three_large["store"]) == before


@given(st.text(max_size=20))
def test_disc_sizes_parse_or_are_refused(text: str) -> None:
    from dockd.config.records import parse_size

    size = parse_size(text)
    assert size is None or 0 < size <= 10 ** 15
    assert parse_size("4.7G") == 4_700_000_000 and parse_size("25G") == 25_000_000_000


def _annotate(evidence: dict[str, object], sha: object, *args: str,
              env: dict[str, str] | None = None):
    cfg_env = {"LANGUAGE": "en", **(env or {})}
    return run_dockd(["case", "annotate", "--items", str(sha), *args, "--by", "王所长",
                      "--store", evidence["store"]], env=cfg_env)


def test_case_annotate_fills_every_missing_field_and_the_sheet_says_so(
        evidence, tmp_path: Path) -> None:
    cfg = tmp_path / "dockd.toml"
    cfg.write_text(f'[dock]\nstore_dir = "{evidence["store"]}"\ntimezone = "Asia/Shanghai"\n',
                   encoding="utf-8")
    done = run_dockd(["case", "annotate", "--items", evidence["junk"], "--operator", "钱七",
                      "--officer", "孙八", "--start", "2026-11-23 08:40:00", "--end",
                      "2026-11-23 08:41:05", "--format", "mp4", "--length", "0:01:05",
                      "--brand", "Hikvision", "--model", "DSJ-X1", "--by", "王所长",
                      "--config", cfg])
    assert done.returncode == 0, done.stderr
    # a value from the file wins over one typed by hand
    assert run_dockd(["case", "annotate", "--items", evidence["mp4"], "--start",
                      "2030-01-01 00:00:00", "--by", "王所长", "--config", cfg]).returncode == 0
    out = tmp_path / "out"
    done = run_dockd(["export", "--case", CASE, *REG, "--out", out, "--config", cfg, "--json"])
    assert done.returncode == 0, done.stderr  # complete now: no --allow-incomplete needed
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    by_sha = {r["sha256"]: r for r in manifest["recordings"]}
    junk, mp4 = by_sha[evidence["junk"]], by_sha[evidence["mp4"]]
    assert (junk["officer_name"], junk["operator_name"], junk["format"]) == ("孙八", "钱七", "mp4")
    assert junk["start_time"] == "2026-11-23T00:40:00.000000Z"  # typed as Shanghai time
    assert junk["end_time"] == "2026-11-23T00:41:05.000000Z" and junk["length_s"] == 65.0
    assert mp4["start_time"] == "2026-11-23T00:30:00.000000Z"
    assert manifest["missing_fields"] == []
    assert manifest["annotated_fields"] == [{"file": junk["file"], "fields": [
        "officer_name", "start_time", "end_time", "device_brand", "device_model", "format",
        "length_s"]}]
    text = _pdf_text(out / "sign-off-sheet.pdf")
    assert "0:01:05*" in text and "enteredbyhandwith'dockdcaseannotate'" in text
    log = json.loads(run_dockd(["log", "--type", "item.annotated", "--json", "--store",
                                evidence["store"]]).stdout)
    assert log[-2]["payload"]["fields"]["length_s"] == "65.0"
    assert run_dockd(["verify", "--store", evidence["store"]]).returncode == 0


@pytest.mark.parametrize("args,message", [
    (["--start", "yesterday"], "--start 'yesterday' is not a time"),
    (["--start", "2026-11-23 09:00", "--end", "2026-11-23 08:00"], "--end is before --start"),
    (["--length", "1:75:00"], "--length '1:75:00' is not a length"),
    (["--length", "-5"], "is not a length"),
    (["--officer", "赵\x07六"], "--officer"),
    ([], "at least one of --place"),
])
def test_bad_annotations_exit_2_and_change_nothing(evidence, args: list[str],
                                                   message: str) -> None:
    before = snapshot(evidence["store"])
    done = _annotate(evidence, evidence["junk"], *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert snapshot(evidence["store"]) == before


def test_a_field_annotation_not_in_the_custody_log_is_found(evidence) -> None:
    import sqlite3

    assert _annotate(evidence, evidence["junk"], "--format", "mp4").returncode == 0
    assert run_dockd(["verify", "--store", evidence["store"]]).returncode == 0
    conn = sqlite3.connect(evidence["store"] / "catalog.sqlite")
    with conn:
        conn.execute("INSERT INTO item_field_annotations (sha256, field, value, annotated_by,"
                     " annotated_at) VALUES (?, 'officer_name', '假名', 'x', 'x')",
                     (evidence["junk"],))
    conn.close()
    done = run_dockd(["verify", "--store", evidence["store"], "--json"])
    assert done.returncode == 1
    assert "officer_name='假名' without item.annotated" in done.stdout


@given(st.text(max_size=30), st.text(max_size=30), st.text(max_size=12))
def test_annotation_values_accept_or_refuse_never_crash(start: str, end: str,
                                                        length: str) -> None:
    import zoneinfo

    from dockd.errors import UsageError
    from dockd.records.fields import annotation_values

    try:
        values = annotation_values(zoneinfo.ZoneInfo("Asia/Shanghai"), start=start, end=end,
                                   length=length)
    except UsageError:
        return
    assert float(values["length_s"]) >= 0
    assert values["start_time"].endswith("Z") and values["end_time"] >= values["start_time"]
