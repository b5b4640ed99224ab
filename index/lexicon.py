"""Vocabulary as data: synonyms, stopwords, jieba dictionary changes and text patterns.

Everything is read from a folder of small text files (default `data/lexicon/`), which
`Settings.lexicon_dir` names:

    synonyms.tsv    word<TAB>alt1,alt2     everyday word -> the documents' words ('社保' -> '社会保险')
    stopwords.txt   one word a line        left out of BM25 tokens and coverage
    jieba.tsv       add|del<TAB>word<TAB>pos   changes to the lexicon's own jieba tokenizer
    patterns.tsv    name<TAB>regex         asks_number, has_date, relative_now, agent, ...
    doc_kinds.tsv   title ending<TAB>kind  法 -> law, 通知 -> notice
    answer_types.tsv  type<TAB>asks<TAB>gives  the kind of answer a question asks for (a number,
                    a sum of money, a rate, a date, a year, a day, a length of time, how often,
                    materials, a place, a contact) and how a text that gives one reads
    topics.tsv      topic<TAB>regex        the scheme or part of labour law a question or title names
    wordsets.tsv    name<TAB>word word …   small closed word classes: words that end a question's
                    actor (subject_stop), words that carry no topic in a follow-up (followup_weak)
    repealed.tsv    name<TAB>date<TAB>successor  statutes repealed and what took their place
                    (合同法 -> 民法典), told when a question asks for one by name (optional)

Nothing changes jieba's global dictionary: each Lexicon owns a `jieba.Tokenizer`, built on
first use, so importing this module is cheap and two lexicons never interfere.

>>> lex = Lexicon.load()
>>> lex.tokenize("自由职业者怎么交养老保险？")
['自由', '职业', '业者', '职业者', '自由职业者', '交', '养老', '保险', '养老保险']
>>> lex.synonyms["社保"]
('社会保险',)
"""
from __future__ import annotations

import hashlib
import logging
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from index.errors import PolicyQAError

DEFAULT_LEXICON_DIR = Path(__file__).resolve().parent.parent / "data" / "lexicon"
_WORD = re.compile(r"[\u4e00-\u9fff]|[A-Za-z0-9]")
CACHED_TEXT_CHARS = 200  # texts up to this long have their tokens kept (see Lexicon.tokenize)
FILES = ("synonyms.tsv", "stopwords.txt", "jieba.tsv", "patterns.tsv", "doc_kinds.tsv", "answer_types.tsv",
         "topics.tsv", "wordsets.tsv", "repealed.tsv")


