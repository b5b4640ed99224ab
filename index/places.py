"""Places: China's administrative divisions, which place a question names, and which place a
document governs.

The gazetteer is the `adcodes.csv` shipped in the `cpca` package (3,500 provinces, cities and
counties with their 12-digit codes), read as data; `data/lexicon/places_ignore.txt` lists names
that are ordinary words more often than places. A code's prefix gives its ancestors:
210500000000 本溪市 lies in 210000000000 辽宁省.

>>> g = load_gazetteer()
>>> [p.name for p in g.find("我在本溪工作，老家是河南的")]
['本溪市', '河南省']
>>> [p.name for p in g.find("义乌的灵活就业人员")]   # a county-level city, named without 市
['义乌市']
>>> g.governs(g.find("辽宁省")[0], g.find("本溪")[0])   # a province's rules apply in its cities
True
>>> g.governs(g.find("本溪")[0], g.find("辽宁")[0])     # a city's rules do not cover the province
False

Other countries come from `pycountry`'s ISO 3166 names in Chinese (美国, 日本, 大韩民国 and 韩国).
No document here governs them, national ones included: '美国的社会保障号怎么申请?' asks about
another country's rules. An ethnic group's name (朝鲜族) is not its namesake country.

>>> [(p.name, p.level) for p in g.find("美国的社会保障号怎么申请")]
[('美国', 'country')]
>>> g.governs(None, g.find("美国")[0])
False
>>> g.find("我是朝鲜族")
[]
>>> [p.name for p in g.find("选举全国人民代表大会和县级以上地方各级人民代表大会代表")]   # 县级, not 和县
[]
>>> [p.name for p in g.find("北京市级机关")]
['北京市']
"""
from __future__ import annotations

import csv
import importlib.util
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from index.errors import PolicyQAError
from index.lexicon import DEFAULT_LEXICON_DIR, read_lines

LEVELS = ("province", "city", "county", "country")
CHINA = ("CN", "HK", "MO", "TW")  # ISO 3166 codes of China's own regions (in cpca's divisions)


@dataclass(frozen=True)
class Place:
    """One administrative division: '210500000000', '本溪市', level 'city'."""

    code: str
    name: str
    level: str

    @property
    def short(self) -> str:
        return short_name(self.name)

    def ancestors(self) -> tuple[str, ...]:
        """Codes of the province (and city) above it: 210502 -> ('210000000000', '210500000000')."""
        out = []
        if self.level in ("city", "county"):
            out.append(self.code[:2] + "0" * 10)
        if self.level == "county":
            out.append(self.code[:4] + "0" * 8)
        return tuple(c for c in out if c != self.code)


@lru_cache(maxsize=1)
def _suffixes() -> tuple[str, ...]:
    """The endings of division names (data/lexicon/place_suffixes.txt), longest first: '内蒙古自治区' ->
    '内蒙古' before '区' is tried."""
    names = {line.strip() for line in read_lines(DEFAULT_LEXICON_DIR / "place_suffixes.txt")}
    return tuple(sorted(names, key=len, reverse=True))


def short_name(name: str) -> str:
    """'广西壮族自治区' -> '广西', '本溪市' -> '本溪', '延边朝鲜族自治州' -> '延边'; kept whole if too short."""
    for suffix in _suffixes():
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            stem = name[: -len(suffix)]
            stripped = True
            while stripped:  # '湘西土家族苗族' -> '湘西'
                stripped = False
                for nation in _nations():
                    if stem.endswith(nation) and len(stem) - len(nation) >= 2:
                        stem, stripped = stem[: -len(nation)], True
            return stem
    return name


@lru_cache(maxsize=1)
def _nations() -> tuple[str, ...]:
    """China's 56 ethnic groups (cpca's 56_nations.csv), longest first: '朝鲜族', '土家族', …"""
    path = adcodes_path().parent / "56_nations.csv"
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError:
        return ()
    return tuple(sorted(names, key=len, reverse=True))


