"""Rendering answers, citations and documents for the chat, the sources panel, the evaluate tab
and the API: one renderer, and everything taken from a document or an answer is escaped first.

HTML panels get `esc` (HTML entities, plus the characters Gradio's templates would interpret);
Markdown (the chat bubbles, the API's answer text) gets `md_escape`, so quoted document text
shows as text whatever characters it holds.
"""
from __future__ import annotations

import html
import re

from index.normalize import detect_script, detect_variant, to_script, to_simplified

SOURCES_PLACEHOLDER = '<div class="pqa-empty">提问后，这里显示答案引用的条款原文。</div>'
DOCVIEW_PLACEHOLDER = '<div class="pqa-empty">点击来源中的“在文件中查看”，这里显示整篇文件并定位到该条款。</div>'
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


def script_of(turn: dict, display: str) -> tuple[str, str]:
    """(script, OpenCC variant) an answer is shown in: the question's script unless the user chose one."""
    answer = turn.get("answer") or {}
    question = turn.get("question", "")
    if display in (None, "", "auto"):
        script = answer.get("script") or detect_script(question)
    else:
        script = display
    variant = detect_variant(question) if detect_script(question) == "traditional" else "s2t"
    return script, variant


def answer_markdown(answer: dict, script: str | None = None, variant: str = "s2t") -> str:
    """An answer for the chat bubble and the API: text with [n] markers, notices, sources list."""
    script = script or answer.get("script", "simplified")
    c = lambda t: convert(t, script, variant)  # noqa: E731
    lines = []
    outcome = answer_outcome(answer)
    if outcome == "abstained":
        lines.append("⚠️ **" + c("未找到依据") + "**")
    elif outcome == "uncertain":
        lines.append("❔ **" + c("依据不确定，请核对原文") + "**" + confidence_note(answer, c))
    lines.append(md_escape(c(answer.get("answer", ""))))
    rewritten = answer.get("rewritten_query") or ""
    if rewritten and rewritten != answer.get("question"):
        lines.append("*" + c("检索问题（按上文改写）") + "：" + md_escape(c(rewritten)) + "*")
    for note in answer.get("notices") or []:
        lines.append("> " + c("提示") + "：" + md_escape(c(note)))
    cites = answer.get("citations") or []
    if cites:
        lines.append(c("来源") + "：" + "；".join(
            f"[{x['n']}] 《{md_escape(c(x['title']))}》{md_escape(c(x['label']))}" for x in cites))
    elif answer.get("abstained") and answer.get("related"):
        lines.append(c("可能相关的条款见右侧“来源”栏（仅供参考）。"))
    return "\n\n".join(lines)


def answer_outcome(answer: dict) -> str:
    """'answered', 'uncertain' or 'abstained' (answers saved before outcomes existed: from 'abstained')."""
    return answer.get("outcome") or ("abstained" if answer.get("abstained") else "answered")


def confidence_note(answer: dict, c) -> str:
    conf = answer.get("confidence")
    return f"（{c('置信度')} {conf:.0%}）" if isinstance(conf, (int, float)) else ""


def citation_card(cite: dict, script: str, variant: str, quote: bool = True, heading: str = "") -> str:
    """One source: [n], label, heading path, document and 文号, full clause text with the quote marked."""
    c = lambda t: convert(t, script, variant)  # noqa: E731
    path = " › ".join(list(cite.get("headings") or []) + ([heading] if heading else []))
    page = f" · {c('第')}{cite['page']}{c('页')}" if cite.get("page") else ""
    docno = f'<span class="pqa-docno">{esc(c(cite["doc_number"]))}</span>' if cite.get("doc_number") else ""
    text = highlight(cite.get("text", ""), cite.get("quote", "") if quote else "", script, variant)
    return (f'<article class="pqa-cite" data-n="{esc(cite.get("n", ""))}">'
            f'<header><span class="pqa-n">[{esc(cite.get("n", ""))}]</span>'
            f'<span class="pqa-label">{esc(c(cite.get("label") or "（无编号）"))}</span></header>'
            + (f'<div class="pqa-path">{esc(c(path))}</div>' if path else "")
            + f'<div class="pqa-doc">《{esc(c(cite.get("title", "")))}》{docno}{esc(page)}</div>'
            f'<div class="pqa-text">{text}</div>'
            f'<button class="pqa-open" data-clause="{esc(cite.get("clause_id", ""))}" data-n="{esc(cite.get("n", ""))}">'
            f'{esc(c("在文件中查看"))}</button></article>')


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


def warnings_summary(warnings, limit: int = 2, width: int = 40) -> str:
    """Ingestion warnings for a table cell: the first few, shortened; all of them show with the outline."""
    shown = [w if len(w) <= width else w[:width] + "…" for w in list(warnings)[:limit]]
    more = f"（另 {len(warnings) - limit} 条）" if len(warnings) > limit else ""
    return "；".join(shown) + more
