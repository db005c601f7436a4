"""Personal information as Chinese departments write it (Art. 27–29: 防止被采集人信息泄露;
rules.md 9). The scan runs inside the conversion, batch by batch, over exactly the rows that
become the public files, and gives a verdict per column with masked examples.

What counts, and why each rule is as strict as it is:
- resident ID numbers of 18 digits (province code, birth date, check digit) and of 15 digits
  (province code, birth date); the county part is not checked on purpose: people keep numbers
  whose county was renamed since (372501 → 371502);
- mobile numbers (with +86, spaces or dashes too); landlines only where the table names
  people (a school's switchboard is public, a person's home phone is not);
- bank card numbers (16–19 digits, Luhn) when the column says so or most candidates pass
  Luhn (a random number passes one time in ten);
- e-mail addresses, except government and university mailboxes;
- passport, 港澳通行证 and 台胞证 numbers where the column header or the words before the
  number say what it is (their shapes alone look like ordinary codes);
- vehicle plates (province character, letter, five or six characters);
- 统一社会信用代码 of 个体工商户 (92…) in a table that names people: the code identifies the
  person who runs the business;
- names with home addresses in one table;
- a column whose header says it holds such data (身份证号, 银行卡号, 护照号码 …) and whose
  values have that shape even when the check digit is wrong.

Values with * in them count as masked (脱敏) and are not personal.

Speed: one RE2 pass per string column (inside Arrow, no Python per value) finds candidates;
only candidates reach the Python checks. A column that repeats its values is scanned through
its distinct values.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from stdnum.cn import ric, uscc

from portal import clock
from portal.messages import Message, _

# ----------------------------------------------------------------------------- shapes

_D = "[0-9０-９]"
_ND = "[^0-9０-９]"
# What people put between groups of digits: spaces of every width, dashes of every length,
# dots, slashes, brackets.
_SEP_CHARS = r" \-.\/()（）—–‐－·\x{00a0}\x{3000}\x{0000}-\x{001f}"
_S = f"[{_SEP_CHARS}]"
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼使领"
# RE2 (inside Arrow) has no look-around: boundaries are "start, end or a non-digit".
_CANDIDATE = "|".join(
    [
        rf"(^|{_ND})(\+|＋)?(86|0086)?{_S}*[1１][3-9３-９]{_D}({_S}*{_D}{{4}}){{2}}($|{_ND})",  # mobile
        rf"(^|{_ND}){_D}{{6}}{_S}?{_D}{{4}}{_S}?{_D}{{4}}{_S}?{_D}{{3}}[0-9０-９XxＸｘ]($|{_ND})",  # ID 18
        rf"(^|{_ND}){_D}{{15}}($|{_ND})",  # ID 15
        rf"(^|{_ND}){_D}{{4}}({_S}?{_D}{{4}}){{3}}({_S}?{_D}{{1,3}})?($|{_ND})",  # bank card
        rf"(^|{_ND})[(（]?[0０]{_D}{{2,3}}[)）]?{_S}?{_D}{{7,8}}($|{_ND})",  # landline
        r"[A-Za-z0-9._%+\-＿][@＠][A-Za-z0-9\-]+[.．]",  # e-mail
        rf"[{_PROVINCES}] ?[A-HJ-NP-Za-hj-np-z][·•.\- ]?[A-HJ-NP-Za-hj-np-z0-9]{{4,5}}",  # plate
        r"(护照|通行证|台胞证|证件|住|地址)",  # words that name a document or a home
        r"(^|[^A-Za-z0-9])[EeGgDdSsPpCcHhMmTt][A-Za-z]?[0-9]{7,8}($|[^0-9])",  # passport / permit shape
        r"(^|[^0-9A-Z])92[0-9]{6}[0-9A-Za-z]{10}($|[^0-9A-Z])",  # individual business code
    ]
)

_SEP = r"[ \-.\/()—–‐·]"
_MOBILE = re.compile(rf"(?<!\d)(?:\+?(?:86|0086){_SEP}*)?(1[3-9]\d(?:{_SEP}*\d{{4}}){{2}})(?!\d)")
_ID18 = re.compile(rf"(?<![\dA-Za-z])(\d{{6}}{_SEP}?\d{{4}}{_SEP}?\d{{4}}{_SEP}?\d{{3}}[\dXx])(?![\dA-Za-z])")
_ID15 = re.compile(r"(?<!\d)(\d{15})(?!\d)")
_CARD = re.compile(rf"(?<!\d)(\d{{4}}(?:{_SEP}?\d{{4}}){{3}}(?:{_SEP}?\d{{1,3}})?)(?!\d)")
_LANDLINE = re.compile(rf"(?<!\d)(\(?0\d{{2,3}}\)?{_SEP}?\d{{7,8}})(?!\d)")
_LOCAL_PHONE = re.compile(r"(?<!\d)(\d{7,8})(?!\d)")
_EMAIL = re.compile(r"([A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+)")
_PLATE = re.compile(
    rf"(?<![A-Za-z0-9])([{_PROVINCES}] ?[A-HJ-NP-Z][·•.\- ]?[A-HJ-NP-Z0-9]{{4,5}}[A-HJ-NP-Z0-9挂学警港澳]?)(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_PASSPORT = re.compile(
    r"(?<![A-Za-z0-9])([EGDSP][A-Z]?\d{7,8}|[CHMW][A-Z]?\d{7,8}|[0-9]{8}(?:[0-9]{2}[A-Z]?)?)(?![A-Za-z0-9])"
)
_DOCUMENT_WORD = re.compile(r"(护照|通行证|台胞证|港澳|台湾居民|证件)")
_USCC_92 = re.compile(r"(?<![0-9A-Z])(92\d{6}[0-9A-HJ-NPQRTUWXY]{10})(?![0-9A-Z])")
# A home in free text: 住/家住/居住/住址 then a place with a house number (张伟，住柳园路128号3单元).
_HOME_IN_TEXT = re.compile(
    r"(家住|居住在?|现住|住址[:：]?|住在|住)[^，,；;。]{0,20}?(路|街|巷|村|小区|社区|大道|里|弄)"
    r"[^，,；;。]{0,12}?\d+\s*(号|单元|室|栋|楼|户)"
)
# Words that name a person in notes and text (联系人：张伟 0635-8211234).
_PERSON_WORD = re.compile(r"(联系人|填表人|负责人|经办人|审核人|制表人|申请人|姓名|户主|本人)")

# First two digits of a resident ID: the provinces, and 71/81/82/83 (Taiwan, Hong Kong, Macao).
_PROVINCE_CODES = {
    11,
    12,
    13,
    14,
    15,
    21,
    22,
    23,
    31,
    32,
    33,
    34,
    35,
    36,
    37,
    41,
    42,
    43,
    44,
    45,
    46,
    50,
    51,
    52,
    53,
    54,
    61,
    62,
    63,
    64,
    65,
    71,
    81,
    82,
    83,
    91,
}
_NOT_PERSONAL_MAIL = (".gov.cn", ".edu.cn")

SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕"
    "丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严"
    "覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚"
    "符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆"
    "农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾"
    "隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
_COMPOUND_SURNAMES = (
    "欧阳",
    "司马",
    "诸葛",
    "上官",
    "东方",
    "皇甫",
    "尉迟",
    "公孙",
    "慕容",
    "令狐",
    "司徒",
    "夏侯",
)
# Words that end names of places and organisations, never of people.
_NOT_A_NAME_END = tuple(
    "街道镇乡村路街站店局区县市省所院馆园场厂司会社部处科室校园队组站点号楼段桥河湖山寺庙中心合格"
) + ("公司", "中心", "合格", "服务", "管理", "委员会", "办公室")

# Column headers: what a column says it holds.
_HEADER_HINTS: list[tuple[str, re.Pattern]] = [
    ("id_number", re.compile(r"身份证|身份号码|公民身份|证件号|证件编号|id_?card|id_?number", re.I)),
    ("bank_card", re.compile(r"银行卡|银行账号|银行帐号|卡号|账号|帐号|账户|帐户|bank", re.I)),
    ("email", re.compile(r"邮箱|电子邮件|e-?mail|邮件地址", re.I)),
    ("passport", re.compile(r"护照|passport", re.I)),
    ("permit", re.compile(r"通行证|台胞证|往来|居民来往", re.I)),
    ("plate", re.compile(r"车牌|号牌|车辆牌照|plate", re.I)),
    ("phone", re.compile(r"电话|手机|联系方式|移动电话|座机|微信|phone|mobile|tel", re.I)),
    (
        "person",
        re.compile(
            r"姓名|名字|户主|户名|联系人|申请人|经营者|负责人|法定代表人|法人代表|当事人|患者|"
            r"学生|职工|员工|对象|低保户|困难户|业主|房主|车主|持有人|持证人|居民|村民|家长|监护人|"
            r"老人|残疾人|收款人|领取人|被.*人$|(人|者|员|户|主)$|^name$|person",
            re.I,
        ),
    ),
    ("birth", re.compile(r"出生日期|出生年月|生日|出生年份|birth", re.I)),
    (
        "home_address",
        re.compile(
            r"住址|家庭地址|居住地|户籍地|户籍所在|现住|家庭住|户口所在|房屋坐落|坐落|门牌|房号|住房", re.I
        ),
    ),
    ("address", re.compile(r"地址|住所|通讯地址|联系地址|所在地|address", re.I)),
    ("organisation", re.compile(r"名称|单位|企业|机构|公司|学校|医院|组织|商户|店名", re.I)),
]

KIND_LABELS: dict[str, Message] = {
    "id_number": _("身份证号码"),
    "id_number_15": _("15 位身份证号码"),
    "mobile": _("手机号码"),
    "landline": _("个人固定电话"),
    "bank_card": _("银行卡号"),
    "email": _("个人电子邮箱"),
    "passport": _("护照号码"),
    "permit": _("港澳台通行证件号码"),
    "plate": _("机动车号牌"),
    "individual_business": _("个体工商户统一社会信用代码（与姓名同表）"),
    "name_address": _("姓名与住址（可识别到具体个人）"),
    "birth_date": _("与姓名同表的出生日期"),
    "header": _("按表头应为个人信息的数据"),
}


# ----------------------------------------------------------------------------- checks


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _valid_date(y: int, m: int, d: int) -> bool:
    try:
        born = dt.date(y, m, d)
    except ValueError:
        return False
    return dt.date(1880, 1, 1) <= born <= clock.today()


def is_id_number(text: str) -> bool:
    """An 18-digit resident ID: province code, birth date and check digit."""
    number = text.upper()
    if len(number) != 18 or not number[:17].isdigit() or int(number[:2]) not in _PROVINCE_CODES:
        return False
    if not _valid_date(int(number[6:10]), int(number[10:12]), int(number[12:14])):
        return False
    return ric.calc_check_digit(number) == number[-1]


def is_id_number_15(text: str) -> bool:
    """A first-generation 15-digit ID: province code and a birth date in 19YYMMDD."""
    return (
        len(text) == 15
        and text.isdigit()
        and int(text[:2]) in _PROVINCE_CODES
        and _valid_date(1900 + int(text[6:8]), int(text[8:10]), int(text[10:12]))
    )


def luhn(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def is_bank_card(text: str) -> bool:
    number = _digits(text)
    return 16 <= len(number) <= 19 and number[0] in "3456" and luhn(number)


def bare_name(text: str) -> str:
    """A name as printed lists pad and annotate it: 张　伟, 张 伟, 张伟（户主）, 张伟*."""
    t = re.sub(r"[（(][^）)]{0,8}[）)]$", "", str(text).strip())
    return re.sub(r"[\s\u3000]+", "", t).rstrip("*＊")


def looks_like_name(text: str, *, strict: bool = True) -> bool:
    """2–4 Chinese characters (a few more with ·), not a place or body ('古楼街道'); strict:
    starting with a common surname too (for columns whose header does not say 姓名)."""
    t = bare_name(text)
    if not (2 <= len(t) <= 4 or ("·" in t and len(t) <= 12)) or not all(
        "\u4e00" <= c <= "\u9fff" or c == "·" for c in t
    ):
        return False
    if t.endswith(_NOT_A_NAME_END):
        return False
    return not strict or t[0] in SURNAMES or t.startswith(_COMPOUND_SURNAMES)


def _masked_name(name: str) -> bool:
    """张* or 张** (masked), not 张伟* (a footnote mark)."""
    return len(re.findall(r"[\u4e00-\u9fff]", name)) <= 1 and "*" in name


def _has_house_number(address: str) -> bool:
    """An address that still leads to a door (柳园路128号3单元), stars around it or not; a masked
    one (柳园路***) does not."""
    plain = re.sub(r"[*＊]", "", address)
    if re.search(r"\d+\s*[-#－—]\s*\d+", plain):  # 东昌花园3-2-401, 金柱绿城12#2-301
        return True
    return bool(re.search(r"\d+\s*(号|单元|室|栋|楼|户|幢|弄)", plain)) or (
        not is_masked(address) and bool(re.search(r"(路|街|巷|村|小区|社区|大道)", address))
    )


def is_masked(text: str) -> bool:
    """Masked (脱敏) the way masks are written: two or more stars in a row. A single * or ×
    in a cell (规格2×3, a footnote mark) masks nothing."""
    return "**" in text or "＊＊" in text or "××" in text


def normalise(text: str) -> str:
    """Full-width digits and letters as ASCII (NFKC), as a person reads them; odd spaces and
    dashes as plain ones."""
    return _CONTROL.sub("", unicodedata.normalize("NFKC", text).translate(_PLAIN))


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # a NUL inside a number hides nothing
_PLAIN = str.maketrans(
    {"\u3000": " ", "\u00a0": " ", "－": "-", "—": "-", "–": "-", "‐": "-", "（": "(", "）": ")"}
)


def _personal_mail(address: str) -> bool:
    domain = address.rsplit("@", 1)[-1].lower()
    return not domain.endswith(_NOT_PERSONAL_MAIL)


def value_kinds(text: str) -> list[tuple[str, str]]:
    """The personal data in one value, as (kind, the matched text); strict shapes only (the
    column rules in TableScanner add what depends on the header or on other columns)."""
    if not text:
        return []
    t = normalise(text)
    found = _identity_numbers(t)
    found += [("mobile", m.group(0)) for m in _MOBILE.finditer(t)]
    found += _card_numbers(t, id_digits={_digits(v) for k, v in found if k == "id_number"})
    found += [("email", m.group(1)) for m in _EMAIL.finditer(t) if _personal_mail(m.group(1))]
    found += [
        ("plate", m.group(1))
        for m in _PLATE.finditer(t)
        if 7 <= len(re.sub(r"[·•.\- ]", "", m.group(1))) <= 8
    ]
    found += _travel_documents(t)
    found += [
        ("individual_business_candidate", m.group(1))
        for m in _USCC_92.finditer(t)
        if uscc.is_valid(m.group(1))
    ]
    found += [("landline_candidate", m.group(1)) for m in _LANDLINE.finditer(t)]
    home = _HOME_IN_TEXT.search(t)
    if home:
        found.append(("home_in_text", home.group(0)))
    return found


def _identity_numbers(t: str) -> list[tuple[str, str]]:
    """Resident ID numbers: 18 digits with a valid check digit; 15 digits (the old numbers) by
    shape, and as an ID number where the date and region are real."""
    found = [
        ("id_number", m.group(1))
        for m in _ID18.finditer(t)
        if is_id_number(_digits(m.group(1)[:-1]) + m.group(1)[-1])
    ]
    for m in _ID15.finditer(t):
        found.append(("id15_shape", m.group(1)))
        if is_id_number_15(m.group(1)):
            found.append(("id_number_15", m.group(1)))
    return found


def _card_numbers(t: str, id_digits: set[str]) -> list[tuple[str, str]]:
    """Bank-card shapes, and candidates that pass Luhn and are not an ID number found already."""
    found = []
    for m in _CARD.finditer(t):
        if 16 <= len(_digits(m.group(1))) <= 19:
            found.append(("card_shape", m.group(1)))
        if is_bank_card(m.group(1)) and _digits(m.group(1)) not in id_digits:
            found.append(("bank_card_candidate", m.group(1)))
    return found


def _travel_documents(t: str) -> list[tuple[str, str]]:
    """Passport and permit numbers, where the words before them name the document."""
    found: list[tuple[str, str]] = []
    if not _DOCUMENT_WORD.search(t):
        return found
    for m in _PASSPORT.finditer(t):
        word = t[max(0, m.start() - 12) : m.start()]
        if "护照" in word:
            found.append(("passport", m.group(1)))
        elif re.search("通行证|台胞证|港澳|台湾居民", word):
            found.append(("permit", m.group(1)))
    return found


def mask(kind: str, text: str) -> str:
    """How a value is shown in a report, and how the 部分遮蔽 masking writes it: enough to
    recognise the record, not the person."""
    t = normalise(str(text)).strip()
    if kind in ("name", "person"):
        return t[:1] + "*" * max(len(t) - 1, 1)
    if kind in ("address", "home_address", "name_address"):
        m = re.search(r"^(.*?(?:街道|镇|乡|路|街|大道|村|社区))", t)
        return (m.group(1) if m else t[:6]) + "***"
    if kind == "email":
        user, _at, domain = t.partition("@")
        return f"{user[:1]}***@{domain}"
    keep_head = {"id_number": 6, "id_number_15": 6, "bank_card": 4, "mobile": 3, "landline": 4}.get(kind, 2)
    keep_tail = {"id_number": 4, "id_number_15": 3, "bank_card": 4, "mobile": 4, "landline": 2}.get(kind, 2)
    if len(t) <= keep_head + keep_tail:
        return t[:1] + "*" * (len(t) - 1)
    return t[:keep_head] + "*" * (len(t) - keep_head - keep_tail) + t[-keep_tail:]


# ----------------------------------------------------------------------------- verdicts


@dataclass
class Finding:
    """Personal data in one column: what, how many rows, masked examples, by which rule."""

    column: str
    kind: str
    count: int
    examples: list[str] = field(default_factory=list)
    rule: str = "value"  # value | header | pairing
    # A finding about several columns together (names with addresses): each, and its kind.
    columns: list[str] | None = None
    column_kinds: list[str] | None = None

    def as_dict(self) -> dict:
        data = {
            "column": self.column,
            "kind": self.kind,
            "count": self.count,
            "examples": self.examples,
            "rule": self.rule,
        }
        if self.columns:
            data.update(columns=self.columns, column_kinds=self.column_kinds)
        return data

    def describe(self) -> Message:
        """What was found, in the reader's language."""
        label = KIND_LABELS.get(self.kind, self.kind)
        if self.examples:
            return _(
                "列「%(column)s」有%(label)s %(count)s 行，如 %(examples)s",
                column=self.column,
                label=label,
                count=self.count,
                examples="、".join(self.examples),
            )
        return _(
            "列「%(column)s」有%(label)s %(count)s 行", column=self.column, label=label, count=self.count
        )


