"""The tabs' handlers (web/chat.py, web/documents.py, web/evaluate.py), called directly through
PolicyQAApp with the bundled-corpus assistant: no server, no browser."""
from __future__ import annotations

import dataclasses
import html
import json
import re
from pathlib import Path

import gradio as gr
import pytest
from markdown_it import MarkdownIt

import app
from app import PolicyQAApp
from assistant.history import plain_history
from assistant.types import Answer, Citation
from index.store import current_generation
from web.chatlog import Turn
from web.ratings import RatingsStore, read_csv
from web.render import answer_markdown, citation_card, esc, find_span, highlight

GOOD_DOC = """关于无人机驾驶员培训补贴的通知
津政办发〔2024〕99号
一、补贴对象
取得民用无人机驾驶员执照的本市户籍失业人员。
二、补贴标准
(一)培训补贴按每人每次三千元发放。
(二)补贴资金由就业专项资金列支。
三、其他
本通知自发布之日起施行。<script>alert('x')</script> <b>加粗</b> {{value}} ${1+1}
"""


@pytest.fixture()
def ui(fake_assistant, fake_settings) -> PolicyQAApp:
    return PolicyQAApp(fake_assistant, fake_settings)


def ask(ui: PolicyQAApp, question: str, turns=None, display="auto", docs=None):
    """Run the chat handler to the end; returns (all yields, last yield)."""
    outs = list(ui.chat.respond(question, turns or [], docs or [], "extractive", display))
    return outs, outs[-1]


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


# ---------------------------------------------------------------- chat


def test_answer_shows_label_heading_and_marked_quote_in_sources(ui):
    outs, (chat, sources, turns, _) = ask(ui, "地税部门在扩面工作中负责什么?")
    first = turns[-1].answer.citations[0]
    assert first.label == "四、(二)3."
    assert '<span class="pqa-label">四、(二)3.</span>' in sources
    assert f"<mark>{esc(first.quote)}</mark>" in sources
    assert "明确政府各职能部门职责" in sources  # heading path
    assert "本政发[2008]6号" in sources  # 文号
    assert f'data-clause="{esc(first.clause_id)}"' in sources  # "view in document" button
    assert chat[-1]["role"] == "assistant" and "[1]" in chat[-1]["content"]


def test_answer_streams_question_first_then_text(ui):
    outs, _ = ask(ui, "地税部门在扩面工作中负责什么?")
    assert len(outs) >= 3
    first_chat, first_box = outs[0][0], outs[0][3]
    assert first_chat[0]["content"] == "地税部门在扩面工作中负责什么?"
    assert first_chat[1]["content"] == "正在检索相关条款…"
    assert first_box == ""  # the box is cleared at once
    partial = [o[0][1]["content"] for o in outs[1:-1]]
    assert partial and all(len(a) <= len(b) for a, b in zip(partial, partial[1:]))  # grows


def test_abstention_is_shown_as_such_with_related_clauses(ui):
    _, (chat, sources, turns, _) = ask(ui, "火星移民政策是什么?")
    assert turns[-1].answer.abstained
    assert "未找到依据" in sources and "可能相关的条款" in sources
    assert 'class="pqa-abstain"' in sources
    assert "<mark>" not in sources  # related clauses quote nothing
    assert "未找到依据" in chat[-1]["content"]


def test_follow_up_shows_the_rewritten_query(ui):
    _, (_, _, turns, _) = ask(ui, "自由职业者怎么交养老保险?")
    _, (chat, sources, turns, _) = ask(ui, "那一次性补缴要交滞纳金吗?", turns)
    rewritten = turns[-1].answer.rewritten_query
    assert rewritten != "那一次性补缴要交滞纳金吗?" and "自由职业者" in rewritten
    assert "追问已按上文改写为" in sources and esc(rewritten) in sources
    assert "检索问题" in chat[-1]["content"]
    assert len(chat) == 4


