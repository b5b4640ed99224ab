"""The column-at-a-time feature matrix equals the definitions called one candidate at a time,
bit for bit, on a table of questions and candidate pools (and on real candidates of the bundled corpus)."""
from __future__ import annotations

import random

import numpy as np
import pytest

from assistant.candidates import Candidate
from assistant.features import FEATURE_NAMES, Question, TermWeights, reference_matrix
from assistant.featurize import feature_matrix, pattern_sums, term_presence
from assistant.types import Hit
from index.lexicon import load_lexicon
from index.types import Chunk, Clause, Document, DocumentMeta

LEX = load_lexicon()
DF = {"地税": 2, "部门": 40, "负责": 30, "扩面": 3, "养老": 20, "保险": 60, "养老保险": 15, "失业": 10, "缴纳": 25,
      "社会保险": 12, "劳动": 50, "合同": 45, "劳动合同": 20}


def weights(n: int = 100) -> TermWeights:
    return TermWeights(lambda t: DF.get(t, 0), n, LEX)


def document(doc_id: str, title: str, clauses: list[tuple[str, str, str, tuple]]) -> tuple[Document, list[Clause]]:
    """A document of clauses (text, heading, kind, headings), one after another in its text."""
    text, spans = "", []
    for body, *_ in clauses:
        spans.append((len(text), len(text) + len(body)))
        text += body + "\n"
    doc = Document(doc_id, f"{doc_id}.txt", f"/x/{doc_id}.txt", "0", DocumentMeta(title=title), text, text,
                   "simplified")
    out = [Clause(doc_id, f"{doc_id}#{i}", f"{i}.", (str(i),) * (1 + i % 3), kind, tuple(headings), heading, body,
                  start, end, inferred=(i % 4 == 3))
           for i, ((body, heading, kind, headings), (start, end)) in enumerate(zip(clauses, spans))]
    return doc, out


