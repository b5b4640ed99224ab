"""Milvus as the search engine: one collection of chunk rows and vectors per index directory.

    POLICYQA_MILVUS_URI=var/milvus.db        Milvus Lite in this process (one process per .db)
    POLICYQA_MILVUS_URI=http://host:19530    a Milvus server (2.4 or later), shared by every app process

What lives where. The generation directory (index/store.py) stays the record of the index:
documents, clauses, chunks and vectors, one shard per document, and CURRENT naming the live
generation. Milvus holds what is searched, one row per chunk:

    pk "<version>:<i>" | version | doc_id | vector (dim floats) | terms (sparse: term id -> BM25 document weight)

`terms` is the project's BM25 (index/bm25.py) split in two: the row holds each of its terms'
document side, tf / (tf + k1 * (1 - b + b * length / mean length)), under a 32-bit hash of the
term (`term_id`), and a query sends idf(t) per token, from the document frequencies this process
keeps (`TermStats`). An inner-product search then scores the BM25 the embedded store does, with
the same tokens, float rounding apart (Milvus's own analyzers and per-segment BM25 statistics
would not). The mean length is the one of the generation that wrote a row: the rows of documents
unchanged since keep it while the collection grows or shrinks (a new collection, e.g. after
deleting MILVUS_COLLECTION below, writes every row with the mean length of the day).

`version` names one content of one document's shard (its key plus the digests of its files), so
a changed document's new rows never overwrite its old ones. The collection's properties record
the embedder, dimension and format; `<collection>_shards` has one row per version whose chunk
rows are all written (chunks = -1 while they are being written). The collection's name is kept in
`<index_dir>/MILVUS_COLLECTION` (a copied index directory shares it; delete the file to part them).
A collection of an older format is dropped and written again from the shards.

Publishing a generation (`MilvusPublisher`, from GenerationWriter.commit): before CURRENT
switches, the rows of every version the new generation holds and Milvus lacks are written
(and flushed); after, the rows of versions neither the new nor the previous generation holds
are deleted. A reader maps each hit to its own generation's rows by version; a hit of a version
it does not hold (the previous or next content of a changed document) is skipped and the search
repeated without that version, so a reader sees a document's old rows or its new ones, never both.
A generation written without Milvus gets its rows when it is first loaded with Milvus.
Searching it is index/milvus_search.py (`MilvusBackend`, `load_milvus_index`).
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from index.bm25 import B, K1, TermStats, chunk_lengths, mean_length
from index.errors import IndexMismatch, MilvusUnavailable

FORMAT = "2"  # of the collection's schema: 1 had Milvus's own full-text BM25 (jieba), 2 the project's
BM25_PARAMS = f"k1={K1} b={B}"  # the document weights' parameters, recorded with the collection
NO_TERMS = {0: 1.0}  # the terms of a chunk without any (Milvus wants one entry); no query term hashes to 0
HNSW = {"M": 16, "efConstruction": 200}
MIN_EF = 128  # HNSW search breadth (at least k)
BATCH = 512  # rows per insert
MAX_ROUNDS = 4  # searches repeated without versions this generation does not hold
CONNECT_TIMEOUT_S = 10.0
NAME_FILE = "MILVUS_COLLECTION"
REBUILD = "rebuild with `python -m assistant index --rebuild` (POLICYQA_MILVUS_URI set)"


def _message(exc: Exception) -> str:
    return getattr(exc, "message", "") or str(exc) or exc.__class__.__name__


@contextmanager
def _quiet_lite():
    """Milvus Lite logs a failed start (a .db another process holds) with a traceback; the one-line
    MilvusUnavailable raised for it says the same."""
    log = logging.getLogger("milvus_lite.server_manager")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def _lite_locked(path: Path) -> bool:
    """Whether another process holds Milvus Lite's lock on a .db folder."""
    try:
        with open(path / "LOCK", "a+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    except OSError as exc:
        return exc.errno in (errno.EAGAIN, errno.EACCES)
    return False


def connect(uri: str):
    """A MilvusClient for POLICYQA_MILVUS_URI; raises MilvusUnavailable saying what is wrong."""
    try:
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException
    except ImportError as exc:
        raise MilvusUnavailable("POLICYQA_MILVUS_URI is set but pymilvus is not installed: "
                                "pip install -r requirements-milvus.txt -c constraints.txt") from exc
    if uri.endswith(".db"):
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    try:
        with _quiet_lite():
            return MilvusClient(uri=uri, timeout=CONNECT_TIMEOUT_S)
    except MilvusException as exc:
        if uri.endswith(".db") and _lite_locked(Path(uri)):
            raise MilvusUnavailable(f"Milvus Lite database {uri} is open in another process; Milvus Lite serves one "
                                    f"process, so several processes need a Milvus server "
                                    f"(POLICYQA_MILVUS_URI=http://host:19530)") from exc
        raise MilvusUnavailable(f"cannot reach Milvus at {uri} ({_message(exc)}); check POLICYQA_MILVUS_URI") from exc


def collection_name(index_dir: Path) -> str:
    """The index's collection, named once in <index_dir>/MILVUS_COLLECTION: 'policyqa_3f9a2c1b7d4e'."""
    path = Path(index_dir) / NAME_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x", encoding="utf-8") as f:  # exclusive: two first publishers agree on one name
            f.write("policyqa_" + uuid.uuid4().hex[:12])
    except FileExistsError:
        pass
    return path.read_text(encoding="utf-8").strip()


def row_version(gen: Path, entry: dict) -> str:
    """A shard's rows' version: its key and a digest of its files ('<key>.<16 hex>')."""
    from index.shards import file_digest, shard_files

    digests = entry.get("digests") or [file_digest(f) for f in shard_files(gen, entry)]
    return entry["shard"] + "." + hashlib.blake2b("".join(digests).encode(), digest_size=8).hexdigest()


def _quote(values) -> str:
    """A Milvus list literal: ['a"b', '法'] -> '["a\\"b", "法"]'."""
    return "[" + ", ".join(json.dumps(str(v), ensure_ascii=False) for v in values) + "]"


def term_id(term: str) -> int:
    """A term's index in the sparse vectors: a 32-bit hash in 1..2**32-2 (0 is NO_TERMS)."""
    return 1 + int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "little") % (2**32 - 2)