def test_traditional_question_is_answered_in_traditional_and_switchable(ui):
    _, (chat, sources, turns, _) = ask(ui, "個體工商戶應該參加哪些社會保險?")
    assert turns[-1].answer.script == "traditional"
    reply = chat[-1]["content"]  # its own words (根据…, or an uncertain reply's 条款…), converted
    assert ("根據" in reply or "條款" in reply) and "根据" not in reply and "条款" not in reply
    assert "個體工商戶" in sources and "个体工商户" not in sources  # the cited clause, converted
    chat_s, sources_s = ui.chat.redisplay(turns, "simplified")
    assert ("根据" in chat_s[-1]["content"] or "条款" in chat_s[-1]["content"]) and "个体工商户" in sources_s
    _, (chat_t, _, _, _) = ask(ui, "地税部门在扩面工作中负责什么?", display="traditional")
    assert "稅" in chat_t[-1]["content"]


def test_document_filter_restricts_the_search(ui, fake_assistant):
    only = "003_50930e0fa3d1836b"
    _, (_, _, turns, _) = ask(ui, "自由职业者怎么交养老保险?", docs=[only])
    answer = turns[-1].answer
    assert all(c.doc_id == only for c in answer.citations + answer.related)


@pytest.mark.parametrize("question", ["", "   ", "问" * 5000])
def test_invalid_question_raises_a_user_facing_error(ui, question):
    with pytest.raises(gr.Error):
        list(ui.chat.respond(question, [], [], "extractive", "auto"))


def test_llm_mode_without_endpoint_falls_back_with_a_visible_notice(ui):
    outs = list(ui.chat.respond("自由职业者怎么交养老保险?", [], [], "llm", "auto"))  # answered: the LLM would compose it
    chat, sources, turns, _ = outs[-1]
    assert turns[-1].answer.mode == "extractive"
    assert "未配置大模型服务" in sources and "未配置大模型服务" in chat[-1]["content"]


def test_llm_answer_streams_in_pieces_and_shows_removed_citations(fake_settings):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from assistant.core import Assistant

    reply = "自由职业者可按上年在岗职工月平均工资的60%作为缴费基数[1]。还有编造的内容[3]。"
    assistant = Assistant.from_settings(fake_settings, chat_model=FakeListChatModel(responses=[reply]), progress=False)
    ui = PolicyQAApp(assistant, fake_settings)
    outs = list(ui.chat.respond("自由职业者怎么交养老保险?", [], [], "llm", "auto"))
    partial = [o[0][1]["content"] for o in outs[1:-1]]
    assert len(partial) > 3 and "编造" in partial[-1]  # the model's words as they came
    chat, sources, turns, _ = outs[-1]
    answer = turns[-1].answer
    assert answer.mode == "llm" and "编造" not in chat[-1]["content"]  # the verified answer replaces them
    assert answer.notices and all(esc(n) in sources for n in answer.notices)
    mode_radio = next(b for b in ui.create_app().blocks.values() if getattr(b, "elem_id", None) == "pqa-mode")
    assert mode_radio.interactive is True


def test_mode_switch_is_disabled_without_an_llm_endpoint(ui):
    demo = ui.create_app()
    mode_radio = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "pqa-mode")
    assert mode_radio.interactive is False and "未配置大模型服务" in mode_radio.info


def test_logged_turn_reads_back_as_the_answer_shown(ui):
    """The chat log keeps each turn as JSON; read back, it is the same Answer the chat rendered."""
    _, (chat, sources, turns, _) = ask(ui, "自由职业者怎么交养老保险?")
    logged = Turn.from_json(ui.chat_log.latest(1)[-1])
    assert logged.id == turns[-1].id and logged.question == turns[-1].question
    assert logged.answer.to_json() == turns[-1].answer.to_json()
    assert ui.chat.render_chat([logged])[-1] == chat[-1] and ui.chat.render_sources(logged.answer) == sources


