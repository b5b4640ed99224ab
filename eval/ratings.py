"""Human ratings of answers, stored per evaluator in SQLite the moment they are entered.

One table, primary key (evaluator, item_id); every save is an upsert that merges with what is
stored, so a half-rated item survives a reload, a browser crash or a server restart.

    store = RatingsStore("var/ratings.sqlite3")
    store.save("alice", "q1", correctness=4)
    store.save("alice", "q1", citation_marks={"1": True, "2": False})
    store.get("alice", "q1")["correctness"]  # -> 4 (kept: None arguments leave fields unchanged)
"""
from __future__ import annotations

import csv
import itertools
import json
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

from index.errors import RatingRefused
from index.settings import Settings

FIELDS = ("evaluator", "item_id", "question", "answer_json", "correctness", "completeness", "abstain_ok",
          "citation_marks", "comment", "updated_at")
# fields a save() may set; the rest are the key and the timestamp
VALUE_FIELDS = ("question", "answer_json", "correctness", "completeness", "abstain_ok", "citation_marks", "comment")

SCHEMA = """
CREATE TABLE IF NOT EXISTS ratings (
    evaluator TEXT NOT NULL,
    item_id TEXT NOT NULL,
    question TEXT,
    answer_json TEXT,          -- the answer as rated (Answer.to_json()), JSON text
    correctness INTEGER,       -- 1..5
    completeness INTEGER,      -- 1..5
    abstain_ok INTEGER,        -- 1 = abstaining (or answering) was right, 0 = wrong
    citation_marks TEXT,       -- JSON {"1": true, "2": false}: citation n -> correct?
    comment TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (evaluator, item_id)
)
"""


def _check_score(name: str, value):
    if value is None:
        return None
    value = int(value)
    if not 1 <= value <= 5:
        raise ValueError(f"{name} must be between 1 and 5, got {value}")
    return value


def _check_text(value: str | None, what: str, limit: int) -> str | None:
    """`value` if it can be stored: at most `limit` characters, no unpaired surrogates.

    >>> _check_text("好评", "评语", 5)
    '好评'
    """
    if value is None:
        return None
    value = str(value)
    if len(value) > limit:
        raise RatingRefused(f"{what}过长（{len(value)} 字），请限制在 {limit} 字以内，评分未保存。")
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        raise RatingRefused(f"{what}含有无法保存的字符（无效编码），请删去后再保存。")
    return value


