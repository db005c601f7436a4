"""Test data for the benchmarks, made with pyarrow so that making it is fast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from portal.demo import ROADS, STREETS


def big_csv(path: Path, target_bytes: int = 0, seed: int = 7, rows: int = 0) -> Path:
    """A CSV of business records like the catalog's largest (licences, inspections), about
    `target_bytes` long, or of exactly `rows` rows: integers, decimals, dates, codes and
    Chinese text. 记录编号 counts up from 0 (file order), the rest is random."""
    if path.exists() and (rows or abs(path.stat().st_size - target_bytes) < target_bytes * 0.05):
        return path
    rng = np.random.default_rng(seed)
    streets = np.array(STREETS)
    roads = np.array(ROADS)
    kinds = np.array(["餐饮服务", "食品销售", "药品零售", "医疗器械经营", "特种设备", "广告发布"])
    tmp = path.with_suffix(".part")
    with pacsv.CSVWriter(
        tmp,
        pa.schema(
            [
                ("记录编号", pa.int64()),
                ("许可证编号", pa.string()),
                ("所属街道", pa.string()),
                ("经营地址", pa.string()),
                ("业务类别", pa.string()),
                ("检查日期", pa.date32()),
                ("从业人数", pa.int64()),
                ("营业面积", pa.float64()),
                ("经度", pa.float64()),
                ("纬度", pa.float64()),
                ("检查结果", pa.string()),
            ]
        ),
    ) as writer:
        written, start = 0, 0
        while (start < rows) if rows else (written < target_bytes):
            n = min(200_000, rows - start) if rows else 200_000
            ids = np.arange(start, start + n)
            table = pa.table(
                {
                    "记录编号": ids,
                    "许可证编号": pa.array([f"JY1371502{x:07d}" for x in rng.integers(0, 9_999_999, n)]),
                    "所属街道": pa.array(streets[rng.integers(0, len(streets), n)]),
                    "经营地址": pa.array(
                        [
                            f"聊城市东昌府区{r}{k}号"
                            for r, k in zip(
                                roads[rng.integers(0, len(roads), n)], rng.integers(1, 400, n), strict=True
                            )
                        ]
                    ),
                    "业务类别": pa.array(kinds[rng.integers(0, len(kinds), n)]),
                    "检查日期": pa.array(np.datetime64("2019-01-01") + rng.integers(0, 2500, n)).cast(
                        pa.date32()
                    ),
                    "从业人数": rng.integers(1, 300, n),
                    "营业面积": np.round(rng.uniform(10, 5000, n), 2),
                    "经度": np.round(115.98 + rng.uniform(-0.18, 0.18, n), 6),
                    "纬度": np.round(36.45 + rng.uniform(-0.14, 0.14, n), 6),
                    "检查结果": pa.array(
                        np.array(["合格", "基本合格", "不合格", "责令整改"])[rng.integers(0, 4, n)]
                    ),
                }
            )
            writer.write_table(table)
            start += n
            written = tmp.stat().st_size
    tmp.replace(path)
    return path
