"""Whether the best clause gives the kind of answer asked for is read in its sentence about the
question (assistant/evidence.py focus_sentence), not anywhere in the clause and not in its label."""
from __future__ import annotations

import numpy as np
import pytest

from assistant.decide import QUESTION_FEATURES
from assistant.evidence import evidence_terms, focus_sentence
from assistant.features import TermWeights
from index.lexicon import load_lexicon
from index.normalize import to_simplified

LEX = load_lexicon()
CLAUSE = ("4.工商行政管理部门在核发营业执照时,必须告知用人单位在规定时间内到社会保险经办机构办理参保登记手续。"
          "社会保险经办机构每月25日前将新参保单位名单报送地税部门。")


def weights() -> TermWeights:
    return TermWeights(lambda t: 1, 100, LEX)


def test_the_sentence_about_the_question_is_read_and_the_label_is_not_a_number():
    question = "新注册的企业领了营业执照后,要在多少天内去办参保登记?"
    terms = evidence_terms(question, weights())
    focus = focus_sentence(terms, CLAUSE, weights())
    assert "营业执照" in focus and "25日" not in focus and "4." not in focus
    wanted = LEX.wanted_types(question)
    assert wanted == ("number", "duration")
    assert LEX.unmet_types(wanted, focus) == 2  # the sentence names the deadline without giving it
    assert LEX.unmet_types(wanted, CLAUSE) == 0  # the whole clause would pass on '4.' and '25日'


def test_a_sentence_that_gives_the_number_meets_the_question():
    question = "经办机构每月什么时候把新参保单位名单报给地税部门?"
    focus = focus_sentence(evidence_terms(question, weights()), CLAUSE, weights())
    assert focus.startswith("社会保险经办机构每月25日前")
    assert LEX.unmet_types(LEX.wanted_types(question), focus) == 0


@pytest.mark.parametrize("wanted, text, unmet", [
    (("number",), "合理确定缴费比例和待遇标准,2005年起在全市实行。", 1),  # a year is not the amount asked
    (("number",), "累计缴费满15年的,按月领取基本养老金。", 0),  # a count of years is
    (("number",), "缴费基数为上年度职工月平均工资的60%。", 0),
    (("number",), "领取期限最长为二十四个月。", 0),
    (("date",), "2005年起在全市实行。", 0),  # the year answers when
    (("date",), "试用期最长不得超过六个月。", 0),  # a length of time answers 多久 ('试用期最长多久?')
    (("date",), "劳动者在试用期内提前三日通知用人单位。", 0),
    (("date",), "按月将名单报送地税部门。", 1),  # how often is no time
    (("number", "date"), "2005年起在全市实行。", 1),
])
def test_a_year_gives_a_date_but_not_a_quantity(wanted, text, unmet):
    assert LEX.unmet_types(wanted, text) == unmet


