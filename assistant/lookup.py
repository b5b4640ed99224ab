"""Exact clause lookup: find the clause a question names, before any semantic search.

>>> [(sorted(k), n) for k, n in parse_clause_ref("规划纲要第二部分(三)第1条讲什么")]
[(['l1'], 2), (['l2'], 3), (['article', 'l1', 'l3'], 1)]
>>> [(sorted(k), n) for k, n in parse_clause_ref("二、(四)3")]
[(['l1'], 2), (['l2'], 4), (['l3'], 3)]
>>> [(sorted(k), n) for k, n in parse_clause_ref("第七条讲了什么")]
[(['article', 'l1', 'l3'], 7)]
>>> parse_clause_ref("自由职业者怎么交养老保险")
[]
"""
from __future__ import annotations

import re
from functools import lru_cache

from assistant.names import DocumentNames
from assistant.statutes import Statutes
from index.lexicon import Lexicon, load_lexicon
from index.meta import cn_small_number
from index.types import Clause, Document

N = r"(?:[一二三四五六七八九十百千零两]+|\d{1,4})"  # 民法典 runs to 第一千二百六十条
RANGE = r"\s*(?:至|到|~|～|-|－|—)\s*"
MAX_RANGE = 50  # articles one range may name: 第一条至第一千二百六十条 is not a lookup
REF_TOKEN = re.compile(
    rf"(?P<range>第(?P<range_a>{N})条?{RANGE}第?(?P<range_b>{N})条(?!之))"
    rf"|(?P<part>第(?P<part_n>{N})部分)"
    rf"|(?P<chapter>第(?P<chapter_n>{N})章)"
    rf"|(?P<l1>(?<![\d一二三四五六七八九十第])(?P<l1_n>[一二三四五六七八九十]{{1,3}})(?:、|(?=[(（])))"
    rf"|(?P<paren>[(（](?P<paren_n>{N})[)）](?:项)?)"
    rf"|(?P<tiao>第(?P<tiao_n>{N})(?:条|点)(?:之(?P<tiao_sub>[一二三四五六七八九十]+))?)"
    rf"|(?P<bare>(?<=[法例典则])(?P<bare_n>{N})条)"  # 劳动合同法三十九条, 劳动法44条: right after a statute's name
    rf"|(?P<more>(?<=[和与及、])(?P<more_n>{N})条)"  # ...三十九条和四十条: only after another reference
    rf"|(?P<kuan>第(?P<kuan_n>{N})款)"
    rf"|(?P<xiang>第[(（]?(?P<xiang_n>{N})[)）]?项)"
    rf"|(?P<duan>第(?P<duan_n>{N})段)"
    rf"|(?P<dot>(?<![\d.])(?P<dot_n>\d{{1,2}})(?:[.．](?!\d)|$|(?=[^\d万元%％年月日岁个人周]))(?![\d]))"
)
TIAO_KINDS = {"article", "l1", "l3"}


def _numbered_title(lexicon: Lexicon | None) -> re.Pattern:
    """The lexicon's numbered_title: a name that a (N) continues (修正案（十二）, 解释（一）); the
    default lexicon's when none is given."""
    return (lexicon or load_lexicon()).pattern("numbered_title")


def _num(s: str) -> int:
    return int(s) if s.isdigit() else cn_small_number(s)


def parse_clause_ref(question: str, lexicon: Lexicon | None = None) -> list[tuple[set, int | tuple[int, int]]]:
    """The clause path a question names, as [(acceptable kinds, number), ...]; [] if none.
    An added article (刑法第一百二十条之一) has the number (120, 1)."""
    refs = _parse_refs(question, lexicon)
    return refs[0][0] if refs else []


def clause_refs(question: str, lexicon: Lexicon | None = None) -> list[list[tuple[set, int | tuple[int, int]]]]:
    """Every clause path a question names, joined by 和/与/及/、: '第三十九条和第四十条' -> [[39], [40]];
    a range names each article in it: '第三十九条至第四十一条' -> [[39], [40], [41]];
    a later one shares the earlier one's levels above its own: '第二部分(三)第1条和第2条' -> [2,(三),1],
    [2,(三),2]."""
    return _joined([ref for ref, _ in _parse_refs(question, lexicon)])


def clause_ref_span(question: str, lexicon: Lexicon | None = None) -> tuple[int, int] | None:
    """Where in the question its clause references stand: '刑法第一百二十条讲什么' -> (2, 8)."""
    return _span(_parse_refs(question, lexicon))


