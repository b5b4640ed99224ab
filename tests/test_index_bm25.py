"""BM25 from stored term counts: agreement with bm25s (the reference), masks, persistence."""
from __future__ import annotations

import bm25s
import numpy as np
import pytest

from index.bm25 import BM25, count_terms, top_indices
from index.lexical import tokenize
from index.normalize import to_simplified
from index.store import load_index
from tests.conftest import CORPUS


def test_count_terms_example():
    terms, triples = count_terms([["a", "b", "a"], ["b"]])
    assert terms == ["a", "b"]
    assert triples.tolist() == [[0, 0, 2], [0, 1, 1], [1, 1, 1]]


@pytest.fixture(scope="module")
def corpus_tokens():
    texts = []
    for f in sorted(CORPUS.glob("*.txt")):
        text = to_simplified(f.read_text(encoding="utf-8"))
        texts += [text[i:i + 150] for i in range(0, len(text), 150)]
    return [tokenize(t) for t in texts]


@pytest.mark.parametrize("query", ["自由职业者怎么交养老保险", "地税部门在扩面工作中负责什么", "工伤保险浮动费率",
                                   "保险 保险 缴费", "完全不相关的火星词汇"])
def test_scores_agree_with_bm25s(corpus_tokens, query):
    ours = BM25.from_token_lists(corpus_tokens)
    ref = bm25s.BM25()
    ref.index(corpus_tokens, show_progress=False)
    q = tokenize(query)
    known = [t for t in q if t in ref.vocab_dict]
    expected = ref.get_scores(known) if known else np.zeros(len(corpus_tokens))
    assert np.allclose(ours.scores(q), expected, rtol=1e-4, atol=1e-5)
    top = ours.top(q, k=10)
    assert [s for _, s in top] == sorted((s for _, s in top), reverse=True)
    assert all(s > 0 for _, s in top)


@pytest.mark.parametrize("query,k", [("自由职业者怎么交养老保险", 10), ("保险 保险 缴费", 40), ("工伤保险浮动费率", 1000),
                                     ("完全不相关的火星词汇", 5)])
def test_top_is_the_full_sort_of_the_scored_rows(corpus_tokens, query, k):
    """top() selects among the rows a query word is in: the same rows and order as sorting every
    row by score (equal scores by row) and dropping those that score nothing."""
    bm = BM25.from_token_lists(corpus_tokens)
    scores = bm.scores(tokenize(query))
    expected = [(int(r), float(scores[r])) for r in sorted(range(len(scores)), key=lambda r: (-scores[r], r))
                if scores[r] > 0][:k]
    assert bm.top(tokenize(query), k=k) == expected


@pytest.mark.parametrize("scores,k,expected", [([0.1, 0.9, 0.5], 2, [1, 2]), ([0.1, 0.9, 0.5, 0.9], 2, [1, 3]),
                                               ([0.2, 0.2, 0.2], 5, [0, 1, 2]), ([0.3], 0, []),
                                               ([-1.0, 0.0, -0.5, 0.0], 3, [1, 3, 2])])
def test_top_indices_best_first_equal_scores_by_index(scores, k, expected):
    assert top_indices(np.array(scores, dtype=np.float32), k).tolist() == expected


def test_top_indices_keeps_the_lowest_indices_of_the_scores_tied_at_the_cut():
    rng = np.random.default_rng(1)
    for _ in range(300):  # few distinct scores: many ties, often across the k-th place
        scores = rng.integers(0, 3, int(rng.integers(3, 40))).astype(np.float32)
        k = int(rng.integers(1, len(scores) + 2))
        assert top_indices(scores, k).tolist() == sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:k]


def test_mask_restricts_rows_and_df_counts_chunks(corpus_tokens):
    bm = BM25.from_token_lists(corpus_tokens)
    mask = np.zeros(len(corpus_tokens), dtype=bool)
    mask[:20] = True
    assert all(row < 20 for row, _ in bm.top(tokenize("养老保险"), k=50, mask=mask))
    assert bm.doc_freq("养老保险") == sum("养老保险" in toks for toks in corpus_tokens)
    assert bm.doc_freq("不存在的词") == 0


