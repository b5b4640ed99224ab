"""Gradio app: chat with cited answers, the indexed documents, and human evaluation of answers.

    python app.py            # serves on POLICYQA_HOST:POLICYQA_PORT (127.0.0.1:7860)

`PolicyQAApp(assistant, settings).create_app()` builds the Blocks; `launch()` serves them.
Handlers are plain methods (`respond`, `api_ask`, `show_clause`, `upload_document`,
`load_question_set`, `save_rating`, ...) so tests call them directly. Everything taken from a
document or an answer is HTML-escaped before the app adds its own markup (<mark>, links).
"""
from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import gradio as gr

from eval.ratings import RatingsStore, agreement
from index.errors import InvalidQuestion, PolicyQAError
from index.load import SUPPORTED_SUFFIXES
from assistant.history import bound_history, history_bounds, plain_history
from index.settings import REPO_ROOT, Settings
from web.assets import CLICK_JS, CSS, SCROLL_JS
from index.ingest import precheck_upload, size_text, uploads_folder
from web.chatlog import ChatLog, item_id_for
from web.uploads import STATE_ZH, UploadQueue
from web.render import (DOCVIEW_PLACEHOLDER, EVAL_PLACEHOLDER, SOURCES_PLACEHOLDER, answer_markdown, answer_outcome,
                        citation_card, confidence_note, convert, document_body, esc, find_span, md_escape,
                        script_of, warnings_summary)

CITIZEN_EXAMPLES = ["自由职业者怎么交养老保险?", "那一次性补缴要交滞纳金吗?", "個體工商戶應該參加哪些社會保險?"]
STAFF_EXAMPLES = ["地税部门在扩面工作中负责什么?", "规划纲要第二部分(三)第1条讲了什么"]
MAX_CITATIONS = 8  # rating widgets for citation marks; more if settings.top_k is larger
DISPLAY_CHOICES = [("跟随问题", "auto"), ("简体", "simplified"), ("繁體", "traditional")]
MODE_CHOICES = [("抽取式（原文摘录）", "extractive"), ("大模型生成", "llm")]
YES_NO = [("正确", "yes"), ("错误", "no")]
SOURCES_PLACEHOLDER = '<div class="pqa-empty">提问后，这里显示答案引用的条款原文。</div>'
DOCVIEW_PLACEHOLDER = '<div class="pqa-empty">点击来源中的“在文件中查看”，这里显示整篇文件并定位到该条款。</div>'
EVAL_PLACEHOLDER = '<div class="pqa-empty">填写评估人姓名，再载入问题集（JSONL）、对话记录或已保存的评分。</div>'

# ---------------------------------------------------------------- the app


