"""A statute named by its name is looked up in the documents of that name only: 合同法第五十二条
is neither 劳动合同法's 第五十二条 nor an article of a 解释 of 《合同法》."""
from __future__ import annotations

import pytest

from assistant.lookup import lookup_clauses
from assistant.names import DocumentNames
from assistant.statutes import Statutes
from index.clauses import parse_clauses
from index.lexicon import load_lexicon
from index.types import Document, DocumentMeta


def law(doc_id, source, title, text):
    return Document(doc_id, source, f"/x/{source}", "0", DocumentMeta(title=title), text, text, "simplified",
                    clauses=tuple(parse_clauses(doc_id, text)))


LABOUR = law("ldht", "社会法/劳动合同法(2012-12-28).md", "中华人民共和国劳动合同法",
             "第一条　为了完善劳动合同制度，制定本法。\n第二条　本法适用于用人单位。\n")
LABOUR_LAW = law("ldf", "社会法/劳动法(2018-12-29).md", "中华人民共和国劳动法",
                 "第一条　为了保护劳动者的合法权益，制定本法。\n"
                 "第四十四条　有下列情形之一的，用人单位应当支付高于劳动者正常工作时间工资的工资报酬：\n"
                 "（一）安排劳动者延长工作时间的，支付不低于工资的百分之一百五十的工资报酬；\n"
                 "（二）休息日安排劳动者工作又不能安排补休的，支付不低于工资的百分之二百的工资报酬；\n")
READING = law("hyjs", "司法解释/最高人民法院关于适用《婚姻法》若干问题的解释(一)(2001-12-27).md",
              "最高人民法院关于适用《中华人民共和国婚姻法》若干问题的解释（一）",
              "第一条　婚姻法第三条所称的家庭暴力，是指行为人以殴打、捆绑等手段给其家庭成员造成伤害的行为。\n"
              "第二条　婚姻法第三条所称的有配偶者与他人同居，是指有配偶者与婚外异性共同居住。\n")
RELIEF = law("gdsy", "地方性法规/广东省失业保险条例(2019-11-29).md", "广东省失业保险条例",
             "第一条　为了保障失业人员失业期间的基本生活，制定本条例。\n第二条　本条例适用于本省行政区域内的失业保险。\n")
SURPLUS = law("fyzg", "行政法规/国有企业富余职工安置规定(1993-04-20).md", "国有企业富余职工安置规定",
              "第一条　为了妥善安置国有企业富余职工，制定本规定。\n第五条　企业开办的劳动就业服务企业，应当承担安置本企业富余职工的任务。\n")
LENDING = law("mjjd", "司法解释/最高人民法院关于审理民间借贷案件适用法律若干问题的规定(2020-12-29).md",
              "最高人民法院关于审理民间借贷案件适用法律若干问题的规定",
              "第一条　本规定所称的民间借贷，是指自然人、法人和非法人组织之间进行资金融通的行为。\n"
              "第五条　人民法院立案后，发现民间借贷行为本身涉嫌非法集资等犯罪的，应当裁定驳回起诉。\n")
DOCS = [LABOUR, LABOUR_LAW, READING, RELIEF, SURPLUS, LENDING]
LEX = load_lexicon()


def found(question):
    names = DocumentNames(DOCS, LEX.words("generic_name_bigrams"), file_names=True)
    return [(c.doc_id, c.label) for c in lookup_clauses(question, DOCS, names, statutes=Statutes(DOCS, LEX))]


@pytest.mark.parametrize("question,clauses", [
    ("劳动合同法第一条", [("ldht", "第一条")]),
    ("中华人民共和国劳动合同法第二条", [("ldht", "第二条")]),
    ("《劳动法》的第一条", [("ldf", "第一条")]),
    ("请问劳动法第一条", [("ldf", "第一条")]),  # the words before the name are not part of it
    ("广东失业保险条例第一条", [("gdsy", "第一条")]),  # 省 left out
    # 劳动合同法 is another law than 合同法, and a 解释 of 《婚姻法》 is not 婚姻法
    ("合同法第一条", []),
    ("婚姻法第一条", []),
    ("婚姻法解释第一条", [("hyjs", "第一条")]),  # named loosely: not a statute's name
    # a rule's name is said loosely, but the document must hold its words: 待业 and 保险 are not in
    # 国有企业富余职工安置规定, whose 第五条 would otherwise be cited for it
    ("民间借贷规定第五条", [("mjjd", "第五条")]),
    ("国有企业富余职工安置规定第五条", [("fyzg", "第五条")]),
    ("国有企业职工待业保险规定第五条", []),
    ("根据有关规定第五条", [("fyzg", "第五条"), ("mjjd", "第五条")]),  # no name said: loosely, as before
    # the first 款 is the article's own text, and its items hang on the article
    ("劳动法第四十四条第一款第(二)项", [("ldf", "第四十四条第(二)项")]),
])
def test_a_statute_named_by_its_name_is_looked_up_in_that_statute(question, clauses):
    assert found(question) == clauses


