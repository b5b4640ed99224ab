"""Rendering answers, citations and documents for the chat, the sources panel, the evaluate tab
and the API: one renderer, from `Answer` and `Citation` objects (stored JSON is read back with
`answer_from_json` first), and everything taken from a document or an answer is escaped first.

HTML panels get `esc` (HTML entities, plus the characters Gradio's templates would interpret);
Markdown (the chat bubbles, the API's answer text) gets `md_escape`, so quoted document text
shows as text whatever characters it holds.
"""
from __future__ import annotations

import html
import re
from collections.abc import Callable

from assistant.types import Answer, Citation
from index.normalize import detect_script, detect_variant, to_script, to_simplified

SOURCES_PLACEHOLDER = '<div class="pqa-empty">提问后，这里显示答案引用的条款原文。</div>'
DOCVIEW_PLACEHOLDER = '<div class="pqa-empty">点击来源中的“在文件中查看”，这里显示整篇文件并定位到该条款。</div>'
OUTLINE_PLACEHOLDER = '<div class="pqa-empty">选择一个文件查看其条款目录。</div>'
EVAL_PLACEHOLDER = '<div class="pqa-empty">填写评估人姓名，再载入问题集（JSONL）、对话记录或已保存的评分。</div>'

# char -> what Markdown must receive to show it: entities for HTML, a backslash for the rest
# (the marks CommonMark/GFM give a meaning to, autolinks' ':' '/' '@' and math's '$' included;
# '?', ',', ';' and the like stay as they are)
_MD_ESCAPES = {ch: "\\" + ch for ch in "\\`*_{}[]()#+-.!|~$:/@=^%'"}
_MD_ESCAPES.update({"<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;"})


def esc(text) -> str:
    """HTML-escape text, including the characters Gradio's HTML templates would interpret.

    >>> esc('<script>a{{b}}${c}</script>')
    '&lt;script&gt;a&#123;&#123;b&#125;&#125;&#36;&#123;c&#125;&lt;/script&gt;'
    """
    s = html.escape(str(text or ""), quote=True)
    return s.replace("{", "&#123;").replace("}", "&#125;").replace("$", "&#36;")


def md_escape(text: str) -> str:
    """Text that Markdown renders as exactly these characters: no images, links, markup or math.

    HTML's special characters become entities and every other ASCII punctuation mark is
    backslash-escaped, so `![x](http://host/t.png)` cannot become an image, `http://...` or
    `www.` cannot become a link, and `$$..$$` cannot become math.

    >>> md_escape('![x](http://h/t.png) <b>')
    '\\!\\[x\\]\\(http\\:\\/\\/h\\/t\\.png\\) &lt;b&gt;'
    """
    return "".join(_MD_ESCAPES.get(ch, ch) for ch in str(text or ""))


def convert(text: str, script: str, variant: str = "s2t") -> str:
    """Text in the display script: 'traditional' (OpenCC variant), 'simplified', or 'original'."""
    if not text or script == "original":
        return text or ""
    return to_script(text, "traditional", variant) if script == "traditional" else to_simplified(text)


def find_span(text: str, quote: str) -> tuple[int, int] | None:
    """(start, end) of `quote` in `text`, ignoring script and whitespace differences; None if absent.

    >>> find_span("一、社會保險 覆蓋面", "社会保险覆盖面")
    (2, 10)
    """
    quote = (quote or "").strip()
    if not quote or not text:
        return None
    i = text.find(quote)
    if i >= 0:
        return i, i + len(quote)
    simp_text, simp_quote = to_simplified(text), to_simplified(quote)
    if len(simp_text) == len(text):
        i = simp_text.find(simp_quote)
        if i >= 0:
            return i, i + len(simp_quote)
    # whitespace inside the quote may differ from the text (line breaks, full-width spaces)
    chars = [re.escape(c) for c in re.sub(r"\s+", "", simp_quote)]
    if not chars:
        return None
    m = re.compile(r"\s*".join(chars)).search(simp_text if len(simp_text) == len(text) else text)
    return (m.start(), m.end()) if m else None


def highlight(text: str, quote: str, script: str = "original", variant: str = "s2t") -> str:
    """Escaped `text` in the display script with the quoted words wrapped in <mark>."""
    span = find_span(text, quote)
    if span is None:
        return esc(convert(text, script, variant))
    a, b = span
    return (esc(convert(text[:a], script, variant)) + "<mark>" + esc(convert(text[a:b], script, variant))
            + "</mark>" + esc(convert(text[b:], script, variant)))


def script_of(answer: Answer, display: str) -> tuple[str, str]:
    """(script, OpenCC variant) an answer is shown in: the question's script unless the user chose one."""
    script = answer.script if display in (None, "", "auto") else display
    variant = detect_variant(answer.question) if detect_script(answer.question) == "traditional" else "s2t"
    return script, variant