def test_api_ask_returns_markdown_and_cli_shaped_citations(ui):
    markdown, citations = ui.chat.api_ask("地税部门在扩面工作中负责什么?", [])
    shown = html.unescape(re.sub(r"<[^>]+>", "", MarkdownIt("commonmark").render(markdown)))
    assert "[1]" in shown and "四、(二)3." in shown and "\\" not in shown
    assert citations[0]["label"] == "四、(二)3."
    assert set(citations[0]) == {"n", "doc_id", "source", "title", "doc_number", "label", "path", "headings",
                                 "quote", "text", "clause_id", "page", "version"}
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", citations[0]["version"])  # the 本溪 plan's date


def test_api_ask_accepts_gradio_6_history_messages(ui):
    history = [{"role": "user", "content": [{"type": "text", "text": "自由职业者怎么交养老保险?"}]},
               {"role": "assistant", "content": [{"type": "text", "text": ui.chat.api_ask("自由职业者怎么交养老保险?")[0]}]}]
    markdown, _ = ui.chat.api_ask("那一次性补缴要交滞纳金吗?", history)
    assert "检索问题" in markdown and "滞纳金" in markdown


def test_plain_history_flattens_content_parts_and_drops_status_messages():
    history = [{"role": "user", "content": [{"type": "text", "text": "问"}]},
               {"role": "assistant", "content": "答", "metadata": {"title": "检索中"}},
               {"role": "assistant", "content": {"text": "答二"}},
               {"role": "system", "content": "x"}, "junk"]
    assert plain_history(history) == [{"role": "user", "content": "问"}, {"role": "assistant", "content": "答二"}]


def test_build_app_exposes_only_the_ask_endpoint(fake_assistant, fake_settings):
    demo = app.build_app(fake_assistant, fake_settings)
    assert isinstance(demo, gr.Blocks)
    assert list(demo.get_api_info()["named_endpoints"]) == ["/ask"]


# ---------------------------------------------------------------- escaping and highlighting


@pytest.mark.parametrize("text, quote, span", [
    ("一、社会保险覆盖面", "社会保险", (2, 6)),
    ("一、社會保險覆蓋面", "社会保险", (2, 6)),  # quote in the other script
    ("缴费\n基数", "缴费基数", (0, 5)),  # line break inside the quoted words
    ("缴费基数", "", None),
    ("缴费基数", "滞纳金", None),
])
def test_find_span(text, quote, span):
    assert find_span(text, quote) == span


def test_highlight_escapes_before_marking():
    out = highlight("<b>甲</b>乙&丙", "乙&丙")
    assert out == "&lt;b&gt;甲&lt;/b&gt;<mark>乙&amp;丙</mark>"


def test_answer_markdown_escapes_html_and_markdown():
    md = answer_markdown(Answer(question="q", text="<img src=x onerror=alert(1)> *粗* [1]"))
    assert "<img" not in md and "&lt;img" in md and r"\*粗\*" in md


def test_html_in_a_document_is_shown_as_text(ui, tmp_path, fake_assistant):
    ui.documents.upload_document(str(write(tmp_path / "in" / "含HTML的通知.txt", GOOD_DOC)))
    doc = next(d for d in fake_assistant.data.docs.values() if d.source == "含HTML的通知.txt")
    clause = next(c for c in doc.clauses if "<script>" in c.text)
    view = ui.show_clause(clause.clause_id)
    assert "<script>" not in view and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in view
    assert "<b>" not in view and "&lt;b&gt;加粗&lt;/b&gt;" in view
    assert "{{value}}" not in view and "${" not in view  # not evaluated by Gradio's HTML template
    cite = Citation(n=1, doc_id=doc.doc_id, source=doc.source, title=doc.title, doc_number="<i>号</i>", label="三、",
                    path=(), headings=(), quote="<script>", text=clause.text, clause_id=clause.clause_id)
    card = citation_card(cite, "original", "s2t")
    assert "<script>" not in card and "<i>" not in card and "<mark>&lt;script&gt;</mark>" in card


