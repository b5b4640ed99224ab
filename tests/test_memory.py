"""The question memory: what it recalls, its file form, that its articles join the pool only
inside the documents a question may use, and that in training no question recalls its own answer."""
from __future__ import annotations

import doctest
import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

import assistant.articles as articles_module
import assistant.memory as memory_module
from assistant.articles import clause_key, law_key, law_of
from assistant.candidates import PoolSettings
from assistant.memory import QuestionMemory
from eval.train_adapter import question_vectors
from eval.train_memory import folds, learn_memory, without_own_answers


def test_docstring_examples():
    for module in (memory_module, articles_module):
        assert doctest.testmod(module).failed == 0


def _unit(*rows) -> np.ndarray:
    m = np.array(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


MEMORY = QuestionMemory(_unit([1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0, 1]),
                        (("A", "B"), ("A",), ("C",), ("D",)), ("q1", "q2", "q3", "q4"), "e5")


@pytest.mark.parametrize("k, expected", [
    (1, {"A": 1, "B": 1}),
    (2, {"A": 2, "B": 1}),  # two neighbours cite A: two votes, the nearer one's cosine
    (3, {"A": 2, "B": 1, "C": 1}),
    (99, {"A": 2, "B": 1, "C": 1, "D": 1}),  # more neighbours asked than remembered
    (0, {}),
])
def test_recall_counts_votes_among_the_k_nearest(k, expected):
    got, _ = MEMORY.recall(np.array([1, 0, 0], np.float32), k)
    assert {key: n for key, (_, n) in got.items()} == expected
    if "A" in got:
        assert got["A"][0] == pytest.approx(1.0)  # the best cosine among those citing it


def test_an_empty_memory_recalls_nothing():
    empty = QuestionMemory(np.zeros((0, 3), np.float32), (), (), "e5")
    assert empty.recall(np.array([1, 0, 0], np.float32), 5) == ({}, {})


LAWS = QuestionMemory(_unit([1, 0, 0], [0.9, 0.1, 0], [0, 1, 0]),
                      (("民法典第一条", "民法典第十条", "刑法第二条"), ("民法典第五百条",), ("劳动法第三条之一",)),
                      ("q1", "q2", "q3"), "e5")


@pytest.mark.parametrize("k, expected", [
    (1, {"民法典": 1, "刑法": 1}),  # two articles of one law are one vote of that question
    (2, {"民法典": 2, "刑法": 1}),
    (3, {"民法典": 2, "刑法": 1, "劳动法": 1}),  # an article 之一 belongs to its law too
    (0, {}),
])
def test_law_votes_count_questions_not_articles(k, expected):
    assert LAWS.recall(np.array([1, 0, 0], np.float32), k)[1] == expected


@pytest.mark.parametrize("key, law", [
    ("民法典第五十四条", "民法典"),
    ("刑法第一百三十三条之一", "刑法"),
    ("消费者权益保护法第五十五条", "消费者权益保护法"),
    ("000_abc.txt#四、(二)3.", "000_abc.txt#四、(二)3."),  # no article: the key is its own law
])
def test_law_of_an_article_key(key, law):
    assert law_of(key) == law


def test_without_leaves_those_questions_out():
    rest = MEMORY.without({"q1", "q2"})
    assert rest.ids == ("q3", "q4") and rest.golds == (("C",), ("D",))
    assert "A" not in rest.recall(np.array([1, 0, 0], np.float32), 4)[0]


def test_json_round_trip_and_damage_refused():
    raw = json.loads(json.dumps(MEMORY.to_json()))
    back = QuestionMemory.from_json(raw)
    assert back.ids == MEMORY.ids and back.golds == MEMORY.golds and back.embedder == "e5"
    assert np.allclose(back.vectors, MEMORY.vectors, atol=1e-3)  # float16 on file
    with pytest.raises(ValueError, match="bytes"):
        QuestionMemory.from_json({**raw, "dim": 4})
    with pytest.raises(ValueError):
        QuestionMemory(MEMORY.vectors, MEMORY.golds[:2], MEMORY.ids, "e5")


@pytest.mark.parametrize("name, dim, applies", [("e5", 3, True), ("hashing", 3, False), ("e5", 384, False)])
def test_memory_applies_only_to_its_own_embedder(name, dim, applies):
    assert MEMORY.applies_to(name, dim) is applies


def test_folds_are_disjoint_and_cover_every_id():
    ids = [str(i) for i in range(23)]
    parts = folds(ids)
    assert len(parts) == 5 and set().union(*parts) == set(ids) and sum(map(len, parts)) == 23
    assert folds(ids) == parts  # the same parts every time


# ---- over a real index of the bundled corpus -------------------------------------------------

QUESTION = "困难群体的基本生活怎样保障"


def _far_clause(assistant):
    """A clause of the bundled corpus the question's own pool does not hold (the pool made
    shallow: the bundled corpus is small enough for the usual depths to hold all of it)."""
    s = assistant.searcher
    s.first_stage = replace(s.first_stage, pool=PoolSettings(dense=3, bm25=3, docs=0, per_doc=0))
    _, prep, _ = assistant.prepare(QUESTION)
    pooled = {c.hit.clause.clause_id for c in prep.candidates}
    data = assistant.data
    return next(cl for d in data.docs.values() for cl in d.clauses
                if cl.clause_id not in pooled and cl.text and any(ch.clause_id == cl.clause_id for ch in data.chunks))


def _remember(assistant, clause, depth=3):
    """The assistant with a memory of the question itself, its answer `clause`."""
    key = clause_key(assistant.data.docs[clause.doc_id], clause)
    query = SimpleNamespace(qid="m1", text=QUESTION, gold={key})
    memory = learn_memory(assistant, [query])
    s = assistant.searcher
    s.first_stage = replace(s.first_stage, pool=replace(s.first_stage.pool, memory=depth), memory=memory)
    return query


def _recalled(assistant, clause, **kw) -> list:
    prep = assistant.searcher.prepare(assistant.prepare(QUESTION)[1].question.norm, **kw)
    return [c for c in prep.candidates if c.hit.clause.clause_id == clause.clause_id]


def test_a_remembered_answer_joins_the_pool_with_its_numbers(fake_assistant):
    clause = _far_clause(fake_assistant)
    assert not _recalled(fake_assistant, clause)
    _remember(fake_assistant, clause)
    got = _recalled(fake_assistant, clause)
    assert got and got[0].memory == pytest.approx(1.0, abs=1e-3) and got[0].memory_votes == 1
    vec = question_vectors(fake_assistant, [QUESTION])[0]
    assert np.allclose(fake_assistant.searcher.memory.vectors[0], vec, atol=1e-3)


def test_a_remembered_answer_stays_inside_the_documents_asked(fake_assistant):
    clause = _far_clause(fake_assistant)
    _remember(fake_assistant, clause)
    others = [d for d in fake_assistant.data.docs if d != clause.doc_id]
    assert not _recalled(fake_assistant, clause, docs=others)
    assert not _recalled(fake_assistant, clause, exclude_docs={clause.doc_id})
    assert _recalled(fake_assistant, clause, docs=[clause.doc_id])


def test_no_pool_depth_no_recall(fake_assistant):
    clause = _far_clause(fake_assistant)
    _remember(fake_assistant, clause, depth=0)
    assert not _recalled(fake_assistant, clause)


def test_training_never_recalls_a_questions_own_answer(fake_assistant):
    clause = _far_clause(fake_assistant)
    query = _remember(fake_assistant, clause)
    stage = fake_assistant.searcher.first_stage

    def make(assistant, queries):
        out = []
        for q in queries:
            _, prep, _ = assistant.prepare(q.text)
            out.append(SimpleNamespace(qid=str(q.qid), prep=prep))
        return out

    plain = make(fake_assistant, [query])[0]
    assert any(c.memory > 0 for c in plain.prep.candidates)  # asked as a new question, it recalls itself
    held = without_own_answers(fake_assistant, [query], make)
    assert [e.qid for e in held] == ["m1"]
    assert all(c.memory == 0 for c in held[0].prep.candidates)
    assert fake_assistant.searcher.first_stage is stage  # the full memory is back afterwards


def test_the_shipped_memory_recalls_nothing_from_documents_it_never_saw(fake_assistant):
    stage = fake_assistant.searcher.first_stage
    if stage.memory is None:
        pytest.skip("the shipped ranker has no question memory")
    _, prep, _ = fake_assistant.prepare("公司辞退员工要给多少经济补偿")
    assert prep.candidates and all(c.memory == 0 for c in prep.candidates)


def _remember_law(assistant, doc, depth=3):
    """A memory of the question itself whose answer cited an article of `doc`'s law (by its title)."""
    query = SimpleNamespace(qid="m1", text=QUESTION, gold={law_key(doc.title, "第一条")})
    s = assistant.searcher
    s.first_stage = replace(s.first_stage, pool=replace(s.first_stage.pool, memory=depth),
                            memory=learn_memory(assistant, [query]))


def test_candidates_of_a_remembered_law_carry_its_votes(fake_assistant):
    docs = list(fake_assistant.data.docs.values())
    cited = docs[0]
    _remember_law(fake_assistant, cited)
    norm = fake_assistant.prepare(QUESTION)[1].question.norm
    prep = fake_assistant.searcher.prepare(norm)
    votes = {c.hit.doc.doc_id: c.memory_law for c in prep.candidates}
    assert votes.get(cited.doc_id) == 1 and set(votes.values()) == {0, 1}
    assert all(v == 0 for d, v in votes.items() if d != cited.doc_id)
    outside = fake_assistant.searcher.prepare(norm, exclude_docs={cited.doc_id})
    assert outside.candidates and all(c.memory_law == 0 for c in outside.candidates)
