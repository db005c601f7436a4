"""Classification rules (rules.md 1, design "Classification rules").

Plain functions: the catalog's words in, a class or a reason to hold out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from portal import clock
from portal.messages import Message, _
from portal.models import OpenClass

from .holds import detail, from_message, summary

_WORDS = {
    OpenClass.UNCONDITIONAL: {"无条件开放", "无条件开放类", "无条件", "unconditional", "open"},
    OpenClass.CONDITIONAL: {"有条件开放", "有条件开放类", "有条件", "conditional"},
    OpenClass.NOT_OPEN: {
        "不予开放",
        "不予开放类",
        "不开放",
        "非开放",
        "not_open",
        "not open",
        "not-open",
        "closed",
    },
}
_LOOKUP = {word: cls for cls, words in _WORDS.items() for word in words}


def parse_open_class(raw: str | None) -> OpenClass | None:
    """无条件开放 / 有条件开放 / 不予开放 or unconditional / conditional / not_open; anything
    else is unknown (None), and unknown is never opened."""
    if raw is None:
        return None
    word = re.sub(r"\s+", " ", str(raw)).strip().lower()
    return _LOOKUP.get(word)


# ----------------------------------------------------------------------------- legal basis
#
# A basis is recognised, not merely present (rules.md 1): it names a law, regulation or
# document — a title in 《》, a document number such as 东昌政办字〔2020〕12号, or the name
# of an instrument (…法, …条例, …办法, …规定 …) specific enough to be looked up. What
# departments write instead (待定, 暂无依据, 不适用, 同上, 内部规定, 相关法律法规) is refused
# with a reason they understand.

_PLACEHOLDERS = {
    "无",
    "暂无",
    "没有",
    "空",
    "否",
    "0",
    "略",
    "待定",
    "待补充",
    "待完善",
    "待确认",
    "暂无依据",
    "无依据",
    "不适用",
    "同上",
    "同前",
    "见上",
    "详见附件",
    "见附件",
    "内部规定",
    "内部要求",
    "领导要求",
    "上级要求",
    "工作需要",
    "相关规定",
    "有关规定",
    "相关法律法规",
    "有关法律法规",
    "法律法规",
    "国家规定",
    "按规定",
    "依法",
    "依规",
    "根据相关规定",
    "根据有关规定",
    "依据相关规定",
    "依据有关法律法规",
    "保密",
    "涉密",
    "敏感",
    "隐私",
    "个人隐私",
    "tbd",
    "todo",
    "n/a",
    "na",
    "none",
    "null",
    "nil",
    "no",
    "unknown",
    "-",
    "/",
    "?",
}
_TITLE = re.compile(r"《\s*([^《》]{2,})\s*》")
# 东昌政办字〔2020〕12号, 国发[2016]51号, 鲁政办发（2021）9号, 省政府令第344号
_DOC_NUMBER = re.compile(
    r"[〔［\[【（(]\s*((?:19|20)\d{2})\s*[〕］\]】）)]\s*第?\s*(\d{1,4})\s*号|令\s*第\s*(\d{1,4})\s*号"
)
_INSTRUMENT_WORDS = (
    "条例",
    "办法",
    "规定",
    "决定",
    "通知",
    "意见",
    "细则",
    "规则",
    "规范",
    "标准",
    "指引",
    "批复",
    "命令",
    "纲要",
    "公约",
    "解释",
    "方案",
    "法典",
    "法",
)
# Laws whose short names are how people cite them; any other "…法" names at least five characters
# (数据法, 隐私法, 个人信息法 are not laws of the People's Republic).
_SHORT_LAWS = {
    "宪法",
    "民法典",
    "刑法",
    "统计法",
    "保密法",
    "档案法",
    "税法",
    "会计法",
    "审计法",
    "测绘法",
    "气象法",
    "水法",
    "森林法",
    "草原法",
    "矿产资源法",
    "土地管理法",
    "城乡规划法",
    "建筑法",
    "公路法",
    "铁路法",
    "民航法",
    "邮政法",
    "电力法",
    "教育法",
    "教师法",
    "高等教育法",
    "职业教育法",
    "药品管理法",
    "执业医师法",
    "传染病防治法",
    "食品安全法",
    "产品质量法",
    "广告法",
    "商标法",
    "专利法",
    "著作权法",
    "反垄断法",
    "网络安全法",
    "数据安全法",
    "个人信息保护法",
    "密码法",
    "电子商务法",
    "电子签名法",
    "行政许可法",
    "行政处罚法",
    "行政诉讼法",
    "行政复议法",
    "国家安全法",
    "反恐怖主义法",
    "反间谍法",
    "治安管理处罚法",
    "道路交通安全法",
    "消防法",
    "安全生产法",
    "突发事件应对法",
    "环境保护法",
    "劳动法",
    "劳动合同法",
    "社会保险法",
    "就业促进法",
    "公司法",
    "合伙企业法",
    "银行业监督管理法",
    "保险法",
    "证券法",
    "预算法",
    "政府采购法",
    "招标投标法",
    "价格法",
    "计量法",
    "标准化法",
    "未成年人保护法",
    "妇女权益保障法",
    "残疾人保障法",
    "老年人权益保障法",
    "兵役法",
    "退役军人保障法",
    "人口与计划生育法",
    "母婴保健法",
    "基本医疗卫生与健康促进法",
    "医师法",
    "疫苗管理法",
    "中医药法",
    "精神卫生法",
    "慈善法",
    "红十字会法",
    "村民委员会组织法",
    "居民委员会组织法",
    "公证法",
    "律师法",
    "法官法",
    "检察官法",
    "监察法",
    "公务员法",
    "保守国家秘密法",
    "反洗钱法",
    "出境入境管理法",
    "居民身份证法",
    "户口登记条例",
}
# Not a basis, wherever it stands: 不适用《数据安全法》, tbd《…》, 同上（〔2020〕1号）, 局长办公会决定.
_DENIAL = re.compile(
    r"暂无|不适用|暂不|待定|待补|待完善|待确认|待核|待印发|待出台|同上|见附件|详见|tbd|todo|^无|^否|^空|"
    r"^n/?a|尚无|尚未|未明确|未核|核实|原《|(?<![\u4e00-\u9fff])无[（(]|征求意见|草案|送审稿|正在制定|拟|"
    r"[?？]|"
    r"办公会|会议|领导|局长|主任|书记|电话|口头|要求|工作需要|内部|本单位|本局|本委|本部门|我局|我单位|"
    r"填写|如《|例：|例:|例如|示例|样例|某某|某[市县区省单位部门局]|xx|XX|ＸＸ|测试|相关法|有关法|制度",
    re.IGNORECASE,
)
# A notice or opinion by title alone names nobody who issued it: 《关于做好数据工作的通知》.
_WEAK_INSTRUMENTS = ("通知", "意见", "决定", "方案", "批复")
_ISSUER = re.compile(r"国务院|中共|中央|全国人大|省|市|区|县|部|厅|局|委|办公室|办公厅|政府")
_INSTRUMENT = re.compile(
    r"([\u4e00-\u9fff]{1,40})(" + "|".join(_INSTRUMENT_WORDS) + r")(?=$|[^\u4e00-\u9fff]|第)"
)
# Words that make a name too vague to look up: 内部规定, 相关管理办法, 有关法律法规, 本办法, 某某法.
_VAGUE = re.compile(
    r"^(根据|依据|按照|参照|遵照|依照|按|据)?(国家|上级|本单位|本部门|单位|部门|内部|相关|有关|其他|"
    r"该|此|本|某|上述|以上|法律|法规|文件|政策|管理|实施|和|及|与|或|等|的|各项|一般|具体|现行)*$"
)
_ARTICLE = re.compile(r"第[一二三四五六七八九十百千零〇\d]+条(第[一二三四五六七八九十\d]+[款项])?")


def _doc_number_ok(m: re.Match) -> bool:

    year, number, decree = m.group(1), m.group(2), m.group(3)
    if decree is not None:
        return int(decree) > 0
    return 1949 <= int(year) <= clock.today().year and int(number) > 0


def _named_instrument(text: str) -> str | None:
    """The first instrument the text names specifically enough to be looked up."""
    for clause in re.split(r"[，,；;、。]", text.replace("《", "").replace("》", "")):
        for m in _INSTRUMENT.finditer(clause):
            name, kind = m.group(1), m.group(2)
            specific = re.sub(r"^(根据|依据|按照|参照|遵照|依照)", "", name)
            # 本办法 is 本 + 办法, not 本办 + 法
            for word in _INSTRUMENT_WORDS:
                if len(word) == 2 and kind == word[1] and specific.endswith(word[0]):
                    specific, kind = specific[:-1], word
            if _VAGUE.match(specific) or re.fullmatch(r"(法|条例|办法|规定|法规)+", specific):
                continue
            if kind in ("法", "法典"):
                full = re.sub("^中华人民共和国", "", specific + kind)
                if full not in _SHORT_LAWS and len(full) < 6:
                    continue
            elif len(re.sub("[国家省市区县]", "", specific)) < (2 if kind == "条例" else 5):
                continue
            return specific + kind
    return None


@dataclass(frozen=True)
class LegalBasis:
    recognised: bool
    reason: Message | None = None  # why it is not a basis (for the department)
    instruments: tuple[str, ...] = ()  # what it names
    article: str | None = None  # 第二十八条 …, where given


def read_legal_basis(text: str | None) -> LegalBasis:
    raw = re.sub(r"\s+", " ", str(text or "")).strip()
    if not raw:
        return LegalBasis(False, _("未填写法律依据"))
    bare = re.sub(r"[\s。．.，,；;：:、!！?？\"'“”‘’]+$", "", raw).strip()
    if bare.lower() in _PLACEHOLDERS or re.fullmatch(r"[\s\-—–_/\\.。·*＊?？0无]+", bare):
        return LegalBasis(
            False,
            _("「%(bare)s」是占位词，不是法律依据：请写明法律、法规或文件的名称（如《…》）或文号", bare=bare),
        )
    article = _ARTICLE.search(raw)
    if denial := _DENIAL.search(raw):
        return LegalBasis(
            False,
            _(
                "「%(text)s」不是有效的法律依据：含有「%(word)s」这样的占位、否定或内部用语，"
                "请写明适用的法律、法规或文件名称及文号",
                text=bare[:40],
                word=denial.group(0),
            ),
        )
    names: list[str] = []
    numbers = _document_numbers(raw)

    def acceptable(named: str, context: str) -> bool:
        # A notice or opinion by title alone must say who issued it, or carry its number.
        return not named.endswith(_WEAK_INSTRUMENTS) or bool(_ISSUER.search(context)) or bool(numbers)

    for m in _TITLE.finditer(raw):
        inner = m.group(1).strip()
        # A title names an instrument: not 《xx》, 《——》, 《000》 or 《根据工作需要》.
        if (
            len(re.findall(r"[\u4e00-\u9fff]", inner)) >= 2
            and (named := _named_instrument(inner))
            and acceptable(named, inner)
        ):
            names.append(inner)
    names += numbers
    if not names and (instrument := _named_instrument(raw)) and acceptable(instrument, raw):
        names.append(instrument)
    if not names:
        return LegalBasis(
            False,
            _(
                "「%(text)s」不是有效的法律依据：没有写明具体的法律、法规或文件（应有名称如《…》或文号如〔2020〕12号）",
                text=bare[:40],
            ),
        )
    return LegalBasis(True, None, tuple(names), article.group(0) if article else None)


def _document_numbers(raw: str) -> list[str]:
    """The document numbers in the text that follow their issuer's code."""
    numbers = []
    for m in _DOC_NUMBER.finditer(raw):
        # the issuer's code stands right before the number: 东昌政办字〔2020〕12号, 国发〔2016〕51号,
        # 山东省人民政府令第344号 — not 根据文件〔2022〕3号, 省里〔2021〕2号 or 市政府令第1号
        issuer = re.sub(r"^.*?(根据|依据|按照|参照)", "", raw[max(0, m.start() - 16) : m.start()])
        if m.group(0).startswith("令"):
            ok = len(re.findall(r"[\u4e00-\u9fff]", issuer)) >= 4
        else:
            ok = bool(re.search(r"[\u4e00-\u9fff]{1,8}(发|办|字|函|政|规)\s*$", issuer))
        if _doc_number_ok(m) and ok:
            numbers.append(m.group(0))
    return numbers


def has_legal_basis(text: str | None) -> bool:
    return read_legal_basis(text).recognised


@dataclass(frozen=True)
class Classification:
    open_class: OpenClass | None
    hold: list[dict] | None = None  # why it is held (harvest/holds.py codes); None: may go ahead

    @property
    def hold_reason(self) -> str | None:
        """The record's one line (Chinese) of why it is held."""
        return summary(self.hold) if self.hold else None


def classify(raw_open_class: str | None, legal_basis: str | None) -> Classification:
    open_class = parse_open_class(raw_open_class)
    if open_class is None:
        shown = (raw_open_class or "").strip()
        return Classification(
            None, [detail("class_unknown", word=shown) if shown else detail("class_missing")]
        )
    basis = read_legal_basis(legal_basis)
    if open_class is not OpenClass.UNCONDITIONAL and not basis.recognised:
        return Classification(
            open_class, [from_message("no_basis", basis.reason or "", open_class=open_class.value)]
        )
    return Classification(open_class, None)
