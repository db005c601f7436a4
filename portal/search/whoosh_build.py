"""What the Whoosh index holds (`SCHEMA`, `whoosh_document`) and its full build (`portal
reindex`, a restore): words are cut and segments written in parallel, one writer process per
core, each writing whole segments of its own; the commit lists those segments and drops every
earlier one, merging nothing. The writer processes import this module and portal.search.text
only (not the models, nor the query side), so they start in a fraction of a second.

Where Whoosh's own build spends its time, measured on 20,000 datasets in one process, and what
is done here instead (benchmarks/search_build.py times the whole build beside plain Whoosh +
jieba):

- its posting pool spills to temporary files past `limitmb`, every posting pickled out and read
  back (about 45 % of the CPU at 256 MB): a writer here closes its segment and starts another
  before the pool reaches SEGMENT_MB, so postings never leave memory;
- flushing a segment looks up the document's field length on disk for every posting (40 % of
  the flush): `_Lengths` reads each field's lengths once;
- the analyzer splits the words a second time: `whoosh_document` hands Whoosh lists of words,
  which it indexes as they are;
- jieba, in pure Python, is 4× slower than rjieba here.

The words are cut in the writer processes, not in the one reading the database; the build
before this one, Whoosh's own multi-process writer (`procs=`), had them cut in the parent and
passed finished documents through pickled files. Segments are finished with the writer's
internals (`_finalize_segment`, `pool.currentsize`) as that writer finishes its own: Whoosh is
pinned (pyproject.toml) and tests/test_search.py builds through processes.
"""

from __future__ import annotations

import datetime as dt
import itertools
import multiprocessing
import queue
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from whoosh import index as whoosh_index
from whoosh.analysis import SpaceSeparatedTokenizer
from whoosh.fields import ID, NUMERIC, STORED, TEXT, Schema
from whoosh.index import Index
from whoosh.writing import SegmentWriter

from . import SearchDoc
from .text import bigrams, tokenize

# A writer closes its segment when Whoosh counts this much in its posting pool (about 1.3× that
# in the process's memory; ~32,000 datasets of the benchmark's kind).
SEGMENT_MB = 512
# Datasets handed to a writer process at a time.
BATCH = 250
# Fewer datasets than this are written in the calling process: starting the writer processes
# (a new interpreter each, ~0.3 s of imports and rjieba's dictionary) costs more than it saves.
PARALLEL_FROM = 4_000

EPOCH = dt.date(1970, 1, 1)


def _text_field() -> TEXT:
    # Words are made by portal.search.text.tokenize and reach Whoosh as lists, indexed as they
    # are; the analyzer (split on spaces) is what a string would meet, kept so that the schema
    # of existing indexes stays the same. No positions (we score by frequency, not phrases).
    return TEXT(analyzer=SpaceSeparatedTokenizer(), phrase=False)


SCHEMA = Schema(
    name=ID(stored=True, unique=True, sortable=True),
    department_name=ID(sortable=True),
    title=_text_field(),
    summary=_text_field(),
    tags=_text_field(),
    department_t=_text_field(),
    domain_t=_text_field(),
    fields=_text_field(),
    code=_text_field(),
    title_en=_text_field(),
    summary_en=_text_field(),
    chars=_text_field(),
    department=ID(sortable=True),
    domain=ID(sortable=True),
    open_class=ID(sortable=True),
    format=ID(sortable=True),
    update_cycle=ID(sortable=True),
    published=NUMERIC(sortable=True, bits=32, signed=True),
    title_sort=ID(sortable=True),
    data=STORED,
)


def whoosh_document(doc: SearchDoc) -> dict:
    # Text fields get lists of words, which Whoosh indexes as they are (a string would be split
    # again by the field's analyzer, into the same words: words never hold spaces).
    published = (doc.published - EPOCH).days if doc.published else -1
    return {
        "name": doc.name,
        "title": tokenize(doc.title),
        "summary": tokenize(doc.summary),
        "tags": [t for tag in doc.tags for t in tokenize(tag)],
        "department_t": tokenize(doc.department_name),
        "domain_t": tokenize(doc.domain),
        "fields": [t for f in doc.fields for t in tokenize(f)],
        "code": tokenize(doc.resource_code),
        "title_en": tokenize(doc.title_en),
        "summary_en": tokenize(doc.summary_en),
        "chars": bigrams(doc.title),
        "department": doc.department,
        "department_name": doc.department_name,
        "domain": doc.domain,
        "open_class": doc.open_class,
        "format": doc.format,
        "update_cycle": doc.update_cycle,
        "published": published,
        "title_sort": doc.title,
        "data": {**doc.shown(), "published": published},
    }


