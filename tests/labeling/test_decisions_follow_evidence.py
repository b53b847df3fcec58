"""Online decisions that follow the evidence (issue 9): whatever the last fit looked like, a clear
vote of fresh labelers decides its item; a fit calibrated on gold items is believed no more than
the gold items allow; and an item that can't get its next label goes to the review queue."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.models import AuditEvent, User
from frontend.seed import TEXTS, seed_demo
from labeling.consensus import decisive_margin
from labeling.models import MAX_CLASSES, Annotation, ConsensusFit, Item, Project, WorkerSkill
from labeling.services import (
    item_create_text,
    item_decide,
    items_review_stalled,
    model_vote,
    project_refit,
)
from labeling.tasks import review_stalled_items
from tests.conftest import Contributor, serve

pytestmark = pytest.mark.django_db


@pytest.fixture
def label(django_capture_on_commit_callbacks: Callable) -> Callable[[Contributor, Item, str], None]:
    """Post a label through the API and run what its transaction enqueued (the decision)."""

    def post(contributor: Contributor, item: Item, value: str) -> None:
        serve(item, contributor)  # as next-task would have leased it
        with django_capture_on_commit_callbacks(execute=True):
            response = contributor.api.post(
                f"/api/v1/items/{item.pk}/annotations/", {"label": value}, format="json"
            )
        assert response.status_code == 201, response.content

    return post


# --- The demo, as a new user met it -----------------------------------------------------------


@pytest.fixture
def demo(transactional_db: None) -> Any:
    """The seeded demo: four contributors; its text project refitted on mostly `positive`
    accepted items and no gold (class priors near 0.9 / 0.1, the labelers' `negative` rows
    without evidence). Transactions commit, so each decision runs when its labels do, as in
    ``manage.py demo``."""
    return seed_demo(moderator_password="demo")


@pytest.mark.django_db(transaction=True)
def test_the_demo_fit_is_skewed_as_in_the_report(demo: Any) -> None:
    fit = ConsensusFit.objects.get(project=demo.text_project)
    assert fit.method == "bayes_ds" and fit.priors[0] > 0.75
    assert fit.calibration_floor == 0.0  # no gold in the demo


@pytest.mark.django_db(transaction=True)
def test_six_fresh_negatives_after_one_positive_are_accepted_as_negative(
    demo: Any, make_contributor: Callable[[], Contributor], label: Callable
) -> None:
    project = demo.text_project
    item = item_create_text(
        project=project, contributor=demo.contributors[0], text="Broke at once."
    )
    fresh = [make_contributor() for _ in range(7)]
    for who, value in zip(fresh, ["positive"] + ["negative"] * 6, strict=True):
        item.refresh_from_db()
        if item.status != Item.Status.OPEN:
            break
        label(who, item, value)
    item.refresh_from_db()
    assert (item.status, item.decided_label) == (Item.Status.ACCEPTED, "negative")
    assert item.confidence >= project.acceptance_threshold


@pytest.mark.django_db(transaction=True)
def test_the_seeded_item_with_five_negatives_and_one_positive_is_decided(
    demo: Any, make_contributor: Callable[[], Contributor], label: Callable
) -> None:
    # Item 6 of the demo ("It stopped working after a week."), uploaded by the second seeded
    # contributor: the other three seeded contributors, whom the fit has seen, and fresh ones.
    item = Item.objects.get(project=demo.text_project, text=TEXTS[5][0])
    seeded = [c for c in demo.contributors if c.pk != item.contributor_id]
    votes: list[tuple[User, str]] = [
        (seeded[0], "positive"),
        (seeded[1], "negative"),
        (seeded[2], "negative"),
    ]
    fresh = [make_contributor() for _ in range(3)]
    votes += [(who.user, "negative") for who in fresh]
    api_of = {who.user.pk: who for who in fresh}
    from django.test import Client

    for user, value in votes:
        item.refresh_from_db()
        if item.status != Item.Status.OPEN:
            break
        if user.pk in api_of:
            label(api_of[user.pk], item, value)
        else:  # a seeded contributor, signed in through the session as the demo's login does
            serve(item, user)
            browser = Client()
            browser.force_login(user)
            response = browser.post(
                f"/api/v1/items/{item.pk}/annotations/",
                {"label": value},
                content_type="application/json",
            )
            assert response.status_code == 201, response.content
            item_decide(item_id=item.pk)
    item.refresh_from_db()
    assert (item.status, item.decided_label) == (Item.Status.ACCEPTED, "negative")


@pytest.mark.django_db(transaction=True)
def test_demo_items_needing_a_label_no_contributor_can_give_go_to_review(demo: Any) -> None:
    # Overlap 3 and four contributors: an item whose three possible labelers disagreed asked for
    # a fourth label nobody can give. It went to review at once (it used to wait forever), and
    # the seed's refit, which re-decides the items in review, then decided it.
    split = [
        item
        for item in Item.objects.filter(project=demo.text_project, label_count=3)
        if len(set(item.annotations.values_list("label", flat=True))) > 1
    ]
    assert split
    for item in split:
        event = AuditEvent.objects.get(action="item.review_stalled", target_id=str(item.pk))
        assert event.details == {"reason": "no contributor left to label it"}
        assert item.status == Item.Status.ACCEPTED and item.decided_label == "positive"


# --- Any fit --------------------------------------------------------------------------------


@st.composite
def any_fit(draw: st.DrawFn) -> dict[str, Any]:
    k = draw(st.integers(2, MAX_CLASSES))
    return {
        "k": k,
        "priors": draw(st.lists(st.floats(0.0, 1e6), min_size=k, max_size=k)),
        "seen": [
            [draw(st.lists(st.floats(1e-9, 1.0), min_size=k, max_size=k)) for _ in range(k)]
            for _ in range(draw(st.integers(0, 3)))
        ],
        "threshold": draw(st.sampled_from([0.8, 0.9, 0.95, 0.99])),
        "winner": draw(st.integers(0, k - 1)),
        "others": draw(st.integers(0, 2)),
        "extra": draw(st.integers(0, 2)),
        "order": draw(st.randoms(use_true_random=False)),
    }


@hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=any_fit())
def test_for_any_fit_a_clear_vote_of_unseen_labelers_is_accepted_with_its_label(
    case: dict[str, Any], make_contributor: Callable[[], Contributor]
) -> None:
    """Any stored fit (priors as skewed as you like, even zero; any confusion matrices for the
    labelers it saw): answers from labelers it hasn't seen, with ``decisive_margin`` more for one
    class than for any other (unanimous, or k-to-1), in any order, decide the item for that
    class."""
    assert_a_clear_vote_decides(case, django_settings.CONSENSUS_DEFAULT_ACCURACY)


@pytest.mark.probation
@hypothesis_settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=any_fit())
def test_for_any_fit_a_clear_vote_of_new_wallets_on_probation_is_accepted_with_its_label(
    case: dict[str, Any],
) -> None:
    """New wallets weigh as labelers of the probation accuracy: their margin is that one's."""
    assert_a_clear_vote_decides(case, django_settings.CONSENSUS_PROBATION_ACCURACY)


