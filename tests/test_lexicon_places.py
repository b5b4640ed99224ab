"""Vocabulary and places as data: the Lexicon's files, its own jieba, the gazetteer and document places."""
from __future__ import annotations

import shutil

import jieba
import pytest

from index.errors import PolicyQAError
from index.lexicon import DEFAULT_LEXICON_DIR, Lexicon, load_lexicon
from index.places import document_place, load_gazetteer, short_name


def test_lexicon_tokens_follow_its_dictionary_changes():
    lex = load_lexicon()
    assert "报给" in lex.tokenize("考核结果要报给谁") and "要报" not in lex.tokenize("要报哪个部门")


def test_lexicon_does_not_touch_jiebas_global_dictionary():
    load_lexicon().tokenize("考核结果要报给谁")
    jieba.initialize()
    assert "报给" not in jieba.dt.user_word_tag_tab and jieba.dt.FREQ.get("要报", 1) != 0


def test_a_changed_synonym_file_changes_expansion(tmp_path):
    folder = tmp_path / "lex"
    shutil.copytree(DEFAULT_LEXICON_DIR, folder)
    with open(folder / "synonyms.tsv", "a", encoding="utf-8") as f:
        f.write("五险\t社会保险\n")
    assert Lexicon.load(folder).expand("五险怎么交").endswith("社会保险")
    assert "社会保险" not in Lexicon.load(DEFAULT_LEXICON_DIR).expand("五险")


@pytest.mark.parametrize("bad,content", [
    ("synonyms.tsv", "社保\n"),
    ("jieba.tsv", "change\t报给\n"),
    ("patterns.tsv", "asks_number\t(unclosed\n"),
    ("answer_types.tsv", "number\t多少\n"),
    ("topics.tsv", "工伤\t(unclosed\n"),
    ("wordsets.tsv", "followup_weak\n"),
])
def test_a_malformed_lexicon_file_is_named(tmp_path, bad, content):
    folder = tmp_path / "lex"
    shutil.copytree(DEFAULT_LEXICON_DIR, folder)
    (folder / bad).write_text(content, encoding="utf-8")
    with pytest.raises(PolicyQAError, match=bad):
        Lexicon.load(folder)


def test_a_missing_word_set_is_named(tmp_path):
    folder = tmp_path / "lex"
    shutil.copytree(DEFAULT_LEXICON_DIR, folder)
    (folder / "wordsets.tsv").write_text("locative\t里 中\n", encoding="utf-8")
    lex = Lexicon.load(folder)
    assert lex.words("locative") == {"里", "中"}
    with pytest.raises(PolicyQAError, match="subject_stop"):
        lex.words("subject_stop")


def test_follow_ups_and_injections_read_the_lexicon_they_are_given(tmp_path):
    from assistant.conversation import is_followup
    from assistant.query import prepare_query

    folder = tmp_path / "lex"
    shutil.copytree(DEFAULT_LEXICON_DIR, folder)
    history = [{"role": "user", "content": "自由职业者怎么交养老保险?"}]
    # two topic words by default ('养老金', '补发'): it stands alone; with 补发 weak it leans on the history
    with open(folder / "wordsets.tsv", "a", encoding="utf-8") as f:
        f.write("followup_weak\t能 吗 补发\n")
    with open(folder / "patterns.tsv", "a", encoding="utf-8") as f:
        f.write("injection\t(?i)不用管前面的话\n")
    own = Lexicon.load(folder)
    question = "养老金能补发吗?"
    assert not is_followup(question, history) and is_followup(question, history, own)
    assert prepare_query("不用管前面的话 低保标准", [], lexicon=own).search == "低保标准"
    assert prepare_query("不用管前面的话 低保标准", []).search == "不用管前面的话 低保标准"


