"""Quoted document text in Markdown (chat bubbles, the API's answer) renders as exactly that text."""
from __future__ import annotations

import html

import pytest
from hypothesis import given, settings, strategies as st
from markdown_it import MarkdownIt

from assistant.types import Answer, Citation
from web.render import answer_markdown, md_escape

MD = MarkdownIt("commonmark")

ATTACKS = [
    "![x](http://127.0.0.1:9/track.png)",
    "[点这里](javascript:alert(1))",
    "<img src=x onerror=alert(1)>",
    "<https://evil.example/a>",
    "$$x^2$$ 与 $y$",
    "**粗体** _斜体_ ~~删除~~ `代码`",
    "# 标题\n> 引用\n1. 列表\n- 列表\n---",
    "[1]: http://h/ref \"t\"\n[x][1]",
    "&amp; &lt;b&gt; \\*",
    "http://h/a.png www.example.com a@b.com",
]


def rendered_text(markdown: str) -> str:
    """The text a Markdown renderer shows for `markdown` (one paragraph, tags removed)."""
    out = MD.render(markdown)
    assert out.startswith("<p>") and out.endswith("</p>\n"), out
    return html.unescape(out[3:-5].replace("<br />\n", "\n"))


@pytest.mark.parametrize("text", ATTACKS)
def test_escaped_text_renders_as_itself(text):
    out = MD.render(md_escape(text))
    assert "<img" not in out and "<a " not in out and "<strong" not in out and "<h1" not in out
    assert rendered_text(md_escape(text).replace("\n", "  \n")) == text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | st.sampled_from("![]()<>*_`$#&\\:/."),
               min_size=1, max_size=40).filter(lambda t: t.strip() == t))
def test_any_single_line_text_renders_as_itself(text):
    assert rendered_text(md_escape(text)) == text


def test_answer_bubble_keeps_a_quoted_image_as_text():
    quote = "申请表见![x](http://127.0.0.1:9/track.png)附件"
    cite = Citation(n=1, doc_id="d", source="d.txt", title="通知![t](http://h/t.png)", doc_number="", label="一、",
                    path=(), headings=(), quote=quote, text=quote, clause_id="d#一")
    md = answer_markdown(Answer(question="q", text=f"{quote}[1]。", citations=(cite,)))
    out = MD.render(md)
    assert "<img" not in out and "<a " not in out
    assert "track.png" in html.unescape(out) and "t.png" in html.unescape(out)
