"""Featurize: the (candidates, features) matrix of one question, a column at a time.

`assistant.features` defines each feature as a function of the question and one candidate;
calling its 37 functions for each of ~175 candidates costs ~12 ms of Python per question on
the law index. `feature_matrix` computes the same numbers a column at a time:

- the first-stage signals (dense, BM25, ranks, document scores) as float64 arrays, with the
  definitions' own arithmetic;
- which question terms (or a synonym) each distinct text holds (titles, headings, clauses,
  chunks; ~400 strings for ~175 candidates), all in one pass, as a (texts, terms) bool matrix;
- each coverage once per distinct presence pattern (a question has a few dozen), with the
  definition's own expression `float(w[present].sum())`, so every sum adds the same numbers in
  the same order;
- the text features only where the question asks for them: a question that asks for no number
  gets asks_number_has = 0 without searching 175 clauses for one.

Every value is the same float as `features.reference_matrix` gives (tests/test_featurize.py
compares the two bit for bit on a table of cases).
"""
from __future__ import annotations

import math

import numpy as np

from assistant.candidates import Candidate
from assistant.features import FEATURE_NAMES, KINDS, Question, f_doc_kind
from assistant.phrases import PUNCT, longest_shared_run, opens_with

KIND_CODE = {k: float(i) for i, k in enumerate(KINDS)}


def feature_matrix(q: Question, cands: list[Candidate]) -> np.ndarray:
    """(len(cands), len(FEATURE_NAMES)) float32 features, rows in candidate order."""
    out = np.zeros((len(cands), len(FEATURE_NAMES)), dtype=np.float32)
    if not cands:
        return out
    q.best_dense = max(c.dense for c in cands)
    q.best_bm25 = max(c.bm25 for c in cands)
    q.best_bm25_exp = max(c.bm25_exp for c in cands)
    q.best_memory = max(c.memory for c in cands)
    texts = [q.clause_text(c) for c in cands]
    cols = {**_signal_columns(q, cands), **_coverage_columns(q, cands, texts), **_text_columns(q, cands, texts)}
    for j, name in enumerate(FEATURE_NAMES):
        out[:, j] = cols[name]
    return out


def _array(values) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def _signal_columns(q: Question, cands: list[Candidate]) -> dict[str, np.ndarray]:
    """The first-stage signals and the clause's place in its document."""
    # every field of a Candidate after its hit is a number: one conversion reads them all
    num = dict(zip(Candidate._fields[1:], np.array([c[1:] for c in cands], dtype=np.float64).T))
    dense, bm25, bm25_exp, memory = num["dense"], num["bm25"], num["bm25_exp"], num["memory"]
    hits = [c.hit for c in cands]
    return {
        "dense": dense, "dense_gap": q.best_dense - dense,
        "dense_rank": 1.0 / (1 + num["dense_rank"]),
        "bm25": bm25, "bm25_rel": bm25 / q.best_bm25 if q.best_bm25 > 0 else np.zeros(len(cands)),
        "bm25_rank": np.where(bm25 > 0, 1.0 / (1 + num["bm25_rank"]), 0.0),
        "bm25_exp_rel": bm25_exp / q.best_bm25_exp if q.best_bm25_exp > 0 else np.zeros(len(cands)),
        "bm25_exp_rank": np.where(bm25_exp > 0, 1.0 / (1 + num["bm25_exp_rank"]), 0.0),
        "rrf": num["rrf"] * 60, "doc_score": num["doc_score"] * 60,
        "doc_rank": 1.0 / (1 + num["doc_rank"]),
        "doc_hits": _array([math.log1p(c.doc_hits) for c in cands]),  # math's log1p, as the definition's
        "title_bm25": num["title_bm25"],
        "depth": _array([len(h.clause.path) for h in hits]),
        "kind": _array([KIND_CODE.get(h.clause.kind, -1.0) for h in hits]),
        "doc_kind": _array([f_doc_kind(q, c) for c in cands]),
        "inferred": _array([float(h.clause.inferred) for h in hits]),
        "named_doc": _array([min(q.named.get(h.doc.doc_id, 0.0), 10.0) for h in hits]),
        "prefer_doc": _array([h.doc.doc_id in q.prefer for h in hits]),
        "lookup": _array([h.via == "lookup" for h in hits]),
        "memory": memory, "memory_gap": np.where(memory > 0, q.best_memory - memory, 1.0),
        "memory_votes": num["memory_votes"],
        "memory_law": num["memory_law"],
    }