# ---------------------------------------------------------------- document view and outline


def test_view_in_document_highlights_the_clause_and_marks_the_quote(ui):
    _, (_, _, turns, _) = ask(ui, "地税部门在扩面工作中负责什么?")
    cite = turns[-1].answer.citations[0]
    evt = gr.EventData(None, {"clause_id": cite.clause_id, "n": str(cite.n)})
    box, view = ui.chat.open_citation(turns, "auto", evt)
    assert box["visible"] is True
    assert view.count('class="pqa-clause pqa-target"') == 1
    target = view.split('id="pqa-target">', 1)[1].split("</span>", 1)[0]
    assert target.startswith("3.") and f"<mark>{esc(cite.quote)}</mark>" in target
    assert "本溪市人民政府批转市劳动保障局" in view and "本政发[2008]6号" in view
    # the document reads clause by clause even where the source had no line breaks
    assert "\n4." in view


def test_a_clause_link_opens_the_documents_tab_at_that_clause(ui):
    """/?clause=<clause_id>: the page load selects the Documents tab, the document and the clause."""
    clause_id = "003_50930e0fa3d1836b#二.(三).1"
    tabs, select, outline, view = ui.documents.open_link(gr.Request(query_params={"clause": clause_id}))
    assert tabs.selected == "documents" and select["value"] == "003_50930e0fa3d1836b"
    assert f'data-clause="{esc(clause_id)}"' in outline
    target = view.split('id="pqa-target">', 1)[1].split("</span>", 1)[0]
    assert "制定城镇个体从业人员及其雇工参加失业保险办法" in target
    # a page without a link, or with another parameter, is left as it is
    assert ui.documents.open_link(gr.Request(query_params={})) == [gr.update()] * 4
    assert ui.documents.open_link(gr.Request(query_params={"q": clause_id})) == [gr.update()] * 4
    with pytest.raises(gr.Error, match="不在当前索引中"):
        ui.documents.open_link(gr.Request(query_params={"clause": "nope#一"}))


def test_unknown_clause_gives_a_user_facing_error(ui):
    with pytest.raises(gr.Error):
        ui.show_clause("nope#一")


def test_documents_table_and_outline(ui, fake_assistant):
    rows = ui.documents.documents_table()
    assert len(rows) == len(fake_assistant.data.docs) == 5
    benxi = next(r for r in rows if r[1] == "本政发[2008]6号")
    assert benxi[2] == "本溪市政府" and benxi[3] == "2008-05-14" and benxi[5] == "有效" and benxi[6] == 23
    assert any("（另 " in r[8] and len(r[8]) < 120 for r in rows)  # ingestion warnings, shortened
    outline_002 = ui.documents.render_outline("002_42cfee8571543bc0")
    assert outline_002.count("mojibake at line") == 3  # all of them, with the outline
    outline = ui.documents.render_outline("003_50930e0fa3d1836b")
    assert "<b>二、(三)1.</b>" in outline and 'data-clause="003_50930e0fa3d1836b#二.(三).1"' in outline
    view = ui.documents.open_outline_clause(gr.EventData(None, {"clause_id": "003_50930e0fa3d1836b#二.(三).1"}))
    assert "制定城镇个体从业人员及其雇工参加失业保险办法" in view.split('id="pqa-target">', 1)[1]


# ---------------------------------------------------------------- uploads


