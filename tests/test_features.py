"""Feature functions, one table each, on hand-made candidates (no index needed)."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest

from assistant.candidates import Candidate
from assistant.features import CLAUSE_FEATURES, FEATURE_NAMES, Question, TermWeights
from assistant.phrases import PUNCT, longest_shared_run, opens_with, question_subject, shared_phrase
from assistant.featurize import feature_matrix
from assistant.types import Hit
from index.lexicon import load_lexicon
from index.types import Chunk, Clause, Document, DocumentMeta

LEX = load_lexicon()
DF = {"地税": 2, "部门": 40, "负责": 30, "扩面": 3, "养老": 20, "保险": 60, "养老保险": 15, "失业": 10}


def weights(n: int = 100) -> TermWeights:
    return TermWeights(lambda t: DF.get(t, 0), n, LEX)


def candidate(text: str, title: str = "本溪市专项行动实施方案", heading: str = "", kind: str = "l3",
              path=("四", "(二)", "3"), dense: float = 0.8, bm25: float = 2.0, dense_rank: int = 0, bm25_rank: int = 0,
              doc_id: str = "d1", via: str = "hybrid", headings=("工作措施",), inferred: bool = False, rrf: float = 0.03,
              doc_score: float = 0.05, doc_rank: int = 0, doc_hits: int = 1, title_bm25: float = 0.0,
              bm25_exp: float = 0.0, bm25_exp_rank: int = 0, memory: float = 0.0, memory_votes: int = 0,
              memory_law: int = 0) -> Candidate:
    doc = Document(doc_id, f"{doc_id}.txt", f"/x/{doc_id}.txt", "0", DocumentMeta(title=title), text, text, "simplified")
    clause = Clause(doc_id, f"{doc_id}#x", "四、(二)3.", tuple(path), kind, tuple(headings), heading, text, 0, len(text),
                    inferred=inferred)
    chunk = Chunk(f"{doc_id}#x~0", doc_id, clause.clause_id, text, text, text, 0, len(text))
    hit = Hit(chunk, clause, doc, rrf, dense_rank, bm25_rank, via=via)
    return Candidate(hit, dense, bm25, dense_rank, bm25_rank, rrf, doc_score, doc_rank, doc_hits, title_bm25, bm25_exp,
                     bm25_exp_rank, memory, memory_votes, memory_law)


def question(norm: str, **kw) -> Question:
    return Question.make(norm, weights(), LEX, **kw)


def value(name: str, q: Question, c: Candidate, others=()) -> float:
    x = feature_matrix(q, [c, *others])
    return float(x[0, FEATURE_NAMES.index(name)])


def test_every_feature_is_registered_once_and_named():
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES)) == len(CLAUSE_FEATURES)
    x = feature_matrix(question("地税部门负责什么"), [candidate("地税部门要实行同征同查")])
    assert x.shape == (1, len(FEATURE_NAMES)) and np.isfinite(x).all()


@pytest.mark.parametrize("q,text,name,expected", [
    # the actor the question opens with opens the clause, also in its full name
    ("地税部门在扩面工作中负责什么", "3.地税部门要实行税收和养老保险费同征同查", "subject_opens", 1.0),
    ("工商部门负责什么", "4.工商行政管理部门在核发营业执照时", "subject_opens", 1.0),
    ("工商部门负责什么", "工会、共青团和工商联要配合", "subject_opens", 0.0),
    ("自由职业者怎么交养老保险", "地税部门要实行同征同查", "subject_opens", 0.0),
    # asked-for number/date/department present in the clause
    ("失业保险金每月发多少", "按最低工资标准的80%按月发放", "asks_number_has", 1.0),
    ("失业保险金每月发多少", "按月发放失业保险金", "asks_number_has", 0.0),
    ("失业保险金怎么领", "按最低工资标准的80%按月发放", "asks_number_has", 0.0),  # not asked
    ("什么时候完成扩面任务", "到2007年末参保人数达到294.5万人", "asks_date_has", 1.0),
    ("由哪个部门负责审核", "劳动保障部门负责审核", "asks_department_has", 1.0),
    # longest shared run of characters
    ("城市低保标准是多少", "城市低保标准由各市确定", "phrase", 6.0),
    ("试用期", "劳动合同期限三个月以上", "phrase", 1.0),  # only '期'
    ("试用期", "劳动合同三个月以上", "phrase", 0.0),
])
def test_text_features(q, text, name, expected):
    assert value(name, question(q), candidate(text)) == pytest.approx(expected)


def test_coverage_weighs_rare_terms_by_idf_squared():
    """'地税' (df 2) and '部门' (df 40) present, '负责' (df 30) missing -> idf^2 share."""
    q = question("地税部门负责")
    w = weights()
    idf = {t: w.idf(t) for t in q.terms}
    expect = sum(idf[t] ** 2 for t in q.terms if t in ("地税", "部门")) / sum(v ** 2 for v in idf.values())
    assert value("cov_chunk", q, candidate("地税部门要同征同查")) == pytest.approx(expect, rel=1e-5)
    assert value("cov_chunk", q, candidate("与问题无关的文字", doc_id="d2")) == 0.0


def test_coverage_counts_a_synonym_of_an_everyday_word():
    """'社保' in the question, '社会保险' in the clause."""
    q = question("社保")
    assert value("cov_text", q, candidate("参加社会保险")) == pytest.approx(1.0)


def test_cov_unique_ignores_words_the_title_already_says():
    q = question("本溪养老保险")
    c = candidate("失业人员按月领取", title="本溪市养老保险实施方案")
    assert value("cov_unique", q, c) == 0.0
    assert value("title_cov", q, c) == pytest.approx(1.0)


@pytest.mark.parametrize("name,kw,expected", [
    ("dense", {"dense": 0.73}, 0.73),
    ("dense_rank", {"dense_rank": 3}, 0.25),
    ("bm25_rank", {"bm25_rank": 1}, 0.5),
    ("bm25_rank", {"bm25": 0.0}, 0.0),  # no query word at all: not ranked lexically
    ("depth", {"path": ("第五条", "第二款")}, 2.0),
    ("kind", {"kind": "article"}, 0.0),
    ("kind", {"kind": "preamble"}, 7.0),
    ("lookup", {"via": "lookup"}, 1.0),
    ("doc_kind", {"title": "中华人民共和国劳动合同法"}, 0.0),
    ("doc_kind", {"title": "关于做好扩面工作的通知"}, 7.0),
    ("own_heading_cov", {"heading": "地税部门的职责"}, None),
    # first-stage signals, scaled as the model sees them
    ("rrf", {"rrf": 0.03}, 1.8),  # x 60
    ("doc_score", {"doc_score": 0.05}, 3.0),  # x 60
    ("doc_rank", {"doc_rank": 3}, 0.25),
    ("doc_hits", {"doc_hits": 4}, math.log1p(4)),
    ("title_bm25", {"title_bm25": 2.5}, 2.5),
    ("bm25_exp_rel", {"bm25_exp": 1.5}, 1.0),  # the only candidate is the best
    ("bm25_exp_rel", {"bm25_exp": 0.0}, 0.0),
    ("bm25_exp_rank", {"bm25_exp": 1.5, "bm25_exp_rank": 1}, 0.5),
    ("bm25_exp_rank", {"bm25_exp": 0.0, "bm25_exp_rank": 1}, 0.0),  # no expanded word: not ranked
    ("length", {}, math.log1p(len("地税部门要同征同查"))),
    ("inferred", {"inferred": True}, 1.0),  # a clause marker the parser had to guess
    ("inferred", {}, 0.0),
    # the question memory: the best remembered question citing the article, and how many did
    ("memory", {"memory": 0.91, "memory_votes": 3}, 0.91),
    ("memory_votes", {"memory": 0.91, "memory_votes": 3}, 3.0),
    ("memory_gap", {"memory": 0.91}, 0.0),  # the only candidate is the best recalled
    ("memory_gap", {}, 1.0),  # not recalled: as far as a gap goes
    ("memory_votes", {}, 0.0),
    # remembered questions citing an article of the candidate's law (its article recalled or not)
    ("memory_law", {"memory_law": 12}, 12.0),
    ("memory_law", {"memory": 0.91, "memory_votes": 3, "memory_law": 5}, 5.0),
    ("memory_law", {}, 0.0),
])
def test_candidate_features(name, kw, expected):
    q = question("地税部门负责什么")
    got = value(name, q, candidate("地税部门要同征同查", **kw))
    if expected is None:
        assert got > 0
    else:
        assert got == pytest.approx(expected)


@pytest.mark.parametrize("name,kw,present", [
    # heading_cov reads title, headings and the clause's own heading; cov adds the clause text
    ("heading_cov", {"text": "同征同查", "headings": ("地税部门",)}, {"地税", "部门"}),
    ("heading_cov", {"text": "地税部门要负责", "headings": ()}, set()),
    ("heading_cov", {"text": "同征同查", "headings": (), "heading": "负责事项"}, {"负责"}),
    ("cov", {"text": "要负责同征同查", "headings": ("地税部门",)}, {"地税", "部门", "负责"}),
    ("cov", {"text": "同征同查", "headings": ()}, set()),
])
def test_coverage_of_headings_and_text(name, kw, present):
    q = question("地税部门负责什么")
    idf2 = {t: q.weights.idf(t) ** 2 for t in q.terms}
    expect = sum(idf2[t] for t in present) / sum(idf2.values())
    kw = {"title": "专项行动方案", **kw}
    assert value(name, q, candidate(**kw)) == pytest.approx(expect, rel=1e-5)


def test_relative_features_compare_with_the_best_candidate():
    q = question("地税部门负责什么")
    a, b = candidate("地税部门", dense=0.9, bm25=4.0), candidate("工商部门", dense=0.7, bm25=1.0, doc_id="d2")
    x = feature_matrix(q, [a, b])
    col = FEATURE_NAMES.index
    assert x[1, col("dense_gap")] == pytest.approx(0.2) and x[0, col("dense_gap")] == 0
    assert x[1, col("bm25_rel")] == pytest.approx(0.25) and x[0, col("bm25_rel")] == 1
    a, b = candidate("地税部门", memory=0.93, memory_votes=2), candidate("工商部门", memory=0.88, doc_id="d2")
    x = feature_matrix(q, [a, b, candidate("税务", doc_id="d3")])
    assert x[:, col("memory_gap")].tolist() == pytest.approx([0.0, 0.05, 1.0])


def test_named_and_preferred_documents():
    q = question("本溪专项行动", named={"d1": 3.0}, prefer={"d1"})
    assert value("named_doc", q, candidate("x")) == 3.0 and value("prefer_doc", q, candidate("x")) == 1.0
    assert value("named_doc", q, candidate("x", doc_id="d9")) == 0.0


@pytest.mark.parametrize("q,t,n", [("低保标准是多少", "城市低保标准由", 4), ("甲乙", "丙丁", 0), ("", "abc", 0),
                                   ("养老保险", "养老保险", 4)])
def test_shared_phrase(q, t, n):
    assert shared_phrase(q, t) == n


def test_question_subject_and_opens_with_agree():
    subject = question_subject("专项行动里工商部门负责什么", LEX)
    assert subject == "工商部门"
    assert opens_with(subject, "工商行政管理部门要…", LEX.pattern("agent"))


def test_idf_of_a_single_character_is_a_third():
    w = weights()
    assert w.idf("交") == pytest.approx(math.log(1 + 100) / 3)


def binary_search_run(q: str, t: str) -> int:
    """The former shared_phrase search: a shared run of n implies one of every shorter length."""
    lo, hi = 0, min(len(q), len(t), 24)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if any(q[i:i + mid] in t for i in range(len(q) - mid + 1)):
            lo = mid
        else:
            hi = mid - 1
    return lo


def test_longest_shared_run_agrees_with_a_binary_search():
    rng = random.Random(7)
    for _ in range(3000):
        alphabet = "甲乙丙丁"[: rng.randint(1, 4)]
        q = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        t = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        assert longest_shared_run(q, t) == binary_search_run(q, t), (q, t)
    assert longest_shared_run("甲" * 40, "甲" * 40) == 24  # capped


@pytest.mark.parametrize("q,t,n", [("低保标准是多少", "城市低保标准由", 4), ("养老保险", "养老，保险", 4), ("", "abc", 0)])
def test_shared_phrase_leaves_punctuation_out(q, t, n):
    assert shared_phrase(q, t) == n == binary_search_run(PUNCT.sub("", q), PUNCT.sub("", t))
