"""The full Whoosh index build beside a plain Whoosh + jieba build, alternated in one run (issue 22,
item 4); prints and saves.

    python benchmarks/search_build.py [--sizes 10000 100000] [--pairs 2 1]

Both builds index the same datasets (benchmarks/search.py's `make_docs`) into the same schema
with the same fields and stored content: the portal's `whoosh_document`. The only differences
are the build path:

- plain: what a Whoosh + jieba setup does. Words cut by jieba's `cut_for_search` (pure Python
  jieba, put in place of rjieba for the build; both cut these datasets into the same words),
  each text field handed to Whoosh as one string for its analyzer to split, one process, one
  `ix.writer()` with its defaults, `add_document` per dataset, `commit()` with its default
  merge;
- portal: `WhooshBackend.rebuild`, as `portal reindex` runs it.

Builds alternate plain, portal, plain, portal … at each size (`--pairs` per size), each into an
empty folder; the ratio is portal / plain per pair, and the median per size. After each pair
the two indexes are compared (documents, stored fields, every field's terms with their
document frequencies), so a faster build cannot be a different index. The 1-minute load
average before and after each build is recorded: the machine is shared.
Target: portal ≤ 0.6 × plain at 100,000 datasets.
Results: benchmarks/results/search_build.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

# The portal and the data are imported inside the functions: the portal's writer processes
# (new interpreters) import the main script again, and this one should cost them what
# `portal reindex`'s own script does, next to nothing.
if TYPE_CHECKING:
    from portal.search import SearchDoc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET = 0.6


@contextlib.contextmanager
def jieba_words() -> Iterator[None]:
    """portal.search.text cuts Chinese with jieba instead of rjieba while the block runs."""
    import jieba

    from portal.search import text

    class Jieba:
        cut_for_search = staticmethod(jieba.cut_for_search)
        cut = staticmethod(jieba.cut)

    rjieba = text.rjieba
    text.rjieba = Jieba  # type: ignore[assignment]
    try:
        yield
    finally:
        text.rjieba = rjieba


def plain_fields(fields: dict) -> dict:
    """Words as a plain setup hands them to Whoosh: one string, split by the field's analyzer."""
    return {k: " ".join(v) if isinstance(v, list) else v for k, v in fields.items()}


def plain_build(docs: list[SearchDoc], path: Path, bar) -> None:
    from whoosh import index

    from portal.search.whoosh_build import SCHEMA, whoosh_document

    ix = index.create_in(path, SCHEMA)
    with jieba_words():
        writer = ix.writer()
        for doc in docs:
            writer.add_document(**plain_fields(whoosh_document(doc)))
            bar.update(1)
        writer.commit()


def portal_build(docs: list[SearchDoc], path: Path, bar) -> None:
    from portal.search.whoosh_backend import WhooshBackend

    WhooshBackend(path).rebuild(docs, progress=lambda n: bar.update(1))


@contextlib.contextmanager
def children_peak() -> Iterator[list[float]]:
    """The largest peak memory (VmHWM, MB) of this process's child processes while the block
    runs, read from /proc twice a second (getrusage's figure for children also counts this
    process's memory at the moment of the fork)."""
    peak = [0.0]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.5):
            for child in multiprocessing.active_children():
                with contextlib.suppress(OSError, ValueError):
                    status = Path(f"/proc/{child.pid}/status").read_text()
                    [line] = [x for x in status.splitlines() if x.startswith("VmHWM:")]
                    peak[0] = max(peak[0], int(line.split()[1]) / 1024)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield peak
    finally:
        done.set()
        watcher.join()


