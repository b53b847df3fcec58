"""Container and systemd health probe: ``python deploy/healthcheck.py [live|ready]``.

Asks the gunicorn next to it (``GUNICORN_BIND``'s port on 127.0.0.1) for
``/api/v1/health/<live|ready>`` with the site's own host name (the first of
``DJANGO_ALLOWED_HOSTS``), and exits 0 on 200, 1 otherwise. Standard library only: it runs in the
image with nothing else started.
"""

from __future__ import annotations

import http.client
import os
import sys


def main() -> int:
    which = sys.argv[1] if len(sys.argv) > 1 else "live"
    port = int(os.environ.get("GUNICORN_BIND", "0.0.0.0:8000").rsplit(":", 1)[1])
    host = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1").split(",")[0] or "127.0.0.1"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=4)
    try:
        # X-Forwarded-Proto: the probe stands where the TLS proxy stands (no HTTPS redirect).
        connection.request(
            "GET", f"/api/v1/health/{which}", headers={"Host": host, "X-Forwarded-Proto": "https"}
        )
        status = connection.getresponse().status
    except OSError as exc:
        sys.stderr.write(f"health/{which}: {exc}\n")
        return 1
    finally:
        connection.close()
    sys.stdout.write(f"health/{which}: {status}\n")
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
