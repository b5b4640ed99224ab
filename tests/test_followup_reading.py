"""A question after earlier ones that says nothing that points back is also read as a follow-up,
when it is not answered as it stands; the reading the answerability model trusts more is kept."""
from __future__ import annotations

from assistant.conversation import rewrite_followup
from assistant.query import prepare_query

PENSION = [{"role": "user", "content": "天津怎么推行企业年金制度?"},
           {"role": "assistant", "content": "鼓励企业在依法参加社会保险的基础上建立企业年金制度。"}]


def test_a_question_without_a_pointer_back_is_rewritten_only_when_asked_to():
    question = "企业缴的能税前列支多少?"
    assert rewrite_followup(question, PENSION) == question
    forced = rewrite_followup(question, PENSION, force=True)
    assert forced != question and forced.endswith(question) and "天津" in forced
    assert not prepare_query(question, PENSION).followup
    query = prepare_query(question, PENSION, as_followup=True)
    assert query.followup and query.rewritten == forced
    # without a conversation there is nothing to lean on
    assert not prepare_query(question, [], as_followup=True).followup


def test_an_unanswered_question_is_answered_as_a_follow_up_of_the_conversation(nano_assistant):
    alone = nano_assistant.ask("企业缴的能税前列支多少?")
    assert alone.outcome != "answered"
    ans = nano_assistant.ask("企业缴的能税前列支多少?", PENSION)
    assert ans.outcome == "answered" and ans.confidence > alone.confidence
    assert ans.citations[0].label == "二、(一)4." and "4%" in ans.citations[0].quote
    assert ans.rewritten_query != "企业缴的能税前列支多少?"


def test_a_question_answered_as_it_stands_is_not_joined_to_the_conversation(nano_assistant):
    history = [{"role": "user", "content": "天津2005年养老保险扩面指标是多少?"}, {"role": "assistant", "content": "养老保险30万人。"}]
    question = "本溪的自由职业者交养老保险,缴费基数最低是多少?"
    ans = nano_assistant.ask(question, history)
    assert ans.rewritten_query == question
    assert ans.outcome == "answered" and ans.citations[0].label == "四、(四)"


def test_a_follow_up_the_documents_do_not_answer_still_abstains(nano_assistant):
    history = [{"role": "user", "content": "天津失业保险扩面的重点是什么?"},
               {"role": "assistant", "content": "尚未参保的企事业单位和非公有经济组织。"}]
    assert nano_assistant.ask("失业金最长能领多少个月?", history).abstained


def test_a_question_on_nothing_the_documents_say_is_not_made_one_about_the_conversation(nano_assistant):
    history = [{"role": "user", "content": "个体工商户应该参加哪些社会保险?"},
               {"role": "assistant", "content": "研究制定有雇工的个体工商户参加养老保险办法。"}]
    ans = nano_assistant.ask("火星移民政策是什么?", history)
    assert ans.abstained and ans.rewritten_query == "火星移民政策是什么?"


def test_words_the_documents_never_use_keep_a_question_out_of_the_conversation(nano_assistant):
    # the conversation the browser test holds: its words (补缴, 滞纳金, 个体工商户) are answered well
    # enough that the forced reading would be answered on them alone
    history = [{"role": "user", "content": "自由职业者怎么交养老保险?"},
               {"role": "assistant", "content": "自由职业者可按最低不低于我市上年在岗职工月平均工资的60%作为缴费基数。"},
               {"role": "user", "content": "那一次性补缴要交滞纳金吗?"},
               {"role": "assistant", "content": "按自由职业者缴费办法一次性补缴基本养老保险费的,不收取滞纳金。"},
               {"role": "user", "content": "個體工商戶應該參加哪些社會保險?"},
               {"role": "assistant", "content": "研究制定有雇工的个体工商户参加养老保险办法。"}]
    searcher = nano_assistant.searcher
    assert not searcher.knows_every_word("火星移民政策是什么?")  # 火星, 移民
    assert searcher.knows_every_word("企业缴的能税前列支多少?")
    ans = nano_assistant.ask("火星移民政策是什么?", history)
    assert ans.abstained and ans.rewritten_query == "火星移民政策是什么?"
