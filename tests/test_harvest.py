"""The harvester against a real database and real files (SQLite, or PostgreSQL in CI)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from harvest.run import Harvester
from harvest.sources import SpreadsheetSource
from portal.models import AppendOnlyError, ClassificationEvent, Dataset, Distribution, HarvestJob
from tests.catalogs import BASIS, PHARMACIES, entry, write_catalog, write_csv


def run(ctx, catalog):
    return Harvester(ctx.sessions, ctx.storage).run(SpreadsheetSource(catalog))


def actions(report):
    return {e.source_id: e.action for e in report.entries}


def dataset(ctx, name) -> Dataset:
    with ctx.sessions() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == name))
        ds.distributions, ds.classification_events, ds.department  # load before the session closes  # noqa: B018
        for d in ds.distributions:
            d.tables  # noqa: B018
        return ds


@pytest.fixture
def catalog(tmp_path):
    """A catalog with one entry of every kind the rules tell apart."""
    header, rows = PHARMACIES
    write_csv(tmp_path / "d/pharmacies.csv", header, rows, "gbk")
    write_csv(tmp_path / "d/ids.csv", ["姓名", "身份证号"], [["张三", "11010519491231002X"]])
    write_csv(tmp_path / "d/secret.csv", ["x"], [["1"]])
    entries = [
        entry("371502-SCJ-0001", "药品零售企业名录", "无条件开放", file="d/pharmacies.csv"),
        entry(
            "371502-SCJ-0002",
            "企业信用风险分类结果",
            "有条件开放",
            file="d/pharmacies.csv",
            开放条件="仅限监管用途",
        ),
        entry("371502-SCJ-0003", "执法检查底稿", "不予开放", file="d/secret.csv"),
        entry("371502-SCJ-0004", "不予开放但无依据", "不予开放", basis="无", file="d/secret.csv"),
        entry("371502-SCJ-0005", "有条件但无依据", "有条件开放", basis="", file="d/pharmacies.csv"),
        entry("371502-SCJ-0006", "未知类型", "部分开放", file="d/pharmacies.csv"),
        entry("371502-SCJ-0007", "缺少类型", None, file="d/pharmacies.csv"),
        entry("371502-SCJ-0008", "公益岗位人员", "无条件开放", file="d/ids.csv"),
        entry("371502-SCJ-0009", "文件不存在", "无条件开放", file="d/missing.csv"),
        entry("371502-SCJ-0010", "死链接", "无条件开放", file="http://127.0.0.1:9/x.csv"),
        entry("", "缺少代码的行", "无条件开放", file="d/pharmacies.csv"),
    ]
    return write_catalog(tmp_path / "catalog.csv", entries)


def test_every_entry_lands_in_exactly_one_class_or_is_held(ctx, catalog):
    report = run(ctx, catalog)
    assert actions(report) == {
        "371502-SCJ-0001": "created",
        "371502-SCJ-0002": "created",
        "371502-SCJ-0003": "created",
        "371502-SCJ-0004": "held",
        "371502-SCJ-0005": "held",
        "371502-SCJ-0006": "held",
        "371502-SCJ-0007": "held",
        "371502-SCJ-0008": "held",
        "371502-SCJ-0009": "failed",
        "371502-SCJ-0010": "failed",
        "第12行": "failed",
    }
    assert report.counts == {
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "withdrawn": 0,
        "held": 5,
        "failed": 3,
    }
    statuses = {
        n: (dataset(ctx, n).open_class, dataset(ctx, n).status)
        for n in (
            "371502-scj-0001",
            "371502-scj-0002",
            "371502-scj-0003",
            "371502-scj-0006",
            "371502-scj-0008",
        )
    }
    assert statuses == {
        "371502-scj-0001": ("unconditional", "published"),
        "371502-scj-0002": ("conditional", "published"),
        "371502-scj-0003": ("not_open", "internal"),
        "371502-scj-0006": (None, "held"),
        "371502-scj-0008": ("unconditional", "held"),
    }


def test_held_reasons_say_what_the_department_must_fix(ctx, catalog):
    reasons = {e.source_id: e.reason for e in run(ctx, catalog).entries}
    assert "法律" in reasons["371502-SCJ-0004"] and "法律" in reasons["371502-SCJ-0005"]
    assert "部分开放" in reasons["371502-SCJ-0006"]
    assert "未填写开放类型" in reasons["371502-SCJ-0007"]
    assert "身份证号" in reasons["371502-SCJ-0008"]  # the column is named
    assert "不存在" in reasons["371502-SCJ-0009"]
    assert "127.0.0.1:9" in reasons["371502-SCJ-0010"]
    assert "信息资源代码" in reasons["第12行"]


def test_a_new_entry_with_a_broken_file_is_kept_as_held_for_its_department(ctx, catalog):
    run(ctx, catalog)
    ds = dataset(ctx, "371502-scj-0009")
    assert ds.status == "held" and "不存在" in ds.hold_reason


def test_not_open_data_is_never_fetched_and_no_byte_is_stored(ctx, tmp_path):
    # its data file does not even exist: fetching it would fail the entry
    cat = write_catalog(
        tmp_path / "c.csv", [entry("371502-GAJ-0001", "监控点位", "不予开放", file="nowhere.csv")]
    )
    report = run(ctx, cat)
    assert actions(report) == {"371502-GAJ-0001": "created"}
    ds = dataset(ctx, "371502-gaj-0001")
    assert ds.status == "internal" and ds.distributions == []
    assert not any(p.name.startswith("371502-gaj-0001") for p in ctx.storage.root.iterdir())


def test_published_files_are_converted_with_schema_rows_and_sha256(ctx, catalog):
    import hashlib

    run(ctx, catalog)
    ds = dataset(ctx, "371502-scj-0001")
    [dist] = ds.distributions
    original = ctx.storage.local_path(dist.original_path).read_bytes()
    assert dist.sha256 == hashlib.sha256(original).hexdigest() and dist.size == len(original)
    assert dist.encoding == "gb18030"
    [table] = dist.tables
    assert table.row_count == 3
    assert [f["name"] for f in table.schema] == PHARMACIES[0]
    assert "聊城市鲁西大药房古楼店" in ctx.storage.local_path(table.csv_path).read_text(encoding="utf-8")
    assert ctx.storage.local_path(table.parquet_path).stat().st_size > 0


def test_a_second_run_with_no_change_creates_and_updates_nothing(ctx, catalog):
    run(ctx, catalog)
    with ctx.sessions() as s:
        before = s.execute(text("SELECT name, updated_at FROM datasets ORDER BY name")).all()
    second = run(ctx, catalog)
    assert second.counts["created"] == second.counts["updated"] == 0
    assert second.counts["unchanged"] == 3 and second.counts["held"] == 5
    with ctx.sessions() as s:
        assert s.execute(text("SELECT name, updated_at FROM datasets ORDER BY name")).all() == before
        assert s.scalar(select(Distribution.id).where(Distribution.superseded_at.is_not(None))) is None


def test_a_changed_file_is_a_new_version_and_the_earlier_one_is_kept(ctx, tmp_path):
    data = write_csv(tmp_path / "d.csv", ["站点", "泊位"], [["东昌湖停车场", "120"]])
    cat = write_catalog(tmp_path / "c.csv", [entry("371502-ZFJ-0001", "公共停车场", file="d.csv")])
    run(ctx, cat)
    write_csv(data, ["站点", "泊位"], [["东昌湖停车场", "150"], ["古城停车场", "80"]])
    report = run(ctx, cat)
    assert actions(report) == {"371502-ZFJ-0001": "updated"}
    ds = dataset(ctx, "371502-zfj-0001")
    old, new = ds.distributions
    assert old.superseded_at is not None and new.superseded_at is None
    assert (old.tables[0].row_count, new.tables[0].row_count) == (1, 2)
    assert ctx.storage.local_path(
        old.tables[0].csv_path
    ).exists()  # the earlier version stays downloadable by date


def test_changed_metadata_alone_updates_without_a_new_version(ctx, tmp_path):
    write_csv(tmp_path / "d.csv", ["a"], [["1"]])
    cat = write_catalog(tmp_path / "c.csv", [entry("371502-ZFJ-0001", "旧名称", file="d.csv")])
    run(ctx, cat)
    write_catalog(cat, [entry("371502-ZFJ-0001", "新名称", file="d.csv")])
    assert actions(run(ctx, cat)) == {"371502-ZFJ-0001": "updated"}
    ds = dataset(ctx, "371502-zfj-0001")
    assert ds.title == "新名称" and len(ds.distributions) == 1


def test_an_entry_gone_from_the_source_is_withdrawn_not_deleted_and_may_return(ctx, tmp_path):
    write_csv(tmp_path / "d.csv", ["a"], [["1"]])
    both = [entry("371502-ZFJ-0001", "甲", file="d.csv"), entry("371502-ZFJ-0002", "乙", file="d.csv")]
    cat = write_catalog(tmp_path / "c.csv", both)
    run(ctx, cat)
    write_catalog(cat, both[:1])
    report = run(ctx, cat)
    assert actions(report) == {"371502-ZFJ-0001": "unchanged", "371502-ZFJ-0002": "withdrawn"}
    ds = dataset(ctx, "371502-zfj-0002")
    assert ds.status == "withdrawn" and ds.withdrawn_at is not None and ds.distributions
    write_catalog(cat, both)
    assert actions(run(ctx, cat))["371502-ZFJ-0002"] == "updated"
    assert dataset(ctx, "371502-zfj-0002").status == "published"


def test_a_broken_update_keeps_the_published_version(ctx, tmp_path):
    data = write_csv(tmp_path / "d.csv", ["a"], [["1"]])
    cat = write_catalog(tmp_path / "c.csv", [entry("371502-ZFJ-0001", "甲", file="d.csv")])
    run(ctx, cat)
    data.write_bytes(bytes(range(128, 256)) * 4)  # unreadable encoding
    report = run(ctx, cat)
    assert actions(report) == {"371502-ZFJ-0001": "failed"}
    ds = dataset(ctx, "371502-zfj-0001")
    assert ds.status == "published" and len(ds.current_distributions) == 1
    write_csv(data, ["a"], [["2"]])
    assert actions(run(ctx, cat)) == {"371502-ZFJ-0001": "updated"}  # the next run completes it


def test_reclassified_to_not_open_removes_the_stored_files(ctx, tmp_path):
    write_csv(tmp_path / "d.csv", ["a"], [["1"]])
    cat = write_catalog(tmp_path / "c.csv", [entry("371502-ZFJ-0001", "甲", file="d.csv")])
    run(ctx, cat)
    folder = ctx.storage.local_path(dataset(ctx, "371502-zfj-0001").distributions[0].original_path).parent
    assert folder.exists()
    write_catalog(cat, [entry("371502-ZFJ-0001", "甲", "不予开放", file="d.csv")])
    run(ctx, cat)
    ds = dataset(ctx, "371502-zfj-0001")
    assert ds.status == "internal" and not folder.exists()
    assert [(e.from_class, e.to_class) for e in ds.classification_events] == [
        (None, "unconditional"),
        ("unconditional", "not_open"),
    ]


def test_classification_history_records_who_when_what_and_basis(ctx, tmp_path):
    write_csv(tmp_path / "d.csv", ["a"], [["1"]])
    cat = write_catalog(tmp_path / "c.csv", [entry("371502-ZFJ-0001", "甲", "有条件开放", file="d.csv")])
    report = run(ctx, cat)
    [event] = dataset(ctx, "371502-zfj-0001").classification_events
    assert (event.from_class, event.to_class, event.to_status) == (None, "conditional", "published")
    assert event.legal_basis == BASIS and event.actor == f"harvest job {report.job_id}" and event.at


def test_classification_history_is_append_only_in_orm_and_database(ctx, tmp_path):
    write_csv(tmp_path / "d.csv", ["a"], [["1"]])
    run(ctx, write_catalog(tmp_path / "c.csv", [entry("371502-ZFJ-0001", "甲", file="d.csv")]))
    with ctx.sessions() as s:
        event = s.scalar(select(ClassificationEvent))
        event.note = "rewritten"
        with pytest.raises(AppendOnlyError):
            s.commit()
    for statement in ("UPDATE classification_events SET note = 'x'", "DELETE FROM classification_events"):
        with ctx.engine.connect() as conn, pytest.raises(DatabaseError, match="append-only"):
            conn.execute(text(statement))
            conn.commit()


def test_one_source_per_datum_across_departments(ctx, tmp_path):
    write_csv(tmp_path / "d.csv", ["a"], [["1"]])
    run(ctx, write_catalog(tmp_path / "a.csv", [entry("371502-X-0001", "甲", file="d.csv")]))
    other = write_catalog(
        tmp_path / "b.csv",
        [entry("371502-X-0001", "甲", file="d.csv", dept="东昌府区民政局", dept_code="dcf-mzj")],
    )
    report = run(ctx, other)
    assert actions(report) == {"371502-X-0001": "failed"}
    assert "一数一源" in report.entries[0].reason
    assert dataset(ctx, "371502-x-0001").department.code == "dcf-scjgj"


def test_the_job_report_is_kept_in_the_database(ctx, catalog):
    report = run(ctx, catalog)
    with ctx.sessions() as s:
        job = s.get(HarvestJob, report.job_id)
        assert job.status == "finished" and job.finished_at and job.counts == report.counts
        assert len(job.entries) == len(report.entries)
        assert {e.action for e in job.entries} == {"created", "held", "failed"}


def test_an_unreadable_source_fails_the_job_and_withdraws_nothing(ctx, tmp_path):
    write_csv(tmp_path / "d.csv", ["a"], [["1"]])
    cat = write_catalog(tmp_path / "c.csv", [entry("371502-ZFJ-0001", "甲", file="d.csv")])
    run(ctx, cat)
    cat.write_bytes(b"\x00\x01 not a catalog")
    report = run(ctx, cat)
    assert report.error and report.entries == []
    assert dataset(ctx, "371502-zfj-0001").status == "published"
    with ctx.sessions() as s:
        assert s.get(HarvestJob, report.job_id).status == "failed"


def test_xlsx_catalog_and_workbook_data_with_two_sheets(ctx, tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.title = "学校"
    wb.active.append(["学校名称", "学生数"])
    wb.active.append(["聊城市东昌府区古楼中心小学", 1200])
    wb.create_sheet("说明").append(["字段", "说明"])
    wb["说明"].append(["学生数", "在校学生"])
    wb.save(tmp_path / "schools.xlsx")
    cat = write_catalog(tmp_path / "c.xlsx", [entry("371502-JTJ-0001", "中小学校名录", file="schools.xlsx")])
    assert actions(run(ctx, cat)) == {"371502-JTJ-0001": "created"}
    [dist] = dataset(ctx, "371502-jtj-0001").distributions
    assert dist.media_format == "xlsx" and [t.sheet for t in dist.tables] == ["学校", "说明"]


def test_a_file_with_rows_that_cannot_be_read_is_held_with_their_line_numbers(ctx, tmp_path):
    # Rows the converter cannot read are never scanned: the file is not opened as it is.
    (tmp_path / "d.csv").write_text(
        "名称,联系电话\n甲,0635-8211234\n乙\n丙,13912345678,多余\n", encoding="utf-8"
    )
    report = run(ctx, write_catalog(tmp_path / "c.csv", [entry("371502-ZFJ-0001", "甲", file="d.csv")]))
    [result] = report.entries
    assert result.action == "held"
    assert "2 行的字段数与表头（2 列）不符" in result.reason and "第 3、4 行" in result.reason
    assert result.as_dict()["details"][0]["fix"]  # and what fixes it
    ds = dataset(ctx, "371502-zfj-0001")
    assert ds.status == "held" and ds.hold_details[0]["rows"] == [3, 4]