class PolicyQAApp:
    """The three tabs (Chat, Documents, Evaluate) over one Assistant and one RatingsStore."""

    def __init__(self, assistant, settings: Settings | None = None, ratings: RatingsStore | None = None):
        self.assistant = assistant
        self.settings = settings or assistant.settings
        self.ratings = ratings or RatingsStore(self.settings.ratings_db, self.settings)
        self.var_dir = Path(self.settings.index_dir).resolve().parent
        self.uploads_dir = uploads_folder(self.settings)
        self.chat_log = ChatLog(self.var_dir / "chat_log.jsonl", self.settings.chat_log_max_bytes,
                                self.settings.chat_log_keep)
        self.uploads = UploadQueue(self._run_upload, max_waiting=self.settings.max_queued_uploads)
        self.max_citations = max(MAX_CITATIONS, self.settings.top_k)
        self.demo: gr.Blocks | None = None

    # ---------------------------------------------------------------- chat

    def _heading(self, clause_id: str) -> str:
        clause = self.assistant.data.clauses.get(clause_id)
        return clause.heading if clause else ""

    def render_sources(self, turn: dict | None, display: str = "auto") -> str:
        """The sources panel for one answered turn: abstention, rewritten query, notices, citations."""
        if not turn or not turn.get("answer"):
            return SOURCES_PLACEHOLDER
        answer = turn["answer"]
        script, variant = script_of(turn, display)
        c = lambda t: convert(t, script, variant)  # noqa: E731
        parts = ['<div class="pqa-sources">']
        if answer_outcome(answer) == "uncertain":
            parts.append(f'<div class="pqa-uncertain"><b>{esc(c("依据不确定"))}{esc(confidence_note(answer, c))}</b>'
                         f'{esc(c("下列条款与问题最接近，但不能确定它们回答了这个问题，请核对原文。"))}</div>')
        if answer.get("abstained"):
            parts.append(f'<div class="pqa-abstain"><b>{esc(c("未找到依据（系统拒答）"))}</b>'
                         f'{esc(c(answer.get("answer", "")))}'
                         f'{esc(c("下列条款只是与问题最接近的内容，可能相关，不构成答复。")) if answer.get("related") else ""}'
                         '</div>')
        rewritten = answer.get("rewritten_query") or ""
        if rewritten and rewritten != answer.get("question"):
            parts.append(f'<div class="pqa-rewritten">{esc(c("追问已按上文改写为"))}：<b>{esc(c(rewritten))}</b></div>')
        for note in answer.get("notices") or []:
            parts.append(f'<div class="pqa-notice">{esc(c("提示"))}：{esc(c(note))}</div>')
        if answer.get("abstained"):
            if answer.get("related"):
                parts.append(f'<div class="pqa-related-title">{esc(c("可能相关的条款"))}</div>')
            for cite in answer.get("related") or []:
                parts.append(citation_card(cite, script, variant, quote=False, heading=self._heading(cite["clause_id"])))
        else:
            for cite in answer.get("citations") or []:
                parts.append(citation_card(cite, script, variant, heading=self._heading(cite["clause_id"])))
        parts.append("</div>")
        return "".join(parts)

    def render_chat(self, turns: list[dict], display: str = "auto", pending: dict | None = None) -> list[dict]:
        """Chatbot messages for the answered turns (and one being answered)."""
        messages = []
        for turn in list(turns) + ([pending] if pending else []):
            messages.append({"role": "user", "content": md_escape(turn["question"])})
            if turn.get("answer"):
                script, variant = script_of(turn, display)
                messages.append({"role": "assistant", "content": answer_markdown(turn["answer"], script, variant)})
            else:
                messages.append({"role": "assistant", "content": md_escape(turn.get("partial") or "") or "正在检索相关条款…"})
        return messages

    def respond(self, question: str, turns: list[dict] | None, docs: list[str] | None = None,
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
            {"role": "user", "content": t["question"]}, {"role": "assistant", "content": t["answer"]["answer"]})],
            **history_bounds(self.settings))
        pending = {"question": question, "partial": ""}
        yield self.render_chat(turns, display, pending), gr.update(), turns, ""
        answer = None
        try:
            # the raw question: ask_stream cleans it again and says what it dropped
            for kind, value in self.assistant.ask_stream(raw, history, docs=list(docs or []) or None,
                                                         mode=mode or None):
                if kind == "delta":
                    # the extractive answer arrives in one piece: reveal it in a few steps
                    step = 24 if len(value) > 48 else len(value) or 1
                    for i in range(0, len(value), step):
                        pending["partial"] += value[i:i + step]
                        yield self.render_chat(turns, display, pending), gr.update(), turns, gr.update()
                        if step < len(value):
                            time.sleep(0.02)
                else:
                    answer = value
        except PolicyQAError as exc:
            raise gr.Error(str(exc)) from exc
        turn = {"id": item_id_for(question), "question": question, "history": history, "answer": answer.to_json()}
        turns.append(turn)
        self.log_turn(turn)
        # the box was cleared on submit; leave what the user typed since then alone
        yield self.render_chat(turns, display), self.render_sources(turn, display), turns, gr.update()

    def redisplay(self, turns: list[dict] | None, display: str):
        """Re-render the conversation and sources in another script."""
        turns = turns or []
        return self.render_chat(turns, display), self.render_sources(turns[-1] if turns else None, display)

    def clear_chat(self):
        return [], SOURCES_PLACEHOLDER, [], gr.update(visible=False), DOCVIEW_PLACEHOLDER

    def api_ask(self, question: str, history: list[dict] | None = None) -> tuple[str, list[dict]]:
        """API endpoint /ask: (question, history messages) -> (answer Markdown, citations as in the CLI JSON)."""
        history = bound_history(history, **history_bounds(self.settings))
        try:
            answer = self.assistant.ask(question, history)
        except PolicyQAError as exc:
            raise gr.Error(str(exc)) from exc
        result = answer.to_json()
        self.log_turn({"id": item_id_for(answer.question), "question": answer.question,
                       "history": history, "answer": result})
        return answer_markdown(result), result["citations"]

    def log_turn(self, turn: dict):
        """Append an answered question to var/chat_log.jsonl (the Evaluate tab can load it)."""
        self.chat_log.append({"id": turn["id"], "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                              "question": turn["question"],
                              "history": turn.get("history") or [],  # bounded by respond / api_ask
                              "answer": turn["answer"]})

    # ---------------------------------------------------------------- document view

    def show_clause(self, clause_id: str, quote: str = "", script: str = "original", variant: str = "s2t") -> str:
        """The whole document with one clause highlighted (and its quote marked), for scrolling to."""
        clause = self.assistant.data.clauses.get(clause_id)
        if clause is None:
            raise gr.Error(f"条款 {clause_id} 不在当前索引中（文件可能已被移除）。")
        doc = self.assistant.data.docs[clause.doc_id]
        c = lambda t: convert(t, script, variant)  # noqa: E731
        m = doc.meta
        meta = " · ".join(x for x in (m.doc_number, m.issuer, m.issue_date and f"发布 {m.issue_date}",
                                      m.effective_date and f"施行 {m.effective_date}", m.validity) if x)
        body = doc.text
        start, end = max(0, clause.start), min(len(body), clause.end)
        if end <= start:  # offsets missing: find the clause text itself
            span = find_span(body, clause.text)
            start, end = span if span else (0, 0)
        path = " › ".join(list(clause.headings) + ([clause.heading] if clause.heading else []))
        return (f'<div class="pqa-docview"><h3>《{esc(c(doc.title))}》</h3>'
                f'<div class="pqa-doc-meta">{esc(c(meta)) or esc(c(doc.source))}</div>'
                f'<div class="pqa-doc-meta">{esc(c("定位"))}：<b class="pqa-label">{esc(c(clause.label or "（无编号）"))}</b>'
                f'{" · " + esc(c(path)) if path else ""}{" · " + esc(c("第")) + str(clause.page) + esc(c("页")) if clause.page else ""}</div>'
                f'<div class="pqa-doc-body">{document_body(doc, start, end, quote, script, variant)}</div></div>')

    def open_citation(self, turns: list[dict] | None, display: str, evt: gr.EventData):
        """A click in the sources panel: open the cited clause in its document."""
        data = getattr(evt, "_data", None) or {}
        clause_id = data.get("clause_id")
        if not clause_id:
            return gr.update(), gr.update()
        turn = (turns or [None])[-1]
        quote, script, variant = "", "original", "s2t"
        if turn:
            script, variant = script_of(turn, display)
            for cite in turn["answer"].get("citations") or []:
                if cite["clause_id"] == clause_id and str(cite["n"]) == str(data.get("n") or cite["n"]):
                    quote = cite.get("quote", "")
                    break
        return gr.update(visible=True), self.show_clause(clause_id, quote, script, variant)

    # ---------------------------------------------------------------- documents

    def doc_choices(self) -> list[tuple[str, str]]:
        return [(f"{d.title}（{d.source}）", d.doc_id) for d in self.assistant.data.docs.values()]

    def documents_table(self) -> list[list]:
        """One row per indexed document: title, 文号, issuer, dates, validity, clauses, warnings."""
        rows = []
        for d in self.assistant.data.docs.values():
            m = d.meta
            rows.append([d.title, m.doc_number, m.issuer, m.issue_date, m.effective_date, m.validity,
                         len(d.clauses), d.source, warnings_summary(d.warnings)])
        return rows

    def render_outline(self, doc_id: str | None) -> str:
        """Clause outline of one document (一、 -> (一) -> 1.), each item clickable."""
        doc = self.assistant.data.docs.get(doc_id or "")
        if doc is None:
            return '<div class="pqa-empty">选择一个文件查看其条款目录。</div>'
        items = []
        for cl in doc.clauses:
            depth = max(0, len(cl.path) - 1)
            name = cl.heading or re.sub(r"\s+", " ", cl.text)[:28]
            flag = ' <span class="pqa-inferred">（编号系推断）</span>' if cl.inferred else ""
            items.append(f'<li style="padding-left:{depth * 1.2:.1f}em"><button data-clause="{esc(cl.clause_id)}">'
                         f'<b>{esc(cl.label or "（前言）")}</b> {esc(name)}{flag}</button></li>')
        notes = "".join(f"<li>{esc(w)}</li>" for w in doc.warnings)
        notes = f'<div class="pqa-notice">导入提示：<ul>{notes}</ul></div>' if notes else ""
        if not items:
            return notes + '<div class="pqa-empty">这个文件没有识别出编号条款。</div>'
        return f'{notes}<div class="pqa-outline"><ul>{"".join(items)}</ul></div>'

    def open_outline_clause(self, evt: gr.EventData):
        data = getattr(evt, "_data", None) or {}
        return self.show_clause(data["clause_id"]) if data.get("clause_id") else gr.update()

    def select_document(self, doc_id: str | None):
        doc = self.assistant.data.docs.get(doc_id or "")
        view = self.show_clause(doc.clauses[0].clause_id) if doc and doc.clauses else DOCVIEW_PLACEHOLDER
        return self.render_outline(doc_id), view

    def upload_document(self, file, wait: bool = True, timeout_s: float = 3600):
        """Check an uploaded file and queue it for indexing in the background.

        With `wait` (scripts, tests) block until it is indexed and return what the upload event
        shows at the end: (status, table, chat filter choices, document choice). Without it,
        return at once with the queue's status; the sessions' timers show the rest.
        A refusal raises gr.Error with a Chinese message that says the index is unchanged.
        """
        if not file:
            raise gr.Error("请选择要上传的文件。")
        src = Path(file if isinstance(file, (str, Path)) else getattr(file, "name", file["path"]))
        try:  # refused at once, before queueing: such a file never reaches the index
            name = precheck_upload(self.settings, src)
        except PolicyQAError as exc:
            raise gr.Error(str(exc)) from exc
        try:
            job = self.uploads.submit(src, name)
        except PolicyQAError as exc:
            raise gr.Error(str(exc)) from exc
        if not wait:
            return job
        view = self.uploads.wait(job.id, timeout_s)
        if view is None:
            raise gr.Error(f"“{name}”在 {timeout_s:.0f} 秒内未导入完成，仍在后台进行。")
        if view.state != "done":
            raise gr.Error(view.message)
        choices = self.doc_choices()
        return (esc(view.message), self.documents_table(), gr.update(choices=choices),
                gr.update(choices=choices, value=view.doc_id))

    def _run_upload(self, job) -> tuple[str, str]:
        """The queue's worker: index one job's file, swap the new index in; (message, doc_id)."""
        from index.ingest import ingest_upload

        job.progress(0.02, "解析文件")
        result = ingest_upload(self.settings, self.assistant.embedder, job.path, job.name, cancel=job.cancel,
                               on_progress=job.progress)
        job.progress(0.98, "载入新索引")
        self.assistant.reload(result.data)
        row = result.row
        message = (f"已导入《{row['title']}》（{result.stored_name}）：{row['clauses']} 个条款、{row['chunks']} 个片段，"
                   f"本次向量化 {result.report.embedded_chunks} 个片段，用时 {result.report.timings_s.get('total', 0):.1f} 秒。"
                   "现在即可检索。")
        notes = list(result.notices) + list(row.get("warnings") or [])
        if notes:
            message += "导入提示：" + "；".join(notes)
        return message, row["doc_id"]

    def on_upload(self, file, watch: dict | None):
        """The upload event: queue the file and show the queue; a refusal shows in the status line and a toast."""
        watch = dict(watch or {})
        try:
            job = self.upload_document(file, wait=False)
        except gr.Error as exc:
            gr.Warning(exc.message, duration=15)
            return (f'<div class="pqa-notice">导入失败：{esc(exc.message)}</div>' + self.render_uploads(), watch)
        watch["mine"] = list(watch.get("mine") or []) + [job.id]
        return self.render_uploads(), watch

    def render_uploads(self) -> str:
        """The upload queue: each job with its state, progress and a cancel button while unfinished."""
        rows = []
        for v in self.uploads.snapshot()[-8:]:
            state = STATE_ZH[v.state]
            bar = (f'<progress max="100" value="{v.fraction * 100:.0f}"></progress> {v.fraction:.0%} {esc(v.step)}'
                   if v.state == "running" else "")
            cancel = (f'<button class="pqa-open" data-job="{esc(v.id)}">取消</button>'
                      if v.state in ("queued", "running") else "")
            message = f'<div class="pqa-job-message">{esc(v.message)}</div>' if v.message else ""
            rows.append(f'<li class="pqa-job pqa-job-{v.state}"><b>{esc(v.name)}</b> · {state} {bar} {cancel}{message}</li>')
        return f'<ul class="pqa-jobs">{"".join(rows)}</ul>' if rows else ""

    def on_job_click(self, evt: gr.EventData):
        """A click on a job's cancel button."""
        data = getattr(evt, "_data", None) or {}
        if data.get("job"):
            self.uploads.cancel(str(data["job"]))
        return self.render_uploads()

    def poll_uploads(self, watch: dict | None):
        """Every session's timer: refresh the queue, and the document lists when the index changed.

        Outputs: upload status, table, chat filter, document choice, outline, clause view, watch.
        A session that uploaded a file gets that document selected once it is indexed.
        """
        watch = dict(watch or {})
        status = self.render_uploads()
        out = [gr.update() if status == watch.get("status") else status] + [gr.update()] * 5
        watch["status"] = status
        mine = list(watch.get("mine") or [])
        views = {v.id: v for v in self.uploads.snapshot()}
        done_mine = [views[j] for j in mine if j in views and views[j].finished]
        watch["mine"] = [j for j in mine if j in views and not views[j].finished]
        if watch.get("completed", 0) != self.uploads.completed:
            watch["completed"] = self.uploads.completed
            choices = self.doc_choices()
            out[1:4] = [self.documents_table(), gr.update(choices=choices), gr.update(choices=choices)]
        selected = next((v.doc_id for v in reversed(done_mine) if v.state == "done"), "")
        if selected and selected in self.assistant.data.docs:
            out[3] = gr.update(choices=self.doc_choices(), value=selected)
            out[4:6] = list(self.select_document(selected))
        return out + [watch]

    def refresh_lists(self, watch: dict | None):
        """A page load: the documents as they are now, not as they were when the app started."""
        watch = dict(watch or {}, completed=self.uploads.completed)
        choices = self.doc_choices()
        return self.documents_table(), gr.update(choices=choices), gr.update(choices=choices), watch

    # ---------------------------------------------------------------- evaluation

    def _stored_answer(self, evaluator: str, item_id: str, question: str) -> dict | None:
        """An answer some evaluator already rated for this item (own first), so raters see the same answer."""
        rows = [r for r in self.ratings.all() if r["item_id"] == item_id and r.get("answer_json")]
        rows.sort(key=lambda r: r["evaluator"] != evaluator)
        for r in rows:
            answer = json.loads(r["answer_json"])
            if answer.get("question") == question:
                return answer
        return None

    def load_question_set(self, file, evaluator: str, progress=gr.Progress()):
        """Questions from a JSONL file ({"id","question","history"?}, or batch output rows with answers)."""
        if not file:
            raise gr.Error("请选择问题集文件（JSONL）。")
        path = Path(file if isinstance(file, (str, Path)) else getattr(file, "name", file["path"]))
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise gr.Error(f"无法读取问题集：{exc}") from exc
        raw, bad = [], []
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict) or not str(row.get("question") or "").strip():
                    raise ValueError("no question")
            except ValueError:
                bad.append(lineno)
                continue
            raw.append(row)
        if not raw:
            raise gr.Error("问题集中没有可用的问题（每行应为 {\"id\": ..., \"question\": ...}）。")
        items = []
        for k, row in enumerate(progress.tqdm(raw, desc="生成答案")):
            item_id = str(row.get("id") or f"line-{k + 1}")
            question = str(row["question"]).strip()
            history = plain_history(row.get("history"))
            answer = row if "answer" in row and "citations" in row else self._stored_answer(evaluator, item_id, question)
            if answer is None:
                try:
                    answer = self.assistant.ask(question, history).to_json()
                except PolicyQAError as exc:
                    answer = {"question": question, "answer": f"（出错：{exc}）", "abstained": False,
                              "citations": [], "related": [], "notices": [str(exc)]}
            answer = {k2: v for k2, v in answer.items() if k2 != "id"}
            items.append({"id": item_id, "question": question, "history": history, "answer": answer})
        note = f"已载入 {len(items)} 个问题" + (f"；第 {', '.join(map(str, bad[:10]))} 行无法解析，已跳过" if bad else "")
        gr.Info(note, duration=4)
        return self._show_items(items, evaluator, 0)

    def load_chat_log(self, evaluator: str, limit: int = 200):
        """The latest answered questions from the chat log (all users of this server)."""
        rows = self.chat_log.latest(limit)
        if not rows:
            raise gr.Error("还没有对话记录：先在“问答”页提问。")
        items = [{"id": str(row.get("id")), "question": str(row.get("question") or ""),
                  "history": plain_history(row.get("history")), "answer": row["answer"]} for row in rows]
        return self._show_items(items, evaluator, 0)

    def load_my_ratings(self, evaluator: str):
        """The items this evaluator has already rated (after a reload or a restart)."""
        evaluator = (evaluator or "").strip()
        if not evaluator:
            raise gr.Error("请先填写评估人姓名。")
        items = [{"id": r["item_id"], "question": r["question"] or "", "history": [],
                  "answer": json.loads(r["answer_json"]) if r.get("answer_json") else {}}
                 for r in self.ratings.all(evaluator)]
        if not items:
            raise gr.Error(f"评估人“{evaluator}”还没有保存过评分。")
        return self._show_items(items, evaluator, 0)

    def _item_choices(self, items: list[dict], evaluator: str) -> list[tuple[str, int]]:
        rated = {r["item_id"] for r in self.ratings.all((evaluator or "").strip())
                 if r["correctness"] is not None} if (evaluator or "").strip() else set()
        return [(f"{'✓' if it['id'] in rated else '·'} {it['id']}：{it['question'][:30]}", i) for i, it in enumerate(items)]

    def progress_text(self, items: list[dict], evaluator: str) -> str:
        evaluator = (evaluator or "").strip()
        if not items:
            return ""
        if not evaluator:
            return f"共 {len(items)} 个问题。填写评估人姓名后开始评分。"
        done, total = self.ratings.progress(evaluator, [it["id"] for it in items])
        return f"**{md_escape(evaluator)}** 的进度：已评 {done} / {total}"

    def render_item(self, item: dict | None) -> str:
        """One question with its answer and numbered citations, as the evaluator sees it."""
        if not item:
            return EVAL_PLACEHOLDER
        answer = item.get("answer") or {}
        parts = [f'<div class="pqa-eval-item"><div class="pqa-doc-meta">编号 {esc(item["id"])}</div>',
                 f'<div class="pqa-question">问：{esc(item["question"])}</div>']
        if item.get("history"):
            hist = " / ".join(f"{'问' if h['role'] == 'user' else '答'}：{h['content'][:60]}" for h in item["history"][-4:])
            parts.append(f'<div class="pqa-history">上文：{esc(hist)}</div>')
        if answer.get("abstained"):
            parts.append(f'<div class="pqa-abstain"><b>系统拒答</b>{esc(answer.get("answer", ""))}</div>')
        elif answer_outcome(answer) == "uncertain":
            parts.append(f'<div class="pqa-uncertain"><b>依据不确定{esc(confidence_note(answer, str))}</b>'
                         f'{esc(answer.get("answer", ""))}</div>')
        else:
            parts.append(f'<div class="pqa-answer">答：{esc(answer.get("answer", ""))}</div>')
        rewritten = answer.get("rewritten_query") or ""
        if rewritten and rewritten != item["question"]:
            parts.append(f'<div class="pqa-rewritten">追问改写为：<b>{esc(rewritten)}</b></div>')
        for note in answer.get("notices") or []:
            parts.append(f'<div class="pqa-notice">提示：{esc(note)}</div>')
        parts.append('<div class="pqa-sources">')
        for cite in answer.get("citations") or []:
            parts.append(citation_card(cite, "original", "s2t"))
        if answer.get("abstained"):
            for cite in answer.get("related") or []:
                parts.append(citation_card(cite, "original", "s2t", quote=False))
        parts.append("</div></div>")
        return "".join(parts)

    def _rating_widgets(self, item: dict | None, evaluator: str) -> list:
        """Values of: correctness, completeness, abstain_ok, comment, then one radio per possible citation."""
        stored = self.ratings.get(evaluator.strip(), item["id"]) if item and (evaluator or "").strip() else None
        stored = stored or {}
        abstain = stored.get("abstain_ok")
        out = [gr.update(value=stored.get("correctness"), interactive=bool(item)),
               gr.update(value=stored.get("completeness"), interactive=bool(item)),
               gr.update(value=None if abstain is None else ("yes" if abstain else "no"), interactive=bool(item)),
               gr.update(value=stored.get("comment") or "")]
        cites = (item or {}).get("answer", {}).get("citations") or []
        marks = stored.get("citation_marks") or {}
        for k in range(self.max_citations):
            if k < len(cites):
                cite = cites[k]
                mark = marks.get(str(cite["n"]))
                out.append(gr.update(visible=True, label=f"引用 [{cite['n']}] {cite['label']} 是否正确",
                                     value=None if mark is None else ("yes" if mark else "no")))
            else:
                out.append(gr.update(visible=False, value=None))
        return out

    def _show_items(self, items: list[dict], evaluator: str, index: int) -> list:
        """Outputs after loading a set or moving: items, index, selector, item HTML, progress, widgets..."""
        index = max(0, min(index, len(items) - 1)) if items else 0
        item = items[index] if items else None
        return [items, index, gr.update(choices=self._item_choices(items, evaluator), value=index if items else None),
                self.render_item(item), self.progress_text(items, evaluator)] + self._rating_widgets(item, evaluator)

    def go_to(self, items: list[dict], evaluator: str, index, delta: int = 0):
        index = (int(index) if index is not None else 0) + delta
        return self._show_items(items or [], evaluator, index)

    def on_evaluator_change(self, items: list[dict], evaluator: str, index):
        """Show the newly named evaluator's ratings of the current item.

        Never replaces the loaded items: typing a name and at once loading a set runs both
        events side by side, and this one (holding the older, possibly empty, list) may finish last.
        """
        if not items:
            return [gr.update()] * (5 + 4 + self.max_citations)
        out = self._show_items(items, evaluator, int(index or 0))
        return [gr.update(), gr.update(), out[2], gr.update(), out[4]] + out[5:]

    def open_item_citation(self, items: list[dict], index, evt: gr.EventData):
        """A click on "view in document" in the item being rated."""
        data = getattr(evt, "_data", None) or {}
        if not items or index is None or not data.get("clause_id"):
            return gr.update(), gr.update()
        cites = items[int(index)]["answer"].get("citations") or []
        quote = next((c.get("quote", "") for c in cites
                      if c["clause_id"] == data["clause_id"] and str(c["n"]) == str(data.get("n"))), "")
        return gr.update(visible=True), self.show_clause(data["clause_id"], quote)

    def save_rating(self, evaluator: str, items: list[dict], index, field: str, value) -> tuple[str, str]:
        """Store one field of the current item's rating at once; returns (save status, progress)."""
        evaluator = (evaluator or "").strip()
        if not items or index is None:
            raise gr.Error("还没有载入要评分的问题。")
        if not evaluator:
            raise gr.Error("请先填写评估人姓名，评分按姓名分别保存。")
        item = items[int(index)]
        kw = {}
        if field in ("correctness", "completeness"):
            kw[field] = int(value) if value not in (None, "") else None
        elif field == "abstain_ok":
            kw[field] = None if value is None else value == "yes"
        elif field == "comment":
            stored = self.ratings.get(evaluator, item["id"]) or {}
            if (stored.get("comment") or "") == (value or ""):
                return gr.update(), gr.update()  # shown, not edited: nothing to store
            kw[field] = value or ""
        elif field.startswith("cite:"):
            cites = item["answer"].get("citations") or []
            k = int(field.split(":")[1])
            if k >= len(cites) or value is None:
                return gr.update(), gr.update()
            kw["citation_marks"] = {str(cites[k]["n"]): value == "yes"}
        else:
            raise ValueError(f"unknown rating field {field!r}")
        try:
            self.ratings.save(evaluator, item["id"], question=item["question"],
                              answer_json=json.dumps(item["answer"], ensure_ascii=False), **kw)
        except PolicyQAError as exc:
            raise gr.Error(str(exc)) from exc
        return f"已保存（{time.strftime('%H:%M:%S')}）", self.progress_text(items, evaluator)

    def export_ratings(self, fmt: str) -> str:
        """Write all ratings to a temporary CSV or JSONL file for download; returns its path."""
        folder = Path(tempfile.mkdtemp(prefix="policyqa-export-"))
        path = folder / f"ratings-{time.strftime('%Y%m%d-%H%M%S')}.{fmt}"
        return str(self.ratings.export_csv(path) if fmt == "csv" else self.ratings.export_jsonl(path))

    def agreement_html(self) -> str:
        """Cohen's kappa for each pair of evaluators, and the items they disagree on."""
        rows = self.ratings.all()
        result = agreement(rows)
        counts = {}
        for r in rows:
            if r["correctness"] is not None:
                counts[r["evaluator"]] = counts.get(r["evaluator"], 0) + 1
        fmt = lambda k: "—" if k is None else f"{k:.3f}"  # noqa: E731
        parts = ["<h4>评估人</h4><table class='pqa-table'><tr><th>评估人</th><th>已评分（正确性）</th></tr>"]
        parts += [f"<tr><td>{esc(e)}</td><td>{n}</td></tr>" for e, n in sorted(counts.items())]
        parts.append("</table>")
        if not result["pairs"]:
            parts.append("<p>至少需要两位评估人对相同问题评分，才能计算一致性。</p>")
            return "".join(parts)
        parts.append("<h4>一致性（Cohen's kappa）</h4><table class='pqa-table'><tr><th>评估人 A</th><th>评估人 B</th>"
                     "<th>共同问题</th><th>正确性 kappa（n）</th><th>引用标注 kappa（n）</th></tr>")
        for p in result["pairs"]:
            parts.append(f"<tr><td>{esc(p['a'])}</td><td>{esc(p['b'])}</td><td>{p['items']}</td>"
                         f"<td>{fmt(p['kappa_correctness'])}（{p['correctness_items']}）</td>"
                         f"<td>{fmt(p['kappa_citations'])}（{p['citation_marks']}）</td></tr>")
        parts.append("</table>")
        parts.append(f"<h4>评分不一致的问题（{len(result['disagreements'])}）</h4>")
        if result["disagreements"]:
            parts.append("<table class='pqa-table'><tr><th>编号</th><th>问题</th><th>各评估人评分</th></tr>")
            for d in result["disagreements"]:
                cells = "<br>".join(
                    f"<b>{esc(ev)}</b>：正确性 {r['correctness'] or '—'}，完整性 {r['completeness'] or '—'}，"
                    f"拒答判断 {'—' if r['abstain_ok'] is None else ('正确' if r['abstain_ok'] else '错误')}，"
                    f"引用 {esc(' '.join(f'[{n}]' + ('✓' if ok else '✗') for n, ok in sorted(r['citation_marks'].items())) or '—')}"
                    + (f"，备注：{esc(r['comment'])}" if r.get("comment") else "")
                    for ev, r in d["ratings"].items())
                parts.append(f"<tr><td>{esc(d['item_id'])}</td><td>{esc(d['question'] or '')}</td><td>{cells}</td></tr>")
            parts.append("</table>")
        return "".join(parts)

    # ---------------------------------------------------------------- layout

    def create_app(self) -> gr.Blocks:
        """Build the Blocks (three tabs) and wire the handlers; does not start a server."""
        llm = self.assistant.llm_available
        with gr.Blocks(title="PolicyQA 政策问答", analytics_enabled=False) as demo:
            gr.Markdown("## PolicyQA 政策问答\n根据已收录的政策文件回答问题，每句话都注明出处条款；找不到依据时会明确说明。")
            turns = gr.State([])
            with gr.Tabs():
                with gr.Tab("问答", id="chat"):
                    with gr.Row(equal_height=False):
                        with gr.Column(scale=5):
                            chatbot = gr.Chatbot(label="对话", height=480, elem_id="pqa-chat", feedback_options=None,
                                                 latex_delimiters=[],
                                                 buttons=["copy"], placeholder="在下方输入问题，或点选示例问题。")
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
                            docs = gr.Dropdown(self.doc_choices(), value=[], multiselect=True, label="检索范围（不选即全部文件）",
                                               elem_id="pqa-docs")
                            gr.Markdown("#### 来源")
                            sources = gr.HTML(SOURCES_PLACEHOLDER, elem_id="pqa-sources", js_on_load=CLICK_JS,
                                              min_height=120)
                    with gr.Column(visible=False, elem_id="pqa-docview-box") as docview_box:
                        with gr.Row():
                            gr.Markdown("#### 原文")
                            close_doc = gr.Button("关闭原文", size="sm", scale=0)
                        docview = gr.HTML(DOCVIEW_PLACEHOLDER, elem_id="pqa-docview", js_on_load=SCROLL_JS)

                with gr.Tab("文件", id="documents"):
                    gr.Markdown("已收录的文件。选择文件查看条款目录，点击条款查看原文位置。")
                    table = gr.Dataframe(self.documents_table(), headers=["标题", "文号", "发文机关", "发布日期", "施行日期",
                                                                          "时效性", "条款数", "文件名", "导入提示"],
                                         interactive=False, wrap=True, elem_id="pqa-doc-table", max_height=360,
                                         column_widths=["24%", "11%", "10%", "8%", "8%", "6%", "5%", "12%", "16%"])
                    with gr.Row(equal_height=False):
                        with gr.Column(scale=2):
                            doc_select = gr.Dropdown(self.doc_choices(), label="文件", elem_id="pqa-doc-select")
                            outline = gr.HTML(self.render_outline(None), elem_id="pqa-outline", js_on_load=CLICK_JS)
                        with gr.Column(scale=3):
                            doc_clause = gr.HTML(DOCVIEW_PLACEHOLDER, elem_id="pqa-doc-clause", js_on_load=SCROLL_JS)
                    gr.Markdown(f"#### 上传文件\n支持 {' '.join(SUPPORTED_SUFFIXES)}，单个文件不超过 "
                                f"{size_text(self.settings.max_upload_bytes)}。文件在后台导入，可随时取消；导入完成后即可检索，导入失败或取消时索引保持不变。")
                    upload = gr.File(label="上传政策文件", file_types=list(SUPPORTED_SUFFIXES), type="filepath",
                                     elem_id="pqa-upload")
                    upload_status = gr.HTML(self.render_uploads(), elem_id="pqa-upload-status", js_on_load=CLICK_JS)
                    watch = gr.State({})  # this session's view of the upload queue (see poll_uploads)
                    timer = gr.Timer(self.settings.upload_poll_s)

                with gr.Tab("评估", id="evaluate"):
                    items = gr.State([])
                    index = gr.State(0)
                    with gr.Row():
                        evaluator = gr.Textbox(label="评估人姓名", placeholder="评分按姓名分别保存", elem_id="pqa-evaluator",
                                               scale=1)
                        qset = gr.File(label="问题集（JSONL：{\"id\",\"question\",\"history\"?}）", file_types=[".jsonl", ".json"],
                                       type="filepath", elem_id="pqa-qset", scale=2)
                        with gr.Column(scale=1):
                            from_log = gr.Button("从对话记录载入", elem_id="pqa-from-log")
                            from_mine = gr.Button("载入我已评分的问题", elem_id="pqa-from-mine")
                    progress_md = gr.Markdown(elem_id="pqa-progress")
                    with gr.Row():
                        prev_btn = gr.Button("← 上一个", size="sm", scale=0)
                        selector = gr.Dropdown([], label="问题", elem_id="pqa-item-select", scale=4)
                        next_btn = gr.Button("下一个 →", size="sm", scale=0, elem_id="pqa-next")
                    with gr.Row(equal_height=False):
                        with gr.Column(scale=3):
                            item_html = gr.HTML(EVAL_PLACEHOLDER, elem_id="pqa-eval-item", js_on_load=CLICK_JS)
                            with gr.Column(visible=False) as eval_doc_box:
                                close_eval_doc = gr.Button("关闭原文", size="sm")
                                eval_doc = gr.HTML(DOCVIEW_PLACEHOLDER, elem_id="pqa-eval-doc", js_on_load=SCROLL_JS)
                        with gr.Column(scale=2):
                            correctness = gr.Radio([1, 2, 3, 4, 5], label="正确性（1 错误 – 5 完全正确）", elem_id="pqa-correctness",
                                                   interactive=False)
                            completeness = gr.Radio([1, 2, 3, 4, 5], label="完整性（1 缺失 – 5 完整）", elem_id="pqa-completeness",
                                                    interactive=False)
                            abstain_ok = gr.Radio(YES_NO, label="拒答判断是否正确（该拒答时拒答、该回答时回答）",
                                                  elem_id="pqa-abstain-ok", interactive=False)
                            cite_radios = [gr.Radio(YES_NO, label=f"引用 [{k + 1}]", visible=False, elem_id=f"pqa-cite-{k + 1}")
                                           for k in range(self.max_citations)]
                            comment = gr.Textbox(label="备注", lines=2, elem_id="pqa-comment", interactive=True)
                            save_status = gr.Markdown(elem_id="pqa-save-status")
                    with gr.Accordion("导出与一致性", open=False):
                        with gr.Row():
                            export_csv = gr.Button("导出 CSV")
                            export_jsonl = gr.Button("导出 JSONL")
                            agree_btn = gr.Button("计算评估人一致性")
                        export_file = gr.File(label="导出的文件", interactive=False)
                        agree_html = gr.HTML()

            # ---- chat wiring: the API endpoint and the UI share one concurrency group
            chat_io = dict(inputs=[question, turns, docs, mode, display], outputs=[chatbot, sources, turns, question],
                           concurrency_id="ask", api_visibility="private")
            question.submit(self.respond, **chat_io)
            gr.api(self.api_ask, api_name="ask", concurrency_id="ask")
            display.change(self.redisplay, [turns, display], [chatbot, sources], api_visibility="private")
            clear.click(self.clear_chat, None, [chatbot, sources, turns, docview_box, docview], api_visibility="private")
            sources.click(self.open_citation, [turns, display], [docview_box, docview], scroll_to_output=True,
                          api_visibility="private")
            close_doc.click(lambda: gr.update(visible=False), None, docview_box, api_visibility="private")

            # ---- documents
            doc_select.change(self.select_document, doc_select, [outline, doc_clause], api_visibility="private")
            outline.click(self.open_outline_clause, None, doc_clause, api_visibility="private")
            # the handler only checks and queues the file; the timer shows progress and the new lists
            upload.upload(self.on_upload, [upload, watch], [upload_status, watch], api_visibility="private") \
                .then(lambda: None, None, upload, api_visibility="private")
            upload_status.click(self.on_job_click, None, upload_status, api_visibility="private")
            timer.tick(self.poll_uploads, watch, [upload_status, table, docs, doc_select, outline, doc_clause, watch],
                       api_visibility="private", show_progress="hidden")
            demo.load(self.refresh_lists, watch, [table, docs, doc_select, watch], api_visibility="private")

            # ---- evaluation: every widget saves on input (user changes only, not when an item is shown)
            shown = [items, index, selector, item_html, progress_md, correctness, completeness, abstain_ok, comment,
                     *cite_radios]
            qset.upload(self.load_question_set, [qset, evaluator], shown, api_visibility="private")
            from_log.click(self.load_chat_log, [evaluator], shown, api_visibility="private")
            from_mine.click(self.load_my_ratings, [evaluator], shown, api_visibility="private")
            selector.input(self.go_to, [items, evaluator, selector], shown, api_visibility="private")
            prev_btn.click(lambda it, ev, i: self.go_to(it, ev, i, -1), [items, evaluator, index], shown,
                           api_visibility="private")
            next_btn.click(lambda it, ev, i: self.go_to(it, ev, i, 1), [items, evaluator, index], shown,
                           api_visibility="private")
            evaluator.change(self.on_evaluator_change, [items, evaluator, index], shown, trigger_mode="always_last",
                             api_visibility="private")
            for widget, field in [(correctness, "correctness"), (completeness, "completeness"),
                                  (abstain_ok, "abstain_ok")] + [(r, f"cite:{k}") for k, r in enumerate(cite_radios)]:
                widget.input(lambda ev, it, i, v, f=field: self.save_rating(ev, it, i, f, v),
                             [evaluator, items, index, widget], [save_status, progress_md],
                             trigger_mode="always_last", api_visibility="private")
            # text typed through an input method (IME) or pasted does not always raise `input`;
            # `change` always does, and save_rating ignores a comment equal to the stored one
            gr.on([comment.change, comment.blur], lambda ev, it, i, v: self.save_rating(ev, it, i, "comment", v),
                  [evaluator, items, index, comment], [save_status, progress_md], trigger_mode="always_last",
                  api_visibility="private")
            correctness.input(lambda it, ev, i: gr.update(choices=self._item_choices(it, ev), value=i),
                              [items, evaluator, index], selector, api_visibility="private")
            item_html.click(self.open_item_citation, [items, index], [eval_doc_box, eval_doc], api_visibility="private")
            close_eval_doc.click(lambda: gr.update(visible=False), None, eval_doc_box, api_visibility="private")
            export_csv.click(lambda: self.export_ratings("csv"), None, export_file, api_visibility="private")
            export_jsonl.click(lambda: self.export_ratings("jsonl"), None, export_file, api_visibility="private")
            agree_btn.click(self.agreement_html, None, agree_html, api_visibility="private")

        # the Assistant is thread-safe for ask; uploads run one at a time in the UploadQueue worker
        demo.queue(default_concurrency_limit=8, max_size=256)
        self.demo = demo
        return demo

    def blocked_paths(self) -> list[str]:
        """Paths the server must never serve: the code, the index, uploads, ratings and the chat log."""
        db = Path(self.settings.ratings_db).resolve()
        paths = [REPO_ROOT, Path(self.settings.index_dir).resolve(), self.uploads_dir, self.chat_log.path,
                 *(self.chat_log.rotated(k) for k in range(1, self.chat_log.keep + 1)),
                 Path(self.settings.corpus_dir).resolve(), db, db.with_name(db.name + "-wal"),
                 db.with_name(db.name + "-shm")]
        return sorted({str(p) for p in paths})

    def launch(self, **kwargs):
        """Serve on settings.host:settings.port (kwargs override launch() arguments)."""
        demo = self.demo or self.create_app()
        options = dict(server_name=self.settings.host, server_port=self.settings.port, css=CSS, ssr_mode=False,
                       allowed_paths=[], blocked_paths=self.blocked_paths(),
                       max_file_size=self.settings.max_upload_bytes, show_error=True, footer_links=["api"])
        options.update(kwargs)
        return demo.launch(**options)


def build_app(assistant, settings: Settings | None = None) -> gr.Blocks:
    """The Gradio Blocks for an Assistant (not launched)."""
    return PolicyQAApp(assistant, settings).create_app()


def main() -> int:
    from assistant.core import Assistant

    settings = Settings.from_env()
    print(f"PolicyQA: opening the index at {settings.index_dir} (built from {settings.corpus_dir} on first start)",
          file=sys.stderr)
    try:
        assistant = Assistant.from_settings(settings, progress=True)
    except PolicyQAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"PolicyQA: {len(assistant.data.docs)} documents, {len(assistant.data.chunks)} chunks; "
          f"answerer: {'extractive + LLM' if assistant.llm_available else 'extractive'}", file=sys.stderr)
    PolicyQAApp(assistant, settings).launch()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    sys.exit(main())
