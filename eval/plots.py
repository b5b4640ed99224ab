"""The report's PNG plots (eval/report.py, eval/report_splits.py), drawn with matplotlib.

    metrics.png          metric bars per config (plot_metrics)
    latency.png          histograms of total and per-stage latency (plot_latency)
    stard_recall.png     Recall@k curves per STARD method (plot_stard)
    risk_coverage.png    accuracy of the answered against the share answered (plot_risk_coverage)
"""
from __future__ import annotations

from pathlib import Path

# plain BM25 over jieba tokens, one chunk per article (numbers given with the benchmark)
STARD_REFERENCE = {"R@10": 0.446, "R@100": 0.651}
BAR_METRICS = ("recall@5", "citation_recall", "citation_precision", "label_accuracy", "key_fact_accuracy",
               "abstention_recall", "script_accuracy")


def pyplot():
    """matplotlib's pyplot drawing to files (the Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> Path:
    """Write a figure to path as PNG, laid out, and free it; returns path."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path


def plot_metrics(runs: dict[str, dict], path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / max(1, len(runs))
    for i, (config, run) in enumerate(runs.items()):
        values = [run["metrics"].get(m) or 0.0 for m in BAR_METRICS]
        xs = [j + i * width for j in range(len(BAR_METRICS))]
        bars = ax.bar(xs, values, width, label=config)
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=7)
    ax.set_xticks([j + width * (len(runs) - 1) / 2 for j in range(len(BAR_METRICS))], BAR_METRICS, rotation=20, fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_title("Dev set: metrics per configuration")
    ax.legend()
    return save(fig, path)


def _log_bins(values: list[float], n: int = 30):
    import numpy as np

    lo, hi = max(min(values), 0.01), max(max(values), 0.02)
    return np.logspace(np.log10(lo), np.log10(hi * 1.01), n)


def plot_latency(runs: dict[str, dict], path: Path) -> Path:
    """Histograms on a log axis: stages differ by orders of magnitude (BM25 ~1 ms, embedding ~10-50 ms)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    totals = {c: [it["timings_ms"]["total"] for it in r["items"] if it["timings_ms"].get("total") is not None]
              for c, r in runs.items()}
    every = [v for vs in totals.values() for v in vs]
    for config, values in totals.items():
        if values:
            axes[0].hist(values, bins=_log_bins(every), alpha=0.6, label=config)
    axes[0].set_xlabel("total ms per question (log)")
    axes[0].set_ylabel("questions")
    axes[0].set_title("End-to-end latency")
    shipped = runs.get("shipped") or next(iter(runs.values()))
    stages = {s: [max(it["timings_ms"][s], 0.01) for it in shipped["items"] if s in it["timings_ms"]]
              for s in ("embed", "faiss", "bm25", "rerank", "answer")}
    every = [v for vs in stages.values() for v in vs]
    for stage, values in stages.items():
        if values:
            axes[1].hist(values, bins=_log_bins(every, 40), alpha=0.5, label=stage)
    axes[1].set_xlabel("ms (log)")
    axes[1].set_title(f"Per stage ({shipped['config']})")
    for ax in axes:
        ax.set_xscale("log")
        ax.legend(fontsize=8)
    return save(fig, path)


def plot_stard(results: list[dict], path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        curve = r["recall_curve"]
        n = "all" if r.get("sample") is None else r["queries"]
        ax.plot(range(1, len(curve) + 1), curve, label=f"{r['mode']} ({r['embedder']}, n={n})")
    ax.scatter([10, 100], [STARD_REFERENCE["R@10"], STARD_REFERENCE["R@100"]], marker="x", color="black",
               label="reference BM25 (article chunks)", zorder=3)
    ax.set_xscale("log")
    ax.set_xlabel("k (articles)")
    ax.set_ylabel("Recall@k")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title("STARD: Recall@k")
    ax.legend(fontsize=8)
    return save(fig, path)


def plot_risk_coverage(curves: dict[str, list[tuple[float, float]]], path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, pts in curves.items():
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=name)
    ax.set_xlabel("share of questions answered (most confident first)")
    ax.set_ylabel("accuracy of the answered")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)
