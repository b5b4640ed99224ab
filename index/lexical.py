"""Jieba tokens of normalised (simplified) text, for BM25 and lexical coverage.

>>> tokenize("自由职业者怎么交养老保险？")
['自由', '职业', '业者', '职业者', '自由职业者', '交', '养老', '保险', '养老保险']
"""
from __future__ import annotations

import logging
import re

import jieba

jieba.setLogLevel(logging.WARNING)
# question phrasing jieba's dictionary splits wrongly: '要报给谁' is 要 + 报给 + 谁, not
# 要报 ('important report') + 给; changing these changes index tokens (PARSER_VERSION)
for _w in ("报给", "报送给"):
    jieba.add_word(_w, tag="v")
jieba.del_word("要报")

STOPWORDS = frozenset(
    "的 了 是 在 和 与 及 或 等 要 对 为 把 被 将 由 从 以 于 之 其 这 那 该 此 个 也 都 就 还 并 而 且 但 "
    "吗 呢 吧 啊 么 什么 怎么 怎样 如何 哪些 哪个 多少 是否 有没有 可以 能 会 有 没有 一下 请问 请 我 我们 你 "
    "他 她 它 们 上 下 中 里 内 后 前 时 说 讲 规定 怎么办 应该 需要 关于 按照 根据 进行 一个 哪 谁 几".split()
)
_WORD = re.compile(r"[\u4e00-\u9fff]|[A-Za-z0-9]")


def tokenize(norm_text: str) -> list[str]:
    """Search-mode jieba tokens minus punctuation and stopwords (input already simplified)."""
    return [t for t in jieba.lcut_for_search(norm_text.lower())
            if _WORD.search(t) and t not in STOPWORDS]


def content_terms(norm_text: str) -> list[str]:
    """Distinct precise-mode content words of a question, longest first, for coverage checks."""
    seen = []
    for t in jieba.lcut(norm_text.lower()):
        if _WORD.search(t) and t not in STOPWORDS and t not in seen:
            seen.append(t)
    return seen


# everyday words -> the words policy documents use for the same thing
SYNONYMS: dict[str, tuple[str, ...]] = {
    "交": ("缴", "缴纳", "缴费"), "交钱": ("缴费",), "交费": ("缴费",), "补交": ("补缴",), "断缴": ("中断缴费",),
    "社保": ("社会保险",), "医保": ("医疗保险",), "失业金": ("失业保险金",), "退休金": ("养老金",),
    "个体户": ("个体工商户",), "打工": ("务工", "就业"), "农民工": ("进城务工人员", "农民合同工"),
    "工伤": ("工伤保险",), "低保": ("最低生活保障",), "罚款": ("处罚",), "生孩子": ("生育",),
    "老板": ("用人单位", "企业"), "公司": ("企业", "用人单位"), "看病": ("医疗",), "没工作": ("失业",),
    "下岗": ("下岗职工",), "自由职业": ("自由职业者",), "灵活就业": ("灵活就业人员",), "管": ("负责",),
    "拖欠": ("欠缴",), "欠费": ("欠缴",), "社保费": ("社会保险费",), "接着交": ("接续",), "续交": ("接续",),
    "四五十岁": ("4050",), "每个月": ("每月",), "药品目录": ("用药目录",), "报销": ("支付", "报销"),
    "发营业执照": ("核发营业执照",), "工商局": ("工商行政管理部门", "工商部门"), "办执照": ("营业执照",),
    "报给": ("报告", "上报", "报送"), "交给": ("报送", "上报"), "扩面": ("覆盖面",), "户口": ("户籍",), "户籍": ("户籍",), "当兵": ("义务兵", "军人"), "看门诊": ("门诊",), "失业金": ("失业保险金",),
    "税务局": ("地税部门", "税务部门"), "地税局": ("地税部门",), "劳动局": ("劳动保障部门",), "社保局": ("社会保险经办机构",),
}


def expand_query(norm_text: str) -> str:
    """Append document-vocabulary equivalents of everyday words: '怎么交社保' -> '怎么交社保 缴 缴纳 缴费 社会保险'."""
    extra = [alt for word, alts in SYNONYMS.items() if word in norm_text for alt in alts if alt not in norm_text]
    return norm_text + (" " + " ".join(dict.fromkeys(extra)) if extra else "")
