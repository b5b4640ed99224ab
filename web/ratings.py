"""Human ratings of answers, stored per evaluator in the database (web/db.py) the moment they are entered.

One table, primary key (evaluator, item_id); every save is an upsert that merges with what is
stored, so a half-rated item survives a reload, a browser crash or a server restart. The
database is the SQLite file at Settings.ratings_db, or PostgreSQL (POLICYQA_DATABASE_URL).

    store = RatingsStore("var/ratings.sqlite3")     # or a URL, or a web.db.Database
    store.save("alice", "q1", correctness=4)
    store.save("alice", "q1", citation_marks={"1": True, "2": False})
    store.get("alice", "q1")["correctness"]  # -> 4 (kept: None arguments leave fields unchanged)
"""
from __future__ import annotations

import csv
import itertools
import json
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from index.errors import RatingRefused
from index.settings import Settings
from web.db import Database, ratings

FIELDS = ("evaluator", "item_id", "question", "answer_json", "correctness", "completeness", "abstain_ok",
          "citation_marks", "comment", "updated_at")
# fields a save() may set; the rest are the key and the timestamp
VALUE_FIELDS = ("question", "answer_json", "correctness", "completeness", "abstain_ok", "citation_marks", "comment")
SAVE_FAILED = "评分未保存：数据库 {name} 无法访问（{reason}），请稍后再试。"
READ_FAILED = "无法读取评分：数据库 {name} 无法访问（{reason}），请稍后再试。"


def _check_score(name: str, value):
    if value is None:
        return None
    value = int(value)
    if not 1 <= value <= 5:
        raise ValueError(f"{name} must be between 1 and 5, got {value}")
    return value


def _check_text(value: str | None, what: str, limit: int | None) -> str | None:
    """`value` if it can be stored: at most `limit` characters, no unpaired surrogates, no NUL
    (which PostgreSQL's text cannot hold, so neither backend takes it).

    >>> _check_text("好评", "评语", 5)
    '好评'
    """
    if value is None:
        return None
    value = str(value)
    if limit is not None and len(value) > limit:
        raise RatingRefused(f"{what}过长（{len(value)} 字），请限制在 {limit} 字以内，评分未保存。")
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        raise RatingRefused(f"{what}含有无法保存的字符（无效编码），请删去后再保存。")
    if "\x00" in value:
        raise RatingRefused(f"{what}含有无法保存的空字符（\\x00），请删去后再保存。")
    return value


class RatingsStore:
    """Ratings in the database: a SQLite file (WAL mode) or PostgreSQL. Safe for threads and for
    several processes sharing the database: each save is one transaction that locks the row it merges.

    `database`: a web.db.Database, a SQLite file path or a database URL. `settings` gives the limits
    on what a rating may carry (max_evaluator_chars, max_comment_chars); without it they come from
    the POLICYQA_* environment. A database that cannot be opened raises DatabaseUnavailable.
    """

    def __init__(self, database: Database | str | Path, settings: Settings | None = None):
        settings = settings or Settings.from_env()
        self.max_evaluator_chars = settings.max_evaluator_chars
        self.max_comment_chars = settings.max_comment_chars
        self.database = Database.open(database)
        self.path = self.database.path  # the SQLite file; None on PostgreSQL

    @staticmethod
    def _row(row) -> dict:
        d = {k: row[k] for k in FIELDS}
        d["citation_marks"] = {str(k): bool(v) for k, v in json.loads(d["citation_marks"] or "{}").items()}
        d["abstain_ok"] = None if d["abstain_ok"] is None else bool(d["abstain_ok"])
        return d

    @staticmethod
    def _key(evaluator: str, item_id: str):
        return (ratings.c.evaluator == evaluator) & (ratings.c.item_id == item_id)

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
        item_id = _check_text(str(item_id), "题目编号", None)
        new = {
            "question": _check_text(question, "问题", None),
            "answer_json": _check_text(answer_json if answer_json is None or isinstance(answer_json, str)
                                       else json.dumps(answer_json, ensure_ascii=False), "回答", None),
            "correctness": _check_score("correctness", correctness),
            "completeness": _check_score("completeness", completeness),
            "abstain_ok": None if abstain_ok is None else int(bool(abstain_ok)),
            "comment": comment,
        }
        now = time.strftime("%Y-%m-%dT%H:%M:%S")
        key = self._key(evaluator, item_id)
        with self.database.write(SAVE_FAILED) as conn:
            # make sure the row exists, then lock it: two saves of one item (another thread or process)
            # merge one after the other instead of one overwriting the other's marks
            conn.execute(self.database.insert_ignore(ratings).values(evaluator=evaluator, item_id=item_id,
                                                                     updated_at=now))
            old = conn.execute(select(ratings).where(key).with_for_update()).mappings().one()
            marks = self._row(old)["citation_marks"]
            if citation_marks is not None:
                marks.update({str(k): bool(v) for k, v in citation_marks.items() if v is not None})
            row = {k: old[k] for k in VALUE_FIELDS}
            row.update({k: v for k, v in new.items() if v is not None})
            row["citation_marks"] = json.dumps(marks, ensure_ascii=False, sort_keys=True)
            row["updated_at"] = now
            conn.execute(ratings.update().where(key).values(**row))
        return self._row({**row, "evaluator": evaluator, "item_id": item_id})

    def get(self, evaluator: str, item_id: str) -> dict | None:
        """The stored rating, or None."""
        with self.database.read(READ_FAILED) as conn:
            key = self._key((evaluator or "").strip(), str(item_id))
            row = conn.execute(select(ratings).where(key)).mappings().first()
        return self._row(row) if row else None

    def all(self, evaluator: str | None = None) -> list[dict]:
        """Every rating (optionally of one evaluator), ordered by evaluator then item_id.

        Sorted here, by code point, rather than by the database: PostgreSQL would order by its
        collation and SQLite by bytes, and both backends must list the same rows in the same order."""
        query = select(ratings)
        if evaluator is not None:
            query = query.where(ratings.c.evaluator == evaluator.strip())
        with self.database.read(READ_FAILED) as conn:
            rows = [self._row(r) for r in conn.execute(query).mappings()]
        return sorted(rows, key=lambda r: (r["evaluator"], r["item_id"]))

    def evaluators(self) -> list[str]:
        """Everyone who rated something, sorted."""
        with self.database.read(READ_FAILED) as conn:
            return sorted(conn.execute(select(ratings.c.evaluator).distinct()).scalars())

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