class RatingsStore:
    """Ratings in one SQLite file (WAL mode). Thread-safe: a lock and a connection per call.

    `settings` gives the limits on what a rating may carry (max_evaluator_chars,
    max_comment_chars); without it they come from the POLICYQA_* environment.
    """

    def __init__(self, path: str | Path, settings: Settings | None = None):
        settings = settings or Settings.from_env()
        self.max_evaluator_chars = settings.max_evaluator_chars
        self.max_comment_chars = settings.max_comment_chars
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30)
        conn.row_factory = sqlite3.Row
        return conn

    @staticmethod
    def _row(row: sqlite3.Row) -> dict:
        d = dict(row)
        d["citation_marks"] = {str(k): bool(v) for k, v in json.loads(d["citation_marks"] or "{}").items()}
        d["abstain_ok"] = None if d["abstain_ok"] is None else bool(d["abstain_ok"])
        return d

    def save(self, evaluator: str, item_id: str, question: str | None = None, answer_json=None,
             correctness: int | None = None, completeness: int | None = None, abstain_ok: bool | None = None,
             citation_marks: dict | None = None, comment: str | None = None) -> dict:
        """Upsert one rating; None leaves a stored field unchanged. citation_marks merge per citation."""
        evaluator = (evaluator or "").strip()
        if not evaluator:
            raise ValueError("evaluator name is empty")
        if not str(item_id or "").strip():
            raise ValueError("item_id is empty")
        evaluator = _check_text(evaluator, "评估人姓名", self.max_evaluator_chars)
        comment = _check_text(comment, "评语", self.max_comment_chars)
        item_id = str(item_id)
        new = {
            "question": question,
            "answer_json": answer_json if answer_json is None or isinstance(answer_json, str)
            else json.dumps(answer_json, ensure_ascii=False),
            "correctness": _check_score("correctness", correctness),
            "completeness": _check_score("completeness", completeness),
            "abstain_ok": None if abstain_ok is None else int(bool(abstain_ok)),
            "comment": comment,
        }
        with self._lock, self._connect() as conn:
            old = conn.execute("SELECT * FROM ratings WHERE evaluator=? AND item_id=?", (evaluator, item_id)).fetchone()
            marks = self._row(old)["citation_marks"] if old else {}
            if citation_marks is not None:
                marks.update({str(k): bool(v) for k, v in citation_marks.items() if v is not None})
            row = {k: (old[k] if old else None) for k in VALUE_FIELDS}
            row.update({k: v for k, v in new.items() if v is not None})
            row["citation_marks"] = json.dumps(marks, ensure_ascii=False, sort_keys=True)
            row.update(evaluator=evaluator, item_id=item_id, updated_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
            conn.execute(f"INSERT OR REPLACE INTO ratings ({', '.join(FIELDS)}) VALUES ({', '.join('?' * len(FIELDS))})",
                         [row[k] for k in FIELDS])
        return self.get(evaluator, item_id)

    def get(self, evaluator: str, item_id: str) -> dict | None:
        """The stored rating, or None."""
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM ratings WHERE evaluator=? AND item_id=?",
                               ((evaluator or "").strip(), str(item_id))).fetchone()
        return self._row(row) if row else None

    def all(self, evaluator: str | None = None) -> list[dict]:
        """Every rating (optionally of one evaluator), ordered by evaluator then item_id."""
        with self._connect() as conn:
            if evaluator is None:
                rows = conn.execute("SELECT * FROM ratings ORDER BY evaluator, item_id").fetchall()
            else:
                rows = conn.execute("SELECT * FROM ratings WHERE evaluator=? ORDER BY item_id",
                                    (evaluator.strip(),)).fetchall()
        return [self._row(r) for r in rows]

    def evaluators(self) -> list[str]:
        with self._connect() as conn:
            return [r[0] for r in conn.execute("SELECT DISTINCT evaluator FROM ratings ORDER BY evaluator")]

    def progress(self, evaluator: str, item_ids: list[str]) -> tuple[int, int]:
        """(items of `item_ids` this evaluator has given a correctness score, len(item_ids))."""
        rated = {r["item_id"] for r in self.all(evaluator) if r["correctness"] is not None}
        ids = [str(i) for i in item_ids]
        return sum(1 for i in ids if i in rated), len(ids)

    def export_csv(self, path: str | Path) -> Path:
        """All ratings as CSV; citation_marks as JSON text, abstain_ok as 1/0/empty."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS)
            w.writeheader()
            for r in self.all():
                r = dict(r)
                r["citation_marks"] = json.dumps(r["citation_marks"], ensure_ascii=False, sort_keys=True)
                r["abstain_ok"] = "" if r["abstain_ok"] is None else int(r["abstain_ok"])
                w.writerow({k: "" if r[k] is None else r[k] for k in FIELDS})
        return path

    def export_jsonl(self, path: str | Path) -> Path:
        """All ratings, one JSON object a line, as returned by all()."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as f:
            for r in self.all():
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        return path


def read_csv(path: str | Path) -> list[dict]:
    """Read an export_csv file back into the shape of RatingsStore.all()."""
    out = []
    with Path(path).open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            for k in ("correctness", "completeness"):
                r[k] = int(r[k]) if r[k] else None
            r["abstain_ok"] = bool(int(r["abstain_ok"])) if r["abstain_ok"] else None
            r["citation_marks"] = json.loads(r["citation_marks"] or "{}")
            for k in ("question", "answer_json", "comment"):
                r[k] = r[k] or None
            out.append(r)
    return out


