"""The embedded search backend's one-document searches: a document's chunks read as one block of
the vector matrix where they lie together, and the same hits as scoring its rows one by one."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from index.backend import LocalBackend, contiguous_spans


def backend(doc_of_rows: list[str], seed: int = 0) -> LocalBackend:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(len(doc_of_rows), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return LocalBackend([SimpleNamespace(doc_id=d) for d in doc_of_rows], vectors)


@pytest.mark.parametrize("by_doc, spans", [
    ({"a": [0, 1], "b": [2, 4]}, {"a": (0, 2)}),  # b has a gap
    ({"a": [3, 4, 5], "b": [0, 1, 2]}, {"a": (3, 6), "b": (0, 3)}),
    ({"a": [7]}, {"a": (7, 8)}),
    ({"a": [2, 1]}, {}),  # not in order: no block
    ({"a": []}, {}),
])
def test_contiguous_spans(by_doc, spans):
    assert contiguous_spans({d: np.asarray(r, dtype=np.int64) for d, r in by_doc.items()}) == spans


# documents laid out together (a, b) and interleaved (c, d), as a store could hold them
LAYOUT = ["a"] * 6 + ["b"] * 3 + ["c", "d", "c", "d", "c"] + ["e"]


def nearest(be: LocalBackend, q: np.ndarray, k: int, doc: str) -> list[tuple[int, float]]:
    """A document's k nearest chunks, each row scored on its own: best first, of equal ones the lower row."""
    scored = [(row, float(be.vectors[row] @ q)) for row, d in enumerate(LAYOUT) if d == doc]
    return sorted(scored, key=lambda h: (-h[1], h[0]))[:k]


@pytest.mark.parametrize("k", [1, 2, 4, 10])
@pytest.mark.parametrize("docs", [["a"], ["b", "a"], ["c", "d"], ["a", "c", "e"], ["missing", "b"]])
def test_each_documents_nearest_chunks(k, docs):
    be = backend(LAYOUT, seed=k)
    q = be.vectors[3] * 0.5 + be.vectors[10] * 0.5
    got = be.dense_each_doc(q, k, docs)
    assert [r for r, _ in got] == [r for d in docs for r, _ in nearest(be, q, k, d)]
    assert [s for _, s in got] == pytest.approx([s for d in docs for _, s in nearest(be, q, k, d)], abs=1e-6)
    # a filter of several documents reads their rows one by one: the same nearest rows
    both = sorted((h for d in docs for h in nearest(be, q, len(LAYOUT), d)), key=lambda h: (-h[1], h[0]))[:k]
    assert [r for r, _ in be.dense(q, k, docs, exact=False)] == [r for r, _ in both]
    assert {be.spans.get(d) for d in ("a", "b", "c", "e")} == {(0, 6), (6, 9), None, (14, 15)}
    for d in docs:  # at most k of each, all of its own
        rows = [r for r, _ in got if LAYOUT[r] == d]
        assert len(rows) == min(k, LAYOUT.count(d))


def test_no_depth_finds_nothing():
    be = backend(LAYOUT)
    assert be.dense_each_doc(be.vectors[0], 0, ["a", "b"]) == []
    assert be.dense_each_doc(be.vectors[0], 3, []) == []
