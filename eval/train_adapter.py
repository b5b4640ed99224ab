"""The query adapter's part of `python -m eval train` (assistant/adapter.py): fit, choose, measure.

Data: STARD train questions, embedded as the searcher embeds them (normalised, synonyms appended),
and the chunk vectors of the law index. A question's positives are the chunks of its gold
articles; its negatives are the `negatives` nearest other chunks, mined again with the adapter
as fitted so far after every epoch (the hard negatives move as the questions do).

Loss, per question (softmax over its positives and negatives, temperature tau):

    L = logsumexp(s_all / tau) - logsumexp(s_pos / tau),   s = cos(adapted q, chunk)

plus l2 * (|U|^2 + |V|^2), minimised with Adam over mini-batches. Everything else is chosen on
STARD validation by the article recall of the dense search alone (`dense_recall`: R@100 + R@10):
the rank, l2, tau, step size and the number of epochs (the best epoch of each fit is kept). The
identity (no adapter) is a candidate too, and is kept unless something beats it.
"""
from __future__ import annotations

import time

import numpy as np

from assistant.adapter import QueryAdapter
from assistant.articles import chunk_keys
from assistant.memory import rows_by_key

# settings tried (each for EPOCHS epochs, every epoch judged on validation); Adam's step is small
# because a larger one (2e-3) moves questions into corners of the space no mined negative covers,
# and validation R@100 fell from 0.715 to 0.1 within one epoch
GRID = ({"rank": 32, "l2": 0.01, "tau": 0.05, "lr": 1e-4}, {"rank": 32, "l2": 0.05, "tau": 0.05, "lr": 1e-4},
        {"rank": 64, "l2": 0.01, "tau": 0.05, "lr": 1e-4})
EPOCHS = 8
NEGATIVES = 100
BATCH = 32
KS = (10, 100)


def question_vectors(assistant, texts: list[str]) -> np.ndarray:
    """(n, dim) vectors of questions as Searcher.prepare embeds them, before any adapter."""
    from assistant.query import prepare_query

    searcher = assistant.searcher
    lex = searcher.lexicon
    out = [searcher.embed_question(lex.expand(prepare_query(t, [], lexicon=lex).norm)) for t in texts]
    return np.stack(out) if out else np.zeros((0, assistant.data.vectors.shape[1]), np.float32)


def gold_rows(keys: list[str], golds: list[frozenset[str]]) -> list[np.ndarray]:
    """Per question, the chunk rows of its gold articles (empty when none is indexed), given each
    row's article key (assistant.articles.chunk_keys)."""
    rows_of = rows_by_key(keys)
    empty = np.zeros(0, dtype=np.int64)
    return [np.sort(np.concatenate([empty, *(rows_of.get(g, empty) for g in gold)])) for gold in golds]


def nearest(q: np.ndarray, vectors: np.ndarray, k: int, block: int = 256) -> np.ndarray:
    """(n, k) rows of the k most similar chunks of each question, best first (exact)."""
    out = np.zeros((len(q), k), dtype=np.int64)
    for s in range(0, len(q), block):
        sims = q[s:s + block] @ vectors.T
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, 1), axis=1, kind="stable")
        out[s:s + block] = np.take_along_axis(part, order, 1)
    return out


def dense_recall(q: np.ndarray, vectors: np.ndarray, keys: list[str], golds: list[frozenset[str]],
                 ks=KS, depth: int = 1500) -> dict[int, float]:
    """Article recall@k of the dense search: the first k distinct articles of the nearest chunks.

    >>> v = np.eye(3, dtype=np.float32); keys = ["a", "a", "b"]
    >>> dense_recall(np.array([[0, 0.1, 1]], np.float32), v, keys, [frozenset({"a"})], ks=(1, 2), depth=3)
    {1: 0.0, 2: 1.0}
    """
    from eval.stard import recall_at

    rows = nearest(q, vectors, min(depth, len(vectors)))
    total = {k: 0.0 for k in ks}
    counted = 0
    for r, gold in zip(rows, golds):
        if not gold:
            continue
        counted += 1
        articles = list(dict.fromkeys(keys[i] for i in r))  # distinct, in order of their best chunk
        for k in ks:
            total[k] += recall_at(articles, gold, k)
    return {k: v / max(counted, 1) for k, v in total.items()}


def _loss_grad(q, cand, pos_mask, valid, u, v, tau):
    """Mean loss and gradients (dU, dV) for questions q (b, d) over candidate vectors cand (b, m, d);
    pos_mask marks the positives, valid the slots in use."""
    h = q @ u  # (b, r)
    z = q + h @ v.T  # (b, d)
    norm = np.linalg.norm(z, axis=1, keepdims=True)
    zh = z / norm
    s = np.einsum("bd,bmd->bm", zh, cand) / tau
    s = np.where(valid, s, -np.inf)
    top = s.max(1, keepdims=True)
    e_all = np.exp(s - top)
    e_pos = np.where(pos_mask, e_all, 0.0)
    loss = float(np.mean(np.log(e_all.sum(1)) - np.log(e_pos.sum(1))))
    g_s = (e_all / e_all.sum(1, keepdims=True) - e_pos / e_pos.sum(1, keepdims=True)) / tau / len(q)  # (b, m)
    g_zh = np.einsum("bm,bmd->bd", g_s, cand)
    g_z = (g_zh - zh * (zh * g_zh).sum(1, keepdims=True)) / norm
    return loss, q.T @ (g_z @ v), g_z.T @ h


