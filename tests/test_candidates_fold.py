"""Folding pooled chunks into their clauses (assistant.candidates.fold), against a plain loop."""
from __future__ import annotations

import numpy as np
import pytest

from assistant.candidates import _ranks, fold


def fold_by_loop(codes, rows, dense, bm25, expanded):
    """The definition: clauses in the order their first chunk comes; each keeps the chunk of its
    best dense score (the first of equal ones) and the best BM25 and expanded BM25 of its chunks."""
    best: dict[int, list] = {}
    for code, row, ds, bs, es in zip(codes, rows, dense, bm25, expanded):
        cur = best.get(code)
        if cur is None:
            best[code] = [row, ds, bs, es]
        else:
            if ds > cur[1]:
                cur[0], cur[1] = row, ds
            cur[2], cur[3] = max(cur[2], bs), max(cur[3], es)
    return [tuple(v) for v in best.values()]


CASES = [
    # the docstring's example: clause 7 comes first, its third chunk has the better dense score
    ([7, 3, 7], [10, 11, 12], [0.2, 0.5, 0.4], [1.0, 0.0, 3.0], [1.0, 0.0, 3.0]),
    # equal dense scores: the first chunk stays
    ([5, 5], [20, 21], [0.3, 0.3], [0.0, 2.0], [0.5, 0.0]),
    # one chunk per clause: nothing folds, the order is kept
    ([9, 1, 4], [1, 2, 3], [0.1, 0.9, 0.5], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]),
    # negative cosines and zero BM25
    ([2, 2, 2], [4, 5, 6], [-0.1, -0.3, -0.05], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]),
]


@pytest.mark.parametrize("codes, rows, dense, bm25, expanded", CASES)
def test_fold_equals_the_loop(codes, rows, dense, bm25, expanded):
    got_rows, got_dense, got_bm, got_ex, item = fold(np.array(codes), np.array(rows), np.array(dense),
                                                     np.array(bm25), np.array(expanded))
    expected = fold_by_loop(codes, rows, dense, bm25, expanded)
    assert list(zip(got_rows.tolist(), got_dense.tolist(), got_bm.tolist(), got_ex.tolist())) == expected
    # each row points at its clause's place in that order
    order = list(dict.fromkeys(codes))
    assert item.tolist() == [order.index(c) for c in codes]


def test_fold_matches_the_loop_on_random_pools():
    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(1, 40))
        codes = rng.integers(0, 12, n)
        dense = np.round(rng.random(n), 1)  # coarse values: ties happen
        bm25 = np.round(rng.random(n) * 3, 0)
        expanded = bm25 + np.round(rng.random(n), 1)
        rows = rng.permutation(1000)[:n]
        got = fold(codes, rows, dense, bm25, expanded)
        assert list(zip(*(a.tolist() for a in got[:4]))) == fold_by_loop(codes.tolist(), rows.tolist(), dense.tolist(),
                                                                         bm25.tolist(), expanded.tolist())


def test_an_empty_pool_folds_to_nothing():
    got = fold(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0), np.zeros(0))
    assert all(len(a) == 0 for a in got)


@pytest.mark.parametrize("order, ranks", [([2, 0, 1], [1, 2, 0]), ([0], [0]), ([], [])])
def test_ranks_invert_an_order(order, ranks):
    assert _ranks(np.array(order, dtype=np.int64)).tolist() == ranks