def header_kinds(name: str) -> set[str]:
    return {kind for kind, pattern in _HEADER_HINTS if pattern.search(name or "")}


@dataclass
class _Column:
    name: str
    hints: set[str]
    counts: dict = field(default_factory=dict)  # kind -> rows
    examples: dict = field(default_factory=dict)  # kind -> [masked]
    candidates: dict = field(default_factory=dict)  # kind -> rows with a candidate of that shape
    names_seen: int = 0  # values that look like a person's name
    nonempty: int = 0
    repeats: bool = False  # scanned through its distinct values
    # Values already found clean, for a column that repeats some of its values (addresses,
    # names of places): a later batch only scans what is new.
    known: pa.Array | None = None
    caches: bool = False


class TableScanner:
    """Feed it every batch of a table (after any masking), then ask for findings()."""

    MAX_EXAMPLES = 3

    def __init__(self, names: Iterable[str]) -> None:
        self.columns = [_Column(n, header_kinds(n)) for n in names]
        self.rows = 0
        # rows where a person-name column and an address column both hold a value
        self._name_address_rows = 0
        self._name_address_examples: list[str] = []

    # -- feeding

    def feed(self, batch: pa.RecordBatch) -> None:
        person_cols = [i for i, c in enumerate(self.columns) if "person" in c.hints]
        address_cols = [i for i, c in enumerate(self.columns) if c.hints & {"home_address", "address"}]
        if self.rows == 0:
            self._scan_names()
        for col, column in zip(self.columns, batch.columns, strict=True):
            if "birth" in col.hints:  # a birth date is personal next to a name (counted, whatever its type)
                n = len(column) - column.null_count
                if n:
                    self._count(col, "birth_candidate", str(column[0].as_py()), n)
            text = _as_text(column, every_number=bool(col.hints & {"phone", "id_number", "bank_card"}))
            if text is None:
                continue
            self._scan_column(col, text, first=self.rows == 0)
        if person_cols and address_cols:
            self._pair_names_and_addresses(batch, person_cols, address_cols)
        self.rows += batch.num_rows

    def _scan_names(self) -> None:
        """The header is published too: a column named 张伟13912345678 is personal data."""
        self.name_findings = []
        for col in self.columns:
            for finding in scan_text([col.name], col.name):
                finding.rule = "column_name"
                self.name_findings.append(finding)

    KNOWN_LIMIT = 20_000  # is_in builds its set per call: a larger one would cost more than it saves

    def _scan_column(self, col: _Column, text: pa.Array, *, first: bool) -> None:
        if first and len(text) >= 200:
            self._choose_reading(col, text)
        if col.caches and col.known is not None:
            text = pc.filter(text, pc.invert(pc.is_in(text, value_set=col.known)))  # only what is new
            if len(text) == 0:
                return
        distinct_only = col.repeats or col.caches
        values = pc.unique(text) if distinct_only else text
        hit = pc.fill_null(pc.match_substring_regex(values, _CANDIDATE), False)
        candidates = pc.filter(values, hit).to_pylist()
        if col.caches:
            self._remember_clean(col, pc.filter(values, pc.invert(hit)))
        # count rows, not distinct values
        multiplicity = _multiplicity(text, candidates) if distinct_only and candidates else {}
        for value in candidates:
            n = multiplicity.get(value, 1)
            for kind, matched in {k: v for k, v in value_kinds(value)}.items():
                self._count(col, kind, matched, n)
            if col.hints & {"passport", "permit", "id_number", "bank_card", "phone"}:
                self._header_shapes(col, normalise(value), n)
        # Header-driven columns are checked value by value (their shapes are weak without it).
        if col.hints & {"person", "passport", "permit", "id_number", "bank_card", "phone"}:
            self._scan_by_header(col, values if col.repeats else text, hit, multiplicity)

    def _choose_reading(self, col: _Column, text: pa.Array) -> None:
        """From the first batch: a column that repeats its values is scanned through its
        distinct values, and one that is not header-driven remembers the clean ones."""
        hinted = bool(col.hints & {"person", "passport", "permit", "id_number", "bank_card", "phone"})
        distinct = pc.count_distinct(text).as_py()
        col.repeats = distinct < 0.2 * len(text)
        col.caches = not hinted and distinct < 0.8 * len(text)

    def _remember_clean(self, col: _Column, clean: pa.Array) -> None:
        col.known = clean if col.known is None else pa.concat_arrays([col.known, clean.cast(col.known.type)])
        if len(col.known) > self.KNOWN_LIMIT:  # too varied to remember: scan every value from now on
            col.caches, col.known = False, None

    def _scan_by_header(self, col: _Column, sample: pa.Array, hit: pa.Array, multiplicity: dict) -> None:
        for value in pc.filter(sample, pc.invert(hit)).to_pylist() if col.hints - {"person"} else []:
            if value:
                self._header_shapes(col, normalise(value), multiplicity.get(value, 1))
        if "person" in col.hints:
            for value in sample.to_pylist():
                if value and not _masked_name(str(value)):
                    col.nonempty += 1
                    if looks_like_name(value, strict=False):
                        col.names_seen += 1

    def _header_shapes(self, col: _Column, value: str, n: int) -> None:
        """Values that have the shape the header names (a wrong check digit included). Stars
        and notes beside a number ('37150219850612123X **', '…（**已核）') hide nothing."""
        bare = re.sub(r"[*＊×]", "", value or "").strip()
        if not bare:
            return
        if "id_number" in col.hints and (
            m := re.search(r"(?<![\dA-Za-z])(\d{17}[\dXx]|\d{15})(?![\dA-Za-z])", bare)
        ):
            self._count(col, "header_id_number", m.group(1), n)
        if "bank_card" in col.hints and (m := re.search(rf"(?<!\d)(\d(?:{_SEP}?\d){{11,18}})(?!\d)", bare)):
            self._count(col, "header_bank_card", m.group(1), n)
        if col.hints & {"passport", "permit"} and _PASSPORT.fullmatch(bare.upper()):
            self._count(col, "header_passport" if "passport" in col.hints else "header_permit", bare, n)
        if "phone" in col.hints and "*" not in value and (m := _LOCAL_PHONE.search(bare)):
            self._count(col, "landline_candidate", m.group(1), n)

    def _count(self, col: _Column, kind: str, matched: str, n: int) -> None:
        col.counts[kind] = col.counts.get(kind, 0) + n
        shown = col.examples.setdefault(kind, [])
        if len(shown) < self.MAX_EXAMPLES:
            example = mask(kind.removeprefix("header_").removesuffix("_candidate"), matched)
            if example not in shown:
                shown.append(example)

    def _pair_names_and_addresses(
        self, batch: pa.RecordBatch, person_cols: list[int], address_cols: list[int]
    ) -> None:
        for p in person_cols:
            names = batch.column(p).to_pylist()
            for a in address_cols:
                for name, address in zip(names, batch.column(a).to_pylist(), strict=True):
                    if (
                        name
                        and address
                        and not _masked_name(str(name))
                        and _has_house_number(str(address))
                        and looks_like_name(str(name), strict=False)
                    ):
                        self._name_address_rows += 1
                        if len(self._name_address_examples) < self.MAX_EXAMPLES:
                            self._name_address_examples.append(
                                f"{mask('name', str(name))} · {mask('address', str(address))}"
                            )

    # -- verdict

    def person_columns(self) -> list[str]:
        return [
            c.name
            for c in self.columns
            if "person" in c.hints and c.nonempty and c.names_seen >= max(1, 0.5 * c.nonempty)
        ]

    def findings(self) -> list[Finding]:
        people = bool(self.person_columns())
        # Names of people acting for a business (法定代表人, 负责人) next to its address are the
        # business's public record; anyone else's name next to an address is a home address.
        business_roles = all(
            re.search("法定代表人|法人|负责人|经营者", c.name) for c in self.columns if "person" in c.hints
        )
        has_org = business_roles and any(
            "organisation" in c.hints and "person" not in c.hints for c in self.columns
        )
        out: list[Finding] = list(getattr(self, "name_findings", []))
        for col in self.columns:
            self._value_findings(col, out, people=people, has_org=has_org)
            self._header_findings(col, out)
        if self._name_address_rows and (not has_org or any("home_address" in c.hints for c in self.columns)):
            name = next(c.name for c in self.columns if "person" in c.hints)
            address = next(c.name for c in self.columns if c.hints & {"home_address", "address"})
            if name in self.person_columns():
                out.append(
                    Finding(
                        f"{name}、{address}",
                        "name_address",
                        self._name_address_rows,
                        self._name_address_examples,
                        "pairing",
                        [name, address],
                        ["name", "address"],
                    )
                )
        return out

    @staticmethod
    def _add(out: list[Finding], col: _Column, kind: str, source: str, rule: str = "value") -> None:
        if col.counts.get(source):
            out.append(Finding(col.name, kind, col.counts[source], col.examples.get(source, []), rule))

    def _value_findings(self, col: _Column, out: list[Finding], *, people: bool, has_org: bool) -> None:
        counts = col.counts
        for kind in ("id_number", "mobile", "email", "plate"):
            self._add(out, col, kind, kind)
        self._add(out, col, "name_address", "home_in_text")
        # Weak shapes: the header says so, or most numbers of that shape pass the check
        # (random 15-digit codes pass the date check ~3 % of the time, card numbers Luhn 10 %).
        ids15 = counts.get("id_number_15", 0)
        if ids15 and ("id_number" in col.hints or ids15 >= 0.5 * counts.get("id15_shape", ids15)):
            self._add(out, col, "id_number_15", "id_number_15")
        cards = counts.get("bank_card_candidate", 0)
        if cards and ("bank_card" in col.hints or cards >= 0.5 * counts.get("card_shape", cards)):
            self._add(out, col, "bank_card", "bank_card_candidate")
        for kind in ("passport", "permit"):
            self._add(out, col, kind, kind)
        if people:
            self._add(out, col, "individual_business", "individual_business_candidate", "pairing")
            self._add(out, col, "birth_date", "birth_candidate", "pairing")
            if not has_org:  # a business's phone next to its legal representative is public
                self._add(out, col, "landline", "landline_candidate", "pairing")

    def _header_findings(self, col: _Column, out: list[Finding]) -> None:
        """Values of the shape the header names, where no stricter finding covers the column."""
        already = {f.kind for f in out if f.column == col.name}
        for source, kind in (
            ("header_id_number", "id_number"),
            ("header_bank_card", "bank_card"),
            ("header_passport", "passport"),
            ("header_permit", "permit"),
        ):
            if (
                col.counts.get(source)
                and kind not in already
                and not (kind == "id_number" and "id_number_15" in already)
            ):
                self._add(out, col, "header", source, "header")