def answer_markdown(answer: Answer, script: str | None = None, variant: str = "s2t") -> str:
    """An answer for the chat bubble and the API: text with [n] markers, notices, sources list."""
    script = script or answer.script
    c = lambda t: convert(t, script, variant)  # noqa: E731
    lines = []
    if answer.outcome == "abstained":
        lines.append("⚠️ **" + c("未找到依据") + "**")
    elif answer.outcome == "uncertain":
        lines.append("❔ **" + c("依据不确定，请核对原文") + "**" + confidence_note(answer, c))
    lines += [md_escape(c(part)) for part in answer.text.split("\n") if part.strip()]  # a paragraph a line
    if answer.rewritten_query and answer.rewritten_query != answer.question:
        lines.append("*" + c("检索问题（按上文改写）") + "：" + md_escape(c(answer.rewritten_query)) + "*")
    for note in answer.notices:
        lines.append("> " + c("提示") + "：" + md_escape(c(note)))
    if answer.citations:
        lines.append(c("来源") + "：" + "；".join(
            f"[{x.n}] 《{md_escape(c(x.title))}》{md_escape(c(x.label))}" for x in answer.citations))
    elif answer.abstained and answer.related:
        lines.append(c("可能相关的条款见右侧“来源”栏（仅供参考）。"))
    return "\n\n".join(lines)


def confidence_note(answer: Answer, c) -> str:
    """'（置信度 73%）' when the answerability model gave one, else ''."""
    conf = answer.confidence
    return f"（{c('置信度')} {conf:.0%}）" if conf is not None and conf == conf else ""


def citation_card(cite: Citation, script: str, variant: str, quote: bool = True, heading: str = "") -> str:
    """One source: [n], label, heading path, document and 文号, full clause text with the quote marked."""
    c = lambda t: convert(t, script, variant)  # noqa: E731
    path = " › ".join(list(cite.headings) + ([heading] if heading else []))
    page = f" · {c('第')}{cite.page}{c('页')}" if cite.page else ""
    docno = f'<span class="pqa-docno">{esc(c(cite.doc_number))}</span>' if cite.doc_number else ""
    if cite.version:  # which text of a regulation amended over the years is quoted
        docno += f'<span class="pqa-version">{esc(cite.version)} {esc(c("版"))}</span>'
    text = highlight(cite.text, cite.quote if quote else "", script, variant)
    return (f'<article class="pqa-cite" data-n="{esc(cite.n)}">'
            f'<header><span class="pqa-n">[{esc(cite.n)}]</span>'
            f'<span class="pqa-label">{esc(c(cite.label or "（无编号）"))}</span></header>'
            + (f'<div class="pqa-path">{esc(c(path))}</div>' if path else "")
            + f'<div class="pqa-doc">《{esc(c(cite.title))}》{docno}{esc(page)}</div>'
            f'<div class="pqa-text">{text}</div>'
            f'<button class="pqa-open" data-clause="{esc(cite.clause_id)}" data-n="{esc(cite.n)}">'
            f'{esc(c("在文件中查看"))}</button></article>')


def _answer_notes(answer: Answer, c) -> str:
    """The rewritten follow-up (where it differs from the question) and the notices, as HTML."""
    parts = []
    if answer.rewritten_query and answer.rewritten_query != answer.question:
        parts.append(f'<div class="pqa-rewritten">{esc(c("追问已按上文改写为"))}：<b>{esc(c(answer.rewritten_query))}</b></div>')
    parts += [f'<div class="pqa-notice">{esc(c("提示"))}：{esc(c(note))}</div>' for note in answer.notices]
    return "".join(parts)


def sources_html(answer: Answer, script: str = "original", variant: str = "s2t",
                 heading_of: Callable[[str], str] = lambda clause_id: "") -> str:
    """The chat's sources panel: abstention or uncertainty, rewritten query, notices, citation cards.

    `heading_of(clause_id)` names the cited clause's own heading (shown after its heading path).
    """
    c = lambda t: convert(t, script, variant)  # noqa: E731
    parts = ['<div class="pqa-sources">']
    if answer.outcome == "uncertain":
        parts.append(f'<div class="pqa-uncertain"><b>{esc(c("依据不确定"))}{esc(confidence_note(answer, c))}</b>'
                     f'{esc(c("下列条款与问题最接近，但不能确定它们回答了这个问题，请核对原文。"))}</div>')
    if answer.abstained:
        parts.append(f'<div class="pqa-abstain"><b>{esc(c("未找到依据（系统拒答）"))}</b>{esc(c(answer.text))}'
                     f'{esc(c("下列条款只是与问题最接近的内容，可能相关，不构成答复。")) if answer.related else ""}</div>')
    parts.append(_answer_notes(answer, c))
    if answer.abstained:
        if answer.related:
            parts.append(f'<div class="pqa-related-title">{esc(c("可能相关的条款"))}</div>')
        parts += [citation_card(x, script, variant, quote=False, heading=heading_of(x.clause_id)) for x in answer.related]
    else:
        parts += [citation_card(x, script, variant, heading=heading_of(x.clause_id)) for x in answer.citations]
    parts.append("</div>")
    return "".join(parts)


