"""Every metric of eval/metrics.py on small hand-computed examples, edge cases included."""
from __future__ import annotations

import pytest

from eval.metrics import (ItemScore, abstention_scores, aggregate, bears_on, citation_precision, citation_recall,
                          contains, first_relevant_rank, key_fact_present, label_correct, latency_summary,
                          mean_reciprocal_rank, normalize, percentile, quote_overlaps_evidence, recall_at_k,
                          score_item, script_correct)

CLAUSE = "(四)自由职业者可按最低不低于我市上年在岗职工月平均工资的60%作为缴费基数,缴纳基本养老保险费;一次性补缴的,不收取滞纳金。"
EVIDENCE = "自由职业者可按最低不低于我市上年在岗职工月平均工资的60%作为缴费基数"
GOLD = {"id": "c01", "answerable": True, "category": "citizen", "script": "simplified", "doc_id": "001",
        "gold_label": "四、(四)", "gold_evidence": EVIDENCE, "key_fact": "60%"}
OTHER = "二、目标任务 到2008年底,全市基本实现企业基本养老保险应保尽保。"


def cit(label="四、(四)", quote=EVIDENCE, text=CLAUSE, doc_id="001", n=1):
    return {"n": n, "doc_id": doc_id, "label": label, "quote": quote, "text": text}


@pytest.mark.parametrize("a, b", [
    ("參保率達到 94％", "参保率达到94%"),
    ("（三）失業保險", "(三)失业保险"),
    (" 地税\n部门 ", "地税部门"),
    ("", ""),
])
def test_normalize(a, b):
    assert normalize(a) == b


@pytest.mark.parametrize("hay, needle, expected", [
    ("養老保險30萬人,使實際繳費人數", "养老保险30万人", True),
    ("养老保险 30万人", "养老保险30万人", True),
    ("养老保险30万", "养老保险30万人", False),
    ("anything", "", False),  # an empty needle is never "contained"
])
def test_contains(hay, needle, expected):
    assert contains(hay, needle) is expected


@pytest.mark.parametrize("retrieved, expected", [
    ([CLAUSE, OTHER], 1),
    ([OTHER, CLAUSE], 2),
    ([OTHER], None),
    ([], None),
    (["自由职业者可按最低不低于我市上年在岗职工月平均工资的60%"], None),  # evidence cut short
])
def test_first_relevant_rank(retrieved, expected):
    assert first_relevant_rank(retrieved, EVIDENCE) == expected


@pytest.mark.parametrize("ranks, k, expected", [
    ([1, 3, None, 2], 1, 0.25),
    ([1, 3, None, 2], 2, 0.5),
    ([1, 3, None, 2], 3, 0.75),
    ([1, 3, None, 2], 10, 0.75),
    ([None, None], 5, 0.0),
    ([], 5, None),
])
def test_recall_at_k(ranks, k, expected):
    assert recall_at_k(ranks, k) == expected


@pytest.mark.parametrize("ranks, cutoff, expected", [
    ([1, 3, None, 2], 10, (1 + 1 / 3 + 0.5) / 4),
    ([1, 3, None, 2], 2, (1 + 0.5) / 4),  # rank 3 is past the cutoff
    ([None], 10, 0.0),
    ([], 10, None),
])
def test_mrr(ranks, cutoff, expected):
    result = mean_reciprocal_rank(ranks, cutoff)
    assert result == pytest.approx(expected) if expected is not None else result is None


@pytest.mark.parametrize("quote, evidence, expected", [
    ("甲乙丙丁", "丙丁戊己", False),  # shares 2 characters
    ("乙丙丁戊己庚", "丙丁戊己", True),  # shares 4
    ("丙丁戊己", "丙丁戊己", True),
    ("庚辛", "丙丁戊己", False),  # disjoint
    ("子丑寅卯", "丙丁戊己", False),  # quote not in the clause
    ("", "丙丁戊己", False),
    ("丁戊", "丁戊", True),  # evidence shorter than MIN_OVERLAP: the whole evidence must be shared
])
def test_quote_overlaps_evidence(quote, evidence, expected):
    assert quote_overlaps_evidence(quote, "甲乙丙丁戊己庚辛", evidence) is expected


