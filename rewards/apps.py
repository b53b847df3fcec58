from django.apps import AppConfig


class RewardsConfig(AppConfig):
    name = "rewards"
    verbose_name = "Rewards and payouts"

    def ready(self) -> None:
        # Register the tasks other apps enqueue by name (labeling asks for a decision's credit
        # without importing rewards): eager Celery runs only registered tasks in-process.
        from rewards import tasks  # noqa: F401