def _text_columns(q: Question, cands: list[Candidate], texts: list[str]) -> dict[str, np.ndarray]:
    """Features of the clause text: its length, the longest run it shares with the question,
    whether the question's actor opens it, and whether it gives the kinds of answer asked for."""
    n = len(cands)
    zeros = np.zeros(n)
    lex = q.lexicon
    question = PUNCT.sub("", q.norm)
    phrase = []
    for c, text in zip(cands, texts):
        key = ("phrase", c.hit.clause.clause_id, c.hit.chunk.chunk_id)  # the text falls back on the chunk's
        stripped = q.cache.get(key)
        if stripped is None:
            stripped = q.cache[key] = PUNCT.sub("", text[:600])
        phrase.append(longest_shared_run(question, stripped))
    cols = {"length": _array([math.log1p(len(t)) for t in texts]), "phrase": _array(phrase)}
    if q.subject:
        agent = lex.pattern("agent")
        cols["subject_opens"] = _array([opens_with(q.subject, c.hit.chunk.norm_text, agent)
                                        or opens_with(q.subject, t, agent) for c, t in zip(cands, texts)])
    else:
        cols["subject_opens"] = zeros  # opens_with is False without a subject
    # 0 * has = 0: a clause need not be searched for a kind of answer the question does not ask for
    for name, wanted, pattern, head in (("asks_number_has", q.wants[0], "has_number", None),
                                        ("asks_date_has", q.wants[1], "has_date", None),
                                        ("asks_department_has", q.wants[2], "has_department", 20)):
        if wanted:
            search = lex.pattern(pattern).search
            cols[name] = _array([search(t[:head] if head else t) is not None for t in texts])
        else:
            cols[name] = zeros
    return cols


def _coverage_columns(q: Question, cands: list[Candidate], texts: list[str]) -> dict[str, np.ndarray]:
    """The coverage features: idf-weighted shares of the question terms in title, headings,
    the clause's own heading, its text and its chunk."""
    n = len(cands)
    names = ("title_cov", "heading_cov", "own_heading_cov", "cov", "cov_text", "cov_chunk", "cov_unique")
    if not q.terms:
        return {name: np.zeros(n) for name in names}
    rows: dict[str, int] = {}  # distinct text -> its row in the presence matrix

    def row(text: str) -> int:
        return rows.setdefault(text, len(rows))

    title_row: dict[str, int] = {}  # the first candidate of a document gives its title (as the definition's cache)
    ti, xi, si, ki, hi = [], [], [], [], []
    for c, text in zip(cands, texts):
        h = c.hit
        context = q.context(c)
        if h.doc.doc_id not in title_row:
            title_row[h.doc.doc_id] = row(context[: len(h.doc.title)])
        ti.append(title_row[h.doc.doc_id])
        xi.append(row(context))
        si.append(row(text))
        ki.append(row(h.chunk.norm_text))
        hi.append(row(h.clause.heading) if h.clause.heading else -1)
    present = term_presence(q, list(rows))
    title, context, text, chunk = present[ti], present[xi], present[si], present[ki]
    has_heading = np.array(hi) >= 0
    own = ~title
    w1, w2 = q._w1, q._w2
    total1, total2 = float(w1.sum()), float(w2.sum())
    # one matrix of every pattern that is summed with idf^2: 7 blocks of n rows
    s2 = pattern_sums(w2, np.concatenate([title, context, present[np.where(has_heading, hi, 0)], context | text,
                                          chunk, own & text, own, text]))
    s1 = pattern_sums(w1, text)
    t2 = s2.reshape(8, n)

    def share(s: np.ndarray, total: float) -> np.ndarray:
        return s / total if total else np.zeros(n)

    own_any = own.any(axis=1)
    unique = [float(a / b) if b else 0.0 for a, b in zip(t2[5], t2[6])]  # numpy floats, as the definition's
    text_cov = share(t2[7], total2)
    return {
        "title_cov": share(t2[0], total2), "heading_cov": share(t2[1], total2),
        "own_heading_cov": np.where(has_heading, share(t2[2], total2), 0.0),
        "cov": share(t2[3], total2), "cov_text": share(s1, total1), "cov_chunk": share(t2[4], total2),
        "cov_unique": np.where(own_any, _array(unique), text_cov),
    }


def term_presence(q: Question, texts: list[str]) -> np.ndarray:
    """(texts, terms) bool: which question terms, or one of their synonyms, each text holds.

    The same test as `Question.present` (a substring), for all texts and alternatives at once:
    ['养老保险', '失业金'] with terms ['养老', '失业'] and 失业's synonym '失业保险金' ->
    [[True, False], [False, True]].
    """
    alts = [a for t in q.terms for a in q.alts[t]]
    starts = np.cumsum([0] + [len(q.alts[t]) for t in q.terms[:-1]])
    found = np.array([a in text for text in texts for a in alts], dtype=bool).reshape(len(texts), len(alts))
    return np.logical_or.reduceat(found, starts, axis=1)


def pattern_sums(w: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(rows,) float64: `float(w[mask].sum())` of each row's mask, evaluated once per distinct mask
    (the definition's expression: the same numbers added in the same order)."""
    packed = np.ascontiguousarray(np.packbits(masks, axis=1))  # one byte string per row's mask
    if packed.shape[1]:
        keys = packed.view(np.dtype((np.void, packed.shape[1]))).reshape(-1)
    else:
        keys = np.zeros(len(masks), dtype=np.int8)  # no question terms: a single pattern
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    sums = np.array([float(w[masks[i]].sum()) for i in first], dtype=np.float64)
    return sums[inverse.reshape(-1)]
