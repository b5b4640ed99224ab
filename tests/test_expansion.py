"""The learned query expansion (assistant/expansion.py), weighted BM25 and the expanded first-stage search."""
from __future__ import annotations

import doctest
import json

import numpy as np
import pytest

import assistant.expansion as expansion_module
from assistant.expansion import Expansion, FirstStage, fit_expansion
from index.bm25 import BM25


def test_docstring_examples():
    result = doctest.testmod(expansion_module)
    assert result.attempted >= 3 and result.failed == 0


PAIRS = [({"老板", "辞退"}, {"用人单位", "解除", "劳动合同"}),
         ({"老板", "工资"}, {"用人单位", "劳动报酬"}),
         ({"老板", "加班"}, {"用人单位", "加班费"}),
         ({"工资", "拖欠"}, {"劳动报酬", "支付"}),
         ({"工资", "少发"}, {"劳动报酬", "用人单位"})]
DF = {"用人单位": 10, "解除": 30, "劳动合同": 40, "劳动报酬": 5, "加班费": 2, "支付": 200}


@pytest.mark.parametrize("word, first", [("老板", "用人单位"), ("工资", "劳动报酬")])
def test_fit_learns_the_clause_word_that_goes_with_a_question_word(word, first):
    e = fit_expansion(PAIRS, lambda w: DF.get(w, 0), 1000)
    assert e.table[word][0][0] == first


@pytest.mark.parametrize("kw, absent", [
    ({"min_pairs": 2}, ("辞退", "解除")),  # seen together once only
    ({"min_lift": 3.0}, ("工资", "支付")),  # 支付 is in a fifth of all chunks: no lift
])
def test_fit_drops_rare_and_unspecific_pairs(kw, absent):
    e = fit_expansion(PAIRS + [({"工资", "拖欠"}, {"支付"})], lambda w: DF.get(w, 0), 1000, **kw)
    q, a = absent
    assert a not in dict(e.table.get(q, ()))


def test_fit_never_proposes_a_word_the_index_lacks():
    e = fit_expansion(PAIRS, lambda w: 0 if w == "用人单位" else DF.get(w, 0), 1000)
    assert all(a != "用人单位" for pairs in e.table.values() for a, _ in pairs)


@pytest.mark.parametrize("tokens, words, weights", [
    (["老板"], ["用人单位", "劳动"], [0.5, 0.125]),
    (["老板", "辞退"], ["用人单位", "解除"], [0.5, 0.3]),  # sums over the question's words
    (["老板", "用人单位"], ["劳动"], [0.5]),  # a word the question has is not added
    (["其他"], [], []),
])
def test_expand(tokens, words, weights):
    e = Expansion({"老板": (("用人单位", 4.0), ("劳动", 1.0)), "辞退": (("解除", 2.4), ("用人单位", 0.0))},
                  terms=2, weight=0.5)
    got_words, got_weights = e.expand(tokens)
    assert got_words == words and got_weights == pytest.approx(weights)


@pytest.mark.parametrize("own_df, expanded", [(None, ["工资", "老板"]), (50, ["工资", "老板"]), (10, ["老板"]),
                                              (0, ["老板"])])
def test_words_the_law_itself_uses_often_are_not_expanded(own_df, expanded):
    # 工资 is in 30 chunks, 老板 in none: with own_df below 30, only 老板 is translated
    df = {**DF, "工资": 30}
    e = fit_expansion(PAIRS, lambda w: df.get(w, 0), 1000, own_df=own_df)
    assert sorted(e.table) == expanded and e.own_df == own_df


# 判刑 asked three times with the theft article as the answer and once with the 非法行医 one
HUB = [({"判刑", "偷"}, {"刑法264": {"盗窃", "扒窃", "徒刑"}})] * 3 + [({"判刑", "行医"}, {"刑法336": {"行医", "徒刑"}}),
                                                                 ({"判刑"}, {"刑法234": {"伤害", "徒刑"}})]


@pytest.mark.parametrize("min_articles, words", [
    (1, {"盗窃", "扒窃", "徒刑", "伤害", "行医"}),  # as plain pairs: the theft article's words lead
    (2, {"徒刑"}),  # only what two different articles taught
    (3, {"徒刑"}),
    (4, set()),
])
def test_one_article_many_questions_cite_does_not_become_a_words_meaning(min_articles, words):
    e = fit_expansion(HUB, lambda w: 1, 1000, min_pairs=1, min_lift=0.0, min_articles=min_articles)
    assert {a for a, _ in e.table.get("判刑", ())} == words
    if min_articles == 1:  # the same pairs given as word sets learn the same table
        plain = fit_expansion([(q, set().union(*a.values())) for q, a in HUB], lambda w: 1, 1000, min_pairs=1,
                              min_lift=0.0)
        assert plain.table == e.table


def test_json_round_trip():
    e = fit_expansion(PAIRS, lambda w: DF.get(w, 0), 1000, terms=7, weight=0.25, own_df=400, min_articles=2)
    back = Expansion.from_json(json.loads(json.dumps(e.to_json(), ensure_ascii=False)))
    assert (back.terms, back.weight, back.own_df, back.min_articles) == (7, 0.25, 400, 2)
    assert back.table.keys() == e.table.keys()
    (words, weights), (words0, weights0) = back.expand(["老板", "工资"]), e.expand(["老板", "工资"])
    assert words == words0 and weights == pytest.approx(weights0, abs=1e-3)


def test_weighted_bm25_scales_each_token_and_unit_weights_change_nothing():
    bm = BM25.from_token_lists([["用人单位", "解除"], ["劳动报酬"], ["用人单位", "劳动报酬", "支付"], ["其他"]])
    plain = bm.scores(["用人单位", "劳动报酬"])
    assert np.array_equal(bm.scores(["用人单位", "劳动报酬"], [1.0, 1.0]), plain)
    half = bm.scores(["用人单位", "劳动报酬"], [1.0, 0.5])
    assert half == pytest.approx(bm.scores(["用人单位"]) + 0.5 * bm.scores(["劳动报酬"]))
    rows = np.array([2, 0, 3])
    assert np.array_equal(bm.scores_of(["用人单位", "劳动报酬"], rows, [1.0, 0.5]), half[rows])
    assert [r for r, _ in bm.top(["用人单位", "劳动报酬"], 2, weights=[0.1, 1.0])] == [1, 2]
    assert [r for r, _ in bm.top(["用人单位", "劳动报酬"], 2, weights=[1.0, 0.1])] == [0, 2]


def test_first_stage_default_has_no_expansion():
    stage = FirstStage()
    assert stage.expansion is None and stage.pool.expanded == 0


@pytest.mark.parametrize("numeral", ["八百", "五十", "2020", "30%", "两", "第七", "第十条"])
def test_numerals_are_never_expansion_words(numeral):
    # the company articles of 民法典 are numbered 第八百…条: 公司 -> 八百 has lift, and is no clue
    pairs = [({"公司", "股东"}, {numeral, "法人"}), ({"公司", "分红"}, {numeral, "法人"})]
    e = fit_expansion(pairs, lambda w: 1, 1000)
    assert [a for a, _ in e.table["公司"]] == ["法人"]
