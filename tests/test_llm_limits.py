"""The LLM answer's total deadline and reply cap, against a real (slow) local OpenAI-compatible
server, and citation verification that stays linear in the reply's length."""
from __future__ import annotations

import re
import time
from dataclasses import replace

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from assistant.core import Assistant
from assistant.llm import LLMAnswerer, make_chat_model
from assistant.verify import find_quotes, verify_citations
from eval.slow_llm import SlowServer
from index.errors import LLMReplyCut
from index.settings import Settings
from index.types import Clause, Document, DocumentMeta

SOURCE = "灵活就业人员参加基本养老保险，缴费基数为上年在岗职工月平均工资的60%。"


@pytest.fixture()
def slow_server(request):
    tokens, interval = request.param
    server = SlowServer(tokens, interval)
    yield server
    server.close()


SLOW = (["甲"] * 40, 0.5)  # 20 s of tokens


@pytest.mark.parametrize("slow_server", [SLOW], indirect=True)
def test_deadline_bounds_the_whole_reply_not_each_read(slow_server):
    # each read comes well within the 30 s read timeout; only a total deadline stops this reply
    settings = Settings(llm_base_url=slow_server.url, llm_timeout_s=30.0, llm_deadline_s=1.5)
    answerer = LLMAnswerer.from_settings(make_chat_model(settings), settings)
    got = []
    t0 = time.monotonic()
    with pytest.raises(LLMReplyCut, match="1.5 秒") as exc:
        for piece in answerer.stream_answer("自由职业者怎么交养老保险?", [{"title": "t", "label": "一、", "text": "x"}]):
            got.append(piece)
    elapsed = time.monotonic() - t0
    assert exc.value.reason == "deadline"
    assert 1 <= len(got) <= 4  # the tokens sent before the deadline, then nothing more
    assert elapsed < 1.5 + 2.0  # the deadline, not the 20 s the server would take


def test_reply_cap_cuts_a_long_reply():
    answerer = LLMAnswerer(FakeListChatModel(responses=["甲乙丙丁" * 2500]), deadline_s=60, max_reply_chars=100)
    got = []
    with pytest.raises(LLMReplyCut, match="100 字") as exc:
        for piece in answerer.stream_answer("问题", []):
            got.append(piece)
    assert exc.value.reason == "length"
    assert len("".join(got)) == 100


def test_a_reply_within_the_limits_is_whole():
    answerer = LLMAnswerer(FakeListChatModel(responses=["甲乙丙丁。"]), deadline_s=60, max_reply_chars=5)
    assert "".join(answerer.stream_answer("问题", [])) == "甲乙丙丁。"


@pytest.mark.parametrize("kw,message", [({"llm_deadline_s": 0}, "llm_deadline_s must be greater than 0"),
                                        ({"llm_max_reply_chars": -1}, "llm_max_reply_chars must be greater than 0")])
def test_limit_settings_are_validated(kw, message):
    with pytest.raises(ValueError, match=message):
        Settings(**kw)


def test_limit_settings_from_env():
    s = Settings.from_env({"POLICYQA_LLM_DEADLINE_S": "2.5", "POLICYQA_LLM_MAX_REPLY_CHARS": "300"})
    assert (s.llm_deadline_s, s.llm_max_reply_chars) == (2.5, 300)


QUESTION = "自由职业者怎么交养老保险?"


@pytest.fixture()
def cited_reply(fake_assistant):
    """A reply the verifier keeps: a quote of the first clause the question is answered from."""
    _, hits = fake_assistant.retrieve(QUESTION)
    clause = hits[0].clause
    quote = re.sub(r"\s", "", clause.text)[:12]
    assert quote in clause.text
    return clause, f"“{quote}”[1]。"


def _slow_assistant(fake_settings, server):
    settings = replace(fake_settings, llm_base_url=server.url, llm_deadline_s=1.5, answerer="llm")
    return Assistant.from_settings(settings, chat_model=make_chat_model(settings), progress=False)


