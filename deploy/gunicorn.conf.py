"""Gunicorn settings for Crowdmint: ``gunicorn -c deploy/gunicorn.conf.py config.wsgi``.

Threads, not sync workers: dataset exports stream for as long as the dataset takes, and a sync
worker would be killed by its timeout mid-stream. Tune with ``GUNICORN_BIND``, ``WEB_CONCURRENCY``
(processes) and ``GUNICORN_THREADS``.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", min(4, multiprocessing.cpu_count() + 1)))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = 60  # a worker that stops answering its heartbeat for this long is restarted
graceful_timeout = 30
accesslog = "-"
errorlog = "-"
# The proxy in front terminates TLS and sends X-Forwarded-Proto (trusted from these addresses).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
