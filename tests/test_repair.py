"""Repair restores exactly the documents an index held: nothing lost, nothing injected."""
from __future__ import annotations

import json
import shutil

import pytest

from index.errors import IndexCorrupted
from index.pipeline import build_index, repair_index, update_index
from index.store import SOURCES_FILE, current_generation, load_index
from tests.conftest import CORPUS, CountingEmbedder, make_settings as _make_settings

NOTICE = "一、适用范围\n本办法适用于本市灵活就业人员参加基本养老保险。\n二、缴费\n按月缴纳。\n"


@pytest.fixture()
def mixed(tmp_path):
    """An index of a copy of the corpus, a folder of local rules, and two files added one by one
    (the second one's stem is taken, so it is '通知~2'); settings.corpus_dir names the bundled corpus."""
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    local = tmp_path / "local" / "sub"
    local.mkdir(parents=True)
    (local / "本地办法.txt").write_text(NOTICE, encoding="utf-8")
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "通知.txt").write_text(NOTICE + f"三、附则\n本通知由{folder}局解释。", encoding="utf-8")
    (tmp_path / "b" / "从未收录.txt").write_text(NOTICE + "四、从未收录", encoding="utf-8")
    settings = _make_settings(tmp_path, embedder="fake", corpus_dir=str(CORPUS))
    build_index([corpus, tmp_path / "local"], settings, progress=False, load=False)
    update_index([tmp_path / "a" / "通知.txt"], settings, progress=False, load=False)
    update_index([tmp_path / "b" / "通知.txt"], settings, progress=False, load=False)
    held = set(load_index(settings.index_dir).docs)
    assert {"sub/本地办法", "通知", "通知~2"} <= held and len(held) == 8
    return settings, held


def _manifest(settings):
    return json.loads((current_generation(settings.index_dir) / "manifest.json").read_text(encoding="utf-8"))


def _shard(settings, doc_id, suffix):
    gen = current_generation(settings.index_dir)
    return gen / "shards" / (_manifest(settings)["docs"][doc_id]["shard"] + suffix)


@pytest.mark.parametrize("lose", ["manifest", "manifest_and_sources"])
def test_a_lost_manifest_loses_no_document(tmp_path, mixed, lose):
    """Deleting manifest.json used to rebuild from data/corpus only (22 documents became 5)."""
    from assistant.opening import open_index

    settings, held = mixed
    gen = current_generation(settings.index_dir)
    (gen / "manifest.json").unlink()
    if lose == "manifest_and_sources":
        (gen / SOURCES_FILE).unlink()
    emb = CountingEmbedder()
    data = open_index(settings, embedder=emb, progress=False)
    assert set(data.docs) == held
    if lose == "manifest":  # the shards were intact: nothing parsed or embedded again
        assert emb.texts == 0
    assert set(load_index(settings.index_dir).docs) == held


def test_repair_keeps_a_moved_document_and_adds_nothing(tmp_path, mixed):
    """Repairing one damaged shard used to drop a healthy document whose file had moved, and to add
    the bundled documents (and here b/从未收录.txt) that were never part of the index."""
    from assistant.opening import open_index

    settings, held = mixed
    (tmp_path / "local" / "sub" / "本地办法.txt").rename(tmp_path / "moved.txt")
    path = _shard(settings, "001_3bcf7633bcc6b282", ".json")
    path.write_bytes(b"x" + path.read_bytes()[1:])
    with pytest.raises(IndexCorrupted):
        load_index(settings.index_dir)
    data = open_index(settings, embedder=CountingEmbedder(), progress=False)
    assert set(data.docs) == held  # not one more, not one less
    assert data.clauses["001_3bcf7633bcc6b282#四.(二).3"].label == "四、(二)3."
    assert "一、" in data.clauses["sub/本地办法#一"].label


def test_repeated_repairs_never_duplicate_a_document(tmp_path, mixed):
    """A repair on restart used to find one file twice and index it again as 'name~2'."""
    settings, held = mixed
    for _ in range(2):
        (current_generation(settings.index_dir) / "manifest.json").write_text("{}", encoding="utf-8")
        data, report = repair_index(settings, progress=False)
        assert set(data.docs) == held and not report.removed and not report.lost


def test_a_document_with_neither_file_nor_intact_shard_is_named_lost(tmp_path, mixed):
    settings, held = mixed
    victim = "sub/本地办法"
    (tmp_path / "local" / "sub" / "本地办法.txt").unlink()
    path = _shard(settings, victim, ".npz")
    path.write_bytes(path.read_bytes()[:50])
    data, report = repair_index(settings, damaged=(victim,), progress=False)
    assert set(data.docs) == held - {victim}
    assert [d["doc_id"] for d in report.lost] == [victim] and "LOST" in report.format()
    assert not report.removed  # lost is not the same as removed on request


def test_commit_refuses_to_publish_a_damaged_shard(tmp_path, mixed):
    """A shard damaged between the reuse check and the commit is caught by the commit itself."""
    from index.held import read_held
    from index.store import GenerationWriter

    settings, _ = mixed
    held = read_held(settings.index_dir)
    live = current_generation(settings.index_dir)
    writer = GenerationWriter(settings.index_dir)
    for doc_id, entry in held.entries.items():
        writer.reuse(held.gen, doc_id, entry)
    target = writer.tmp / "shards" / (held.entries["通知"]["shard"] + ".json")
    raw = bytearray(target.read_bytes())
    raw[10:26] = bytes(b ^ 0xFF for b in raw[10:26])  # same size, 16 bytes flipped (the link: the live file too)
    target.write_bytes(bytes(raw))
    with pytest.raises(IndexCorrupted, match="not published") as info:
        writer.commit(dict(embedder="hashing-bigrams"), 256)
    assert info.value.damaged == ("通知",)
    assert current_generation(settings.index_dir) == live and not writer.tmp.exists()