def pool(seed: int = 0, empty_clause: bool = False) -> list[Candidate]:
    """~a dozen candidates over three documents, with varied signals; chunks are pieces of their clause."""
    rng = random.Random(seed)
    docs = [
        document("d1", "本溪市养老保险扩面专项行动实施方案", [
            ("3.地税部门要实行税收和养老保险费同征同查,负责扩面工作", "地税部门的职责", "l3", ("工作措施",)),
            ("4.工商行政管理部门在核发营业执照时告知参保义务", "", "l3", ("工作措施",)),
            ("到2007年末参保人数达到294.5万人", "目标", "l1", ()),
            ("", "", "para", ("附则",)),  # a clause with no text of its own: the chunk stands in
        ]),
        document("d2", "中华人民共和国劳动合同法", [
            ("第十九条 劳动合同期限三个月以上不满一年的,试用期不得超过一个月", "", "article", ("第二章",)),
            ("第二十条 劳动者在试用期的工资不得低于本单位相同岗位最低档工资的百分之八十", "", "article", ("第二章",)),
            ("用人单位应当依法缴纳社会保险费", "", "paragraph", ()),
        ]),
        document("d3", "关于做好失业保险工作的通知", [
            ("失业保险金按最低工资标准的80%按月发放", "", "mystery", ()),
            ("各市地要合理确定最低生活保障标准,由劳动保障部门负责审核", "标准", "l2", ("二、",)),
        ]),
    ]
    cands = []
    for doc, clauses in docs:
        for cl in clauses:
            if not cl.text and not empty_clause:
                continue
            piece = cl.text[: max(4, len(cl.text) * 2 // 3)] or "本条无正文的分块文字"
            chunk = Chunk(f"{cl.clause_id}~0", doc.doc_id, cl.clause_id, piece, piece, piece, cl.start, cl.start + len(piece))
            bm25 = rng.choice([0.0, 0.0, rng.uniform(0.1, 9.0)])
            via = rng.choice(["hybrid", "hybrid", "lookup"])
            dr, br = rng.randrange(60), rng.randrange(60)
            hit = Hit(chunk, cl, doc, 0.03, dr, br if bm25 else None, via=via)
            recalled = rng.random() < 0.3
            cands.append(Candidate(hit, rng.uniform(0.5, 0.95), bm25, dr, br, 1 / (61 + dr) + 1 / (61 + br),
                                   rng.uniform(0.0, 0.1), rng.randrange(4), rng.randrange(1, 9), rng.choice([0.0, 2.5]),
                                   memory=rng.uniform(0.8, 0.95) if recalled else 0.0,
                                   memory_votes=rng.randrange(1, 5) if recalled else 0,
                                   memory_law=rng.choice([0, 0, rng.randrange(1, 40)])))
    rng.shuffle(cands)
    return cands


QUESTIONS = [
    "地税部门在扩面工作中负责什么",  # an actor opens the question
    "地税部门负责扩面吗?由哪个部门负责审核",  # asks for a department
    "失业保险金每月发多少",  # asks for a number
    "什么时候完成扩面任务",  # asks for a date
    "城市低保标准是每人每月多少钱",  # answer types the clauses may not give
    "怎么交社保",  # synonyms: 社保 -> 社会保险, 交 -> 缴纳
    "劳动合同试用期最长多久",
    "本溪养老保险",  # words the title already says
    "？",  # no term at all
    "与任何条款都无关的问题",
    "二、(四)3讲了什么",
]


def assert_same(q_args: dict, cands: list[Candidate]) -> None:
    fast = feature_matrix(Question.make(**q_args), cands)
    slow = reference_matrix(Question.make(**q_args), cands)
    assert fast.dtype == slow.dtype == np.float32 and fast.shape == slow.shape == (len(cands), len(FEATURE_NAMES))
    bad = [(FEATURE_NAMES[j], i, float(slow[i, j]), float(fast[i, j]))
           for i, j in zip(*np.nonzero(fast.view(np.int32) != slow.view(np.int32)))]
    assert not bad, f"features differ (name, row, reference, fast): {bad[:5]}"


@pytest.mark.parametrize("question", QUESTIONS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_matrix_equals_the_definitions(question, seed):
    assert_same(dict(norm=question, weights=weights(), lexicon=LEX), pool(seed, empty_clause=seed == 2))


@pytest.mark.parametrize("extra", [
    {"named": {"d1": 3.0, "d2": 12.5}},  # named_doc is capped at 10
    {"prefer": {"d3"}},
    {"named": {"d2": 0.2}, "prefer": {"d1", "d2"}},
])
def test_fast_matrix_equals_the_definitions_with_named_and_preferred_documents(extra):
    assert_same(dict(norm="劳动合同试用期工资", weights=weights(), lexicon=LEX, **extra), pool(3))


def test_fast_matrix_of_no_candidates_and_of_one():
    args = dict(norm="地税部门负责什么", weights=weights(), lexicon=LEX)
    assert feature_matrix(Question.make(**args), []).shape == (0, len(FEATURE_NAMES))
    assert_same(args, pool(4)[:1])


def test_fast_matrix_of_a_question_with_more_terms_than_one_integer_holds():
    """Over 62 distinct terms: presence patterns are told apart by their bytes, not a 64-bit code."""
    question = "".join(f"{a}{b}" for a in "甲乙丙丁戊己庚辛壬癸" for b in "子丑寅卯辰巳午未") + "养老保险地税部门"
    q = Question.make(question, weights(), LEX)
    assert len(q.terms) > 62
    assert_same(dict(norm=question, weights=weights(), lexicon=LEX), pool(5))


def test_fast_matrix_on_real_candidates(fake_assistant):
    """Candidates of the bundled corpus, as answering makes them."""
    s = fake_assistant.searcher
    for question in ["自由职业者怎么交养老保险?", "地税部门在扩面工作中负责什么?", "工伤保险浮动费率怎么定?",
                     "失业保险金每月发多少钱?什么时候发?", "北京市灵活就业人员怎么交社保?"]:
        prep = s.prepare(question)
        named = s.named_documents(question)
        assert_same(dict(norm=question, weights=s.weights, lexicon=s.lexicon, named=named),
                    list(prep.candidates))


def test_term_presence_counts_a_synonym():
    q = Question.make("社保养老", weights(), LEX)
    got = term_presence(q, ["参加社会保险", "养老金", "无关"])
    want = np.array([[q.present(("t", i), t)[k] for k in range(len(q.terms))]
                     for i, t in enumerate(["参加社会保险", "养老金", "无关"])])
    assert (got == want).all() and got[0, q.terms.index("社保")] and not got[2].any()


@pytest.mark.parametrize("terms", [0, 1, 11, 63, 100])
def test_pattern_sums_are_the_masked_sums(terms):
    rng = np.random.default_rng(0)
    w = rng.uniform(0.1, 5.0, terms) ** 2
    masks = rng.random((40, terms)) > 0.5
    masks[5] = masks[17]  # a repeated pattern
    got = pattern_sums(w, masks)
    assert [float(g) for g in got] == [float(w[m].sum()) for m in masks]