def store_fit(
    project: Project, priors: list[float], *, label_count: int, floor: float = 0.0
) -> ConsensusFit:
    """The project's stored fit, as a refit would leave it, with these class priors."""
    fit, _ = ConsensusFit.objects.update_or_create(
        project=project,
        defaults={
            "method": "bayes_ds",
            "priors": priors,
            "default_confusion": np.eye(len(priors)).tolist(),
            "calibration_floor": floor,
            "iterations": 1,
            "converged": True,
            "label_count": label_count,
            "device": "cpu",
            "seconds": 0.0,
            "fitted_at": timezone.now(),
        },
    )
    return fit


def assert_a_clear_vote_decides(case: dict[str, Any], accuracy: float) -> None:
    k = case["k"]
    classes = [f"c{i}" for i in range(k)]
    project = Project.objects.create(
        name="any fit",
        data_kind=Project.DataKind.TEXT,
        classes=classes,
        acceptance_threshold=case["threshold"],
    )
    priors = np.array(case["priors"], dtype=float)
    priors = priors + (1.0 if priors.sum() == 0 else 0.0)  # a stored fit always has some mass
    store_fit(project, (priors / priors.sum()).tolist(), label_count=10**6)
    seen_users = [
        User.objects.create_user(f"seen-{project.pk}-{i}") for i in range(len(case["seen"]))
    ]
    for user, rows in zip(seen_users, case["seen"], strict=True):
        matrix = np.array(rows)
        WorkerSkill.objects.create(
            project=project,
            user=user,
            accuracy=0.5,
            confusion=(matrix / matrix.sum(axis=1, keepdims=True)).tolist(),
            label_count=10**6,
            updated_at=timezone.now(),
        )
    winner = case["winner"]
    losers = [c for c in range(k) if c != winner]
    minority = [losers[i % len(losers)] for i in range(case["others"])]
    top_other = max((minority.count(c) for c in losers), default=0)
    margin = decisive_margin(k, case["threshold"], accuracy)
    votes = [winner] * (top_other + margin + case["extra"]) + minority
    case["order"].shuffle(votes)
    first_unseen = User.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    answers = [(first_unseen + 1000 + i, classes[v]) for i, v in enumerate(votes)]
    decision = model_vote(project, answers)
    assert decision.label == classes[winner]
    assert decision.confidence >= case["threshold"]


