"""Search: a normalised question -> ranked clauses and the answer-or-abstain decision.

The stages, each its own module:

    lookup (a clause the question names)  assistant.lookup
    place  (which places' rules apply)    index.places
    candidates (dense, BM25, law first)   assistant.candidates
    features                              assistant.features
    rank   (learned ranker)               assistant.rank
    decide (calibrated P(answerable))     assistant.decide, with assistant.evidence

`Searcher` holds what one loaded index derives (retriever, term weights, title BM25, each
document's place) next to the models; `rank_question` returns a frozen `Ranked`.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from assistant.asked_version import AskedVersion
from assistant.candidates import Candidate, TitleIndex, gather
from assistant.expansion import FirstStage
from assistant.decide import Decider, Decision, question_features
from assistant.evidence import best_coverage, evidence_terms, focus_sentence, unknown_share
from assistant.features import Question, TermWeights, clause_text
from assistant.featurize import feature_matrix
from assistant.memory import ArticleRows
from assistant.rank import Ranker
from assistant.retrieve import HybridRetriever
from assistant.types import Hit
from index.lexicon import Lexicon
from index.normalize import to_simplified
from index.places import Gazetteer, Place, document_place
from index.store import IndexData


@dataclass(frozen=True)
class Ranked:
    """The ranked clauses for one question and what was decided about them."""

    hits: tuple[Hit, ...]  # exact lookups first, then by the ranker
    scores: tuple[float, ...]  # ranker scores of the non-lookup hits, in order
    decision: Decision
    asked_places: tuple[Place, ...] = ()
    uncovered_places: tuple[Place, ...] = ()  # asked places whose rules no indexed document sets
    covered_places: tuple[str, ...] = ()  # the places the indexed documents govern
    stale_year: int | None = None  # the best document's year, when the question asks about now
    timings_ms: tuple[tuple[str, float], ...] = ()

    def abstain_reason(self) -> str:
        """Why there is no answer, where it can be said: the places the documents cover, or an old document."""
        if self.uncovered_places:
            asked = "、".join(p.short for p in self.uncovered_places)
            covered = "、".join(self.covered_places)
            return f"已收录的文件不涉及“{asked}”的规定" + (f"（收录的地方性文件只涉及：{covered}）" if covered else "") + "。"
        if self.stale_year:
            return f"最相关的文件发布于 {self.stale_year} 年，不能说明现在的情况。"
        return ""


@dataclass(frozen=True)
class Prepared:
    """A question's candidates and features, before ranking (what `eval train` stores)."""

    question: Question
    candidates: tuple[Candidate, ...]
    x: np.ndarray  # (candidates, features)
    lookups: tuple[Hit, ...]
    asked_places: tuple[Place, ...]
    uncovered_places: tuple[Place, ...]
    timings_ms: dict
    version: AskedVersion | None = None  # an older version of a work the question asks for
    unindexed_statute: str = ""  # a statute the question names that no document is ('婚姻法第三十二条')