def test_upload_of_a_good_txt_makes_it_searchable(ui, fake_assistant, fake_settings, tmp_path):
    src = write(tmp_path / "in" / "无人机补贴通知.txt", GOOD_DOC)
    status, table, docs_choices, select = ui.documents.upload_document(str(src))
    assert "已导入" in status and "无人机驾驶员培训补贴" in status
    assert (Path(fake_settings.index_dir).parent / "uploads" / "无人机补贴通知.txt").exists()
    assert any(r[1] == "津政办发〔2024〕99号" for r in table)
    assert select["value"] == "无人机补贴通知"
    assert any(v == "无人机补贴通知" for _, v in docs_choices["choices"])
    answer = fake_assistant.ask("无人机驾驶员培训补贴标准是多少?")
    assert not answer.abstained and answer.citations[0].doc_id == "无人机补贴通知"
    # the bundled documents are all still there
    assert len(fake_assistant.data.docs) == 6


@pytest.mark.parametrize("name, content, message", [
    ("binary.txt", bytes(range(256)) * 20, "文件内容是二进制数据，不是文本"),
    ("empty.txt", b"", "是空的"),
    ("blank.md", b"   \n\n  ", "文件是空的"),
    ("program.exe", b"MZ\x90\x00", "不支持的文件类型"),
    ("table.csv", "甲,乙\n".encode("utf-8"), "不支持的文件类型"),
    ("broken.docx", b"PK\x03\x04 not really a zip", "无法作为 .docx 读取"),
    ("broken.pdf", b"%PDF-1.4 garbage", "无法导入“broken.pdf”"),
])
def test_bad_upload_gives_an_error_and_leaves_the_index_unchanged(ui, fake_assistant, fake_settings, tmp_path,
                                                                   name, content, message):
    generation = current_generation(Path(fake_settings.index_dir))
    docs_before = set(fake_assistant.data.docs)
    with pytest.raises(gr.Error) as err:
        ui.documents.upload_document(str(write(tmp_path / "in" / name, content)))
    assert message in str(err.value.message) and "索引未改变" in str(err.value.message)
    assert current_generation(Path(fake_settings.index_dir)) == generation
    assert set(fake_assistant.data.docs) == docs_before
    uploads = Path(fake_settings.index_dir).parent / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())


def test_refused_upload_event_reports_in_the_status_line(ui, fake_assistant, tmp_path):
    docs_before = set(fake_assistant.data.docs)
    with pytest.warns(UserWarning, match="无法导入"):  # gr.Warning outside a request: a Python warning
        status, watch = ui.documents.on_upload(str(write(tmp_path / "in" / "坏.txt", bytes(range(256)) * 4)), {})
    assert "导入失败" in status and "坏.txt" in status
    assert not watch.get("mine")
    assert set(fake_assistant.data.docs) == docs_before


def test_upload_event_returns_at_once_and_the_timer_shows_the_result(ui, fake_assistant, tmp_path):
    """The handler only queues; any session's timer then shows progress and refreshes the lists."""
    other = ui.documents.refresh_lists({})[-1]  # a second session, opened before the upload
    status, watch = ui.documents.on_upload(str(write(tmp_path / "in" / "无人机补贴通知.txt", GOOD_DOC)), {})
    assert "无人机补贴通知.txt" in status and ("等待中" in status or "导入中" in status or "已导入" in status)
    job_id = watch["mine"][0]
    assert ui.uploads.wait(job_id, 300).state == "done"
    status, table, docs, select, outline, clause, watch = ui.documents.poll_uploads(watch)
    assert "已导入" in status and any(r[1] == "津政办发〔2024〕99号" for r in table)
    assert select["value"] == "无人机补贴通知" and "补贴对象" in outline  # the uploader's session opens it
    assert not watch["mine"]
    # the other session gets the new lists on its next tick, without selecting anything
    status, table, docs, select, outline, clause, other = ui.documents.poll_uploads(other)
    assert any(v == "无人机补贴通知" for _, v in docs["choices"]) and "value" not in select
    # and a tick with nothing new changes nothing
    assert ui.documents.poll_uploads(other)[:6] == [gr.update()] * 6
    # a page opened later lists it too
    table, docs, select, _ = ui.documents.refresh_lists({})
    assert any(v == "无人机补贴通知" for _, v in select["choices"])


