"""Grounded answers: evidence scoring, abstention, the extractive answerer and citation checks.

The extractive answerer needs no model: it picks the sentences of the top clauses that cover the
question best, puts the sentence holding the asked-for number, date or department first, and
quotes them verbatim, each answer sentence ending with its marker [n].
"""
from __future__ import annotations

import math
import re
import time
from typing import Callable
from dataclasses import dataclass, replace

from assistant.types import Citation, Hit
from index.chunk import split_sentences
from index.clean import MOJIBAKE_CHARS, MOJIBAKE_SPAN
from index.lexical import SYNONYMS, tokenize
from index.normalize import to_simplified
from index.types import Clause, Document

ASKS_NUMBER = re.compile(r"多少|几[个年月天岁项次%]|比例|百分|标准|基数|金额|多久|多长|年限|人数|比率|率是|数额|上限|下限|最低|最高")
ASKS_DATE = re.compile(r"什么时候|何时|哪天|哪一年|哪年|日期|时间|期限|截止|之前|几月|几号|多久")
ASKS_DEPARTMENT = re.compile(r"哪个部门|哪些部门|什么部门|谁负责|由谁|负责什么|职责|部门")
HAS_NUMBER = re.compile(r"\d|[一二三四五六七八九十百千万]+(?:万|%|个百分点|年|周岁)|百分")
HAS_DATE = re.compile(r"\d+\s*[年月日]|年底|年末|月底|季度|每月|每年")
HAS_DEPARTMENT = re.compile(r"部门|局|机构|机关|政府|委员会|办公室|工会|税务|财政|审计|工商")
LEADING_MARKER = re.compile(r"^\s*(?:第[一二三四五六七八九十百零]+条(?:之[一二三四五六七八九十]+)?\s*|[一二三四五六七八九十]+、|[(（][一二三四五六七八九十\d]+[)）]|\d{1,2}[.．、](?!\d)|[①-⑳])\s*")


@dataclass(frozen=True)
class Evidence:
    """One candidate sentence: where it is and how well it answers."""

    clause: Clause
    doc: Document
    sentence: str  # verbatim, leading clause marker removed
    score: float
    coverage: float
    hit_rank: int


class TermWeights:
    """IDF weights of query tokens over the indexed chunks (computed once per index)."""

    def __init__(self, doc_freq: Callable[[str], int], n: int):
        self.doc_freq = doc_freq  # token -> number of chunks containing it (the BM25 index's df)
        self.n = max(1, n)
        self.max_idf = math.log(1 + self.n)

    def idf(self, token: str) -> float:
        d = self.doc_freq(token)
        w = math.log(1 + (self.n - d + 0.5) / (d + 0.5)) if d else self.max_idf
        return w * (0.35 if len(token) == 1 else 1.0)

    def coverage(self, terms: list[str], text_norm: str, power: float = 1.0) -> float:
        """IDF-weighted share of the query terms that occur in text_norm (0..1).

        A term also counts when one of its document-vocabulary synonyms occurs ('交' ~ '缴纳').
        `power` > 1 sharpens the weighting toward the rarest terms ('地税' over '工作').
        """
        total = sum(self.idf(t) ** power for t in terms)
        if not total:
            return 0.0
        return sum(self.idf(t) ** power for t in terms if mentions(text_norm, t)) / total


def mentions(text_norm: str, term: str) -> bool:
    """Whether the text has the term or one of its document-vocabulary synonyms ('交' ~ '缴纳')."""
    return term in text_norm or any(a in text_norm for a in SYNONYMS.get(term, ()))


LEADING_PLACE = re.compile(r"^(?:[\u4e00-\u9fff]{2,4}?[省市县]|天津|本溪|辽宁|北京|上海)的?")
SUBJECT_STOP = set("在 的 负责 要 怎么 如何 是 有 对 应 应当 需 需要 该 可以 能 会 和 与 有哪些 有什么 都 主要 具体 承担 什么 哪些 "
                   "给 为 向 把 被 从 跟 同 替 ， , ? ？".split())
LOCATIVE = {"里", "中", "内", "中的", "里的"}


