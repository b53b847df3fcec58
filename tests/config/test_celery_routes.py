"""Which queue each task goes to: workers are started per queue (deploy/, `make stack`)."""

from __future__ import annotations

from config.celery import app


def queue_of(task_name: str) -> str:
    route = app.amqp.router.route({}, task_name)
    return str(route["queue"].name)


def test_payouts_go_to_their_own_queue() -> None:
    assert queue_of("rewards.tasks.settle_rewards") == "payouts"


def test_fraud_checks_have_a_queue_of_their_own() -> None:
    for task in ("fraud_scan", "sybil_scan", "check_answers", "recheck_user"):
        assert queue_of(f"moderation.tasks.{task}") == "moderation"


def test_decisions_and_their_credits_have_a_queue_of_their_own() -> None:
    for task in (
        "labeling.tasks.decide_due",
        "labeling.tasks.decide_item",
        "rewards.tasks.credit_decisions",
        "rewards.tasks.credit_decision",
    ):
        assert queue_of(task) == "decisions", task


def test_refits_stay_on_the_default_queue() -> None:
    assert queue_of("labeling.tasks.refit_projects") == "celery"


def test_every_task_acknowledges_late_and_is_redelivered_when_its_worker_dies() -> None:
    app.loader.import_default_modules()
    ours = [name for name in app.tasks if name.split(".")[0] in {"labeling", "rewards"}]
    assert {"labeling.tasks.decide_item", "rewards.tasks.settle_rewards"} <= set(ours)
    for name in ours:
        task = app.tasks[name]
        assert task.acks_late, name
        assert task.reject_on_worker_lost, name