def build(
    ix: Index, docs: Iterable[SearchDoc], procs: int, progress: Callable[[int], None] | None = None
) -> int:
    """Replace every document of the index with `docs`; returns how many. Searches see the
    old index until the commit."""
    # This writer holds the index's lock for the whole build; its own segment stays empty.
    writer = ix.writer(timeout=120.0, delay=0.25)
    counted = _Counter(docs, progress)
    try:
        first = list(itertools.islice(counted, PARALLEL_FROM))
        batches = _batches(itertools.chain(first, counted))
        if procs > 1 and len(first) == PARALLEL_FROM:
            segments = _in_processes(ix, batches, procs)
        else:
            segments = write_segments(ix, batches, SEGMENT_MB)
    except BaseException:
        writer.cancel()
        raise
    writer.commit(mergetype=lambda _writer, _old: segments)
    return counted.n


class _Counter(Iterator[SearchDoc]):
    """The documents, counted (and the progress told) as they are read."""

    def __init__(self, docs: Iterable[SearchDoc], progress: Callable[[int], None] | None) -> None:
        self.docs = iter(docs)
        self.progress = progress
        self.n = 0

    def __next__(self) -> SearchDoc:
        doc = next(self.docs)
        self.n += 1
        if self.progress:
            self.progress(self.n)
        return doc


def _batches(docs: Iterator[SearchDoc]) -> Iterator[list[SearchDoc]]:
    while batch := list(itertools.islice(docs, BATCH)):
        yield batch


def write_segments(ix: Index, batches: Iterable[list[SearchDoc]], segment_mb: float) -> list[Any]:
    """Write the documents into new segments of `ix`, each closed before its postings would
    leave memory; the segments are returned, not committed (the caller holds the lock)."""
    segments = []
    writer: _SegmentWriter | None = None
    for batch in batches:
        for doc in batch:
            if writer is None:
                writer = _SegmentWriter(ix, _lk=False, limitmb=2 * segment_mb)
            writer.add_document(**whoosh_document(doc))
            if writer.pool.currentsize >= segment_mb * 2**20:
                segments.append(writer._finalize_segment())
                writer = None
    if writer is not None:
        segments.append(writer._finalize_segment())
    return segments


class _SegmentWriter(SegmentWriter):
    def per_document_reader(self) -> Any:
        return _Lengths(super().per_document_reader())


class _Lengths:
    """The per-document reader a segment's flush gets, with each field's lengths read once:
    the flush asks for the length of a posting's document for every posting."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self.lengths: dict[str, list[int]] = {}

    def doc_field_length(self, docnum: int, fieldname: str, default: int = 0) -> int:
        lengths = self.lengths.get(fieldname)
        if lengths is None:
            read = self.reader.doc_field_length
            lengths = self.lengths[fieldname] = [
                read(d, fieldname, default) for d in range(self.reader.doc_count_all())
            ]
        return lengths[docnum]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.reader, name)


def _in_processes(ix: Index, batches: Iterator[list[SearchDoc]], procs: int) -> list[Any]:
    # New interpreters, not forks: the caller may be a web or job worker with threads and open
    # connections, which a fork would copy mid-use.
    context = multiprocessing.get_context("spawn")
    jobs = context.Queue(maxsize=procs * 4)
    results = context.Queue()
    workers = [
        context.Process(
            target=_writer_process,
            args=(ix.storage.folder, ix.indexname, jobs, results, SEGMENT_MB),
            daemon=True,
        )
        for _ in range(procs)
    ]
    for worker in workers:
        worker.start()
    try:
        for batch in itertools.chain(batches, [None] * procs):
            _put(jobs, batch, workers)
        segments: list[Any] = []
        for _ in workers:
            segments += _get(results, workers)
        for worker in workers:
            worker.join()
        return segments
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()


def _writer_process(folder: str, indexname: str, jobs: Any, results: Any, segment_mb: float) -> None:
    ix = whoosh_index.open_dir(folder, indexname=indexname)
    results.put(write_segments(ix, iter(jobs.get, None), segment_mb))


def _put(jobs: Any, item: object, workers: list[Any]) -> None:
    while True:
        try:
            jobs.put(item, timeout=1.0)
            return
        except queue.Full:
            _check(workers)


def _get(results: Any, workers: list[Any]) -> list[Any]:
    while True:
        try:
            return results.get(timeout=1.0)
        except queue.Empty:
            _check(workers)


def _check(workers: list[Any]) -> None:
    failed = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
    if failed:
        raise RuntimeError(f"a search index writer process failed (exit code {failed[0]})")
