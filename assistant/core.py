"""The Assistant: question (+ conversation) -> retrieval -> ranking -> decision -> cited answer."""
from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from assistant.compose import best_clauses_answer, extractive_answer
from assistant.history import bound_history, history_bounds
from assistant.llm import LLMAnswerer, make_chat_model
from assistant.llm_reply import llm_events
from assistant.opening import load_models, open_index
from assistant.query import clean_history, clean_text, dropped_notice, prepare_query, resolve_doc_filter, search_text
from assistant.quotes import make_citation, short_title
from assistant.search import Searcher
from assistant.slots import AnswerSlots
from assistant.types import ABSTAIN_TEXT, CAUTION_TEXT, Answer, Hit
from index.backend import live_generation, load_search_index
from index.embed import make_embedder
from index.errors import InvalidQuestion, LLMUnavailable, PolicyQAError, UnknownDocument
from index.lexicon import load_lexicon
from index.normalize import detect_script, detect_variant, to_script, to_simplified
from index.places import load_gazetteer
from index.settings import Settings
from index.store import IndexData


class IndexState(NamedTuple):
    """One loaded index with everything derived from it, swapped in as a whole."""

    data: IndexData
    searcher: Searcher


class Assistant:
    """Answers questions over one index. Thread-safe for concurrent `ask` calls."""

    def __init__(self, data: IndexData, embedder, settings: Settings, chat_model=None, models=None,
                 first_stage=None):
        """`models` (ranker, decider) default to the files the settings name; `first_stage`
        (assistant.expansion.FirstStage) gathers candidates when no ranker is given (training)."""
        self.settings = settings
        self.embedder = embedder
        self.chat_model = chat_model
        self.lexicon = load_lexicon(settings.lexicon_dir or None)
        self.gazetteer = load_gazetteer()
        self.ranker, self.decider = models if models is not None else load_models(settings)
        self.first_stage = first_stage
        self._refresh_lock = threading.Lock()
        self._next_check = 0.0
        self.answer_slots = AnswerSlots(settings.api_concurrency, settings.query_cores)
        self._set_data(data)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, embedder=None, chat_model=None, progress: bool = True,
                      models=None, first_stage=None) -> "Assistant":
        settings = settings or Settings.from_env()
        models = models if models is not None else load_models(settings)  # a bad model file fails before any build
        embedder = embedder or make_embedder(settings.embedder, settings.embed_batch_size)
        data = open_index(settings, embedder, progress=progress)
        return cls(data, embedder, settings, chat_model if chat_model is not None else make_chat_model(settings),
                   models, first_stage)

    def _set_data(self, data: IndexData):
        # one assignment, so a question in flight sees either the old index or the new one
        self._state = IndexState(data, Searcher(data, self.embedder, self.settings, self.lexicon, self.gazetteer,
                                                self.ranker, self.decider, self.answer_slots.threads_for_one,
                                                self.first_stage))

    @property
    def data(self) -> IndexData:
        return self._state.data

    @property
    def searcher(self) -> Searcher:
        return self._state.searcher

    @property
    def retriever(self):
        return self._state.searcher.retriever

    def reload(self, data: IndexData | None = None):
        """Swap in a newly built index (e.g. after an upload) without stopping."""
        data = data or load_search_index(self.settings, expect_embedder=self.embedder.name)
        self._set_data(data)

    def refresh(self) -> bool:
        """Load the generation another process published, if CURRENT names a new one; checked at most
        every settings.reload_check_s seconds, by one thread at a time. True when it loaded one."""
        gen = Path(self.data.location) if self.data.location else None
        index_dir = Path(self.settings.index_dir)
        now = time.monotonic()
        if gen is None or now < self._next_check or not self._refresh_lock.acquire(blocking=False):
            return False
        try:
            self._next_check = now + self.settings.reload_check_s
            if gen.parent.resolve() != index_dir.resolve():  # data handed in from elsewhere: nothing to watch
                return False
            live = live_generation(index_dir)
            if not live or live == gen.name:
                return False
            try:
                self.reload()
            except (PolicyQAError, OSError) as exc:  # keep answering from the loaded one; retry at the next check
                print(f"index generation {live} not loaded ({exc}); still answering from {gen.name}", file=sys.stderr)
                return False
            return True
        finally:
            self._refresh_lock.release()

    @property
    def llm_available(self) -> bool:
        return self.chat_model is not None

    def check_question(self, question: str) -> str:
        """The question as answered: stripped, without characters that cannot be encoded; an
        empty, non-text or oversized question raises InvalidQuestion."""
        return self._checked_question(question)[0]

    def _checked_question(self, question) -> tuple[str, int]:
        """(check_question's result, characters dropped from it by clean_text)."""
        if question is not None and not isinstance(question, (str, int, float)):
            raise InvalidQuestion("问题必须是文字，请输入要查询的问题。")
        cleaned = clean_text(str(question) if question is not None else "")
        question = cleaned.text.strip()
        if not question:
            raise InvalidQuestion("问题为空，请输入要查询的问题。" if not cleaned.dropped
                                  else "问题中没有可识别的文字（无效编码或控制字符），请重新输入。")
        if len(question) > self.settings.max_question_chars:
            raise InvalidQuestion(f"问题过长（{len(question)} 字），请精简到 {self.settings.max_question_chars} 字以内。")
        return question, cleaned.dropped

    # ---- answering ----

    def ask(self, question: str, history: list[dict] | None = None, docs: list[str] | None = None,
            mode: str | None = None) -> Answer:
        """Answer one question; see ask_stream for the streamed form."""
        answer = None
        for kind, value in self.ask_stream(question, history, docs, mode):
            if kind == "answer":
                answer = value
        return answer

    def prepare(self, question: str, history: list[dict] | None = None, docs: list[str] | None = None,
                mode: str | None = None, state: IndexState | None = None, as_followup: bool = False):
        """(query, Prepared candidates, notices) for a question in its conversation; `as_followup`
        reads it as a follow-up whatever its words (see rank)."""
        state = state or self._state
        question = clean_text(str(question)).text
        history, dropped = clean_history(bound_history(history, **history_bounds(self.settings)))
        docs, unknown = resolve_doc_filter(docs, state.data.docs)
        shown = "、".join(f"“{v[:40]}”" for v in unknown)
        if unknown and not docs:
            raise UnknownDocument(f"文件筛选 {shown} 没有匹配任何已收录的文件，请检查文件名、编号或标题。")
        mode = mode or self.settings.answerer
        rewriter = (LLMAnswerer.from_settings(self.chat_model, self.settings)
                    if mode == "llm" and self.chat_model is not None else None)
        query = prepare_query(question, history, rewriter, self.lexicon, as_followup)
        prefer_docs = self._docs_of_previous_question(history, docs, state) if query.followup else None
        named = state.searcher.named_documents(query.norm)
        if not docs:
            # a question that names a document ("本溪的专项行动…") prefers it
            clearly = [d for d, score in named.items() if score >= 2.0]
            prefer_docs = list(dict.fromkeys((prefer_docs or []) + clearly)) or None
        prep = state.searcher.prepare(query.norm, docs, prefer_docs, named=named)
        notices = list(query.notices)
        if unknown:
            notices.append(f"文件筛选 {shown} 没有匹配任何已收录的文件，已忽略")
        if dropped:
            notices.append(dropped_notice(dropped, "对话记录"))
        if prep.unindexed_statute:
            notices.append(state.searcher.retriever.statutes.unindexed_notice(prep.unindexed_statute))
        if prep.version is not None:
            v = prep.version
            title = short_title(state.data.docs[v.doc_id].title, 20)
            notices.append(f"已按《{title}》{v.date} 版本查找；现行版本为 {v.current_date} 版本")
        looked_up = list(dict.fromkeys(h.doc for h in prep.lookups))
        if len(looked_up) > 1:
            titles = "".join(f"《{short_title(d.title, 20)}》" for d in looked_up)
            notices.append(f"问题所说的条款在多份文件中都有：{titles}；以下按《{short_title(looked_up[0].title, 20)}》回答，"
                           f"可在问题中写明文件名")
        return query, prep, notices

    def rank(self, question: str, history: list[dict] | None = None, docs: list[str] | None = None,
             mode: str | None = None, k: int | None = None, state: IndexState | None = None):
        """(query, Ranked, notices) for a question in its conversation.

        A question after earlier ones that is not read as a follow-up ('企业缴的能税前列支多少?' after
        one on 企业年金: no word points back) and is not answered as it stands is read as a follow-up
        too; that reading is kept when it is answered, and trusted more by the answerability model
        ('火星移民政策是什么?' after questions on 社会保险 is not made a question about them), and only
        for a question whose every word the documents use: one that brings words they never use
        (火星, 移民) asks about something else, however well the earlier questions' words are answered."""
        state = state or self._state
        k = k or self.settings.top_k
        query, prep, notices = self.prepare(question, history, docs, mode, state)
        ranked = state.searcher.rank_prepared(prep, k)
        if (query.followup or not query.conversation or ranked.decision.outcome == "answered"
                or not state.searcher.knows_every_word(prep.question.norm)):
            return query, ranked, notices
        other = self.prepare(question, history, docs, mode, state, as_followup=True)
        other_ranked = state.searcher.rank_prepared(other[1], k)
        if other_ranked.decision.outcome == "answered":  # so it is trusted more: the first is not
            return other[0], other_ranked, other[2]
        return query, ranked, notices

    def retrieve(self, question: str, history: list[dict] | None = None, docs: list[str] | None = None,
                 mode: str | None = None, k: int | None = None) -> tuple[str, list[Hit]]:
        """(stand-alone query, ranked hits): exact clause lookups first, then by the ranker."""
        self.refresh()
        query, ranked, _ = self.rank(question, history, docs, mode, k)
        return query.rewritten, list(ranked.hits)

    def ask_stream(self, question: str, history: list[dict] | None = None, docs: list[str] | None = None,
                   mode: str | None = None) -> Iterator[tuple[str, object]]:
        """Yields ('delta', text) while the answer is written, then ('answer', Answer) once verified.

        An extractive answer is computed whole, in one of the shared answer slots (AnswerSlots),
        before its first event; an LLM's answer takes no slot, being mostly a wait for the model."""
        if (mode or self.settings.answerer) == "llm":
            yield from self._answer_events(question, history, docs, mode)
            return
        with self.answer_slots.slot():
            events = list(self._answer_events(question, history, docs, mode))
        yield from events

    def _answer_events(self, question: str, history: list[dict] | None, docs: list[str] | None,
                       mode: str | None) -> Iterator[tuple[str, object]]:
        t0 = time.perf_counter()
        self.refresh()  # another process may have published a new generation
        question, dropped = self._checked_question(question)
        mode = mode or self.settings.answerer
        script = detect_script(question)
        variant = detect_variant(question) if script == "traditional" else "s2t"
        state = self._state
        query, ranked, notices = self.rank(question, history, docs, mode, state=state)
        if dropped:
            notices.insert(0, dropped_notice(dropped))
        timings = dict(ranked.timings_ms)
        if query.rewrite_ms is not None:
            timings["rewrite"] = query.rewrite_ms
        hits = list(ranked.hits)
        quotable = state.searcher.one_place(hits)  # a reply speaks for one place's rules (and national ones)
        outcome = ranked.decision.outcome
        t_ans = time.perf_counter()
        text, citations, related, used = "", [], [], "extractive"
        if outcome != "abstained":
            if mode == "llm" and outcome == "answered":
                if self.chat_model is None:
                    notices.append("未配置大模型服务，已使用抽取式回答")
                else:
                    try:
                        for kind, value in llm_events(self.chat_model, self.settings, question, quotable):
                            if kind == "delta":
                                yield "delta", to_script(value, script, variant) if script == "traditional" else value
                            else:
                                reply = value  # the last event: the verified reply
                        text, citations, more = reply
                        notices.extend(more)
                        used = "llm"
                        if not citations:
                            notices.append("大模型回答中没有可核实的引用，已改用抽取式回答")
                    except LLMUnavailable as exc:
                        notices.append(f"大模型服务不可用，已改用抽取式回答（{exc}）")
            if not citations:
                used = "extractive"
                compose = best_clauses_answer if outcome == "uncertain" else extractive_answer
                text, citations = compose(query.norm, quotable, state.searcher.weights, state.searcher.clauses_by_doc)
                if not citations:
                    outcome = "abstained"
            if outcome == "uncertain" and citations:
                text = CAUTION_TEXT + "\n" + text
        if outcome == "abstained":
            text = ABSTAIN_TEXT + ranked.abstain_reason()
            related = [make_citation(i + 1, h.clause, h.doc, "") for i, h in enumerate(hits[:3])]
            citations = []
        # the answer speaks the question's script, whatever the document's (quotes stay verbatim)
        text = to_script(text, script, variant)
        timings["answer"] = (time.perf_counter() - t_ans) * 1000
        timings["retrieve"] = sum(timings.get(k, 0) for k in ("lookup", "embed", "memory", "faiss", "bm25", "fusion"))
        timings["total"] = (time.perf_counter() - t0) * 1000
        answer = Answer(question=question, text=text, citations=tuple(citations), outcome=outcome,
                        confidence=ranked.decision.confidence, rewritten_query=query.rewritten,
                        related=tuple(related), notices=tuple(notices), script=script, mode=used,
                        timings_ms=tuple(timings.items()))
        if used == "extractive" or answer.abstained:
            yield "delta", answer.text
        yield "answer", answer

    def _docs_of_previous_question(self, history: list[dict], docs: list[str] | None,
                                   state: IndexState) -> list[str] | None:
        """Documents the previous question was answered from: its best hit's document."""
        previous = [h["content"] for h in history if h.get("role") == "user"]
        if not previous:
            return None
        qn = to_simplified(search_text(previous[-1], self.lexicon)[0])
        ranked = state.searcher.rank_question(qn, 1, docs)
        return [h.doc.doc_id for h in ranked.hits[:1]] or None
