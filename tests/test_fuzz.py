"""Property-based fuzzing: whatever bytes a loader gets and whatever a question or history is,
the result is text / a Document / an Answer, or a PolicyQAError with a message; never a crash."""
from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pypdf.errors import PyPdfError

from assistant.types import Answer
from index.errors import PolicyQAError
from index.load import read_text
from index.pipeline import parse_document
from index.types import Document

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow])
POLICY_TEXT = ("关于做好灵活就业人员参加基本养老保险工作的通知\n一、参保范围\n（一）个体工商户和灵活就业人员可以参加基本养老保险。"
               "\n二、缴费办法\n1.缴费基数为上年在岗职工月平均工资的60%至300%。\n第三条 本通知自发布之日起施行。\n")


def _docx_bytes() -> bytes:
    from docx import Document as DocxDocument

    doc = DocxDocument()
    for line in POLICY_TEXT.splitlines():
        doc.add_paragraph(line)
    table = doc.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "缴费基数", "60%"
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def _pdf_bytes() -> bytes:
    """A minimal valid one-page PDF (xref offsets computed), text in a standard font."""
    stream = b"BT /F1 12 Tf 72 720 Td (Article 1. Flexible workers pay pension insurance.) Tj ET"
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


DOCX, PDF = _docx_bytes(), _pdf_bytes()


def test_the_seed_files_are_valid():
    assert "缴费基数" in read_text(Path("a.docx"), DOCX)
    assert "pension" in read_text(Path("a.pdf"), PDF)


def _damaged_docx_member() -> bytes:
    """The docx with 8 bytes of word/document.xml's compressed data overwritten."""
    info = zipfile.ZipFile(io.BytesIO(DOCX)).getinfo("word/document.xml")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 5
    return DOCX[:start] + b"\xff" * 8 + DOCX[start + 8:]


def _pdf_with(*edits: tuple[bytes, bytes]) -> bytes:
    data = PDF
    for old, new in edits:
        data = data.replace(old, new)
    return data


# Crashes of index/load.py the fuzzing found, each now refused with UnsupportedDocument
@pytest.mark.parametrize("suffix,data,crash", [
    # decode_bytes: a UTF-16 BOM followed by an odd number of bytes (or a lone surrogate)
    (".txt", b"\xff\xfeA", UnicodeDecodeError),
    # _read_docx: a damaged deflate stream inside the zip (zipfile.BadZipFile is caught, zlib.error not)
    (".docx", "damaged-member", zlib.error),
    # _read_pdf: pypdf's errors other than PdfReadError, and its internal AttributeErrors
    (".pdf", "parent-undefined", AttributeError),
    (".pdf", "self-reference", PyPdfError),
])
def test_former_loader_crashes_are_handled(suffix, data, crash):
    data = {"damaged-member": lambda: _damaged_docx_member(),
            "parent-undefined": lambda: _pdf_with((b"/Parent 2 0 R", b"/Parent 6 0 R"), (b"/MediaBox [", b"/MediaBox \x01")),
            "self-reference": lambda: _pdf_with((b"%PDF", b"\x00PDF"), (b"/Type /Catalog", b"/\x00ype /Catalog"),
                                                (b"\nendstream", b"\n\x00ndstream")),
            }.get(data, lambda: data)()
    try:  # read as text, or refused with a message; never the crash it used to be
        assert isinstance(read_text(Path(f"a{suffix}"), data), str)
    except PolicyQAError as exc:
        assert str(exc).strip()
        assert exc.__cause__ is None or isinstance(exc.__cause__, crash)


def _load_or_refuse(suffix: str, data: bytes):
    path = Path("/nonexistent-fuzz-dir") / f"fuzz{suffix}"  # no metadata sidecar beside it
    for load in (lambda: read_text(path, data), lambda: parse_document(path, "fuzz", data)):
        try:
            result = load()
        except PolicyQAError as exc:
            assert str(exc).strip(), f"{exc.__class__.__name__} without a message"
            continue
        assert isinstance(result, (str, Document))