def read_lines(path: Path) -> list[str]:
    """The lines of a data file, without '#' comments and blank lines; PolicyQAError naming it if unreadable."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise PolicyQAError(f"cannot read lexicon file {path}: {exc.strerror or exc}") from exc
    return [line for line in lines if line.strip() and not line.startswith("#")]


def _rows(path: Path) -> list[list[str]]:
    """Tab-separated rows of a data file, without '#' comments and blank lines."""
    return [line.split("\t") for line in read_lines(path)]


@dataclass(frozen=True)
class Lexicon:
    """The project's vocabulary, loaded from one folder; see the module docstring."""

    synonyms: dict[str, tuple[str, ...]]
    stopwords: frozenset[str]
    jieba_changes: tuple[tuple[str, str, str], ...]  # (add|del, word, pos)
    patterns: dict[str, re.Pattern]
    doc_kinds: tuple[tuple[str, str], ...]  # (title ending, kind)
    answer_types: tuple[tuple[str, re.Pattern, re.Pattern], ...] = ()  # (type, asks, gives)
    topics: tuple[tuple[str, re.Pattern], ...] = ()  # (topic, how a text names it)
    wordsets: dict[str, frozenset[str]] = field(default_factory=dict)  # name -> its words
    repealed: dict[str, tuple[str, str]] = field(default_factory=dict)  # statute -> (date repealed, successor)
    digest: str = ""  # of the files that change index tokens (stopwords, jieba changes)
    _state: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    @classmethod
    def load(cls, folder: str | Path | None = None) -> "Lexicon":
        """Read the lexicon files of `folder` (default data/lexicon); a missing or bad file raises PolicyQAError."""
        folder = Path(folder or DEFAULT_LEXICON_DIR)
        synonyms = {}
        for row in _rows(folder / "synonyms.tsv"):
            if len(row) != 2 or not row[1].strip():
                raise PolicyQAError(f"{folder / 'synonyms.tsv'}: expected word<TAB>alt1,alt2, got {row!r}")
            synonyms[row[0].strip()] = tuple(a.strip() for a in row[1].split(",") if a.strip())
        stopwords = frozenset(w[0].strip() for w in _rows(folder / "stopwords.txt"))
        changes = []
        for row in _rows(folder / "jieba.tsv"):
            action, word, pos = (row + ["", ""])[:3]
            if action not in ("add", "del") or not word.strip():
                raise PolicyQAError(f"{folder / 'jieba.tsv'}: expected add|del<TAB>word<TAB>pos, got {row!r}")
            changes.append((action, word.strip(), pos.strip()))
        patterns = {}
        for row in _rows(folder / "patterns.tsv"):
            try:
                patterns[row[0]] = re.compile(row[1])
            except (IndexError, re.error) as exc:
                raise PolicyQAError(f"{folder / 'patterns.tsv'}: bad pattern row {row!r} ({exc})") from exc
        kinds = tuple((r[0], r[1]) for r in _rows(folder / "doc_kinds.tsv") if len(r) == 2)
        answer_types = []
        for row in _rows(folder / "answer_types.tsv"):
            try:
                answer_types.append((row[0], re.compile(row[1]), re.compile(row[2])))
            except (IndexError, re.error) as exc:
                raise PolicyQAError(f"{folder / 'answer_types.tsv'}: expected type<TAB>asks<TAB>gives regexes, "
                                    f"got {row!r} ({exc})") from exc
        topics = []
        for row in _rows(folder / "topics.tsv"):
            try:
                topics.append((row[0], re.compile(row[1])))
            except (IndexError, re.error) as exc:
                raise PolicyQAError(f"{folder / 'topics.tsv'}: expected topic<TAB>regex, got {row!r} ({exc})") from exc
        wordsets = {}
        for row in _rows(folder / "wordsets.tsv"):
            if len(row) != 2 or not row[1].split():
                raise PolicyQAError(f"{folder / 'wordsets.tsv'}: expected name<TAB>word word …, got {row!r}")
            wordsets[row[0].strip()] = frozenset(row[1].split())
        repealed = {}
        for row in _rows(folder / "repealed.tsv") if (folder / "repealed.tsv").exists() else []:
            if len(row) != 3 or not all(c.strip() for c in row):
                raise PolicyQAError(f"{folder / 'repealed.tsv'}: expected name<TAB>date<TAB>successor, got {row!r}")
            repealed[row[0].strip()] = (row[1].strip(), row[2].strip())
        digest = hashlib.sha256(repr((sorted(stopwords), changes)).encode()).hexdigest()[:12]
        return cls(synonyms, stopwords, tuple(changes), patterns, kinds, tuple(answer_types), tuple(topics), wordsets,
                   repealed, digest)

    # ---- tokenizing ----

    @property
    def jieba(self):
        """This lexicon's own jieba tokenizer, with its dictionary changes (built once, thread-safe)."""
        tk = self._state.get("jieba")
        if tk is None:
            with _LOCK:
                tk = self._state.get("jieba")
                if tk is None:
                    import jieba

                    jieba.setLogLevel(logging.WARNING)
                    tk = jieba.Tokenizer()
                    for action, word, pos in self.jieba_changes:
                        if action == "add":
                            tk.add_word(word, tag=pos or None)
                        else:
                            tk.del_word(word)
                    tk.initialize()
                    self._state["jieba"] = tk
        return tk

    @property
    def posseg(self):
        """A part-of-speech tokenizer over the same dictionary."""
        pt = self._state.get("posseg")
        if pt is None:
            import jieba.posseg

            pt = jieba.posseg.POSTokenizer(self.jieba)
            self._state["posseg"] = pt
        return pt

    def tokenize(self, norm_text: str) -> list[str]:
        """Search-mode jieba tokens minus punctuation and stopwords (input already simplified).

        A question is tokenized by several stages (features, evidence, the extractive answer), so
        the tokens of the last few hundred short texts are kept; long texts (chunks being indexed) are not.
        """
        if len(norm_text) > CACHED_TEXT_CHARS:
            return self._tokenize(norm_text)
        cached = self._state.get("tokens")
        if cached is None:
            cached = self._state.setdefault("tokens", lru_cache(maxsize=512)(lambda t: tuple(self._tokenize(t))))
        return list(cached(norm_text))

    def _tokenize(self, norm_text: str) -> list[str]:
        return [t for t in self.jieba.lcut_for_search(norm_text.lower())
                if _WORD.search(t) and t not in self.stopwords]

    def content_terms(self, norm_text: str) -> list[str]:
        """Distinct precise-mode content words, in order: '那考核结果要报给谁' -> ['考核', '结果', '报给']."""
        seen: list[str] = []
        for t in self.jieba.lcut(norm_text.lower()):
            if _WORD.search(t) and t not in self.stopwords and t not in seen:
                seen.append(t)
        return seen

    def word_freq(self, word: str) -> int:
        """How common a word is in general Chinese (jieba's dictionary count; 0 if unknown)."""
        return self.jieba.FREQ.get(word) or 0

    # ---- vocabulary ----

    def mentions(self, text_norm: str, term: str) -> bool:
        """Whether the text has the term or one of its document-vocabulary synonyms ('交' ~ '缴纳')."""
        return term in text_norm or any(a in text_norm for a in self.synonyms.get(term, ()))

    def expand(self, norm_text: str) -> str:
        """Append the documents' words for everyday ones: '怎么交社保' -> '怎么交社保 缴 缴纳 缴费 社会保险'."""
        extra = [alt for word, alts in self.synonyms.items() if word in norm_text for alt in alts
                 if alt not in norm_text]
        return norm_text + (" " + " ".join(dict.fromkeys(extra)) if extra else "")

    def pattern(self, name: str) -> re.Pattern:
        try:
            return self.patterns[name]
        except KeyError:
            raise PolicyQAError(f"the lexicon has no pattern {name!r} (patterns.tsv)") from None

    def words(self, name: str) -> frozenset[str]:
        """A named word class of wordsets.tsv: words('subject_stop') holds '负责', '怎么', …"""
        try:
            return self.wordsets[name]
        except KeyError:
            raise PolicyQAError(f"the lexicon has no word set {name!r} (wordsets.tsv)") from None

    def asked_part(self, question_norm: str) -> str:
        """The phrases of a question that ask (a question word, or a question mark after them),
        the story around them left out; the whole question when none does:
        '我申请了低保,材料都交齐了,规定多少天内要办完?' -> '规定多少天内要办完?'."""
        asking = self.pattern("interrogative")
        parts = re.findall(r"[^,，。；;！!？?\n]+[,，。；;！!？?\n]?", question_norm)
        kept = [p for p in parts if asking.search(p) or p[-1] in "？?"]
        return "".join(kept) if kept else question_norm

    def wanted_types(self, question_norm: str) -> tuple[str, ...]:
        """The kinds of answer a question asks for, read in the phrases that ask
        (`asked_part`): '低保标准每月多少钱?什么时候发?' -> ('number', 'date');
        '材料都交齐了,多少天内审批完?' -> ('number',)."""
        asked = self.asked_part(question_norm)
        return tuple(name for name, asks, _ in self.answer_types if asks.search(asked))

    def unmet_types(self, wanted: tuple[str, ...], text_norm: str) -> int:
        """How many of the wanted kinds the text does not give: (('number',), '合理确定保障标准') -> 1."""
        gives = {name: g for name, _, g in self.answer_types}
        return sum(1 for name in wanted if not gives[name].search(text_norm))

    def topics_named(self, text_norm: str) -> frozenset[str]:
        """The topics a simplified text names: '深圳工伤赔偿' -> {'工伤'}, '广东省失业保险条例' -> {'失业'}."""
        return frozenset(name for name, pat in self.topics if pat.search(text_norm))

    def other_topic(self, question_norm: str, title_norm: str) -> bool:
        """Whether the title names topics and none of those the question names:
        ('深圳工伤赔偿', '广东省失业保险条例') -> True; ('…', '社会保险法') -> False (names none)."""
        asked = self.topics_named(question_norm)
        if not asked:
            return False
        named = self.topics_named(title_norm)
        return bool(named) and not asked & named

    def doc_kind(self, title: str) -> str:
        """'中华人民共和国劳动合同法' -> 'law', '…的通知' -> 'notice', else 'other'."""
        t = re.sub(r"[（(][^）)]*[）)]\s*$", "", title.strip())  # '(2018修正)', '(原件无标题…)'
        return next((kind for ending, kind in self.doc_kinds if t.endswith(ending)), "other")


_LOCK = threading.Lock()


@lru_cache(maxsize=8)
def load_lexicon(folder: str | None = None) -> Lexicon:
    """The Lexicon of a folder, loaded once per process (default data/lexicon)."""
    return Lexicon.load(folder)