STRICT_KINDS = {
    "id_number",
    "id_number_15",
    "mobile",
    "email",
    "plate",
    "passport",
    "permit",
    "home_in_text",
    "bank_card_candidate",
}


def _as_text(column: pa.Array, *, every_number: bool = False) -> pa.Array | None:
    """A column as strings when it can hold personal data: text, and integers long enough to
    be a phone, ID or card number (an ID or phone column is often inferred as int64)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        # A phone number saved from Excel may arrive as 13912345678.0: long numbers are read
        # as the digits a person sees.
        bounds = pc.min_max(column).as_py()
        if bounds["max"] is None or (
            max(abs(bounds["max"]), abs(bounds["min"])) < 1_000_000 and not every_number
        ):
            return None
        if pa.types.is_floating(column.type):
            column = pc.cast(pc.floor(column), pa.int64(), safe=False)
        return pc.cast(column, pa.string())
    return None


def _multiplicity(text: pa.Array, candidates: list) -> dict:
    """How many rows hold each candidate value (candidates found among distinct values)."""
    weights = pc.value_counts(pc.filter(text, pc.is_in(text, pa.array(candidates, text.type))))
    return {d["values"]: d["counts"] for d in weights.to_pylist()}


def scan_table(table: pa.Table | pa.RecordBatch) -> list[Finding]:
    """Scan a whole in-memory table (tests, small derived tables)."""
    scanner = TableScanner(table.schema.names)
    batches = table.to_batches() if isinstance(table, pa.Table) else [table]
    for batch in batches:
        scanner.feed(batch)
    return scanner.findings()


def scan_parquet(path: str | Path) -> list[Finding]:
    """Scan a Parquet file as the harvest would have (re-scans of stored versions)."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    scanner = TableScanner(pf.schema_arrow.names)
    for batch in pf.iter_batches(batch_size=65536):
        scanner.feed(batch)
    return scanner.findings()


