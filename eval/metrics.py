"""Automatic metrics of a run over a gold set: retrieval, citations, labels, key facts, abstention,
script and latency.

Every text comparison goes through `normalize`: Unicode NFKC (full-width ％ and （） become % and
()), OpenCC Traditional -> Simplified, and all whitespace removed, so '參保率達到 94%' and
'参保率达到94％' compare equal.

Inputs are plain data: a gold item is a dict of the dev-set format (eval/data/dev.jsonl), an
answer is the batch contract of `Answer.to_json()` (`answer`, `abstained`, `citations` with
`doc_id`, `label`, `quote`, `text`), and a retrieval result is the list of retrieved texts, best
first (one per clause for the shipped system, one per chunk for the naive baseline).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass

from index.normalize import detect_script, to_simplified

RECALL_KS = (1, 3, 5, 10)
MRR_CUTOFF = 10
MIN_OVERLAP = 4  # characters a quote must share, by position, with the gold evidence
_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Comparison form: NFKC, Simplified, no whitespace.

    >>> normalize("參保率達到 94％")
    '参保率达到94%'
    """
    return _SPACE.sub("", to_simplified(unicodedata.normalize("NFKC", text or "")))


def contains(haystack: str, needle: str) -> bool:
    """Whether normalize(needle) is a non-empty substring of normalize(haystack)."""
    n = normalize(needle)
    return bool(n) and n in normalize(haystack)


# ---- retrieval ----

def first_relevant_rank(retrieved: list[str], evidence: str) -> int | None:
    """1-based rank of the first retrieved text that contains the gold evidence; None if none does.

    >>> first_relevant_rank(["其他条款", "自由职业者可按60%作为缴费基数缴纳"], "60%作为缴费基数")
    2
    """
    for i, text in enumerate(retrieved, 1):
        if contains(text, evidence):
            return i
    return None


def recall_at_k(ranks: list[int | None], k: int) -> float | None:
    """Share of items whose gold evidence is inside one of the top k retrieved texts.

    `ranks` holds first_relevant_rank per answerable item. Each item has one gold evidence, so
    recall@k is the hit rate at k. ranks [1, 3, None, 2], k=2 -> 2/4 = 0.5. None for no items.
    """
    if not ranks:
        return None
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks)


def mean_reciprocal_rank(ranks: list[int | None], cutoff: int = MRR_CUTOFF) -> float | None:
    """Mean over items of 1/rank of the first relevant text, 0 when it is not in the top `cutoff`.

    ranks [1, 3, None, 2] -> (1 + 1/3 + 0 + 1/2) / 4 = 0.4583. None for no items.
    """
    if not ranks:
        return None
    return sum(1.0 / r for r in ranks if r is not None and r <= cutoff) / len(ranks)


# ---- citations ----

def _spans(haystack: str, needle: str) -> list[tuple[int, int]]:
    """Every (start, end) where needle occurs in haystack, overlapping occurrences included."""
    out, i = [], haystack.find(needle)
    while needle and i >= 0:
        out.append((i, i + len(needle)))
        i = haystack.find(needle, i + 1)
    return out


def quote_overlaps_evidence(quote: str, clause_text: str, evidence: str, min_chars: int = MIN_OVERLAP) -> bool:
    """Whether the quote and the gold evidence share at least `min_chars` characters of the clause.

    Both are located in the normalised clause text; they overlap when the two character spans
    intersect by >= min(min_chars, len(evidence)) characters. A quote that is not verbatim in the
    clause overlaps nothing. Clause '甲乙丙丁戊己庚辛', evidence '丙丁戊己', quote '甲乙丙丁' ->
    spans [2, 6) and [0, 4) share 2 characters -> False; quote '乙丙丁戊己庚' shares 4 -> True.
    """
    c, q, e = normalize(clause_text), normalize(quote), normalize(evidence)
    need = min(min_chars, len(e))
    if not q or not e:
        return False
    return any(min(qe, ee) - max(qs, es) >= need for qs, qe in _spans(c, q) for es, ee in _spans(c, e))


def citation_supports_gold(citation: dict, evidence: str) -> bool:
    """A citation recalls the gold evidence: its clause text contains the evidence AND its quote
    overlaps the evidence inside that clause (quote_overlaps_evidence)."""
    text = citation.get("text") or ""
    return contains(text, evidence) and quote_overlaps_evidence(citation.get("quote") or "", text, evidence)


