"""A statute named by its name: '合同法第五十二条' names 合同法, not 劳动合同法, nor a 解释 of 《合同法》.

Before a clause reference a question usually names the law by its short name, the title without
中华人民共和国. When the words right before the reference end as a statute's name does (the
lexicon's pattern statute_name_end: …法, …法典, …条例, …通则), only a document whose own name is
one of their endings answers the lookup: 劳动合同法 begins with other words and is another law,
and 最高人民法院关于适用《中华人民共和国婚姻法》…的解释 is about 婚姻法 without being it. Names are
compared without 中华人民共和国, 省 and 市 (广东失业保险条例 is 广东省失业保险条例), by title and by
file name. When no document has that name the statute is not among the documents: 合同法 and
婚姻法 were repealed by the 民法典, and their article numbers are not the code's.

A name ending as a rule does (the pattern rule_name_end: …规定, …办法, …细则, …规则) is often said
loosely ('民间借贷规定' for 最高人民法院关于审理民间借贷案件适用法律若干问题的规定), so it is not held to
a document's whole name; but the documents that answer it must hold each of its words before that
ending: '国有企业职工待业保险规定' is not 国有企业富余职工安置规定, which lacks 待业 and 保险.

Other endings (规划纲要, 婚姻家庭编的解释, 两个确保的通知) name documents loosely, as
DocumentNames scores them.

A name no document has is told as the question says it, without the words that ask
(the word set name_lead): '我想问一下物业管理条例' -> 物业管理条例.

>>> statute_names("请问合同法", re.compile(r"(?:法典?|条例|通则)$"))
['请问合同法', '问合同法', '合同法', '同法']
>>> plain_name("中华人民共和国 劳动合同法"), plain_name("广东省失业保险条例")
('劳动合同法', '广东失业保险条例')
"""
from __future__ import annotations

import re

from assistant.articles import PREFIX
from index.lexicon import Lexicon
from index.types import Document
from index.versions import work_key

NAME_RUN = re.compile(r"[\u4e00-\u9fff]+$")


def name_run(before: str) -> str:
    """The run of Chinese characters `before` ends with, past the marks and particles that may
    stand between a name and its clause reference ('《劳动法》的' -> '劳动法'); '' when there is none."""
    m = NAME_RUN.search(before.rstrip(" 的之中里》《"))
    return m.group() if m else ""


def statute_names(before: str, ending: re.Pattern) -> list[str]:
    """The endings (2 characters or more, longest first) of the run of Chinese characters that
    `before` ends with, when the run ends as a statute's name; [] otherwise."""
    run = name_run(before)
    if not run or not ending.search(run):
        return []
    return [run[i:] for i in range(len(run) - 1)]


def plain_name(name: str) -> str:
    """A name as names are compared: no 中华人民共和国, 省, 市, spaces or book-title marks."""
    name = re.sub(r"[\s《》]", "", name)
    return name.removeprefix(PREFIX).replace("省", "").replace("市", "")


def repealed_by_name(lexicon: Lexicon) -> dict[str, tuple[str, str]]:
    """The lexicon's repealed statutes under their plain names, as names are compared (城市房屋拆迁管理条例
    loses its 市 on both sides): plain name -> (date repealed, successor)."""
    return {plain_name(name): row for name, row in lexicon.repealed.items()}


class Statutes:
    """The documents under each plain name (their title's, and their file name's without its date)."""

    def __init__(self, docs: list[Document], lexicon: Lexicon):
        self.lexicon = lexicon
        self.ending = lexicon.pattern("statute_name_end")
        self.rule_ending = lexicon.pattern("rule_name_end")
        self.repealed = repealed_by_name(lexicon)  # known although no document has them
        self.by_name: dict[str, set[str]] = {}
        for d in docs:
            for name in {plain_name(d.title), plain_name(work_key(d)[1])} - {""}:
                self.by_name.setdefault(name, set()).add(d.doc_id)

    def named(self, before: str) -> tuple[str, frozenset[str]] | None:
        """(the statute's name as asked, the documents of that name) when the words before a clause
        reference end as a statute's name: the longest ending that some document is named;
        (the name, empty) when none is, the name being the longest ending the lexicon knows to be
        repealed (请问城市房屋拆迁管理条例), else the name as said (`spoken_name`). A rule's name
        (…规定, …办法) is answered by the documents whose names hold its words (`rule_named`).
        None when the words do not end as either."""
        endings = statute_names(before, self.ending)
        if not endings:
            return self.rule_named(before)
        exact = self._exactly_named(endings)
        if exact:
            return exact
        known = next((n for n in endings if plain_name(n) in self.repealed), None)
        return known or spoken_name(before, self.lexicon), frozenset()

    def rule_named(self, before: str) -> tuple[str, frozenset[str]] | None:
        """(a rule's name as said, the documents whose names hold each of its words before the
        ending), for words that end as a rule's name does; None otherwise."""
        endings = statute_names(before, self.rule_ending)
        if not endings:
            return None
        exact = self._exactly_named(endings)
        if exact:
            return exact
        name = spoken_name(before, self.lexicon)
        stem = self.rule_ending.sub("", plain_name(name))  # the words before the ending, however jieba cuts it
        words = [w for w in self.lexicon.jieba.lcut(stem) if len(w) >= 2 and w not in self.lexicon.stopwords]
        if not words:
            return None  # '有关规定': no name at all
        ids = {i for title, docs in self.by_name.items() if all(w in title for w in words) for i in docs}
        return name, frozenset(ids)

    def unindexed_notice(self, name: str) -> str:
        """What the reply says of a statute asked for by name that no document is, with what took its
        place when the lexicon knows it was repealed (repealed.tsv)."""
        repealed = self.repealed.get(plain_name(name))
        why = f"（已于 {repealed[0]} 废止，由《{repealed[1]}》取代，条款号不同）" if repealed else ""
        return f"已收录的文件中没有《{name}》{why}，无法按条款号查找；以下按问题的内容检索"

    def _exactly_named(self, endings: list[str]) -> tuple[str, frozenset[str]] | None:
        """(the longest ending that some document is named, those documents); None when none is."""
        for name in endings:
            ids = self.by_name.get(plain_name(name))
            if ids:
                return name, frozenset(ids)
        return None


def spoken_name(before: str, lexicon: Lexicon) -> str:
    """The name the words before a clause reference end with, without the words before it that ask
    (the lexicon's word set name_lead): '我想问一下物业管理条例' -> '物业管理条例',
    '请问城市房屋拆迁管理条例' -> '城市房屋拆迁管理条例'."""
    run = name_run(before)
    if not run:
        return ""
    lead = lexicon.words("name_lead")
    words = lexicon.jieba.lcut(run)
    start = max((i + 1 for i, w in enumerate(words) if w in lead), default=0)
    return "".join(words[start:]) or run
