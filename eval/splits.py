"""The fixed splits: STARD train / validation / test by query id, and the dev and near-miss sets'
calibration / test parts. Fit on train (and calibration), choose on validation, report on test.

Both files were made once with a seeded shuffle and are kept in the repository
(eval/data/stard_split.json, eval/data/dev_split.json); nothing re-draws them.
"""
from __future__ import annotations

import json
from pathlib import Path

from index.errors import PolicyQAError

DATA_DIR = Path(__file__).resolve().parent / "data"
STARD_SPLITS = ("train", "validation", "test")
DEV_PARTS = ("calibration", "test")


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PolicyQAError(f"cannot read split file {path}: {exc}") from exc


def stard_ids(split: str, path: Path = DATA_DIR / "stard_split.json") -> set[int]:
    """Query ids of one STARD split ('train', 'validation' or 'test')."""
    if split not in STARD_SPLITS:
        raise PolicyQAError(f"--split must be one of {', '.join(STARD_SPLITS)}, got {split!r}")
    return set(_read(path)[split])


def set_part(items: list[dict], set_name: str, part: str | None, path: Path = DATA_DIR / "dev_split.json") -> list[dict]:
    """The items of a named set ('dev', 'nearmiss') in one part ('calibration', 'test'); all if part is None."""
    if part is None:
        return items
    if part not in DEV_PARTS:
        raise PolicyQAError(f"--part must be one of {', '.join(DEV_PARTS)}, got {part!r}")
    splits = _read(path)
    if set_name not in splits:
        raise PolicyQAError(f"{path} has no split of the set {set_name!r} (it has {', '.join(k for k in splits if k != 'note')})")
    ids = set(splits[set_name][part])
    return [it for it in items if it["id"] in ids]