def question_subject(question_norm: str) -> str:
    """The phrase a question is about, when it opens with one.

    '地税部门在扩面工作中负责什么' -> '地税部门'; '专项行动里工商部门负责什么' -> '工商部门' (the scene
    before 里/中 is not the actor); '工商部门给企业发执照时要做什么' -> '工商部门'.
    """
    import jieba

    words = []
    question_norm = LEADING_PLACE.sub("", question_norm.strip())
    for w in jieba.lcut(question_norm):
        if w in SUBJECT_STOP or not w.strip():
            break
        words = [] if w in LOCATIVE else words + [w]
    subject = "".join(words)
    # only an actor makes a question "about" someone: 地税部门, 审计部门, 自由职业者
    return subject if 2 <= len(subject) <= 12 and AGENT.search(subject) else ""


AGENT = re.compile(r"(?:部门|局|厅|委|办|室|机构|机关|单位|政府|组织|企业|人员|职工|者|户|工会|银行|小组)$")


def shared_phrase(question_norm: str, text_norm: str) -> int:
    """Length of the longest run of characters the question and a text share ('低保标准' -> 4)."""
    from difflib import SequenceMatcher

    q = PUNCT.sub("", question_norm)
    t = PUNCT.sub("", text_norm)
    if not q or not t:
        return 0
    return SequenceMatcher(None, q, t, autojunk=False).find_longest_match(0, len(q), 0, len(t)).size


PUNCT = re.compile(r"[\s,，。；;：:！？!?、“”\"'（）()《》]")


def phrase_bonus(question_norm: str, text_norm: str) -> float:
    """0.1 per shared character beyond 3, at most 0.4: whole phrases matter more than scattered words."""
    return min(0.4, 0.1 * max(0, shared_phrase(question_norm, text_norm) - 3))


def opens_with(subject: str, text_norm: str) -> bool:
    """Whether a clause or sentence is about `subject`: it names it in its first words.

    Short names match their full form: '工商部门' opens '工商行政管理部门、质量技术监督部门在…',
    '地税部门' opens '地方税务部门…' (the name's characters in order, its agent word intact).
    """
    if not subject:
        return False
    head = LEADING_MARKER.sub("", text_norm.lstrip())[: len(subject) + 8]
    if subject in head[: len(subject) + 4]:
        return True
    agent = AGENT.search(subject)
    stem = subject[: agent.start()] if agent else ""
    if len(stem) < 2:
        return False
    return re.match(".{0,4}?".join(map(re.escape, stem)) + ".{0,6}?" + re.escape(agent.group()), head) is not None


def question_terms(question_norm: str) -> list[str]:
    return list(dict.fromkeys(tokenize(question_norm)))


def clause_context(clause: Clause, doc: Document) -> str:
    return to_simplified(" ".join((doc.title, *clause.headings, clause.heading)))


def evidence_units(hit: Hit, clauses_by_doc: dict[str, list[Clause]]) -> list[Clause]:
    """The clause of a hit, plus the 款/项 inside it when the chunk covered a whole article."""
    units = [hit.clause]
    if hit.clause.kind == "article" or hit.via == "lookup":
        units += [c for c in clauses_by_doc.get(hit.clause.doc_id, [])
                  if hit.clause.start < c.start < hit.clause.end]
    return units


FULL_SENTENCE = re.compile(r"[^。！？!?\n]+[。！？!?]?")


def _full_sentence(text: str, piece: str, limit: int = 120) -> str:
    """The whole 。-sentence around a ；-piece, when short enough to quote (keeps its subject)."""
    for full in FULL_SENTENCE.findall(text):
        if piece in full:
            full = quote_of(full.strip())
            return full if piece in full and len(full) <= limit else piece
    return piece


