"""Data sandbox latency (issue 21) on the 5-million-row dataset, beside DuckDB answering the
same grouped aggregate on the same Parquet file in the same run.

The dataset is the one benchmarks/api.py harvests (CSV → Parquet by the harvester, kept in
the same work folder). The sandbox's table is built from its Parquet file once
(licenses.disclosure.build_table: the granted part copied into a DuckDB file, identifiers
found; the time is reported). Then, per query, interleaved, each timed end to end:

- DuckDB: a fresh in-process connection, the query over read_parquet() of the file;
- sandbox: check_query (sqlglot parse and allowlist) + run_query (locked connection opened,
  generated SQL with the hidden columns and every user expression under TRY, small-cell,
  dominance and contributor rules, the cell-key perturbation (a sum of hidden record keys
  per group), differencing against three earlier released queries: the same query, the same
  groups over a WHERE that selects the same records, and a different grouping (ruled out by
  counts alone)).

Both answers are compared: the sandbox's raw cells (kept for the department) equal DuckDB's
values, the groups shown are DuckDB's groups of at least k records, and every released count
is within the perturbation table's ±3 of the true one.

    python benchmarks/sandbox.py [--rows 5000000] [--repeat 30]

Results: benchmarks/results/sandbox.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.api import make_instance, percentile  # noqa: E402

# name → (sandbox SQL over `data`, an earlier query over the same records with another WHERE)
QUERIES = {
    "count by street": (
        "SELECT 所属街道, count(*) AS 记录数 FROM data GROUP BY 所属街道",
        "SELECT 所属街道, count(*) FROM data WHERE 从业人数 >= 0 GROUP BY 所属街道",
    ),
    "sum + avg by category, filtered": (
        "SELECT 业务类别, count(*), sum(营业面积), avg(从业人数) FROM data "
        "WHERE 检查日期 >= DATE '2021-01-01' AND 从业人数 > 100 GROUP BY 业务类别",
        "SELECT 业务类别, count(*) FROM data "
        "WHERE 检查日期 >= DATE '2021-01-01' AND 从业人数 > 100 AND 营业面积 >= 0 GROUP BY 业务类别",
    ),
    "count by year of the inspection date": (
        "SELECT year(检查日期) AS 年份, count(*) FROM data GROUP BY 1",
        "SELECT year(检查日期), count(*) FROM data WHERE 从业人数 >= 0 GROUP BY 1",
    ),
    "count + avg by street and result (84 groups)": (
        "SELECT 所属街道, 检查结果, count(*), avg(营业面积) FROM data GROUP BY 1, 2",
        "SELECT 所属街道, 检查结果, count(*) FROM data WHERE 营业面积 >= 0 GROUP BY 1, 2",
    ),
}
OTHER_GROUPING = "SELECT 检查结果, count(*) FROM data GROUP BY 检查结果"


def parquet_of(instance: Path) -> Path:
    from sqlalchemy import create_engine, text

    with create_engine(f"sqlite:///{instance / 'portal.db'}").connect() as conn:
        return instance / "files" / conn.execute(text("SELECT parquet_path FROM data_tables")).scalar()


def build(parquet: Path, out: Path):
    from licenses.disclosure import build_table
    from portal.catalog.rows import Scope

    out.unlink(missing_ok=True)
    started = time.perf_counter()
    info = build_table(parquet, Scope(), out)
    return info, time.perf_counter() - started


def priors_for(info, sql: str, same_records: str) -> list:
    from licenses.disclosure import Prior, check_query, run_query

    out = []
    for earlier in (sql, same_records, OTHER_GROUPING):
        plan = check_query(earlier, info)
        out.append(Prior(plan, run_query(info, plan).cells))
    return out


def same_answer(label: str, outcome, outcome_plan, expected: list[tuple]) -> None:
    """The raw cells are DuckDB's values (floats to 6 significant digits); the released ones
    are those, perturbed: keys equal, counts within ±3."""

    def norm(v):
        return round(float(v), 6 - len(str(int(abs(v))))) if isinstance(v, float) else v

    expected_rows = {tuple(norm(v) for v in row) for row in expected}
    for row in outcome.rows:
        assert tuple(norm(v) for v in row) in expected_rows, (label, row)
    assert len(outcome.rows) == len(expected) and outcome.dropped == 0, label
    kinds = [o.kind for o in outcome_plan.outputs]
    for safe, raw in zip(outcome.safe_rows, outcome.rows, strict=False):
        assert None not in safe, (label, safe)
        for kind, s, r in zip(kinds, safe, raw, strict=True):
            assert s == r if kind == "key" else abs(s - r) <= 3 if kind == "count" else True, (label, s, r)


def time_query(label: str, sql: str, same_records: str, info, parquet: Path, repeat: int) -> dict:
    import duckdb

    from licenses.disclosure import check_query, run_query

    duck_sql = sql.replace("FROM data", f"FROM read_parquet('{parquet}')")
    priors = priors_for(info, sql, same_records)

    def duck_call():
        with duckdb.connect() as con:
            return con.execute(duck_sql).fetchall()

    def sandbox_call():
        return run_query(info, check_query(sql, info), priors=priors)

    outcome = sandbox_call()
    same_answer(label, outcome, check_query(sql, info), duck_call())
    for _ in range(3):  # warm both: the page cache, DuckDB's first connection
        duck_call(), sandbox_call()
    timings: dict[str, list[float]] = {"sandbox": [], "duckdb": []}
    for i in range(repeat):  # interleaved, so both see the same machine
        for name, call in (("sandbox", sandbox_call), ("duckdb", duck_call))[:: 1 if i % 2 else -1]:
            started = time.perf_counter()
            call()
            timings[name].append((time.perf_counter() - started) * 1000)
    row: dict = {
        name: {"p50_ms": round(statistics.median(t), 2), "p95_ms": round(percentile(t, 95), 2)}
        for name, t in timings.items()
    }
    row["ratio_p95"] = round(row["sandbox"]["p95_ms"] / row["duckdb"]["p95_ms"], 2)
    row["ratio_p50"] = round(row["sandbox"]["p50_ms"] / row["duckdb"]["p50_ms"], 2)
    row["groups"] = len(outcome.rows)
    row["sql"] = sql
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "portal-bench-api")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/sandbox.json")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    parquet = parquet_of(make_instance(args.workdir, args.rows))
    info, seconds = build(parquet, args.workdir / f"sandbox-{args.rows}.duckdb")
    print(
        f"build_table: {info.rows:,} rows, {len(info.columns)} columns in {seconds:.1f} s "
        f"({info.path.stat().st_size / 2**20:.0f} MB; Parquet {parquet.stat().st_size / 2**20:.0f} MB); "
        f"identifiers: {', '.join(c.name for c in info.columns if c.identifier)}",
        flush=True,
    )
    results: dict = {
        "rows": info.rows,
        "parquet_mb": round(parquet.stat().st_size / 2**20, 1),
        "sandbox_mb": round(info.path.stat().st_size / 2**20, 1),
        "build_table_s": round(seconds, 2),
        "repeat": args.repeat,
        "queries": {},
    }
    for label, (sql, same_records) in QUERIES.items():
        row = time_query(label, sql, same_records, info, parquet, args.repeat)
        results["queries"][label] = row
        print(
            f"{label}: {row['groups']} groups · sandbox p50 {row['sandbox']['p50_ms']} ms "
            f"p95 {row['sandbox']['p95_ms']} ms · DuckDB p50 {row['duckdb']['p50_ms']} ms "
            f"p95 {row['duckdb']['p95_ms']} ms · p95 ratio {row['ratio_p95']}×",
            flush=True,
        )
    results["worst_ratio_p95"] = max(q["ratio_p95"] for q in results["queries"].values())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=2))
    print(f"worst p95 ratio {results['worst_ratio_p95']}× (target ≤ 1.5×) → {args.out}")


if __name__ == "__main__":
    main()
