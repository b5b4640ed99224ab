"""The embedded search backend's per-document search: a document's chunks read as one block of
the vector matrix where they lie together, the same hits as a search filtered to the document."""
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


@pytest.mark.parametrize("k", [1, 2, 4, 10])
@pytest.mark.parametrize("docs", [["a"], ["b", "a"], ["c", "d"], ["a", "c", "e"], ["missing", "b"]])
def test_each_documents_nearest_chunks_are_the_filtered_search(k, docs):
    be = backend(LAYOUT, seed=k)
    q = be.vectors[3] * 0.5 + be.vectors[10] * 0.5
    expected = [hit for d in docs for hit in be.dense(q, k, [d], exact=False)]
    got = be.dense_each_doc(q, k, docs)
    assert got == expected
    assert {be.spans.get(d) for d in ("a", "b", "c", "e")} == {(0, 6), (6, 9), None, (14, 15)}
    for d in docs:  # at most k of each, all of its own
        rows = [r for r, _ in got if LAYOUT[r] == d]
        assert len(rows) == min(k, LAYOUT.count(d))


def test_no_depth_finds_nothing():
    be = backend(LAYOUT)
    assert be.dense_each_doc(be.vectors[0], 0, ["a", "b"]) == []
    assert be.dense_each_doc(be.vectors[0], 3, []) == []
