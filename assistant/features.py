"""Features: what the ranker and the answer-or-abstain model know about a question and a clause.

Each feature is a small function `f(q, c) -> float` of the question context `q` (a `Question`)
and one `Candidate` `c`, registered in `CLAUSE_FEATURES` in a fixed order; a saved model records
these names and refuses to load when they differ. `reference_matrix` gives the (candidates,
features) array by calling them; `assistant.featurize.feature_matrix` computes the same array a
column at a time, and is what answering uses.

Worked example, for the question '地税部门在扩面工作中负责什么?' and the clause
'四、(二)3. 地税部门要实行税收和养老保险费同征同查…': subject_opens = 1 (the question's actor
opens the clause), asks_department_has = 1 (a department is asked for and the clause names one
in its first 20 characters), phrase = 4 ('地税部门' is shared).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from assistant.candidates import Candidate
from assistant.phrases import opens_with, question_subject, shared_phrase
from assistant.types import Hit
from index.lexicon import Lexicon

KINDS = ("article", "paragraph", "item", "l1", "l2", "l3", "para", "preamble")
DOC_KINDS = ("law", "regulation", "interpretation", "provision", "measures", "decision", "opinion", "notice",
             "plan", "other")


class TermWeights:
    """IDF weights of query tokens over the indexed chunks (the BM25 index's document frequencies)."""

    def __init__(self, doc_freq, n: int, lexicon: Lexicon):
        self.doc_freq = doc_freq  # token -> number of chunks containing it
        self.n = max(1, n)
        self.max_idf = math.log(1 + self.n)
        self.lexicon = lexicon
        self._idf: dict[str, float] = {}  # token -> idf, as asked (the index does not change under it)

    def idf(self, token: str) -> float:
        """BM25's idf; a single character weighs a third (it is part of many words)."""
        w = self._idf.get(token)
        if w is None:
            d = self.doc_freq(token)
            w = math.log(1 + (self.n - d + 0.5) / (d + 0.5)) if d else self.max_idf
            w = self._idf[token] = w / 3 if len(token) == 1 else w
        return w

    def coverage(self, terms: list[str], text_norm: str, power: float = 1.0) -> float:
        """IDF^power-weighted share of the terms that occur in text_norm (a synonym counts).

        terms ['地税', '部门', '负责'], text '地税部门要…' -> the share of weight of '地税' and '部门'.
        """
        total = sum(self.idf(t) ** power for t in terms)
        if not total:
            return 0.0
        return sum(self.idf(t) ** power for t in terms if self.lexicon.mentions(text_norm, t)) / total


def clause_context(clause, doc) -> str:
    """Title, headings and the clause's own heading, normalised: what a clause is filed under."""
    from index.normalize import to_simplified

    return to_simplified(" ".join((doc.title, *clause.headings, clause.heading)))


def clause_text(hit: Hit) -> str:
    """A hit's clause with its sub-clauses, normalised (a slice of the document's normalised text)."""
    doc, cl = hit.doc, hit.clause
    return doc.norm_text[cl.start:cl.end] or hit.chunk.norm_text


@dataclass
class Question:
    """Everything about the question that the features share, computed once per question."""

    norm: str  # simplified, follow-up resolved, injection removed, not expanded
    terms: list[str]  # distinct BM25 tokens of norm
    subject: str
    wants: tuple[bool, bool, bool]  # number, date, department
    weights: TermWeights
    lexicon: Lexicon
    named: dict[str, float] = field(default_factory=dict)  # doc_id -> how clearly the question names it
    prefer: frozenset[str] = frozenset()  # documents the conversation is about
    best_dense: float = 0.0
    best_bm25: float = 0.0
    best_bm25_exp: float = 0.0
    best_memory: float = 0.0
    cache: dict = field(default_factory=dict)  # per index: clause texts and contexts (shared by questions)
    alts: dict = field(default_factory=dict)  # term -> (term, its synonyms)
    idf: dict = field(default_factory=dict)  # term -> idf
    seen: dict = field(default_factory=dict)  # this question's term presence per text

    def __post_init__(self):
        for t in self.terms:
            self.alts[t] = (t, *self.lexicon.synonyms.get(t, ()))
            self.idf[t] = self.weights.idf(t)
        self._w1 = np.array([self.idf[t] for t in self.terms], dtype=np.float64)
        self._w2 = self._w1 ** 2

    def present(self, key, text_norm: str) -> np.ndarray:
        """(terms,) bool: which question terms (or a synonym) occur in the text; cached under key."""
        got = self.seen.get(key)
        if got is None:
            got = np.array([any(a in text_norm for a in self.alts[t]) for t in self.terms], dtype=bool)
            self.seen[key] = got
        return got

    def cov(self, present: np.ndarray, power: float) -> float:
        """Weighted share of the present terms: sum idf^power over present / over all."""
        w = self._w2 if power == 2 else self._w1
        total = float(w.sum())
        return float(w[present].sum()) / total if total else 0.0

    @classmethod
    def make(cls, norm: str, weights: TermWeights, lexicon: Lexicon, named=None, prefer=(),
             cache: dict | None = None) -> "Question":
        p = lexicon.pattern
        wants = (bool(p("asks_number").search(norm)), bool(p("asks_date").search(norm)),
                 bool(p("asks_department").search(norm)))
        return cls(norm, list(dict.fromkeys(lexicon.tokenize(norm))), question_subject(norm, lexicon), wants,
                   weights, lexicon, dict(named or {}), frozenset(prefer or ()), cache=cache if cache is not None else {})

    def clause_text(self, c: Candidate) -> str:
        """The clause with its sub-clauses, normalised (a slice: no script conversion per query)."""
        return clause_text(c.hit)

    def context(self, c: Candidate) -> str:
        """Title, headings and the clause's own heading, normalised (once per document and headings:
        the clauses under one heading share it)."""
        cl = c.hit.clause
        key = ("ctx", c.hit.doc.doc_id, cl.headings, cl.heading)
        got = self.cache.get(key)
        if got is None:
            got = self.cache[key] = clause_context(cl, c.hit.doc)
        return got


def _has(q: Question, name: str, text: str) -> float:
    return float(bool(q.lexicon.pattern(name).search(text)))


def f_dense(q, c): return c.dense
def f_dense_gap(q, c): return q.best_dense - c.dense
def f_dense_rank(q, c): return 1.0 / (1 + c.dense_rank)
def f_bm25(q, c): return c.bm25
def f_bm25_rel(q, c): return c.bm25 / q.best_bm25 if q.best_bm25 > 0 else 0.0
def f_bm25_rank(q, c): return 1.0 / (1 + c.bm25_rank) if c.bm25 > 0 else 0.0
def f_rrf(q, c): return c.rrf * 60
def f_doc_score(q, c): return c.doc_score * 60
def f_doc_rank(q, c): return 1.0 / (1 + c.doc_rank)
def f_doc_hits(q, c): return math.log1p(c.doc_hits)
def f_title_bm25(q, c): return c.title_bm25
def f_bm25_exp_rel(q, c): return c.bm25_exp / q.best_bm25_exp if q.best_bm25_exp > 0 else 0.0
def f_bm25_exp_rank(q, c): return 1.0 / (1 + c.bm25_exp_rank) if c.bm25_exp > 0 else 0.0
def f_memory(q, c): return c.memory
def f_memory_gap(q, c): return q.best_memory - c.memory if c.memory > 0 else 1.0
def f_memory_votes(q, c): return float(c.memory_votes)
def f_memory_law(q, c): return float(c.memory_law)
def _title_present(q, c):
    return q.present(("title", c.hit.doc.doc_id), q.context(c)[: len(c.hit.doc.title)])


def _context_present(q, c):
    return q.present(("ctx", c.hit.clause.clause_id), q.context(c))


def _text_present(q, c):
    return q.present(("text", c.hit.clause.clause_id), q.clause_text(c))


def f_title_cov(q, c): return q.cov(_title_present(q, c), 2)
def f_heading_cov(q, c): return q.cov(_context_present(q, c), 2)


def f_own_heading_cov(q, c):
    h = c.hit.clause.heading
    return q.cov(q.present(("heading", c.hit.clause.clause_id), h), 2) if h else 0.0


def f_cov(q, c): return q.cov(_context_present(q, c) | _text_present(q, c), 2)
def f_cov_text(q, c): return q.cov(_text_present(q, c), 1)
def f_cov_chunk(q, c): return q.cov(q.present(("chunk", c.hit.chunk.chunk_id), c.hit.chunk.norm_text), 2)


def f_cov_unique(q, c):
    """Coverage of the words the document title does not already say ('本溪' says nothing inside 本溪's plan)."""
    own = ~_title_present(q, c)
    if not own.any():
        return q.cov(_text_present(q, c), 2)
    w = q._w2[own]
    return float(w[_text_present(q, c)[own]].sum() / w.sum()) if w.sum() else 0.0


def f_subject_opens(q, c):
    return float(opens_with(q.subject, c.hit.chunk.norm_text, q.lexicon.pattern("agent"))
                 or opens_with(q.subject, q.clause_text(c), q.lexicon.pattern("agent")))


def f_phrase(q, c): return float(shared_phrase(q.norm, q.clause_text(c)[:600]))
def f_depth(q, c): return float(len(c.hit.clause.path))
def f_length(q, c): return math.log1p(len(q.clause_text(c)))
def f_named_doc(q, c): return min(q.named.get(c.hit.doc.doc_id, 0.0), 10.0)
def f_prefer_doc(q, c): return float(c.hit.doc.doc_id in q.prefer)
def f_asks_number_has(q, c): return float(q.wants[0]) * _has(q, "has_number", q.clause_text(c))
def f_asks_date_has(q, c): return float(q.wants[1]) * _has(q, "has_date", q.clause_text(c))
def f_asks_department_has(q, c): return float(q.wants[2]) * _has(q, "has_department", q.clause_text(c)[:20])
def f_lookup(q, c): return float(c.hit.via == "lookup")
def f_kind(q, c): return float(KINDS.index(c.hit.clause.kind)) if c.hit.clause.kind in KINDS else -1.0


def f_doc_kind(q, c):
    key = ("dockind", c.hit.doc.doc_id)
    if key not in q.cache:
        q.cache[key] = float(DOC_KINDS.index(q.lexicon.doc_kind(c.hit.doc.title)))
    return q.cache[key]


def f_inferred(q, c): return float(c.hit.clause.inferred)


# name -> function, in the order of the model's columns
CLAUSE_FEATURES = {
    "dense": f_dense, "dense_gap": f_dense_gap, "dense_rank": f_dense_rank,
    "bm25": f_bm25, "bm25_rel": f_bm25_rel, "bm25_rank": f_bm25_rank, "rrf": f_rrf,
    "bm25_exp_rel": f_bm25_exp_rel, "bm25_exp_rank": f_bm25_exp_rank,
    "doc_score": f_doc_score, "doc_rank": f_doc_rank, "doc_hits": f_doc_hits, "title_bm25": f_title_bm25,
    "title_cov": f_title_cov, "heading_cov": f_heading_cov, "own_heading_cov": f_own_heading_cov,
    "cov": f_cov, "cov_text": f_cov_text, "cov_chunk": f_cov_chunk, "cov_unique": f_cov_unique,
    "subject_opens": f_subject_opens, "phrase": f_phrase, "depth": f_depth, "length": f_length,
    "kind": f_kind, "doc_kind": f_doc_kind, "inferred": f_inferred,
    "named_doc": f_named_doc, "prefer_doc": f_prefer_doc, "lookup": f_lookup,
    "asks_number_has": f_asks_number_has, "asks_date_has": f_asks_date_has,
    "asks_department_has": f_asks_department_has,
    "memory": f_memory, "memory_gap": f_memory_gap, "memory_votes": f_memory_votes, "memory_law": f_memory_law,
}
FEATURE_NAMES = tuple(CLAUSE_FEATURES)


def reference_matrix(q: Question, cands: list[Candidate]) -> np.ndarray:
    """(len(cands), len(FEATURE_NAMES)) float32 features, one call per feature per candidate: the
    definition that the fast `assistant.featurize.feature_matrix` is tested against."""
    if cands:
        q.best_dense = max(c.dense for c in cands)
        q.best_bm25 = max(c.bm25 for c in cands)
        q.best_bm25_exp = max(c.bm25_exp for c in cands)
        q.best_memory = max(c.memory for c in cands)
    out = np.zeros((len(cands), len(FEATURE_NAMES)), dtype=np.float32)
    fns = list(CLAUSE_FEATURES.values())
    for i, c in enumerate(cands):
        out[i] = [f(q, c) for f in fns]
    return out