def citation_recall(citations: list[dict], evidence: str) -> bool:
    """Whether any citation supports the gold evidence (citation_supports_gold).

    Per answerable item; an answer without citations (e.g. an abstention) scores False. The run
    value is the share of answerable items that score True.
    """
    return any(citation_supports_gold(c, evidence) for c in citations)


def bears_on(citation: dict, gold: dict) -> bool:
    """Whether the cited clause bears on the answer, concretely: it is the gold clause (same
    doc_id and label), or its text contains the gold evidence, or its text contains the key fact."""
    if citation.get("doc_id") == gold.get("doc_id") and citation.get("label") == gold.get("gold_label"):
        return True
    text = citation.get("text") or ""
    return contains(text, gold.get("gold_evidence", "")) or contains(text, gold.get("key_fact", ""))


def citation_precision(citations: list[dict], gold: dict) -> tuple[int, int]:
    """(precise citations, citations) of one answer, after ALCE's citation precision.

    A citation is precise when (1) its quote is non-empty and verbatim (after normalize) in the
    clause text it cites, (2) the clause bears on the answer (bears_on), and (3) it is not a
    duplicate of an earlier citation of the same answer (same doc_id, label and normalised quote):
    a repeated citation adds no support, as in ALCE where a citation that can be removed without
    losing support is irrelevant. The run value is micro-averaged: sum of precise / sum of
    citations over the answerable items; None when no answerable item has a citation.

    Worked example, gold clause 001 '四、(四)' with key fact '60%': citations
    [1] 四、(四) quoting a sentence of it, [2] 四、(四) with the same quote again, [3] 二、 whose
    text lacks evidence and key fact -> (1, 3).
    """
    precise, seen = 0, set()
    for c in citations:
        quote, text = normalize(c.get("quote") or ""), normalize(c.get("text") or "")
        key = (c.get("doc_id"), c.get("label"), quote)
        duplicate = key in seen
        seen.add(key)
        if quote and quote in text and bears_on(c, gold) and not duplicate:
            precise += 1
    return precise, len(citations)


def label_correct(citations: list[dict], gold: dict) -> bool:
    """Whether the FIRST citation names the gold clause: doc_id and canonical label both equal.

    No citations -> False. The run value is the share of answerable items that score True.
    """
    return bool(citations) and citations[0].get("doc_id") == gold["doc_id"] \
        and citations[0].get("label") == gold["gold_label"]


# ---- answer text ----

def key_fact_present(answer_text: str, key_fact: str) -> bool:
    """Whether the key fact occurs in the answer after normalize (so '30萬人' counts for '30万人').

    >>> key_fact_present("按工资总额4％的比例税前列支[1]。", "4%")
    True
    """
    return contains(answer_text, key_fact)


def script_correct(answer_text: str, question_script: str) -> bool:
    """Whether the answer is written in the question's script (index.normalize.detect_script).

    The dev-set metric `script_accuracy` is its share over the items whose question is Traditional.
    """
    return detect_script(answer_text or "") == question_script


@dataclass(frozen=True)
class Abstention:
    """Abstention as a detector: positive = the system abstained; gold positive = answerable false."""

    tp: int
    fp: int
    fn: int
    tn: int
    precision: float | None  # tp / (tp + fp): of the abstentions, how many were right
    recall: float | None  # tp / (tp + fn): of the unanswerable questions, how many were declined
    f1: float | None


def abstention_scores(predicted: list[bool], unanswerable: list[bool]) -> Abstention:
    """Precision/recall/F1 of abstaining; a ratio with an empty denominator is None.

    predicted [T, T, F, F], unanswerable [T, F, T, F] -> tp=1 fp=1 fn=1 tn=1,
    precision 0.5, recall 0.5, f1 0.5.
    """
    if len(predicted) != len(unanswerable):
        raise ValueError(f"predicted and gold must have the same length, got {len(predicted)} and {len(unanswerable)}")
    tp = sum(p and g for p, g in zip(predicted, unanswerable))
    fp = sum(p and not g for p, g in zip(predicted, unanswerable))
    fn = sum(g and not p for p, g in zip(predicted, unanswerable))
    tn = len(predicted) - tp - fp - fn
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else (
        0.0 if precision is not None and recall is not None else None)
    return Abstention(tp, fp, fn, tn, precision, recall, f1)


# ---- latency ----