def score_evidence(question_norm: str, hits: list[Hit], weights: TermWeights,
                   clauses_by_doc: dict[str, list[Clause]], max_hits: int = 3) -> list[Evidence]:
    """Every sentence of the top clauses, scored for how well it answers the question, best first.

    score = coverage of the question words the document title does not already answer
            + 0.3 * coverage with title and headings + bonuses (asked-for number/date/department,
            the question's subject opening the sentence) + a rank prior; preambles and garbled
            text are penalised.
    """
    terms = question_terms(question_norm)
    wants = (bool(ASKS_NUMBER.search(question_norm)), bool(ASKS_DATE.search(question_norm)),
             bool(ASKS_DEPARTMENT.search(question_norm)))
    subject = question_subject(question_norm)
    out = []
    for rank, hit in enumerate(hits[:max_hits]):
        ctx = clause_context(hit.clause, hit.doc)
        doc_ctx = to_simplified(hit.doc.title + hit.doc.meta.issuer)
        # words the title already answers ("本溪") do not single out a sentence; numbers still do
        own_terms = [t for t in terms if t not in doc_ctx or any(ch.isdigit() for ch in t)] or terms
        for unit in evidence_units(hit, clauses_by_doc):
            unit_about = opens_with(subject, to_simplified(unit.text))
            # a clause titled after the question ("建立被征用土地农民的养老保险制度") is where it is
            # dealt with; a passing mention elsewhere is not
            titled = weights.coverage(terms, to_simplified(unit.heading), power=2) if unit.heading else 0.0
            for line in unit.text.split("\n"):
                pieces = split_sentences(line)
                line_head = to_simplified(quote_of(pieces[0])) if pieces else ""
                prev = ""
                for j, sent in enumerate(pieces):
                    quote = quote_of(sent)
                    if len(quote) < 4:
                        continue
                    norm = to_simplified(quote)
                    about = opens_with(subject, norm) or (j == 0 and unit_about and unit.text.startswith(line))
                    # a sentence about the subject names it, perhaps in full ('工商行政管理部门' for '工商部门')
                    named = norm + " " + subject if about or unit_about else norm
                    # a sentence may lean on the ones before it ("到2007年末,…。参保人数达到294.5万人")
                    cov = max(weights.coverage(own_terms, named, power=2),
                              0.85 * weights.coverage(own_terms, line_head + prev + named, power=2))
                    prev = norm
                    ctx_cov = weights.coverage(terms, ctx + norm, power=2)
                    bonus = 0.0
                    if wants[0] and HAS_NUMBER.search(norm):
                        bonus += 0.15
                    if wants[1] and HAS_DATE.search(norm):
                        bonus += 0.15
                    if wants[2] and HAS_DEPARTMENT.search(norm[:20]):
                        bonus += 0.15
                    if about:
                        bonus += 0.5
                    bonus += phrase_bonus(question_norm, norm)
                    if MOJIBAKE_CHARS.search(quote):
                        bonus -= 0.3  # garbled words make a poor quote
                    if unit.kind == "preamble":
                        bonus -= 0.3  # the covering notice rarely is the answer
                    score = cov + 0.3 * ctx_cov + 0.3 * titled + bonus + 0.25 / (1 + rank) + (0.3 if hit.via == "lookup" else 0)
                    out.append(Evidence(unit, hit.doc, _full_sentence(unit.text, quote), score, cov, rank))
    out.sort(key=lambda e: -e.score)
    return out


def rerank(question_norm: str, hits: list[Hit], weights: TermWeights, k: int, timings: dict | None = None,
           prefer_docs: list[str] | None = None) -> list[Hit]:
    """Re-order fused candidates by how much of the question (rare words first) each clause covers.

    Exact lookups stay first. final = coverage(idf^2) of the clause (best of its own text and
    the hit chunk, with title and headings) + 0.5 * fused / best fused + 0.4 if the question's
    subject opens the clause + a shared-phrase bonus (chunk) + 0.3 * coverage by the clause's own
    title + 0.3 in a preferred document (one the
    question names, or the conversation is about) - 0.3 for a preamble.
    """
    t = time.perf_counter()
    lookups = [h for h in hits if h.via == "lookup"]
    rest = [h for h in hits if h.via != "lookup"]
    if rest:
        terms = question_terms(question_norm)
        top = max(h.score for h in rest) or 1.0
        subject = question_subject(question_norm)

        def value(h: Hit) -> float:
            ctx = clause_context(h.clause, h.doc)
            about = opens_with(subject, h.chunk.norm_text) or opens_with(subject, to_simplified(h.clause.text))
            if about:  # it names the subject, perhaps in full ('工商行政管理部门' for '工商部门')
                ctx += " " + subject
            cov = max(weights.coverage(terms, ctx + h.chunk.norm_text, power=2),
                      weights.coverage(terms, ctx + to_simplified(h.clause.text), power=2))
            # a clause whose own title is about the question ("建立被征用土地农民的养老保险制度")
            titled = weights.coverage(terms, to_simplified(h.clause.heading), power=2) if h.clause.heading else 0.0
            return (cov + 0.5 * h.score / top + (0.4 if about else 0.0) + phrase_bonus(question_norm, h.chunk.norm_text)
                    + 0.3 * titled
                    + (0.3 if prefer_docs and h.doc.doc_id in prefer_docs else 0.0)
                    - (0.3 if h.clause.kind == "preamble" else 0.0))

        scored = sorted(((value(h), i, h) for i, h in enumerate(rest)), key=lambda x: (-x[0], x[1]))
        rest = [h for _, _, h in scored]
    if timings is not None:
        timings["rerank"] = timings.get("rerank", 0) + (time.perf_counter() - t) * 1000
    return lookups + rest[:k]


