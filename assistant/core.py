"""The Assistant: question (+ conversation) -> retrieval -> verified, cited answer."""
from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from assistant.answer import (TermWeights, best_coverage, extractive_answer, make_citation, rerank, short_title,
                              verify_citations)
from assistant.conversation import rewrite_followup, is_followup
from assistant.llm import LLMAnswerer, make_chat_model
from assistant.retrieve import HybridRetriever
from assistant.types import ABSTAIN_TEXT, Answer, Hit
from index.embed import make_embedder
from index.lexical import expand_query
from index.errors import IndexCorrupted, IndexNotBuilt, IndexOutdated, InvalidQuestion, LLMUnavailable
from index.normalize import detect_script, detect_variant, to_script, to_simplified
from index.settings import Settings
from index.store import IndexData, indexed_sources, load_index

# instructions smuggled into a question are not part of what is searched for
INJECTION = re.compile(r"(?:忽略|无视|忘记|忘掉|不要理会|ignore|disregard)[^。！？!?\n]{0,40}?(?:指令|指示|提示|规则|要求|设定|instructions?|prompts?|rules?)[^。！？!?\n]*[。！？!?]?",
                       re.I)


RELATIVE_NOW = re.compile(r"今年|本年度|明年|最新|目前|现在|当前|近期|如今|眼下")
PLACE_SUFFIX = re.compile(r"..+[省市县州]$|.+(?:自治区|特别行政区|地区)$")
GAZETTEER = set("""北京 上海 天津 重庆 河北 山西 辽宁 吉林 黑龙江 江苏 浙江 安徽 福建 江西 山东 河南 湖北 湖南 广东 海南 四川
贵州 云南 陕西 甘肃 青海 台湾 内蒙古 广西 西藏 宁夏 新疆 香港 澳门 沈阳 大连 本溪 鞍山 抚顺 丹东 锦州 营口 长春 哈尔滨
南京 苏州 杭州 宁波 合肥 福州 厦门 南昌 济南 青岛 郑州 武汉 长沙 广州 深圳 珠海 东莞 佛山 成都 贵阳 昆明 西安 兰州 西宁
银川 乌鲁木齐 拉萨 南宁 海口 石家庄 太原 呼和浩特 美国 英国 法国 德国 日本 韩国 俄罗斯 加拿大 澳大利亚 新加坡 意大利
西班牙 印度 巴西 新西兰 荷兰 瑞士 瑞典 泰国 越南 马来西亚 欧洲 欧盟 非洲 美洲""".split())


def is_place_name(word: str) -> bool:
    """A real place name, not a tagging accident ('中多大', '各县区'): known, or ending in 省/市/县…"""
    if word in GAZETTEER or (word[-1:] in "省市县" and word[:-1] in GAZETTEER):
        return True
    if word[:1] in "各本我全该此其每":
        return False
    return bool(PLACE_SUFFIX.match(word)) and len(word) <= 6


def abstain(answer: Answer, hits, reason: str = "") -> None:
    """Turn `answer` into the abstention, offering the nearest clauses as possibly related."""
    answer.abstained = True
    answer.text = ABSTAIN_TEXT + reason
    answer.related = [make_citation(i + 1, h.clause, h.doc, "") for i, h in enumerate(hits[:3])]