@pytest.mark.probation
def test_a_fitted_labeler_on_probation_weighs_no_more_than_the_probation_accuracy(
    make_contributor: Callable[[], Contributor], settings: Any
) -> None:
    """A young wallet whose fit is 0.7 accurate, but who has never answered "bad" on a good item
    (rows shaped by answering "good" nearly always): its one "bad" would be near final, 0.98.
    On probation, no answer weighs more than one of a labeler of the probation accuracy."""
    project = Project.objects.create(
        name="Shaped", data_kind=Project.DataKind.TEXT, classes=["good", "bad"]
    )
    store_fit(project, [0.5, 0.5], label_count=200)
    young = make_contributor().user
    WorkerSkill.objects.create(
        project=project,
        user=young,
        accuracy=0.7,
        confusion=[[0.99, 0.01], [0.6, 0.4]],
        label_count=200,
        updated_at=timezone.now(),
    )
    accuracy = settings.CONSENSUS_PROBATION_ACCURACY
    decision = model_vote(project, [(young.pk, "bad")])
    assert decision.label is None and decision.confidence <= accuracy + 1e-9
    # Out of probation, the fit's rows are theirs.
    settings.PROBATION_LABELS, settings.PROBATION_DAYS = 0, 0
    assert model_vote(project, [(young.pk, "bad")]).label == "bad"


# --- Calibration from gold items --------------------------------------------------------------


def test_gold_items_that_show_a_deceived_crowd_keep_its_verdicts_below_the_threshold(
    make_contributor: Callable[[], Contributor],
) -> None:
    project = Project.objects.create(
        name="Deceptive",
        data_kind=Project.DataKind.TEXT,
        classes=["yes", "no"],
        overlap=5,
        max_labels=5,
    )
    crowd = [make_contributor() for _ in range(5)]
    rng = np.random.default_rng(2)
    for i in range(200):
        truth = ["yes", "no"][i % 2]
        # On one item in five, the whole crowd sees the other class.
        looks = truth if i % 5 else ("no" if truth == "yes" else "yes")
        item = item_create_text(project=project, contributor=None, text=f"item {i}")
        for who in crowd:
            said = looks if rng.random() < 0.9 else ("no" if looks == "yes" else "yes")
            Annotation.objects.create(item=item, annotator=who.user, label=said)
        Item.objects.filter(pk=item.pk).update(
            label_count=5, gold_label=truth if i % 7 == 0 else ""
        )
    fit = project_refit(project_id=project.pk)
    assert fit is not None and fit.calibration_floor > 0.1
    # A fresh item all five label "yes": without gold this was certain. The crowd is right on
    # four unanimous items in five, and that is what the posterior now says: no acceptance.
    decision = model_vote(project, [(who.user.pk, "yes") for who in crowd])
    assert decision.label is None and 0.72 < decision.confidence < 0.88


