"""An older version of a regulation, asked for: '2017年版行政复议法第九条', '修订前的民事诉讼法第…'.

Searches leave superseded versions out (index/versions.py). A question that names one work best
and asks for a version by year ('2017年版', '2017年修正的': the lexicon's pattern version_year)
gets the version in force at the end of that year, the latest dated on or before it; one that asks
for the text before the latest revision (version_previous: 修订前, 旧版) gets the version before the
latest. That version is searched instead of the work's others. The work is the first of the
best-named documents (DocumentNames.near_best's first group, the version words left out) that has
versions; a year before every indexed version, or a best-named group without such a work, changes
nothing.

>>> from index.lexicon import load_lexicon
>>> from index.types import Document, DocumentMeta
>>> def doc(i, source):
...     return Document(i, source, "/x/" + source, "0", DocumentMeta(title="中华人民共和国行政复议法"), "", "",
...                     "simplified")
>>> v = Versions([doc("a", "行政复议法(2017-09-01).md"), doc("b", "行政复议法(2023-09-01).md")], load_lexicon())
>>> named = lambda text: [["b", "a"]]
>>> v.asked("2017年版行政复议法第九条", named).doc_id
'a'
>>> v.asked("修订前的行政复议法第九条", named).date
'2017-09-01'
>>> v.asked("2024年版行政复议法第九条", named) is None  # the current version
True
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from index.lexicon import Lexicon
from index.versions import dated_works


@dataclass(frozen=True)
class AskedVersion:
    """The version a question asks for, and what it replaces."""

    doc_id: str
    date: str
    current: str  # doc_id of the work's latest version
    current_date: str
    others: frozenset[str]  # the work's other versions, the latest among them: left out of the search


class Versions:
    """The works an index holds in several dated versions, oldest first."""

    def __init__(self, docs, lexicon: Lexicon):
        # a work whose versions are not told apart by date has no 'version of a year'
        self.works = {k: v for k, v in dated_works(docs).items()
                      if len(v) > 1 and all(date for date, _ in v) and len({date for date, _ in v}) == len(v)}
        self.work_of = {doc_id: k for k, v in self.works.items() for _, doc_id in v}
        self.year = lexicon.pattern("version_year")
        self.previous = lexicon.pattern("version_previous")

    def asked(self, question_norm: str, named: Callable[[str], list[list[str]]]) -> AskedVersion | None:
        """The older version the question asks for, or None; `named(text)` gives the doc_ids the
        text names about as clearly as the best, in groups best first (DocumentNames.near_best),
        and is called only when a version is asked for."""
        if not self.works:
            return None
        asked = self.year.search(question_norm) or self.previous.search(question_norm)
        if not asked:
            return None
        # '修订前的民事诉讼法': the version words name no document ('的民' is in 修改后的民事诉讼法…的规定)
        rest = question_norm[:asked.start()] + " " + question_norm[asked.end():].removeprefix("的")
        groups = named(rest)
        works = [self.work_of[d] for d in (groups[0] if groups else ()) if d in self.work_of]
        if not works:
            return None
        versions = self.works[works[0]]
        year = asked.groupdict().get("year")
        if year:
            older = [v for v in versions if v[0] <= f"{year}-12-31"]
            if not older:
                return None
            date, doc_id = older[-1]
        else:
            date, doc_id = versions[-2]
        current_date, current = versions[-1]
        if doc_id == current:
            return None
        return AskedVersion(doc_id, date, current, current_date,
                            frozenset(d for _, d in versions if d != doc_id))
