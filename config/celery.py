"""The Celery application. Workers start with ``celery -A config worker``.

Request ids travel from the web request to its tasks in the message headers
(``config.request_id``); with ``PROMETHEUS_MULTIPROC_DIR`` each worker process writes its metrics
where the web's ``/metrics`` reads them (same host), and a worker exits its files when it stops.
"""

import os
from typing import Any

from celery import Celery, signals

from config import request_id

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("crowdmint")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

signals.before_task_publish.connect(request_id.add_request_id_header, weak=False)
signals.task_prerun.connect(request_id.task_started, weak=False)
signals.task_postrun.connect(request_id.task_finished, weak=False)


@signals.worker_process_shutdown.connect(weak=False)
def _forget_metrics_of_exiting_process(pid: int | None = None, **_: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]