def test_a_queued_upload_can_be_cancelled(ui, fake_assistant, fake_settings, tmp_path):
    generation = current_generation(Path(fake_settings.index_dir))
    gate = __import__("threading").Event()
    real = ui.uploads._run
    ui.uploads._run = lambda job: (gate.wait(60), real(job))[1]  # hold the worker on the first job
    first = ui.documents.upload_document(str(write(tmp_path / "in" / "甲.txt", GOOD_DOC)), wait=False)
    second = ui.documents.upload_document(str(write(tmp_path / "in" / "乙.txt", GOOD_DOC.replace("无人机", "潜水"))), wait=False)
    html_before = ui.documents.render_uploads()
    assert f'data-job="{second.id}"' in html_before and "等待中" in html_before
    ui.documents.on_job_click(gr.EventData(None, {"job": second.id}))
    ui.documents.on_job_click(gr.EventData(None, {"job": first.id}))
    gate.set()
    assert ui.uploads.wait(second.id, 60).state == "cancelled"
    assert ui.uploads.wait(first.id, 300).state == "cancelled"
    assert "已取消" in ui.documents.render_uploads()
    assert current_generation(Path(fake_settings.index_dir)) == generation
    assert not {"甲", "乙"} & set(fake_assistant.data.docs)
    assert not any((Path(fake_settings.index_dir).parent / "uploads").glob("*.txt"))


def test_oversize_upload_is_refused(fake_assistant, fake_settings, tmp_path):
    ui = PolicyQAApp(fake_assistant, dataclasses.replace(fake_settings, max_upload_bytes=100))
    generation = current_generation(Path(fake_settings.index_dir))
    with pytest.raises(gr.Error) as err:
        ui.documents.upload_document(str(write(tmp_path / "in" / "big.txt", GOOD_DOC * 5)))
    assert "过大" in str(err.value.message) and "上限为 100 字节" in str(err.value.message)
    assert current_generation(Path(fake_settings.index_dir)) == generation


def test_bad_new_version_of_an_upload_keeps_the_old_one(ui, fake_assistant, tmp_path):
    ui.documents.upload_document(str(write(tmp_path / "v1" / "通知.txt", GOOD_DOC)))
    with pytest.raises(gr.Error):
        ui.documents.upload_document(str(write(tmp_path / "v2" / "通知.txt", b"\x00\x01\x02" * 100)))
    assert "通知" in fake_assistant.data.docs
    assert (Path(ui.uploads_dir) / "通知.txt").read_text(encoding="utf-8") == GOOD_DOC
    assert fake_assistant.ask("无人机驾驶员培训补贴标准是多少?").citations[0].doc_id == "通知"


def test_upload_keeps_documents_indexed_from_other_folders(fake_settings, tmp_path):
    """An index built from the corpus plus another folder keeps that folder's documents on upload."""
    from assistant.core import Assistant
    from index.pipeline import build_index

    extra = tmp_path / "laws"
    write(extra / "社会法" / "示例条例.txt", GOOD_DOC.replace("无人机驾驶员", "家政服务员"))
    build_index([fake_settings.corpus_dir, extra], fake_settings, progress=False)
    assistant = Assistant.from_settings(fake_settings, progress=False)
    assert "社会法/示例条例" in assistant.data.docs
    PolicyQAApp(assistant, fake_settings).documents.upload_document(str(write(tmp_path / "in" / "新通知.txt", GOOD_DOC)))
    assert {"社会法/示例条例", "新通知"} <= set(assistant.data.docs)


# ---------------------------------------------------------------- evaluation


def rating_values(outputs: list) -> dict:
    """The rating widgets' values from a _show_items() output list."""
    _, _, _, _, _, correctness, completeness, abstain, comment, *cites = outputs
    return {"correctness": correctness["value"], "completeness": completeness["value"], "abstain": abstain["value"],
            "comment": comment["value"], "cites": [c["value"] for c in cites if c.get("visible")]}


