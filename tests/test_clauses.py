"""Clause parsing on the five shipped documents, laws and hand-made snippets."""
from __future__ import annotations

import pytest

from index.clauses import parse_clauses
from index.pipeline import parse_document
from tests.conftest import CORPUS, LAWS, require_laws

DOCS = {
    "liaoning": "000_2091bd9ddadc96bd",  # 两个确保 notice: 四 then 六
    "benxi": "001_3bcf7633bcc6b282",  # one line, 当前页码 markers
    "tianjin_trad": "002_42cfee8571543bc0",  # Traditional, pinyin glosses, mojibake markers
    "plan": "003_50930e0fa3d1836b",  # 2004-2007 规划纲要
    "news": "004_f80aa17869e98d91",  # news article, no numbering
}


@pytest.fixture(scope="module")
def docs():
    out = {}
    for key, stem in DOCS.items():
        path = CORPUS / f"{stem}.txt"
        out[key] = parse_document(path, stem, path.read_bytes())
    return out


def by_label(doc):
    return {c.label: c for c in doc.clauses}


@pytest.mark.parametrize("doc,label,path,starts,headings", [
    ("benxi", "四、(二)3.", ("四", "(二)", "3"), "3.地税部门要实行税收和养老保险费同征同查", ("工作措施", "明确政府各职能部门职责,建立扩面联动机制")),
    ("benxi", "四、(四)", ("四", "(四)"), "(四)完善参保缴费政策", ("工作措施",)),
    ("plan", "二、(四)3.", ("二", "(四)", "3"), "3.制定工伤保险浮动费率的办法", ("健全和完善社会保障制度和政策体系", "工伤保险")),
    ("plan", "二、(三)1.", ("二", "(三)", "1"), "1.制定城镇个体从业人员及其雇工参加失业保险办法", ("健全和完善社会保障制度和政策体系", "失业保险")),
    ("liaoning", "七、", ("七",), "七、切实加强两个确保基础管理工作", ()),
    ("tianjin_trad", "三、(三)", ("三", "(三)"), "(三)失業保險擴面重點是", ()),
    ("news", "第1段", ("第1段",), "新华社北京1月16日电", ()),
])
def test_pinned_clauses(docs, doc, label, path, starts, headings):
    clause = by_label(docs[doc])[label]
    assert clause.path == path
    assert clause.text.startswith(starts)
    assert clause.headings == headings


def test_real_numbers_are_kept_when_a_section_is_skipped(docs):
    top = [c.label for c in docs["liaoning"].clauses if c.kind == "l1"]
    assert top == ["一、", "二、", "三、", "四、", "六、", "七、", "八、"]


def test_garbled_markers_are_inferred_from_siblings(docs):
    doc = docs["tianjin_trad"]
    under_three = [c for c in doc.clauses if c.path[:1] == ("三",) and c.kind == "l2"]
    assert [c.label for c in under_three] == ["三、(一)", "三、(二)", "三、(三)", "三、(四)"]
    assert [c.inferred for c in under_three] == [True, True, False, True]
    # the mojibake is flagged, and kept rather than deleted
    assert any("mojibake" in w for w in doc.warnings)
    assert "基本醫療保險" not in doc.text and "療保險擴面重點是" in doc.text


def test_page_markers_removed_and_kept_as_pages(docs):
    doc = docs["benxi"]
    assert all("当前页码" not in c.text for d in docs.values() for c in d.clauses)
    pages = {c.label: c.page for c in doc.clauses}
    assert pages["一、"] == 1 and pages["四、(二)3."] == 3 and pages["四、(八)"] == 6
    # the marker cut "民生 / 问题" apart; the sentence is whole again
    assert "切实解决民生问题" in doc.text


def test_pinyin_glosses_and_boilerplate_removed(docs):
    doc = docs["tianjin_trad"]
    assert "(guī)" not in doc.text and "規(" not in doc.text
    assert "法規庫" not in doc.text and "回到頂部" not in doc.text
    assert doc.script == "traditional"
    assert doc.meta.doc_number == "津政辦發[2005]21號"


