"""RatingsStore persistence, merging and export (on SQLite and on PostgreSQL: `database_location`
in conftest.py); Cohen's kappa by hand; agreement between evaluators.

The database itself (old files, several processes, a database that is gone) is tests/test_db.py."""
from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from web.ratings import RatingsStore, agreement, cohen_kappa, read_csv


def test_save_merges_and_persists_across_instances(tmp_path, database_location):
    path = tmp_path / "sub" / "ratings.sqlite3" if database_location.endswith(".sqlite3") else database_location
    store = RatingsStore(path)
    store.save("alice", "q1", question="自由职业者怎么交养老保险?", correctness=4)
    store.save("alice", "q1", citation_marks={"1": True})
    store.save("alice", "q1", citation_marks={2: False}, comment="第二条引用不对")
    again = RatingsStore(path)  # a server restart
    r = again.get("alice", "q1")
    assert r["correctness"] == 4
    assert r["question"] == "自由职业者怎么交养老保险?"
    assert r["citation_marks"] == {"1": True, "2": False}
    assert r["comment"] == "第二条引用不对"
    assert r["completeness"] is None and r["abstain_ok"] is None
    assert again.get("bob", "q1") is None


def test_wal_mode_and_one_row_per_evaluator_item(tmp_path):
    path = tmp_path / "r.sqlite3"
    store = RatingsStore(path)
    store.save("alice", "q1", correctness=1)
    store.save("alice", "q1", correctness=5)
    store.save("bob", "q1", correctness=3)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 2
    assert store.get("alice", "q1")["correctness"] == 5
    assert store.evaluators() == ["alice", "bob"]


@pytest.mark.parametrize("kw", [{"correctness": 0}, {"correctness": 6}, {"completeness": 9}])
def test_scores_out_of_range_are_rejected(kw, database_location):
    with pytest.raises(ValueError, match="between 1 and 5"):
        RatingsStore(database_location).save("alice", "q1", **kw)


def test_empty_evaluator_is_rejected(database_location):
    with pytest.raises(ValueError, match="evaluator"):
        RatingsStore(database_location).save("  ", "q1", correctness=3)


def test_progress_counts_items_with_a_correctness_score(database_location):
    store = RatingsStore(database_location)
    store.save("alice", "q1", correctness=3)
    store.save("alice", "q2", comment="todo")  # not scored yet
    store.save("alice", "other", correctness=3)  # not in this question set
    assert store.progress("alice", ["q1", "q2", "q3"]) == (1, 3)
    assert store.progress("bob", ["q1"]) == (0, 1)