def test_admin_says_when_a_cautious_floor_puts_the_threshold_out_of_reach(
    admin_client: Any,
) -> None:
    project = Project.objects.create(
        name="One gold item", data_kind=Project.DataKind.TEXT, classes=["yes", "no"]
    )

    # One gold item, answered right: the floor is 0.445 and no posterior passes 0.7775.
    store_fit(project, [0.5, 0.5], label_count=10, floor=0.445)
    page = admin_client.get("/admin/labeling/consensusfit/").content.decode()
    assert "44.5%: no item can reach 0.95 (at most 0.777)" in page
    store_fit(project, [0.5, 0.5], label_count=10, floor=0.06)
    page = admin_client.get("/admin/labeling/consensusfit/").content.decode()
    assert "6.0%" in page and "no item can reach" not in page


# --- Items that can't get their next label ----------------------------------------------------


@pytest.fixture
def small_project(db: None) -> Project:
    return Project.objects.create(
        name="Small crowd",
        data_kind=Project.DataKind.TEXT,
        classes=["cat", "dog"],
        overlap=3,
        max_labels=5,
    )


def test_an_item_nobody_is_left_to_label_goes_to_review_when_it_asks_for_more(
    small_project: Project, make_contributor: Callable[[], Contributor], label: Callable
) -> None:
    uploader, *labelers = [make_contributor() for _ in range(4)]
    item = item_create_text(project=small_project, contributor=uploader.user, text="?")
    for who, value in zip(labelers, ["cat", "dog", "cat"], strict=True):
        label(who, item, value)
    item.refresh_from_db()
    assert item.status == Item.Status.REVIEW and item.required_labels == 3
    event = AuditEvent.objects.get(action="item.review_stalled", target_id=str(item.pk))
    assert event.details == {"reason": "no contributor left to label it"}


def test_with_a_contributor_left_it_asks_for_one_more_label(
    small_project: Project, make_contributor: Callable[[], Contributor], label: Callable
) -> None:
    uploader, *labelers = [make_contributor() for _ in range(5)]
    item = item_create_text(project=small_project, contributor=uploader.user, text="?")
    for who, value in zip(labelers[:3], ["cat", "dog", "cat"], strict=True):
        label(who, item, value)
    item.refresh_from_db()
    assert (item.status, item.required_labels) == (Item.Status.OPEN, 4)


def test_skips_and_bans_count_against_the_labelers_left(
    small_project: Project, make_contributor: Callable[[], Contributor], label: Callable
) -> None:
    uploader, a, b, skipper, banned = [make_contributor() for _ in range(5)]
    item = item_create_text(project=small_project, contributor=uploader.user, text="?")
    serve(item, skipper)
    assert skipper.api.post(f"/api/v1/items/{item.pk}/skip").status_code == 204
    label(a, item, "cat")
    label(b, item, "dog")
    assert items_review_stalled() == 0  # `banned` could still label it
    User.objects.filter(pk=banned.user.pk).update(banned_at=timezone.now())
    assert review_stalled_items() == 1  # the beat task
    item.refresh_from_db()
    assert item.status == Item.Status.REVIEW
    assert items_review_stalled() == 0  # safe to run again


