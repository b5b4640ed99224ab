"""Versions of one regulation: the latest is answered from, the older ones only when asked for."""
from __future__ import annotations

import pytest

from index.types import Document, DocumentMeta
from index.versions import superseded, version_date, work_key

from tests.conftest import make_settings


def doc(doc_id: str, source: str, title: str = "示例市社会救助条例", issue: str = "", effective: str = "") -> Document:
    meta = DocumentMeta(title=title, issue_date=issue, effective_date=effective)
    return Document(doc_id, source, "/x/" + source, "0", meta, "", "", "simplified")


@pytest.mark.parametrize("source,issue,effective,date", [
    ("示例市社会救助条例(2018-11-22).md", "", "", "2018-11-22"),
    ("示例市社会救助条例(2018-11-22).md", "2018-11-22", "2019-01-01", "2019-01-01"),  # in force later
    ("示例市社会救助条例.md", "2020-05-01", "", "2020-05-01"),
    ("人格权编.md", "", "", ""),
])
def test_version_date(source, issue, effective, date):
    assert version_date(doc("a", source, issue=issue, effective=effective)) == date


@pytest.mark.parametrize("docs,expected", [
    # one work in two versions: the later supersedes the earlier, whatever their order
    ([doc("b", "示例市社会救助条例(2024-12-31).md"), doc("a", "示例市社会救助条例(2018-11-22).md")], {"a": "b"}),
    ([doc("a", "X(2010-01-01).md"), doc("b", "X(2015-01-01).md"), doc("c", "X(2020-01-01).md")], {"a": "c", "b": "c"}),
    # the books of one code share a title, not a file name (dated apart, they would otherwise supersede)
    ([doc("a", "人格权编.md", "中华人民共和国民法典", issue="2020-05-28"),
      doc("b", "合同编.md", "中华人民共和国民法典", issue="2021-01-01")], {}),
    # a version without a date, or two of the same date: which is current cannot be told
    ([doc("a", "X(2010-01-01).md"), doc("b", "X.md")], {}),
    ([doc("a", "X(2010-01-01).md"), doc("b", "X（2010-01-01）.md")], {}),
    # another title is another work
    ([doc("a", "X(2010-01-01).md", "甲条例"), doc("b", "X(2015-01-01).md", "乙条例")], {}),
])
def test_superseded(docs, expected):
    assert superseded(docs) == expected


def test_work_key_leaves_out_the_date_of_the_file_name():
    assert work_key(doc("a", "laws/示例市社会救助条例(2018-11-22).md")) == ("示例市社会救助条例", "示例市社会救助条例")


OLD = """# 示例市社会救助条例

2018年11月22日 示例市人民代表大会常务委员会通过

<!-- INFO END -->

第一条 为了保障本市居民的基本生活，制定本条例。

第五条 最低生活保障标准为每人每月五百元，由市民政部门公布。
"""
NEW = OLD.replace("每人每月五百元", "每人每月八百元").replace(
    "通过\n", "通过\n\n2024年12月31日 示例市人民代表大会常务委员会修正\n")


@pytest.fixture(scope="module")
def versions_assistant(tmp_path_factory):
    from assistant.core import Assistant
    from index.pipeline import build_index

    tmp = tmp_path_factory.mktemp("versions")
    corpus = tmp / "corpus"
    corpus.mkdir()
    (corpus / "示例市社会救助条例(2018-11-22).md").write_text(OLD, encoding="utf-8")
    (corpus / "示例市社会救助条例(2024-12-31).md").write_text(NEW, encoding="utf-8")
    settings = make_settings(tmp, corpus_dir=str(corpus))
    build_index([corpus], settings, progress=False)
    return Assistant.from_settings(settings, progress=False)


def ids(assistant) -> tuple[str, str]:
    by_source = {d.source: d.doc_id for d in assistant.data.docs.values()}
    return by_source["示例市社会救助条例(2018-11-22).md"], by_source["示例市社会救助条例(2024-12-31).md"]


def test_a_question_is_answered_from_the_latest_version(versions_assistant):
    old, new = ids(versions_assistant)
    ans = versions_assistant.ask("示例市最低生活保障标准是每人每月多少钱?")
    cited = [c.doc_id for c in (*ans.citations, *ans.related)]
    assert cited and set(cited) == {new}
    assert all(c.version == "2024-12-31" for c in (*ans.citations, *ans.related))
    assert "八百元" in " ".join(c.text for c in (*ans.citations, *ans.related))
    # the old version's clauses are not even candidates (they would be, searched as two documents)
    pool = versions_assistant.searcher.prepare("示例市最低生活保障标准是每人每月多少钱?").candidates
    assert pool and {c.hit.doc.doc_id for c in pool} == {new}