def rated_item_html(item_id: str, question: str, history, answer: Answer) -> str:
    """One question with its answer and numbered citations, as the evaluator sees it (original script)."""
    c = str
    parts = [f'<div class="pqa-eval-item"><div class="pqa-doc-meta">编号 {esc(item_id)}</div>',
             f'<div class="pqa-question">问：{esc(question)}</div>']
    if history:
        shown = " / ".join(f"{'问' if h['role'] == 'user' else '答'}：{h['content'][:60]}" for h in list(history)[-4:])
        parts.append(f'<div class="pqa-history">上文：{esc(shown)}</div>')
    if answer.abstained:
        parts.append(f'<div class="pqa-abstain"><b>系统拒答</b>{esc(answer.text)}</div>')
    elif answer.outcome == "uncertain":
        parts.append(f'<div class="pqa-uncertain"><b>依据不确定{esc(confidence_note(answer, c))}</b>{esc(answer.text)}</div>')
    else:
        parts.append(f'<div class="pqa-answer">答：{esc(answer.text)}</div>')
    parts.append(_answer_notes(answer, c))
    parts.append('<div class="pqa-sources">')
    parts += [citation_card(x, "original", "s2t") for x in answer.citations]
    if answer.abstained:
        parts += [citation_card(x, "original", "s2t", quote=False) for x in answer.related]
    parts.append("</div></div>")
    return "".join(parts)


def document_body(doc, start: int, end: int, quote: str = "", script: str = "original", variant: str = "s2t") -> str:
    """Escaped document text with [start, end) wrapped as the target clause and `quote` marked in it.

    A line break is added before every clause that does not start a line, so documents whose
    source had none still read clause by clause.
    """
    body = doc.text
    events: dict[int, list[str]] = {}  # position -> markup inserted there, in order
    for cl in doc.clauses:
        if 0 < cl.start < len(body) and body[cl.start - 1] != "\n":
            events.setdefault(cl.start, []).append("\n")
    if end > start:
        events.setdefault(start, []).append('<span class="pqa-clause pqa-target" id="pqa-target">')
        events.setdefault(end, []).insert(0, "</span>")
        span = find_span(body[start:end], quote)
        if span:  # registered after the clause span so that it nests inside it
            events.setdefault(start + span[0], []).append("<mark>")
            events.setdefault(start + span[1], []).insert(0, "</mark>")
    out, prev = [], 0
    for pos in sorted(events) + [len(body)]:
        out.append(esc(convert(body[prev:pos], script, variant)))
        out.extend(events.get(pos, []))
        prev = pos
    return "".join(out)


def document_view(doc, clause, quote: str = "", script: str = "original", variant: str = "s2t") -> str:
    """The whole document with `clause` highlighted (and its quote marked): title, meta, where, text."""
    c = lambda t: convert(t, script, variant)  # noqa: E731
    m = doc.meta
    meta = " · ".join(x for x in (m.doc_number, m.issuer, m.issue_date and f"发布 {m.issue_date}",
                                  m.effective_date and f"施行 {m.effective_date}", m.validity) if x)
    start, end = max(0, clause.start), min(len(doc.text), clause.end)
    if end <= start:  # offsets missing: find the clause text itself
        start, end = find_span(doc.text, clause.text) or (0, 0)
    path = " › ".join(list(clause.headings) + ([clause.heading] if clause.heading else []))
    page = f' · {esc(c("第"))}{clause.page}{esc(c("页"))}' if clause.page else ""
    return (f'<div class="pqa-docview"><h3>《{esc(c(doc.title))}》</h3>'
            f'<div class="pqa-doc-meta">{esc(c(meta)) or esc(c(doc.source))}</div>'
            f'<div class="pqa-doc-meta">{esc(c("定位"))}：<b class="pqa-label">{esc(c(clause.label or "（无编号）"))}</b>'
            f'{" · " + esc(c(path)) if path else ""}{page}</div>'
            f'<div class="pqa-doc-body">{document_body(doc, start, end, quote, script, variant)}</div></div>')


def outline_html(doc) -> str:
    """Clause outline of one document (一、 -> (一) -> 1.), each item a button naming its clause."""
    if doc is None:
        return OUTLINE_PLACEHOLDER
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


def warnings_summary(warnings, limit: int = 2, width: int = 40) -> str:
    """Ingestion warnings for a table cell: the first few, shortened; all of them show with the outline."""
    shown = [w if len(w) <= width else w[:width] + "…" for w in list(warnings)[:limit]]
    more = f"（另 {len(warnings) - limit} 条）" if len(warnings) > limit else ""
    return "；".join(shown) + more
