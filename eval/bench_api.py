"""Benchmark of the served API beside the app: `python -m eval.bench api [--seconds 60] [--clients 20]`.

Starts `python app.py` (the Gradio app and the /v1 API on one port, web/server.py) in its own
process on an index of the bundled corpus in a temporary folder (built on the first start, or
copied from --index-dir), so its chat log and ratings stay there. Then, from this process:

1. sequential: --n questions streamed through the openai SDK, one at a time: the time to the first
   content token and to the end of the stream, p50/p95;
2. load: --clients threads asking for --seconds against /v1 (openai SDK, streamed), then the same
   against Gradio's /ask (gradio_client): requests, errors, p50/p95 of a whole answer.

Or measure a server already running with --url http://127.0.0.1:7860/.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from eval.bench import load_questions, percentile
from index.settings import REPO_ROOT

TARGET_P95_MS = 1000  # extractive, under --clients concurrent clients, with 0 errors


def add_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--seconds", type=float, default=60, help="how long each load test runs")
    sp.add_argument("--clients", type=int, default=20, help="concurrent clients in the load tests")
    sp.add_argument("--n", type=int, default=50, help="questions in the sequential time-to-first-token run")
    sp.add_argument("--model", default="policyqa", help="policyqa (extractive) or policyqa-llm")
    sp.add_argument("--index-dir", help="copy this index instead of building one of the bundled corpus")
    sp.add_argument("--url", help="measure this running server instead of starting one")
    sp.add_argument("--seed", type=int, default=7)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen | None, log: Path | None, timeout_s: float = 900) -> float:
    """Seconds until GET /v1/models answers 200 (503 while the index loads or builds)."""
    t = time.perf_counter()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"app.py exited with {proc.returncode}:\n{log.read_text()[-3000:] if log else ''}")
        try:
            with urllib.request.urlopen(url + "v1/models", timeout=10) as r:
                if r.status == 200:
                    return time.perf_counter() - t
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} was not ready within {timeout_s:.0f} s")


def start_app(work: Path, index_dir: str | None) -> tuple[subprocess.Popen, str, Path]:
    """`python app.py` on a free port with its index, ratings and chat log under `work`."""
    if index_dir:
        shutil.copytree(index_dir, work / "index", ignore=shutil.ignore_patterns("checkpoint"))
    port = free_port()
    env = dict(os.environ, POLICYQA_HOST="127.0.0.1", POLICYQA_PORT=str(port),
               POLICYQA_INDEX_DIR=str(work / "index"), POLICYQA_RATINGS_DB=str(work / "ratings.sqlite3"),
               GRADIO_ANALYTICS_ENABLED="False")
    log = work / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO_ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}/", log


def stream_once(client, model: str, question: str) -> tuple[float, float]:
    """(ms to the first content token, ms to the end) of one streamed answer; raises if the last
    chunk does not carry PolicyQA's fields."""
    t = time.perf_counter()
    first, last = None, None
    for chunk in client.chat.completions.create(model=model, stream=True,
                                                messages=[{"role": "user", "content": question}]):
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter()
        last = chunk
    end = time.perf_counter()
    if last is None or "outcome" not in (last.model_extra or {}):
        raise RuntimeError("the stream ended without its last chunk (citations, outcome)")
    return ((first or end) - t) * 1000, (end - t) * 1000


