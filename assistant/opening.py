"""Opening what an Assistant answers from: the index the settings name (built from the bundled
corpus on first start, repaired from its own documents when damaged) and the ranking models."""
from __future__ import annotations

import sys
from pathlib import Path

from assistant.decide import Decider
from assistant.rank import Ranker
from index.backend import load_search_index
from index.embed import make_embedder
from index.errors import IndexCorrupted, IndexNotBuilt, IndexOutdated
from index.settings import Settings
from index.store import IndexData


def open_index(settings: Settings, embedder=None, progress: bool = True) -> IndexData:
    """Load the index, searched by the backend the settings name (index/backend.py); build it from
    the bundled corpus if there is none yet, or rebuild it from its own sources if an older version wrote it."""
    from index.pipeline import build_index

    embedder_name = (embedder or make_embedder(settings.embedder, settings.embed_batch_size)).name
    try:
        return load_search_index(settings, expect_embedder=embedder_name, progress=progress)
    except IndexNotBuilt:
        paths = [Path(settings.corpus_dir)]
        print(f"no index at {settings.index_dir} yet; building it from {settings.corpus_dir}", file=sys.stderr)
    except (IndexOutdated, IndexCorrupted) as exc:
        # the index is derived data: build it again with exactly the documents it held (from their
        # files, or their intact stored shards); only the damaged documents are parsed and embedded again
        from index.pipeline import repair_index

        print(f"{exc}\nrepairing it from the documents it held", file=sys.stderr)
        data, report = repair_index(settings, embedder, damaged=getattr(exc, "damaged", ()), progress=progress)
        print(report.format(), file=sys.stderr)
        return data
    data, report = build_index(paths, settings, embedder=embedder, progress=progress)
    print(report.format(), file=sys.stderr)
    return data


def load_models(settings: Settings) -> tuple[Ranker, Decider]:
    """The ranker and answerability model the settings name (the shipped files by default)."""
    return (Ranker.load(settings.ranker_model or None, compiled=settings.ranker_engine == "compiled"),
            Decider.load(settings.answerability_model or None))