@pytest.mark.parametrize("citations, expected", [
    ([cit()], True),
    ([cit(quote="一次性补缴的,不收取滞纳金。")], False),  # right clause, quote elsewhere in it
    ([cit(label="二、", text=OTHER, quote="到2008年底,全市基本实现企业基本养老保险应保尽保。")], False),
    ([cit(label="二、", text=OTHER, quote=OTHER), cit(n=2)], True),  # any citation counts
    ([cit(quote="月平均工资的60%作为缴费基数,缴纳基本养老保险费")], True),  # partial overlap
    ([], False),  # no citations (e.g. an abstention)
])
def test_citation_recall(citations, expected):
    assert citation_recall(citations, EVIDENCE) is expected


@pytest.mark.parametrize("citation, expected", [
    (cit(), True),  # the gold clause itself
    (cit(label="四、(五)", text="按月平均工资的60%缴纳"), True),  # contains the key fact
    (cit(label="四、(三)", doc_id="001", text="前文" + EVIDENCE), True),  # contains the evidence
    (cit(label="二、", text=OTHER), False),
    (cit(doc_id="003", text=OTHER), False),  # same label in another document
])
def test_bears_on(citation, expected):
    assert bears_on(citation, GOLD) is expected


@pytest.mark.parametrize("citations, expected", [
    ([], (0, 0)),
    ([cit()], (1, 1)),
    ([cit(), cit(n=2)], (1, 2)),  # duplicate citation: adds nothing, not precise
    ([cit(), cit(n=2, quote="一次性补缴的,不收取滞纳金。")], (2, 2)),  # same clause, another quote
    ([cit(quote="这句话不在条款里")], (0, 1)),  # quote not verbatim
    ([cit(quote="")], (0, 1)),
    ([cit(), cit(n=2, label="二、", text=OTHER, quote="到2008年底")], (1, 2)),  # irrelevant clause
    ([cit(quote="自由職業者可按最低不低於我市上年在崗職工月平均工資的60%作為繳費基數")], (1, 1)),  # Traditional quote
])
def test_citation_precision(citations, expected):
    assert citation_precision(citations, GOLD) == expected


@pytest.mark.parametrize("citations, expected", [
    ([cit()], True),
    ([cit(label="二、", text=OTHER), cit(n=2)], False),  # only the first citation counts
    ([cit(doc_id="003")], False),
    ([cit(label="四、(四)1.")], False),
    ([], False),
])
def test_label_correct(citations, expected):
    assert label_correct(citations, GOLD) is expected


@pytest.mark.parametrize("answer, fact, expected", [
    ("按工资总额4％的比例税前列支[1]。", "4%", True),
    ("養老保險30萬人[1]。", "30万人", True),
    ("不收取 滞纳金", "不收取滞纳金", True),
    ("收取滞纳金", "不收取滞纳金", False),
    ("", "60%", False),
])
def test_key_fact_present(answer, fact, expected):
    assert key_fact_present(answer, fact) is expected


@pytest.mark.parametrize("answer, script, expected", [
    ("根據《通知》四、：地稅部門要實行稅收和養老保險費同徵同查[1]。", "traditional", True),
    ("根据《通知》四、：地税部门要实行税收和养老保险费同征同查[1]。", "traditional", False),
    ("根据《通知》四、：地税部门要实行税收和养老保险费同征同查[1]。", "simplified", True),
    ("", "simplified", True),
])
def test_script_correct(answer, script, expected):
    assert script_correct(answer, script) is expected


@pytest.mark.parametrize("predicted, gold, expected", [
    ([True, True, False, False], [True, False, True, False], (1, 1, 1, 1, 0.5, 0.5, 0.5)),
    ([True, False], [True, False], (1, 0, 0, 1, 1.0, 1.0, 1.0)),
    ([False, False], [True, False], (0, 0, 1, 1, None, 0.0, None)),  # never abstains
    ([True, True], [False, False], (0, 2, 0, 0, 0.0, None, None)),  # abstains on answerable questions
    ([], [], (0, 0, 0, 0, None, None, None)),
])
def test_abstention_scores(predicted, gold, expected):
    a = abstention_scores(predicted, gold)
    assert (a.tp, a.fp, a.fn, a.tn, a.precision, a.recall, a.f1) == expected


