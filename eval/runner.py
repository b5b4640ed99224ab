"""Answer a gold set with one system configuration and score every answer.

Configurations:

- "shipped": the default Assistant, asked item by item exactly as `python -m assistant batch`
  does (`batch_row`), so the scores are those of the batch contract users get.
- "naive": the fixed-size-chunk baseline of eval/naive.py on the same embedder.

Retrieval metrics need the ranked clauses behind an answer, which the batch contract does not
carry; `shipped_ranking` runs the Assistant's own `retrieve` again and keeps the top 10.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from eval.metrics import RECALL_KS, aggregate, latency_summary, score_item
from index.errors import PolicyQAError
from index.settings import REPO_ROOT, Settings

CONFIGS = ("shipped", "naive")
REPORTS_DIR = Path(__file__).resolve().parent / "reports"
RUNS_DIR = REPORTS_DIR / "runs"
RANK_DEPTH = max(RECALL_KS)


def default_index_dir(embedder: str) -> str:
    """A private index of the bundled corpus per embedder, so eval never rebuilds the app's index."""
    return str(REPO_ROOT / "var" / "eval" / f"index-{embedder.replace(':', '_').replace('/', '_')}")


def batch_row(assistant, item: dict, lineno: int) -> dict:
    """One output row of `python -m assistant batch` for one input item (same calls, same errors)."""
    try:
        answer = assistant.ask(item["question"], item.get("history") or [])
        return {"id": item.get("id", str(lineno)), **answer.to_json()}
    except PolicyQAError as exc:
        return {"id": item.get("id", str(lineno)), "question": item["question"], "error": str(exc)}


def shipped_ranking(assistant, item: dict, row: dict, depth: int = RANK_DEPTH) -> list[str]:
    """Clause texts the Assistant ranks for this question, best first (exact lookups first).

    Uses `Assistant.retrieve`, the very retrieval `ask` runs (injection stripping, follow-up
    rewrite, synonyms, fusion, rerank), only keeping `depth` hits instead of top_k.
    """
    _, hits = assistant.retrieve(item["question"], item.get("history") or [], k=depth)
    return [h.clause.text for h in hits[:depth]]


class ShippedSystem:
    """The default Assistant over an index of the bundled corpus."""

    name = "shipped"

    def __init__(self, settings: Settings):
        from assistant.core import Assistant

        self.assistant = Assistant.from_settings(settings, progress=False)

    def answer(self, item: dict, lineno: int) -> tuple[dict, list[str]]:
        row = batch_row(self.assistant, item, lineno)
        ranked = [] if "error" in row else shipped_ranking(self.assistant, item, row)
        return row, ranked


class NaiveSystem:
    """The fixed-size-chunk baseline (eval/naive.py)."""

    name = "naive"

    def __init__(self, settings: Settings):
        from eval.naive import NaiveRAG

        self.rag = NaiveRAG(settings, k=RANK_DEPTH)

    def answer(self, item: dict, lineno: int) -> tuple[dict, list[str]]:
        row, ranked = self.rag.ask(item["question"], item.get("history"))
        return {"id": item["id"], **row}, ranked


def make_system(config: str, settings: Settings):
    if config == "shipped":
        return ShippedSystem(settings)
    if config == "naive":
        return NaiveSystem(settings)
    raise PolicyQAError(f"unknown config {config!r}; choose one of {', '.join(CONFIGS)}")


def run_set(config: str, items: list[dict], settings: Settings, set_name: str = "", progress: bool = False) -> dict:
    """Answer and score every item; returns the run record written to eval/reports/runs/<config>.json."""
    t0 = time.perf_counter()
    system = make_system(config, settings)
    setup_s = time.perf_counter() - t0
    rows, scores = [], []
    for lineno, item in enumerate(items, 1):
        row, ranked = system.answer(item, lineno)
        score = score_item(item, row, ranked)
        scores.append(score)
        rows.append({
            "id": item["id"], "category": item.get("category"), "script": item.get("script"),
            "answerable": item["answerable"], "question": item["question"], "history": item.get("history"),
            "gold": {k: item[k] for k in ("doc_id", "gold_label", "gold_evidence", "key_fact") if k in item},
            "answer": row.get("answer", ""), "abstained": row.get("abstained"), "error": row.get("error"),
            "outcome": row.get("outcome"), "confidence": row.get("confidence"),
            "rewritten_query": row.get("rewritten_query"),
            # quotes cut at 200 characters: the naive baseline quotes whole 500-character chunks
            "citations": [{"n": c.get("n"), "doc_id": c.get("doc_id"), "label": c.get("label"),
                           "quote": (c.get("quote") or "")[:200]} for c in row.get("citations", [])],
            "timings_ms": row.get("timings_ms", {}), "scores": score.to_json(),
        })
        if progress:
            print(f"[{lineno}/{len(items)}] {item['id']}", file=sys.stderr)
    return {
        "config": config, "set": set_name, "embedder": settings.embedder, "index_dir": settings.index_dir,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "setup_s": round(setup_s, 2),
        "run_s": round(time.perf_counter() - t0 - setup_s, 2),
        # latency depends on what else the machine is doing: record it next to the numbers
        "load_avg": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
        "metrics": aggregate(scores),
        "latency_ms": {stage: {k: round(v, 2) for k, v in s.items()}
                       for stage, s in latency_summary([r["timings_ms"] for r in rows]).items()},
        "by_category": {cat: aggregate([s for s in scores if s.category == cat])
                        for cat in sorted({s.category for s in scores})},
        "items": rows,
    }


def write_run(record: dict, folder: Path = RUNS_DIR, suffix: str = "") -> Path:
    """eval/reports/runs/<config><suffix>.json (suffix '-dev-test' for a part), indented UTF-8."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record['config']}{suffix}.json"
    path.write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def eval_settings(index_dir: str | None, embedder: str | None) -> Settings:
    """Settings from the environment, with eval's own index location unless one is given."""
    settings = Settings.from_env(embedder=embedder)
    if index_dir is None and "POLICYQA_INDEX_DIR" in os.environ:
        return settings
    return replace(settings, index_dir=index_dir or default_index_dir(settings.embedder))