def percentile(values: list[float], p: float) -> float | None:
    """Linear-interpolation percentile (numpy's default): rank = p/100 * (n - 1).

    [10, 20, 30, 40]: p50 -> rank 1.5 -> 25.0; p95 -> rank 2.85 -> 38.5. None for no values.
    """
    if not values:
        return None
    xs = sorted(values)
    rank = p / 100 * (len(xs) - 1)
    lo = int(rank)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (rank - lo)


def latency_summary(timings: list[dict]) -> dict[str, dict]:
    """{stage: {p50, p95, n}} in ms over the answers' `timings_ms`; a stage counts only the
    answers that report it (e.g. 'rewrite' only for follow-ups).

    [{'total': 10}, {'total': 30, 'embed': 5}] -> {'embed': {p50 5, p95 5, n 1},
    'total': {p50 20, p95 29, n 2}}.
    """
    stages: dict[str, list[float]] = {}
    for t in timings:
        for stage, ms in (t or {}).items():
            stages.setdefault(stage, []).append(float(ms))
    return {s: {"p50": percentile(v, 50), "p95": percentile(v, 95), "n": len(v)} for s, v in sorted(stages.items())}


# ---- one item, and a whole run ----

@dataclass(frozen=True)
class ItemScore:
    """Every automatic judgement of one answer; fields that do not apply to the item are None."""

    id: str
    answerable: bool
    category: str
    script: str
    abstained: bool
    rank: int | None = None  # first_relevant_rank of the gold evidence in the retrieved texts
    citation_recall: bool | None = None
    precise_citations: int | None = None
    citations: int = 0
    label_correct: bool | None = None
    key_fact: bool | None = None
    script_correct: bool | None = None
    error: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def score_item(gold: dict, answer: dict, retrieved: list[str]) -> ItemScore:
    """All metrics of one answer (batch contract row) against its gold item."""
    citations = list(answer.get("citations") or [])
    text = answer.get("answer") or ""
    common = dict(id=str(gold["id"]), answerable=bool(gold["answerable"]), category=gold.get("category", ""),
                  script=gold.get("script", "simplified"), abstained=bool(answer.get("abstained")),
                  citations=len(citations), script_correct=script_correct(text, gold.get("script", "simplified")),
                  error=answer.get("error"))
    if not gold["answerable"]:
        return ItemScore(**common)
    precise, _ = citation_precision(citations, gold)
    return ItemScore(**common, rank=first_relevant_rank(retrieved, gold["gold_evidence"]),
                     citation_recall=citation_recall(citations, gold["gold_evidence"]),
                     precise_citations=precise, label_correct=label_correct(citations, gold),
                     key_fact=key_fact_present(text, gold["key_fact"]))


def _share(flags: list[bool]) -> float | None:
    return sum(1 for f in flags if f) / len(flags) if flags else None


def aggregate(scores: list[ItemScore]) -> dict:
    """Run-level metrics from item scores (definitions in the functions above).

    Retrieval, citation, label and key-fact metrics are over answerable items; abstention over
    all items; script_accuracy over Traditional-script questions; script_match over all items.
    """
    ans = [s for s in scores if s.answerable]
    ranks = [s.rank for s in ans]
    n_cit = sum(s.citations for s in ans)
    abst = abstention_scores([s.abstained for s in scores], [not s.answerable for s in scores])
    out = {f"recall@{k}": recall_at_k(ranks, k) for k in RECALL_KS}
    out.update({
        f"mrr@{MRR_CUTOFF}": mean_reciprocal_rank(ranks),
        "citation_recall": _share([bool(s.citation_recall) for s in ans]),
        "citation_precision": sum(s.precise_citations or 0 for s in ans) / n_cit if n_cit else None,
        "label_accuracy": _share([bool(s.label_correct) for s in ans]),
        "key_fact_accuracy": _share([bool(s.key_fact) for s in ans]),
        "abstention_precision": abst.precision,
        "abstention_recall": abst.recall,
        "abstention_f1": abst.f1,
        "false_abstentions": abst.fp,
        "script_accuracy": _share([bool(s.script_correct) for s in scores if s.script == "traditional"]),
        "script_match": _share([bool(s.script_correct) for s in scores]),
        "items": len(scores),
        "answerable": len(ans),
        "errors": sum(1 for s in scores if s.error),
    })
    return out


METRIC_KEYS = tuple(f"recall@{k}" for k in RECALL_KS) + (
    f"mrr@{MRR_CUTOFF}", "citation_recall", "citation_precision", "label_accuracy", "key_fact_accuracy",
    "abstention_precision", "abstention_recall", "abstention_f1", "script_accuracy")
