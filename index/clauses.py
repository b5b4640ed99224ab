"""Parse a document's clean text into its tree of numbered clauses.

Levels, outermost first: 第X编 > 第X章 > 第X节 > 第X条 > 款 (paragraphs of an article) >
一、 > (一) > 1. > (1) > ①. A marker only starts a clause at a boundary (line start,
after whitespace or after 。；：) and when its number continues its siblings, so
cross-references ("依照第十条", "按本条第(二)项") stay text. Real numbers are kept:
a document that goes 四 then 六 keeps 六. A marker garbled into mojibake is inferred
from its neighbours. Documents without numbering are cited by paragraph (第N段).

>>> cs = parse_clauses("d", "前言。\\n一、目标 做好工作。\\n(一)扩面。\\n1.地税部门征缴。\\n三、要求 依照第十条办理。")
>>> [(c.label, c.path, c.headings) for c in cs]
[('前言', ('前言',), ()), ('一、', ('一',), ()), ('一、(一)', ('一', '(一)'), ('目标',)), ('一、(一)1.', ('一', '(一)', '1'), ('目标', '扩面')), ('三、', ('三',), ())]
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from index.clean import page_at
from index.meta import cn_small_number
from index.types import Clause

CN_NUM = "[一二三四五六七八九十百千零〇两]+"
RANK = {"part": 0, "chapter": 1, "section": 2, "article": 3, "paragraph": 4,
        "l1": 5, "l2": 6, "l3": 7, "l4": 8, "l5": 9}
HEADING_KINDS = ("part", "chapter", "section")
CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
MARKER = re.compile(
    rf"(?P<part>第(?P<part_n>{CN_NUM})编)(?=[\s\u3000])"
    rf"|(?P<chapter>第(?P<chapter_n>{CN_NUM})章)(?=[\s\u3000]|$)"
    rf"|(?P<section>第(?P<section_n>{CN_NUM})节)(?=[\s\u3000]|$)"
    rf"|(?P<article>第(?P<article_n>{CN_NUM})条(?:之(?P<article_sub>{CN_NUM}))?)(?P<article_next>.?)"
    r"|(?P<l1>(?P<l1_n>[一二三四五六七八九十]{1,3})、)"
    r"|(?P<l2>[(（](?P<l2_n>[一二三四五六七八九十]{1,3})[)）])"
    r"|(?P<l3>(?P<l3_n>\d{1,2})(?:[.．](?!\d)|、))"
    r"|(?P<l4>[(（](?P<l4_n>\d{1,2})[)）])"
    rf"|(?P<l5>[{CIRCLED}])"
)
BOUNDARY_BEFORE = set("\n \t\u3000。；;：:！？!?")
# after "第十条" at a line start these characters mean a reference, not an article
ARTICLE_REFERENCE_NEXT = set("的规中和或至、，,。及与")
HEADING_END = re.compile(r"[ \n\u3000。:：；;]")


@dataclass
class _Node:
    kind: str
    num: int
    piece: str  # label piece: "四、", "(二)", "3.", "第十条", "第二款", "第(一)项"
    start: int
    inferred: bool = False
    parent: "_Node | None" = None
    children: list = field(default_factory=list)
    own_end: int = 0
    end: int = 0

    @property
    def rank(self) -> int:
        return RANK[self.kind]


@dataclass
class _Candidate:
    kind: str  # a RANK key, or "garbled"
    num: int
    start: int
    end: int  # end of the marker itself


def _candidates(text: str, garbled: list[tuple[int, int]]) -> list[_Candidate]:
    out = []
    for m in MARKER.finditer(text):
        s = m.start()
        before = text[s - 1] if s else "\n"
        if before not in BOUNDARY_BEFORE:
            continue
        kind = next(k for k in RANK if k in m.groupdict() and m.group(k))
        if kind == "article":
            nxt = m.group("article_next")
            if not (nxt == "" or nxt.isspace()) and (before != "\n" and s != 0 or nxt in ARTICLE_REFERENCE_NEXT):
                continue
            end = m.end("article")
        else:
            end = m.end()
        try:
            num = _number(m.group(kind + "_n") if kind != "l5" else m.group("l5"))
        except ValueError:
            continue
        if kind == "article":  # 第十条 < 第十条之一 < 第十一条: numbered as 1000, 1001, 1100
            num = num * 100 + (cn_small_number(m.group("article_sub")) if m.group("article_sub") else 0)
        out.append(_Candidate(kind, num, s, end))
    for s, e in garbled:
        if s == 0 or text[s - 1] in BOUNDARY_BEFORE:
            out.append(_Candidate("garbled", 0, s, e))
    out.sort(key=lambda c: c.start)
    # a garbled span swallows candidates that start inside it
    cleaned: list[_Candidate] = []
    for c in out:
        if cleaned and cleaned[-1].kind == "garbled" and c.start < cleaned[-1].end:
            continue
        cleaned.append(c)
    return _infer_garbled(cleaned)


def _number(s: str) -> int:
    if s in CIRCLED:
        return CIRCLED.index(s) + 1
    return cn_small_number(s)


def _infer_garbled(cands: list[_Candidate]) -> list[_Candidate]:
    """Give each garbled marker the kind and number its intact neighbours imply.

    (一)? (二)? before an intact (三) become (一) (二); a garbled marker after (三) and
    before a higher-level 四、 becomes (四).
    """
    real = [i for i, c in enumerate(cands) if c.kind != "garbled"]
    for i, c in enumerate(cands):
        if c.kind != "garbled":
            continue
        prev = next((cands[j] for j in reversed(real) if j < i), None)
        nxt = next((cands[j] for j in real if j > i), None)
        k_before = sum(1 for j in range(i) if cands[j].kind == "garbled" and (prev is None or cands[j].start > prev.start))
        k_after = sum(1 for j in range(i + 1, len(cands)) if cands[j].kind == "garbled" and (nxt is None or cands[j].start < nxt.start))
        if nxt is not None and (prev is None or RANK[nxt.kind] > RANK[prev.kind]):
            c.kind, c.num = nxt.kind, nxt.num - (k_after + 1)
        elif prev is not None:
            c.kind, c.num = prev.kind, prev.num + k_before + 1
        if c.num < 1:
            c.kind = "garbled"
    return [c for c in cands if c.kind != "garbled"]


def _piece(kind: str, num: int, text: str, cand: _Candidate, in_article: bool) -> str:
    raw = text[cand.start:cand.end]
    if kind == "article":
        return raw.replace(" ", "")
    if kind in HEADING_KINDS:
        return raw
    cn = _to_cn(num)
    if kind == "l1":
        return f"{cn}、"
    if kind == "l2":
        return f"第({cn})项" if in_article else f"({cn})"
    if kind == "l3":
        return f"第{num}目" if in_article else f"{num}."
    if kind == "l4":
        return f"({num})"
    return CIRCLED[num - 1] if num <= len(CIRCLED) else f"({num})"


def _to_cn(n: int) -> str:
    digits = "零一二三四五六七八九"
    if n < 10:
        return digits[n]
    if n < 20:
        return "十" + (digits[n % 10] if n % 10 else "")
    if n < 100:
        return digits[n // 10] + "十" + (digits[n % 10] if n % 10 else "")
    if n < 1000:
        rest = n % 100
        tail = "" if rest == 0 else ("零" + digits[rest] if rest < 10 else (_to_cn(rest) if rest >= 20 else "一" + _to_cn(rest)))
        return digits[n // 100] + "百" + tail
    return str(n)


def _accept(stack: list[_Node], root: _Node, kind: str, num: int, at_line_start: bool) -> _Node | None:
    """The parent the marker attaches to, or None when it does not continue its siblings."""
    rank = RANK[kind]
    depth = len(stack)
    while depth and stack[depth - 1].rank >= rank:
        depth -= 1
    parent = stack[depth - 1] if depth else root
    prev = next((ch for ch in reversed(parent.children) if ch.kind == kind), None)
    if kind in HEADING_KINDS or kind == "article":
        if not at_line_start and kind != "article":
            return None
        return parent if (prev is None or num > prev.num) else None
    if prev is not None:
        return parent if prev.num < num <= prev.num + 3 else None
    if parent is root:
        return parent if num <= 3 else None
    return parent if num == 1 else None


def parse_clauses(doc_id: str, text: str, page_marks: list[tuple[int, int]] | None = None,
                  garbled: list[tuple[int, int]] | None = None) -> list[Clause]:
    """Clauses of one document in reading order (see module docstring for an example)."""
    page_marks = page_marks or []
    cands = _candidates(text, garbled or [])
    root = _Node("part", 0, "", 0)
    root.kind = "root"
    stack: list[_Node] = []
    nodes: list[_Node] = []
    inferred_starts = {s for s, _ in (garbled or [])}

    def attach(node: _Node, parent: _Node):
        while stack and stack[-1] is not parent:
            stack.pop()
        node.parent = parent
        parent.children.append(node)
        stack.append(node)
        nodes.append(node)

    line_starts = [0] + [m.end() for m in re.finditer(r"\n", text)]
    cand_at = {c.start: c for c in cands}
    structural = 0
    for pos in sorted(set(cand_at) | set(line_starts)):
        if pos >= len(text):
            continue
        c = cand_at.get(pos)
        at_line_start = pos == 0 or text[pos - 1] == "\n"
        if c is not None:
            parent = _accept(stack, root, c.kind, c.num, at_line_start)
            if parent is not None:
                in_article = any(n.kind == "article" for n in _chain(parent))
                node = _Node(c.kind, c.num, _piece(c.kind, c.num, text, c, in_article), c.start,
                             inferred=c.start in inferred_starts)
                attach(node, parent)
                structural += 1
                continue
        if at_line_start and stack and any(n.kind == "article" for n in stack):
            # a new line inside an article without a marker is its next 款
            article = next(n for n in reversed(stack) if n.kind == "article")
            n_par = sum(1 for ch in article.children if ch.kind == "paragraph") + 2
            attach(_Node("paragraph", n_par, f"第{_to_cn(n_par)}款", pos), article)

    if structural < 2:
        return _paragraph_clauses(doc_id, text, page_marks)
    # own text runs to the next clause; a subtree ends where the next non-descendant starts
    nodes.sort(key=lambda n: n.start)
    for i, n in enumerate(nodes):
        n.own_end = nodes[i + 1].start if i + 1 < len(nodes) else len(text)
    for n in reversed(nodes):
        n.end = max([n.own_end] + [ch.end for ch in n.children])

    clauses: list[Clause] = []
    first = nodes[0].start if nodes else len(text)
    if text[:first].strip():
        clauses.append(Clause(doc_id, f"{doc_id}#前言", "前言", ("前言",), "preamble", (), "",
                              text[:first].strip(), 0, first, page_at(page_marks, 0)))
    seen: set[str] = set()
    ids: dict[int, str] = {}
    for n in nodes:
        chain = _chain(n)
        label_nodes = [a for a in chain if a.kind not in HEADING_KINDS]
        if n.kind in HEADING_KINDS:
            label_nodes = [a for a in chain if a.kind in HEADING_KINDS]
        label = "".join(a.piece for a in label_nodes)
        path = tuple(a.piece.rstrip("、.") for a in label_nodes)
        own = text[n.start:n.own_end].strip()
        heading = _heading(n, text)
        headings = tuple(h for h in (_heading(a, text) for a in chain[:-1]) if h)
        cid = f"{doc_id}#{'.'.join(path)}"
        k = 2
        while cid in seen:
            cid = f"{doc_id}#{'.'.join(path)}~{k}"
            k += 1
        seen.add(cid)
        ids[id(n)] = cid
        clauses.append(Clause(
            doc_id=doc_id, clause_id=cid, label=label, path=path,
            kind=n.kind, headings=headings, heading=heading, text=own,
            start=n.start, end=n.end, page=page_at(page_marks, n.start),
            parent_id=ids.get(id(n.parent)) if n.parent is not None else None,
            inferred=n.inferred,
        ))
    return clauses


def _chain(n: _Node) -> list[_Node]:
    out = []
    while n is not None and n.kind != "root":
        out.append(n)
        n = n.parent
    return out[::-1]


def _heading(n: _Node, text: str) -> str:
    """Short title of a clause: '四、工作措施 (一)…' -> '工作措施'; '' for running text."""
    if n.kind in HEADING_KINDS:
        return text[n.start:n.own_end].strip().split("\n", 1)[0].strip()
    if n.kind in ("article", "paragraph") or n.inferred:
        return ""
    body = text[n.start + len_marker(n, text):n.own_end]
    m = HEADING_END.search(body)
    head = body[: m.start()] if m else body
    head = head.strip().rstrip(",，、")
    return head if 0 < len(head) <= 30 else ""


def len_marker(n: _Node, text: str) -> int:
    """Length of the marker that opens node `n` (0 for an inferred, garbled one)."""
    m = None if n.inferred else MARKER.match(text, n.start)
    if m is None:
        return 0
    return (m.end("article") if m.group("article") else m.end()) - n.start


def _paragraph_clauses(doc_id: str, text: str, page_marks, all_lines: bool = False) -> list[Clause]:
    """Un-numbered documents: short header lines first, then one clause per paragraph (第N段).

    A document with no line that looks like body text (every line short: a notice of a few
    lines) is cited line by line, header included, so that it still has clauses:
    _paragraph_clauses("d", "通知\n明天放假。", []) -> [第1段 '通知', 第2段 '明天放假。']
    """
    clauses: list[Clause] = []
    offset, body_started, n = 0, all_lines, 0
    for line in text.split("\n"):
        start = offset
        offset += len(line) + 1
        stripped = line.strip()
        if not stripped:
            continue
        # header lines (title, date, column) carry no sentence punctuation
        if not body_started and not (len(stripped) >= 30 and re.search(r"[。，,；]", stripped)):
            continue
        body_started = True
        n += 1
        label = f"第{n}段"
        clauses.append(Clause(doc_id, f"{doc_id}#{label}", label, (label,), "para", (), "",
                              stripped, start, start + len(line), page_at(page_marks, start)))
    if not clauses and not all_lines and text.strip():
        return _paragraph_clauses(doc_id, text, page_marks, all_lines=True)
    return clauses
