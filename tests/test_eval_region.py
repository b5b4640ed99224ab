"""The region sets (eval/region.py): both parts name real articles of the region corpus, stay apart,
and a reply is scored against the place asked in its province."""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from eval.region import LOCAL, PARTS, corpus_files, load_questions, score_reply
from index.places import load_gazetteer

pytestmark = pytest.mark.skipif(not LOCAL.exists(), reason="../shared/corpus/local is not beside the checkout")


@pytest.mark.parametrize("part", sorted(PARTS))
def test_every_gold_article_is_in_a_listed_regulation(part):
    listed = {str(f.relative_to(LOCAL)) for f in corpus_files()}
    items = load_questions(PARTS[part])
    assert len({it["id"] for it in items}) == len(items) >= 70
    for it in items:
        assert it["answerable"] == bool(it.get("gold")), it["id"]  # an uncovered question names no article
        for g in it.get("gold", []):
            assert g["file"] in listed, it["id"]
            text = (LOCAL / g["file"]).read_text(encoding="utf-8")
            assert re.search(rf"{g['article']}(?![一二三四五六七八九十百零])", text), (it["id"], g["article"])


def test_the_parts_share_no_question():
    test, cal = (load_questions(PARTS[p]) for p in ("test", "calibration"))
    assert not {it["id"] for it in test} & {it["id"] for it in cal}
    assert not {it["question"] for it in test} & {it["question"] for it in cal}


@pytest.mark.parametrize("rule_place, wrong", [("重庆市", False), ("宁波市", True)])
def test_a_reply_is_scored_against_the_district_in_the_province_asked(rule_place, wrong):
    g = load_gazetteer()
    searcher = SimpleNamespace(gazetteer=g, places={"d": g.find(rule_place)[0]})
    cite = SimpleNamespace(doc_id="d", source="x.md", path=("第一条",), label="第一条")
    answer = SimpleNamespace(abstained=False, citations=[cite], outcome="answered", confidence=0.9)
    item = {"id": "t", "question": "", "place": "江北区", "province": "重庆", "answerable": True, "gold": []}
    assert score_reply(item, answer, searcher)["wrong_place"] is wrong


def test_region_calibration_examples_label_the_gold_articles_of_the_place(tmp_path):
    """eval train learns the answer-or-abstain model from the calibration part: a covered question's
    right candidates are exactly the clauses of its gold articles in its gold file (matched by file
    name and article, whatever the chapter or 款), an uncovered question has none and is unanswerable."""
    from assistant.core import Assistant
    from eval.stard import article_of
    from eval.train_examples import region_examples
    from index.embed import make_embedder
    from index.pipeline import build_index
    from tests.conftest import make_settings

    files = [LOCAL / "浙江/浙江省工伤保险条例(2020-09-24).md", LOCAL / "广东/广东省失业保险条例(2022-06-01).md"]
    settings = make_settings(tmp_path, embedder="fake")
    data, _ = build_index(files, settings, progress=False)
    names = {f.name for f in files}
    items = [it for it in load_questions(PARTS["calibration"])
             if {Path(g["file"]).name for g in it["gold"]} & names or (not it["answerable"] and it["topic"] == "unemployment")]
    covered = [it for it in items if it["answerable"]]
    assert len(covered) >= 3 and len(items) > len(covered)
    examples = region_examples(Assistant(data, make_embedder("fake"), settings, models=(None, None)), items)
    for it, e in zip(items, examples):
        assert (e.source, e.qid, e.answerable) == ("region", it["id"], it["answerable"])
        gold = {(Path(g["file"]).name, g["article"]) for g in it["gold"]}
        right = [c.hit for c, y in zip(e.prep.candidates, e.labels) if y]
        assert all((h.doc.source, article_of(tuple(h.clause.path))) in gold for h in right), it["id"]
        if it["answerable"]:
            # every pooled clause of a gold article is labelled, and the pool holds one
            assert right, it["id"]
            assert len(right) == sum((c.hit.doc.source, article_of(tuple(c.hit.clause.path))) in gold
                                     for c in e.prep.candidates)
            assert len(right) < len(e.labels)
        else:
            assert not e.labels.any()
