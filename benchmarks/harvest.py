"""Harvest benchmarks, measured side by side in one run; prints and saves the figures.

1. Conversion of a ~500 MB CSV to Parquet: the harvester's streaming converter, with the
   publication gate's personal-information scan in place (as the harvest runs it), beside
   pyarrow's own read_csv + write_table of the same file. Each runs in a fresh process so
   its peak memory (ru_maxrss) is its own. Targets: time ≤ 1.1× pyarrow's, peak memory
   ≤ 300 MB, Parquet ≤ 5% larger than pyarrow's, row groups of tens of MB. The scan's own
   cost is reported separately: its CPU time (it runs in a thread beside the conversion)
   and the wall-clock time it adds (the converter run once more with the scan switched off
   in that child process only). Target ≤ 15% of the conversion time.
2. A re-harvest of 1,000 unchanged CKAN entries (needs CKAN_URL and CKAN_TOKEN, e.g. from
   ../shared/ckan/start; the CKAN is emptied and filled first). Target ≤ 10 s, nothing
   downloaded again.

    python benchmarks/harvest.py [--size-mb 500] [--repeat 3] [--ckan-entries 1000] [--skip-ckan]

Results: benchmarks/results/harvest.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._data import big_csv  # noqa: E402

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
import pyarrow.parquet as pq
mode, src, out = sys.argv[1], sys.argv[2], sys.argv[3]
start = time.perf_counter()
scan_cpu = None
if mode == "pyarrow":
    import pyarrow.csv as pacsv
    pq.write_table(pacsv.read_csv(src), out)
else:
    import harvest.convert as convert
    if mode == "noscan":  # the same conversion with the scan switched off, for its cost only
        convert._ScanBeside.feed = lambda self, batch: None
    info = convert.csv_to_parquet(Path(src), Path(out))
    scan_cpu = info.scan_seconds
seconds = time.perf_counter() - start
meta = pq.ParquetFile(out).metadata
groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
print(json.dumps({"seconds": seconds, "scan_cpu_seconds": scan_cpu, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "bytes": Path(out).stat().st_size, "row_groups": meta.num_row_groups, "rows": meta.num_rows,
                  "mean_row_group_mb": sum(g.column(j).total_compressed_size for g in groups
                                           for j in range(g.num_columns)) / len(groups) / 2**20}))
"""