def row_terms(terms: list[str], postings: np.ndarray, n_chunks: int, stats: TermStats) -> list[dict]:
    """Each chunk's {term id: BM25 document weight} from a shard's (chunk, term, count) triples."""
    ids = [term_id(t) for t in terms]
    post = np.asarray(postings, dtype=np.int64).reshape(-1, 3)
    lengths = chunk_lengths(post, n_chunks)
    weights = stats.doc_weights(post[:, 2], lengths[post[:, 0]])
    out: list[dict] = [{} for _ in range(n_chunks)]
    for (chunk, term, _), w in zip(post.tolist(), weights.tolist()):
        row = out[chunk]
        row[ids[term]] = row.get(ids[term], 0.0) + w  # two terms of one chunk with one hash share it
    return [row or dict(NO_TERMS) for row in out]


def generation_mean_length(gen: Path, manifest: dict) -> float:
    """The mean chunk length (BM25 tokens) of a generation, as its loaded TermStats has it."""
    parts = []
    for entry in manifest.get("docs", {}).values():
        with np.load(Path(gen) / "shards" / (entry["shard"] + ".npz")) as z:
            parts.append(chunk_lengths(z["postings"], entry["chunks"]))
    return mean_length(np.concatenate(parts) if parts else np.zeros(0, np.float32))


