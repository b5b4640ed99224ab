"""How much of a question the corpus and the best clauses cover: inputs of the answer-or-abstain model.

`evidence_terms` weighs the question's content words (function words, question words and place
names left out); `best_coverage` is the weighted share of them the best clause holds;
`unknown_share` is the share no indexed text holds at all ('护照' in a corpus about pensions).
"""
from __future__ import annotations

import re

from assistant.features import TermWeights, clause_context
from index.clauses import MARKER

QUESTION_WORD = re.compile(r"^(?:哪|什么|多少|几|怎|如何|为何|为什么|是否)")
CONTENT_POS = ("n", "v", "a", "j", "l", "i", "s", "vn", "an", "eng")
NOUN_POS = ("n", "nr", "ns", "nt", "nz", "nrt", "vn", "j", "eng")
WEAK = 0.3  # weight of an unknown word that is not a noun (an idf of about a word in 3 of 4 chunks)
COMMON = 20  # jieba dictionary count above which a word is an ordinary word, not an ad-hoc compound


def evidence_terms(question_norm: str, weights: TermWeights) -> list[tuple[str, float]]:
    """(word, weight) of the question's content words.

    A word no indexed text contains weighs fully when it is a noun (the thing asked about: '护照')
    and little otherwise ('一直'); an ad-hoc compound of known words ('重点对象') weighs as its parts.
    '护照怎么办理' over a pension corpus -> [('护照', max_idf), ('办理', idf of 办理)].
    """
    lex = weights.lexicon
    out: list[tuple[str, float]] = []
    for w, flag in lex.posseg.cut(question_norm):
        w = w.strip().lower()
        if not w or w in lex.stopwords or not re.search(r"[\u4e00-\u9fff0-9a-z]", w) or QUESTION_WORD.match(w):
            continue
        if not (flag.startswith(CONTENT_POS) or w.isdigit()) or flag == "ns":
            continue  # place names are matched against the documents' places instead
        idf = weights.idf(w)
        known_synonyms = [s for s in lex.synonyms.get(w, ()) if weights.doc_freq(s)]
        if weights.doc_freq(w) == 0 and known_synonyms:
            idf = max(weights.idf(s) for s in known_synonyms)  # it stands for the documents' word
        elif weights.doc_freq(w) == 0:
            nounish = flag in NOUN_POS or (flag == "l" and len(w) >= 4)
            parts = [p for p in lex.tokenize(w) if len(p) >= 2 and p != w and weights.doc_freq(p)]
            if not nounish or len(w) < 2:
                idf = WEAK  # a rare verb or adverb says little about the topic
            elif parts and lex.word_freq(w) < COMMON:
                idf = sum(weights.idf(p) for p in parts) / len(parts)
            else:
                idf = weights.max_idf
        out.append((w, idf))
    return out


def present(term: str, text: str, weights: TermWeights) -> float:
    """1 if the term (or a synonym) is in text; for an ad-hoc compound, the share of its sub-words."""
    lex = weights.lexicon
    if lex.mentions(text, term):
        return 1.0
    if lex.word_freq(term) >= COMMON:
        return 0.0  # an ordinary word of its own ("个人所得税"): its parts do not stand for it
    parts = [p for p in lex.tokenize(term) if len(p) >= 2 and p != term]
    return sum(p in text for p in parts) / len(parts) if parts else 0.0


def held_weight(terms: list[tuple[str, float]], text: str, weights: TermWeights) -> float:
    """The summed weight of the evidence terms a text holds (an ad-hoc compound in part)."""
    return sum(w * present(t, text, weights) for t, w in terms)


def best_coverage(terms: list[tuple[str, float]], hits, weights: TermWeights, max_hits: int = 3) -> float:
    """Weighted share of the evidence terms found in the best of the top clauses (with title and
    headings), 0..1."""
    total = sum(w for _, w in terms)
    if not total:
        return 0.0
    best = 0.0
    for hit in hits[:max_hits]:
        cl = hit.clause
        text = clause_context(cl, hit.doc) + hit.doc.norm_text[cl.start:cl.end]
        best = max(best, held_weight(terms, text, weights) / total)
    return best


def unknown_share(terms: list[tuple[str, float]], weights: TermWeights) -> float:
    """Weighted share of the evidence terms that no indexed chunk contains (nor a synonym)."""
    total = sum(w for _, w in terms)
    if not total:
        return 0.0
    lex = weights.lexicon
    unknown = sum(w for t, w in terms
                  if not weights.doc_freq(t) and not any(weights.doc_freq(s) for s in lex.synonyms.get(t, ())))
    return unknown / total


SENTENCE_END = re.compile(r"(?<=[。；;！？!?\n])")


def focus_sentence(terms: list[tuple[str, float]], text: str, weights: TermWeights, share: float = 1.0) -> str:
    """The sentences of a clause about the question, its clause markers blanked: whether a clause
    gives the kind of answer asked for is read there, not anywhere in a long clause and not in its
    label ('4.' is no number of days).

    A sentence is about the question when it holds at least `share` of the evidence weight the
    best sentence holds (share 1: the best sentences only; the answerability model's file says
    which share its features were read with). A sentence that announces a list ('…时间确定。具体
    划分为：') brings the list's items: '（一）…满一年不足两年的为三个月；'.

    For '要在多少天内办参保登记?' against '4.工商部门…还必须告知…在规定时间内到社会保险经办机构办
    理参保登记手续。…每月25日前…' it is the first sentence, and it holds no number."""
    sentences = [s for s in SENTENCE_END.split(text) if s.strip()]
    if len(sentences) > 1 and terms:
        scores = [held_weight(terms, s, weights) for s in sentences]
        top = max(scores)
        if top > 0:
            keep = {i for i, v in enumerate(scores) if v >= share * top}
            for i in sorted(keep):
                j = i + 1 if not _announces_list(sentences[i]) and i + 1 < len(sentences) \
                    and _announces_list(sentences[i + 1]) else i
                if not _announces_list(sentences[j]):
                    continue
                keep.add(j)
                j += 1
                while j < len(sentences) and _is_item(sentences[j]):
                    keep.add(j)
                    j += 1
            sentences = [s for i, s in enumerate(sentences) if i in keep]
    return MARKER.sub(" ", "".join(sentences))


LIST_ITEM = ("l2", "l3", "l4", "l5")  # the clause markers that number a list's items: （一） 1. (1) ①


def _announces_list(sentence: str) -> bool:
    return sentence.rstrip().endswith(("：", ":"))


def _is_item(sentence: str) -> bool:
    m = MARKER.match(sentence.lstrip())
    return m is not None and any(m.group(k) for k in LIST_ITEM)
