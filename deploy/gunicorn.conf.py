"""Gunicorn settings for Crowdmint: ``gunicorn -c deploy/gunicorn.conf.py config.wsgi``.

Threads, not sync workers: dataset exports stream for as long as the dataset takes, and a sync
worker would be killed by its timeout mid-stream. Tune with ``GUNICORN_BIND``, ``WEB_CONCURRENCY``
(processes) and ``GUNICORN_THREADS``.
"""

import multiprocessing
import os
import shutil
from pathlib import Path
from typing import Any


def _count(name: str, default: int) -> int:
    """A whole number of at least 1 from the environment; a malformed one stops gunicorn naming
    the variable (as the app's own settings do)."""
    value = os.environ.get(name, "").strip() or str(default)
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise ValueError(f"{name}={value[:60]!r}: expected a whole number of at least 1")
    return int(value)


def _on(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ValueError(
            f"{name}={value[:60]!r}: expected one of 1, true, yes, on, 0, false, no, off"
        )
    return value in ("1", "true", "yes", "on")


bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = _count("WEB_CONCURRENCY", min(4, multiprocessing.cpu_count() + 1))
worker_class = "gthread"
threads = _count("GUNICORN_THREADS", 8)
# Each worker process listens on its own socket (SO_REUSEPORT) and the kernel spreads new
# connections over them. On one shared socket the first process to wake took most of them: a
# burst of 32 keep-alive connections split 21/6/5, and the process with 21 queued its requests
# while the others idled (p99 +30%). GUNICORN_REUSE_PORT=0 for one shared socket.
reuse_port = _on("GUNICORN_REUSE_PORT", True)
# An idle keep-alive connection stays open this long (gunicorn's default is 2 s). Behind nginx's
# pool of upstream connections (deploy/nginx, idle up to 60 s there) the app must not be the one
# that closes first: a request nginx sends on a connection gunicorn is closing fails (a POST isn't
# retried: 502). Under load a worker that stalled 2 s closed connections with requests in them.
keepalive = _count("GUNICORN_KEEPALIVE", 75)
timeout = 60  # a worker that stops answering its heartbeat for this long is restarted
graceful_timeout = 30
accesslog = "-"
errorlog = "-"
# The proxy in front terminates TLS and sends X-Forwarded-Proto (trusted from these addresses).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


# Prometheus' multi-process mode (config/metrics.py): each worker writes its samples to files in
# PROMETHEUS_MULTIPROC_DIR and /metrics adds them up. The directory starts empty at each start (old
# files would add a previous run's counts), and the files of a worker that exits are dropped.
def on_starting(server: Any) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        # Empty it, but keep the directory itself: systemd's RuntimeDirectory lives in /run, where
        # the app's user could not create it again.
        Path(directory).mkdir(parents=True, exist_ok=True)
        for entry in Path(directory).iterdir():
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


# With LOG_FORMAT=json the access log is JSON lines too, with the request id the app returned.
if os.environ.get("LOG_FORMAT") == "json":
    access_log_format = (
        '{"time": "%(t)s", "logger": "gunicorn.access", "remote": "%(h)s", "method": "%(m)s", '
        '"path": "%(U)s", "status": %(s)s, "bytes": %(B)s, "duration_us": %(D)s, '
        '"request_id": "%({x-request-id}o)s"}'
    )


def post_worker_init(worker: Any) -> None:
    # What the app loaded at start (Django, DRF, the URLconf, the models) lives as long as the
    # process: out of the cycle collector's sight, so that its full collections, which ran every
    # few hundred requests, don't re-scan it each time.
    import gc

    gc.freeze()
