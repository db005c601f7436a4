"""Rendering without the page cache (issue 22, item 1): in process, Flask's test client, demo catalog.

    python benchmarks/render.py [--entries 200] [--runs 30] [--rounds 3] [--keep DIR] [--profile URL]

The demo catalog is generated and harvested into a temporary instance (or into --keep DIR, reused
when it is already there). Every page is rendered anonymously, signed in (a citizen's session:
the page cache never serves it) asking again, signed in with nothing of the reader's own kept
(the first page of a session), and anonymously with nothing kept for every reader (the page's
first render), interleaved page by page and round by round after a warm-up, so every page sees
the same machine. Reported per page: p50 and its ratio to the p50 of the JSON
route /api/3/action/status_show in the same round, the median over --rounds rounds (each
round's ratios kept beside it), and the SQL statements one render runs.
Pages: 3 unconditional and 2 conditional dataset pages (previews on), the search page for a
common word, that word with a facet filter, no query and page 2, home, a department page and
package_show. --profile URL prints cProfile's top functions for that page instead.
Results: benchmarks/results/render.json.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STATUS = "/api/3/action/status_show"
WORD = "统计"  # in about half the demo catalog's titles and descriptions
EMAIL, PASSWORD = "render-bench@example.cn", "Qz7!mLp4-Wd9xK"
TARGETS = {"dataset": 5.0, "search": 6.0, "package_show": 3.0}
FIRST = "first_render"  # anonymous, with the parts kept for every reader cleared before each render
# signed in, with nothing of this reader's own kept (menu, follow marks and buttons, forms): the
# first page of a session; "signed_in" is the same reader asking again, as a reader browsing does
NEW_READER = "signed_in_new"
READERS_OWN = (
    "mine",
    "reader marks",
    "reader grants",
)  # the keys of a reader's own parts (portal/web.py, follows)


def readers_own(key: Any) -> bool:
    return key[0][0] in READERS_OWN


def build(workdir: Path, entries: int) -> Any:
    from harvest.sources import SpreadsheetSource
    from portal.app import create_app
    from portal.demo import generate_catalog

    ready = (workdir / "instance" / "harvested").exists()
    app = create_app({"INSTANCE": str(workdir / "instance"), "TESTING": True})
    if not ready:
        harvester = app.extensions["portal"].harvester()
        for path in generate_catalog(workdir / "demo-catalog", entries=entries):
            harvester.run(SpreadsheetSource(path))
        (workdir / "instance" / "harvested").write_text(str(entries))
    return app


def pages(app: Any) -> dict[str, str]:
    """The pages timed, by label: kind/what."""
    from sqlalchemy import select

    from portal.models import Dataset, Department

    with app.extensions["portal"].sessions() as s:
        published = select(Dataset).where(Dataset.status == "published").order_by(Dataset.id)
        found = s.scalars(published).all()
        open_ = [d.name for d in found if d.open_class == "unconditional" and d.served_tables][:3]
        cond = [d.name for d in found if d.open_class == "conditional" and d.served_tables][:2]
        dept = s.scalars(select(Department.code).order_by(Department.id)).first()
    out = {"status_show": STATUS}
    out |= {f"dataset/open-{i + 1}": f"/dataset/{n}" for i, n in enumerate(open_)}
    out |= {f"dataset/conditional-{i + 1}": f"/dataset/{n}" for i, n in enumerate(cond)}
    out |= {
        "search/word": f"/search?q={WORD}",
        "search/word+facet": f"/search?q={WORD}&open_class=unconditional",
        "search/no-query": "/search",
        "search/page-2": "/search?page=2",
        "home": "/",
        "department": f"/department/{dept}",
        "package_show": f"/api/3/action/package_show?id={open_[0]}",
    }
    return out


def signed_in_client(app: Any) -> Any:
    """A test client with a citizen's session (made once, kept in the instance)."""
    from sqlalchemy import select

    from portal import accounts
    from portal.models import User, utcnow
    from tests.helpers import post_form

    with app.extensions["portal"].sessions() as s:
        user = s.scalar(select(User).where(User.email == EMAIL))
        if user is None:
            reg = accounts.Registration(email=EMAIL, password=PASSWORD, name="读者", kind="citizen")
            user = accounts.register(s, reg)
            user.email_verified_at = utcnow()
            s.commit()
        client = app.test_client()
    post_form(client, "/login", {"email": EMAIL, "password": PASSWORD})
    return client


def timed(client: Any, url: str) -> float:
    started = time.perf_counter()
    response = client.get(url)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, (url, response.status_code)
    return elapsed


def sql_counts(app: Any, clients: dict[str, Any], urls: dict[str, str]) -> dict[str, dict[str, int]]:
    """SQL statements per render, counted on the engine."""
    from sqlalchemy import event

    engine = app.extensions["portal"].engine
    seen: Counter[str] = Counter()

    def count(*_args: Any) -> None:
        seen["n"] += 1

    event.listen(engine, "before_cursor_execute", count)
    out: dict[str, dict[str, int]] = {}
    try:
        for who, client in clients.items():
            for label, url in urls.items():
                client.get(url)  # warm: what a running portal keeps is kept
                forget(app, who)
                seen.clear()
                assert client.get(url).status_code == 200
                out.setdefault(label, {})[who] = seen["n"]
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return out