def test_concurrent_saves_from_threads(database_location):
    store = RatingsStore(database_location)

    def rate(ev):
        for i in range(20):
            store.save(ev, f"q{i}", correctness=1 + i % 5, citation_marks={str(i % 3): True})
            store.save("shared", "q0", citation_marks={f"{ev}-{i}": True})  # one row, merged by every thread

    threads = [threading.Thread(target=rate, args=(f"e{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.all()) == 81
    assert len(store.get("shared", "q0")["citation_marks"]) == 80  # no save lost another's mark


def test_export_csv_and_jsonl_round_trip(tmp_path, database_location):
    store = RatingsStore(database_location)
    answer = {"answer": "见[1]", "citations": [{"n": 1, "label": "四、(二)3."}]}
    store.save("alice", "q1", question="问题, 带逗号\n和换行", answer_json=answer, correctness=4, completeness=3,
               abstain_ok=True, citation_marks={"1": True}, comment='说 "对"')
    store.save("bob", "q2", correctness=2, abstain_ok=False)
    rows = store.all()
    from_csv = read_csv(store.export_csv(tmp_path / "out" / "r.csv"))
    assert from_csv == rows
    with open(store.export_jsonl(tmp_path / "out" / "r.jsonl"), encoding="utf-8") as f:
        from_jsonl = [json.loads(line) for line in f]
    assert from_jsonl == rows
    assert json.loads(rows[0]["answer_json"]) == answer


@pytest.mark.parametrize("a, b, expected", [
    # p_o = 3/4; p_e = (2*1 + 2*3)/16 = 1/2 -> (0.75 - 0.5) / 0.5
    ([1, 1, 2, 2], [1, 2, 2, 2], 0.5),
    # perfect agreement over two categories
    ([1, 2, 1, 2], [1, 2, 1, 2], 1.0),
    # a single category used by both: chance agreement is 1, treated as perfect
    ([3, 3, 3], [3, 3, 3], 1.0),
    # systematic disagreement: p_o = 0, p_e = 1/2 -> -1
    ([True, False], [False, True], -1.0),
    # agree at items 1, 3, 5: p_o = 3/5; counts a: {1:2, 2:2, 3:1}, b: {1:1, 2:2, 3:2}
    # -> p_e = (2*1 + 2*2 + 1*2)/25 = 8/25; kappa = (15/25 - 8/25) / (17/25) = 7/17
    ([1, 1, 2, 2, 3], [1, 2, 2, 3, 3], 7 / 17),
])
def test_cohen_kappa_by_hand(a, b, expected):
    assert cohen_kappa(a, b) == pytest.approx(expected)


def test_cohen_kappa_rejects_unequal_lengths():
    with pytest.raises(ValueError):
        cohen_kappa([1, 2], [1])


def test_agreement_pairs_and_disagreements(database_location):
    store = RatingsStore(database_location)
    for item, ca, cb in [("q1", 1, 1), ("q2", 1, 2), ("q3", 2, 2), ("q4", 2, 2)]:
        store.save("alice", item, question=f"问题{item}", correctness=ca, citation_marks={"1": True})
        store.save("bob", item, correctness=cb, citation_marks={"1": item != "q4"})
    store.save("alice", "only-alice", correctness=5)
    result = agreement(store.all())
    (pair,) = result["pairs"]
    assert (pair["a"], pair["b"], pair["items"]) == ("alice", "bob", 4)
    # correctness a=[1,1,2,2] b=[1,2,2,2] -> 0.5 (see test above)
    assert pair["kappa_correctness"] == pytest.approx(0.5)
    # marks a=[T,T,T,T] b=[T,T,T,F]: p_o = 3/4, p_e = (4*3 + 0*1)/16 = 3/4 -> 0
    assert pair["kappa_citations"] == pytest.approx(0.0)
    assert [d["item_id"] for d in result["disagreements"]] == ["q2", "q4"]
    q2 = result["disagreements"][0]
    assert q2["question"] == "问题q2"
    assert q2["ratings"]["alice"]["correctness"] == 1 and q2["ratings"]["bob"]["correctness"] == 2


def test_agreement_with_one_evaluator_has_no_pairs(database_location):
    store = RatingsStore(database_location)
    store.save("alice", "q1", correctness=3)
    assert agreement(store.all()) == {"pairs": [], "disagreements": []}


# ---- limits on what one rating may carry (every caller of the store gets them) ----

@pytest.mark.parametrize("kw,message", [
    ({"evaluator": "评" * 101}, "评估人姓名过长（101 字），请限制在 100 字以内"),
    ({"evaluator": "a" * 100_000}, "评估人姓名过长"),
    ({"comment": "很" * 5001}, "评语过长（5001 字），请限制在 5000 字以内"),
    ({"comment": "x" * 1_000_000}, "评语过长"),
    ({"comment": "坏\udcff字"}, "评语含有无法保存的字符"),
    ({"evaluator": "alice\udcff"}, "评估人姓名含有无法保存的字符"),
    # NUL: PostgreSQL's text cannot hold it, so neither backend takes it
    ({"comment": "空\x00字"}, "评语含有无法保存的空字符"),
    ({"question": "养老\udcff保险"}, "问题含有无法保存的字符"),
])
def test_oversized_or_unstorable_text_is_refused(kw, message, database_location):
    from index.errors import PolicyQAError, RatingRefused

    store = RatingsStore(database_location)
    args = {"evaluator": "alice", **kw}
    with pytest.raises(RatingRefused, match=message) as exc:
        store.save(args.pop("evaluator"), "q1", correctness=3, **args)
    assert isinstance(exc.value, PolicyQAError)
    assert store.all() == []  # nothing half-saved


def test_text_at_the_limits_is_stored(database_location):
    store = RatingsStore(database_location)
    store.save("评" * 100, "q1", comment="很" * 5000)
    assert store.get("评" * 100, "q1")["comment"] == "很" * 5000


def test_limits_come_from_settings(tmp_path, monkeypatch):
    from index.errors import RatingRefused
    from index.settings import Settings

    store = RatingsStore(tmp_path / "r.sqlite3", Settings(max_evaluator_chars=5, max_comment_chars=10))
    with pytest.raises(RatingRefused, match="5 字以内"):
        store.save("abcdef", "q1")
    with pytest.raises(RatingRefused, match="10 字以内"):
        store.save("alice", "q1", comment="x" * 11)
    monkeypatch.setenv("POLICYQA_MAX_COMMENT_CHARS", "3")  # a store made without settings reads the environment
    with pytest.raises(RatingRefused, match="3 字以内"):
        RatingsStore(tmp_path / "r.sqlite3").save("alice", "q1", comment="四个字了")


@pytest.mark.parametrize("name,value", [("max_evaluator_chars", 0), ("max_comment_chars", -5)])
def test_limit_settings_are_validated(name, value):
    from index.settings import Settings

    with pytest.raises(ValueError, match=f"{name} must be greater than 0, got {value}"):
        Settings(**{name: value})
