"""Search quality: does what people type find the dataset they want, in the first five?

The query set (benchmarks/search_queries.csv, kept with the project) holds queries written the
way residents and companies ask — everyday words for official ones, compounds, colloquial
questions, parts of names, two needs at once, English — each with the dataset it should find
in the demo catalog (`portal demo`: 530 entries of 33 departments). A dataset is named by its
catalog title without year and district (公交线路信息 is any year's 东昌府区公交线路信息);
`a|b` accepts either. A query counts as found when one of its datasets is among the first 5
results (relevance order, no filters).

Each engine gets its own demo instance, made the way `portal demo` makes it (generate the
catalog, harvest every department's spreadsheet, the departments' English titles, the search
index), so the synonym list is the one migration 0013 seeds:

    python benchmarks/search_quality.py [--backend whoosh|postgres|both] [--queries FILE] [--misses]

PostgreSQL: the database --database-url names (default `portal_quality` on the local server),
emptied first. Results: benchmarks/results/search_quality.json (not written for --queries
other than the kept set, unless --save). Target: ≥ 95 % found in the top 5 on both engines.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from portal.search import SearchQuery  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/portal_quality"
QUERIES = ROOT / "benchmarks" / "search_queries.csv"
TOP = 5


def read_queries(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r.get("query", "").strip() and not r["query"].startswith("#")]
    for r in rows:
        r["expected"] = [e.strip() for e in r["expected"].split("|") if e.strip()]
    return rows


def dataset_of(title: str) -> str:
    """The template a demo title was made from: 2025年东昌府区公交线路信息 → 公交线路信息."""
    return re.sub(r"^(\d{4}年)?东昌府区", "", title)


def _empty_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    server, name = url.rsplit("/", 1)
    with create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT").connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("DROP SCHEMA IF EXISTS portal_search CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def demo_instance(kind: str, workdir: Path, database_url: str, reuse: bool):
    """A PortalContext over the demo catalog, harvested and indexed (or the one made before)."""
    from portal.config import Settings
    from portal.context import PortalContext

    instance = workdir / f"demo-{kind}"
    ready = instance / "ready"
    url = database_url if kind == "postgres" else f"sqlite:///{instance / 'portal.db'}"
    if reuse and ready.exists():
        return PortalContext(Settings(instance_path=instance, database_url=url, search_backend=kind))
    import shutil

    shutil.rmtree(instance, ignore_errors=True)
    if kind == "postgres":
        _empty_postgres(url)
    ctx = PortalContext(Settings(instance_path=instance, database_url=url, search_backend=kind))
    from harvest.sources import SpreadsheetSource
    from portal.demo import add_english_titles, generate_catalog
    from portal.search.sync import sync

    started = time.perf_counter()
    catalogs = generate_catalog(instance / "demo-catalog")
    harvester = ctx.harvester()
    for path in catalogs:
        harvester.run(SpreadsheetSource(path))
    add_english_titles(ctx.sessions)
    sync(ctx.sessions, ctx.search)
    ready.write_text("1")
    print(
        f"{kind}: demo catalog harvested and indexed in {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )
    return ctx


def evaluate(ctx, queries: list[dict], show_misses: bool) -> dict:
    backend = ctx.search
    found, misses, took, by_kind = 0, [], [], {}
    for row in queries:
        result = backend.search(SearchQuery(q=row["query"], rows=TOP))
        took.append(result.took_ms)
        titles = [dataset_of(h.title) for h in result.hits]
        ok = any(t in row["expected"] for t in titles)
        found += ok
        kind = by_kind.setdefault(row.get("kind") or "", [0, 0])
        kind[0] += ok
        kind[1] += 1
        if not ok:
            misses.append(
                {
                    "query": row["query"],
                    "expected": row["expected"],
                    "top": titles,
                    "total": result.total,
                    "relaxed": result.relaxed,
                }
            )
    if show_misses:
        for m in misses:
            print(
                f"  miss: {m['query']!r} wants {'|'.join(m['expected'])}; got {m['top']} "
                f"(total {m['total']}{', relaxed' if m['relaxed'] else ''})"
            )
    return {
        "queries": len(queries),
        "found_top5": found,
        "share_top5": found / len(queries),
        "by_kind": {k: {"found": v[0], "queries": v[1]} for k, v in sorted(by_kind.items())},
        "median_ms": statistics.median(took),
        "misses": misses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["whoosh", "postgres", "both"], default="both")
    parser.add_argument("--database-url", default=DEFAULT_PG)
    parser.add_argument("--queries", type=Path, default=QUERIES)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "portal-search-quality")
    parser.add_argument(
        "--reuse", action="store_true", help="search the demo instances made by an earlier run"
    )
    parser.add_argument("--misses", action="store_true", help="print every query not found in the top 5")
    parser.add_argument("--save", action="store_true", help="save the results even for another query set")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    queries = read_queries(args.queries)
    kinds = ["whoosh", "postgres"] if args.backend == "both" else [args.backend]
    results = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "queries_file": str(args.queries.name),
        "top": TOP,
        "engines": {},
    }
    for kind in kinds:
        ctx = demo_instance(kind, args.workdir, args.database_url, args.reuse)
        out = evaluate(ctx, queries, args.misses)
        ctx.engine.dispose()
        results["engines"][kind] = out
        kinds_line = ", ".join(f"{k} {v['found']}/{v['queries']}" for k, v in out["by_kind"].items())
        print(
            f"{kind:>8}: {out['found_top5']}/{out['queries']} found in the top {TOP} "
            f"({out['share_top5']:.1%}); {kinds_line}; median {out['median_ms']:.1f} ms",
            flush=True,
        )
    if args.queries.resolve() == QUERIES.resolve() or args.save:
        path = ROOT / "benchmarks" / "results" / "search_quality.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(results, ensure_ascii=False, indent=2))
        print(f"saved {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