def conversion(size_mb: int, repeat: int, workdir: Path) -> dict:
    src = big_csv(workdir / f"bench-{size_mb}mb.csv", size_mb * 2**20)
    print(f"conversion: {src.stat().st_size / 2**20:.0f} MB CSV, {repeat} runs each, alternating", flush=True)
    runs: dict[str, list[dict]] = {"pyarrow": [], "harvester": [], "noscan": []}
    for i in range(repeat):
        for mode in ("pyarrow", "harvester", "noscan"):
            out = workdir / f"{mode}.parquet"
            done = subprocess.run(
                [sys.executable, "-c", CHILD, mode, str(src), str(out)],
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            if done.returncode:
                raise SystemExit(f"{mode} failed:\n{done.stderr}")
            result = json.loads(done.stdout)
            runs[mode].append(result)
            print(
                f"  run {i + 1} {mode:9}: {result['seconds']:.2f} s, peak {result['peak_mb']:.0f} MB, "
                f"{result['bytes'] / 2**20:.1f} MB in {result['row_groups']} row groups",
                flush=True,
            )
    summary = {}
    for mode, rs in runs.items():
        summary[mode] = {
            "median_seconds": statistics.median(r["seconds"] for r in rs),
            "max_peak_mb": max(r["peak_mb"] for r in rs),
            "bytes": rs[-1]["bytes"],
            "row_groups": rs[-1]["row_groups"],
            "mean_row_group_mb": rs[-1]["mean_row_group_mb"],
            "rows": rs[-1]["rows"],
        }
    ours, theirs = summary["harvester"], summary["pyarrow"]
    summary["time_ratio"] = ours["median_seconds"] / theirs["median_seconds"]
    scan_cpu = statistics.median(r["scan_cpu_seconds"] for r in runs["harvester"])
    summary["scan"] = {
        "cpu_seconds": scan_cpu,
        "cpu_share": scan_cpu / ours["median_seconds"],
        "wall_seconds_added": ours["median_seconds"] - summary["noscan"]["median_seconds"],
        "wall_share": (ours["median_seconds"] - summary["noscan"]["median_seconds"]) / ours["median_seconds"],
    }
    summary["size_ratio"] = ours["bytes"] / theirs["bytes"]
    summary["csv_mb"] = src.stat().st_size / 2**20
    print(
        f"  => time {summary['time_ratio']:.2f}× pyarrow (target ≤ 1.10), peak {ours['max_peak_mb']:.0f} MB "
        f"(target ≤ 300; pyarrow {theirs['max_peak_mb']:.0f} MB), size {summary['size_ratio']:.3f}× "
        f"(target ≤ 1.05), row groups {ours['mean_row_group_mb']:.1f} MB on disk",
        flush=True,
    )
    scan = summary["scan"]
    print(
        f"  => scan: {scan['cpu_seconds']:.2f} s CPU in its own thread ({scan['cpu_share']:.0%} of the conversion "
        f"time), adds {scan['wall_seconds_added']:.2f} s wall ({scan['wall_share']:.0%}; target ≤ 15%)",
        flush=True,
    )
    return summary


def ckan_reharvest(entries: int, workdir: Path) -> dict:
    url, token = os.environ.get("CKAN_URL"), os.environ.get("CKAN_TOKEN")
    if not (url and token):
        print("ckan: skipped (set CKAN_URL and CKAN_TOKEN, e.g. from ../shared/ckan/start)")
        return {"skipped": True}
    from ckanapi import RemoteCKAN
    from tqdm import tqdm

    import harvest.run
    from harvest.run import Harvester
    from harvest.sources import CkanSource
    from portal.config import Settings
    from portal.context import PortalContext

    api = RemoteCKAN(url, apikey=token)
    for pkg in api.action.package_search(q="*:*", rows=1000, include_private=True)["results"]:
        api.action.dataset_purge(id=pkg["id"])
    if "bench-dept" not in api.action.organization_list():
        api.action.organization_create(name="bench-dept", title="东昌府区统计局")
    for i in tqdm(range(entries), desc="filling CKAN", unit="entry"):
        pkg = api.action.package_create(
            name=f"bench-{i:05d}",
            title=f"基准测试数据集{i}",
            owner_org="bench-dept",
            extras=[
                {"key": "resource_code", "value": f"371502-TJJ-{i:05d}"},
                {"key": "open_class", "value": "无条件开放"},
                {"key": "domain", "value": "经济建设"},
            ],
        )
        api.action.resource_create(
            package_id=pkg["id"],
            name=f"d{i}.csv",
            format="CSV",
            upload=(f"d{i}.csv", io.BytesIO(f"年度,数值\n2025,{i}\n".encode())),
        )
    ctx = PortalContext(Settings(instance_path=workdir / "instance"))
    downloads = []
    real_fetch = harvest.run.fetch_file
    harvest.run.fetch_file = lambda ref, *a, **k: (downloads.append(ref.name), real_fetch(ref, *a, **k))[1]
    harvester = Harvester(ctx.sessions, ctx.storage)
    start = time.perf_counter()
    first = harvester.run(CkanSource(url, token))
    first_seconds = time.perf_counter() - start
    first_downloads = len(downloads)
    downloads.clear()
    start = time.perf_counter()
    second = harvester.run(CkanSource(url, token))
    second_seconds = time.perf_counter() - start
    harvest.run.fetch_file = real_fetch
    result = {
        "entries": entries,
        "first_seconds": first_seconds,
        "first_counts": first.counts,
        "first_downloads": first_downloads,
        "reharvest_seconds": second_seconds,
        "reharvest_counts": second.counts,
        "reharvest_downloads": len(downloads),
    }
    print(
        f"ckan: first harvest {first_seconds:.1f} s ({first_downloads} downloads); re-harvest of "
        f"{entries} unchanged entries {second_seconds:.2f} s (target ≤ 10), {len(downloads)} downloads, "
        f"counts {second.counts}"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ckan-entries", type=int, default=1000)
    parser.add_argument("--skip-ckan", action="store_true")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "portal-bench")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{os.cpu_count()} cores",
        "conversion": conversion(args.size_mb, args.repeat, args.workdir),
    }
    if not args.skip_ckan:
        results["ckan_reharvest"] = ckan_reharvest(
            args.ckan_entries, args.workdir / f"ckan-{time.time():.0f}"
        )
    out = ROOT / "benchmarks" / "results" / "harvest.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, ensure_ascii=False, indent=2))
    print(f"saved {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
