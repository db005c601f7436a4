"""Small catalog spreadsheets and data files written for one test."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from portal.demo import CATALOG_HEADER

BASIS = "《中华人民共和国数据安全法》第三十八条"


def entry(
    code: str,
    title: str,
    open_class: str | None = "无条件开放",
    *,
    basis: str | None = BASIS,
    file: str | None = None,
    dept: str = "东昌府区市场监督管理局",
    dept_code: str = "dcf-scjgj",
    **fields: str,
) -> dict:
    row = {
        "信息资源代码": code,
        "信息资源名称": title,
        "信息资源提供方": dept,
        "信息资源提供方代码": dept_code,
        "信息资源摘要": f"{title}的摘要",
        "数据领域": "市场监管",
        "开放类型": open_class or "",
        "法律依据": basis or "",
        "更新周期": "每月",
        "发布日期": "2024-03-01",
        "数据文件": file or "",
    }
    row.update(fields)
    return row


def write_csv(path: Path, header: list[str], rows: list[list], encoding: str = "utf-8") -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *rows])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def write_catalog(path: Path, entries: list[dict], encoding: str = "utf-8") -> Path:
    header = CATALOG_HEADER
    rows = [[e.get(h, "") for h in header] for e in entries]
    if path.suffix == ".xlsx":
        from openpyxl import Workbook

        wb = Workbook()
        ws = wb.active
        ws.append(["东昌府区政务信息资源目录（导出）"])
        ws.append(header)
        for r in rows:
            ws.append(r)
        path.parent.mkdir(parents=True, exist_ok=True)
        wb.save(path)
        return path
    return write_csv(path, header, rows, encoding)


PHARMACIES = (
    ["企业名称", "所属街道", "许可证编号", "经营面积"],
    [
        ["聊城市鲁西大药房古楼店", "古楼街道", "鲁DA6350001", "120.5"],
        ["聊城市水城医药柳园店", "柳园街道", "鲁DA6350002", "88"],
        ["聊城市凤凰药店新区店", "新区街道", "鲁DA6350003", "64.2"],
    ],
)
