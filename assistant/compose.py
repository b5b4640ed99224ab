"""Compose: the extractive answer, built only from verbatim sentences of the ranked clauses.

It needs no model: every sentence of the top clauses is scored for how well it answers the
question, the best ones are quoted (the one holding the asked-for number, date or department
first), and each answer sentence ends with its marker [n]. The weights of that choice are data
(`assistant/models/compose.json`); which clauses come first is the learned ranker's decision.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from assistant.features import TermWeights, clause_context
from assistant.phrases import opens_with, question_subject, shared_phrase
from assistant.quotes import contiguous_span, make_citation, quote_of, short_title
from assistant.types import Citation, Hit
from index.chunk import split_sentences
from index.clean import MOJIBAKE_CHARS
from index.errors import PolicyQAError
from index.normalize import to_simplified
from index.types import Clause, Document

MODELS_DIR = Path(__file__).resolve().parent / "models"
FULL_SENTENCE = re.compile(r"[^。！？!?\n]+[。！？!?]?")


@lru_cache(maxsize=4)
def compose_weights(path: str | None = None) -> dict:
    """The sentence-choice weights (assistant/models/compose.json)."""
    p = Path(path or MODELS_DIR / "compose.json")
    try:
        w = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PolicyQAError(f"cannot read the answer composition weights {p}: {exc}") from exc
    if w.get("format") != "policyqa-compose":
        raise PolicyQAError(f"{p} is not a policyqa-compose file")
    return w


@dataclass(frozen=True)
class Evidence:
    """One candidate sentence: where it is and how well it answers."""

    clause: Clause
    doc: Document
    sentence: str  # verbatim, leading clause marker removed
    score: float
    coverage: float
    hit_rank: int


def question_terms(question_norm: str, weights: TermWeights) -> list[str]:
    return list(dict.fromkeys(weights.lexicon.tokenize(question_norm)))


def evidence_units(hit: Hit, clauses_by_doc: dict[str, list[Clause]]) -> list[Clause]:
    """The clause of a hit, plus the 款/项 inside it when the chunk covered a whole article."""
    units = [hit.clause]
    if hit.clause.kind == "article" or hit.via == "lookup":
        units += [c for c in clauses_by_doc.get(hit.clause.doc_id, []) if hit.clause.start < c.start < hit.clause.end]
    return units


def _full_sentence(text: str, piece: str, limit: int) -> str:
    """The whole 。-sentence around a ；-piece, when short enough to quote (keeps its subject)."""
    for full in FULL_SENTENCE.findall(text):
        if piece in full:
            full = quote_of(full.strip())
            return full if piece in full and len(full) <= limit else piece
    return piece


def score_evidence(question_norm: str, hits: list[Hit], weights: TermWeights,
                   clauses_by_doc: dict[str, list[Clause]], max_hits: int = 3) -> list[Evidence]:
    """Every sentence of the top clauses, scored for how well it answers the question, best first.

    score = coverage of the question words the document title does not already say
            + context * coverage with title and headings + titled * coverage by the clause's own
            title + bonuses (asked-for number/date/department present, the question's subject
            opening the sentence, a shared phrase) + rank_prior / (1 + rank); garbled text and
            preambles are penalised. The weights are compose.json's.
    """
    w = compose_weights()
    lex = weights.lexicon
    agent = lex.pattern("agent")
    terms = question_terms(question_norm, weights)
    wants = (bool(lex.pattern("asks_number").search(question_norm)), bool(lex.pattern("asks_date").search(question_norm)),
             bool(lex.pattern("asks_department").search(question_norm)))
    subject = question_subject(question_norm, lex)
    out = []
    for rank, hit in enumerate(hits[:max_hits]):
        ctx = clause_context(hit.clause, hit.doc)
        doc_ctx = to_simplified(hit.doc.title + hit.doc.meta.issuer)
        # words the title already answers ("本溪") do not single out a sentence; numbers still do
        own_terms = [t for t in terms if t not in doc_ctx or any(ch.isdigit() for ch in t)] or terms
        for unit in evidence_units(hit, clauses_by_doc):
            unit_norm = to_simplified(unit.text)
            unit_about = opens_with(subject, unit_norm, agent)
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
                    about = opens_with(subject, norm, agent) or (j == 0 and unit_about and unit.text.startswith(line))
                    named = norm + " " + subject if about or unit_about else norm
                    # a sentence may lean on the ones before it ("到2007年末,…。参保人数达到294.5万人")
                    cov = max(weights.coverage(own_terms, named, power=2),
                              w["lean_on_previous"] * weights.coverage(own_terms, line_head + prev + named, power=2))
                    prev = norm
                    bonus = (w["asked_number"] * (wants[0] and bool(lex.pattern("has_number").search(norm)))
                             + w["asked_date"] * (wants[1] and bool(lex.pattern("has_date").search(norm)))
                             + w["asked_department"] * (wants[2] and bool(lex.pattern("has_department").search(norm[:20])))
                             + w["about_subject"] * about
                             + min(w["phrase_max"], w["phrase_per_char"] * max(0, shared_phrase(question_norm, norm)
                                                                                 - w["phrase_free_chars"]))
                             + w["garbled"] * bool(MOJIBAKE_CHARS.search(quote))
                             + w["preamble"] * (unit.kind == "preamble"))
                    score = (cov + w["context"] * weights.coverage(terms, ctx + norm, power=2) + w["titled"] * titled
                             + bonus + w["rank_prior"] / (1 + rank) + w["lookup"] * (hit.via == "lookup"))
                    out.append(Evidence(unit, hit.doc, _full_sentence(unit.text, quote, w["quote_limit"]), score, cov,
                                        rank))
    out.sort(key=lambda e: -e.score)
    return out


def _marked(sentence: str, n: int) -> str:
    """A quoted sentence as an answer sentence with its marker: '应当缴费；' -> '应当缴费[1]。'."""
    body = _sentence_end(sentence)
    if not body.endswith(("。", "！", "？", "”")):
        body += "。"
    return f"{body[:-1]}[{n}]{body[-1]}" if body[-1] in "。！？" else f"{body}[{n}]"


def _sentence_end(quote: str) -> str:
    return quote.rstrip("；;，,、：: ") if quote[-1:] in "；;，,、：: " else quote


def _next_sentence(text: str, sentence: str) -> str:
    """The quotable sentence right after `sentence` in `text`, or ''."""
    pieces = [quote_of(p) for p in split_sentences(text)]
    for i, p in enumerate(pieces[:-1]):
        if sentence in p or p in sentence:
            return next((q for q in pieces[i + 1:] if len(q) >= 4), "")
    return ""


def choose_sentences(question_norm: str, hits: list[Hit], weights: TermWeights,
                     clauses_by_doc: dict[str, list[Clause]]) -> list[Evidence]:
    """The sentences to quote, in answer order."""
    w = compose_weights()
    max_sentences = w["max_sentences"]
    if hits and hits[0].via == "lookup":
        # named clauses (第三十九条和第四十条: each of them, in the first one's document): quote each
        # one's opening sentences, then the first sentence of each of its parts
        chosen = []
        for target in (h for h in hits if h.via == "lookup" and h.doc.doc_id == hits[0].doc.doc_id):
            quoted = 0
            for i, unit in enumerate(evidence_units(target, clauses_by_doc)):
                sents = [q for q in (quote_of(s) for s in split_sentences(unit.text)) if len(q) >= 4]
                for q in sents[: 2 if i == 0 else 1]:
                    if quoted < max_sentences + 2:
                        chosen.append(Evidence(unit, target.doc, q, 1.0, 1.0, 0))
                        quoted += 1
        return chosen
    evidence = score_evidence(question_norm, hits, weights, clauses_by_doc)
    if not evidence:
        return []
    best = evidence[0]
    chosen = [best]
    if len(best.sentence) <= w["short_sentence"]:
        # a clause's title line ("逐步做实基本养老保险个人账户。") says little: add what follows it
        last = best.sentence
        for _ in range(2):
            follow = _next_sentence(best.clause.text, last)
            if not follow:
                break
            chosen.append(replace(best, sentence=follow))
            last = follow
    terms = question_terms(question_norm, weights)
    covered = {t for t in terms if t in to_simplified(best.sentence)}
    for ev in evidence[1:]:
        if len(chosen) >= max_sentences or ev.score < w["keep_within"] * best.score:
            break
        new_terms = {t for t in terms if t in to_simplified(ev.sentence)} - covered
        if ev.sentence in (c.sentence for c in chosen) or not new_terms:
            continue
        chosen.append(ev)
        covered |= new_terms
    return chosen


def extractive_answer(question_norm: str, hits: list[Hit], weights: TermWeights,
                      clauses_by_doc: dict[str, list[Clause]]) -> tuple[str, list[Citation]]:
    """(answer text with [n] markers, citations) built only from verbatim sentences."""
    citations: list[Citation] = []
    parts: list[str] = []
    for ev in choose_sentences(question_norm, hits, weights, clauses_by_doc):
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
            title = short_title(ev.doc.title)
            lead = f"根据《{title}》{ev.clause.label}：" if not parts else f"《{title}》{ev.clause.label}还规定："
        else:
            lead = ""
        parts.append(lead + _marked(ev.sentence, existing.n))
    return "".join(parts), citations


def best_clauses_answer(question_norm: str, hits: list[Hit], weights: TermWeights,
                        clauses_by_doc: dict[str, list[Clause]]) -> tuple[str, list[Citation]]:
    """(text with [n] markers, citations) for an uncertain decision: each of the best clauses in
    ranking order (compose.json's `uncertain_clauses`, as many as an abstention shows as nearest),
    quoted by its own sentence that best answers the question, one line each: the reader checks
    them against the question rather than reading one answer built from the first."""
    evidence = score_evidence(question_norm, hits, weights, clauses_by_doc, max_hits=compose_weights()["uncertain_clauses"])
    best: dict[int, Evidence] = {}
    for ev in evidence:  # best first: the first of each clause is its best sentence
        best.setdefault(ev.hit_rank, ev)
    citations: list[Citation] = []
    lines = []
    for rank in sorted(best):
        ev = best[rank]
        citation = make_citation(len(citations) + 1, ev.clause, ev.doc, ev.sentence)
        citations.append(citation)
        lines.append(f"《{short_title(ev.doc.title)}》{ev.clause.label}：{_marked(ev.sentence, citation.n)}")
    return "\n".join(lines), citations
