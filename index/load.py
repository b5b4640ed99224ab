"""Read a file of any supported format into text, detecting its encoding.

Supported: .txt .md .html/.htm .docx .pdf. Anything unreadable raises UnsupportedDocument
with a reason a person can act on; the caller records it in the ingestion report.
"""
from __future__ import annotations

import hashlib
import io
import zlib
from functools import lru_cache
from pathlib import Path

from index.errors import UnsupportedDocument
from index.lexicon import DEFAULT_LEXICON_DIR, read_lines

SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".docx", ".pdf")
# page breaks of formats that have pages are written as the same marker the shipped
# exports use, so one cleaner turns them into page metadata
PAGE_MARKER = "当前页码:{}"


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Decode text bytes as UTF-8, GB18030/GBK or Big5; returns (text, encoding).

    >>> decode_bytes("社会保险".encode("gbk"))
    ('社会保险', 'gb18030')
    >>> decode_bytes("社會保險".encode("big5"))
    ('社會保險', 'big5')
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass  # a BOM with half a character or a lone surrogate after it: try the others
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    candidates = []
    for enc in ("gb18030", "big5"):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        candidates.append((_plausibility(text), enc, text))
    if not candidates:
        from charset_normalizer import from_bytes

        best = from_bytes(data).best()
        if best is None:
            raise UnsupportedDocument("cannot detect the text encoding (not UTF-8, GB18030 or Big5)")
        return str(best), best.encoding
    candidates.sort(key=lambda c: c[0], reverse=True)
    return candidates[0][2], candidates[0][1]




@lru_cache(maxsize=1)
def common_chars() -> frozenset[str]:
    """Frequent characters of Chinese administrative text in both scripts (data/lexicon/common_chars.txt):
    the right decoding of a GBK or Big5 byte stream is the one that reads as ordinary words."""
    return frozenset("".join(line.strip() for line in read_lines(DEFAULT_LEXICON_DIR / "common_chars.txt")))


def _plausibility(text: str) -> float:
    cjk = [ch for ch in text if "\u4e00" <= ch <= "\u9fff"]
    if not cjk:
        return 0.0
    common = common_chars()
    return sum(ch in common for ch in cjk) / len(cjk)


def _looks_binary(data: bytes) -> bool:
    head = data[:4096]
    if b"\x00" in head:
        return True
    ctrl = sum(1 for b in head if b < 9 or 13 < b < 32)
    return ctrl > len(head) * 0.05


def read_text(path: Path, data: bytes | None = None) -> str:
    """Text of one file, with page markers between pages of a PDF."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnsupportedDocument(f"unsupported file type {suffix or '(none)'}; expected one of {', '.join(SUPPORTED_SUFFIXES)}")
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UnsupportedDocument(f"cannot read file: {exc.strerror or exc}") from exc
    if not data.strip():
        raise UnsupportedDocument("file is empty")
    if suffix == ".docx":
        text = _read_docx(data)
    elif suffix == ".pdf":
        text = _read_pdf(data)
    else:
        if not data.startswith((b"\xff\xfe", b"\xfe\xff")) and _looks_binary(data):
            raise UnsupportedDocument("file looks binary, not text")
        text, _ = decode_bytes(data)
        if suffix in (".html", ".htm"):
            text = _html_to_text(text)
    if not text.strip():
        raise UnsupportedDocument("no text could be extracted (scanned image or empty document?)")
    return text


def _read_docx(data: bytes) -> str:
    import zipfile

    from docx import Document as DocxDocument

    try:  # a damaged zip member fails with zlib.error, damaged XML with lxml's (Syntax)Error
        doc = DocxDocument(io.BytesIO(data))
        lines = [p.text for p in doc.paragraphs]
        for table in doc.tables:
            for row in table.rows:
                lines.append(" ".join(cell.text.strip() for cell in row.cells))
    except (zipfile.BadZipFile, zlib.error, EOFError, KeyError, ValueError, SyntaxError, OSError) as exc:
        raise UnsupportedDocument(f"corrupt .docx file ({exc.__class__.__name__}: {exc})") from exc
    return "\n".join(lines)


def _read_pdf(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    # pypdf's own errors, and the Python ones its parser lets through on damaged files
    except (PyPdfError, ValueError, KeyError, TypeError, OSError, AttributeError, IndexError, RecursionError,
            ZeroDivisionError) as exc:
        raise UnsupportedDocument(f"corrupt .pdf file ({exc.__class__.__name__}: {exc})") from exc
    if len(pages) == 1:
        return pages[0]
    return "\n".join(PAGE_MARKER.format(i + 1) + "\n" + text for i, text in enumerate(pages))


def _html_to_text(html: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    for tag in soup(["script", "style", "noscript", "nav", "header", "footer"]):
        tag.decompose()
    return soup.get_text("\n")
