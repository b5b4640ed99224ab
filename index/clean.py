"""Clean raw document text: page markers, pinyin glosses, web boilerplate, mojibake flags.

>>> r = clean_text("解决民生当前页码:2 问题。法规(guī)")
>>> r.text, r.page_marks
('解决民生问题。法规', [(0, 1), (4, 2)])
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

# "当前页码:N" page markers, which cut through sentences in exported PDFs.
PAGE_MARK = re.compile(r"\s*当前页码\s*[:：]\s*(\d+)\s*")
# A pinyin gloss right after a CJK character: 規(guī), 擴(kuò). Only lower-case latin letters
# (with tone marks) qualify, so "(一)", "(WTO)" and "(2005)" are left alone.
PINYIN_GLOSS = re.compile(r"(?<=[\u4e00-\u9fff\ue000-\uf8ffA-Za-z])\(([a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüńňǹḿ]{1,7})\)")
BOILERPLATE_LINES = re.compile(
    r"^\s*(?:法[规規]库|法[规規]庫|回到[顶頂]部|返回[顶頂]部|折[叠疊]|展[开開]|打印(?:本[页頁])?|[关關]闭窗口|"
    r"[-—_=─]{5,}|\*{3,}|专栏[:：]?|專欄[:：]?)\s*$"
)
# Characters that appear when GBK bytes are decoded one byte out of step: private-use code
# points, bopomofo and box drawing next to CJK text.
MOJIBAKE_CHARS = re.compile(r"[\ue000-\uf8ff\u3105-\u312f\u2500-\u257f]")
MOJIBAKE_SPAN = re.compile(r"[?？]?。?[^\s\u4e00-\u9fff]?[\u3105-\u312f\u4e00-\u9fff]{0,2}?"
                           r"(?:[\ue000-\uf8ff\u3105-\u312f\u2500-\u257f][\u4e00-\u9fffA-Za-z]{0,2}){2,}")


@dataclass
class CleanResult:
    """Clean text plus (offset, page) marks and human-readable warnings."""

    text: str
    page_marks: list[tuple[int, int]] = field(default_factory=list)  # (offset in text, page)
    warnings: list[str] = field(default_factory=list)
    mojibake: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, repair hint)
    title_hint: str = ""  # a leading markdown title line ("# 中华人民共和国民法典")


def repair_hint(span: str) -> str:
    """Best guess at what a GBK-shifted mojibake span said, for the report only.

    >>> repair_hint("?。ㄒ唬┗\\ue2a2攫B")
    '（一）基本養'
    """
    try:
        raw = span.encode("gb18030")
    except UnicodeEncodeError:
        return ""
    for shift in (1, 2, 3):
        try:
            guess = raw[shift:].decode("gbk")
        except UnicodeDecodeError:
            continue
        if not MOJIBAKE_CHARS.search(guess) and "?" not in guess:
            return guess
    return ""


def clean_text(raw: str) -> CleanResult:
    """Normalise line ends, drop boilerplate lines and glosses, lift page markers out of the text."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "").replace("\xa0", " ")
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")
    warnings: list[str] = []
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    if text.lstrip().startswith("---\n"):  # markdown front matter
        text = re.sub(r"^\s*---\n.*?\n---\n", "", text, count=1, flags=re.S)
    first = text.lstrip().split("\n", 1)[0]
    title_hint = first.lstrip("#").strip() if first.startswith("#") else ""
    text = re.sub(r"(?m)^[ \t\u3000]*#{1,6}[ \t\u3000]*", "", text)
    n_gloss = len(PINYIN_GLOSS.findall(text))
    if n_gloss:
        text = PINYIN_GLOSS.sub("", text)
        warnings.append(f"removed {n_gloss} pinyin glosses")
    lines = []
    dropped = 0
    for line in text.split("\n"):
        if BOILERPLATE_LINES.match(line):
            dropped += 1
            continue
        lines.append(line.strip(" \t\u3000"))
    if dropped:
        warnings.append(f"removed {dropped} boilerplate lines")
    # collapse runs of blank lines, keep paragraph breaks
    text = re.sub(r"\n{2,}", "\n", "\n".join(lines)).strip()

    # page markers: remove, remembering where each page starts in the clean text
    out, marks, pos, cur = [], [], 0, 0
    for m in PAGE_MARK.finditer(text):
        out.append(text[pos:m.start()])
        cur += m.start() - pos
        # keep a space where the marker separated two words of a one-line document
        marks.append((cur, int(m.group(1))))
        pos = m.end()
    out.append(text[pos:])
    clean = "".join(out)
    if marks:
        warnings.append(f"removed {len(marks)} page markers (pages {marks[0][1]}-{marks[-1][1]})")
        if marks[0][0] > 0:
            marks.insert(0, (0, max(1, marks[0][1] - 1)))

    result = CleanResult(text=clean, page_marks=marks, warnings=warnings, title_hint=title_hint)
    for m in MOJIBAKE_SPAN.finditer(clean):
        span = m.group(0)
        hint = repair_hint(span)
        result.mojibake.append((m.start(), m.end(), hint))
        line_no = clean.count("\n", 0, m.start()) + 1
        warnings.append(f"mojibake at line {line_no}: {span!r}" + (f" (looks like {hint!r})" if hint else "") + ", kept as is")
    return result


def page_at(page_marks: list[tuple[int, int]], offset: int) -> int | None:
    """Page in effect at `offset`, or None when the document has no page markers."""
    page = None
    for start, p in page_marks:
        if start > offset:
            break
        page = p
    return page
