"""What makes an export package a disc a clerk can use (rules art. 12(4)): the items'
custody history (JSON and PDF) with the dock's public key and a signed checkpoint covering
it, plain-language 说明.txt / README.txt, and ``SHA256SUMS`` in the format
``sha256sum -c`` reads (and whose values ``certutil -hashfile FILE SHA256`` prints)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockd.clock import parse_utc_iso
from dockd.i18n import local_time
from dockd.records.package import hash_stream
from dockd.store.catalog import Catalog
from dockd.store.custody import Checkpoint, CustodyRecord, record_from_row
from dockd.store.keys import fingerprint, public_key_pem
from dockd.store.mhl import MHL_DIR

README_ZH = "说明.txt"
README_EN = "README.txt"
SUMS = "SHA256SUMS"
KEY_FILE = "custody/dock-public-key.pem"
CHECKPOINT_FILE = "custody/checkpoint.json"
HISTORY_JSON = "custody/history.json"
HISTORY_PDF = "custody/history.pdf"

Write = Callable[[Path, bytes], None]
_HEX64 = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


@dataclass(frozen=True)
class DiscInfo:
    """What the read-me files say about the disc."""

    unit_name: str
    case_no: str | None
    export_id: str
    created_at: dt.datetime
    tz: dt.tzinfo
    volume_label: str
    disc: int
    discs: int
    recordings: Sequence[str]  # package paths of the recordings, in order
    total_bytes: int


def items_history(catalog: Catalog, shas: Sequence[str]) -> list[CustodyRecord]:
    """Every custody record about one of ``shas``: its subject, or named in its payload
    (a session that stored it, a case tag, an annotation, a hold), in log order."""
    wanted = set(shas)
    out = []
    # One pass over the log; each payload's 64-hex tokens looked up in a set, so a long
    # log and a large export stay linear.
    for row in catalog.conn.execute("SELECT * FROM custody ORDER BY seq"):  # streamed
        if row["subject"] in wanted or not wanted.isdisjoint(_HEX64.findall(row["payload"])):
            out.append(record_from_row(row))
    return out


def write_custody(out: Path, records: Sequence[CustodyRecord], checkpoint: Checkpoint,
                  tz: dt.tzinfo, font_path: Path, write: Write) -> None:
    """The dock's public key, the checkpoint and the history as JSON and PDF."""
    (out / "custody").mkdir(mode=0o755)
    write(out / KEY_FILE, public_key_pem(checkpoint.public_key))
    write(out / CHECKPOINT_FILE, _json(checkpoint.to_json_dict()))
    write(out / HISTORY_JSON, _json({
        "dock": checkpoint.dock, "public_key": checkpoint.public_key,
        "public_key_fingerprint": fingerprint(checkpoint.public_key),
        "checkpoint": checkpoint.to_json_dict(),
        "records": [r.to_json_dict() for r in records]}))
    from dockd.records.history_pdf import write_history_pdf  # reportlab: only when writing

    write_history_pdf(out / HISTORY_PDF, records, checkpoint, tz, font_path)


def write_readmes(out: Path, info: DiscInfo, write: Write) -> None:
    """说明.txt (Chinese) and README.txt (English): UTF-8 with a BOM and CRLF line ends,
    so Notepad on any Windows shows them right."""
    for name, text in ((README_ZH, _readme_zh(info)), (README_EN, _readme_en(info))):
        write(out / name, b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))


def write_sums(out: Path, write: Write) -> None:
    """``SHA256SUMS``: ``<sha256>  <path>`` per file below ``out`` (the ASC MHL history
    and the list itself excepted), LF line ends, sorted by path: what ``sha256sum -c``
    reads."""
    lines = []
    for rel in sorted(_files(out)):
        with open(out / rel, "rb") as fh:
            digest = hash_stream(fh, ["sha256"])[0]["sha256"]
        lines.append(f"{digest}  {rel}\n")
    write(out / SUMS, "".join(lines).encode("utf-8"))


def _files(out: Path) -> Iterator[str]:
    for dirpath, _dirs, names in os.walk(out):
        rel_dir = Path(dirpath).relative_to(out)
        if rel_dir.parts[:1] == (MHL_DIR,):
            continue
        for name in names:
            rel = (rel_dir / name).as_posix()
            if rel != SUMS:
                yield rel


def _json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


