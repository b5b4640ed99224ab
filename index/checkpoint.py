"""Vectors embedded by an unfinished build, kept on disk so an interrupted build resumes."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np


class EmbeddingCheckpoint:
    """Vectors embedded by an unfinished build, saved every few thousand chunks.

    A long build that is interrupted (Ctrl-C, a closed laptop, a time limit) resumes where it
    stopped instead of embedding everything again. Removed once a build completes.
    """

    def __init__(self, folder: Path, dim: int, every: int = 2048):
        self.folder, self.dim, self.every = folder, dim, every
        self._keys: list[str] = []
        self._vecs: list[np.ndarray] = []

    def load(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for part in sorted(self.folder.glob("part-*.npz")) if self.folder.exists() else []:
            try:
                with np.load(part) as z:
                    if z["vectors"].shape[1:] == (self.dim,):
                        out.update(zip(z["keys"].tolist(), z["vectors"]))
            except (OSError, ValueError, KeyError):
                continue  # a part cut short by the interruption itself
        return out

    def add(self, keys: list[str], vecs: np.ndarray):
        self._keys.extend(keys)
        self._vecs.append(vecs)
        if len(self._keys) >= self.every:
            self.flush()

    def flush(self):
        if not self._keys:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{time.time_ns()}"
        tmp = self.folder / (name + ".tmp.npz")
        np.savez(tmp, keys=np.asarray(self._keys), vectors=np.concatenate(self._vecs))
        os.replace(tmp, self.folder / (name + ".npz"))
        self._keys, self._vecs = [], []

    def clear(self):
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.folder.parent.exists() and not any(self.folder.parent.iterdir()):
            self.folder.parent.rmdir()
