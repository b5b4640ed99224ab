"""index/ingest.py: one upload into the index, with its refusals, cancel, names, damage and leftovers."""
from __future__ import annotations

import json
import re
import shutil
import threading

import pytest

from index.embed import HashingEmbeddings
from index.errors import PolicyQAError, UploadBusy, UploadCancelled, UploadRefused
from index.ingest import STAGING, ingest_lock, ingest_upload, uploads_folder
from index.pipeline import build_index, update_index
from index.store import current_generation, load_index
from tests.conftest import CORPUS, CountingEmbedder, make_settings as _make_settings

NOTICE = "一、适用范围\n本办法适用于本市灵活就业人员参加基本养老保险。\n二、缴费\n按月缴纳，每月十五日前缴清。\n"


def make_settings(tmp, **kw):
    return _make_settings(tmp, **{"embedder": "fake", "corpus_dir": str(tmp / "corpus"), **kw})


@pytest.fixture()
def settings(tmp_path):
    shutil.copytree(CORPUS, tmp_path / "corpus")
    s = make_settings(tmp_path)
    build_index([tmp_path / "corpus"], s, progress=False, load=False)
    return s


def upload_file(tmp_path, name: str, text: str):
    folder = tmp_path / "browser"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def long_text(n_items: int) -> str:
    return "\n".join(f"{i}.第{i}项规定：参保人员应当按照规定缴纳社会保险费，逾期不缴的依法加收滞纳金。"
                     for i in range(1, n_items + 1))


def test_an_upload_is_added_and_every_other_document_kept(tmp_path, settings):
    seen = []
    result = ingest_upload(settings, HashingEmbeddings(), upload_file(tmp_path, "灵活就业.txt", NOTICE), "灵活就业.txt",
                           on_progress=lambda f, d: seen.append((f, d)))
    assert result.stored_name == "灵活就业.txt" and not result.renamed and not result.unchanged
    assert result.row["doc_id"] == "灵活就业" and result.row["clauses"] >= 2 and result.row["chunks"] >= 1
    assert len(result.data.docs) == 6 and not result.report.removed
    uploads = uploads_folder(settings)
    assert (uploads / "灵活就业.txt").read_text(encoding="utf-8") == NOTICE
    assert not any((uploads / STAGING).iterdir())
    assert len(load_index(settings.index_dir).docs) == 6
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("向量化" in d for _, d in seen)


@pytest.mark.parametrize("limit,value,unit", [("max_upload_chunks", 5, "个片段"), ("max_upload_chars", 300, "字")])
def test_an_upload_over_the_limit_is_refused_before_embedding(tmp_path, settings, limit, value, unit):
    from dataclasses import replace

    settings = replace(settings, **{limit: value})
    live = current_generation(settings.index_dir)
    emb = CountingEmbedder()
    with pytest.raises(UploadRefused) as info:
        ingest_upload(settings, emb, upload_file(tmp_path, "长文件.txt", long_text(40)), "长文件.txt")
    message = str(info.value)
    assert f"{value:,}" in message and unit in message and "索引未改变" in message
    assert re.search(r"有 [\d,]+ " + unit, message)  # the document's own count
    assert "40 个片段" in message or unit == "字"
    assert emb.texts == 0
    assert current_generation(settings.index_dir) == live
    assert not (uploads_folder(settings) / "长文件.txt").exists()


@pytest.mark.parametrize("name,content,says", [
    ("表格.xlsx", "一、甲", "不支持的文件类型"),
    ("空白.txt", "", "文件是空的"),
    ("二进制.txt", "\x00\x01\x02" * 50, "二进制"),
])
def test_refusals_are_chinese_and_change_nothing(tmp_path, settings, name, content, says):
    live = current_generation(settings.index_dir)
    with pytest.raises(UploadRefused, match=says) as info:
        ingest_upload(settings, HashingEmbeddings(), upload_file(tmp_path, name, content), name)
    assert str(info.value).endswith("索引未改变。")
    assert current_generation(settings.index_dir) == live
    assert not (uploads_folder(settings) / name).exists()


def test_cancel_mid_embedding_leaves_the_index_and_uploads_unchanged(tmp_path, settings):
    from dataclasses import replace

    settings = replace(settings, embed_batch_size=4)
    cancel = threading.Event()

    class CancelsAfterTwoBatches(CountingEmbedder):
        def embed_array(self, texts):
            if self.texts >= 8:
                cancel.set()  # the user presses cancel while the third batch is embedded
            return super().embed_array(texts)

    emb = CancelsAfterTwoBatches()
    live = current_generation(settings.index_dir)
    with pytest.raises(UploadCancelled, match="已取消"):
        ingest_upload(settings, emb, upload_file(tmp_path, "长文件.txt", long_text(30)), "长文件.txt", cancel=cancel)
    assert 8 <= emb.texts < 30  # stopped between batches, long before the end
    assert current_generation(settings.index_dir) == live
    uploads = uploads_folder(settings)
    assert not (uploads / "长文件.txt").exists() and not any((uploads / STAGING).iterdir())
    assert "长文件" not in load_index(settings.index_dir).docs