def test_answer_past_the_deadline_is_truncated_with_a_notice(fake_settings, cited_reply):
    clause, reply = cited_reply
    server = SlowServer([reply] + ["然后一直说下去"] * 40, 0.5)
    try:
        assistant = _slow_assistant(fake_settings, server)
        t0 = time.monotonic()
        answer = assistant.ask(QUESTION)
        elapsed = time.monotonic() - t0
    finally:
        server.close()
    assert answer.mode == "llm" and answer.citations[0].clause_id == clause.clause_id
    assert "然后一直说下去" not in answer.text  # the unverifiable tail is gone
    assert any("1.5 秒时限，已截断" in n for n in answer.notices)
    assert elapsed < 1.5 + 5.0  # retrieval plus the deadline, not the 20 s the server takes


@pytest.mark.parametrize("slow_server", [([""] + ["甲"] * 40, 0.5)], indirect=True)
def test_answer_with_nothing_usable_by_the_deadline_falls_back(fake_settings, slow_server):
    answer = _slow_assistant(fake_settings, slow_server).ask(QUESTION)
    assert answer.mode == "extractive" and answer.citations
    assert any("时限" in n for n in answer.notices)


def test_answer_over_the_cap_is_truncated_with_a_notice(fake_settings, cited_reply):
    clause, reply = cited_reply
    settings = replace(fake_settings, llm_max_reply_chars=len(reply) + 20, answerer="llm")
    model = FakeListChatModel(responses=[reply + "接下来的话没有出处" * 1000])
    answer = Assistant.from_settings(settings, chat_model=model, progress=False).ask(QUESTION)
    assert answer.mode == "llm" and answer.citations[0].clause_id == clause.clause_id
    assert any(f"{len(reply) + 20} 字上限，已截断" in n for n in answer.notices)


# ---- verification stays linear in the reply's length ----

def _source():
    doc = Document("d", "d.txt", "d.txt", "x", DocumentMeta(title="t"), SOURCE, SOURCE, "simplified")
    return Clause("d", "d#1", "1.", ("1",), "l1", (), "", SOURCE, 0, len(SOURCE)), doc


def _best_time(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


@pytest.mark.parametrize("unit", ["“甲乙丙丁", "灵活就业人员参加[1]", "“甲乙丙丁[1]"])
def test_verification_time_grows_linearly(unit):
    # no sentence end, unmatched opening quotes, a marker every few characters: once quadratic
    # (28,000 characters took 16 s). 8x the reply may take ~8x the time, far from the 64x of n^2.
    sources = [_source()]
    n = 4000
    small, large = unit * (n // len(unit)), unit * (8 * n // len(unit))
    ratio = _best_time(lambda: verify_citations(large, sources)) / _best_time(lambda: verify_citations(small, sources))
    assert ratio < 24, ratio


def test_verification_of_a_long_reply_keeps_the_cited_sentence():
    clause, doc = _source()
    junk = "“没有结尾的引号" * 20000 + "。"  # 160,000 characters before the real sentence
    text, cites, notices = verify_citations(junk + "缴费基数为「上年在岗职工月平均工资的60%」[1]。", [(clause, doc)])
    assert text == "缴费基数为「上年在岗职工月平均工资的60%」[1]。"
    assert cites[0].quote == "上年在岗职工月平均工资的60%"
    assert any("删去 1 句" in n for n in notices)


@pytest.mark.parametrize("text,limit,expected", [
    ("「甲乙丙丁」和“戊己庚辛”", 800, ["甲乙丙丁", "戊己庚辛"]),
    ("“甲乙”太短，“甲乙丙丁戊”", 800, ["甲乙丙丁戊"]),
    ("““甲乙丙丁”", 800, ["“甲乙丙丁"]),  # an opening mark is allowed inside, as the old pattern did
    ("“甲乙丙丁戊己", 800, []),
    ('"甲乙丙丁"', 800, ["甲乙丙丁"]),
    ("“甲乙丙丁戊己”", 5, []),  # longer than any shown source: not a quote
])
def test_find_quotes(text, limit, expected):
    assert find_quotes(text, limit) == expected


def test_find_quotes_agrees_with_the_pattern_it_replaces():
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    reference = re.compile(r"[「“\"]([^」”\"]{4,30})[」”\"]")

    @hypothesis.settings(max_examples=200, deadline=None)
    @hypothesis.given(st.text(alphabet="「」“”\"甲乙丙a", max_size=60))
    def agree(text):
        assert find_quotes(text, 30) == reference.findall(text)

    agree()