def fit_adapter(q: np.ndarray, vectors: np.ndarray, positives: list[np.ndarray], rank: int, l2: float, tau: float,
                epochs: int = EPOCHS, negatives: int = NEGATIVES, batch: int = BATCH, lr: float = 1e-4, seed: int = 7,
                on_epoch=None, max_pos: int = 8, random_negatives: int = 0):
    """Fit U, V by Adam; `on_epoch(epoch, u, v, loss)` sees each epoch's result (for choosing)."""
    rng = np.random.default_rng(seed)
    d = q.shape[1]
    u = (rng.standard_normal((d, rank)) * 0.01).astype(np.float32)
    v = np.zeros((d, rank), dtype=np.float32)
    m = [np.zeros_like(u), np.zeros_like(v)]
    s2 = [np.zeros_like(u), np.zeros_like(v)]
    keep = [i for i, p in enumerate(positives) if len(p)]
    step = 0
    width = max_pos + negatives + random_negatives
    for epoch in range(1, epochs + 1):
        near = nearest(QueryAdapter(u, v, "").apply(q[keep]), vectors, max_pos + negatives)
        losses = []
        order = rng.permutation(len(keep))
        for s in range(0, len(order), batch):
            sel = order[s:s + batch]
            rows = np.zeros((len(sel), width), dtype=np.int64)
            pos_mask = np.zeros((len(sel), width), dtype=bool)
            valid = np.zeros((len(sel), width), dtype=bool)
            for b, j in enumerate(sel):
                pos = positives[keep[j]]
                if len(pos) > max_pos:
                    pos = pos[rng.permutation(len(pos))[:max_pos]]
                neg = near[j][~np.isin(near[j], positives[keep[j]])][:negatives]
                if random_negatives:  # the rest of the index, so that no far corner comes up unseen
                    far = rng.integers(0, len(vectors), random_negatives)
                    neg = np.concatenate([neg, far[~np.isin(far, positives[keep[j]])]])
                n = len(pos) + len(neg)
                rows[b, :n] = np.concatenate([pos, neg])
                pos_mask[b, :len(pos)] = True
                valid[b, :n] = True
            # an unused slot holds chunk 0 with a zero vector and no weight in either sum
            loss, gu, gv = _loss_grad(q[[keep[j] for j in sel]], vectors[rows] * valid[..., None], pos_mask,
                                      valid, u, v, tau)
            losses.append(loss)
            step += 1
            for i, (p, g) in enumerate(((u, gu + 2 * l2 * u), (v, gv + 2 * l2 * v))):
                m[i] = 0.9 * m[i] + 0.1 * g
                s2[i] = 0.999 * s2[i] + 0.001 * g * g
                p -= (lr * (m[i] / (1 - 0.9 ** step)) / (np.sqrt(s2[i] / (1 - 0.999 ** step)) + 1e-8)).astype(np.float32)
        if on_epoch is not None:
            on_epoch(epoch, u.copy(), v.copy(), float(np.mean(losses)) if losses else 0.0)
    return u, v


def learn_adapter(law_assistant, q_train, q_valid, grid=GRID, epochs: int = EPOCHS, log=print) -> tuple:
    """(the chosen QueryAdapter or None for the identity, a table of every setting's validation recall)."""
    data = law_assistant.data
    t0 = time.time()
    keys = chunk_keys(data)
    vectors = np.ascontiguousarray(data.vectors, dtype=np.float32)
    qt = question_vectors(law_assistant, [q.text for q in q_train])
    qv = question_vectors(law_assistant, [q.text for q in q_valid])
    pos = gold_rows(keys, [q.gold for q in q_train])
    golds_v, golds_t = [q.gold for q in q_valid], [q.gold for q in q_train]
    base = dense_recall(qv, vectors, keys, golds_v)
    base_t = dense_recall(qt, vectors, keys, golds_t)
    log(f"  adapter: {len(qt)} train, {len(qv)} validation questions embedded ({time.time() - t0:.0f} s); "
        f"identity R@10 {base[10]:.3f} R@100 {base[100]:.3f} (train {base_t[10]:.3f} / {base_t[100]:.3f})")
    table = [{"setting": "identity", "epoch": 0, "R@10": round(base[10], 4), "R@100": round(base[100], 4)}]
    best = ((base[100], base[10]), None)
    for setting in grid:
        def seen(epoch, u, v, loss, setting=setting):
            nonlocal best
            r = dense_recall(QueryAdapter(u, v, "").apply(qv), vectors, keys, golds_v)
            rt = dense_recall(QueryAdapter(u, v, "").apply(qt), vectors, keys, golds_t)  # how much it learns by heart
            table.append({"setting": setting, "epoch": epoch, "train_loss": round(loss, 4),
                          "R@10": round(r[10], 4), "R@100": round(r[100], 4),
                          "train_R@10": round(rt[10], 4), "train_R@100": round(rt[100], 4)})
            log(f"    {setting} epoch {epoch}: loss {loss:.4f}, validation R@10 {r[10]:.3f} R@100 {r[100]:.3f} "
                f"(train {rt[10]:.3f} / {rt[100]:.3f})")
            if r[100] + r[10] > sum(best[0]):
                best = ((r[100], r[10]), (setting, epoch, u, v))

        fit_adapter(qt, vectors, pos, setting["rank"], setting["l2"], setting["tau"], epochs=epochs, lr=setting["lr"],
                    on_epoch=seen)
    if best[1] is None:
        return None, table
    setting, epoch, u, v = best[1]
    meta = {"fitted": {"command": "python -m eval train", "stard_train": len(qt), "epochs": epoch, **setting,
                       "negatives": NEGATIVES, "validation_dense": {"R@100": round(best[0][0], 4),
                                                                    "R@10": round(best[0][1], 4)},
                       "identity_dense": {"R@100": round(base[100], 4), "R@10": round(base[10], 4)}}}
    return QueryAdapter(u, v, data.embedder_name, meta), table