def _joined(refs: list[list]) -> list[list]:
    """Each reference after the first with the first one's levels above its own (see clause_refs)."""
    out = []
    for ref in refs:
        if out:
            first = out[0]
            i = max((j for j, (kinds, _) in enumerate(first) if kinds & ref[0][0]), default=len(first))
            ref = first[:i] + ref
        out.append(ref)
    return out


def _span(parsed: list[tuple[list, tuple[int, int]]]) -> tuple[int, int] | None:
    return (parsed[0][1][0], parsed[-1][1][1]) if parsed else None


JOINED = re.compile(rf"\s*(?:和|与|及|以及|、|，|,|跟|或者?|{RANGE})\s*")  # a range of other pieces, (一)至(三): its two ends


def _parse_refs(question: str, lexicon: Lexicon | None = None) -> list[tuple[list, tuple[int, int]]]:
    """[(reference, its span)], each reference a contiguous run of tokens; a conjunction between
    two starts the next, any other words end the list."""
    refs: list[tuple[list, tuple[int, int]]] = []
    out: list[tuple[set, int | tuple[int, int]]] = []
    last_end = None
    span = None
    for m in REF_TOKEN.finditer(question):
        if out and question[last_end:m.start()].strip(" 的之中里") != "":
            if not JOINED.fullmatch(question[last_end:m.start()]):
                break  # other words: the references end here
            refs.append((out, span))  # '第三十九条和第四十条': the next reference
            out, span = [], None
        kind = m.lastgroup
        try:
            if kind == "range":
                numbers = _range(m)
            else:
                n = _num(m.group(kind + "_n"))
                numbers = [(n, cn_small_number(m.group("tiao_sub"))) if kind == "tiao" and m.group("tiao_sub") else n]
        except (ValueError, IndexError):
            continue
        if kind == "paren" and not out and not refs and _numbered_title(lexicon).search(question[:m.start()]):
            continue  # 刑法修正案（十二）第一条: the （十二） is the document's name, not a section
        if kind == "dot" and not out:
            continue  # a bare number only counts after a section reference: "二、(四)3"
        if kind == "more" and not (out or refs):
            continue  # '我和三条狗': no reference before it
        for i, n in enumerate(numbers):
            if i:  # each later article of a range is a reference of its own, under the same levels
                refs.append((out, span))
                out, span = [], None
            out.append(_piece(kind, n, m, out))
            span = (span[0] if span else m.start(), m.end())
        last_end = m.end()
    if out:
        refs.append((out, span))
    return refs


def _piece(kind: str, n, m: re.Match, before: list) -> tuple[set, int | tuple[int, int]]:
    """(acceptable kinds, number) of one reference token, given the pieces `before` it."""
    if kind in ("part", "l1"):
        return {"l1"}, n
    if kind == "chapter":
        return {"chapter"}, n
    if kind == "paren":
        return ({"l2", "l4"} if m.group("paren_n").isdigit() and before and _has_l2(before) else {"l2"}), n
    if kind in ("range", "tiao", "bare", "more"):
        return ({"article"} if isinstance(n, tuple) else set(TIAO_KINDS)), n
    return {"kuan": {"paragraph"}, "xiang": {"l2"}, "duan": {"para"}, "dot": {"l3"}}[kind], n


def _range(m: re.Match) -> list[int]:
    """The article numbers of a range token: '第三十九条至第四十一条' -> [39, 40, 41]; a backwards or
    overlong one names just its two ends."""
    a, b = _num(m.group("range_a")), _num(m.group("range_b"))
    return list(range(a, b + 1)) if a < b <= a + MAX_RANGE else [a, b]


def _has_l2(ref) -> bool:
    return any("l2" in kinds for kinds, _ in ref)


def clause_signature(clause: Clause) -> list[tuple[str, int]]:
    """[(kind, number)] of a clause's path: ('四', '(二)', '3') -> [('l1', 4), ('l2', 2), ('l3', 3)]."""
    return [piece_signature(piece) for piece in clause.path]


# path pieces other than articles, in the order they are tried: (pattern, its number in group 1; kind)
PIECE_KINDS = tuple((re.compile(p), kind) for p, kind in (
    (r"第(.+)款", "paragraph"), (r"第\((.+)\)项", "l2"), (r"第(\d+)段", "para"), (r"第(\d+)目", "l3"),
    (r"\(([一二三四五六七八九十百]+)\)", "l2"), (r"\((\d+)\)", "l4"), (r"(\d+)", "l3"),
    (r"([一二三四五六七八九十百]+)", "l1"), (r"第(.+)[章节编]", "chapter")))


