"""Versions of one regulation: which indexed documents another one supersedes.

A collection of laws keeps a regulation's amended texts side by side, the date in the file name:
`上海市社会救助条例(2018-11-22).md` and `上海市社会救助条例(2024-12-31).md`. They are one work,
and the latest is the one in force. Two documents are versions of one work when their titles are
the same and so are their file names without that date; the 民法典's books share a title but not
a file name (人格权编.md, 合同编.md), so each stays a work of its own.

A version's date is the latest of the date in its file name and the dates its header records
(adopted, amended, in force). A document without any date supersedes nothing and is superseded
by nothing: which text is current cannot be told.

>>> from index.types import Document, DocumentMeta
>>> def doc(i, source, title="上海市社会救助条例", issued=""):
...     return Document(i, source, "/x/" + source, "0", DocumentMeta(title=title, issue_date=issued), "", "",
...                     "simplified")
>>> superseded([doc("a", "上海市社会救助条例(2018-11-22).md"), doc("b", "上海市社会救助条例(2024-12-31).md")])
{'a': 'b'}
>>> superseded([doc("c", "人格权编.md", "中华人民共和国民法典", "2020-05-28"),
...             doc("d", "合同编.md", "中华人民共和国民法典", "2021-01-01")])
{}
"""
from __future__ import annotations

import re

from index.types import Document

FILE_DATE = re.compile(r"[(（](\d{4}-\d{2}-\d{2})[)）]\s*$")


def _stem(doc: Document) -> str:
    """The file name without its folder and extension: 'laws/公司法(2023-12-29).md' -> '公司法(2023-12-29)'."""
    return doc.source.rsplit("/", 1)[-1].rsplit(".", 1)[0]


def work_key(doc: Document) -> tuple[str, str]:
    """(title, file name without its extension and version date): equal for versions of one work."""
    return " ".join(doc.title.split()), FILE_DATE.sub("", _stem(doc)).strip()


def version_date(doc: Document) -> str:
    """The version's date (YYYY-MM-DD): the latest of its file name's and its header's dates; '' if none."""
    m = FILE_DATE.search(_stem(doc))
    dates = [d for d in (m.group(1) if m else "", doc.meta.issue_date, doc.meta.effective_date) if d]
    return max(dates, default="")


def dated_works(docs) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """work_key -> its versions' (version_date, doc_id), oldest first (undated ones first of all)."""
    works: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for d in docs:
        works.setdefault(work_key(d), []).append((version_date(d), d.doc_id))
    return {key: sorted(versions) for key, versions in works.items()}


def superseded(docs) -> dict[str, str]:
    """doc_id of each superseded version -> doc_id of its work's latest version.

    Versions are told apart by date; when two share the latest date, neither supersedes the other.
    """
    out: dict[str, str] = {}
    for dated in dated_works(docs).values():
        if len(dated) < 2 or not all(date for date, _ in dated):
            continue
        (latest, current), runner_up = dated[-1], dated[-2][0]
        if latest == runner_up:
            continue
        out.update({doc_id: current for _, doc_id in dated[:-1]})
    return out