def cohen_kappa(a: list, b: list) -> float:
    """Cohen's kappa of two raters' labels for the same items.

    kappa = (p_o - p_e) / (1 - p_e), p_o = observed agreement, p_e = chance agreement
    from each rater's label frequencies. Worked example:
    a = [1, 1, 2, 2], b = [1, 2, 2, 2] -> p_o = 3/4, p_e = (2/4)(1/4) + (2/4)(3/4) = 1/2 -> kappa = 0.5.
    When p_e == 1 (both raters always use one and the same label) agreement is perfect: 1.0.
    """
    if len(a) != len(b):
        raise ValueError(f"raters must label the same items, got {len(a)} and {len(b)} labels")
    if not a:
        raise ValueError("no items to compare")
    n = len(a)
    p_o = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    p_e = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / (n * n)
    if p_e == 1.0:
        return 1.0
    return (p_o - p_e) / (1 - p_e)


def agreement(rows: list[dict]) -> dict:
    """Agreement between each pair of evaluators on the items both rated.

    rows: RatingsStore.all(). Returns
    {"pairs": [{"a", "b", "items", "kappa_correctness", "correctness_items",
                "kappa_citations", "citation_marks"}],
     "disagreements": [{"item_id", "question", "ratings": {evaluator: {correctness, completeness,
                        abstain_ok, citation_marks, comment}}}]}
    A kappa is None when the pair shares no item with that field set. An item is a
    disagreement when any two evaluators differ on correctness, abstain_ok or a citation mark.
    """
    by_eval: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_eval.setdefault(r["evaluator"], {})[str(r["item_id"])] = r
    pairs = []
    for ea, eb in itertools.combinations(sorted(by_eval), 2):
        common = sorted(set(by_eval[ea]) & set(by_eval[eb]))
        ca, cb, ma, mb = [], [], [], []
        for item in common:
            ra, rb = by_eval[ea][item], by_eval[eb][item]
            if ra["correctness"] is not None and rb["correctness"] is not None:
                ca.append(ra["correctness"])
                cb.append(rb["correctness"])
            marks_a, marks_b = ra["citation_marks"] or {}, rb["citation_marks"] or {}
            for n in sorted(set(marks_a) & set(marks_b)):
                ma.append(bool(marks_a[n]))
                mb.append(bool(marks_b[n]))
        pairs.append({"a": ea, "b": eb, "items": len(common),
                      "kappa_correctness": cohen_kappa(ca, cb) if ca else None, "correctness_items": len(ca),
                      "kappa_citations": cohen_kappa(ma, mb) if ma else None, "citation_marks": len(ma)})

    items: dict[str, dict[str, dict]] = {}
    for ev, rated in by_eval.items():
        for item, r in rated.items():
            items.setdefault(item, {})[ev] = r
    disagreements = []
    for item in sorted(items):
        rated = items[item]
        if len(rated) < 2:
            continue
        differs = False
        for ra, rb in itertools.combinations(rated.values(), 2):
            for k in ("correctness", "abstain_ok"):
                if ra[k] is not None and rb[k] is not None and ra[k] != rb[k]:
                    differs = True
            ma, mb = ra["citation_marks"] or {}, rb["citation_marks"] or {}
            if any(ma[n] != mb[n] for n in set(ma) & set(mb)):
                differs = True
        if differs:
            question = next((r["question"] for r in rated.values() if r.get("question")), None)
            disagreements.append({"item_id": item, "question": question, "ratings": {
                ev: {k: r[k] for k in ("correctness", "completeness", "abstain_ok", "citation_marks", "comment")}
                for ev, r in sorted(rated.items())}})
    return {"pairs": pairs, "disagreements": disagreements}