def timed(kind: str, docs: list[SearchDoc], workdir: Path) -> dict:
    from tqdm import tqdm

    path = workdir / kind
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    build = plain_build if kind == "plain" else portal_build
    load_before = os.getloadavg()[0]
    with (
        tqdm(total=len(docs), desc=f"{kind} build {len(docs)}", unit="doc", file=sys.stderr) as bar,
        children_peak() as peak,
    ):
        started = time.perf_counter()
        build(docs, path, bar)
        seconds = time.perf_counter() - started
    load_after = os.getloadavg()[0]
    children_mb = peak[0] if kind == "portal" else None
    print(
        f"{kind:>6} {len(docs):>7}: {seconds:7.1f} s (load {load_before:.1f} → {load_after:.1f}"
        f"{f', writer process peak {children_mb:.0f} MB' if children_mb else ''})",
        flush=True,
    )
    return {
        "kind": kind,
        "seconds": seconds,
        "load_before": load_before,
        "load_after": load_after,
        "writer_process_peak_mb": children_mb,
    }


def contents(path: Path) -> dict:
    """What a search can see of an index: documents by name with their stored fields and
    column values, each field's terms with their document count and total frequency, and
    each field's total length."""
    from whoosh import index

    from portal.search.whoosh_build import SCHEMA

    ix = index.open_dir(path)
    with ix.reader() as reader:
        names = list(reader.column_reader("name"))
        stored = {fields["name"]: fields for _, fields in reader.iter_docs()}
        columns = {
            field: dict(zip(names, reader.column_reader(field), strict=True))
            for field in SCHEMA.names()
            if reader.has_column(field)
        }
        terms = {
            (field, term): (reader.doc_frequency(field, term), reader.frequency(field, term))
            for field in SCHEMA.names()
            if SCHEMA[field].indexed
            for term in reader.lexicon(field)
        }
        lengths = {field: reader.field_length(field) for field in SCHEMA.names()}
        return {
            "docs": reader.doc_count(),
            "stored": stored,
            "columns": columns,
            "terms": terms,
            "lengths": lengths,
        }


def measure(size: int, pairs: int, workdir: Path) -> dict:
    from benchmarks.search import make_docs

    docs = make_docs(size)
    runs = []
    for _ in range(pairs):
        plain = timed("plain", docs, workdir)
        portal = timed("portal", docs, workdir)
        same = contents(workdir / "plain") == contents(workdir / "portal")
        ratio = portal["seconds"] / plain["seconds"]
        print(f"{'':>6} {size:>7}: portal / plain {ratio:.2f}, same index: {same}", flush=True)
        runs.append({"plain": plain, "portal": portal, "ratio": ratio, "same_index": same})
    out = {
        "datasets": size,
        "pairs": runs,
        "plain_seconds_median": statistics.median(r["plain"]["seconds"] for r in runs),
        "portal_seconds_median": statistics.median(r["portal"]["seconds"] for r in runs),
        "ratio_median": statistics.median(r["ratio"] for r in runs),
        "same_index": all(r["same_index"] for r in runs),
    }
    print(
        f"{'median':>6} {size:>7}: plain {out['plain_seconds_median']:.1f} s, portal "
        f"{out['portal_seconds_median']:.1f} s, portal / plain {out['ratio_median']:.2f} (target ≤ {TARGET})",
        flush=True,
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--pairs", type=int, nargs="+", default=[2, 1], help="pairs per size, in order")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "portal-bench-search-build"
    )
    args = parser.parse_args()
    pairs = args.pairs + [args.pairs[-1]] * (len(args.sizes) - len(args.pairs))
    import jieba

    from portal.search import text

    # Both segmenters load their dictionaries before any timing.
    jieba.initialize()
    text.tokenize("东昌府区")
    results = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpus": os.cpu_count(),
        "target": f"portal ≤ {TARGET} × plain at 100,000",
        "sizes": [measure(size, n, args.workdir) for size, n in zip(args.sizes, pairs, strict=False)],
    }
    shutil.rmtree(args.workdir, ignore_errors=True)
    out = ROOT / "benchmarks" / "results" / "search_build.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, ensure_ascii=False, indent=2))
    print(f"saved {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