def test_abstention_scores_rejects_unequal_lengths():
    with pytest.raises(ValueError, match="same length"):
        abstention_scores([True], [])


@pytest.mark.parametrize("values, p, expected", [
    ([10, 20, 30, 40], 50, 25.0),
    ([10, 20, 30, 40], 95, 38.5),
    ([40, 10, 30, 20], 0, 10.0),  # order does not matter
    ([7], 95, 7.0),
    ([], 50, None),
])
def test_percentile(values, p, expected):
    assert percentile(values, p) == (pytest.approx(expected) if expected is not None else None)


def test_latency_summary_counts_only_answers_reporting_a_stage():
    s = latency_summary([{"total": 10}, {"total": 30, "embed": 5}, {}])
    assert s == {"embed": {"p50": 5.0, "p95": 5.0, "n": 1}, "total": {"p50": 20.0, "p95": pytest.approx(29.0), "n": 2}}
    assert latency_summary([]) == {}


def answer(text="", abstained=False, citations=()):
    return {"answer": text, "abstained": abstained, "citations": list(citations)}


OOC = {"id": "o1", "answerable": False, "category": "out_of_corpus", "script": "simplified", "question": "北京?"}


@pytest.mark.parametrize("gold, ans, retrieved, expected", [
    (GOLD, answer("自由职业者可按60%作为缴费基数[1]。", citations=[cit()]), [OTHER, CLAUSE],
     dict(rank=2, citation_recall=True, precise_citations=1, citations=1, label_correct=True, key_fact=True)),
    # abstaining on an answerable question fails every answer metric but keeps the retrieval rank
    (GOLD, answer("未在已收录文件中找到相关规定。", abstained=True), [CLAUSE],
     dict(rank=1, citation_recall=False, precise_citations=0, citations=0, label_correct=False, key_fact=False)),
    (OOC, answer("未在已收录文件中找到相关规定。", abstained=True), [],
     dict(rank=None, citation_recall=None, label_correct=None, key_fact=None, abstained=True)),
])
def test_score_item(gold, ans, retrieved, expected):
    s = score_item(gold, ans, retrieved)
    assert {k: getattr(s, k) for k in expected} == expected


def test_aggregate_hand_computed():
    scores = [
        ItemScore("a", True, "citizen", "simplified", False, rank=1, citation_recall=True, precise_citations=2,
                  citations=2, label_correct=True, key_fact=True, script_correct=True),
        ItemScore("b", True, "number", "traditional", False, rank=3, citation_recall=False, precise_citations=0,
                  citations=2, label_correct=False, key_fact=True, script_correct=False),
        ItemScore("c", True, "staff", "traditional", True, rank=None, citation_recall=False, precise_citations=0,
                  citations=0, label_correct=False, key_fact=False, script_correct=True),
        ItemScore("d", False, "out_of_corpus", "simplified", True, script_correct=True),
        ItemScore("e", False, "out_of_corpus", "simplified", False, citations=1, script_correct=True),
    ]
    m = aggregate(scores)
    assert m["recall@1"] == pytest.approx(1 / 3)
    assert m["recall@3"] == pytest.approx(2 / 3)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 3) / 3)
    assert m["citation_recall"] == pytest.approx(1 / 3)
    assert m["citation_precision"] == pytest.approx(2 / 4)  # the out-of-corpus citation does not count
    assert m["label_accuracy"] == pytest.approx(1 / 3)
    assert m["key_fact_accuracy"] == pytest.approx(2 / 3)
    assert (m["abstention_precision"], m["abstention_recall"]) == (0.5, 0.5)
    assert m["false_abstentions"] == 1
    assert m["script_accuracy"] == 0.5  # of the two Traditional questions
    assert m["script_match"] == pytest.approx(4 / 5)
    assert (m["items"], m["answerable"]) == (5, 3)


def test_aggregate_of_nothing_is_undefined_not_zero():
    m = aggregate([])
    assert m["recall@5"] is None and m["citation_precision"] is None and m["abstention_recall"] is None
    assert m["items"] == 0


@pytest.mark.parametrize("module", ["eval.metrics", "eval.devset"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
