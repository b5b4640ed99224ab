"""Question memory: the articles lawyers cited for earlier questions like this one.

Citizens ask the same things in ever new words (被辞退 赔偿, 试用期 辞退, 离婚 财产), and the
articles that answered one question often answer its neighbours, even when the new question
shares few words with them. The memory holds the embedding of each STARD train question and
the articles its lawyer cited (`python -m eval train`; nothing from validation or test). For a
new question it finds the `k` nearest remembered questions by cosine and recalls their
articles, by article key (assistant/articles.py), in whatever index holds those laws:

    recall(q) = ({article: (best cosine of a neighbour citing it, how many of the k cite it)},
                 {law: how many of the k cite one of its articles})

The recalled articles join the candidate pool (assistant/candidates.py) and the two numbers
are ranker features; the ranker learns how far to trust them. Over documents the memory never
saw (the bundled policy documents) it recalls nothing that is indexed, and changes nothing.

Worked example: neighbours at cosine 0.93 (cited A) and 0.91 (cited A and B) recall
A -> (0.93, 2) and B -> (0.91, 1).

The same neighbours also vote for laws, in the same search: each law gets one vote from each
neighbour that cited any of its articles (a ranker feature of every candidate of that law,
recalled or not). The right law is easier to tell than the right article: on STARD validation the most voted law
is a gold article's law for 0.69 of the questions, the law-first score's first for 0.50.

A memory belongs to the embedder it was made with (name and dimension are saved with it); a
question embedded by another recalls nothing (`applies_to`).
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field

import numpy as np

from assistant.articles import chunk_keys, docs_by_law, law_of


@dataclass(frozen=True)
class QuestionMemory:
    """Remembered questions: unit vectors, the article keys each one's answer cited, their ids."""

    vectors: np.ndarray = field(repr=False)  # (n, dim) float32, unit rows
    golds: tuple[tuple[str, ...], ...]
    ids: tuple[str, ...]
    embedder: str = ""

    def __post_init__(self):
        if self.vectors.ndim != 2 or not (len(self.vectors) == len(self.golds) == len(self.ids)):
            raise ValueError(f"memory holds {self.vectors.shape} vectors for {len(self.golds)} answers "
                             f"and {len(self.ids)} ids")

    def __len__(self) -> int:
        return len(self.ids)

    def applies_to(self, embedder_name: str, dim: int) -> bool:
        return embedder_name == self.embedder and dim == self.vectors.shape[1]

    def without(self, ids) -> "QuestionMemory":
        """The memory less the questions of `ids` (training: no question recalls its own answer)."""
        left_out = set(ids)
        keep = [i for i, q in enumerate(self.ids) if q not in left_out]
        return QuestionMemory(self.vectors[keep], tuple(self.golds[i] for i in keep),
                              tuple(self.ids[i] for i in keep), self.embedder)

    def recall(self, q: np.ndarray, k: int) -> tuple[dict[str, tuple[float, int]], dict[str, int]]:
        """What the `k` remembered questions nearest the unit vector `q` cited, from one search:
        ({article key: (best cosine of a neighbour citing it, neighbours citing it)},
         {law: neighbours citing any of its articles}).

        >>> m = QuestionMemory(np.array([[1, 0], [0.8, 0.6], [0, 1]], np.float32),
        ...                    (("民法典第一条", "刑法第二条"), ("民法典第一条", "民法典第三条"), ("劳动法第一条",)),
        ...                    ("1", "2", "3"), "e")
        >>> articles, laws = m.recall(np.array([1, 0], np.float32), 2)
        >>> {a: (round(s, 2), n) for a, (s, n) in articles.items()}
        {'民法典第一条': (1.0, 2), '刑法第二条': (1.0, 1), '民法典第三条': (0.8, 1)}
        >>> laws
        {'民法典': 2, '刑法': 1}
        """
        articles: dict[str, tuple[float, int]] = {}
        laws: dict[str, int] = {}
        if not len(self) or k <= 0:
            return articles, laws
        sims = self.vectors @ np.asarray(q, dtype=np.float32)
        k = min(k, len(sims))
        near = np.argpartition(-sims, k - 1)[:k]
        for i in near[np.argsort(-sims[near], kind="stable")].tolist():
            for key in self.golds[i]:
                best, n = articles.get(key, (float(sims[i]), 0))
                articles[key] = (best, n + 1)
            for law in dict.fromkeys(law_of(key) for key in self.golds[i]):  # one vote a neighbour
                laws[law] = laws.get(law, 0) + 1
        return articles, laws

    def to_json(self) -> dict:
        v = np.ascontiguousarray(self.vectors, dtype="<f2")
        return {"embedder": self.embedder, "dim": int(v.shape[1]), "ids": list(self.ids),
                "golds": [list(g) for g in self.golds], "vectors": base64.b64encode(v.tobytes()).decode("ascii")}

    @classmethod
    def from_json(cls, raw: dict) -> "QuestionMemory":
        dim, ids = int(raw["dim"]), tuple(str(i) for i in raw["ids"])
        data = base64.b64decode(raw["vectors"].encode("ascii"), validate=True)
        if len(data) != len(ids) * dim * 2:
            raise ValueError(f"memory vectors hold {len(data)} bytes, expected {len(ids)} x {dim} float16")
        vectors = np.frombuffer(data, dtype="<f2").reshape(len(ids), dim).astype(np.float32)
        return cls(vectors, tuple(tuple(str(k) for k in g) for g in raw["golds"]), ids, str(raw["embedder"]))


def rows_by_key(keys: list[str]) -> dict[str, np.ndarray]:
    """Key -> the rows holding it, ascending: ['A', 'B', 'A'] -> {'A': [0, 2], 'B': [1]}."""
    by_key: dict[str, list[int]] = {}
    for row, k in enumerate(keys):
        by_key.setdefault(k, []).append(row)
    return {k: np.asarray(v, dtype=np.int64) for k, v in by_key.items()}


class ArticleRows:
    """Article key -> the chunk rows of an index that belong to it, and law -> its documents, made
    on first use or by `build` (a searcher with a memory builds it at once, so that no question
    waits for it; about 0.5 s on the law index)."""

    def __init__(self, data):
        self.data = data
        self._rows: dict[str, np.ndarray] | None = None
        self._docs: dict[str, tuple[str, ...]] = {}

    def build(self) -> None:
        if self._rows is None:
            self._rows = rows_by_key(chunk_keys(self.data))
            self._docs = docs_by_law(self.data.docs.values())

    def docs(self, law: str) -> tuple[str, ...]:
        """The doc_ids of a law's documents (its versions), by the law part of article keys."""
        self.build()
        return self._docs.get(law, ())

    def rows(self, key: str) -> np.ndarray:
        self.build()
        return self._rows.get(key, np.zeros(0, dtype=np.int64))
