from django.apps import AppConfig


class MarketConfig(AppConfig):
    name = "market"
    verbose_name = "Datasets for buyers"