@lru_cache(maxsize=1)
def _countries() -> tuple[Place, ...]:
    """Other countries by their Chinese ISO 3166 names from pycountry, each under its name, its
    common name and its official name ('大韩民国', '韩国'), code 'iso:KR'."""
    import gettext

    import pycountry

    try:
        zh = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["zh_CN"])
    except OSError as exc:
        raise PolicyQAError(f"cannot read pycountry's Chinese country names: {exc}") from exc
    out = []
    for c in pycountry.countries:
        if c.alpha_2 in CHINA:
            continue
        names = {zh.gettext(n) for n in (c.name, getattr(c, "common_name", ""), getattr(c, "official_name", "")) if n}
        out += [Place(f"iso:{c.alpha_2}", n, "country") for n in sorted(names) if re.fullmatch(r"[\u4e00-\u9fff·]+", n)]
    return tuple(out)


def _level(code: str) -> str:
    if code[2:] == "0" * 10:
        return "province"
    if code[4:] == "0" * 8:
        return "city"
    return "county"


def adcodes_path() -> Path:
    """cpca's resources/adcodes.csv, found without importing cpca (which loads pandas)."""
    spec = importlib.util.find_spec("cpca")
    if spec is None or not spec.submodule_search_locations:
        raise PolicyQAError("the gazetteer needs the cpca package: pip install -r requirements.txt")
    return Path(list(spec.submodule_search_locations)[0]) / "resources" / "adcodes.csv"


@lru_cache(maxsize=1)
def _level_ends() -> frozenset[str]:
    """The endings of division names that, followed by 级, say a level (data/lexicon/place_level_ends.txt)."""
    return frozenset(line.strip() for line in read_lines(DEFAULT_LEXICON_DIR / "place_level_ends.txt"))


class Gazetteer:
    """Name -> places, longest-match search in text, and which place governs which."""

    def __init__(self, places: list[Place], ignore: set[str] = frozenset()):
        self.by_code = {p.code: p for p in places}
        self.names: dict[str, list[Place]] = {}
        rank = {lvl: i for i, lvl in enumerate(LEVELS)}
        for p in sorted(places, key=lambda p: (rank[p.level], p.code)):
            # a county only by its full name, short ones are ordinary words too often ('长安', '和平');
            # but a county-level city by its short name too, as people say it ('义乌', '昆山');
            # another country by each of its names as they are (_countries)
            short = p.level in ("province", "city") or (p.level == "county" and p.name.endswith("市"))
            for name in ({p.name, p.short} if short else {p.name}):
                if len(name) >= 2 and name not in ignore:
                    self.names.setdefault(name, []).append(p)
        self.not_places = {n for n in _nations() if n not in self.names}  # 朝鲜族 is no 朝鲜
        # a county's short name right after its own province or city: '北京朝阳', '杭州萧山', '重庆渝北'
        self.county_shorts: dict[str, list[Place]] = {}
        for p in places:
            if p.level == "county" and p.short != p.name and len(p.short) >= 2 and p.short not in ignore:
                self.county_shorts.setdefault(p.short, []).append(p)
        self.max_len = max((len(n) for n in (*self.names, *self.not_places, *self.county_shorts)), default=0)
        self.level_ends = _level_ends()

    def find(self, text: str) -> list[Place]:
        """Places named in the text, in order, longest name first at each position; a name shared by
        several divisions counts as the one inside another place the text names ('重庆江北区' is
        重庆's 江北区, not 宁波's), else as the highest-level one ('朝阳区'). A county is named by its
        short name only right after its province or city ('北京朝阳' is 北京's 朝阳区, not 辽宁's 朝阳市;
        '朝阳' alone is the city)."""
        hits: list[list[Place]] = []
        i = end = 0  # end: where the last place named ends
        while i < len(text):
            for size in range(min(self.max_len, len(text) - i), 1, -1):
                word = text[i:i + size]
                if word[-1] in self.level_ends and text[i + size:i + size + 1] == "级":
                    continue  # '和县级以上' is 和 + 县级 (county level), not 安徽's 和县; '北京市级' is 北京
                hit = self.names.get(word)
                if i == end and hits and len(hits[-1]) == 1 and word in self.county_shorts:
                    around = hits[-1][0].code
                    inside = [p for p in self.county_shorts[word] if around in p.ancestors()]
                    if len(inside) == 1 and not any(around in p.ancestors() for p in hit or ()):
                        hit = inside
                if hit or word in self.not_places:
                    if hit:
                        hits.append(hit)
                        end = i + size
                    i += size
                    break
            else:
                i += 1
        named = {h[0].code for h in hits if len(h) == 1}
        out: list[Place] = []
        for hit in hits:
            place = next((p for p in hit if named & set(p.ancestors())), hit[0]) if len(hit) > 1 else hit[0]
            if place not in out:
                out.append(place)
        return out

    def governs(self, rule_place: Place | None, asked: Place) -> bool:
        """Whether rules made for `rule_place` apply in `asked`: the same place or one above it.
        National rules (None) apply everywhere in China; no document governs another country."""
        if asked.level == "country":
            return rule_place is not None and rule_place.code == asked.code
        return rule_place is None or rule_place.code == asked.code or rule_place.code in asked.ancestors()

    def get(self, code: str | None) -> Place | None:
        return self.by_code.get(code) if code else None


