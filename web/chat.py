"""The Chat tab: questions answered with cited clauses, streamed as they are written; the sources
panel; the document viewer a citation opens in; and the `/ask` API endpoint that shares its queue.
"""
from __future__ import annotations

import time

import gradio as gr

from assistant.history import bound_history, history_bounds
from assistant.types import Answer
from index.errors import InvalidQuestion, PolicyQAError
from web.assets import CLICK_JS, SCROLL_JS
from web.chatlog import ChatLog, Turn, item_id_for
from web.documents import doc_choices, open_cited_clause
from web.render import (DOCVIEW_PLACEHOLDER, SOURCES_PLACEHOLDER, answer_markdown, md_escape, script_of,
                        sources_html)

CITIZEN_EXAMPLES = ["自由职业者怎么交养老保险?", "那一次性补缴要交滞纳金吗?", "個體工商戶應該參加哪些社會保險?"]
STAFF_EXAMPLES = ["地税部门在扩面工作中负责什么?", "规划纲要第二部分(三)第1条讲了什么"]
DISPLAY_CHOICES = [("跟随问题", "auto"), ("简体", "simplified"), ("繁體", "traditional")]
MODE_CHOICES = [("抽取式（原文摘录）", "extractive"), ("大模型生成", "llm")]
# the extractive answer arrives in one piece: it is revealed this many characters at a time
REVEAL_CHARS = 24
REVEAL_PAUSE_S = 0.02
SEARCHING = "正在检索相关条款…"