def open_index(settings: Settings, embedder=None, progress: bool = True) -> IndexData:
    """Load the index; build it from the bundled corpus if there is none yet, or rebuild it from
    its own sources if an older version wrote it."""
    from index.pipeline import build_index, source_roots

    embedder_name = (embedder or make_embedder(settings.embedder, settings.embed_batch_size)).name
    try:
        return load_index(Path(settings.index_dir), expect_embedder=embedder_name, progress=progress)
    except IndexNotBuilt:
        paths = [Path(settings.corpus_dir)]
        print(f"no index at {settings.index_dir} yet; building it from {settings.corpus_dir}", file=sys.stderr)
    except (IndexOutdated, IndexCorrupted) as exc:
        # the index is derived data: build it again from the files it came from, in the current
        # format; of a damaged index only the damaged documents are parsed and embedded again
        paths = source_roots(indexed_sources(Path(settings.index_dir)), [Path(settings.corpus_dir)])
        damaged = getattr(exc, "damaged", ())
        print(f"{exc}\nrepairing it from {', '.join(map(str, paths))}", file=sys.stderr)
        try:
            data, report = build_index(paths, settings, embedder=embedder, progress=progress, reindex=damaged)
        except IndexCorrupted:  # damage the shard checks could not see: start from scratch
            data, report = build_index(paths, settings, embedder=embedder, progress=progress, rebuild=True)
        print(report.format(), file=sys.stderr)
        return data
    data, report = build_index(paths, settings, embedder=embedder, progress=progress)
    print(report.format(), file=sys.stderr)
    return data


class IndexState(NamedTuple):
    """One loaded index with everything derived from it, swapped in as a whole."""

    data: IndexData
    retriever: HybridRetriever
    weights: TermWeights
    clauses_by_doc: dict