@lru_cache(maxsize=None)
def piece_signature(piece: str) -> tuple[str, int | tuple[int, int]]:
    """(kind, number) of one path piece, parsed once per distinct piece ('第七条', '(二)', '第二款'
    recur across thousands of clauses): '第一千零七十九条' -> ('article', 1079)."""
    m = re.fullmatch(r"第(.+?)条(?:之(.+))?", piece)
    try:
        if m and m.group(2):  # an added article: 第一百二十条之一 -> (120, 1)
            return "article", (cn_small_number(m.group(1)), cn_small_number(m.group(2)))
        if m:
            return "article", cn_small_number(m.group(1))
        for pattern, kind in PIECE_KINDS:
            m = pattern.fullmatch(piece)
            if m:
                return kind, cn_small_number(m.group(1))
    except ValueError:
        pass
    return "other", -1


def signature_matches(ref: list[tuple[set, int]], sig: list[tuple[str, int]]) -> bool:
    """Whether a path signature is exactly the referenced path."""
    return len(sig) == len(ref) and all(kind in kinds and num == n for (kind, num), (kinds, n) in zip(sig, ref))


def match_ref(ref: list[tuple[set, int]], clause: Clause) -> bool:
    """Whether a clause's path is exactly the referenced path."""
    return signature_matches(ref, clause_signature(clause))


def lookup_clauses(question_norm: str, docs: list[Document], names: DocumentNames | None = None,
                   max_docs: int = 3, statutes: Statutes | None = None,
                   lexicon: Lexicon | None = None) -> list[Clause]:
    """Clauses the question names exactly, in the documents it names (or all), best first.

    `names` is a prebuilt DocumentNames over a superset of `docs` (the retriever keeps one); with
    `statutes`, a statute named by its name ('合同法第五十二条') is looked up in the documents of
    that name only, and in none when no document has it (assistant/statutes.py).
    Matches come from at most `max_docs` documents: "第七条" alone, over 1,510 laws, need not
    collect 1,510 articles (the caller says that the reference is ambiguous).
    """
    parsed = _parse_refs(question_norm, lexicon)
    if not parsed:
        return []
    refs, (start, end) = _joined([ref for ref, _ in parsed]), _span(parsed)
    named = statutes.named(question_norm[:start]) if statutes is not None else None
    if named is not None:
        docs = [d for d in docs if d.doc_id in named[1]]
        if not docs:
            return []  # the statute asked for is not among the documents
    # the documents are named by the rest of the question: in '刑法第一百二十条' the '法第' of 刑法第十二条's
    # interpretation would otherwise outweigh 中华人民共和国刑法
    if names is None:
        names = DocumentNames(docs, (lexicon or load_lexicon()).words("generic_name_bigrams"), file_names=True)
    groups = names.near_best(question_norm[:start] + " " + question_norm[end:], {d.doc_id for d in docs})
    for pool in groups or [docs]:
        found = list({c.clause_id: c for ref in refs for c in _in_pool(ref, pool, max_docs)}.values())
        if found:
            return found
    return []


def _in_pool(ref: list[tuple[set, int]], pool: list[Document], max_docs: int) -> list[Clause]:
    """The clauses of `pool` the reference names: exactly; an article for its first 款; else a
    unique clause whose path ends with the reference."""
    found = _exact(ref, pool, max_docs)
    if not found and len(ref) > 1 and ({"paragraph"}, 1) in ref:
        # an article's first 款 is its own text, and its items hang on the article: only the later
        # 款 are clauses of their own (劳动法第四十四条第一款第(二)项 is 第四十四条第(二)项)
        ref = [piece for piece in ref if piece != ({"paragraph"}, 1)]
        found = _exact(ref, pool, max_docs)
    if not found and len(ref) > 1:
        # "(三)第1条" without its section: accept a unique suffix match
        suffix = [c for d in pool for c in d.clauses if len(c.path) > len(ref)
                  and signature_matches(ref, clause_signature(c)[-len(ref):])]
        if len(suffix) == 1:
            found = suffix
    return found


def _exact(ref: list[tuple[set, int]], pool: list[Document], max_docs: int) -> list[Clause]:
    """The clauses whose path is the reference, from the first `max_docs` documents that have one."""
    found: list[Clause] = []
    n_docs = 0
    for d in pool:
        if n_docs >= max_docs:
            break
        matches = [c for c in d.clauses if match_ref(ref, c)]
        found.extend(matches)
        n_docs += bool(matches)
    return found
