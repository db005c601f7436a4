import pytest

from harvest.classify import classify, has_legal_basis, parse_open_class
from portal.models import OpenClass


@pytest.mark.parametrize("word,expected", [
    ("无条件开放", OpenClass.UNCONDITIONAL), (" 有条件开放 ", OpenClass.CONDITIONAL),
    ("不予开放", OpenClass.NOT_OPEN), ("unconditional", OpenClass.UNCONDITIONAL),
    ("Conditional", OpenClass.CONDITIONAL), ("not_open", OpenClass.NOT_OPEN),
    ("部分开放", None), ("", None), (None, None), ("待定", None),
])
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
    assert classify("有条件开放", "《数据安全法》第三十八条") == classify("conditional", "《数据安全法》第三十八条")
