"""The Documents tab: the indexed documents, their clause outlines, the document viewer, and uploads.

`show_clause` is the document viewer every tab opens a citation in; a link `/?clause=<clause_id>`
(the id URL-encoded: '#' is '%23') opens this tab at that clause. Uploads are checked here and
indexed in the background by the tab's `UploadQueue`; every page's timer shows their progress,
and the document lists once the index changed, here or in another process serving the same index
(the timer has the Assistant look for a newer generation: `Assistant.refresh`).
"""
from __future__ import annotations

import gradio as gr

from index.errors import PolicyQAError
from index.ingest import precheck_upload, size_text
from index.load import SUPPORTED_SUFFIXES
from web.assets import CLICK_JS, SCROLL_JS, clicked
from web.render import DOCVIEW_PLACEHOLDER, document_view, esc, outline_html, warnings_summary
from web.uploads import STATE_ZH, UploadQueue, uploaded_path

TAB_ID = "documents"
TABLE_COLUMNS = [("标题", "24%"), ("文号", "11%"), ("发文机关", "10%"), ("发布日期", "8%"), ("施行日期", "8%"),
                 ("时效性", "6%"), ("条款数", "5%"), ("文件名", "12%"), ("导入提示", "16%")]
SHOWN_JOBS = 8  # the latest upload jobs listed under the upload box


def show_clause(data, clause_id: str, quote: str = "", script: str = "original", variant: str = "s2t") -> str:
    """The document viewer: the whole document with one clause highlighted (and its quote marked)."""
    clause = data.clauses.get(clause_id)
    if clause is None:
        raise gr.Error(f"条款 {clause_id} 不在当前索引中（文件可能已被移除）。")
    return document_view(data.docs[clause.doc_id], clause, quote, script, variant)


def open_cited_clause(data, citations, evt: gr.EventData, script: str = "original", variant: str = "s2t"):
    """A click on "在文件中查看" among `citations`: (show the viewer box, the clause with its quote marked)."""
    sent = clicked(evt)
    clause_id, n = sent.get("clause_id"), str(sent.get("n") or "")
    if not clause_id:
        return gr.update(), gr.update()
    quote = next((c.quote for c in citations if c.clause_id == clause_id and n in ("", str(c.n))), "")
    return gr.update(visible=True), show_clause(data, clause_id, quote, script, variant)


def doc_choices(data) -> list[tuple[str, str]]:
    """The indexed documents as dropdown choices: ('title（file name）', doc_id)."""
    return [(f"{d.title}（{d.source}）", d.doc_id) for d in data.docs.values()]


