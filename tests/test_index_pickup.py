"""Several Assistants (processes) over one index: one updates it, the others pick the new generation
up at their next check of CURRENT, on the embedded store, Milvus Lite and a Milvus server; the app's
timer lists a document another process uploaded without anyone asking a question."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import replace

import gradio as gr
import pytest

from app import PolicyQAApp
from assistant.core import Assistant
from index.embed import HashingEmbeddings
from index.pipeline import build_index, update_index
from index.settings import REPO_ROOT
from tests.conftest import CORPUS, make_settings

NEW_DOC = "关于火星基地养老补贴的通知\n\n一、火星基地工作人员每月领取养老补贴五千元。\n\n二、本通知自发布之日起施行。\n"
QUESTION = "火星基地工作人员每月领取多少养老补贴?"


def _backends():
    out = ["local"]
    try:
        import milvus_lite  # noqa: F401
        import pymilvus  # noqa: F401
        out.append("milvus")
    except ImportError:
        pass
    return out


def _cited_docs(answer) -> set[str]:
    return {c.doc_id for c in answer.citations + answer.related}


@pytest.mark.parametrize("backend", _backends())
def test_a_second_assistant_picks_up_what_the_first_published(fake_index_dir, tmp_path, backend):
    shutil.copytree(fake_index_dir, tmp_path / "index")
    settings = make_settings(tmp_path, reload_check_s=0.0,
                             milvus_uri=str(tmp_path / "milvus.db") if backend == "milvus" else "")
    writer = Assistant.from_settings(settings, progress=False)
    reader = Assistant.from_settings(settings, progress=False)
    slow = Assistant.from_settings(replace(settings, reload_check_s=3600.0), progress=False)
    assert "火星" not in _cited_docs(reader.ask(QUESTION)) | _cited_docs(slow.ask(QUESTION))  # first checks spent
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "火星.txt").write_text(NEW_DOC, encoding="utf-8")
    data, _ = update_index([tmp_path / "new"], settings, writer.embedder, progress=False)
    writer.reload(data)

    answer = reader.ask(QUESTION)  # reads CURRENT, loads the new generation, then answers
    assert "火星" in reader.data.docs and "火星" in _cited_docs(answer)
    assert type(reader.data.backend) is type(writer.data.backend)
    assert "火星" not in slow.data.docs and "火星" not in _cited_docs(slow.ask(QUESTION))  # next check in an hour
    slow._next_check = 0.0  # the hour has passed
    assert "火星" in _cited_docs(slow.ask(QUESTION))
    assert not reader.refresh()  # nothing new: no reload


@pytest.mark.parametrize("backend", _backends())
def test_the_timer_lists_what_another_process_uploaded(fake_index_dir, tmp_path, backend):
    """Two apps (processes) over one index: an upload through one shows in the other's document
    table, chat filter and document choice at its sessions' next tick, without a question."""
    shutil.copytree(fake_index_dir, tmp_path / "index")
    settings = make_settings(tmp_path, reload_check_s=0.0,
                             milvus_uri=str(tmp_path / "milvus.db") if backend == "milvus" else "")
    uploader = PolicyQAApp(Assistant.from_settings(settings, progress=False), settings)
    other = PolicyQAApp(Assistant.from_settings(settings, progress=False), settings)
    # two pages open in the other process, past their first tick (which shows the upload queue)
    sessions = [other.documents.poll_uploads(other.documents.refresh_lists({})[-1])[-1] for _ in range(2)]
    assert other.documents.poll_uploads(sessions[0])[:6] == [gr.update()] * 6  # nothing new yet
    before = set(other.assistant.data.docs)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "火星.txt").write_text(NEW_DOC, encoding="utf-8")
    uploader.documents.upload_document(str(tmp_path / "in" / "火星.txt"))  # indexed and live when it returns
    (new,) = set(uploader.assistant.data.docs) - before

    for i, session in enumerate(sessions):
        _, table, chat_docs, doc_select, _, _, sessions[i] = other.documents.poll_uploads(session)
        assert any(row[0].startswith("关于火星基地养老补贴的通知") for row in table)
        assert new in [v for _, v in chat_docs["choices"]] and new in [v for _, v in doc_select["choices"]]
        assert "value" not in doc_select  # another process's upload selects nothing here
    assert other.documents.poll_uploads(sessions[0])[:6] == [gr.update()] * 6  # and once is enough
    assert new in [v for _, v in other.documents.refresh_lists({})[2]["choices"]]  # and a page opened later
    assert type(other.assistant.data.backend) is type(uploader.assistant.data.backend)


def test_a_generation_that_cannot_be_loaded_keeps_the_old_one(fake_index_dir, tmp_path, capsys):
    shutil.copytree(fake_index_dir, tmp_path / "index")
    settings = make_settings(tmp_path, reload_check_s=0.0)
    reader = Assistant.from_settings(settings, progress=False)
    before = reader.data
    broken = tmp_path / "index" / "gen-broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "index" / "CURRENT").write_text("gen-broken", encoding="utf-8")
    assert not reader.refresh()
    assert reader.data is before and "gen-broken not loaded" in capsys.readouterr().err
    reader.ask(QUESTION)  # still answers, from the generation it has
    assert reader.data is before


@pytest.mark.parametrize("pointer", [b"gen-missing", b"\xff\xfe\x00gen"])
def test_a_dangling_or_garbled_current_keeps_the_loaded_generation_without_reloading_it(fake_index_dir, tmp_path,
                                                                                       pointer):
    """The pickup check reads the live generation as loading does: a CURRENT naming a directory that is
    gone means the newest generation, the one already loaded, so nothing is loaded again at every
    check; a garbled one no longer fails the question."""
    shutil.copytree(fake_index_dir, tmp_path / "index")
    reader = Assistant.from_settings(make_settings(tmp_path, reload_check_s=0.0), progress=False)
    before = reader.data
    (tmp_path / "index" / "CURRENT").write_bytes(pointer)
    assert not reader.refresh()
    assert reader.ask("自由职业者怎么交养老保险?").citations and reader.data is before


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def milvus_server(tmp_path):
    """A Milvus server in its own process (milvus-lite's gRPC server): http://127.0.0.1:<port>."""
    pytest.importorskip("milvus_lite")
    pymilvus = pytest.importorskip("pymilvus")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(tmp_path / "server.db"),
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                pymilvus.MilvusClient(uri=uri, timeout=1).list_collections()
                break
            except pymilvus.exceptions.MilvusException:
                time.sleep(0.2)
        else:
            pytest.fail(f"milvus-lite server on port {port} did not start")
        yield uri
    finally:
        proc.kill()
        proc.wait()


def test_another_process_updates_through_a_milvus_server(milvus_server, tmp_path):
    settings = make_settings(tmp_path, embedder="fake", milvus_uri=milvus_server, reload_check_s=0.0)
    build_index([CORPUS], settings, embedder=HashingEmbeddings(), progress=False)
    reader = Assistant.from_settings(settings, progress=False)
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "火星.txt").write_text(NEW_DOC, encoding="utf-8")
    env = dict(os.environ, POLICYQA_MILVUS_URI=milvus_server, OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-m", "assistant", "index", str(tmp_path / "new"), "--index-dir",
                          settings.index_dir, "--embedder", "fake"], env=env, cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    _, hits = reader.retrieve(QUESTION)
    assert "火星" in reader.data.docs and hits[0].doc.doc_id == "火星"
    assert reader.data.backend.name == "milvus"
