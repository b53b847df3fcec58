from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from config.checks import register_checks
        from config.recursion import restore_recursion_limit

        # Every process (web, Celery, manage.py) loads this app: no deep recursion anywhere.
        restore_recursion_limit()
        register_checks()


class CrowdmintAdminConfig(admin_apps.AdminConfig):
    """Django's admin with Crowdmint's site (``accounts.admin_site``): ``INSTALLED_APPS`` names it
    in place of ``django.contrib.admin``."""

    # Not the accounts app's own config (that is AccountsConfig, found by default).
    default = False
    default_site = "accounts.admin_site.CrowdmintAdminSite"
