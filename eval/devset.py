"""Gold question sets: JSONL files of questions with their gold clause, evidence and key fact.

One item a line. Answerable items::

    {"id": "c01", "question": "自由职业者怎么交养老保险?", "answerable": true, "category": "citizen",
     "doc_id": "001_3bcf7633bcc6b282", "gold_label": "四、(四)", "gold_path": ["四", "(四)"],
     "gold_evidence": "自由职业者可按最低不低于我市上年在岗职工月平均工资的60%作为缴费基数",
     "key_fact": "60%", "script": "simplified"}

plus "history": [{"role": "user"|"assistant", "content": ...}] for follow-ups. Out-of-corpus
items carry only id, question, (history), "answerable": false, "category": "out_of_corpus", script.
`gold_evidence` is a verbatim span (8-60 characters) of the text of the clause named by gold_label.
"""
from __future__ import annotations

import json
from pathlib import Path

from index.errors import PolicyQAError

DATA_DIR = Path(__file__).resolve().parent / "data"
NAMED_SETS = {"dev": DATA_DIR / "dev.jsonl", "nearmiss": DATA_DIR / "nearmiss.jsonl",
              "followups": DATA_DIR / "followups.jsonl"}
CATEGORIES = ("citizen", "staff", "number", "lookup", "followup", "out_of_corpus")
ANSWERABLE_FIELDS = ("id", "question", "answerable", "category", "doc_id", "gold_label", "gold_path",
                     "gold_evidence", "key_fact", "script")
UNANSWERABLE_FIELDS = ("id", "question", "answerable", "category", "script")


def set_path(name_or_file: str) -> Path:
    """'dev' -> eval/data/dev.jsonl; anything else is a file path."""
    return NAMED_SETS.get(name_or_file, Path(name_or_file))


def item_problems(item: dict) -> list[str]:
    """What is wrong with one item's shape ([] when nothing).

    >>> item_problems({"id": "x", "question": "?", "answerable": False, "category": "out_of_corpus"})
    ['missing script']
    """
    if not isinstance(item, dict):
        return ["not a JSON object"]
    required = ANSWERABLE_FIELDS if item.get("answerable") else UNANSWERABLE_FIELDS
    problems = [f"missing {f}" for f in required if f not in item]
    if not isinstance(item.get("answerable"), bool):
        problems.append("answerable must be true or false")
    if item.get("script") not in (None, "simplified", "traditional"):
        problems.append(f"script must be simplified or traditional, got {item.get('script')!r}")
    if item.get("category") not in (None, *CATEGORIES):
        problems.append(f"unknown category {item.get('category')!r}")
    ev = item.get("gold_evidence")
    if item.get("answerable") and isinstance(ev, str) and not 8 <= len(ev) <= 60:
        problems.append(f"gold_evidence must be 8-60 characters, got {len(ev)}")
    history = item.get("history", [])
    if not isinstance(history, list) or not all(
            isinstance(h, dict) and h.get("role") in ("user", "assistant") and isinstance(h.get("content"), str)
            for h in history):
        problems.append("history must be a list of {role: user|assistant, content}")
    return problems


def load_set(name_or_file: str) -> list[dict]:
    """The items of a gold set; raises PolicyQAError naming the first bad line."""
    path = set_path(name_or_file)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise PolicyQAError(f"cannot read gold set {path}: {exc.strerror or exc}") from exc
    items, seen = [], set()
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise PolicyQAError(f"{path}:{lineno}: not JSON ({exc})") from exc
        problems = item_problems(item)
        if problems:
            raise PolicyQAError(f"{path}:{lineno}: " + "; ".join(problems))
        if item["id"] in seen:
            raise PolicyQAError(f"{path}:{lineno}: duplicate id {item['id']!r}")
        seen.add(item["id"])
        items.append(item)
    if not items:
        raise PolicyQAError(f"gold set {path} has no items")
    return items