QUESTION_WORD = re.compile(r"^(?:哪|什么|多少|几|怎|如何|为何|为什么|是否)")
CONTENT_POS = ("n", "v", "a", "j", "l", "i", "s", "vn", "an", "eng")
NOUN_POS = ("n", "nr", "ns", "nt", "nz", "nrt", "vn", "j", "eng")


def evidence_terms(question_norm: str, weights: TermWeights) -> list[tuple[str, float]]:
    """(word, weight) of the question's content words, for deciding whether the documents answer it.

    Precise-mode words with their part of speech: function words (adverbs, pronouns, numerals,
    particles, time and place-position words) are left out; a word no indexed text contains
    weighs fully when it is a noun (the thing asked about: '护照') and little otherwise
    ('一直', '出来').
    """
    import jieba.posseg as pseg

    from index.lexical import STOPWORDS

    out: list[tuple[str, float]] = []
    for w, flag in pseg.cut(question_norm):
        w = w.strip().lower()
        if not w or w in STOPWORDS or not re.search(r"[\u4e00-\u9fff0-9a-z]", w) or QUESTION_WORD.match(w):
            continue
        if not (flag.startswith(CONTENT_POS) or w.isdigit()) or flag == "ns":
            continue  # place names are checked on their own (Assistant._unknown_places)
        idf = weights.idf(w)
        known_synonyms = [s for s in SYNONYMS.get(w, ()) if weights.doc_freq(s)]
        if weights.doc_freq(w) == 0 and known_synonyms:
            idf = max(weights.idf(s) for s in known_synonyms)  # it stands for the documents' word ('报给' ~ '报告')
        elif weights.doc_freq(w) == 0:
            nounish = flag in NOUN_POS or (flag == "l" and len(w) >= 4)
            parts = [p for p in tokenize(w) if len(p) >= 2 and p != w and weights.doc_freq(p)]
            if not nounish or len(w) < 2:
                idf = 0.3
            elif parts and jieba_freq(w) < 20:  # an ad-hoc compound of known words ("重点对象")
                idf = sum(weights.idf(p) for p in parts) / len(parts)
            else:
                idf = weights.max_idf
        out.append((w, idf))
    return out


def best_coverage(question_norm: str, hits: list[Hit], weights: TermWeights, max_hits: int = 3) -> float:
    """How much of the question's content the best of the top clauses covers (0..1).

    Weighted share of `evidence_terms` found in the clause with its title and headings (a word
    also counts when one of its document-vocabulary synonyms occurs, or when all its jieba
    sub-words do). Compared against Settings.min_coverage to decide abstention.
    """
    terms = evidence_terms(question_norm, weights)
    total = sum(w for _, w in terms)
    if not total:
        return 0.0
    best = 0.0
    for hit in hits[:max_hits]:
        text = clause_context(hit.clause, hit.doc) + to_simplified(hit.doc.text[hit.clause.start:hit.clause.end])
        got = sum(w * _present(t, text) for t, w in terms)
        best = max(best, got / total)
    return best


def jieba_freq(word: str) -> int:
    """How common a word is in general Chinese (jieba's dictionary count; 0 if unknown)."""
    import jieba

    jieba.initialize()
    return jieba.dt.FREQ.get(word) or 0


