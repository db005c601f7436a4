"""gunicorn settings for the portal: gunicorn -c python:portal.gunicorn_config portal.wsgi:app

gthread workers: the worker's main thread keeps telling the arbiter it is alive while other
threads stream files, so a slow client's long download is never cut by the worker timeout
(a sync worker was killed at 30 s, mid-file, with status 200 already sent). Files go out
with sendfile() through wsgi.file_wrapper.
"""

import multiprocessing
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gunicorn.workers.base import Worker

bind = os.environ.get("PORTAL_BIND", "127.0.0.1:8000")
worker_class = "gthread"
workers = int(os.environ.get("PORTAL_WORKERS", max(2, multiprocessing.cpu_count())))
threads = int(os.environ.get("PORTAL_THREADS", 16))
# A worker takes a connection only when it has a thread free for it; the others wait in the
# listen queue, in order, for whichever worker frees a thread first. gunicorn's default (1,000)
# let one worker take far more than its share (under 200 clients: 90, 79, 66 and 25 connections
# on four workers), and its queue became the slow tail (200 clients, page cache off: p99 0.69–1.61 s,
# 0.40–0.83 s with the cap; docs/benchmarks.md "One queue for every worker"). nginx opens one
# connection per request to gunicorn (deploy/nginx-portal.conf), so no idle kept-alive connection
# holds a slot. gunicorn facing browsers directly would need more: PORTAL_WORKER_CONNECTIONS=1000.
worker_connections = int(os.environ.get("PORTAL_WORKER_CONNECTIONS", threads))
timeout = int(os.environ.get("PORTAL_WORKER_TIMEOUT", 30))  # a stuck worker (not a slow download) is replaced
graceful_timeout = 30
# Behind nginx every connection carries one request (Connection: close), and a connection kept
# open after its answer would hold a thread's slot: no keepalive while connections are capped at
# the threads (gunicorn warns at start otherwise). Only with more connections than threads (gunicorn
# facing browsers) are connections kept alive, for 5 s.
keepalive = 5 if worker_connections > threads else 0
# Long URLs reach the portal, which answers them with its own 414 page in the reader's
# language (gunicorn's default, 4094 bytes, answered in bare English before the portal saw them).
limit_request_line = 8190
accesslog = "-"


def _control_socket() -> str:
    """One control socket per instance (gunicornc talks to it): gunicorn's default is one per
    user, so a second master on the same host took over the first one's socket. A Unix
    socket's path is short (108 bytes): a long instance path gets one in /tmp named after it."""
    import hashlib
    from pathlib import Path

    if os.environ.get("PORTAL_CONTROL_SOCKET"):
        return os.environ["PORTAL_CONTROL_SOCKET"]
    instance = Path(os.environ.get("PORTAL_INSTANCE", "instance")).resolve()
    path = instance / "gunicorn.ctl"
    if len(str(path).encode()) > 100:
        path = Path("/tmp") / f"portal-{hashlib.sha256(str(instance).encode()).hexdigest()[:12]}.ctl"
    return str(path)


control_socket = _control_socket()

from portal.logs import config as _log_config  # noqa: E402  (one logging setup: the portal's)

logconfig_dict = _log_config()


def post_worker_init(worker: "Worker") -> None:  # gunicorn's hook, before the worker serves
    from portal.app import warm_up

    warm_up(worker.wsgi)