def scan_text(lines: Iterable[str], label: str = "表注") -> list[Finding]:
    """Lines of text that are not a table: titles and notes around a table (填表人：张伟
    13912345678), sheet names, catalog fields. A landline counts where the line names a
    person (联系人, 填表人 …) or holds a name."""
    counts: dict[str, int] = {}
    examples: dict[str, list[str]] = {}
    for line in lines:
        if not line:
            continue
        for kind, matched in _line_kinds(line).items():
            if kind in STRICT_KINDS | {"landline", "name_address", "bank_card"} and not kind.endswith(
                "_candidate"
            ):
                counts[kind] = counts.get(kind, 0) + 1
                shown = examples.setdefault(kind, [])
                if len(shown) < TableScanner.MAX_EXAMPLES:
                    shown.append(mask(kind, matched))
    return [Finding(label, kind, n, examples[kind], "value") for kind, n in counts.items()]


def _line_kinds(line: str) -> dict[str, str]:
    """The personal data in one line of text, by kind (the last match of each)."""
    kinds = dict(value_kinds(line))
    text = normalise(line)
    names_someone = bool(
        _PERSON_WORD.search(text)
        or any(looks_like_name(w) for w in re.findall(r"[\u4e00-\u9fff·]{2,4}", line))
    )
    if "landline_candidate" in kinds and names_someone:
        kinds["landline"] = kinds["landline_candidate"]
    if names_someone and "电话" in text and (m := _LOCAL_PHONE.search(text)):
        kinds.setdefault("landline", m.group(1))
    if "bank_card_candidate" in kinds:  # Luhn passed: in a line of text that is a card
        kinds["bank_card"] = kinds["bank_card_candidate"]
    # Outside a table a person's ID is personal even with a typo in its check digit.
    for m in _ID18.finditer(text):
        digits = _digits(m.group(1)[:-1])
        if (
            "id_number" not in kinds
            and len(digits) == 17
            and int(digits[:2]) in _PROVINCE_CODES
            and _valid_date(int(digits[6:10]), int(digits[10:12]), int(digits[12:14]))
        ):
            kinds["id_number"] = m.group(1)
    if "home_in_text" in kinds:
        kinds["name_address"] = kinds.pop("home_in_text")
    return kinds