def _present(term: str, text: str) -> float:
    """1 if the term (or a synonym) is in text; for an ad-hoc compound, the share of its sub-words."""
    if mentions(text, term):
        return 1.0
    if jieba_freq(term) >= 20:
        return 0.0  # an ordinary word of its own ("个人所得税"): its parts do not stand for it
    parts = [p for p in tokenize(term) if len(p) >= 2 and p != term]
    return sum(p in text for p in parts) / len(parts) if parts else 0.0


def quote_of(sentence: str) -> str:
    """The quotable part of a sentence: without its clause marker or a garbled marker before it."""
    quote = LEADING_MARKER.sub("", sentence).strip()
    m = MOJIBAKE_SPAN.match(quote)
    if m:
        quote = quote[m.end():].strip()
    return quote


def make_citation(n: int, clause: Clause, doc: Document, quote: str) -> Citation:
    return Citation(n=n, doc_id=doc.doc_id, source=doc.source, title=doc.title, doc_number=doc.meta.doc_number,
                    label=clause.label, path=clause.path, headings=clause.headings, quote=quote,
                    text=clause.text, clause_id=clause.clause_id, page=clause.page)


def short_title(title: str, limit: int = 28) -> str:
    return title if len(title) <= limit else title[:limit] + "…"


def _sentence_end(quote: str) -> str:
    return quote.rstrip("；;，,、：: ") if quote[-1:] in "；;，,、：: " else quote


def extractive_answer(question_norm: str, hits: list[Hit], weights: TermWeights,
                      clauses_by_doc: dict[str, list[Clause]], max_sentences: int = 4) -> tuple[str, list[Citation]]:
    """(answer text with [n] markers, citations) built only from verbatim sentences."""
    evidence = score_evidence(question_norm, hits, weights, clauses_by_doc)
    if not evidence:
        return "", []
    lookup = hits and hits[0].via == "lookup"
    chosen: list[Evidence] = []
    if lookup:
        # a named clause: quote its opening sentences, then the first sentence of each part
        target = hits[0]
        for i, unit in enumerate(evidence_units(target, clauses_by_doc)):
            sents = [q for q in (quote_of(s) for s in split_sentences(unit.text)) if len(q) >= 4]
            for q in sents[: 2 if i == 0 else 1]:
                if len(chosen) < max_sentences + 2:
                    chosen.append(Evidence(unit, target.doc, q, 1.0, 1.0, 0))
    else:
        best = evidence[0]
        chosen.append(best)
        if len(best.sentence) <= 24:
            # a clause's title line ("逐步做实基本养老保险个人账户。") says little: add what follows it
            last = best.sentence
            for _ in range(2):
                follow = _next_sentence(best.clause.text, last)
                if not follow:
                    break
                chosen.append(Evidence(best.clause, best.doc, follow, best.score, best.coverage, best.hit_rank))
                last = follow
        covered = set(t for t in question_terms(question_norm) if t in to_simplified(best.sentence))
        for ev in evidence[1:]:
            if len(chosen) >= max_sentences or ev.score < 0.75 * best.score:
                break
            new_terms = {t for t in question_terms(question_norm) if t in to_simplified(ev.sentence)} - covered
            if ev.sentence in (c.sentence for c in chosen) or not new_terms:
                continue
            chosen.append(ev)
            covered |= new_terms
    citations: list[Citation] = []
    parts: list[str] = []
    for ev in chosen:
        existing = next((c for c in citations if c.clause_id == ev.clause.clause_id), None)
        if existing is not None:
            span = contiguous_span(ev.clause.text, existing.quote, ev.sentence)
            if span is None:
                existing = None
            else:
                updated = replace(existing, quote=span)
                citations[citations.index(existing)] = updated
                existing = updated
        if existing is None:
            existing = make_citation(len(citations) + 1, ev.clause, ev.doc, ev.sentence)
            citations.append(existing)
            lead = f"根据《{short_title(ev.doc.title)}》{ev.clause.label}：" if not parts else f"《{short_title(ev.doc.title)}》{ev.clause.label}还规定："
        else:
            lead = ""
        body = _sentence_end(ev.sentence)
        if not body.endswith(("。", "！", "？", "”")):
            body += "。"
        parts.append(f"{lead}{body[:-1]}[{existing.n}]{body[-1]}" if body[-1] in "。！？" else f"{lead}{body}[{existing.n}]")
    return "".join(parts), citations


