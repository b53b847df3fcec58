from django.apps import AppConfig
from django.conf import settings


class MarketConfig(AppConfig):
    name = "market"
    verbose_name = "Datasets for buyers"

    def ready(self) -> None:
        from market import importers

        # Process-wide (csv.field_size_limit): set once, here.
        importers.allow_csv_fields_of(max(settings.UPLOAD_MAX_BYTES, settings.API_JSON_MAX_BYTES))
