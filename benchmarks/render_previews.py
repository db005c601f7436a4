"""The dataset page's render time with and without its previews (chart, map, filters), in one
run, in process (Flask's test client: no network, no page cache), on the demo catalog.

    python benchmarks/render_previews.py [--entries 200] [--pages 60] [--rounds 5]

The demo catalog is generated and harvested into a temporary instance; the pages are those of
its unconditional datasets (the ones that get previews), --pages of them. Each round renders
every page with previews off (PORTAL_PREVIEWS=0, the page as it was) and on, alternating page
by page so both see the same machine. Reported: p50/p95 of each, warm (the previews' figures
kept per file, as a running portal keeps them) and cold (the first render of each page after
the kept figures are dropped: a new data version, or a restart), and the extra time the
previews add. Also a filtered page (a filter and a sort through the data API's engine).
Results: benchmarks/results/render_previews.json.
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


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def build(workdir: Path, entries: int):
    from harvest.sources import SpreadsheetSource
    from portal.app import create_app
    from portal.demo import generate_catalog

    app = create_app({"INSTANCE": str(workdir / "instance"), "TESTING": True})
    ctx = app.extensions["portal"]
    harvester = ctx.harvester()
    for path in generate_catalog(workdir / "demo-catalog", entries=entries):
        harvester.run(SpreadsheetSource(path))
    return app


def clear_kept() -> None:
    from portal import preview_charts as charts

    for cached in (
        charts._figures,
        charts._map_points,
        charts._street_counts,
        charts._default_spec,
        charts._address_column,
    ):
        cached.cache_clear()


def timed(client, url: str) -> float:
    started = time.perf_counter()
    response = client.get(url)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, (url, response.status_code)
    return elapsed


def summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values), 2),
        "p95_ms": round(percentile(values, 95), 2),
        "mean_ms": round(statistics.fmean(values), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=200)
    parser.add_argument("--pages", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from sqlalchemy import select

    from portal.models import Dataset

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        app = build(Path(tmp), args.entries)
        print(f"demo catalog of {args.entries} entries harvested in {time.perf_counter() - started:.0f} s")
        settings = app.extensions["portal"].settings
        with app.extensions["portal"].sessions() as s:
            datasets = s.scalars(
                select(Dataset).where(Dataset.status == "published", Dataset.open_class == "unconditional")
            ).all()
            names = [d.name for d in datasets if d.served_tables][: args.pages]
            with_map = with_chart = 0
        client = app.test_client()
        for name in names:  # which pages get which preview (checked once, previews on)
            text = client.get(f"/dataset/{name}").get_data(as_text=True)
            with_map += 'class="chart map"' in text
            with_chart += 'class="see-chart"' in text
        clear_kept()

        off, on, cold_on, cold_off = [], [], [], []
        for round_ in range(args.rounds):
            for name in names:
                url = f"/dataset/{name}"
                settings.previews = False
                (cold_off if round_ == 0 else off).append(timed(client, url))
                settings.previews = True
                (cold_on if round_ == 0 else on).append(timed(client, url))
        filtered = []
        for _ in range(args.rounds):
            for name in names[:20]:
                first = client.get(f"/api/data/{name}/fields").get_json()["tables"][0]
                column = first["fields"][0]["name"]
                filtered.append(timed(client, f"/dataset/{name}?op=q&val=街道&sort={column}&order=desc"))

    result = {
        "entries": args.entries,
        "pages": len(names),
        "rounds": args.rounds,
        "pages_with_map": with_map,
        "pages_with_chart": with_chart,
        "previews_off": summary(off),
        "previews_on": summary(on),
        "cold_previews_off": summary(cold_off),
        "cold_previews_on": summary(cold_on),
        "filtered_on": summary(filtered),
    }
    result["added_p50_ms"] = round(result["previews_on"]["p50_ms"] - result["previews_off"]["p50_ms"], 2)
    result["added_p95_ms"] = round(result["previews_on"]["p95_ms"] - result["previews_off"]["p95_ms"], 2)
    print(json.dumps(result, ensure_ascii=False, indent=2))
    out = ROOT / "benchmarks/results/render_previews.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()