ENCODINGS = ("utf-8", "utf-8-sig", "gb18030", "big5", "utf-16", "utf-16-le", "utf-16-be")
SUFFIXES = (".txt", ".md", ".html", ".docx", ".pdf")
chinese = st.text(alphabet=st.sampled_from(POLICY_TEXT + "<p></p>&amp;社會保險條例龍"), max_size=300)


@st.composite
def encoded_text(draw) -> bytes:
    data = draw(chinese).encode(draw(st.sampled_from(ENCODINGS)), errors="ignore")
    if draw(st.booleans()):  # cut anywhere, also inside a multi-byte character
        data = data[:draw(st.integers(0, len(data)))]
    return data


@st.composite
def damaged(draw, seed: bytes) -> bytes:
    """A valid file cut at a random point, and/or with a few bytes overwritten."""
    data = bytearray(seed[:draw(st.integers(0, len(seed)))] if draw(st.booleans()) else seed)
    for _ in range(draw(st.integers(0, 3)) if data else 0):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@FUZZ
@given(suffix=st.sampled_from(SUFFIXES), data=st.binary(max_size=2000))
@example(suffix=".txt", data=b"\xff\xfe\x41")  # a UTF-16 BOM and half a character
@example(suffix=".txt", data=b"\xff\xfe" + "社".encode("utf-16-le") + b"\x00\xd8")  # a lone surrogate in UTF-16
def test_loaders_on_random_bytes(suffix, data):
    _load_or_refuse(suffix, data)


@FUZZ
@given(suffix=st.sampled_from((".txt", ".md", ".html")), data=encoded_text())
def test_loaders_on_text_in_any_encoding(suffix, data):
    _load_or_refuse(suffix, data)


@FUZZ
@given(data=damaged(DOCX))
def test_loaders_on_damaged_docx(data):
    _load_or_refuse(".docx", data)


@FUZZ
@given(data=damaged(PDF))
def test_loaders_on_damaged_pdf(data):
    _load_or_refuse(".pdf", data)


# ---- the question path ----

any_char = st.characters(exclude_categories=())  # surrogates and control characters included
questions = st.one_of(
    st.text(any_char, max_size=60),
    st.text(st.sampled_from("自由职业者怎么交养老保险地税部门第二条<b></b>**[]()please \udcff\x00\n?？"), max_size=80),
    st.builds(lambda s, n: s * n, st.sampled_from(["养", "\udcff", "a ", "<b>"]), st.integers(1500, 30_000)),
    st.none(), st.integers(), st.lists(st.text(max_size=5), max_size=2),
)
contents = st.one_of(st.text(any_char, max_size=40), st.none(), st.integers(), st.floats(),
                     st.lists(st.one_of(st.text(any_char, max_size=10), st.dictionaries(
                         st.sampled_from(["type", "text"]), st.one_of(st.text(any_char, max_size=10), st.none()))),
                         max_size=3),
                     st.dictionaries(st.sampled_from(["text", "x"]), st.text(any_char, max_size=10)))
messages = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "", None, 3]), "content": contents},
                          optional={"metadata": st.one_of(st.none(), st.dictionaries(st.just("title"), st.text()))}),
    st.none(), st.text(any_char, max_size=10), st.integers(), st.lists(st.none(), max_size=2))
histories = st.one_of(st.none(), st.lists(messages, max_size=6), st.text(max_size=10), st.integers(),
                      st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2))


@FUZZ
@given(question=questions, history=histories, docs=st.one_of(st.none(), st.lists(st.text(any_char, max_size=8), max_size=2)),
       mode=st.sampled_from([None, "extractive", "llm"]))
@example(question="养老\udcff保险", history=[{"role": "user", "content": "自由职业者\udcff"}], docs=None, mode=None)
@example(question="那工商部门呢?", history=[{"role": "user", "content": ["\udcff地税部门", {"text": "负责什么"}]}],
         docs=None, mode=None)
def test_question_path_answers_or_refuses(fake_assistant, question, history, docs, mode):
    try:
        answer = fake_assistant.ask(question, history, docs=docs, mode=mode)
    except PolicyQAError as exc:
        assert str(exc).strip()
        return
    assert isinstance(answer, Answer)
    answer.text.encode("utf-8")
    for notice in answer.notices:
        notice.encode("utf-8")
    answer.question.encode("utf-8")