class MilvusStore:
    """One index's collection (and its `_shards` record) at one Milvus URI."""

    def __init__(self, uri: str, index_dir: Path):
        self.uri = uri
        self.client = connect(uri)
        self.name = collection_name(index_dir)
        self.shards = self.name + "_shards"

    def call(self, what: str, fn, *args, **kwargs):
        """Run one client call; a Milvus error becomes MilvusUnavailable."""
        from pymilvus.exceptions import MilvusException

        try:
            return fn(*args, **kwargs)
        except MilvusException as exc:
            raise MilvusUnavailable(f"Milvus at {self.uri} failed to {what} ({_message(exc)})") from exc

    def properties(self) -> dict | None:
        """The collection's recorded properties, or None when it does not exist."""
        if not self.call("list collections", self.client.has_collection, self.name):
            return None
        described = self.call("describe a collection", self.client.describe_collection, self.name)
        return dict(described.get("properties") or {})

    def check(self, embedder: str, dim: int, props: dict | None = None) -> dict | None:
        """The properties when the collection holds `embedder`'s dim-d vectors (None: no collection);
        raises IndexMismatch, worded as for a mismatched index, when it holds another's."""
        props = self.properties() if props is None else props
        if props is not None and (props.get("policyqa.embedder") != embedder or props.get("policyqa.dim") != str(dim)):
            raise IndexMismatch(f"Milvus collection {self.name} at {self.uri} was built with embedder "
                                f"{props.get('policyqa.embedder')!r} ({props.get('policyqa.dim')}-d), but the index "
                                f"uses {embedder!r} ({dim}-d); {REBUILD} or set POLICYQA_EMBEDDER to match")
        return props

    def open(self, embedder: str, dim: int, replace_other_embedder: bool = False) -> dict:
        """The collection ready for `embedder`'s vectors, loaded: created when missing, made again when
        of an older format (or, with `replace_other_embedder`, of another embedder); returns its properties."""
        props = self.properties()
        if props is not None and (props.get("policyqa.format") != FORMAT
                                  or props.get("policyqa.bm25") != BM25_PARAMS):
            self.drop()  # derived data: written again from the shards
            props = None
        try:
            self.check(embedder, dim, props)
        except IndexMismatch:
            if not replace_other_embedder:
                raise
            self.drop()  # a build with another embedder re-embedded everything: start the collection again
            props = None
        if props is None:
            props = self.create(embedder, dim)
        self.load()
        return props

    def create(self, embedder: str, dim: int) -> dict:
        """Create the collections; returns the properties."""
        from pymilvus import DataType

        props = {"policyqa.embedder": embedder, "policyqa.dim": str(dim), "policyqa.format": FORMAT,
                 "policyqa.bm25": BM25_PARAMS}
        s = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("pk", DataType.VARCHAR, max_length=128, is_primary=True)
        s.add_field("version", DataType.VARCHAR, max_length=64)
        s.add_field("doc_id", DataType.VARCHAR, max_length=4096)
        s.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        s.add_field("terms", DataType.SPARSE_FLOAT_VECTOR)
        ip = self.client.prepare_index_params()
        ip.add_index("vector", index_type="HNSW", metric_type="IP", params=HNSW)
        ip.add_index("terms", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        ip.add_index("version", index_type="INVERTED")
        ip.add_index("doc_id", index_type="INVERTED")
        self.call("create a collection (sparse vectors need Milvus 2.4 or later)", self.client.create_collection,
                  self.name, schema=s, index_params=ip, properties=props)
        m = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        m.add_field("pk", DataType.VARCHAR, max_length=64, is_primary=True)
        m.add_field("doc_id", DataType.VARCHAR, max_length=4096)
        m.add_field("chunks", DataType.INT64)
        m.add_field("vector", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field; never searched
        mp = self.client.prepare_index_params()
        mp.add_index("vector", index_type="FLAT", metric_type="IP")
        self.call("create a collection", self.client.create_collection, self.shards, schema=m, index_params=mp)
        return props

    def drop(self):
        """Drop the collection and its shard record."""
        for name in (self.name, self.shards):
            if self.call("list collections", self.client.has_collection, name):
                self.call("drop a collection", self.client.drop_collection, name)

    def load(self):
        """Load both collections for search (after a restart Milvus holds them released)."""
        for name in (self.name, self.shards):
            self.call("load a collection", self.client.load_collection, name)

    def written(self) -> dict[str, int]:
        """{version: chunks} of every version with rows (-1: rows being written or left half-written)."""
        rows = self.call("read the shard record", self.client.query, self.shards, filter="chunks >= -1",
                         output_fields=["chunks"], limit=16384)
        if len(rows) == 16384:  # more than one page: the iterator (which logs a warning on Milvus Lite)
            rows, it = [], self.client.query_iterator(self.shards, batch_size=4096, filter="chunks >= -1",
                                                      output_fields=["chunks"])
            while batch := it.next():
                rows.extend(batch)
            it.close()
        return {r["pk"]: int(r["chunks"]) for r in rows}

    def sync(self, gen: Path, manifest: dict, stats: TermStats | None = None) -> int:
        """Write the rows of every shard of a generation that Milvus lacks; returns the rows written.
        `stats` (the generation's, for its mean length) is read from the shards when not given."""
        from index.shards import read_shard

        have = self.written()
        todo = []
        for doc_id, entry in manifest.get("docs", {}).items():
            version = row_version(gen, entry)
            if have.get(version) != entry["chunks"]:
                todo.append((doc_id, entry, version))
        if not todo:
            return 0
        stats = stats or TermStats({}, np.zeros(0, np.int64), 0, generation_mean_length(gen, manifest))
        mark = [{"pk": v, "doc_id": d, "chunks": -1, "vector": [0.0, 0.0]} for d, _, v in todo]
        self.call("record shards", self.client.upsert, self.shards, mark)
        partial = [v for _, _, v in todo if v in have]
        for i in range(0, len(partial), 500):  # rows of an interrupted earlier write
            self.call("delete rows", self.client.delete, self.name, filter=f"version in {_quote(partial[i:i + 500])}")
        rows, written = [], 0
        for n, (doc_id, entry, version) in enumerate(todo):
            _, chunks, vectors, terms, postings = read_shard(gen, entry)
            weights = row_terms(terms, postings, len(chunks), stats)
            for i, (vec, row_weights) in enumerate(zip(vectors, weights)):
                rows.append({"pk": f"{version}:{i}", "version": version, "doc_id": doc_id, "vector": vec.tolist(),
                             "terms": row_weights})
            if rows and (len(rows) >= BATCH or n == len(todo) - 1):
                self.call("insert rows", self.client.insert, self.name, rows)
                written += len(rows)
                rows = []
        done = [{"pk": v, "doc_id": d, "chunks": e["chunks"], "vector": [0.0, 0.0]} for d, e, v in todo]
        self.call("record shards", self.client.upsert, self.shards, done)
        self.call("flush", self.client.flush, self.name)  # seal the rows into an indexed segment
        return written

    def delete_versions(self, versions: list[str]):
        """Delete the rows of some versions, then their record."""
        for i in range(0, len(versions), 500):
            part = _quote(versions[i:i + 500])
            self.call("delete rows", self.client.delete, self.name, filter=f"version in {part}")
            self.call("delete rows", self.client.delete, self.shards, filter=f"pk in {part}")


def generation_versions(gen: Path) -> set[str]:
    """Row versions of the documents a generation holds; OSError or ValueError when unreadable."""
    manifest = json.loads((Path(gen) / "manifest.json").read_text(encoding="utf-8"))
    return {row_version(Path(gen), e) for e in manifest.get("docs", {}).values()}


class MilvusPublisher:
    """Writes a new generation's rows before it goes live and deletes superseded rows after."""

    def __init__(self, uri: str, index_dir: Path):
        self.uri = uri
        self.index_dir = Path(index_dir)
        self.store = MilvusStore(uri, self.index_dir)  # connects: a dead URI fails before the build starts
        self.notes: list[str] = []  # what went wrong after the generation was live
        self.rows_written = 0

    def prepare(self, gen: Path, manifest: dict):
        """Before CURRENT names `gen`: the collection made ready for its embedder, its missing rows written."""
        self.store.open(manifest.get("embedder", ""), int(manifest.get("dim") or 0), replace_other_embedder=True)
        self.rows_written = self.store.sync(gen, manifest)

    def published(self, gen: Path, previous: Path | None):
        """After `gen` went live: delete the rows of versions neither it nor `previous` holds."""
        try:
            keep = generation_versions(gen)
            if previous is not None and previous.is_dir():
                keep |= generation_versions(previous)
            self.store.delete_versions([v for v in self.store.written() if v not in keep])
        except (MilvusUnavailable, OSError, ValueError) as exc:  # the generation is live; the next publish retries
            self.notes.append(f"superseded Milvus rows not deleted yet: {exc}")