def test_the_search_superseded_setting_searches_both_versions(versions_assistant):
    """POLICYQA_SEARCH_SUPERSEDED (and `eval train --with-superseded`): the pools as they were
    before versions were told apart, the older version's clauses candidates beside the newer's."""
    from dataclasses import replace

    from assistant.core import Assistant

    old, new = ids(versions_assistant)
    both = Assistant(versions_assistant.data, versions_assistant.searcher.retriever.embedder,
                     replace(versions_assistant.settings, search_superseded=True))
    assert both.searcher.retriever.superseded == frozenset()
    assert versions_assistant.searcher.retriever.superseded == {old}
    pool = both.searcher.prepare("示例市最低生活保障标准是每人每月多少钱?").candidates
    assert {c.hit.doc.doc_id for c in pool} == {old, new}


def test_a_named_clause_is_looked_up_in_the_latest_version_without_an_ambiguity_notice(versions_assistant):
    old, new = ids(versions_assistant)
    ans = versions_assistant.ask("示例市社会救助条例第五条")
    assert ans.citations[0].doc_id == new and "八百元" in ans.citations[0].quote
    assert not any("多份文件" in n for n in ans.notices)


def test_a_filter_that_names_the_old_version_gets_it(versions_assistant):
    old, new = ids(versions_assistant)
    ans = versions_assistant.ask("示例市社会救助条例第五条", docs=[old])
    assert ans.citations[0].doc_id == old and "五百元" in ans.citations[0].quote
    assert ans.citations[0].version == "2018-11-22"


def test_the_plain_hybrid_search_and_its_langchain_retriever_leave_the_old_version_out(versions_assistant):
    from assistant.retrieve import PolicyRetriever

    old, new = ids(versions_assistant)
    retriever = versions_assistant.searcher.retriever
    for mode in ("hybrid", "dense", "bm25"):
        hits = retriever.search("最低生活保障标准每人每月多少", k=5, mode=mode)
        assert hits and {h.doc.doc_id for h in hits} == {new}
    docs = PolicyRetriever(retriever=retriever, k=5).invoke("示例市社会救助条例第五条")
    assert docs and {d.metadata["doc_id"] for d in docs} == {new}
    assert {h.doc.doc_id for h in retriever.search("最低生活保障标准", k=5, docs=[old])} == {old}


@pytest.mark.parametrize("question,version", [
    ("2020年版示例市社会救助条例第五条", "2018-11-22"),  # the version in force at the end of 2020
    ("2018年修正的示例市社会救助条例第五条", "2018-11-22"),
    ("修订前的示例市社会救助条例第五条", "2018-11-22"),
    ("2025年版示例市社会救助条例第五条", "2024-12-31"),  # the current one: no notice
    ("2010年版示例市社会救助条例第五条", "2024-12-31"),  # before every version: as if not asked
    ("我2020年申请的低保，示例市社会救助条例第五条怎么规定", "2024-12-31"),  # a year that asks for no version
])
def test_an_older_version_is_answered_when_the_question_asks_for_it(versions_assistant, question, version):
    ans = versions_assistant.ask(question)
    assert ans.citations and {c.version for c in ans.citations} == {version}
    assert ("五百元" if version == "2018-11-22" else "八百元") in ans.citations[0].quote
    notice = [n for n in ans.notices if "版本查找" in n]
    assert notice == ([f"已按《示例市社会救助条例》{version} 版本查找；现行版本为 2024-12-31 版本"]
                      if version == "2018-11-22" else [])


def test_the_search_for_an_older_version_leaves_out_the_current_one(versions_assistant):
    old, new = ids(versions_assistant)
    question = "2020年版示例市社会救助条例规定的最低生活保障标准是多少"
    pool = versions_assistant.searcher.prepare(question).candidates
    assert pool and {c.hit.doc.doc_id for c in pool} == {old}
    hits = versions_assistant.searcher.retriever.search(question, k=5)
    assert hits and {h.doc.doc_id for h in hits} == {old}