def _next_sentence(text: str, sentence: str) -> str:
    """The quotable sentence right after `sentence` in `text`, or ''."""
    pieces = [quote_of(p) for p in split_sentences(text)]
    for i, p in enumerate(pieces[:-1]):
        if sentence in p or p in sentence:
            return next((q for q in pieces[i + 1:] if len(q) >= 4), "")
    return ""


def contiguous_span(text: str, a: str, b: str, max_gap: int = 40) -> str | None:
    """The verbatim span of `text` running from quote a to quote b (either order) when they are close.

    >>> contiguous_span("甲乙丙。丁戊己。", "甲乙丙", "丁戊己")
    '甲乙丙。丁戊己'
    """
    i, j = text.find(a), text.find(b)
    if i < 0 or j < 0:
        return None
    (s1, e1), (s2, e2) = sorted([(i, i + len(a)), (j, j + len(b))])
    if s2 - e1 > max_gap:
        return None
    return text[s1:max(e1, e2)]


# ---- citation verification (for model-written answers) ----

MARKER = re.compile(r"\[(\d{1,2})\]")
QUOTED = re.compile(r"[「“\"]([^」”\"]{4,})[」”\"]")
SENTENCE = re.compile(r"[^。！？!?\n]+[。！？!?]?")


def verify_citations(text: str, sources: list[tuple[Clause, Document]]) -> tuple[str, list[Citation], list[str]]:
    """Keep only citations that name a shown source and whose quoted words are in it.

    Returns (cleaned text renumbered to the kept sources, citations, notices). A sentence left
    without any valid citation is dropped, so every remaining statement is traceable.
    """
    notices: list[str] = []
    kept_sentences: list[str] = []
    used: dict[int, Citation] = {}
    removed_markers = dropped = 0
    for sent in SENTENCE.findall(text):
        if not sent.strip():
            continue
        markers = [int(m) for m in MARKER.findall(sent)]
        bare = MARKER.sub("", sent).strip()
        quotes = QUOTED.findall(bare)
        good: list[int] = []
        for n in markers:
            if not 1 <= n <= len(sources):
                removed_markers += 1
                continue
            clause, doc = sources[n - 1]
            src_norm = to_simplified(clause.text + doc.text[clause.start:clause.end])
            if quotes and not all(to_simplified(q) in src_norm for q in quotes):
                removed_markers += 1
                continue
            if not quotes and not _overlaps(bare, src_norm):
                removed_markers += 1
                continue
            good.append(n)
        if not good:
            if markers or len(bare) > 6:
                dropped += 1
            continue
        for n in good:
            if n not in used:
                clause, doc = sources[n - 1]
                used[n] = make_citation(len(used) + 1, clause, doc, _best_quote(quotes, bare, clause))
        kept_sentences.append(bare.rstrip("。！？!?") + "".join(f"[{used[n].n}]" for n in dict.fromkeys(good)) + "。")
    if removed_markers:
        notices.append(f"已移除 {removed_markers} 处无法在所示条款中核实的引用")
    if dropped:
        notices.append(f"已删去 {dropped} 句没有有效出处的内容")
    return "".join(kept_sentences), list(used.values()), notices


def _overlaps(sentence: str, source_norm: str, need: float = 0.5) -> bool:
    """At least `need` of the sentence's character bigrams occur in the source."""
    s = to_simplified(sentence)
    grams = {s[i:i + 2] for i in range(len(s) - 1) if "\u4e00" <= s[i] <= "\u9fff"}
    if not grams:
        return False
    return sum(g in source_norm for g in grams) / len(grams) >= need


def _best_quote(quotes: list[str], sentence: str, clause: Clause) -> str:
    """The verified quote, or the clause sentence sharing most bigrams with the answer sentence."""
    for q in quotes:
        idx = to_simplified(clause.text).find(to_simplified(q))
        if idx >= 0:
            return clause.text[idx:idx + len(q)]
    s = to_simplified(sentence)
    grams = {s[i:i + 2] for i in range(len(s) - 1)}
    best, best_n = "", -1
    for sent in split_sentences(clause.text):
        q = quote_of(sent)
        n = sum(g in to_simplified(q) for g in grams)
        if n > best_n:
            best, best_n = q, n
    return best