def test_an_item_waiting_longer_than_the_setting_goes_to_review(
    small_project: Project, make_contributor: Callable[[], Contributor], settings: Any
) -> None:
    settings.CONSENSUS_LABEL_WAIT_SECONDS = 3600
    crowd = [make_contributor() for _ in range(6)]
    old, recent, unlabeled = (
        item_create_text(project=small_project, contributor=None, text=t)
        for t in ("old", "recent", "never labeled")
    )
    for item in (old, recent):
        Annotation.objects.create(item=item, annotator=crowd[0].user, label="cat")
        Item.objects.filter(pk=item.pk).update(label_count=1)
    now = timezone.now()
    Annotation.objects.filter(item=old).update(created_at=now - timedelta(hours=2))
    Item.objects.filter(pk__in=[old.pk, recent.pk]).update(created_at=now - timedelta(hours=3))
    Item.objects.filter(pk=unlabeled.pk).update(created_at=now - timedelta(minutes=61))
    gold = item_create_text(project=small_project, contributor=None, text="gold")
    Item.objects.filter(pk=gold.pk).update(gold_label="cat", created_at=now - timedelta(days=9))

    assert items_review_stalled(now=now) == 2
    statuses = dict(Item.objects.values_list("text", "status"))
    assert statuses == {
        "old": Item.Status.REVIEW,
        "recent": Item.Status.OPEN,
        "never labeled": Item.Status.REVIEW,
        "gold": Item.Status.OPEN,
    }
    event = AuditEvent.objects.get(action="item.review_stalled", target_id=str(old.pk))
    assert event.details == {"reason": "no new label for 3600 s"}


def test_a_paused_project_reopened_gives_its_items_the_whole_wait_again(
    small_project: Project, make_contributor: Callable[[], Contributor], settings: Any
) -> None:
    settings.CONSENSUS_LABEL_WAIT_SECONDS = 3600
    for _ in range(6):  # contributors who could label it: only the wait can send it to review
        make_contributor()
    item = item_create_text(project=small_project, contributor=None, text="waited out a pause")
    now = timezone.now()
    Item.objects.filter(pk=item.pk).update(created_at=now - timedelta(days=5))
    small_project.is_open = False
    small_project.save()
    assert items_review_stalled(now=now) == 0  # a closed project's items aren't waiting
    small_project.is_open = True
    small_project.save(update_fields=["is_open"])
    small_project.refresh_from_db()
    assert small_project.reopened_at is not None
    assert items_review_stalled(now=small_project.reopened_at + timedelta(minutes=59)) == 0
    assert items_review_stalled(now=small_project.reopened_at + timedelta(minutes=61)) == 1
    # Saving an open project again is not a reopening.
    reopened = small_project.reopened_at
    small_project.save()
    small_project.refresh_from_db()
    assert small_project.reopened_at == reopened


def test_the_waiting_rule_can_be_turned_off(
    small_project: Project, make_contributor: Callable[[], Contributor], settings: Any
) -> None:
    settings.CONSENSUS_LABEL_WAIT_SECONDS = 0
    [make_contributor() for _ in range(4)]
    item = item_create_text(project=small_project, contributor=None, text="old")
    Item.objects.filter(pk=item.pk).update(created_at=timezone.now() - timedelta(days=30))
    assert items_review_stalled() == 0


@pytest.mark.parametrize("wait", [10**11, 10**15, 10**30])
def test_a_wait_longer_than_the_calendar_never_sends_an_item_to_review(
    small_project: Project, make_contributor: Callable[[], Contributor], settings: Any, wait: int
) -> None:
    """Not a crash of the beat job (before the check for items nobody is left to label)."""
    settings.CONSENSUS_LABEL_WAIT_SECONDS = wait
    [make_contributor() for _ in range(4)]
    item = item_create_text(project=small_project, contributor=None, text="old")
    Item.objects.filter(pk=item.pk).update(created_at=timezone.now() - timedelta(days=3650))
    assert items_review_stalled() == 0


def test_celery_beat_runs_the_check() -> None:
    schedule = django_settings.CELERY_BEAT_SCHEDULE["review-stalled-items"]
    assert schedule["task"] == "labeling.tasks.review_stalled_items"
    assert review_stalled_items.name == schedule["task"]