def test_metadata_of_the_one_line_document(docs):
    meta = docs["benxi"].meta
    assert meta.doc_number == "本政发[2008]6号"
    assert meta.issuer == "本溪市政府"
    assert meta.issue_date == "2008-05-14" and meta.validity == "有效"
    assert meta.title.startswith("本溪市人民政府批转市劳动保障局")


def test_news_article_is_cited_by_paragraph(docs):
    clauses = docs["news"].clauses
    assert [c.label for c in clauses] == [f"第{i}段" for i in range(1, len(clauses) + 1)]
    assert len(clauses) == 6
    # "一是…二是…" inside a paragraph is not numbering
    assert all(c.kind == "para" for c in clauses)


def test_clause_text_is_verbatim_from_the_clean_document(docs):
    for doc in docs.values():
        for c in doc.clauses:
            assert c.text in doc.text
            assert doc.text.startswith(c.text[:10], c.start)


@pytest.mark.parametrize("text,labels", [
    # a cross-reference is not a clause start
    ("一、总则 依照第十条办理,按本条第(二)项执行。\n二、附则 施行。", ["一、", "二、"]),
    # (二) inside a sentence stays text
    ("一、范围 包括甲(二)类人员。\n(一)甲。\n(二)乙。", ["一、", "一、(一)", "一、(二)"]),
    # numbers that are not markers: amounts and years
    ("一、目标 参保人数达到 189.5万人。\n2005年起实行。\n1.第一项。\n2.第二项。", ["一、", "一、1.", "一、2."]),
    # markers inside one long line
    ("前文: 一、甲 内容。 (一)子项。 1.细项。 二、乙 内容。", ["前言", "一、", "一、(一)", "一、(一)1.", "二、"]),
])
def test_marker_rules(text, labels):
    assert [c.label for c in parse_clauses("d", text)] == labels


def test_law_articles_paragraphs_and_items():
    text = ("第一章 总则\n第一条 为了规范，制定本法。\n第二条 本法所称事项包括：\n（一）甲；\n（二）乙。\n"
            "前款规定的事项，依照第一条处理。\n第二章 附则\n第三条 本法自公布之日起施行。")
    clauses = parse_clauses("law", text)
    labels = [c.label for c in clauses]
    assert labels == ["第一章", "第一条", "第二条", "第二条第(一)项", "第二条第(二)项", "第二条第二款", "第二章", "第三条"]
    third = next(c for c in clauses if c.label == "第三条")
    assert third.headings == ("第二章 附则",)


def test_an_inserted_article_is_followed_by_the_next_article_not_swallowing_it():
    # amended laws insert 第X条之一 between 第X条 and the next: 刑法 has 第一百三十三条之一
    text = ("第一百三十三条 违反交通运输管理法规的，处三年以下有期徒刑。\n"
            "第一百三十三条之一 在道路上驾驶机动车，有下列情形之一的，处拘役：\n（一）追逐竞驶的；\n（二）醉酒驾驶的。\n"
            "第一百三十三条之二 对行驶中的公共交通工具的驾驶人员使用暴力的，处一年以下有期徒刑。\n"
            "第一百三十四条 在生产、作业中违反有关安全管理的规定的，处三年以下有期徒刑。\n"
            "依照第一百三十三条之一处理。")
    labels = [c.label for c in parse_clauses("xingfa", text)]
    assert labels == ["第一百三十三条", "第一百三十三条之一", "第一百三十三条之一第(一)项", "第一百三十三条之一第(二)项",
                      "第一百三十三条之二", "第一百三十四条", "第一百三十四条第二款"]


def test_lawrefbook_file():
    require_laws()
    path = next((LAWS / "社会法").glob("*公益事业捐赠法*.md"))
    doc = parse_document(path, "gongyi", path.read_bytes())
    labels = by_label(doc)
    assert doc.title == "中华人民共和国公益事业捐赠法"
    assert doc.meta.issue_date == "1999-06-28"
    assert labels["第三条第(一)项"].text.startswith("（一）救助灾害")
    assert labels["第一条"].headings == ("第一章 总则",)
    assert "INFO END" not in doc.text
    articles = [c for c in doc.clauses if c.kind == "article"]
    assert articles[0].label == "第一条" and len(articles) >= 30
