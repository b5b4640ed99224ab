"""BM25 from stored term counts: agreement with bm25s (the reference), masks, persistence."""
from __future__ import annotations

import bm25s
import numpy as np
import pytest

from index.bm25 import BM25, count_terms
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
