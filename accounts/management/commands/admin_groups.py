"""``manage.py admin_groups``: create or update the "moderators" and "payout managers" groups
(``accounts.groups``); add staff to them in admin (Authentication > Groups, or on the user)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from accounts.groups import admin_groups_ensure


class Command(BaseCommand):
    help = 'Create or update the admin groups "moderators" and "payout managers".'

    def handle(self, *args: Any, **options: Any) -> None:
        for name, size in admin_groups_ensure().items():
            self.stdout.write(f"{name}: {size} permission(s)")
