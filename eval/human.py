"""Aggregate human ratings (web/ratings.py) and set them against the automatic judgements.

`read_ratings(location)` reads them from the app's database (web/db.py: a SQLite file, or PostgreSQL
by URL) through web/ratings.py.

rows are `RatingsStore.all()` dicts: {evaluator, item_id, question, answer_json, correctness
(1-5|None), completeness (1-5|None), abstain_ok (True|False|None), citation_marks {n: bool},
comment, updated_at}. Gold items are dev-set dicts (eval/devset.py), matched by item_id, else by
the question text.

Automatic and human judgements disagree on an item when (mean over its raters):

- key_fact_but_incorrect: the answer contains the key fact, yet correctness <= 2
- no_key_fact_but_correct: an answered, answerable item lacks the key fact, yet correctness >= 4
- abstention: the automatic verdict on abstaining (abstained == not answerable) differs from the
  raters' majority abstain_ok

The automatic side is computed on the answer the raters saw (answer_json) when it was stored,
otherwise on the run's answer to that item.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from statistics import mean

from eval.metrics import key_fact_present

CRITERIA = ("correctness", "completeness")


def read_ratings(location) -> tuple[str, list[dict] | None]:
    """(the ratings database's name, without a password; its ratings, or None when it is a SQLite
    file that does not exist: the report creates none). `location`: a SQLite path, a database URL
    or a web.db.Database. A database that cannot be read raises DatabaseUnavailable."""
    from web.db import Database, database_url
    from web.ratings import RatingsStore

    if not isinstance(location, Database):
        url = database_url(location)
        if url.get_backend_name() == "sqlite" and not (url.database and Path(url.database).exists()):
            return str(url.database or location), None
    database = Database.open(location)
    try:
        name = str(database.path) if database.path is not None else database.name
        return name, RatingsStore(database).all()
    finally:
        if database is not location:
            database.dispose()


def _load_answer(row: dict) -> dict | None:
    raw = row.get("answer_json")
    if not raw:
        return None
    try:
        answer = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _gold_for(row: dict, by_id: dict[str, dict], by_question: dict[str, dict]) -> dict | None:
    return by_id.get(str(row["item_id"])) or by_question.get((row.get("question") or "").strip())


def _pair_kappas(rows: list[dict], field: str, kappa) -> list[dict]:
    """Cohen's kappa of `field` for every pair of raters over the items both scored."""
    by_eval: dict[str, dict[str, object]] = {}
    for r in rows:
        if r.get(field) is not None:
            by_eval.setdefault(r["evaluator"], {})[str(r["item_id"])] = r[field]
    names = sorted(by_eval)
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            common = sorted(set(by_eval[a]) & set(by_eval[b]))
            if common:
                out.append({"a": a, "b": b, "items": len(common),
                            "kappa": kappa([by_eval[a][k] for k in common], [by_eval[b][k] for k in common])})
    return out


def summarize_ratings(rows: list[dict], gold_items: list[dict], run_items: list[dict] | None = None) -> dict:
    """Means, distributions, agreement and automatic-vs-human disagreements of the ratings."""
    from web.ratings import agreement, cohen_kappa

    by_id = {str(g["id"]): g for g in gold_items}
    by_question = {g["question"].strip(): g for g in gold_items}
    runs = {str(r["id"]): r for r in (run_items or [])}
    out: dict = {"ratings": len(rows), "raters": sorted({r["evaluator"] for r in rows}),
                 "items_rated": len({str(r["item_id"]) for r in rows})}
    for field in CRITERIA:
        values = [r[field] for r in rows if r.get(field) is not None]
        out[field] = {"n": len(values), "mean": mean(values) if values else None,
                      "distribution": {s: Counter(values)[s] for s in range(1, 6)},
                      "kappa": _pair_kappas(rows, field, cohen_kappa)}
    abst = [bool(r["abstain_ok"]) for r in rows if r.get("abstain_ok") is not None]
    out["abstain_ok"] = {"n": len(abst), "share_ok": sum(abst) / len(abst) if abst else None,
                         "kappa": _pair_kappas(rows, "abstain_ok", cohen_kappa)}
    marks = [bool(v) for r in rows for v in (r.get("citation_marks") or {}).values()]
    out["citation_marks"] = {"n": len(marks), "share_correct": sum(marks) / len(marks) if marks else None}
    pairs = agreement(rows)
    out["inter_rater"] = {"pairs": pairs["pairs"], "disagreements": pairs["disagreements"]}

    items: dict[str, list[dict]] = {}
    for r in rows:
        items.setdefault(str(r["item_id"]), []).append(r)
    disagreements = []
    for item_id, rated in sorted(items.items()):
        gold = _gold_for(rated[0], by_id, by_question)
        if gold is None:
            continue
        answer = next((a for a in map(_load_answer, rated) if a is not None), None)
        if answer is None and str(gold["id"]) in runs:
            run = runs[str(gold["id"])]
            answer = {"answer": run.get("answer", ""), "abstained": run.get("abstained")}
        if answer is None:
            continue
        text, abstained = answer.get("answer") or "", bool(answer.get("abstained"))
        corr = [r["correctness"] for r in rated if r.get("correctness") is not None]
        mean_corr = mean(corr) if corr else None
        oks = [bool(r["abstain_ok"]) for r in rated if r.get("abstain_ok") is not None]
        reasons = []
        if gold["answerable"] and not abstained and mean_corr is not None:
            has_fact = key_fact_present(text, gold["key_fact"])
            if has_fact and mean_corr <= 2:
                reasons.append("key_fact_but_incorrect")
            if not has_fact and mean_corr >= 4:
                reasons.append("no_key_fact_but_correct")
        if oks and 2 * sum(oks) != len(oks):
            human_ok = 2 * sum(oks) > len(oks)
            if human_ok != (abstained == (not gold["answerable"])):
                reasons.append("abstention")
        if reasons:
            disagreements.append({"item_id": item_id, "question": gold["question"], "reasons": reasons,
                                  "mean_correctness": mean_corr, "abstained": abstained,
                                  "answer": text[:120]})
    out["auto_vs_human"] = disagreements
    return out