class Searcher:
    """Ranking and deciding over one loaded index; safe to share between threads."""

    def __init__(self, data: IndexData, embedder, settings, lexicon: Lexicon, gazetteer: Gazetteer,
                 ranker: Ranker | None, decider: Decider | None, query_threads: Callable[[], int] | None = None,
                 first_stage: FirstStage | None = None):
        """`query_threads()` says how many OpenMP threads a question's embedding may use now
        (AnswerSlots.threads_for_one); None leaves the process's setting. The candidates are
        gathered as the ranker's file says, or without a ranker as `first_stage` (default pools)."""
        self.data = data
        self.query_threads = query_threads
        self.settings = settings
        self.lexicon = lexicon
        self.gazetteer = gazetteer
        self.ranker = ranker
        self.decider = decider
        self.first_stage = ranker.first_stage if ranker is not None else (first_stage or FirstStage())
        adapter = self.first_stage.adapter  # only for questions embedded as the adapter was fitted
        self.adapter = adapter if adapter is not None and adapter.applies_to(data.embedder_name, data.vectors.shape[1]) \
            else None
        self.article_rows = ArticleRows(data)
        if self.memory is not None and self.first_stage.pool.memory:
            self.article_rows.build()  # made with the index (about 0.5 s on the law index), not on a first question
        self.retriever = HybridRetriever(data, embedder, settings)
        self.weights = TermWeights(data.bm25.doc_freq if data.bm25 is not None else (lambda t: 0),
                                   len(data.chunks), lexicon)
        docs = list(data.docs.values())
        self.titles = TitleIndex(docs, lexicon.tokenize)
        self.places = {d.doc_id: document_place(d.meta.title or d.title, d.meta.issuer, d.meta.doc_number, gazetteer)
                       for d in docs}
        self.clauses_by_doc = {d.doc_id: list(d.clauses) for d in docs}
        self.simple_titles = {d.doc_id: to_simplified(d.title) for d in docs}  # topics are read in simplified script
        self.covered = tuple({p.code: p.short for p in self.places.values() if p is not None}.values())
        # the rows of the documents a search leaves out, per set of them (index/versions.py: superseded
        # versions, unless a filter names one or the question asks for one: at most one set per work
        # in several versions besides the usual one, which is made now)
        self._hidden: dict[frozenset[str], np.ndarray] = {}
        self.hidden_rows(self.retriever.superseded)
        self.feature_cache: dict = {}  # clause contexts and unpunctuated texts, made once per index

    def named_documents(self, question_norm: str) -> dict[str, float]:
        """{doc_id: how clearly the question names it} (DocumentNames.score)."""
        return {d.doc_id: s for s, d in self.retriever.names.score(question_norm)}

    def allowed_docs(self, asked: list[Place], docs: list[str] | None) -> tuple[list[str] | None, list[Place]]:
        """(documents whose rules apply to the asked places, within `docs`; asked places no
        document governs). National documents apply everywhere; another place's rules never."""
        pool = docs or list(self.data.docs)
        if not asked:
            return docs, []
        allowed = [d for d in pool if any(self.gazetteer.governs(self.places.get(d), a) for a in asked)]
        uncovered = [a for a in asked
                     if not any(p is not None and self.gazetteer.governs(p, a) for p in self.places.values())]
        return allowed, uncovered

    def prepare(self, question_norm: str, docs: list[str] | None = None, prefer_docs: list[str] | None = None,
                exclude_docs: set[str] | None = None, lookup: bool = True,
                named: dict[str, float] | None = None) -> Prepared:
        """Lookups, place filter, candidates and their features for one question; `named` is
        `named_documents(question_norm)` when the caller has it already."""
        timings: dict[str, float] = {}
        lex = self.lexicon
        t = time.perf_counter()
        lookups = []
        version = self.retriever.asked_version(question_norm, docs)
        exclude = self.retriever.excluded(docs, version)
        unindexed = ""
        if lookup:
            lookups = self.retriever.lookup(question_norm, docs, prefer_docs, exclude)
            unindexed = "" if lookups else self.retriever.unindexed_statute(question_norm)
        asked = self.gazetteer.find(question_norm)
        allowed, uncovered = self.allowed_docs(asked, docs)
        if exclude_docs:
            allowed = [d for d in (allowed if allowed is not None else self.data.docs) if d not in exclude_docs]
        named = self.named_documents(question_norm) if named is None else named
        timings["lookup"] = (time.perf_counter() - t) * 1000
        expanded = lex.expand(question_norm)
        tokens = lex.tokenize(expanded)
        hidden = self.hidden_rows(exclude)
        qvec, recalled, law_votes = None, {}, {}
        if self.retriever.embedder is not None:
            t = time.perf_counter()
            qvec = raw = self.embed_question(expanded, self.query_threads() if self.query_threads is not None else 0)
            if self.adapter is not None:
                qvec = self.adapter.apply(qvec)
            timings["embed"] = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            recalled, law_votes = self.recall(raw, allowed, hidden)
            timings["memory"] = (time.perf_counter() - t) * 1000
        stage = self.first_stage
        grown = stage.expansion.expand(tokens) if stage.expansion is not None else ([], [])
        # an empty filter means every document (as HybridRetriever's searches read it)
        cands, t_pool = gather(self.retriever, tokens, qvec, stage.pool, allowed or None, self.titles.scores(tokens),
                               grown, hidden, recalled, law_votes)
        timings.update(t_pool)
        t = time.perf_counter()
        q = Question.make(question_norm, self.weights, lex, named, prefer_docs or (), self.feature_cache)
        x = feature_matrix(q, cands)
        timings["features"] = (time.perf_counter() - t) * 1000
        return Prepared(q, tuple(cands), x, tuple(lookups), tuple(asked), tuple(uncovered), timings, version,
                        unindexed)

    @property
    def memory(self):
        """The first stage's question memory, if made with this index's embedder (else None)."""
        memory = self.first_stage.memory
        ok = memory is not None and memory.applies_to(self.data.embedder_name, self.data.vectors.shape[1])
        return memory if ok else None

    def recall(self, qvec: np.ndarray, allowed: list[str] | None,
               hidden: np.ndarray | None) -> tuple[dict[int, tuple[float, int]], dict[str, int]]:
        """({chunk row: (cosine, votes)} of the articles the question memory recalls for a question
        vector (before the adapter), within the `allowed` documents and without the `hidden` rows;
        {doc_id: remembered questions citing its law} of the `allowed` documents)."""
        depth, memory = self.first_stage.pool.memory, self.memory
        if memory is None or not depth:
            return {}, {}
        inside = set(allowed) if allowed else None
        articles, laws = memory.recall(qvec, depth)
        out = {}
        for key, got in articles.items():
            for row in self.article_rows.rows(key).tolist():
                if (hidden is None or not hidden[row]) and (inside is None or self.data.chunks[row].doc_id in inside):
                    out[row] = got
        votes = {d: n for law, n in laws.items() for d in self.article_rows.docs(law) if inside is None or d in inside}
        return out, votes

    def hidden_rows(self, exclude: frozenset[str]) -> np.ndarray | None:
        """(chunks,) bool: the rows of the documents a search leaves out (None: none), made once per set."""
        if not exclude:
            return None
        mask = self._hidden.get(exclude)
        if mask is None:
            chunks = self.data.chunks
            mask = self._hidden[exclude] = np.fromiter((ch.doc_id in exclude for ch in chunks), dtype=bool,
                                                       count=len(chunks))
        return mask

    def embed_question(self, expanded: str, threads: int = 0) -> np.ndarray:
        """The (dim,) float32 vector of a question already normalised and expanded (Lexicon.expand),
        before the query adapter: what the dense search and the adapter's fitting both start from."""
        return self.retriever.embedder.embed_query_array(expanded, threads=threads).astype(np.float32)

    def order(self, prep: Prepared) -> tuple[list[int], np.ndarray]:
        """Candidate indices best first, and their scores (the ranker's, else reciprocal-rank fusion)."""
        if not prep.candidates:
            return [], np.zeros(0)
        if self.ranker is not None:
            scores = self.ranker.rank_scores(prep.x, prep.candidates)
        else:
            scores = np.array([c.rrf for c in prep.candidates])
        idx = np.argsort(-scores, kind="stable")  # best first; of equal scores, the earlier candidate
        return idx.tolist(), scores[idx]

    def question_vector(self, prep: Prepared, idx: list[int], scores: np.ndarray,
                        focus_share: float | None = None) -> tuple[np.ndarray, int | None]:
        """(the answerability model's features, the best document's year when the question asks
        about now and that document is years old). Whether a clause gives the kind of answer asked
        for is read in its sentences about the question (evidence.focus_sentence) at `focus_share`,
        by default the one the answerability model was fitted with."""
        if focus_share is None:
            focus_share = self.decider.focus_share if self.decider is not None else 1.0
        hits = [prep.candidates[i].hit for i in idx[:3]]
        types = self.lexicon.wanted_types(prep.question.norm)
        terms = evidence_terms(prep.question.norm, self.weights)
        stale = self._stale_year(prep.question.norm, hits)
        place_unmatched = bool(prep.asked_places) and (
            bool(prep.uncovered_places) or (bool(hits) and self.places.get(hits[0].doc.doc_id) is None))
        unmet = [self.lexicon.unmet_types(types, focus_sentence(terms, clause_text(h), self.weights, focus_share))
                 for h in hits] if types else []
        topic_other = bool(hits) and self.lexicon.other_topic(prep.question.norm, self.simple_titles[hits[0].doc.doc_id])
        qx = question_features(scores, prep.x[idx] if len(idx) else prep.x, [h.doc.doc_id for h in hits],
                               best_coverage(terms, hits, self.weights), unknown_share(terms, self.weights),
                               len(prep.question.terms), place_unmatched, topic_other, stale is not None,
                               len(types), unmet)
        return qx, stale

    def knows_every_word(self, question_norm: str) -> bool:
        """Whether every word of a question that carries evidence is in some indexed chunk (or a
        synonym is)."""
        return unknown_share(evidence_terms(question_norm, self.weights), self.weights) == 0

    def rank_question(self, question_norm: str, k: int, docs: list[str] | None = None,
                      prefer_docs: list[str] | None = None) -> Ranked:
        """The top k clauses (lookups first) and the decision about them."""
        return self.rank_prepared(self.prepare(question_norm, docs, prefer_docs), k)

    def rank_prepared(self, prep: Prepared, k: int) -> Ranked:
        """Rank prepared candidates and decide; see rank_question."""
        t = time.perf_counter()
        idx, scores = self.order(prep)
        timings = dict(prep.timings_ms)
        timings["rerank"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        qx, stale = self.question_vector(prep, idx, scores)
        if prep.lookups:
            # the question names the clause; found in several documents ('第三十九条' over 1,510 laws)
            # which one is meant is a guess among them
            n_docs = len({h.doc.doc_id for h in prep.lookups})
            decision = Decision("answered", 1.0) if n_docs == 1 else Decision("uncertain", 1.0 / n_docs)
        elif not idx:
            decision = Decision("abstained", 0.0)
        elif self.decider is None:
            decision = Decision("answered", float("nan"))
        else:
            decision = self.decider.decide(qx)
        timings["decide"] = (time.perf_counter() - t) * 1000
        hits, kept_scores = self.top_hits(prep, idx, scores, k)
        return Ranked(tuple(hits), tuple(kept_scores), decision, prep.asked_places, prep.uncovered_places, self.covered,
                      stale, tuple(timings.items()))

    def one_place(self, hits: list[Hit]) -> list[Hit]:
        """The hits a reply may quote together: those whose rules are made for the first hit's
        place, and national ones; a reply never sets one place's rules beside another's."""
        if not hits:
            return []
        first = self.places.get(hits[0].doc.doc_id)
        return [h for h in hits if self.places.get(h.doc.doc_id) in (None, first)]

    @staticmethod
    def top_hits(prep: Prepared, idx: list[int], scores, k: int) -> tuple[list[Hit], list[float]]:
        """The clauses the question names, then the k best others of the ranking (each clause once),
        and the ranker's scores of those k."""
        seen = {h.clause.clause_id for h in prep.lookups}
        hits = list(prep.lookups)
        kept_scores = []
        for i, s in zip(idx, scores):
            if len(hits) >= k + len(prep.lookups):
                break
            h = prep.candidates[i].hit
            if h.clause.clause_id not in seen:
                hits.append(h)
                kept_scores.append(float(s))
        return hits, kept_scores

    def _stale_year(self, question_norm: str, hits: list[Hit]) -> int | None:
        """The best document's year when the question asks about the present and it is years old."""
        if not hits or not self.lexicon.pattern("relative_now").search(question_norm):
            return None
        dated = hits[0].doc.meta.issue_date or hits[0].doc.meta.effective_date
        if not dated:
            return None
        year = int(dated[:4])
        return year if year < time.localtime().tm_year - 1 else None
