"""One upload into the index, whole: checks, staging, the index update, and nothing left behind on failure.

The app calls `ingest_upload` from a background thread and swaps in the index it returns::

    result = ingest_upload(settings, assistant.embedder, Path(tmp_file), "通知.docx", cancel=event, on_progress=cb)
    assistant.reload(result.data)

What happens, in order:

1. Refusals come before anything is touched (`UploadRefused`, a Chinese message ending
   "索引未改变。"): an unsupported type, an empty or too large file, a file that cannot be read,
   that has no citable text, or that is over `max_upload_chars` / `max_upload_chunks` (checked
   after parsing, before anything is embedded).
2. One upload runs at a time per index folder: a second caller is refused at once (`UploadBusy`)
   rather than kept waiting; the app queues uploads itself.
3. The file is written to `<uploads>/.staging/` and the index is updated with it, keeping every
   other document it holds. Only once the new generation is committed does the file move into
   `<uploads>/`. A cancel (`UploadCancelled`) or a failure before that leaves CURRENT and the
   uploads folder as they were.
4. A file left in `.staging/` by a killed process is never indexed: the next upload removes it
   and says so (or, when the live index already holds it, because the process died between the
   commit and the move, puts it where the index expects it).

A name already taken by a different file keeps both ('通知.txt' and '通知 (2).txt', said in
the result); the same bytes under the same name change nothing.
"""
from __future__ import annotations

import fcntl
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from index.backend import load_search_index
from index.chunk import chunk_document
from index.errors import (BuildCancelled, IndexCorrupted, IndexMismatch, UnsupportedDocument, UploadBusy,
                          UploadCancelled, UploadRefused)
from index.held import HeldIndex, read_held
from index.load import SUPPORTED_SUFFIXES
from index.pipeline import content_hash, parse_document, update_index
from index.report import IngestionReport
from index.settings import Settings
from index.sources import Source
from index.store import IndexData

STAGING = ".staging"
LOCK_FILE = ".ingest.lock"
UNCHANGED = "索引未改变。"

# reasons index.load and index.pipeline give for refusing a file, as the user reads them
REASONS_ZH = (
    ("unsupported file type", "不支持的文件类型"),
    ("file looks binary", "文件内容是二进制数据，不是文本"),
    ("file is empty", "文件是空的"),
    ("no text left after cleaning", "清理后没有剩下正文"),
    ("no text could be extracted", "无法提取文字（可能是扫描图片或空文档）"),
    ("corrupt .docx", "文件已损坏，无法作为 .docx 读取"),
    ("corrupt .pdf", "文件已损坏，无法作为 .pdf 读取"),
    ("cannot detect the text encoding", "无法识别文字编码（不是 UTF-8、GB18030 或 Big5）"),
    ("cannot read file", "无法读取文件"),
    ("unreadable metadata file", "附带的元数据文件无法读取"),
    ("no citable text", "没有找到可以引用的条款或段落"),
)


@dataclass(frozen=True)
class UploadResult:
    """An upload that is in the live index now."""

    data: IndexData  # the new index, loaded: pass it to Assistant.reload
    report: IngestionReport  # the whole update, every document
    row: dict  # the uploaded document's line: {source, doc_id, title, clauses, chunks, warnings, reused}
    stored_name: str  # its file name in the uploads folder ('通知 (2).txt' when '通知.txt' was another file)
    renamed: bool  # stored under another name than the one uploaded
    unchanged: bool  # the same bytes were already indexed under that name: nothing was parsed or embedded
    notices: tuple[str, ...] = ()  # Chinese sentences for the user: renaming, leftovers removed, lost documents


def reason_zh(reason: str) -> str:
    """'file is empty' -> '文件是空的'; an unknown reason is kept as it is, a known one keeps its detail."""
    for prefix, text in REASONS_ZH:
        if reason.startswith(prefix):
            return text if reason.rstrip(".") == prefix else f"{text}（{reason}）"
    return reason


def uploads_folder(settings: Settings) -> Path:
    """Where uploaded files are kept: `uploads/` beside the index folder (var/uploads by default)."""
    return Path(settings.index_dir).resolve().parent / "uploads"


def safe_name(name: str) -> str:
    """A file name safe to store: '../报告:v2.txt' -> '报告_v2.txt', '.hidden.txt' -> 'hidden.txt'."""
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", base).lstrip(". ").strip() or "upload.txt"


