"""Label Studio's WSGI application with persistent database connections, for the load benchmark.

Label Studio's settings (``core.settings.label_studio``, DEBUG off through the environment) open
a new database connection per request; its best configuration keeps them (``CONN_MAX_AGE``), so
this sets it before the first connection is made. Used only with Label Studio in .venv-peer."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings.label_studio")

from django.conf import settings

settings.DATABASES["default"]["CONN_MAX_AGE"] = 600

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