def forget(app: Any, who: str) -> None:
    """Before a first render: no part kept for every reader (the page as rendered the first
    time; a reader's own parts stay, the anonymous render uses none); before a new reader's
    render: nothing of theirs kept (portal/fragments.py)."""
    if who == FIRST:
        app.extensions["portal"].fragments.drop_where(lambda key: not readers_own(key))
    elif who == NEW_READER:
        app.extensions["portal"].fragments.drop_where(readers_own)


def run(
    app: Any, clients: dict[str, Any], urls: dict[str, str], runs: int, warmup: int
) -> dict[str, dict[str, list]]:
    times: dict[str, dict[str, list[float]]] = {label: {who: [] for who in clients} for label in urls}
    for round_ in range(warmup + runs):
        for label, url in urls.items():
            for who, client in clients.items():
                forget(app, who)
                took = timed(client, url)
                if round_ >= warmup:
                    times[label][who].append(took)
    return times


def target_of(label: str) -> float | None:
    return TARGETS.get(label.split("/")[0])


def summary(times: dict[str, dict[str, list[float]]], sql: dict[str, dict[str, int]]) -> dict[str, Any]:
    base = statistics.median(times["status_show"]["anonymous"])
    out: dict[str, Any] = {"status_show_p50_ms": round(base, 3), "pages": {}}
    for label, by_who in times.items():
        row: dict[str, Any] = {"target_ratio": target_of(label)}
        for who, values in by_who.items():
            p50 = statistics.median(values)
            row[who] = {
                "n": len(values),
                "p50_ms": round(p50, 2),
                "ratio": round(p50 / base, 1),
                "sql": sql[label][who],
            }
        out["pages"][label] = row
    return out


def show(result: dict[str, Any]) -> None:
    print(f"status_show p50 {result['status_show_p50_ms']} ms (anonymous): the unit of the ratios")
    print(
        f"{'page':24} {'anon ms':>8} {'×':>6} {'sql':>4}   {'signed ms':>9} {'×':>6} {'sql':>4}"
        f"   {'new rdr ms':>10} {'×':>6} {'sql':>4}   {'first ms':>8} {'×':>6}  target"
    )
    for label, row in result["pages"].items():
        a, s, n, f = row["anonymous"], row["signed_in"], row[NEW_READER], row[FIRST]
        target = f"≤ {row['target_ratio']:g}×" if row["target_ratio"] else ""
        print(
            f"{label:24} {a['p50_ms']:8.2f} {a['ratio']:6.1f} {a['sql']:4}   "
            f"{s['p50_ms']:9.2f} {s['ratio']:6.1f} {s['sql']:4}   "
            f"{n['p50_ms']:10.2f} {n['ratio']:6.1f} {n['sql']:4}   {f['p50_ms']:8.2f} {f['ratio']:6.1f}  {target}"
        )


def profile(client: Any, url: str, runs: int) -> None:
    for _ in range(3):
        client.get(url)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(runs):
        client.get(url)
    profiler.disable()
    stats = pstats.Stats(profiler).strip_dirs().sort_stats("cumulative")
    stats.print_stats(45)
    stats.sort_stats("tottime").print_stats(25)


def measure(app: Any, args: argparse.Namespace) -> dict[str, Any]:
    urls = pages(app)
    # The first render of each page is timed before the others ask for it: clearing the kept
    # parts for it then leaves them rendered again for the anonymous and signed-in readers.
    reader = signed_in_client(app)
    clients = {
        FIRST: app.test_client(),
        "anonymous": app.test_client(),
        NEW_READER: reader,
        "signed_in": reader,
    }
    if args.profile:
        profile(clients["signed_in" if args.signed else "anonymous"], args.profile, args.runs)
        return {}
    sql = sql_counts(app, clients, urls)
    rounds = []
    for n in range(args.rounds):
        times = run(app, clients, urls, args.runs, args.warmup)
        rounds.append(summary(times, sql))
        print(
            f"round {n + 1} of {args.rounds}: status_show p50 {rounds[-1]['status_show_p50_ms']} ms",
            flush=True,
        )
    result = median_of(rounds)
    result |= {"entries": args.entries, "runs": args.runs, "rounds": args.rounds, "urls": urls}
    return result


def median_of(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each page's p50 and ratio: the median over the rounds (the machine's load swings between
    them); each round's own figures kept beside."""
    out: dict[str, Any] = {
        "status_show_p50_ms": statistics.median(r["status_show_p50_ms"] for r in rounds),
        "pages": {},
        "each_round": rounds,
    }
    for label, row in rounds[0]["pages"].items():
        merged: dict[str, Any] = {"target_ratio": row["target_ratio"]}
        for who in ("anonymous", "signed_in", NEW_READER, FIRST):
            merged[who] = {
                "n": sum(r["pages"][label][who]["n"] for r in rounds),
                "p50_ms": round(statistics.median(r["pages"][label][who]["p50_ms"] for r in rounds), 2),
                "ratio": round(statistics.median(r["pages"][label][who]["ratio"] for r in rounds), 1),
                "ratios": [r["pages"][label][who]["ratio"] for r in rounds],
                "sql": row[who]["sql"],
            }
        out["pages"][label] = merged
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--entries", type=int, default=200)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds; the median is reported")
    parser.add_argument("--keep", help="a folder to build the catalog in once and reuse")
    parser.add_argument("--profile", help="profile this URL instead of timing every page")
    parser.add_argument("--signed", action="store_true", help="profile signed in")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/render.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        app = build(folder, args.entries)
        print(f"demo catalog of {args.entries} entries ready in {time.perf_counter() - started:.0f} s")
        result = measure(app, args)
    if result:
        show(result)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()