def summary(ms: list[float]) -> dict:
    return {"p50_ms": round(percentile(ms, 50), 1), "p95_ms": round(percentile(ms, 95), 1),
            "max_ms": round(max(ms), 1) if ms else None}


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time a process has used (Linux /proc), None where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_load(paths: dict[str, Callable[[], Callable[[str], object]]], questions: list[str], clients: int,
             seconds: float, server_pid: int | None = None) -> dict[str, dict]:
    """`clients` threads per path, all at once, each with its own call (made before the clock
    starts), asking in turn until `seconds` have passed. Per path: requests, errors (by kind), rate
    and latency of the answers; and the server's CPU time per request (all paths together) when its
    process is known."""
    workers = [(name, make()) for name, make in paths.items() for _ in range(clients)]
    cpu0 = cpu_seconds(server_pid)
    latencies: dict[str, list[float]] = {name: [] for name in paths}
    errors: dict[str, Counter] = {name: Counter() for name in paths}
    lock = threading.Lock()
    start = time.monotonic()
    stop = start + seconds

    def worker(k: int):
        name, call = workers[k]
        i = k
        while time.monotonic() < stop:
            question = questions[i % len(questions)]
            i += len(workers)
            t = time.perf_counter()
            try:
                call(question)
            except Exception as exc:  # counted: an error is a result of the benchmark
                with lock:
                    errors[name][f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
                continue
            with lock:
                latencies[name].append((time.perf_counter() - t) * 1000)

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(len(workers))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.monotonic() - start
    cpu1 = cpu_seconds(server_pid)
    done = {name: len(latencies[name]) + sum(errors[name].values()) for name in paths}
    total = sum(done.values())
    cpu = round((cpu1 - cpu0) * 1000 / total, 1) if cpu0 is not None and cpu1 is not None and total else None
    return {name: {"requests": done[name], "errors": sum(errors[name].values()),
                   "error_kinds": dict(errors[name].most_common(5)), "per_s": round(done[name] / elapsed, 2),
                   **summary(latencies[name]), "server_cpu_ms_per_request": cpu} for name in paths}


def measure(url: str, args, server_pid: int | None = None) -> dict:
    import openai
    from gradio_client import Client

    key = os.environ.get("POLICYQA_API_KEY") or "none"
    questions = load_questions(argparse.Namespace(laws=False, n=max(args.n, 4 * args.clients), seed=args.seed))
    client = openai.OpenAI(base_url=url + "v1", api_key=key, max_retries=0, timeout=120)
    stream_once(client, args.model, questions[0])  # warm-up: jieba, the models
    ttft, total = [], []
    for q in questions[:args.n]:
        first, end = stream_once(client, args.model, q)
        ttft.append(first)
        total.append(end)

    def api_call():
        return lambda q: stream_once(client, args.model, q)

    def gradio_call():
        # with a key the server's Gradio API asks for its login: any user name, the key as the password
        gradio = Client(url, verbose=False, auth=("bench", key) if os.environ.get("POLICYQA_API_KEY") else None)
        return lambda q: gradio.predict(q, [], api_name="/ask")

    load = {"api": run_load({"api": api_call}, questions, args.clients, args.seconds, server_pid)["api"],
            "gradio": run_load({"gradio": gradio_call}, questions, args.clients, args.seconds, server_pid)["gradio"]}
    # both doors at once, half the clients each: they share the Assistant's answer slots
    half = max(1, args.clients // 2)
    both = run_load({"api": api_call, "gradio": gradio_call}, questions, half, args.seconds, server_pid)
    load.update({"both_api": both["api"], "both_gradio": both["gradio"]})
    api = load["api"]
    return {"url": url, "model": args.model, "questions": len(questions), "clients": args.clients,
            "seconds": args.seconds,
            "sequential": {"n": len(total), "ttft": summary(ttft), "total": summary(total)},
            "load": load, "target": {"errors": 0, "p95_ms": TARGET_P95_MS},
            "target_met": api["errors"] == 0 and api["requests"] > 0 and api["p95_ms"] < TARGET_P95_MS}


def run(args) -> dict:
    if args.url:
        url = args.url if args.url.endswith("/") else args.url + "/"
        return dict(measure(url, args), startup_s=None)
    work = Path(tempfile.mkdtemp(prefix="policyqa-benchapi-"))
    proc, url, log = start_app(work, args.index_dir)
    try:
        startup_s = wait_ready(url, proc, log)
        print(f"server ready at {url} after {startup_s:.1f} s (index {'copied' if args.index_dir else 'built'})",
              file=sys.stderr)
        result = measure(url, args, proc.pid)
        return dict(result, url="(app.py on a temporary index)", startup_s=round(startup_s, 1))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def print_table(result: dict) -> None:
    seq = result["sequential"]
    print(f"sequential, streamed through the openai SDK ({seq['n']} questions, model {result['model']}):")
    print(f"  time to first token  p50 {seq['ttft']['p50_ms']:8.1f} ms   p95 {seq['ttft']['p95_ms']:8.1f} ms")
    print(f"  whole answer         p50 {seq['total']['p50_ms']:8.1f} ms   p95 {seq['total']['p95_ms']:8.1f} ms")
    print(f"load: {result['clients']} concurrent clients for {result['seconds']:g} s each; in the 'both' rows "
          f"half of them on each path at once (server CPU there is per request of either path)")
    print(f"  {'path':32} {'requests':>9} {'errors':>7} {'req/s':>7} {'p50 ms':>9} {'p95 ms':>9} "
          f"{'server CPU ms/req':>18}")
    for name, label in (("api", "/v1 (openai SDK, streamed)"), ("gradio", "Gradio /ask (gradio_client)"),
                        ("both_api", "both: /v1"), ("both_gradio", "both: Gradio /ask")):
        r = result["load"].get(name)
        if r is None:  # a result file from before the mixed run
            continue
        cpu = r["server_cpu_ms_per_request"]
        print(f"  {label:32} {r['requests']:9d} {r['errors']:7d} {r['per_s']:7.2f} {r['p50_ms']:9.1f} "
              f"{r['p95_ms']:9.1f} {'' if cpu is None else f'{cpu:.1f}':>18}")
        for kind, count in r["error_kinds"].items():
            print(f"      {count} x {kind}")
    print(f"target (/v1: 0 errors, p95 < {TARGET_P95_MS} ms): {'met' if result['target_met'] else 'NOT met'}")