def stored_name(folder: Path, name: str, data: bytes) -> tuple[str, bool]:
    """(name to store `data` under in `folder`, whether that file already holds exactly these bytes).

    '通知.txt' is taken by another file -> '通知 (2).txt' (or the first free or identical one after it).
    """
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 1
    while True:
        candidate = name if n == 1 else f"{stem} ({n}){suffix}"
        path = folder / candidate
        if not path.exists():
            return candidate, False
        if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
            return candidate, True
        n += 1


@contextmanager
def ingest_lock(index_dir: Path, on_busy: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the index folder's writer lock (threads and processes alike; a killed process releases it).

    Every writer that reads what the index holds and publishes a generation from it holds this lock
    (an upload, `python -m assistant index`), so neither publishes over the other's document. Without
    `on_busy` a held lock raises UploadBusy at once (the app's upload); with it, `on_busy()` is called
    and the lock waited for (the command line)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / LOCK_FILE, "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_busy is None:
                raise UploadBusy(f"另一个文件正在导入，请等它完成后再上传。{UNCHANGED}") from None
            on_busy()
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def clear_staging(uploads: Path, held: HeldIndex) -> list[str]:
    """Deal with what a killed upload left in `<uploads>/.staging/`; returns a Chinese notice per file.

    A staged file the live index already holds (the process died after the commit) is moved to
    where the index expects it; anything else is deleted, never indexed.
    """
    staging = uploads / STAGING
    if not staging.is_dir():
        return []
    expected = {Path(e["path"]).resolve(): e for e in held.entries.values() if e.get("path")}
    notices = []
    for leftover in sorted(staging.iterdir()):
        target = uploads / leftover.name
        entry = expected.get(target.resolve())
        if leftover.is_file() and entry and not target.exists() \
                and content_hash(target, leftover.read_bytes()) == entry.get("sha256"):
            os.replace(leftover, target)
            notices.append(f"上次导入“{leftover.name}”在写入索引后中断，已把文件放回上传目录。")
            continue
        if leftover.is_dir():
            shutil.rmtree(leftover)
        else:
            leftover.unlink()
        notices.append(f"已删除上次中断的导入留下的文件“{leftover.name}”（它没有进入索引）。")
    return notices


def upload_doc_id(held: HeldIndex, target: Path) -> str:
    """The doc_id of an upload stored at `target`: the one the index already knows it by, else its
    stem, else 'stem~2', ... (never another document's)."""
    for doc_id, e in held.entries.items():
        if e.get("path") and Path(e["path"]).resolve() == target.resolve():
            return doc_id
    doc_id, n = target.stem, 1
    while doc_id in held.entries:
        n += 1
        doc_id = f"{target.stem}~{n}"
    return doc_id


def check_upload(settings: Settings, target: Path, doc_id: str, data: bytes, name: str):
    """Parse and chunk the upload as the build will, and refuse it (UploadRefused) when it cannot
    be cited or would cost more than the settings allow."""
    try:
        doc = parse_document(target, doc_id, data)
        chunks = chunk_document(doc, settings.chunk_max_chars)
    except UnsupportedDocument as exc:
        raise UploadRefused(f"无法导入“{name}”：{reason_zh(str(exc))}。{UNCHANGED}") from exc
    if not chunks:
        raise UploadRefused(f"无法导入“{name}”：{reason_zh('no citable text')}。{UNCHANGED}")
    if len(doc.text) > settings.max_upload_chars:
        raise UploadRefused(f"无法导入“{name}”：文件正文有 {len(doc.text):,} 字，超过单次导入上限 "
                            f"{settings.max_upload_chars:,} 字（POLICYQA_MAX_UPLOAD_CHARS）。请拆分后再上传。{UNCHANGED}")
    if len(chunks) > settings.max_upload_chunks:
        raise UploadRefused(f"无法导入“{name}”：文件切分后有 {len(chunks):,} 个片段，超过单次导入上限 "
                            f"{settings.max_upload_chunks:,} 个（POLICYQA_MAX_UPLOAD_CHUNKS）。请拆分后再上传。"
                            f"{UNCHANGED}")


def size_text(n: int) -> str:
    """2500000 -> '2.4 MB', 2048 -> '2 KB', 100 -> '100 字节'."""
    if n >= 2**20:
        return f"{n / 2**20:.1f}".rstrip("0").rstrip(".") + " MB"
    return f"{n / 2**10:.0f} KB" if n >= 2**10 else f"{n} 字节"


def read_upload(settings: Settings, src: Path, name: str | None = None) -> tuple[str, bytes]:
    """(safe name, bytes) of an upload of a supported type, not empty and within max_upload_bytes;
    otherwise UploadRefused. The app calls it (with `precheck_upload`) before queueing a file."""
    name = safe_name(name or Path(src).name)
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UploadRefused(f"无法导入“{name}”：不支持的文件类型“{suffix or '无扩展名'}”，"
                            f"请上传 {' '.join(SUPPORTED_SUFFIXES)} 文件。{UNCHANGED}")
    try:
        size = Path(src).stat().st_size
        if size > settings.max_upload_bytes:
            raise UploadRefused(f"无法导入“{name}”：文件过大（{size_text(size)}），上限为 "
                                f"{size_text(settings.max_upload_bytes)}。{UNCHANGED}")
        data = Path(src).read_bytes()
    except OSError as exc:
        raise UploadRefused(f"无法导入“{name}”：无法读取上传的文件（{exc.strerror or exc}）。{UNCHANGED}") from exc
    if not data:
        raise UploadRefused(f"无法导入“{name}”：文件是空的。{UNCHANGED}")
    return name, data


def precheck_upload(settings: Settings, src: Path, name: str | None = None) -> str:
    """Every refusal `ingest_upload` can make before touching the index (type, size, readability,
    citable text, the character and chunk limits), without taking the lock; returns the safe name."""
    name, data = read_upload(settings, src, name)
    check_upload(settings, Path(src), Path(name).stem, data, name)
    return name


def ingest_upload(settings: Settings, embedder, src: Path, name: str, *, cancel: threading.Event | None = None,
                  on_progress: Callable[[float, str], None] | None = None) -> UploadResult:
    """Add one uploaded file to the index at settings.index_dir (see the module docstring).

    Raises UploadRefused (UploadBusy when another upload is running) or UploadCancelled, each with
    a Chinese message; the live index and the uploads folder are then unchanged.
    """
    say = on_progress or (lambda fraction, desc: None)
    name, data = read_upload(settings, src, name)
    index_dir = Path(settings.index_dir)
    with ingest_lock(index_dir):
        say(0.01, "检查文件")
        held = read_held(index_dir)
        if held.embedder and held.entries and held.embedder != embedder.name:
            raise UploadRefused(f"无法导入“{name}”：现有索引是用另一个向量模型（{held.embedder}）建立的，当前配置为 "
                                f"{embedder.name}。请先重建索引（python -m assistant index --rebuild）。{UNCHANGED}")
        uploads = uploads_folder(settings)
        notices = clear_staging(uploads, held)
        stored, same = stored_name(uploads, name, data)
        if stored != name:
            notices.append(f"上传目录中已有另一个同名文件“{name}”，新文件另存为“{stored}”，两个文件都保留。")
        target = uploads / stored
        doc_id = upload_doc_id(held, target)
        say(0.03, "解析文件")
        check_upload(settings, target, doc_id, data, name)
        staged = uploads / STAGING / stored
        staged.parent.mkdir(parents=True, exist_ok=True)
        with open(staged, "wb") as f:
            f.write(data)
            os.fsync(f.fileno())
        committed = False
        try:
            _, report = update_index([], settings, embedder, extra=(Source(target, doc_id, read_from=staged),),
                                     progress=False, load=False, cancel=cancel,
                                     on_progress=lambda fraction, desc: say(0.05 + 0.9 * fraction, desc))
            committed = True
            os.replace(staged, target)  # only now does the file join the uploads folder
        except BuildCancelled as exc:
            raise UploadCancelled(f"已取消导入“{name}”。{UNCHANGED}") from exc
        except (IndexCorrupted, IndexMismatch) as exc:
            raise UploadRefused(f"无法导入“{name}”：现有索引已损坏，无法安全更新（{exc}）。{UNCHANGED}"
                                f"重启应用会从原文件修复索引。") from exc
        finally:
            if not committed:  # after the commit a staged file the move missed is put in place next time
                staged.unlink(missing_ok=True)
        say(0.96, "载入新索引")
        data_loaded = load_search_index(settings, expect_embedder=embedder.name)
    row = next((r for r in report.indexed if r["doc_id"] == doc_id), None)
    if row is None:  # checked above, so only a file changed under us gets here
        reason = next((s["reason"] for s in report.skipped if s["source"] == str(target)), "unknown")
        raise UploadRefused(f"无法导入“{name}”：{reason_zh(reason)}。")
    notices += [f"注意：索引中的“{d['doc_id'] if d['doc_id'] != '?' else Path(d['source']).name}”已无法恢复"
                f"（原文件不存在或无法读取，索引中的副本也已损坏），已从索引中移除。" for d in report.lost]
    say(1.0, "完成")
    return UploadResult(data_loaded, report, row, stored, stored != name, same and row["reused"], tuple(notices))