@lru_cache(maxsize=4)
def load_gazetteer(ignore_file: str | None = None) -> Gazetteer:
    """The gazetteer from cpca's adcodes.csv, minus data/lexicon/places_ignore.txt."""
    path = adcodes_path()
    try:
        with open(path, encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise PolicyQAError(f"cannot read the gazetteer {path}: {exc.strerror or exc}") from exc
    places = [Place(r["adcode"], r["name"], _level(r["adcode"])) for r in rows if r.get("adcode") and r.get("name")]
    places += _countries()
    ignore_path = Path(ignore_file) if ignore_file else DEFAULT_LEXICON_DIR / "places_ignore.txt"
    ignore = {line.strip() for line in ignore_path.read_text(encoding="utf-8").splitlines()
              if line.strip() and not line.startswith("#")}
    return Gazetteer(places, ignore)


NATIONAL = re.compile(r"^(?:中华人民共和国|全国|国务院|最高人民法院|最高人民检察院)")


def document_place(title: str, issuer: str = "", doc_number: str = "", gazetteer: Gazetteer | None = None) -> Place | None:
    """The place whose rules a document sets: the first place its title names, else its issuer's,
    else the province its 文号 abbreviates ('津政发' -> 天津). None for national documents.

    A place the body only mentions in passing (a news dateline) does not count.

    >>> document_place("广东省失业保险条例").name
    '广东省'
    >>> document_place("转发市劳动和社会保障局关于扩大社会保险覆盖面工作意见的通知", issuer="天津市人民政府办公厅").name
    '天津市'
    >>> document_place("中华人民共和国劳动合同法") is None
    True
    """
    g = gazetteer or load_gazetteer()
    title = title.strip()
    if NATIONAL.match(title):
        return None
    for text in (title, issuer):
        found = g.find(text)
        if found:
            return found[0]
    m = re.match(r"([\u4e00-\u9fff])[\u4e00-\u9fff]{0,3}[发函字]", doc_number.strip())
    if m:
        return _abbreviations(g).get(m.group(1))
    return None


@lru_cache(maxsize=4)
def _abbreviations(g: Gazetteer) -> dict[str, Place]:
    path = DEFAULT_LEXICON_DIR / "province_abbreviations.tsv"
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            abbr, name = line.split("\t")
            place = g.names.get(name.strip())
            if place:
                out[abbr.strip()] = place[0]
    return out