def question_set(tmp_path: Path) -> Path:
    rows = [{"id": "q1", "question": "地税部门在扩面工作中负责什么?"},
            {"id": "q2", "question": "那一次性补缴要交滞纳金吗?",
             "history": [{"role": "user", "content": "自由职业者怎么交养老保险?"},
                         {"role": "assistant", "content": "……"}]},
            {"id": "q3", "question": "火星移民政策是什么?"}]
    return write(tmp_path / "set.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\nnot json\n")


def test_ratings_are_saved_on_each_change_and_survive_a_new_store(ui, fake_settings, tmp_path):
    out = ui.evaluate.load_question_set(str(question_set(tmp_path)), "张三")
    items = out[0]
    assert [it.id for it in items] == ["q1", "q2", "q3"]
    assert items[2].answer.abstained and items[1].history
    assert "已评 0 / 3" in out[4]
    ui.evaluate.save_rating("张三", items, 0, "correctness", 4)
    ui.evaluate.save_rating("张三", items, 0, "cite:0", "yes")
    n_cites = len(items[0].answer.citations)
    if n_cites > 1:
        ui.evaluate.save_rating("张三", items, 0, "cite:1", "no")
    ui.evaluate.save_rating("张三", items, 0, "comment", "第二条引用不相关")
    status, progress = ui.evaluate.save_rating("张三", items, 2, "abstain_ok", "yes")
    assert "已保存" in status and "已评 1 / 3" in progress

    fresh = PolicyQAApp(ui.assistant, fake_settings, RatingsStore(fake_settings.ratings_db))  # a restart
    stored = fresh.ratings.get("张三", "q1")
    assert stored["correctness"] == 4
    assert stored["citation_marks"] == ({"1": True, "2": False} if n_cites > 1 else {"1": True})
    assert json.loads(stored["answer_json"])["citations"][0]["label"] == "四、(二)3."
    shown = fresh.evaluate.load_my_ratings("张三")
    assert [it.id for it in shown[0]] == ["q1", "q3"]
    assert rating_values(shown) == {"correctness": 4, "completeness": None, "abstain": None,
                                    "comment": "第二条引用不相关",
                                    "cites": (["yes", "no"] + [None] * (n_cites - 2))[:n_cites]}  # unrated: None
    assert rating_values(fresh.evaluate.go_to(shown[0], "张三", 1))["abstain"] == "yes"
    # reloading the same question set shows the stored ratings and the very answer that was rated
    again = fresh.evaluate.load_question_set(str(question_set(tmp_path)), "张三")
    assert rating_values(again)["correctness"] == 4
    assert again[0][0].answer.to_json() == json.loads(stored["answer_json"])


def test_changing_the_evaluator_shows_their_ratings_but_keeps_the_items(ui, tmp_path):
    assert all(u == gr.update() for u in ui.evaluate.on_evaluator_change([], "张三", 0))  # nothing loaded: no-op
    items = ui.evaluate.load_question_set(str(question_set(tmp_path)), "张三")[0]
    ui.evaluate.save_rating("李四", items, 1, "correctness", 2)
    out = ui.evaluate.on_evaluator_change(items, "李四", 1)
    assert out[0] == out[1] == out[3] == gr.update()  # items, index and the shown item stay
    assert rating_values(out)["correctness"] == 2 and "已评 1 / 3" in out[4]
    assert rating_values(ui.evaluate.on_evaluator_change(items, "张三", 1))["correctness"] is None


def test_view_in_document_from_the_item_being_rated(ui, tmp_path):
    items = ui.evaluate.load_question_set(str(question_set(tmp_path)), "张三")[0]
    cite = items[0].answer.citations[0]
    box, view = ui.evaluate.open_item_citation(items, 0, gr.EventData(None, {"clause_id": cite.clause_id, "n": "1"}))
    assert box["visible"] is True and f"<mark>{esc(cite.quote)}</mark>" in view


