"""The ranker's trees compiled to machine code (assistant/compiled.py): same scores as LightGBM,
a cache that is checked before it is trusted, and LightGBM whenever compiling cannot be used."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from assistant.compiled import compiled_predictor, probe_rows
from assistant.opening import load_models
from assistant.rank import Ranker
from index.settings import Settings

lightgbm = pytest.importorskip("lightgbm")


def small_booster(seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 5))
    y = (x[:, 0] + 0.5 * x[:, 1] * (seed % 3 + 1) > 0).astype(float)
    params = {"objective": "binary", "num_leaves": 7, "verbose": -1, "seed": seed, "deterministic": True}
    return lightgbm.train(params, lightgbm.Dataset(x, y), num_boost_round=20)


def test_the_shipped_ranker_runs_compiled_and_scores_as_lightgbm():
    ranker = Ranker.load()
    assert ranker.compiled is not None
    rows = np.vstack([probe_rows(len(ranker.features)), np.zeros((3, len(ranker.features)))]).astype(np.float32)
    want = np.asarray(ranker.booster.predict(rows, num_threads=1), dtype=np.float32)
    assert np.array_equal(ranker.score(rows), want)


def test_a_compiled_model_is_cached_and_a_damaged_cache_is_compiled_again(tmp_path):
    booster = small_booster(1)
    text = booster.model_to_string()
    predict = compiled_predictor(text, booster, 5, tmp_path)
    x = np.random.default_rng(5).normal(size=(40, 5))
    assert np.allclose(predict(x), booster.predict(x), atol=1e-12)
    (so,) = tmp_path.glob("*.so")
    good = so.read_bytes()
    so.write_bytes(good[: len(good) // 2])  # a half-written or damaged file: its checksum no longer matches
    again = compiled_predictor(text, booster, 5, tmp_path)
    assert again is not None and np.allclose(again(x), booster.predict(x), atol=1e-12)
    assert so.read_bytes() == good  # compiled anew, not loaded


def test_a_compiled_model_that_disagrees_with_lightgbm_is_not_used(tmp_path, caplog):
    other = small_booster(2)
    with caplog.at_level(logging.WARNING, logger="assistant.compiled"):
        assert compiled_predictor(small_booster(1).model_to_string(), other, 5, tmp_path) is None
    assert "disagree" in caplog.text


def test_no_writable_cache_means_lightgbm(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    booster = small_booster(1)
    with caplog.at_level(logging.WARNING, logger="assistant.compiled"):
        assert compiled_predictor(booster.model_to_string(), booster, 5, blocker / "compiled") is None
    assert "LightGBM" in caplog.text


def test_lightgbm_can_be_asked_for():
    settings = Settings.from_env({"POLICYQA_RANKER_ENGINE": "lightgbm"})
    assert settings.ranker_engine == "lightgbm"
    ranker, _ = load_models(settings)
    assert ranker.compiled is None
    assert load_models(Settings.from_env({}))[0].compiled is not None
    rows = probe_rows(len(ranker.features)).astype(np.float32)
    assert np.array_equal(ranker.score(rows), np.asarray(ranker.booster.predict(rows, num_threads=1), dtype=np.float32))


def test_an_unknown_ranker_engine_is_refused():
    with pytest.raises(ValueError, match="ranker_engine"):
        Settings.from_env({"POLICYQA_RANKER_ENGINE": "lightgmb"})