def test_same_name_other_content_keeps_both_and_same_bytes_change_nothing(tmp_path, settings):
    emb = CountingEmbedder()
    first = ingest_upload(settings, emb, upload_file(tmp_path, "通知.txt", NOTICE), "通知.txt")
    other = NOTICE.replace("十五日", "二十日")
    second = ingest_upload(settings, emb, upload_file(tmp_path, "通知.txt", other), "通知.txt")
    assert second.stored_name == "通知 (2).txt" and second.renamed
    assert any("通知 (2).txt" in n and "都保留" in n for n in second.notices)
    uploads = uploads_folder(settings)
    assert (uploads / "通知.txt").read_text(encoding="utf-8") == NOTICE
    assert (uploads / "通知 (2).txt").read_text(encoding="utf-8") == other
    assert {first.row["doc_id"], second.row["doc_id"]} <= set(second.data.docs) and len(second.data.docs) == 7
    emb.texts = 0
    again = ingest_upload(settings, emb, upload_file(tmp_path, "通知.txt", NOTICE), "通知.txt")
    assert again.stored_name == "通知.txt" and again.unchanged and not again.renamed
    assert emb.texts == 0 and len(again.data.docs) == 7 and not again.report.removed


def _flip_16_bytes(path):
    raw = bytearray(path.read_bytes())
    mid = len(raw) // 2
    raw[mid:mid + 16] = bytes(b ^ 0x5A for b in raw[mid:mid + 16])
    path.write_bytes(bytes(raw))


def _shard_json(index_dir, doc_id):
    gen = current_generation(index_dir)
    entry = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))["docs"][doc_id]
    return gen / "shards" / (entry["shard"] + ".json")


@pytest.mark.parametrize("source_gone", [False, True])
def test_a_damaged_live_shard_never_reaches_a_published_generation(tmp_path, settings, source_gone):
    victim = "001_3bcf7633bcc6b282"
    path = _shard_json(settings.index_dir, victim)
    size = path.stat().st_size
    _flip_16_bytes(path)
    assert path.stat().st_size == size
    if source_gone:
        (tmp_path / "corpus" / f"{victim}.txt").unlink()
    try:
        result = ingest_upload(settings, HashingEmbeddings(), upload_file(tmp_path, "通知.txt", NOTICE), "通知.txt")
    except PolicyQAError as exc:  # refusing is allowed, in Chinese, with the live index untouched
        assert "索引未改变" in str(exc)
        return
    reloaded = load_index(settings.index_dir)  # what CURRENT points at loads: nothing damaged was published
    assert "通知" in reloaded.docs
    if source_gone:  # kept out, and named
        assert victim not in reloaded.docs
        assert [d["doc_id"] for d in result.report.lost] == [victim]
        assert any(victim in n and "无法恢复" in n for n in result.notices)
    else:  # repaired from its file
        assert reloaded.clauses[victim + "#四.(二).3"].label == "四、(二)3."
        assert any("damaged shard of " + victim in n for n in result.report.notes)


def test_a_leftover_staging_file_is_removed_not_ingested(tmp_path, settings):
    staging = uploads_folder(settings) / STAGING
    staging.mkdir(parents=True)
    (staging / "半途.txt").write_text(long_text(10), encoding="utf-8")  # a kill -9 mid-upload left it
    # a restart (repair from what the index holds) does not take it in
    data, _ = update_index([], settings, progress=False)
    assert "半途" not in data.docs
    result = ingest_upload(settings, HashingEmbeddings(), upload_file(tmp_path, "小.txt", NOTICE), "小.txt")
    assert "半途" not in result.data.docs and "小" in result.data.docs
    assert not (staging / "半途.txt").exists() and not (uploads_folder(settings) / "半途.txt").exists()
    assert any("半途.txt" in n and "没有进入索引" in n for n in result.notices)


def test_a_staged_file_the_index_already_holds_is_put_in_place(tmp_path, settings):
    """Killed between the commit and the move: the file is not lost, it goes where the index expects it."""
    result = ingest_upload(settings, HashingEmbeddings(), upload_file(tmp_path, "通知.txt", NOTICE), "通知.txt")
    uploads = uploads_folder(settings)
    (uploads / STAGING).mkdir(exist_ok=True)
    (uploads / "通知.txt").rename(uploads / STAGING / "通知.txt")
    later = ingest_upload(settings, HashingEmbeddings(), upload_file(tmp_path, "另一个.txt", NOTICE + "三、附则"), "另一个.txt")
    assert (uploads / "通知.txt").read_text(encoding="utf-8") == NOTICE
    assert result.row["doc_id"] in later.data.docs and any("放回" in n for n in later.notices)


def test_a_second_upload_while_one_runs_is_refused(tmp_path, settings):
    from pathlib import Path

    live = current_generation(settings.index_dir)
    with ingest_lock(Path(settings.index_dir)):
        with pytest.raises(UploadBusy, match="另一个文件正在导入"):
            ingest_upload(settings, HashingEmbeddings(), upload_file(tmp_path, "通知.txt", NOTICE), "通知.txt")
    assert current_generation(settings.index_dir) == live
    # released: the next one goes through
    assert "通知" in ingest_upload(settings, HashingEmbeddings(), upload_file(tmp_path, "通知.txt", NOTICE),
                                   "通知.txt").data.docs
