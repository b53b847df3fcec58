from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from config.recursion import restore_recursion_limit

        # Every process (web, Celery, manage.py) loads this app: no deep recursion anywhere.
        restore_recursion_limit()
