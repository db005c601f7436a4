import pytest

from harvest.classify import classify, has_legal_basis, parse_open_class
from portal.models import OpenClass


@pytest.mark.parametrize(
    "word,expected",
    [
        ("无条件开放", OpenClass.UNCONDITIONAL),
        (" 有条件开放 ", OpenClass.CONDITIONAL),
        ("不予开放", OpenClass.NOT_OPEN),
        ("unconditional", OpenClass.UNCONDITIONAL),
        ("Conditional", OpenClass.CONDITIONAL),
        ("not_open", OpenClass.NOT_OPEN),
        ("部分开放", None),
        ("", None),
        (None, None),
        ("待定", None),
    ],
)
def test_open_class_words(word, expected):
    assert parse_open_class(word) is expected


@pytest.mark.parametrize("text", [None, "", "  ", "无", "暂无", "—", "-", "N/A", "none"])
def test_placeholders_are_not_a_legal_basis(text):
    assert not has_legal_basis(text)


def test_a_real_basis_counts():
    assert has_legal_basis("《中华人民共和国数据安全法》第三十八条")


def test_unknown_or_missing_class_is_held_never_opened():
    unknown = classify("部分开放", "《某法》")
    assert unknown.open_class is None and "部分开放" in unknown.hold_reason
    missing = classify(None, None)
    assert missing.open_class is None and "未填写开放类型" in missing.hold_reason


@pytest.mark.parametrize("word", ["有条件开放", "不予开放"])
def test_restriction_without_basis_is_held(word):
    result = classify(word, "无")
    assert result.hold_reason and "法律" in result.hold_reason
    assert result.open_class is not OpenClass.UNCONDITIONAL  # never silently published as open


def test_unconditional_needs_no_basis_and_restrictions_with_basis_pass():
    assert classify("无条件开放", None).hold_reason is None
    assert classify("有条件开放", "《数据安全法》第三十八条") == classify(
        "conditional", "《数据安全法》第三十八条"
    )


REAL_BASES = [
    ("《中华人民共和国个人信息保护法》第二十八条", "第二十八条"),
    ("《中华人民共和国保守国家秘密法》", None),
    ("东昌政办字〔2020〕12号", None),
    ("《山东省公共数据开放办法》（省政府令第344号）", None),
    ("《政府信息公开条例》第十五条", "第十五条"),
    ("中华人民共和国统计法第二十五条", "第二十五条"),
    ("国务院关于印发政务信息资源共享管理暂行办法的通知（国发〔2016〕51号）", None),
    ("鲁政办字[2021]9号", None),
    ("根据《中华人民共和国档案法》第十九条", "第十九条"),
    ("个人信息保护法第十三条", "第十三条"),
    ("保密法", None),
    ("医疗机构病历管理规定", None),
    ("聊城市政务数据资源管理办法", None),
    ("《东昌府区政务数据资源管理暂行办法》第二十二条第二项", "第二十二条第二项"),
    ("《无线电管理条例》", None),
    ("中华人民共和国民法典第一千零三十四条", "第一千零三十四条"),
    ("山东省人民政府令第344号", None),
    ("《信息安全技术 个人信息安全规范》", None),
    ("《中华人民共和国统计法》第三十九条", "第三十九条"),
]
PLACEHOLDERS = [
    "待定",
    "暂无依据",
    "不适用",
    "同上",
    "没有",
    "否",
    "0",
    "TBD",
    "内部规定",
    "无",
    "—",
    "N/A",
    "相关法律法规",
    "根据相关规定",
    "有关规定",
    "领导要求",
    "按上级文件执行",
    "涉及个人隐私",
    "《》",
    "《待定》",
    "法律法规",
    "依据国家有关规定",
    "保密规定",
    "见附件",
    "  ",
    "？",
    # found by the attack reviews
    "《xx》",
    "《——》",
    "《000》",
    "某某法",
    "本办法",
    "相关管理办法",
    "依据相关法律法规办法",
    "〔2020〕0号",
    "〔2099〕1号",
    "《中华人民共和国某某法》",
    "《中华人民共和国XXX法》",
    "法法法",
    "条例条例",
    "测试条例",
    "个人信息法",
    "隐私法",
    "数据法",
    "暂无相关办法",
    "《根据工作需要》",
    "《内部管理制度》",
    "本局管理办法",
    "局长办公会决定",
    "上级电话通知",
    "不适用《数据安全法》",
    "《数据安全法》暂不适用",
    "无（原《数据安全法》）",
    "tbd《数据安全法》",
    "〔2020〕1号",
    "令第1号",
    "待补充〔2024〕1号",
    "同上（〔2020〕1号）",
    "《依据相关规定》",
    "数据管理办法",
    "根据〔2020〕1号文件",
    "根据文件〔2022〕3号",
    "省里〔2021〕2号",
    "政府令第1号",
    "市政府令第1号",
    "《关于做好数据工作的通知》",
    "《关于开展相关工作的通知》",
    "《关于做好2025年数据开放工作的通知》",
    "填写法律法规名称，如《数据安全法》",
    "例：《数据安全法》",
    "N/A《数据安全法》",
    "尚无《数据安全法》",
    "《数据安全法》待核实",
    "《数据安全法》（征求意见稿）",
    "正在制定《数据开放管理办法》",
    "拟出台《管理办法》",
    "《某市数据管理办法》",
    "《数据安全法》？",
    "未明确（拟参照《数据安全法》）",
    "《公共数据开放目录》",
]


@pytest.mark.parametrize("text,article", REAL_BASES)
def test_a_basis_that_names_a_law_regulation_or_document_is_recognised(text, article):
    from harvest.classify import read_legal_basis

    basis = read_legal_basis(text)
    assert basis.recognised and basis.instruments and basis.article == article


@pytest.mark.parametrize("text", PLACEHOLDERS)
def test_placeholders_and_vague_words_are_refused_with_a_reason(text):
    from harvest.classify import read_legal_basis

    basis = read_legal_basis(text)
    assert not basis.recognised and basis.reason
    result = classify("有条件开放", text)
    assert result.hold_reason and "法律依据" in result.hold_reason