def test_one_rating_widget_per_possible_citation(fake_assistant, fake_settings):
    big = PolicyQAApp(fake_assistant, dataclasses.replace(fake_settings, top_k=12))
    assert big.evaluate.max_citations == 12
    assert len(big.evaluate._rating_widgets(None, "")) == 4 + 12


def test_unchanged_comment_is_not_written(ui, tmp_path):
    items = ui.evaluate.load_question_set(str(question_set(tmp_path)), "张三")[0]
    assert ui.evaluate.save_rating("张三", items, 0, "comment", "") == (gr.update(), gr.update())
    assert ui.ratings.get("张三", "q1") is None


def test_rating_without_a_name_is_refused(ui, tmp_path):
    items = ui.evaluate.load_question_set(str(question_set(tmp_path)), "")[0]
    with pytest.raises(gr.Error):
        ui.evaluate.save_rating("  ", items, 0, "correctness", 3)


def test_bad_question_set_gives_an_error(ui, tmp_path):
    with pytest.raises(gr.Error):
        ui.evaluate.load_question_set(str(write(tmp_path / "bad.jsonl", "hello\n{\"id\": 1}\n")), "张三")


def test_batch_output_rows_are_rated_as_given(ui, tmp_path):
    row = {"id": "b1", "question": "问", "answer": "给定的答案[1]", "abstained": False, "citations": [
        {"n": 1, "label": "一、", "title": "某文件", "text": "一、全文", "quote": "全文", "clause_id": "x#一",
         "headings": [], "doc_number": ""}], "related": [], "notices": []}
    out = ui.evaluate.load_question_set(str(write(tmp_path / "batch.jsonl", json.dumps(row, ensure_ascii=False))), "张三")
    assert out[0][0].answer.text == "给定的答案[1]"
    assert "<mark>全文</mark>" in out[3]


def test_questions_from_the_chat_log(ui):
    ask(ui, "地税部门在扩面工作中负责什么?")
    ui.chat.api_ask("自由职业者怎么交养老保险?")
    out = ui.evaluate.load_chat_log("李四")
    assert [it.question for it in out[0]] == ["地税部门在扩面工作中负责什么?", "自由职业者怎么交养老保险?"]
    assert all(it.id.startswith("chat-") and it.answer.citations for it in out[0])


def test_export_csv_and_jsonl_round_trip(ui, tmp_path):
    items = ui.evaluate.load_question_set(str(question_set(tmp_path)), "张三")[0]
    ui.evaluate.save_rating("张三", items, 0, "correctness", 5)
    ui.evaluate.save_rating("李四", items, 0, "correctness", 2)
    ui.evaluate.save_rating("李四", items, 0, "comment", '带"引号",和逗号')
    rows = ui.ratings.all()
    csv_path = ui.evaluate.export_ratings("csv")
    assert read_csv(csv_path) == rows
    with open(ui.evaluate.export_ratings("jsonl"), encoding="utf-8") as f:
        assert [json.loads(line) for line in f] == rows


def test_agreement_view_lists_kappa_and_disagreements(ui, tmp_path):
    items = ui.evaluate.load_question_set(str(question_set(tmp_path)), "张三")[0]
    for i, (a, b) in enumerate([(4, 4), (2, 5), (3, 3)]):
        ui.evaluate.save_rating("张三", items, i, "correctness", a)
        ui.evaluate.save_rating("李四", items, i, "correctness", b)
    view = ui.evaluate.agreement_html()
    assert "Cohen" in view and "张三" in view and "李四" in view
    # a=[4,2,3] b=[4,5,3]: p_o = 2/3, p_e = 2/9 -> kappa = (2/3 - 2/9) / (7/9) = 4/7
    assert f"{4 / 7:.3f}" in view
    assert "q2" in view and "q1" not in view.split("评分不一致的问题")[1]