def test_without_statutes_the_lookup_names_documents_loosely():
    names = DocumentNames(DOCS, LEX.words("generic_name_bigrams"), file_names=True)
    assert [c.doc_id for c in lookup_clauses("合同法第一条", DOCS, names)] == ["ldht"]


def test_the_name_of_a_statute_no_document_has():
    statutes = Statutes(DOCS, LEX)
    assert statutes.named("请问合同法") == ("合同法", frozenset())
    assert statutes.named("劳动法") == ("劳动法", frozenset({"ldf"}))
    assert statutes.named("规划纲要") is None  # not a statute's name
    # a name the lexicon knows to be repealed is named whole, not by its last three characters
    assert statutes.named("请问城市房屋拆迁管理条例") == ("城市房屋拆迁管理条例", frozenset())
    # and one it does not know is named as said, without the words that ask
    assert statutes.named("我想问一下物业服务管理条例") == ("物业服务管理条例", frozenset())
    assert statutes.named("公司依据员工手册规定") == ("员工手册规定", frozenset())


@pytest.mark.parametrize("before,name", [
    ("我想问一下物业管理条例", "物业管理条例"),
    ("请问城市房屋拆迁管理条例", "城市房屋拆迁管理条例"),
    ("老板说劳动法", "劳动法"),
    ("国务院关于职工工作时间的规定", "国务院关于职工工作时间的规定"),  # 关于 and 的 belong to names
    ("根据有关规定", "规定"),
])
def test_the_name_as_said(before, name):
    from assistant.statutes import spoken_name

    assert spoken_name(before, LEX) == name


def test_a_repealed_statute_is_named_with_what_took_its_place():
    from assistant.statutes import Statutes

    unindexed_notice = Statutes(DOCS, LEX).unindexed_notice
    assert "由《中华人民共和国民法典》取代" in unindexed_notice("中华人民共和国合同法")
    assert "2021-01-01" in unindexed_notice("婚姻法")
    assert "已于 2011-01-21 废止，由《国有土地上房屋征收与补偿条例》取代" in unindexed_notice("城市房屋拆迁管理条例")
    assert "取代" not in unindexed_notice("外星人保护法")  # not known to be repealed


def test_a_clause_of_a_statute_not_indexed_says_so_and_is_not_answered_from_another(fake_assistant):
    ans = fake_assistant.ask("合同法第五条")
    assert any("没有《合同法》" in n and "民法典" in n for n in ans.notices)
    assert not any(c.label == "五、" for c in ans.citations)  # not the 五、 of a notice about something else
    # a loose name still finds its clause
    ans = fake_assistant.ask("规划纲要第二部分(三)第1条")
    assert ans.citations[0].label == "二、(三)1." and not any("没有《" in n for n in ans.notices)


def test_every_repealed_statute_is_what_its_successor_says_it_repealed():
    """Each row of repealed.tsv is read in the successor's own text: an article that names the old
    statute among those 同时废止, and the date it took effect (or its publication date, for one in
    force 自公布之日)."""
    import re

    from assistant.articles import PREFIX
    from tests.conftest import LAWS

    if not LAWS.exists():
        pytest.skip("the law corpus is not beside the repository")
    laws = sorted(LAWS.rglob("*.md"))
    assert len(LEX.repealed) >= 20
    for old, (date, successor) in LEX.repealed.items():
        # every version of the successor (a folder for the 民法典's books)
        plain = successor.removeprefix(PREFIX)
        files = [p for p in laws if p.stem.split("(")[0] == plain or p.parent.name == plain]
        assert files, f"{successor} is not in the law corpus"
        year, month, day = (int(x) for x in date.split("-"))
        said = [line for p in files for line in p.read_text(encoding="utf-8").splitlines() if "同时废止" in line
                and re.search(rf"《(?:{PREFIX})?{old}》", line)]
        assert said, f"no article of {successor} repeals {old}"
        in_force = f"自{year}年{month}月{day}日起施行"
        published = f"({year}-{month:02d}-{day:02d})"
        assert any(in_force in line for line in said) or (
            any(re.search("自(?:公布|发布)之日起施行", line) for line in said)
            and any(p.stem.endswith(published) for p in files)), f"{successor} does not repeal {old} on {date}"
