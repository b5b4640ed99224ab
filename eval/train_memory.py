"""The question memory `python -m eval train` saves in the ranker file (assistant/memory.py).

It remembers the STARD train questions only: validation chooses its depth (the remembered
questions recalled per question), test reports. While the ranker learns, a train question must
not recall its own lawyer's answer, or the memory features would look perfect in training and
disappoint after; so the train questions' candidates are gathered in `FOLDS` parts, each with a
memory of the other parts only (as a new question meets a memory it is not in).

Depth chosen on validation: gold articles anywhere in the pool (`python -m eval pool --split
validation --memory N`, 309 questions; that command's first stage has no query adapter):

    memory    gold in pool    candidates
    0         0.805           269
    10        0.838           277
    20        0.853           289
    40        0.865           316

The shipped depth, 40, was chosen with the other pool depths (eval/train_expansion.py): with
the searches' depths shifted towards the dense search, 40 remembered questions fill a pool no
larger than 20 did before.
"""
from __future__ import annotations

import random
from dataclasses import replace

from assistant.memory import QuestionMemory
from eval.train_adapter import question_vectors

FOLDS = 5


def learn_memory(assistant, queries) -> QuestionMemory:
    """A memory of `queries` (eval.stard.Query with gold article keys), embedded by `assistant`."""
    kept = [q for q in queries if q.gold]
    vectors = question_vectors(assistant, [q.text for q in kept])  # as the searcher embeds them, before the adapter
    return QuestionMemory(vectors, tuple(tuple(sorted(q.gold)) for q in kept),
                          tuple(str(q.qid) for q in kept), assistant.data.embedder_name)


def folds(ids: list[str], n: int = FOLDS, seed: int = 7) -> list[set[str]]:
    """`ids` dealt into `n` parts at random (fixed seed)."""
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    return [set(order[i::n]) for i in range(n)]


def without_own_answers(assistant, queries, make) -> list:
    """`make(assistant, queries)`'s examples, each question's candidates gathered with a memory
    that does not hold its fold; in the order of `queries`. Without a memory, `make` as it is."""
    searcher = assistant.searcher
    stage = searcher.first_stage
    if stage.memory is None or not stage.pool.memory:
        return make(assistant, queries)
    by_id = {}
    try:
        for part in folds([str(q.qid) for q in queries]):
            searcher.first_stage = replace(stage, memory=stage.memory.without(part))
            for e in make(assistant, [q for q in queries if str(q.qid) in part]):
                by_id[e.qid] = e
    finally:
        searcher.first_stage = stage
    return [by_id[str(q.qid)] for q in queries if str(q.qid) in by_id]
