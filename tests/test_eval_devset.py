"""The gold dev set: size and mix, and every gold clause, path, evidence and key fact checked
against the clause parser's view of data/corpus."""
from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache

import pytest

from eval.devset import item_problems, load_set
from eval.metrics import normalize
from index.errors import PolicyQAError
from index.normalize import detect_script
from index.pipeline import discover_files, parse_document
from tests.conftest import CORPUS

ITEMS = load_set("dev")
ANSWERABLE = [i for i in ITEMS if i["answerable"]]
# the conversation set (eval/data/followups.jsonl) is held to the same checks
FOLLOWUPS = load_set("followups")


@lru_cache(maxsize=None)
def corpus_docs():
    return {doc_id: parse_document(path, doc_id, path.read_bytes()) for path, doc_id in discover_files([CORPUS])}


def test_size_and_mix():
    assert len(ITEMS) >= 80
    assert sum(not i["answerable"] for i in ITEMS) >= 12
    assert sum(i["script"] == "traditional" for i in ITEMS) >= 8
    followups = [i for i in ITEMS if i.get("history")]
    assert len(followups) >= 6
    assert any(len(i["history"]) >= 4 for i in followups), "no three-turn conversation"
    cats = Counter(i["category"] for i in ITEMS)
    assert all(cats[c] >= 6 for c in ("citizen", "staff", "number", "lookup", "followup")), cats
    assert {i["doc_id"] for i in ANSWERABLE} == set(corpus_docs()), "every bundled document has gold questions"


def test_ids_are_unique():
    ids = [i["id"] for i in ITEMS]
    assert len(ids) == len(set(ids))


def test_the_follow_up_set_is_all_conversations_and_split_in_two():
    from eval.splits import set_part

    assert len(FOLLOWUPS) >= 40 and all(i.get("history") for i in FOLLOWUPS)
    parts = [set_part(FOLLOWUPS, "followups", p) for p in ("calibration", "test")]
    assert sum(map(len, parts)) == len(FOLLOWUPS) and not {i["id"] for i in parts[0]} & {i["id"] for i in parts[1]}
    assert all(sum(not i["answerable"] for i in part) >= 6 for part in parts)


@pytest.mark.parametrize("item", ITEMS + FOLLOWUPS, ids=lambda i: i["id"])
def test_item_shape(item):
    assert item_problems(item) == []
    assert item["script"] == detect_script(item["question"])
    if not item["answerable"]:
        assert item["category"] == "out_of_corpus"
        assert "gold_label" not in item and "key_fact" not in item
    history = item.get("history") or []
    assert [h["role"] for h in history] == ["user", "assistant"] * (len(history) // 2)


@pytest.mark.parametrize("item", ANSWERABLE + [i for i in FOLLOWUPS if i["answerable"]], ids=lambda i: i["id"])
def test_gold_points_at_a_real_clause(item):
    doc = corpus_docs()[item["doc_id"]]
    clauses = [c for c in doc.clauses if c.label == item["gold_label"]]
    assert len(clauses) == 1, f"{item['gold_label']} names {len(clauses)} clauses of {item['doc_id']}"
    clause = clauses[0]
    assert list(clause.path) == item["gold_path"]
    assert item["gold_evidence"] in clause.text, "gold_evidence is not verbatim in the gold clause"
    assert normalize(item["gold_evidence"]) in normalize(doc.text)
    assert normalize(item["key_fact"]) in normalize(clause.text), "key fact not stated by the gold clause"
    assert 8 <= len(item["gold_evidence"]) <= 60


@pytest.mark.parametrize("item, problem", [
    ({"id": "x", "question": "?", "answerable": False, "category": "out_of_corpus"}, "missing script"),
    ({"id": "x", "question": "?", "answerable": True, "category": "citizen", "script": "simplified"}, "missing gold_evidence"),
    ({"id": "x", "question": "?", "answerable": "yes", "category": "citizen", "script": "simplified"},
     "answerable must be true or false"),
    ({"id": "x", "question": "?", "answerable": False, "category": "weather", "script": "simplified"}, "unknown category"),
    ({"id": "x", "question": "?", "answerable": False, "category": "out_of_corpus", "script": "simplified",
      "history": [{"role": "bot", "content": "hi"}]}, "history must be"),
    ({**ANSWERABLE[0], "gold_evidence": "太短"}, "8-60 characters"),
    ([], "not a JSON object"),
])
def test_item_problems_finds(item, problem):
    assert any(problem in p for p in item_problems(item))


@pytest.mark.parametrize("lines, message", [
    (["{not json"], ":1: not JSON"),
    ([json.dumps(ITEMS[0]), json.dumps(ITEMS[0])], ":2: duplicate id"),
    (["", json.dumps({"id": "x", "question": "?", "answerable": False})], ":2: missing category"),
    ([], "has no items"),
])
def test_load_set_rejects(tmp_path, lines, message):
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(PolicyQAError, match=message):
        load_set(str(path))


def test_load_set_missing_file(tmp_path):
    with pytest.raises(PolicyQAError, match="cannot read gold set"):
        load_set(str(tmp_path / "nope.jsonl"))