def human_bytes(n: int) -> str:
    """``4.7 GB (4,700,000,000 bytes)``: decimal units, as disc capacities are sold."""
    for unit, scale in (("GB", 10 ** 9), ("MB", 10 ** 6), ("KB", 10 ** 3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"


def _certutil_lines(info: DiscInfo) -> str:
    return "\n".join(f"      certutil -hashfile {rel.replace('/', chr(92))} SHA256"
                     for rel in info.recordings)


def _readme_zh(i: DiscInfo) -> str:
    created = local_time(i.created_at, i.tz, language="zh_CN")
    return f"""执法记录仪音像证据光盘说明
==========================

单位：{i.unit_name or "—"}
案件编号：{i.case_no or "—"}
导出编号：{i.export_id}
导出时间：{created}（{i.tz}）
光盘：第 {i.disc} 张，共 {i.discs} 张（卷标 {i.volume_label}）
录像：{len(i.recordings)} 个，共 {human_bytes(i.total_bytes).replace("bytes", "字节")}

光盘内容
  files\\                       录像文件，与采集站保存的原始文件逐字节相同
  manifest.json                导出清单：每个录像的执法人员、摄录人员、开始和结束时间、地点、
                               设备品牌型号、格式、时长、大小和 SHA-256 校验值
  sign-off-sheet.pdf           刻录登记表：执法人员签名、单位负责人签字并加盖印章后入卷备查
  custody\\history.pdf          这些录像的监管链记录（采集入库、案件关联、标注等），可打印
  custody\\history.json         同上，机器可读
  custody\\dock-public-key.pem  采集站的签名公钥（Ed25519）
  custody\\checkpoint.json      采集站用该公钥签名的检查点，覆盖以上监管链记录
  ascmhl\\                      ASC MHL 哈希历史
  SHA256SUMS                   光盘上每个文件的 SHA-256 校验值
  说明.txt / README.txt         本说明（中文 / 英文）

如何核对光盘内容未被改动
  Linux：在光盘根目录执行
      sha256sum -c SHA256SUMS
    每个文件都应显示“成功”（英文系统为 OK）；出现“失败”（FAILED）即该文件已被改动或损坏。
  Windows：在光盘根目录打开命令提示符（cmd），逐个执行
{_certutil_lines(i)}
    将显示的值与 SHA256SUMS 中同一文件的值比较（不区分大小写），必须完全一致。
  也可用 dockd 核对整个光盘：dockd export verify <光盘目录或 ISO 镜像>
"""


def _readme_en(i: DiscInfo) -> str:
    created = local_time(i.created_at, i.tz, language="en")
    return f"""Body-worn recorder evidence disc
================================

Unit: {i.unit_name or "-"}
Case number: {i.case_no or "-"}
Export: {i.export_id}
Exported at: {created} ({i.tz})
Disc: {i.disc} of {i.discs} (volume label {i.volume_label})
Recordings: {len(i.recordings)}, {human_bytes(i.total_bytes)}

What is on this disc
  files\\                       the recordings, byte for byte as the dock stored them
  manifest.json                the export manifest: per recording the officer, operator,
                               start and end time, place, device brand and model, format,
                               length, size and SHA-256
  sign-off-sheet.pdf           the sign-off sheet: signed by the officer and the unit's
                               leader, sealed, filed with the case
  custody\\history.pdf          the chain of custody of these recordings, printable
  custody\\history.json         the same, machine-readable
  custody\\dock-public-key.pem  the dock's signing public key (Ed25519)
  custody\\checkpoint.json      a checkpoint signed with that key, covering the history
  ascmhl\\                      ASC MHL hash history
  SHA256SUMS                   the SHA-256 of every file on the disc
  说明.txt / README.txt         this note (Chinese / English)

How to check that nothing on the disc was changed
  Linux: in the disc's top folder run
      sha256sum -c SHA256SUMS
    every file must say OK; FAILED means the file was changed or damaged.
  Windows: open a command prompt (cmd) in the disc's top folder and run, for each file,
{_certutil_lines(i)}
    and compare the value shown with the file's line in SHA256SUMS (ignoring case):
    they must be identical.
  With dockd, the whole disc at once: dockd export verify <disc folder or ISO image>
"""


def history_rows(records: Sequence[CustodyRecord], tz: dt.tzinfo) -> list[list[str]]:
    """The history as table rows: seq, local time, event, actor, details."""
    rows = []
    for r in records:
        details = ", ".join(f"{k}={_short(v)}" for k, v in r.payload.items() if v not in
                            (None, "", [], {}))
        rows.append([str(r.seq), local_time(parse_utc_iso(r.time), tz), r.type, r.actor,
                     details])
    return rows


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "…"
