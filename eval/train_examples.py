"""The examples `python -m eval train` learns from: one question's candidates with their labels.

- `stard_examples`: STARD questions over the law index, a candidate right when it belongs to a
  gold article; with leave_out, the gold laws are left out of the index (same wording, no answer).
- `offcorpus_examples`: STARD questions asked of the bundled corpus, which holds none of their
  laws: every candidate wrong, the question unanswerable there.
- `dev_examples`: gold-set items over the bundled corpus.
- `region_examples`: the region calibration questions over the local regulations of seven
  provinces (eval/region.py): a candidate right when it is a gold article of the place asked
  about; a question about a place whose rules on the topic are not indexed is unanswerable.
- `source_weights`: how much each source weighs in a fit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assistant.articles import clause_key, docs_by_law, law_of
from assistant.search import Prepared
from index.normalize import to_simplified

@dataclass
class Example:
    """One question's candidates with their labels."""

    source: str  # stard | stard-leaveout | stard-offcorpus | dev | nearmiss | region
    qid: str
    prep: Prepared
    labels: np.ndarray  # (candidates,) 1 where the clause answers the question
    answerable: bool  # whether the index holds an answer at all


def article_key(hit) -> str:
    return clause_key(hit.doc, hit.clause)


def cites_gold(assistant, e: Example, order: tuple[list[int], np.ndarray], uncertain: bool = False) -> bool:
    """Whether the extractive reply to an example, built from its ranking as the answer path builds
    it (the top_k best clauses, of one place), cites a gold article: what the reply would show,
    where the ranking's top 3 overstate it (the composer quotes fewer clauses than it is given).
    An answered reply quotes the answer built from the first clauses; an `uncertain` one shows each
    of the best clauses (compose.best_clauses_answer)."""
    from assistant.compose import best_clauses_answer, extractive_answer

    gold = {article_key(c.hit) for c, label in zip(e.prep.candidates, e.labels) if label}
    if not gold:
        return False
    searcher, data = assistant.searcher, assistant.data
    hits, _ = searcher.top_hits(e.prep, order[0], order[1], assistant.settings.top_k)
    compose = best_clauses_answer if uncertain else extractive_answer
    _, citations = compose(e.prep.question.norm, searcher.one_place(hits), searcher.weights, searcher.clauses_by_doc)
    cited = [data.clauses[c.clause_id] for c in citations if c.clause_id in data.clauses]
    return any(clause_key(data.docs[cl.doc_id], cl) in gold for cl in cited)


def stard_examples(assistant, queries, leave_out: bool = False, progress=None) -> list[Example]:
    """Examples of STARD queries; with leave_out, the documents of the gold laws are excluded."""
    out = []
    by_law = docs_by_law(assistant.data.docs.values())
    for q in queries:
        gold_laws = {law_of(g) for g in q.gold}
        exclude = {d for law in gold_laws for d in by_law.get(law, [])}
        if leave_out and not exclude:
            continue
        if leave_out:
            prep = assistant.searcher.prepare(to_simplified(q.text), exclude_docs=exclude, lookup=False)
        else:
            _, prep, _ = assistant.prepare(q.text)
        labels = np.array([article_key(c.hit) in q.gold for c in prep.candidates], dtype=np.float32)
        out.append(Example("stard-leaveout" if leave_out else "stard", str(q.qid), prep, labels, not leave_out))
        if progress:
            progress()
    return out


def offcorpus_examples(assistant, queries) -> list[Example]:
    """STARD queries asked of an index that holds none of their laws (the bundled corpus): every
    candidate is wrong and the question unanswerable there."""
    out = []
    for q in queries:
        _, prep, _ = assistant.prepare(q.text)
        out.append(Example("stard-offcorpus", str(q.qid), prep, np.zeros(len(prep.candidates), dtype=np.float32), False))
    return out


def dev_examples(assistant, items: list[dict], source: str) -> list[Example]:
    """Examples of gold-set items over the bundled corpus: a candidate is right when it is the
    gold clause or its own text holds the gold evidence."""
    out = []
    for it in items:
        _, prep, _ = assistant.prepare(it["question"], it.get("history") or [])
        ev = to_simplified(it.get("gold_evidence", "")) if it.get("answerable") else None
        labels = np.zeros(len(prep.candidates), dtype=np.float32)
        if ev:
            for i, c in enumerate(prep.candidates):
                cl = c.hit.clause
                labels[i] = (cl.doc_id == it["doc_id"] and cl.label == it["gold_label"]) or ev in to_simplified(cl.text)
        out.append(Example(source, it["id"], prep, labels, bool(it.get("answerable"))))
    return out


def region_examples(assistant, items: list[dict]) -> list[Example]:
    """Examples of region questions: a candidate is right when its file and article are among the
    item's gold ({"file": "广东/广东省失业保险条例(2022-06-01).md", "article": "第十九条"}: the
    clauses of 第十九条 in that file, whatever their 款 or chapter)."""
    from eval.region import gold_articles, is_gold_article

    out = []
    for it in items:
        _, prep, _ = assistant.prepare(it["question"])
        gold = gold_articles(it)
        labels = np.array([is_gold_article(c.hit.doc.source, c.hit.clause.path, c.hit.clause.label, gold)
                           for c in prep.candidates], dtype=np.float32)
        out.append(Example("region", it["id"], prep, labels, bool(it["answerable"])))
    return out


def source_weights(examples: list[Example], total: float, shares: dict[str, float] | None = None) -> np.ndarray:
    """(examples,) weights giving each source (stard, dev, ...) `total` in all, or `total` times its
    share: sources of 3 and 1 examples, total 6 -> [2, 2, 2, 6]; with shares {b: 0.5} -> [2, 2, 2, 3]."""
    counts: dict[str, int] = {}
    for e in examples:
        counts[e.source] = counts.get(e.source, 0) + 1
    shares = shares or {}
    return np.array([total * shares.get(e.source, 1.0) / counts[e.source] for e in examples], dtype=np.float64)