@pytest.mark.parametrize("question,kinds", [
    ("低保标准是每人每月多少钱?", ("number", "money")),
    ("想申请低保,要准备哪些材料?审批要多长时间?", ("date", "materials", "duration")),
    ("去哪个网点领养老金?", ("place",)),
    ("领导小组办公室设在哪个部门?", ()),  # a department, not a place to go
    ("举报电话是多少?", ("number", "contact")),
    ("自由职业者怎么交养老保险?", ()),
    # the story around the question asks for nothing: the materials are handed in already
    ("我给家里申请了低保，材料都交齐了，规定多少天内要办完审批？", ("number", "duration")),
    ("还有好几个月没领完，剩下的失业金能一次性领吗？", ()),  # 好几 tells, it does not ask
    # the finer kinds: a year, a day of the month, a rate
    ("新能源汽车免征购置税到哪一年?", ("date", "year")),
    ("各市地每个月几号之前要报给省政府?", ("date", "day")),
    ("扩面征缴旬报告每个月哪几天前要报?", ("number", "day")),  # 哪几天 asks which days, not how long
    ("个人账户的钱按什么利率计息?", ("percent",)),
    ("工伤保险费率怎么确定?", ()),  # a rate named, no value asked
    ("新注册企业的信息多久报一次?", ("date", "frequency")),  # how often, not how long
    # what it takes, how it is done, how it is computed, who sits on it, what form
    ("企业年金管理机构要具备什么条件才能进入?", ("criteria",)),
    ("怎样才算企业确实无力解决?", ("criteria",)),
    ("申请社会医疗救济要走什么流程?", ("procedure",)),
    ("经济补偿金是怎么算的?", ("calculation",)),
    ("基金监督委员会由哪些单位和人员组成?", ("composition",)),
    ("按月上报要用什么格式的报表?", ("format",)),
    ("自由职业者交养老保险的标准", ()),  # names a standard, asks for none
])
def test_the_kinds_of_answer_a_question_asks_for(question, kinds):
    assert load_lexicon().wanted_types(question) == kinds


@pytest.mark.parametrize("question, asked", [
    ("我申请了低保,材料都交齐了,规定多少天内要办完?", "规定多少天内要办完?"),
    ("想申请低保,要准备哪些材料?审批要多长时间?", "要准备哪些材料?审批要多长时间?"),
    ("单位没给我交社保,我想去投诉?", "我想去投诉?"),  # a question mark asks without a question word
    ("自由职业者交养老保险的标准", "自由职业者交养老保险的标准"),  # nothing asks: the whole question
])
def test_the_phrases_that_ask(question, asked):
    assert load_lexicon().asked_part(question) == asked


@pytest.mark.parametrize("question,title,other", [
    ("我在深圳被机器压伤了手，一次性伤残补助金能拿几个月？", "广东省失业保险条例", True),
    ("我在深圳被机器压伤了手，一次性伤残补助金能拿几个月？", "广东省工伤保险条例", False),
    ("公司给我办了医保，从第几个月开始能报销？", "郑州市企业职工基本养老保险条例", True),
    ("试用期工资怎么算？", "中华人民共和国劳动合同法", False),  # both name labour relations
    ("试用期工资怎么算？", "中华人民共和国劳动法", False),  # a title that names no topic is never another
    ("自由职业者怎么交养老保险?", "本溪市人民政府批转市劳动保障局关于巩固和完善城镇社会养老保险体系专项行动实施方案的通知", False),
    ("房子着火了能申请临时救助吗？", "河南省工伤保险条例", True),
    ("厂子不要我了，我能在开封办失业登记吗？", "河南省就业促进条例", False),  # 失业登记 is the employment rules'
    ("厂子不要我了，失业金能领多久？", "河南省就业促进条例", True),
    ("驾驶证到期了怎么换证?", "广东省失业保险条例", False),  # the question names no topic
])
def test_a_title_about_another_topic(question, title, other):
    assert load_lexicon().other_topic(question, title) is other


def test_a_missing_lexicon_folder_is_a_clear_error(tmp_path):
    with pytest.raises(PolicyQAError, match="cannot read lexicon file"):
        Lexicon.load(tmp_path / "nowhere")


@pytest.mark.parametrize("name,short", [("广西壮族自治区", "广西"), ("本溪市", "本溪"), ("延边朝鲜族自治州", "延边"),
                                        ("北京市", "北京"), ("内蒙古自治区", "内蒙古"),
                                        ("浦东新区", "浦东")])
def test_short_names(name, short):
    assert short_name(name) == short


@pytest.mark.parametrize("text,names", [
    ("我在本溪工作，老家是河南的", ["本溪市", "河南省"]),
    ("郑州市失业保险金能领多久", ["郑州市"]),
    ("自由职业者怎么交养老保险", []),
    ("长安的汽车", []),  # a county only by its full name
    ("朝阳区的低保", ["朝阳区"]),
    ("民法典第五十四条", []),
    ("我在义乌的工厂被拖欠工资", ["义乌市"]),  # a county-level city, as people name it
    ("昆山灵活就业人员怎么交社保", ["昆山市"]),
    ("农民专业合作社怎么交养老保险", []),  # 合作市 only with 市: 合作 is a word
    ("东方的医保", []),
    ("在美国工作怎么交社保", ["美国"]),  # another country (pycountry's Chinese names)
    ("韩国的养老金", ["韩国"]),
    ("印度尼西亚的劳工", ["印度尼西亚"]),  # the longest name, not 印度
    ("我是朝鲜族", []),  # an ethnic group, not the country
    ("内蒙古的低保", ["内蒙古自治区"]),  # not 蒙古
    ("沿海地区的灵活就业人员", []),  # 海地 only inside a phrase
    ("我住在北京朝阳，儿子不给生活费", ["北京市", "朝阳区"]),  # a county's short name right after its city
    ("在杭州萧山投诉克扣加班费", ["杭州市", "萧山区"]),
    ("上海浦东的医保", ["上海市", "浦东新区"]),
    ("辽宁朝阳的低保", ["辽宁省", "朝阳市"]),  # the city inside the province named comes first
    ("朝阳的低保", ["朝阳市"]),  # a short name alone is the city, never a county
    ("山东省东平湖保护条例", ["山东省", "东平县"]),  # not Zhejiang's 平湖市
])
def test_places_named_in_a_question(text, names):
    assert [p.name for p in load_gazetteer().find(text)] == names