def test_loaded_index_has_the_bm25_of_its_chunks(fake_index_dir):
    """The BM25 assembled from the shards equals one built from the chunks' own tokens."""
    data = load_index(fake_index_dir)
    direct = BM25.from_token_lists([tokenize(c.embed_text) for c in data.chunks])
    for q in ["灵活就业人员缴费基数", "地税部门 扩面", "工伤保险"]:
        assert np.allclose(data.bm25.scores(tokenize(q)), direct.scores(tokenize(q)), rtol=1e-5)


@pytest.mark.parametrize("query", ["自由职业者怎么交养老保险", "保险 保险 缴费", "完全不相关的火星词汇"])
def test_scores_of_some_rows_are_the_full_scores_bit_for_bit(corpus_tokens, query):
    bm = BM25.from_token_lists(corpus_tokens)
    rows = np.random.default_rng(7).permutation(len(corpus_tokens))[:40]
    q = tokenize(query)
    assert np.array_equal(bm.scores_of(q, rows), bm.scores(q)[rows])
    assert bm.scores_of(q, np.zeros(0, dtype=np.int64)).shape == (0,)


def test_postings_given_out_of_row_order_score_the_same(corpus_tokens):
    terms, triples = count_terms(corpus_tokens)
    vocab = {t: i for i, t in enumerate(terms)}
    shuffled = triples[np.random.default_rng(3).permutation(len(triples))]
    a = BM25(vocab, triples[:, 0], triples[:, 1], triples[:, 2], len(corpus_tokens))
    b = BM25(vocab, shuffled[:, 0], shuffled[:, 1], shuffled[:, 2], len(corpus_tokens))
    q = tokenize("养老保险 缴费基数")
    rows = np.arange(0, len(corpus_tokens), 2)
    assert np.allclose(b.scores(q), a.scores(q), rtol=1e-6)
    assert np.array_equal(b.scores_of(q, rows), b.scores(q)[rows])


def test_stats_gathered_shard_by_shard_equal_the_loaded_bm25s(fake_index_dir):
    """Loading for another engine keeps no postings, and the same vocabulary, df, size and mean length."""
    full = load_index(fake_index_dir).bm25.stats
    slim = load_index(fake_index_dir, search_structures=False)
    assert slim.vectors.shape[0] == 0 and slim.backend is None
    stats = slim.bm25
    assert stats.vocab == full.vocab and np.array_equal(stats.df, full.df)
    assert (stats.n_docs, stats.avglen) == (full.n_docs, full.avglen)
    assert stats.doc_freq("养老保险") == full.doc_freq("养老保险") > 0 and stats.idf("火星人") is None


def test_idf_times_document_weights_is_bm25(corpus_tokens):
    bm = BM25.from_token_lists(corpus_tokens)
    stats = bm.stats
    i = max(range(len(corpus_tokens)), key=lambda j: len(corpus_tokens[j]))
    toks = corpus_tokens[i]
    terms = list(dict.fromkeys(toks))
    weights = stats.doc_weights(np.array([toks.count(t) for t in terms]), len(toks))
    query = terms[:3] + terms[:1]
    by_term = dict(zip(terms, weights.tolist()))
    assert sum(stats.idf(t) * by_term[t] for t in query) == pytest.approx(float(bm.scores(query)[i]), rel=1e-6)


def test_chunk_lengths_sum_each_chunks_counts_and_keep_empty_chunks():
    from index.bm25 import chunk_lengths

    got = chunk_lengths(np.array([[0, 5, 2], [0, 7, 1], [2, 5, 1]]), 4)
    assert got.dtype == np.float32 and got.tolist() == [3.0, 0.0, 1.0, 0.0]
    assert chunk_lengths(np.zeros((0, 3), dtype=np.int64), 2).tolist() == [0.0, 0.0]
