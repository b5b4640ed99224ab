"""`python -m assistant index`: adds or updates; only --remove, or --rebuild with the full list, removes."""
from __future__ import annotations

import shutil

import pytest

from assistant.cli import main
from index.store import load_index
from tests.conftest import CORPUS

NOTICE = "一、适用范围\n本办法适用于本市灵活就业人员参加基本养老保险。\n二、缴费\n按月缴纳。\n"


@pytest.fixture()
def env(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    monkeypatch.setenv("POLICYQA_CORPUS_DIR", str(corpus))
    monkeypatch.setenv("POLICYQA_EMBEDDER", "fake")
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    for name in ("通知", "办法"):
        (uploads / f"{name}.txt").write_text(NOTICE + f"三、{name}附则。", encoding="utf-8")
    index = tmp_path / "index"
    return corpus, uploads, index


def run(*argv) -> int:
    return main(["index", "--quiet", *map(str, argv)])


def docs(index) -> set[str]:
    return set(load_index(index).docs)


def test_index_without_paths_keeps_the_uploads(env, capsys):
    """`index --index-dir DIR` used to rebuild from the bundled corpus and report every upload removed."""
    corpus, uploads, index = env
    assert run("--index-dir", index) == 0  # no index yet: the bundled corpus
    assert len(docs(index)) == 5
    assert run(uploads / "通知.txt", "--index-dir", index) == 0
    assert run(uploads / "办法.txt", "--index-dir", index) == 0
    capsys.readouterr()
    assert run("--index-dir", index) == 0
    out = capsys.readouterr().out
    assert "removed   " not in out and docs(index) >= {"通知", "办法"} and len(docs(index)) == 7


def test_index_of_one_file_adds_it_to_what_the_index_holds(env):
    """`index file.txt` used to remove the five bundled documents."""
    corpus, uploads, index = env
    run(corpus, "--index-dir", index)
    assert run(uploads / "通知.txt", "--index-dir", index) == 0
    assert len(docs(index)) == 6 and "通知" in docs(index)


def test_remove_and_rebuild_are_the_only_ways_out(env, capsys):
    corpus, uploads, index = env
    run(corpus, "--index-dir", index)
    run(uploads, "--index-dir", index)
    assert docs(index) >= {"通知", "办法"}
    (corpus / "000_2091bd9ddadc96bd.txt").unlink()  # a vanished file is kept from its stored copy
    capsys.readouterr()
    assert run("--index-dir", index) == 0
    assert "000_2091bd9ddadc96bd" in docs(index) and "kept the copy stored" in capsys.readouterr().out
    assert run("--remove", "通知", "--remove", corpus / "000_2091bd9ddadc96bd.txt", "--index-dir", index) == 0
    out = capsys.readouterr().out
    assert "removed   000_2091bd9ddadc96bd" in out and "removed   通知" in out
    assert len(docs(index)) == 5
    assert run("--remove", "没有这个", "--index-dir", index) == 1
    assert "no document with that id" in capsys.readouterr().err
    assert run(uploads, "--rebuild", "--index-dir", index) == 0  # the full list: only the uploads stay
    assert docs(index) == {"通知", "办法"}
    assert "removed   001_3bcf7633bcc6b282" in capsys.readouterr().out


def test_index_waits_for_an_upload_in_progress_and_keeps_its_document(env, capsys):
    """An upload and `index` each publish a generation from what the index held when they started:
    without one lock for both, the later publish dropped the other's document."""
    import threading
    import time

    from index.embed import HashingEmbeddings
    from index.ingest import ingest_upload
    from index.settings import Settings

    corpus, uploads, index = env
    run(corpus, "--index-dir", index)
    settings = Settings.from_env(index_dir=str(index))
    embedding, go = threading.Event(), threading.Event()

    def progress(fraction, desc):
        if 0.05 < fraction < 0.95 and not embedding.is_set():  # inside the update, what it holds read
            embedding.set()
            go.wait(30)

    src = uploads / "上传.txt"
    src.write_text(NOTICE + "三、上传附则。", encoding="utf-8")
    upload = threading.Thread(target=ingest_upload, args=(settings, HashingEmbeddings(), src, "上传.txt"),
                              kwargs={"on_progress": progress})
    upload.start()
    assert embedding.wait(30)
    cli = threading.Thread(target=run, args=(uploads / "通知.txt", "--index-dir", index))
    cli.start()
    time.sleep(1.0)
    assert cli.is_alive()  # waiting for the upload's lock
    go.set()
    upload.join(60)
    cli.join(60)
    assert not upload.is_alive() and not cli.is_alive()
    assert {"通知", "上传"} <= docs(index) and len(docs(index)) == 7
    assert "waiting for the upload or index update" in capsys.readouterr().err