class ChatTab:
    """The Chat tab's handlers and layout over one Assistant; every answered question goes to the chat log."""

    def __init__(self, assistant, settings, chat_log: ChatLog):
        self.assistant = assistant
        self.settings = settings
        self.chat_log = chat_log

    def render_sources(self, answer: Answer | None, display: str = "auto") -> str:
        """The sources panel for one answer: abstention, rewritten query, notices, citations."""
        if answer is None:
            return SOURCES_PLACEHOLDER
        clauses = self.assistant.data.clauses
        heading_of = lambda clause_id: clauses[clause_id].heading if clause_id in clauses else ""  # noqa: E731
        return sources_html(answer, *script_of(answer, display), heading_of=heading_of)

    def render_chat(self, turns: list[Turn], display: str = "auto",
                    pending: tuple[str, str] | None = None) -> list[dict]:
        """Chatbot messages for the answered turns, and the (question, text so far) being answered."""
        messages = []
        for turn in turns:
            messages += [{"role": "user", "content": md_escape(turn.question)},
                         {"role": "assistant", "content": answer_markdown(turn.answer, *script_of(turn.answer, display))}]
        if pending:
            question, partial = pending
            messages += [{"role": "user", "content": md_escape(question)},
                         {"role": "assistant", "content": md_escape(partial) or SEARCHING}]
        return messages

    def respond(self, question: str, turns: list[Turn] | None, docs: list[str] | None = None,
                mode: str | None = None, display: str = "auto"):
        """Chat handler (a generator): yields (chat messages, sources HTML, turns, question box).

        The first yield clears the question box and shows the question at once; the answer
        then streams into the last message and the sources panel fills when it is verified.
        """
        turns = list(turns or [])
        raw = question
        try:
            question = self.assistant.check_question(question)
        except InvalidQuestion as exc:
            raise gr.Error(str(exc)) from exc
        history = bound_history([m for t in turns for m in (
            {"role": "user", "content": t.question}, {"role": "assistant", "content": t.answer.text})],
            **history_bounds(self.settings))
        partial = ""
        yield self.render_chat(turns, display, (question, partial)), gr.update(), turns, ""
        answer = None
        try:
            # the raw question: ask_stream cleans it again and says what it dropped
            for kind, value in self.assistant.ask_stream(raw, history, docs=list(docs or []) or None,
                                                         mode=mode or None):
                if kind != "delta":
                    answer = value
                    continue
                step = REVEAL_CHARS if len(value) > 2 * REVEAL_CHARS else len(value) or 1
                for i in range(0, len(value), step):
                    partial += value[i:i + step]
                    yield self.render_chat(turns, display, (question, partial)), gr.update(), turns, gr.update()
                    if step < len(value):
                        time.sleep(REVEAL_PAUSE_S)
        except PolicyQAError as exc:
            raise gr.Error(str(exc)) from exc
        turn = Turn(item_id_for(question), question, answer, tuple(history))
        turns.append(turn)
        self.chat_log.append_turn(turn)
        # the box was cleared on submit; leave what the user typed since then alone
        yield self.render_chat(turns, display), self.render_sources(answer, display), turns, gr.update()

    def redisplay(self, turns: list[Turn] | None, display: str):
        """Re-render the conversation and sources in another script."""
        turns = turns or []
        return self.render_chat(turns, display), self.render_sources(turns[-1].answer if turns else None, display)

    def clear_chat(self):
        """Outputs: chat, sources, turns, document box (hidden), document view."""
        return [], SOURCES_PLACEHOLDER, [], gr.update(visible=False), DOCVIEW_PLACEHOLDER

    def api_ask(self, question: str, history: list[dict] | None = None) -> tuple[str, list[dict]]:
        """API endpoint /ask: (question, history messages) -> (answer Markdown, citations as in the CLI JSON)."""
        history = bound_history(history, **history_bounds(self.settings))
        try:
            answer = self.assistant.ask(question, history)
        except PolicyQAError as exc:
            raise gr.Error(str(exc)) from exc
        self.chat_log.append_turn(Turn(item_id_for(answer.question), answer.question, answer, tuple(history)))
        return answer_markdown(answer), [c.to_json() for c in answer.citations]

    def open_citation(self, turns: list[Turn] | None, display: str, evt: gr.EventData):
        """A click in the sources panel: open the cited clause in its document, in the answer's script."""
        if not turns:
            return open_cited_clause(self.assistant.data, (), evt)
        answer = turns[-1].answer
        return open_cited_clause(self.assistant.data, answer.citations, evt, *script_of(answer, display))

    # ---------------------------------------------------------------- layout

    def build(self) -> gr.Dropdown:
        """The tab and its events; returns the document filter, which the Documents tab keeps current."""
        llm = self.assistant.llm_available
        with gr.Tab("问答", id="chat"):
            turns = gr.State([])  # this session's answered Turns
            with gr.Row(equal_height=False):
                with gr.Column(scale=5):
                    chatbot = gr.Chatbot(label="对话", height=480, elem_id="pqa-chat", feedback_options=None,
                                         latex_delimiters=[], buttons=["copy"],
                                         placeholder="在下方输入问题，或点选示例问题。")
                    question = gr.Textbox(label="问题", placeholder="例如：自由职业者怎么交养老保险？（可用简体或繁體）",
                                          elem_id="pqa-question", max_length=self.settings.max_question_chars,
                                          lines=1, submit_btn="提问")
                    with gr.Row():
                        clear = gr.Button("清空对话", size="sm", variant="secondary", scale=0, min_width=120)
                    gr.Examples([[q] for q in CITIZEN_EXAMPLES], inputs=[question], label="市民常见问题（第二个是追问）")
                    gr.Examples([[q] for q in STAFF_EXAMPLES], inputs=[question], label="工作人员：按部门、按条款编号查询")
                with gr.Column(scale=4):
                    with gr.Row():
                        display = gr.Radio(DISPLAY_CHOICES, value="auto", label="显示字体", elem_id="pqa-display")
                        mode = gr.Radio(MODE_CHOICES, value=self.settings.answerer if llm else "extractive",
                                        label="回答方式", interactive=llm, elem_id="pqa-mode",
                                        info=None if llm else "未配置大模型服务（POLICYQA_LLM_BASE_URL），使用抽取式回答")
                    docs = gr.Dropdown(doc_choices(self.assistant.data), value=[], multiselect=True,
                                       label="检索范围（不选即全部文件）", elem_id="pqa-docs")
                    gr.Markdown("#### 来源")
                    sources = gr.HTML(SOURCES_PLACEHOLDER, elem_id="pqa-sources", js_on_load=CLICK_JS, min_height=120)
            with gr.Column(visible=False, elem_id="pqa-docview-box") as docview_box:
                with gr.Row():
                    gr.Markdown("#### 原文")
                    close_doc = gr.Button("关闭原文", size="sm", scale=0)
                docview = gr.HTML(DOCVIEW_PLACEHOLDER, elem_id="pqa-docview", js_on_load=SCROLL_JS)
            # the API endpoint (a component: inside the tab) and the UI share one concurrency group
            gr.api(self.api_ask, api_name="ask", concurrency_id="ask")

        question.submit(self.respond, [question, turns, docs, mode, display], [chatbot, sources, turns, question],
                        concurrency_id="ask", api_visibility="private")
        display.change(self.redisplay, [turns, display], [chatbot, sources], api_visibility="private")
        clear.click(self.clear_chat, None, [chatbot, sources, turns, docview_box, docview], api_visibility="private")
        sources.click(self.open_citation, [turns, display], [docview_box, docview], scroll_to_output=True,
                      api_visibility="private")
        close_doc.click(lambda: gr.update(visible=False), None, docview_box, api_visibility="private")
        return docs
