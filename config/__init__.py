"""The Crowdmint Django project.

It is called ``config`` and not ``platform``: a top-level ``platform`` package shadows Python's
standard-library module of that name, and Celery (through kombu) then fails to import.
"""

from config.celery import app as celery_app

__all__ = ["celery_app"]
