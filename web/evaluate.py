"""The Evaluate tab: people rate answers (correctness, completeness, the abstention, each citation),
each field saved the moment it is entered, per evaluator, in the RatingsStore.

Items to rate come from a question set (JSONL), the chat log, or an evaluator's earlier ratings;
an item someone already rated shows the very answer they rated.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import gradio as gr

from assistant.history import plain_history
from assistant.types import Answer, answer_from_json
from index.errors import PolicyQAError
from web.assets import CLICK_JS, SCROLL_JS
from web.chatlog import ChatLog, Turn
from web.documents import open_cited_clause
from web.ratings import RatingsStore, agreement
from web.render import DOCVIEW_PLACEHOLDER, EVAL_PLACEHOLDER, esc, md_escape, rated_item_html
from web.uploads import uploaded_path

MAX_CITATIONS = 8  # rating widgets for citation marks; more if settings.top_k is larger
SCORES = [1, 2, 3, 4, 5]
YES_NO = [("正确", "yes"), ("错误", "no")]
CHAT_LOG_ITEMS = 200  # the latest answered questions "从对话记录载入" offers


def rated_answer(row: dict) -> Answer:
    """The answer a stored rating was given for (an empty one where none was stored)."""
    return answer_from_json(json.loads(row.get("answer_json") or "{}"))


class EvaluateTab:
    """The Evaluate tab's handlers and layout over one Assistant, RatingsStore and chat log."""

    def __init__(self, assistant, settings, ratings: RatingsStore, chat_log: ChatLog):
        self.assistant = assistant
        self.settings = settings
        self.ratings = ratings
        self.chat_log = chat_log
        self.max_citations = max(MAX_CITATIONS, settings.top_k)

    # ---------------------------------------------------------------- items to rate

    def _stored_answer(self, evaluator: str, item_id: str, question: str) -> Answer | None:
        """An answer some evaluator already rated for this item (own first), so raters see the same answer."""
        rows = [r for r in self.ratings.all() if r["item_id"] == item_id and r.get("answer_json")]
        rows.sort(key=lambda r: r["evaluator"] != evaluator)
        return next((a for a in map(rated_answer, rows) if a.question == question), None)

    def _answer(self, question: str, history: tuple[dict, ...]) -> Answer:
        """The assistant's answer now; an error becomes an answer that says so."""
        try:
            return self.assistant.ask(question, list(history))
        except PolicyQAError as exc:
            return Answer(question=question, text=f"（出错：{exc}）", notices=(str(exc),))

    def load_question_set(self, file, evaluator: str, progress=gr.Progress()):
        """Questions from a JSONL file ({"id","question","history"?}, or batch output rows with answers)."""
        if not file:
            raise gr.Error("请选择问题集文件（JSONL）。")
        try:
            lines = uploaded_path(file).read_text(encoding="utf-8").splitlines()
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
            history = tuple(plain_history(row.get("history")))
            if "answer" in row and "citations" in row:  # a batch output row: rated as given
                answer = answer_from_json(row)
            else:
                answer = self._stored_answer(evaluator, item_id, question) or self._answer(question, history)
            items.append(Turn(item_id, question, answer, history))
        note = f"已载入 {len(items)} 个问题" + (f"；第 {', '.join(map(str, bad[:10]))} 行无法解析，已跳过" if bad else "")
        gr.Info(note, duration=4)
        return self._show_items(items, evaluator, 0)

    def load_chat_log(self, evaluator: str, limit: int = CHAT_LOG_ITEMS):
        """The latest answered questions from the chat log (all users of this server)."""
        rows = self.chat_log.latest(limit)
        if not rows:
            raise gr.Error("还没有对话记录：先在“问答”页提问。")
        return self._show_items([Turn.from_json(row) for row in rows], evaluator, 0)

    def load_my_ratings(self, evaluator: str):
        """The items this evaluator has already rated (after a reload or a restart)."""
        evaluator = (evaluator or "").strip()
        if not evaluator:
            raise gr.Error("请先填写评估人姓名。")
        items = [Turn(r["item_id"], r["question"] or "", rated_answer(r)) for r in self.ratings.all(evaluator)]
        if not items:
            raise gr.Error(f"评估人“{evaluator}”还没有保存过评分。")
        return self._show_items(items, evaluator, 0)

    # ---------------------------------------------------------------- showing an item

    def _item_choices(self, items: list[Turn], evaluator: str) -> list[tuple[str, int]]:
        rated = {r["item_id"] for r in self.ratings.all((evaluator or "").strip())
                 if r["correctness"] is not None} if (evaluator or "").strip() else set()
        return [(f"{'✓' if it.id in rated else '·'} {it.id}：{it.question[:30]}", i) for i, it in enumerate(items)]

    def progress_text(self, items: list[Turn], evaluator: str) -> str:
        evaluator = (evaluator or "").strip()
        if not items:
            return ""
        if not evaluator:
            return f"共 {len(items)} 个问题。填写评估人姓名后开始评分。"
        done, total = self.ratings.progress(evaluator, [it.id for it in items])
        return f"**{md_escape(evaluator)}** 的进度：已评 {done} / {total}"

    def _rating_widgets(self, item: Turn | None, evaluator: str) -> list:
        """Values of: correctness, completeness, abstain_ok, comment, then one radio per possible citation."""
        stored = self.ratings.get(evaluator.strip(), item.id) if item and (evaluator or "").strip() else None
        stored = stored or {}
        abstain = stored.get("abstain_ok")
        out = [gr.update(value=stored.get("correctness"), interactive=bool(item)),
               gr.update(value=stored.get("completeness"), interactive=bool(item)),
               gr.update(value=None if abstain is None else ("yes" if abstain else "no"), interactive=bool(item)),
               gr.update(value=stored.get("comment") or "")]
        cites = item.answer.citations if item else ()
        marks = stored.get("citation_marks") or {}
        for k in range(self.max_citations):
            if k < len(cites):
                mark = marks.get(str(cites[k].n))
                out.append(gr.update(visible=True, label=f"引用 [{cites[k].n}] {cites[k].label} 是否正确",
                                     value=None if mark is None else ("yes" if mark else "no")))
            else:
                out.append(gr.update(visible=False, value=None))
        return out

    def _show_items(self, items: list[Turn], evaluator: str, index: int) -> list:
        """Outputs after loading a set or moving: items, index, selector, item HTML, progress, widgets..."""
        index = max(0, min(index, len(items) - 1)) if items else 0
        item = items[index] if items else None
        shown = rated_item_html(item.id, item.question, item.history, item.answer) if item else EVAL_PLACEHOLDER
        return [items, index, gr.update(choices=self._item_choices(items, evaluator), value=index if items else None),
                shown, self.progress_text(items, evaluator)] + self._rating_widgets(item, evaluator)

    def go_to(self, items: list[Turn], evaluator: str, index, delta: int = 0):
        index = (int(index) if index is not None else 0) + delta
        return self._show_items(items or [], evaluator, index)

    def on_evaluator_change(self, items: list[Turn], evaluator: str, index):
        """Show the newly named evaluator's ratings of the current item.

        Never replaces the loaded items: typing a name and at once loading a set runs both
        events side by side, and this one (holding the older, possibly empty, list) may finish last.
        """
        if not items:
            return [gr.update()] * (5 + 4 + self.max_citations)
        out = self._show_items(items, evaluator, int(index or 0))
        return [gr.update(), gr.update(), out[2], gr.update(), out[4]] + out[5:]

    def open_item_citation(self, items: list[Turn], index, evt: gr.EventData):
        """A click on "view in document" in the item being rated."""
        if not items or index is None:
            return gr.update(), gr.update()
        return open_cited_clause(self.assistant.data, items[int(index)].answer.citations, evt)

    # ---------------------------------------------------------------- ratings

    def save_rating(self, evaluator: str, items: list[Turn], index, field: str, value) -> tuple[str, str]:
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
            try:
                stored = self.ratings.get(evaluator, item.id) or {}
            except PolicyQAError as exc:
                raise gr.Error(str(exc)) from exc
            if (stored.get("comment") or "") == (value or ""):
                return gr.update(), gr.update()  # shown, not edited: nothing to store
            kw[field] = value or ""
        elif field.startswith("cite:"):
            cites = item.answer.citations
            k = int(field.split(":")[1])
            if k >= len(cites) or value is None:
                return gr.update(), gr.update()
            kw["citation_marks"] = {str(cites[k].n): value == "yes"}
        else:
            raise ValueError(f"unknown rating field {field!r}")
        try:
            self.ratings.save(evaluator, item.id, question=item.question, answer_json=item.answer.to_json(), **kw)
            progress = self.progress_text(items, evaluator)
        except PolicyQAError as exc:
            raise gr.Error(str(exc)) from exc
        return f"已保存（{time.strftime('%H:%M:%S')}）", progress

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

    def build(self) -> None:
        """The tab and its events: every rating widget saves on input (user changes, not an item being shown)."""
        with gr.Tab("评估", id="evaluate"):
            items = gr.State([])  # the Turns being rated
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
                    correctness = gr.Radio(SCORES, label="正确性（1 错误 – 5 完全正确）", elem_id="pqa-correctness",
                                           interactive=False)
                    completeness = gr.Radio(SCORES, label="完整性（1 缺失 – 5 完整）", elem_id="pqa-completeness",
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

        shown = [items, index, selector, item_html, progress_md, correctness, completeness, abstain_ok, comment,
                 *cite_radios]
        private = dict(api_visibility="private")
        qset.upload(self.load_question_set, [qset, evaluator], shown, **private)
        from_log.click(self.load_chat_log, [evaluator], shown, **private)
        from_mine.click(self.load_my_ratings, [evaluator], shown, **private)
        selector.input(self.go_to, [items, evaluator, selector], shown, **private)
        prev_btn.click(lambda it, ev, i: self.go_to(it, ev, i, -1), [items, evaluator, index], shown, **private)
        next_btn.click(lambda it, ev, i: self.go_to(it, ev, i, 1), [items, evaluator, index], shown, **private)
        evaluator.change(self.on_evaluator_change, [items, evaluator, index], shown, trigger_mode="always_last",
                         **private)
        for widget, field in [(correctness, "correctness"), (completeness, "completeness"),
                              (abstain_ok, "abstain_ok")] + [(r, f"cite:{k}") for k, r in enumerate(cite_radios)]:
            widget.input(lambda ev, it, i, v, f=field: self.save_rating(ev, it, i, f, v),
                         [evaluator, items, index, widget], [save_status, progress_md],
                         trigger_mode="always_last", **private)
        # text typed through an input method (IME) or pasted does not always raise `input`;
        # `change` always does, and save_rating ignores a comment equal to the stored one
        gr.on([comment.change, comment.blur], lambda ev, it, i, v: self.save_rating(ev, it, i, "comment", v),
              [evaluator, items, index, comment], [save_status, progress_md], trigger_mode="always_last", **private)
        correctness.input(lambda it, ev, i: gr.update(choices=self._item_choices(it, ev), value=i),
                          [items, evaluator, index], selector, **private)
        item_html.click(self.open_item_citation, [items, index], [eval_doc_box, eval_doc], **private)
        close_eval_doc.click(lambda: gr.update(visible=False), None, eval_doc_box, **private)
        export_csv.click(lambda: self.export_ratings("csv"), None, export_file, **private)
        export_jsonl.click(lambda: self.export_ratings("jsonl"), None, export_file, **private)
        agree_btn.click(self.agreement_html, None, agree_html, **private)