class Assistant:
    """Answers questions over one index. Thread-safe for concurrent `ask` calls."""

    def __init__(self, data: IndexData, embedder, settings: Settings, chat_model=None):
        self.settings = settings
        self.embedder = embedder
        self.chat_model = chat_model
        self._set_data(data)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, embedder=None, chat_model=None, progress: bool = True) -> "Assistant":
        settings = settings or Settings.from_env()
        embedder = embedder or make_embedder(settings.embedder, settings.embed_batch_size)
        data = open_index(settings, embedder, progress=progress)
        return cls(data, embedder, settings, chat_model if chat_model is not None else make_chat_model(settings))

    def _set_data(self, data: IndexData):
        # one assignment, so a question in flight sees either the old index or the new one
        self._state = IndexState(data, HybridRetriever(data, self.embedder, self.settings),
                                 TermWeights(data.bm25.doc_freq, len(data.chunks)),
                                 {d.doc_id: list(d.clauses) for d in data.docs.values()})
        self._mentions: dict = {}

    @property
    def data(self) -> IndexData:
        return self._state.data

    @property
    def retriever(self) -> HybridRetriever:
        return self._state.retriever

    @property
    def weights(self) -> TermWeights:
        return self._state.weights

    @property
    def clauses_by_doc(self) -> dict:
        return self._state.clauses_by_doc

    def reload(self, data: IndexData | None = None):
        """Swap in a newly built index (e.g. after an upload) without stopping."""
        data = data or load_index(Path(self.settings.index_dir), expect_embedder=self.embedder.name)
        self._set_data(data)

    @property
    def llm_available(self) -> bool:
        return self.chat_model is not None

    # ---- checks ----

    def check_question(self, question: str) -> str:
        if question is None or not str(question).strip():
            raise InvalidQuestion("问题为空，请输入要查询的问题。")
        question = str(question).strip()
        if len(question) > self.settings.max_question_chars:
            raise InvalidQuestion(f"问题过长（{len(question)} 字），请精简到 {self.settings.max_question_chars} 字以内。")
        return question

    def _mentioned_in_corpus(self, word: str) -> bool:
        """Whether any indexed document mentions `word` (cached per index)."""
        data = self.data
        cache = self._mentions.setdefault(id(data), {})
        if word not in cache:
            cache[word] = any(word in d.norm_text or word in to_simplified(d.title) for d in data.docs.values())
        return cache[word]

    def _unknown_places(self, question_norm: str) -> list[str]:
        """Place names in the question that no indexed document mentions (another city or country)."""
        import jieba.posseg as pseg

        places = [w for w, flag in pseg.cut(question_norm) if flag == "ns" and is_place_name(w)]
        places += [g for g in GAZETTEER if g in question_norm and not any(g in p for p in places)]
        known = [p for p in places if self._mentioned_in_corpus(p)]
        if known:
            return []  # "从沈阳转到本溪…" is still a question about 本溪
        return places

    def _dated_before_now(self, question_norm: str, hits) -> str:
        """A note when the question asks about the present ('今年…') but the best matching
        documents are dated years ago; '' otherwise."""
        if not RELATIVE_NOW.search(question_norm) or not hits:
            return ""
        dated = hits[0].doc.meta.issue_date or hits[0].doc.meta.effective_date
        if not dated:
            return ""  # an undated document may well be current
        newest = int(dated[:4])
        if newest >= time.localtime().tm_year - 1:
            return ""
        return f"最相关的文件发布于 {newest} 年，不能说明现在的情况。"

    # ---- answering ----

    def ask(self, question: str, history: list[dict] | None = None, docs: list[str] | None = None,
            mode: str | None = None) -> Answer:
        """Answer one question; see ask_stream for the streamed form."""
        answer = None
        for kind, value in self.ask_stream(question, history, docs, mode):
            if kind == "answer":
                answer = value
        return answer

    def retrieve(self, question: str, history: list[dict] | None = None, docs: list[str] | None = None,
                 mode: str | None = None, k: int | None = None, timings: dict | None = None,
                 notices: list[str] | None = None, state: IndexState | None = None) -> tuple[str, list[Hit]]:
        """(stand-alone query, ranked hits) for a question in its conversation: injection stripped,
        follow-up rewritten, synonyms expanded, fused, reranked; exact clause lookups first."""
        timings = {} if timings is None else timings
        notices = [] if notices is None else notices
        state = state or self._state
        history = [h for h in (history or []) if isinstance(h, dict) and h.get("content")]
        mode = mode or self.settings.answerer
        search_q = INJECTION.sub(" ", question).strip() or question
        if search_q != question:
            notices.append("问题中的指令性文字已被忽略，只按问题内容检索")
        rewritten = search_q
        prefer_docs = None
        if history and is_followup(search_q, history):
            t = time.perf_counter()
            if mode == "llm" and self.chat_model is not None:
                try:
                    rewritten = LLMAnswerer(self.chat_model).rewrite(search_q, history)
                except LLMUnavailable as exc:
                    notices.append(f"大模型改写追问失败，已改用规则改写（{exc}）")
                    rewritten = rewrite_followup(search_q, history)
            else:
                rewritten = rewrite_followup(search_q, history)
            prefer_docs = self._docs_of_previous_question(history, docs, state)
            timings["rewrite"] = (time.perf_counter() - t) * 1000
        qn = to_simplified(rewritten)
        if not docs:
            # a question that names a document ("本溪的专项行动…") prefers it
            named = [d.doc_id for score, d in state.retriever.names.score(qn) if score >= 2.0]
            prefer_docs = list(dict.fromkeys((prefer_docs or []) + named)) or None
        hits = state.retriever.search(expand_query(qn), k=self.settings.candidate_k, docs=docs, timings=timings,
                                      prefer_docs=prefer_docs)
        looked_up = list(dict.fromkeys(h.doc for h in hits if h.via == "lookup"))
        if len(looked_up) > 1:
            titles = "".join(f"《{short_title(d.title, 20)}》" for d in looked_up)
            notices.append(f"问题所说的条款在多份文件中都有：{titles}；以下按《{short_title(looked_up[0].title, 20)}》回答，"
                           f"可在问题中写明文件名")
        return rewritten, rerank(qn, hits, state.weights, k or self.settings.top_k, timings, prefer_docs=prefer_docs)

    def ask_stream(self, question: str, history: list[dict] | None = None, docs: list[str] | None = None,
                   mode: str | None = None) -> Iterator[tuple[str, object]]:
        """Yields ('delta', text) while the answer is written, then ('answer', Answer) once verified."""
        t0 = time.perf_counter()
        question = self.check_question(question)
        history = [h for h in (history or []) if isinstance(h, dict) and h.get("content")]
        mode = mode or self.settings.answerer
        timings: dict = {}
        notices: list[str] = []
        script = detect_script(question)
        variant = detect_variant(question) if script == "traditional" else "s2t"

        state = self._state
        weights, clauses_by_doc = state.weights, state.clauses_by_doc
        rewritten, hits = self.retrieve(question, history, docs, mode, timings=timings, notices=notices, state=state)
        qn = to_simplified(rewritten)

        t_ans = time.perf_counter()
        answer = Answer(question=question, text="", rewritten_query=rewritten, script=script, notices=notices)
        unknown = self._unknown_places(qn)
        stale = self._dated_before_now(qn, hits)
        coverage = best_coverage(qn, hits, weights) if hits else 0.0
        lookup = bool(hits) and hits[0].via == "lookup"
        if not hits or (not lookup and (unknown or stale or coverage < self.settings.min_coverage)):
            reason = f"已收录的文件不涉及“{'、'.join(dict.fromkeys(unknown))}”。" if unknown else stale
            abstain(answer, hits, reason)
        else:
            done = False
            if mode == "llm":
                if self.chat_model is None:
                    notices.append("未配置大模型服务，已使用抽取式回答")
                else:
                    try:
                        for kind, value in self._llm_answer(question, qn, hits, answer):
                            if kind == "delta":
                                yield kind, to_script(value, script, variant) if script == "traditional" else value
                        done = bool(answer.citations)
                        if not done:
                            notices.append("大模型回答中没有可核实的引用，已改用抽取式回答")
                    except LLMUnavailable as exc:
                        notices.append(f"大模型服务不可用，已改用抽取式回答（{exc}）")
            if not done:
                answer.mode = "extractive"
                answer.text, answer.citations = extractive_answer(qn, hits, weights, clauses_by_doc)
                if not answer.citations:
                    abstain(answer, hits)
        # the answer speaks the question's script, whatever the document's (quotes stay verbatim)
        answer.text = to_script(answer.text, script, variant)
        timings["answer"] = (time.perf_counter() - t_ans) * 1000
        timings["retrieve"] = sum(timings.get(k, 0) for k in ("normalize", "embed", "faiss", "bm25", "fusion"))
        timings["total"] = (time.perf_counter() - t0) * 1000
        answer.timings_ms = timings
        if answer.mode == "extractive" or answer.abstained:
            yield "delta", answer.text
        yield "answer", answer

    def _llm_answer(self, question: str, qn: str, hits, answer: Answer):
        sources = [(h.clause, h.doc) for h in hits[:self.settings.llm_sources]]
        shown = [{"title": d.title, "label": c.label, "text": d.text[c.start:c.end].strip()[:self.settings.llm_source_chars]}
                 for c, d in sources]
        parts = []
        for delta in LLMAnswerer(self.chat_model).stream_answer(question, shown):
            parts.append(delta)
            yield "delta", delta
        raw = "".join(parts).strip()
        if not raw:
            raise LLMUnavailable("LLM returned an empty answer")
        text, citations, notices = verify_citations(raw, sources)
        answer.notices.extend(notices)
        answer.text, answer.citations, answer.mode = text, citations, "llm"

    def _docs_of_previous_question(self, history: list[dict], docs: list[str] | None,
                                   state: IndexState) -> list[str] | None:
        """Documents the previous question was answered from: its best hits' documents."""
        previous = [h["content"] for h in history if h.get("role") == "user"]
        if not previous:
            return None
        qn = to_simplified(INJECTION.sub(" ", previous[-1]))
        hits = rerank(qn, state.retriever.search(expand_query(qn), k=self.settings.candidate_k, docs=docs),
                      state.weights, 2)
        return list(dict.fromkeys(h.doc.doc_id for h in hits[:1])) or None