@pytest.mark.parametrize("kind, text, unmet", [
    ("year", "缴费年限满15年的参保职工,每增加一年缴费年限,基础养老金增加一个百分点。", 1),  # years counted, no year
    ("year", "2005年起在全市实行。", 0),
    ("year", "力争在今年年底前基本实现社会化发放。", 0),
    ("day", "从今年7月份起,各市地要按月上报省政府办公厅。", 1),  # a month, no day of it
    ("day", "社会保险经办机构每月25日前将名单报送地税部门。", 0),
    ("money", "从中央和地方两级财政资金投入看,试点成本也低于预期值。", 1),  # 两级 is no sum
    ("money", "城市低保标准为每人每月300元。", 0),
    ("money", "按其本人工资的百分之六十支付。", 0),  # an amount as a share of a wage
    ("percent", "根据上一年度工伤事故发生率调整下一年度缴费比例。", 1),  # names a ratio without its value
    ("percent", "缴费基数为上年度职工月平均工资的60%。", 0),
    ("percent", "养老保险基金征缴率达到90％以上。", 0),  # a full-width per cent sign
    ("duration", "根据上一年度工伤事故发生率调整缴费比例。", 1),  # 一年 inside 上一年度 is no length of time
    ("duration", "试用期不得超过三个月。", 0),
    ("duration", "并按月将新注册企业的基本信息提供给社会保险经办机构。", 1),  # how often is not how long
    ("frequency", "并按月将新注册企业的基本信息提供给社会保险经办机构。", 0),
    ("frequency", "在规定时间内到社会保险经办机构办理参保登记手续。", 1),
    ("criteria", "做好企业年金方案的审核和管理运营机构的准入工作。", 1),  # names the entry, not what it takes
    ("criteria", "累计缴费满15年的,按月领取基本养老金。", 0),
    ("procedure", "多渠道筹集资金,建立社会医疗救济基金。", 1),
    ("procedure", "用人单位应当自成立之日起三十日内申请办理社会保险登记。", 0),
    ("calculation", "约77％的国有企业下岗职工与企业解除劳动关系。", 1),  # a share, no way of computing
    ("calculation", "经济补偿按劳动者在本单位工作的年限,每满一年支付一个月工资的标准向劳动者支付。", 0),
    ("composition", "建立天津市社会保险基金监督委员会,完善监督检查工作制度。", 1),
    ("composition", "监督委员会由用人单位代表、参保人员代表和工会代表组成。", 0),
    ("format", "各市地要按月将两个确保工作情况报省政府。", 1),
    ("format", "按照附件所列格式填报。", 0),
])
def test_the_finer_kinds_of_answer(kind, text, unmet):
    assert LEX.unmet_types((kind,), text) == unmet


@pytest.mark.parametrize("terms, expected", [
    ([], " 工商部门负责登记。地税部门负责征收。"),  # nothing to look for: the whole clause
    ([("部门", 1.0), ("负责", 1.0)], " 工商部门负责登记。地税部门负责征收。"),  # a tie: both sentences
    ([("征收", 1.0)], "地税部门负责征收。"),
])
def test_tied_or_absent_terms_keep_every_sentence(terms, expected):
    assert focus_sentence(terms, "(一)工商部门负责登记。地税部门负责征收。", weights()) == expected


LISTED = ("第二十四条 失业人员领取失业保险金的期限，根据累计缴费时间确定。具体划分为：\n"
          "（一）累计缴费时间满一年不足两年的为三个月；\n（二）累计缴费时间满两年不足三年的为六个月；\n"
          "失业人员重新就业后，缴费时间重新计算。")


def test_a_sentence_that_announces_a_list_brings_its_items():
    question = "失业金的领取期限能有几个月?"
    focus = focus_sentence(evidence_terms(question, weights()), LISTED, weights())
    assert "根据累计缴费时间确定" in focus and "为三个月" in focus and "为六个月" in focus
    assert "重新计算" not in focus
    assert LEX.unmet_types(LEX.wanted_types(question), focus) == 0


@pytest.mark.parametrize("share, second", [(1.0, False), (0.5, True)])
def test_a_share_of_the_best_sentence_weight_keeps_more_sentences(share, second):
    terms = [("征收", 1.0), ("登记", 1.0)]  # the second sentence holds half the best one's weight
    focus = focus_sentence(terms, "(一)工商部门负责登记和征收。地税部门负责登记。", weights(), share)
    assert "负责登记和征收" in focus and ("地税部门" in focus) is second


@pytest.mark.parametrize("question, unmet", [
    ("本溪新注册的企业领了营业执照后,要在多少天内去社保经办机构办参保登记?", 2.0),  # a near miss: no number, no length
    ("自由职业者缴费基数最低是多少?", 0.0),  # 四、(四): 月平均工资的60%
    ("原来单位断缴了好几年,我还能接着交养老保险吗", 0.0),  # '好几年' asks for no number
    ("天津进城务工的农民工参加养老保险,单位和个人各交百分之几?", 2.0),  # 二、(一)1.: '2005年起' only, no rate
])
def test_the_answerability_features_of_bundled_questions(nano_assistant, question, unmet):
    searcher = nano_assistant.searcher
    prep = searcher.prepare(to_simplified(question))
    idx, scores = searcher.order(prep)
    qx, _ = searcher.question_vector(prep, idx, scores)
    got = dict(zip(QUESTION_FEATURES, np.asarray(qx, dtype=float)))
    assert got["top_wants_unmet"] == unmet
