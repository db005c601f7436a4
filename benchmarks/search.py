"""Search latency and index build time at 10,000 and 100,000 datasets; prints and saves.

Datasets are made from the demo catalog's templates (titles, summaries, fields, tags across
33 departments, 19 domains, the district's streets and years), with 社区 in about 40% of
summaries, the common-word case that made plain Whoosh slow. Every query computes all five
facets and the first page of 20, sorted by relevance; some queries add a facet filter.

    python benchmarks/search.py [--backend whoosh|postgres|both] [--sizes 10000 100000] [--rounds 5]

The postgres backend runs in the database --database-url names (default: a database
`portal_bench` on the local server, created if missing).

Reported per size: build seconds; p50/p95/p99 of all queries over all rounds after a first
"cold" round (each word's postings read from disk once per index generation), and the cold
round's own p50/p95. Targets: p95 ≤ 15 ms at 10k, ≤ 50 ms at 100k; build ≤ 60 s at 100k.
Searches read the synonym list migration 0013 seeds, and datasets carry the demo's English
titles. Everyday queries (compounds, synonyms, questions, queries that only the OR fallback
answers) are timed apart: `everyday_p50_ms`, `everyday_p95_ms`.
Results: benchmarks/results/search.json (one entry per backend).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from portal.demo import DEPARTMENTS, RESTRICTED, STREETS, TEMPLATES, TITLES_EN  # noqa: E402
from portal.search import SearchDoc, SearchQuery  # noqa: E402
from portal.search.whoosh_backend import WhooshBackend  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/portal_bench"

QUERIES = [
    "药品",
    "社区",
    "学校",
    "公交 站点",
    "医疗机构",
    "企业 许可",
    "养老",
    "东昌府区",
    "空气质量",
    "统计",
    "古楼街道",
    "371502-SCJ-0001",
    "hospital",
    "停车场",
    "招聘",
    "社区 卫生",
    "食品",
    "水位",
    "档案",
    "农业",
]
FILTERED = [
    ("社区", {"domain": ["民政服务"]}),
    ("企业", {"open_class": ["unconditional"]}),
    ("数据", {"format": ["CSV"], "update_cycle": ["每月"]}),
]
EVERYDAY = [
    "公交车",
    "养老院",
    "打疫苗",
    "哪里可以打疫苗",
    "户口本",
    "新房预售",
    "医保药店",
    "网约",
    "找厕所",
    "今天空气怎么样",
    "bus routes",
    "where are the hospitals",
    "社区 医院",
    "东昌府区 火车票",
]


def seeded_synonyms() -> dict[str, list[str]]:
    """The synonym list as migration 0013 seeds it."""
    import importlib.util

    [path] = (ROOT / "portal" / "migrations" / "versions").glob("0013_*.py")
    spec = importlib.util.spec_from_file_location("seed_0013", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.SEED


def make_docs(n: int, seed: int = 1) -> list[SearchDoc]:
    rnd = random.Random(seed)
    depts = {d[0]: d for d in DEPARTMENTS}
    templates = [(d, dom, t, cols, tags) for d, dom, t, cols, tags in TEMPLATES] + [
        (d, dom, t, cols, "") for d, dom, t, cols, _ in RESTRICTED
    ]
    docs = []
    for i in range(n):
        dept_code, domain, title, columns, tags = templates[i % len(templates)]
        dept = depts[dept_code]
        street = rnd.choice(STREETS)
        year = rnd.randint(2012, 2026)
        fields = [c.split(":", 1)[0] for c in columns]
        community = "，覆盖各社区" if rnd.random() < 0.4 else ""
        docs.append(
            SearchDoc(
                name=f"bench-{i:06d}",
                title=f"{year}年{street}{title}",
                summary=f"{street}{title}，由{dept[1]}提供，包括{'、'.join(fields[:4])}等字段{community}。",
                tags=tags.split(),
                department=dept_code,
                department_name=dept[1],
                domain=domain,
                open_class="conditional" if rnd.random() < 0.25 else "unconditional",
                format=rnd.choice(["CSV", "CSV", "XLSX"]),
                update_cycle=rnd.choice(["每日", "每月", "每季度", "每年"]),
                fields=fields,
                resource_code=f"371502-{dept[2]}-{i:04d}",
                title_en=f"{TITLES_EN[title]} ({year})" if title in TITLES_EN else "",
                published=dt.date(year, 1, 1) + dt.timedelta(days=rnd.randint(0, 300)),
            )
        )
    return docs


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def open_backends(kind: str, size: int, workdir: Path, database_url: str):
    """A writer, and a reader as a web worker would have it (a separate view of the index)."""
    synonyms = seeded_synonyms()
    if kind == "whoosh":
        path = workdir / f"index-{size}"
        shutil.rmtree(path, ignore_errors=True)
        return WhooshBackend(path), lambda: WhooshBackend(path, synonyms=lambda: synonyms)
    from sqlalchemy import create_engine, text

    from portal.db import make_engine
    from portal.search.postgres_backend import PostgresBackend

    server, name = database_url.rsplit("/", 1)
    with create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT").connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    return PostgresBackend(make_engine(database_url)), lambda: PostgresBackend(
        make_engine(database_url), synonyms=lambda: synonyms
    )


def measure(kind: str, size: int, rounds: int, workdir: Path, database_url: str) -> dict:
    docs = make_docs(size)
    backend, open_reader = open_backends(kind, size, workdir, database_url)
    from tqdm import tqdm

    bar = tqdm(total=size, desc=f"{kind} build {size}", unit="doc", file=sys.stderr)
    started = time.perf_counter()
    backend.rebuild(docs, progress=lambda n: bar.update(1))
    build = time.perf_counter() - started
    bar.close()
    reader = open_reader()
    started = time.perf_counter()
    reader.search(SearchQuery())
    open_seconds = time.perf_counter() - started
    queries = [SearchQuery(q=q) for q in QUERIES] + [SearchQuery(q=q, filters=f) for q, f in FILTERED]
    cold, warm, totals = [], [], {}
    for r in range(rounds + 1):
        for query in queries:
            t = time.perf_counter()
            result = reader.search(query)
            (cold if r == 0 else warm).append((time.perf_counter() - t) * 1000)
            totals[query.q + json.dumps(query.filters, ensure_ascii=False)] = result.total
    everyday = []
    for r in range(rounds + 1):
        for q in EVERYDAY:
            t = time.perf_counter()
            result = reader.search(SearchQuery(q=q))
            if r:
                everyday.append((time.perf_counter() - t) * 1000)
            totals[q + "{}"] = result.total
    common = totals["社区{}"] / size
    out = {
        "backend": kind,
        "datasets": size,
        "build_seconds": build,
        "first_search_seconds": open_seconds,
        "queries": len(queries),
        "rounds": rounds,
        "p50_ms": statistics.median(warm),
        "p95_ms": percentile(warm, 95),
        "p99_ms": percentile(warm, 99),
        "cold_p50_ms": statistics.median(cold),
        "cold_p95_ms": percentile(cold, 95),
        "everyday_queries": len(EVERYDAY),
        "everyday_p50_ms": statistics.median(everyday),
        "everyday_p95_ms": percentile(everyday, 95),
        "share_matching_社区": common,
        "totals": totals,
    }
    print(
        f"{kind:>8} {size:>7} datasets: build {build:.1f} s, first search (snapshot) {open_seconds * 1000:.0f} ms; "
        f"p50 {out['p50_ms']:.1f} ms, p95 {out['p95_ms']:.1f} ms, p99 {out['p99_ms']:.1f} ms "
        f"(cold round p50 {out['cold_p50_ms']:.1f}, p95 {out['cold_p95_ms']:.1f}); everyday queries p50 "
        f"{out['everyday_p50_ms']:.1f} ms, p95 {out['everyday_p95_ms']:.1f} ms; 社区 matches {common:.0%}",
        flush=True,
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["whoosh", "postgres", "both"], default="both")
    parser.add_argument("--database-url", default=DEFAULT_PG)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "portal-bench-search")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    kinds = ["whoosh", "postgres"] if args.backend == "both" else [args.backend]
    results = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "sizes": [
            measure(kind, n, args.rounds, args.workdir, args.database_url)
            for kind in kinds
            for n in args.sizes
        ],
    }
    out = ROOT / "benchmarks" / "results" / "search.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, ensure_ascii=False, indent=2))
    print(f"saved {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
