"""Reading files of every supported format and encoding, and refusing bad ones clearly."""
from __future__ import annotations

import io

import pytest

from index.errors import UnsupportedDocument
from index.load import decode_bytes, read_text
from index.pipeline import parse_document

TEXT = "一、总则 为规范社会保险缴费，制定本办法。\n二、缴费 自由职业者按月缴纳基本养老保险费。"


def make_docx(text: str) -> bytes:
    from docx import Document

    doc = Document()
    for line in text.split("\n"):
        doc.add_paragraph(line)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def make_pdf(pages: list[str]) -> bytes:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    for page in pages:
        c.setFont("STSong-Light", 11)
        for i, line in enumerate(page.split("\n")):
            c.drawString(40, 800 - 16 * i, line)
        c.showPage()
    c.save()
    return buf.getvalue()


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "big5", "utf-16"])
def test_encodings_are_detected(tmp_path, encoding):
    text = TEXT if encoding != "big5" else "一、總則 為規範社會保險繳費，制定本辦法。\n二、繳費 自由職業者按月繳納基本養老保險費。"
    path = tmp_path / "doc.txt"
    path.write_bytes(text.encode(encoding))
    assert read_text(path).strip().replace("\r", "") == text


def test_big5_is_not_mistaken_for_gbk():
    data = "關於進一步加強擴大社會保險覆蓋面工作的意見".encode("big5")
    text, enc = decode_bytes(data)
    assert enc == "big5" and text.startswith("關於進一步")


def test_docx_is_parsed_into_clauses(tmp_path):
    path = tmp_path / "办法.docx"
    path.write_bytes(make_docx(TEXT))
    doc = parse_document(path, "banfa", path.read_bytes())
    assert [c.label for c in doc.clauses] == ["一、", "二、"]
    assert doc.clauses[1].text.startswith("二、缴费 自由职业者")


def test_pdf_pages_become_clause_pages(tmp_path):
    path = tmp_path / "办法.pdf"
    path.write_bytes(make_pdf(["一、总则 为规范社会保险缴费，制定本办法。", "二、缴费 自由职业者按月缴费。"]))
    doc = parse_document(path, "pdf", path.read_bytes())
    pages = {c.label: c.page for c in doc.clauses}
    assert pages == {"一、": 1, "二、": 2}
    assert "当前页码" not in doc.text


def test_html_keeps_text_and_drops_scripts(tmp_path):
    path = tmp_path / "page.html"
    path.write_text("<html><head><script>alert(1)</script></head><body><p>一、总则 内容一。</p><p>二、附则 内容二。</p></body></html>",
                    encoding="gbk")
    doc = parse_document(path, "page", path.read_bytes())
    assert "alert" not in doc.text
    assert [c.label for c in doc.clauses] == ["一、", "二、"]


@pytest.mark.parametrize("name,data,reason", [
    ("empty.txt", b"", "empty"),
    ("blank.txt", b"  \n\n ", "empty"),
    ("binary.txt", bytes(range(256)) * 20, "binary"),
    ("corrupt.docx", b"PK\x03\x04 this is not really a zip file", "corrupt .docx"),
    ("corrupt.pdf", b"%PDF-1.4\n garbage garbage", "pdf"),
    ("image.png", b"\x89PNG\r\n\x1a\n....", "unsupported file type"),
])
def test_bad_files_get_a_clear_reason(tmp_path, name, data, reason):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(UnsupportedDocument, match=reason):
        parse_document(path, "bad", data)
