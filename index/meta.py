"""Extract a document's metadata (title, 文号, issuer, dates, validity) from its clean text.

>>> m = extract_meta("当前页面 本溪市人民政府关于X的通知【文件号】本政发[2008]6号【颁布部门】本溪市政府【颁布时间】2008-05-14【时效性】有效", "a.txt")
>>> m.doc_number, m.issuer, m.issue_date, m.validity
('本政发[2008]6号', '本溪市政府', '2008-05-14', '有效')
"""
from __future__ import annotations

import re

from index.types import DocumentMeta

DOC_NUMBER = re.compile(r"[\u4e00-\u9fff]{1,8}[〔\[【（(][12]\d{3}[〕\]】）)]\s*第?\d{1,4}\s*[号號]")
ISO_DATE = re.compile(r"([12]\d{3})[-年/.](\d{1,2})[-月/.](\d{1,2})日?")
CN_DIGITS = {"○": 0, "〇": 0, "零": 0, "Ｏ": 0, "O": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
CN_DATE = re.compile(r"([○〇零Ｏ一二三四五六七八九]{4})年([一二三四五六七八九十]{1,3})月([一二三四五六七八九十]{1,3})日")
TITLE_WORDS = re.compile(r"(通知|意见|意見|方案|纲要|綱要|办法|辦法|规定|規定|决定|決定|条例|條例|细则|細則|批复|批復|公告|法|解释|解釋|规划|規劃)$")
FIELD = {
    "issuer": re.compile(r"(?:【颁布部门】|【發文單位】|【发文单位】|发文单位[:：]|發文單位[:：]|颁布部门[:：]|頒布部門[:：]|发布机关[:：]|制定机关[:：])\s*([^\s【]+)"),
    "issue_date": re.compile(r"(?:【颁布时间】|颁布时间[:：]|頒布時間[:：]|发布日期[:：]|發布日期[:：]|公布日期[:：])\s*([12]\d{3}[-年/.]\d{1,2}[-月/.]\d{1,2})"),
    "effective_date": re.compile(r"(?:【实施时间】|实施时间[:：]|實施時間[:：]|施行日期[:：]|生效日期[:：])\s*([12]\d{3}[-年/.]\d{1,2}[-月/.]\d{1,2})"),
    "validity": re.compile(r"(?:【时效性】|时效性[:：]|時效性[:：])\s*(现行有效|有效|已失效|失效|已修订|尚未生效)"),
}


def iso_date(text: str) -> str:
    """'2008-05-14', '2008年5月14日' or '二○○八年五月十四日' -> '2008-05-14'; '' if none."""
    m = ISO_DATE.search(text)
    if m:
        return f"{int(m.group(1)):04d}-{int(m.group(2)):02d}-{int(m.group(3)):02d}"
    m = CN_DATE.search(text)
    if m:
        year = int("".join(str(CN_DIGITS[c]) for c in m.group(1)))
        return f"{year:04d}-{cn_small_number(m.group(2)):02d}-{cn_small_number(m.group(3)):02d}"
    return ""


def cn_small_number(s: str) -> int:
    """Chinese numeral below 10000 -> int: '十四' -> 14, '二十' -> 20, '一百零五' -> 105, '12' -> 12."""
    if s.isdigit():
        return int(s)
    units = {"十": 10, "百": 100, "千": 1000}
    total, digit = 0, 0
    for ch in s:
        if ch in units:
            total += (digit or 1) * units[ch]
            digit = 0
        elif ch in CN_DIGITS:
            digit = CN_DIGITS[ch]
        elif ch == "两":
            digit = 2
        else:
            raise ValueError(f"not a Chinese numeral: {s!r}")
    return total + digit


LAW_EVENT = re.compile(r"^([12]\d{3})年(\d{1,2})月(\d{1,2})日\s+(.+)$", re.M)


def extract_meta(text: str, source: str, title_hint: str = "") -> DocumentMeta:
    """Metadata from the head of a document; fields that are absent stay empty."""
    head = text[:1500]
    values = {}
    # LawRefBook header lines: "2021年11月1日 施行", "1999年6月28日 …会议通过"
    first_article = re.search(r"(?m)^第[一二三四五六七八九十百零]+[条章编]", head)
    for m in LAW_EVENT.finditer(head[: first_article.start() if first_article else 600]):
        date = f"{int(m.group(1)):04d}-{int(m.group(2)):02d}-{int(m.group(3)):02d}"
        values["effective_date" if "施行" in m.group(4) else "issue_date"] = date
    for name, rx in FIELD.items():
        m = rx.search(head)
        if m:
            values[name] = iso_date(m.group(1)) if name.endswith("date") else m.group(1)
    m = DOC_NUMBER.search(head)
    if m:
        values["doc_number"] = m.group(0).replace(" ", "")
    if "issue_date" not in values and "effective_date" not in values:
        # a signature date such as 二○○四年十二月三十一日 on a line of its own, or a dated news line
        for line in head.split("\n")[:15]:
            line = line.strip()
            if len(line) <= 16 and iso_date(line):
                values["issue_date"] = iso_date(line)
                break
    values["title"] = title_hint or _title(text, values.get("doc_number", ""))
    return DocumentMeta(**values)


def _title(text: str, doc_number: str) -> str:
    first = text.lstrip()
    # header fields glued onto the title in single-line exports: "…的通知【文件号】…"
    if "【" in first[:300]:
        cand = first.split("【", 1)[0].strip()
        if 6 <= len(cand) <= 120:
            return cand
    lines = [ln.strip() for ln in text.split("\n")[:25] if ln.strip()]
    titled = [ln for ln in lines if 6 <= len(ln) <= 80 and TITLE_WORDS.search(ln.rstrip("。 "))
              and not ln.startswith(("各", "第")) and "、" not in ln[:3]]
    if titled:
        return max(titled, key=len)
    return ""