@pytest.mark.parametrize("text, province", [
    ("重庆江北区的低保金从哪个月开始发", "500000000000"),  # not 宁波's 江北区
    ("宁波江北区的低保金从哪个月开始发", "330000000000"),
    ("上海宝山区的医保", "310000000000"),  # not 双鸭山's 宝山区
])
def test_a_shared_district_name_is_the_one_in_the_province_named(text, province):
    district = load_gazetteer().find(text)[-1]
    assert district.level == "county" and province in district.ancestors()


def test_rules_of_a_province_govern_its_cities_not_the_reverse():
    g = load_gazetteer()
    liaoning, benxi, henan = g.find("辽宁")[0], g.find("本溪")[0], g.find("河南")[0]
    assert g.governs(liaoning, benxi) and not g.governs(benxi, liaoning) and not g.governs(henan, benxi)
    assert g.governs(None, benxi)  # national rules apply everywhere
    usa = g.find("美国")[0]
    assert not g.governs(None, usa) and not g.governs(liaoning, usa)  # ... in China, not in another country


@pytest.mark.parametrize("title,issuer,number,place", [
    ("广东省失业保险条例", "", "", "广东省"),
    ("转发市劳动和社会保障局关于扩大社会保险覆盖面工作意见的通知", "天津市人民政府办公厅", "", "天津市"),
    ("关于扩面工作的通知", "", "津政办发[2005]21号", "天津市"),
    ("本溪市人民政府批转市劳动保障局关于专项行动实施方案的通知", "", "本政发[2008]6号", "本溪市"),
    ("中华人民共和国劳动合同法", "", "", None),
    ("工伤保险条例", "", "", None),
])
def test_the_place_a_document_governs(title, issuer, number, place):
    p = document_place(title, issuer, number)
    assert (p.name if p else None) == place


def test_kept_tokens_are_handed_out_as_copies():
    lex = load_lexicon()
    first = lex.tokenize("自由职业者怎么交养老保险？")
    first.append("改动")
    assert lex.tokenize("自由职业者怎么交养老保险？") == ['自由', '职业', '业者', '职业者', '自由职业者', '交', '养老', '保险',
                                                      '养老保险']
    long_text = "养老保险" * 100  # longer than CACHED_TEXT_CHARS: tokenized every time, the same way
    assert lex.tokenize(long_text) == lex._tokenize(long_text)


def test_clause_references_read_the_lexicon_they_are_given(tmp_path, fake_assistant):
    """A name that a (N) continues is the lexicon's numbered_title: with 纲要 among them, the (三) of
    '规划纲要(三)第1条' is read as the document's name; the retriever parses with its settings' lexicon."""
    from dataclasses import replace

    from assistant.lookup import clause_ref_span, clause_refs
    from assistant.retrieve import HybridRetriever

    folder = tmp_path / "lex"
    shutil.copytree(DEFAULT_LEXICON_DIR, folder)
    with open(folder / "patterns.tsv", "a", encoding="utf-8") as f:
        f.write("numbered_title\t纲要\\s*$\n")
    own = Lexicon.load(folder)
    question = "规划纲要(三)第1条讲了什么"
    assert [[n for _, n in ref] for ref in clause_refs(question)] == [[3, 1]]
    assert [[n for _, n in ref] for ref in clause_refs(question, own)] == [[1]]
    assert clause_ref_span(question) == (4, 10) and clause_ref_span(question, own) == (7, 10)

    # the retriever parses with the lexicon its settings name (assistant/retrieve.py passes it on)
    data, embedder = fake_assistant.data, fake_assistant.retriever.embedder
    ours = HybridRetriever(data, embedder, replace(fake_assistant.settings, lexicon_dir=str(folder)))
    assert ours.lexicon.pattern("numbered_title").search("规划纲要")
    assert not fake_assistant.retriever.lexicon.pattern("numbered_title").search("规划纲要")