# ----------------------------------------------------------------------------- masking (脱敏)

MASKING_METHODS = ("partial", "drop")


def mask_text(value: str | None, kind: str) -> str | None:
    """One value with its personal data masked: names and addresses as a whole, numbers and
    addresses found inside text each where they stand."""
    if value is None or value == "":
        return value
    if kind in ("name", "person"):
        return value if "*" in value and len(value) <= 4 else mask("name", value)
    if kind in ("address", "home_address"):
        return value if is_masked(value) and not _has_house_number(value) else mask("address", value)
    text = normalise(value)
    changed = text
    for found, matched in value_kinds(text):
        if found.endswith(("_shape",)):
            continue
        changed = changed.replace(matched, mask(found.removesuffix("_candidate"), matched))
    if changed == text:  # a shape the header names (a wrong check digit): the whole value
        return mask(kind if kind in KIND_LABELS else "header", text)
    return changed


def mask_batch(batch: pa.RecordBatch, masking: dict) -> pa.RecordBatch:
    """Apply the department's masking choices ({column: {"method": "partial"|"drop", "kind"}})."""
    arrays, names = [], []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        choice = masking.get(name) or {}
        method = choice.get("method")
        if method == "drop":
            continue
        if method == "partial":
            kind = choice.get("kind", "")
            values = (
                column.cast(pa.string()).to_pylist()
                if not pa.types.is_string(column.type)
                else column.to_pylist()
            )
            column = pa.array([mask_text(v, kind) for v in values], pa.string())
        arrays.append(column)
        names.append(name)
    return pa.RecordBatch.from_arrays(arrays, names=names)