class DocumentsTab:
    """The Documents tab's handlers and layout; it owns the upload queue."""

    def __init__(self, assistant, settings):
        self.assistant = assistant
        self.settings = settings
        self.uploads = UploadQueue(self._run_upload, max_waiting=settings.max_queued_uploads)

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
        return outline_html(self.assistant.data.docs.get(doc_id or ""))

    def open_outline_clause(self, evt: gr.EventData):
        """A click on a clause in the outline: show it in its document."""
        clause_id = clicked(evt).get("clause_id")
        return show_clause(self.assistant.data, clause_id) if clause_id else gr.update()

    def select_document(self, doc_id: str | None):
        """A document chosen: (its outline, the document at its first clause)."""
        doc = self.assistant.data.docs.get(doc_id or "")
        view = show_clause(self.assistant.data, doc.clauses[0].clause_id) if doc and doc.clauses else DOCVIEW_PLACEHOLDER
        return self.render_outline(doc_id), view

    def open_link(self, request: gr.Request):
        """A page opened as /?clause=<clause_id>: this tab, with the clause's document and the clause shown.

        Outputs: tabs, document choice, outline, clause view (all unchanged without a `clause`).
        """
        clause_id = dict(request.query_params).get("clause") if request else None
        if not clause_id:
            return [gr.update()] * 4
        data = self.assistant.data
        view = show_clause(data, clause_id)
        doc_id = data.clauses[clause_id].doc_id
        return gr.Tabs(selected=TAB_ID), gr.update(value=doc_id), self.render_outline(doc_id), view

    # ---------------------------------------------------------------- uploads

    def upload_document(self, file, wait: bool = True, timeout_s: float = 3600):
        """Check an uploaded file and queue it for indexing in the background.

        With `wait` (scripts, tests) block until it is indexed and return what the upload event
        shows at the end: (status, table, chat filter choices, document choice). Without it,
        return the queued job at once; the sessions' timers show the rest.
        A refusal raises gr.Error with a Chinese message that says the index is unchanged.
        """
        if not file:
            raise gr.Error("请选择要上传的文件。")
        src = uploaded_path(file)
        try:  # refused at once, before queueing: such a file never reaches the index
            job = self.uploads.submit(src, precheck_upload(self.settings, src))
        except PolicyQAError as exc:
            raise gr.Error(str(exc)) from exc
        if not wait:
            return job
        view = self.uploads.wait(job.id, timeout_s)
        if view is None:
            raise gr.Error(f"“{job.name}”在 {timeout_s:.0f} 秒内未导入完成，仍在后台进行。")
        if view.state != "done":
            raise gr.Error(view.message)
        choices = doc_choices(self.assistant.data)
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
        for v in self.uploads.snapshot()[-SHOWN_JOBS:]:
            bar = (f'<progress max="100" value="{v.fraction * 100:.0f}"></progress> {v.fraction:.0%} {esc(v.step)}'
                   if v.state == "running" else "")
            cancel = (f'<button class="pqa-open" data-job="{esc(v.id)}">取消</button>'
                      if v.state in ("queued", "running") else "")
            message = f'<div class="pqa-job-message">{esc(v.message)}</div>' if v.message else ""
            rows.append(f'<li class="pqa-job pqa-job-{v.state}"><b>{esc(v.name)}</b> · {STATE_ZH[v.state]} {bar} '
                        f'{cancel}{message}</li>')
        return f'<ul class="pqa-jobs">{"".join(rows)}</ul>' if rows else ""

    def on_job_click(self, evt: gr.EventData):
        """A click on a job's cancel button."""
        job_id = clicked(evt).get("job")
        if job_id:
            self.uploads.cancel(str(job_id))
        return self.render_uploads()

    def poll_uploads(self, watch: dict | None):
        """Every session's timer: refresh the queue, and the document lists when the index changed,
        by an upload here or a generation another process published (loaded here first, at most
        every settings.reload_check_s, so the lists change without anyone asking a question).

        Outputs: upload status, table, chat filter, document choice, outline, clause view, watch.
        A session that uploaded a file gets that document selected once it is indexed.
        """
        watch = dict(watch or {})
        self.assistant.refresh()
        status = self.render_uploads()
        out = [gr.update() if status == watch.get("status") else status] + [gr.update()] * 5
        watch["status"] = status
        mine = list(watch.get("mine") or [])
        views = {v.id: v for v in self.uploads.snapshot()}
        done_mine = [views[j] for j in mine if j in views and views[j].finished]
        watch["mine"] = [j for j in mine if j in views and not views[j].finished]
        data = self.assistant.data
        if watch.get("completed", 0) != self.uploads.completed or watch.get("generation") != data.location:
            watch.update(completed=self.uploads.completed, generation=data.location)
            choices = doc_choices(data)
            out[1:4] = [self.documents_table(), gr.update(choices=choices), gr.update(choices=choices)]
        selected = next((v.doc_id for v in reversed(done_mine) if v.state == "done"), "")
        if selected and selected in self.assistant.data.docs:
            out[3] = gr.update(choices=doc_choices(self.assistant.data), value=selected)
            out[4:6] = list(self.select_document(selected))
        return out + [watch]

    def refresh_lists(self, watch: dict | None):
        """A page load: the documents as they are now, not as they were when the app started."""
        data = self.assistant.data
        watch = dict(watch or {}, completed=self.uploads.completed, generation=data.location)
        choices = doc_choices(data)
        return self.documents_table(), gr.update(choices=choices), gr.update(choices=choices), watch

    # ---------------------------------------------------------------- layout

    def build(self, demo: gr.Blocks, tabs: gr.Tabs, chat_docs: gr.Dropdown) -> None:
        """The tab and its events; `chat_docs` (the chat's document filter) follows the document list."""
        with gr.Tab("文件", id=TAB_ID):
            gr.Markdown("已收录的文件。选择文件查看条款目录，点击条款查看原文位置。")
            table = gr.Dataframe(self.documents_table(), headers=[name for name, _ in TABLE_COLUMNS],
                                 interactive=False, wrap=True, elem_id="pqa-doc-table", max_height=360,
                                 column_widths=[width for _, width in TABLE_COLUMNS])
            with gr.Row(equal_height=False):
                with gr.Column(scale=2):
                    doc_select = gr.Dropdown(doc_choices(self.assistant.data), label="文件", elem_id="pqa-doc-select")
                    outline = gr.HTML(self.render_outline(None), elem_id="pqa-outline", js_on_load=CLICK_JS)
                with gr.Column(scale=3):
                    doc_clause = gr.HTML(DOCVIEW_PLACEHOLDER, elem_id="pqa-doc-clause", js_on_load=SCROLL_JS)
            gr.Markdown(f"#### 上传文件\n支持 {' '.join(SUPPORTED_SUFFIXES)}，单个文件不超过 "
                        f"{size_text(self.settings.max_upload_bytes)}。文件在后台导入，可随时取消；导入完成后即可检索，"
                        "导入失败或取消时索引保持不变。")
            upload = gr.File(label="上传政策文件", file_types=list(SUPPORTED_SUFFIXES), type="filepath",
                             elem_id="pqa-upload")
            upload_status = gr.HTML(self.render_uploads(), elem_id="pqa-upload-status", js_on_load=CLICK_JS)
            watch = gr.State({})  # this session's view of the upload queue (see poll_uploads)
            timer = gr.Timer(self.settings.upload_poll_s)

        # `input`, not `change`: a document selected by a handler (a link, an upload) comes with its own view
        doc_select.input(self.select_document, doc_select, [outline, doc_clause], api_visibility="private")
        outline.click(self.open_outline_clause, None, doc_clause, api_visibility="private")
        # the handler only checks and queues the file; the timer shows progress and the new lists
        upload.upload(self.on_upload, [upload, watch], [upload_status, watch], api_visibility="private") \
            .then(lambda: None, None, upload, api_visibility="private")
        upload_status.click(self.on_job_click, None, upload_status, api_visibility="private")
        timer.tick(self.poll_uploads, watch, [upload_status, table, chat_docs, doc_select, outline, doc_clause, watch],
                   api_visibility="private", show_progress="hidden")
        demo.load(self.refresh_lists, watch, [table, chat_docs, doc_select, watch], api_visibility="private") \
            .then(self.open_link, None, [tabs, doc_select, outline, doc_clause], api_visibility="private")
