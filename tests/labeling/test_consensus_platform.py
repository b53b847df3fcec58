"""The consensus engine in the platform: posterior decisions with adaptive redundancy, full refits
that re-estimate skills, gold items, queue routing and the contributor's profile."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from django.test import TestCase
from django.utils import timezone

from accounts.models import User
from labeling.models import Annotation, ConsensusFit, Item, Project, WorkerSkill
from labeling.services import annotation_create, item_create_text, item_decide, project_refit
from labeling.tasks import refit_projects, refit_route
from rewards.models import LedgerEntry
from tests.conftest import Contributor, flat_rates, serve

pytestmark = pytest.mark.django_db


@pytest.fixture
def ds_project(db: None) -> Project:
    return flat_rates(
        Project.objects.create(
            name="Animals",
            data_kind=Project.DataKind.TEXT,
            classes=["cat", "dog", "bird"],
            consensus_method="dawid_skene",
            overlap=2,
            max_labels=5,
            reward_per_label=10,
            reward_per_item=25,
        )
    )


def committed(action: Callable[[], Any]) -> Any:
    """Run ``action`` and what its transactions enqueued on commit (the decisions' credits), as
    eager Celery would after a real commit."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return action()


@pytest.fixture
def label(django_capture_on_commit_callbacks: Callable) -> Callable[[Contributor, Item, str], None]:
    def post(contributor: Contributor, item: Item, value: str) -> None:
        serve(item, contributor)  # as next-task would have leased it
        with django_capture_on_commit_callbacks(execute=True):
            response = contributor.api.post(
                f"/api/v1/items/{item.pk}/annotations/", {"label": value}, format="json"
            )
        assert response.status_code == 201, response.content

    return post


def test_two_agreeing_labels_are_enough_when_the_posterior_is_sure(
    make_contributor: Callable[[], Contributor], ds_project: Project, label: Callable
) -> None:
    a, b = make_contributor(), make_contributor()
    item = item_create_text(project=ds_project, contributor=None, text="meow")
    label(a, item, "cat")
    label(b, item, "cat")
    item.refresh_from_db()
    assert item.status == Item.Status.ACCEPTED and item.decided_label == "cat"
    assert item.confidence >= ds_project.acceptance_threshold
    assert item.label_count == 2


def test_disagreement_asks_for_more_labels_until_sure_or_review(
    make_contributor: Callable[[], Contributor], ds_project: Project, label: Callable
) -> None:
    crowd = [make_contributor() for _ in range(5)]
    item = item_create_text(project=ds_project, contributor=None, text="tweet")
    label(crowd[0], item, "cat")
    label(crowd[1], item, "bird")
    item.refresh_from_db()
    assert (item.status, item.required_labels) == (Item.Status.OPEN, 3)
    label(crowd[2], item, "bird")
    item.refresh_from_db()
    assert item.status == Item.Status.OPEN and item.confidence < 0.95  # 2 of 3 isn't sure enough
    label(crowd[3], item, "bird")
    item.refresh_from_db()
    assert item.status == Item.Status.ACCEPTED and item.decided_label == "bird"
    assert item.agreement == pytest.approx(3 / 4)
    credited = set(LedgerEntry.objects.filter(reason="label").values_list("user_id", flat=True))
    assert credited == {crowd[1].user.pk, crowd[2].user.pk, crowd[3].user.pk}


def test_an_item_never_sure_goes_to_review_at_max_labels(
    make_contributor: Callable[[], Contributor], ds_project: Project, label: Callable
) -> None:
    ds_project.max_labels = 3
    ds_project.save(update_fields=["max_labels"])
    crowd = [make_contributor() for _ in range(3)]
    item = item_create_text(project=ds_project, contributor=None, text="?")
    for who, value in zip(crowd, ["cat", "dog", "bird"], strict=True):
        label(who, item, value)
    item.refresh_from_db()
    assert item.status == Item.Status.REVIEW
    assert not LedgerEntry.objects.exists()


def accept_at(project: Project, threshold: float, item: Item) -> None:
    """Decide ``item`` under a laxer threshold (as a project configured so would have)."""
    project.acceptance_threshold = threshold
    project.save(update_fields=["acceptance_threshold"])
    committed(lambda: item_decide(item_id=item.pk))
    project.acceptance_threshold = 0.95
    project.save(update_fields=["acceptance_threshold"])


def crowd_history(
    ds_project: Project, good: list[Contributor], adversary: Contributor, n: int, tag: str = ""
) -> list[Item]:
    """Items every good labeler got right and the adversary always got wrong (stored directly,
    as history: the decisions don't matter here, the refit does)."""
    items = []
    for i in range(n):
        truth = ["cat", "dog", "bird"][i % 3]
        wrong = ["dog", "bird", "cat"][i % 3]
        item = item_create_text(project=ds_project, contributor=None, text=f"history {tag}{i}")
        for who in good:
            Annotation.objects.create(item=item, annotator=who.user, label=truth)
        Annotation.objects.create(item=item, annotator=adversary.user, label=wrong)
        Item.objects.filter(pk=item.pk).update(label_count=len(good) + 1, required_labels=99)
        items.append(item)
    return items


def test_a_refit_learns_who_to_trust_and_decides_waiting_items_with_it(
    make_contributor: Callable[[], Contributor], ds_project: Project
) -> None:
    good = [make_contributor() for _ in range(3)]
    adversary = make_contributor()
    crowd_history(ds_project, good, adversary, 30)
    # Waiting in review: one good labeler says cat, the adversary says dog; unsure before the fit.
    waiting = item_create_text(project=ds_project, contributor=None, text="waiting")
    Annotation.objects.create(item=waiting, annotator=good[0].user, label="cat")
    Annotation.objects.create(item=waiting, annotator=adversary.user, label="dog")
    Item.objects.filter(pk=waiting.pk).update(status=Item.Status.REVIEW, label_count=2)

    fit = project_refit(project_id=ds_project.pk)
    assert fit is not None and fit.label_count == 30 * 4 + 2 and fit.method == "dawid_skene"
    skills = dict(WorkerSkill.objects.filter(project=ds_project).values_list("user_id", "accuracy"))
    assert skills[adversary.user.pk] < 0.1
    assert all(skills[g.user.pk] > 0.9 for g in good)
    waiting.refresh_from_db()
    assert waiting.status == Item.Status.ACCEPTED and waiting.decided_label == "cat"
    assert ConsensusFit.objects.get(project=ds_project).priors == pytest.approx(
        [1 / 3] * 3, abs=0.05
    )


def test_a_refit_measures_agreement_and_buyers_see_it_with_the_dataset(
    make_contributor: Callable[[], Contributor],
    ds_project: Project,
    buyer_api: Any,
    django_assert_max_num_queries: Callable,
) -> None:
    good = [make_contributor() for _ in range(3)]
    crowd_history(ds_project, good, make_contributor(), 30)
    [before] = buyer_api.get("/api/v1/datasets/").json()
    assert before["agreement"] is None  # no fit yet

    project_refit(project_id=ds_project.pk)
    with django_assert_max_num_queries(4):
        [dataset] = buyer_api.get("/api/v1/datasets/").json()
    agreement = dataset["agreement"]
    # Every item: three labels agree, one differs. Pairwise agreement 6/12; the classes are
    # balanced, so chance is 1/3 and Fleiss' kappa (1/2 - 1/3) / (2/3) = 1/4.
    assert agreement["percent_agreement"] == pytest.approx(0.5)
    assert agreement["fleiss_kappa"] == pytest.approx(0.25)
    # Krippendorff's alpha corrects kappa for the finite sample: (n - 1) D_o / D_e, n = 120.
    assert agreement["krippendorff_alpha"] == pytest.approx(1 - 119 * 0.5 / (120 * (2 / 3)))
    assert agreement["label_count"] == 120 and agreement["method"] == "dawid_skene"


def test_gold_items_are_never_decided_or_paid_and_count_in_the_skills(
    make_contributor: Callable[[], Contributor], ds_project: Project
) -> None:
    worker = make_contributor()
    gold = [
        item_create_text(project=ds_project, contributor=None, text=f"gold {i}") for i in range(2)
    ]
    Item.objects.filter(pk__in=[g.pk for g in gold]).update(gold_label="cat")
    for g in gold:
        g.refresh_from_db()
        annotation_create(item=g, annotator=worker.user, label="cat", leased_only=False)
        item_decide(item_id=g.pk)
        g.refresh_from_db()
        assert g.status == Item.Status.OPEN and g.decided_label == ""
    assert not LedgerEntry.objects.filter(source__in=[f"item:{g.pk}" for g in gold]).exists()
    project_refit(project_id=ds_project.pk)
    skill = WorkerSkill.objects.get(user=worker.user, project=ds_project)
    assert (skill.gold_answered, skill.gold_correct) == (2, 2)


def test_large_projects_are_refitted_on_their_own_queue_and_on_gpus_when_configured(
    ds_project: Project, settings: Any
) -> None:
    settings.CONSENSUS_LARGE_PROJECT_LABELS = 1000
    assert refit_route(ds_project, 10) == ("celery", "cpu")
    assert refit_route(ds_project, 5000) == ("consensus", "cpu")
    settings.CONSENSUS_GPU_WORKERS = True
    assert refit_route(ds_project, 5000) == ("consensus-gpu", "cuda")
    ds_project.consensus_method = "glad"
    assert refit_route(ds_project, 5000) == ("consensus", "cpu")


def test_large_bayes_ds_refits_go_to_the_gpu_queue_as_dawid_skene_ones_do(
    ds_project: Project, settings: Any
) -> None:
    settings.CONSENSUS_LARGE_PROJECT_LABELS = 1000
    ds_project.consensus_method = "bayes_ds"
    assert refit_route(ds_project, 999) == ("celery", "cpu")
    assert refit_route(ds_project, 1000) == ("consensus", "cpu")
    settings.CONSENSUS_GPU_WORKERS = True
    assert refit_route(ds_project, 999) == ("celery", "cpu")
    assert refit_route(ds_project, 1000) == ("consensus-gpu", "cuda")


def test_a_bayes_ds_refit_on_torch_stores_what_the_numpy_refit_stores(
    make_contributor: Callable[[], Contributor], ds_project: Project
) -> None:
    # torch is an optional extra: skip without it, except under CI=true (see test_torch_backend).
    if os.environ.get("CI") != "true":
        pytest.importorskip("torch")
    Project.objects.filter(pk=ds_project.pk).update(consensus_method="bayes_ds")
    good = [make_contributor() for _ in range(3)]
    items = crowd_history(ds_project, good, make_contributor(), 12)
    Item.objects.filter(pk=items[0].pk).update(gold_label="cat")

    def refit(device: str) -> tuple[ConsensusFit, dict[int, float]]:
        fit = project_refit(project_id=ds_project.pk, device=device)
        assert fit is not None
        skills = WorkerSkill.objects.filter(project=ds_project).values_list("user_id", "accuracy")
        return fit, dict(skills)

    cpu_fit, cpu_skills = refit("cpu")
    torch_fit, torch_skills = refit("torch-cpu")
    assert (cpu_fit.method, cpu_fit.device, torch_fit.device) == ("bayes_ds", "cpu", "torch-cpu")
    assert torch_fit.calibration_floor == pytest.approx(cpu_fit.calibration_floor, abs=1e-8)
    assert torch_fit.calibration_floor > 0
    assert torch_fit.iterations == cpu_fit.iterations
    assert torch_skills.keys() == cpu_skills.keys()
    for user, accuracy in cpu_skills.items():
        assert torch_skills[user] == pytest.approx(accuracy, abs=1e-8)


def test_the_beat_job_refits_every_open_project_with_labels(
    make_contributor: Callable[[], Contributor], ds_project: Project, text_project: Project
) -> None:
    good = [make_contributor() for _ in range(2)]
    crowd_history(ds_project, good, make_contributor(), 3)
    assert refit_projects() == 1  # eager Celery runs it here; the empty project is skipped
    assert ConsensusFit.objects.filter(project=ds_project).exists()
    assert not ConsensusFit.objects.filter(project=text_project).exists()


def test_contributors_see_their_estimated_accuracy(
    make_contributor: Callable[[], Contributor], ds_project: Project, buyer_api: Any
) -> None:
    good = [make_contributor() for _ in range(3)]
    crowd_history(ds_project, good, make_contributor(), 12)
    project_refit(project_id=ds_project.pk)
    profile = good[0].api.get("/api/v1/me/").json()
    assert profile["address"] == good[0].address and profile["labels"] == 12
    [skill] = profile["skills"]
    assert (
        skill["project"] == ds_project.pk and skill["accuracy"] > 0.9 and skill["label_count"] == 12
    )
    from django.test import Client

    browser = Client()
    browser.force_login(good[0].user)
    assert b"My accuracy" in browser.get("/me/rewards/").content


def test_stored_confusions_follow_the_evidence_and_are_never_degenerate(
    make_contributor: Callable[[], Contributor], ds_project: Project
) -> None:
    good = [make_contributor() for _ in range(3)]
    adversary = make_contributor()
    crowd_history(ds_project, good, adversary, 30)
    # A labeler seen on two cat items only: their dog and bird rows have no evidence at all.
    newcomer = make_contributor()
    for item in Item.objects.filter(project=ds_project)[:6:3]:
        Annotation.objects.create(item=item, annotator=newcomer.user, label="cat")
    project_refit(project_id=ds_project.pk)
    rows = np.array(WorkerSkill.objects.get(user=newcomer.user, project=ds_project).confusion)
    assert (rows > 0).all() and np.allclose(rows.sum(axis=1), 1.0)
    # Two answers against a prior worth two: half their own estimate, half the one-coin labeler.
    np.testing.assert_allclose(rows[0], [(2 + 2 * 0.8) / 4, 0.2 / 4, 0.2 / 4], atol=0.02)
    # No evidence: the one-coin row of CONSENSUS_DEFAULT_ACCURACY, so their answers still count.
    np.testing.assert_allclose(rows[1:], [[0.1, 0.8, 0.1], [0.1, 0.1, 0.8]], atol=1e-6)
    prolific = np.array(WorkerSkill.objects.get(user=good[0].user, project=ds_project).confusion)
    assert np.diagonal(prolific).min() > 0.9  # 30 answers outweigh the prior


@dataclass
class Contest:
    good: list[Contributor]
    adversaries: list[Contributor]
    item: Item


def contested(make_contributor: Callable[[], Contributor], ds_project: Project) -> Contest:
    """An undecided item two adversaries answered "dog" and one good labeler "cat", in a project
    whose history shows who the adversaries are."""
    good = [make_contributor() for _ in range(3)]
    adversaries = [make_contributor() for _ in range(2)]
    for n, adversary in enumerate(adversaries):
        crowd_history(ds_project, good, adversary, 15, tag=f"{n}-")
    item = item_create_text(project=ds_project, contributor=None, text="contested")
    for who, value in [(adversaries[0], "dog"), (adversaries[1], "dog"), (good[0], "cat")]:
        annotation_create(item=item, annotator=who.user, label=value, leased_only=False)
    return Contest(good, adversaries, item)


@pytest.fixture
def contest(make_contributor: Callable[[], Contributor], ds_project: Project) -> Contest:
    """The ``contested`` item, accepted before any fit: the adversaries outvoted the good
    labeler."""
    contest = contested(make_contributor, ds_project)
    accept_at(ds_project, 0.8, contest.item)
    contest.item.refresh_from_db()
    return contest


def test_a_refit_re_decides_an_accepted_item_whose_credits_are_unpaid(
    contest: Contest, ds_project: Project, chain: Any
) -> None:
    from rewards.models import PayoutBatch
    from rewards.selectors import reward_summary_for_user
    from rewards.services import payouts_settle

    item, good, adversaries = contest.item, contest.good, contest.adversaries
    assert (item.status, item.decided_label, item.decision_version) == (
        Item.Status.ACCEPTED,
        "dog",
        1,
    )
    assert {e.user_id for e in LedgerEntry.objects.filter(item=item)} == {
        a.user.pk for a in adversaries
    }

    committed(lambda: project_refit(project_id=ds_project.pk))
    item.refresh_from_db()
    assert (item.decided_label, item.decision_version) == ("cat", 2)
    balances = {
        a.user.pk: sum(e.amount for e in LedgerEntry.objects.filter(item=item, user=a.user))
        for a in adversaries
    }
    assert balances == {a.user.pk: 0 for a in adversaries}  # credited 10, reversed -10
    assert sum(e.amount for e in LedgerEntry.objects.filter(item=item, user=good[0].user)) == 10

    # Settlement pays the net: the adversaries are owed nothing for this item.
    payouts_settle(client=chain)
    assert chain.balance_of(good[0].address) == 10
    assert all(chain.balance_of(a.address) == 0 for a in adversaries)
    assert reward_summary_for_user(user=adversaries[0].user).pending == 0
    assert PayoutBatch.objects.get().recipient_count == 1


def test_a_refit_never_overturns_a_moderators_decision(
    make_contributor: Callable[[], Contributor], ds_project: Project, moderator: Any
) -> None:
    """The contested item of ``contest``, decided by a moderator instead: the refit that would
    re-decide it (the test above) leaves it, and credits nobody the moderator overruled."""
    from labeling.services.decisions import item_override

    contest = contested(make_contributor, ds_project)
    item, good = contest.item, contest.good
    committed(lambda: item_override(item=item, label="dog", moderator=moderator))
    committed(lambda: project_refit(project_id=ds_project.pk))
    item.refresh_from_db()
    assert (item.decided_label, item.decision_version) == ("dog", 1)
    assert not LedgerEntry.objects.filter(item=item, user=good[0].user).exists()
    assert not LedgerEntry.objects.filter(reason="reversal").exists()


def test_a_paid_item_is_never_re_decided(contest: Contest, ds_project: Project, chain: Any) -> None:
    from rewards.services import payouts_settle

    payouts_settle(client=chain)
    committed(lambda: project_refit(project_id=ds_project.pk))
    contest.item.refresh_from_db()
    assert (contest.item.decided_label, contest.item.decision_version) == ("dog", 1)
    assert not LedgerEntry.objects.filter(reason="reversal").exists()


def test_a_fit_from_before_the_classes_changed_is_ignored(
    make_contributor: Callable[[], Contributor], ds_project: Project, label: Callable
) -> None:
    good = [make_contributor() for _ in range(3)]
    crowd_history(ds_project, good, make_contributor(), 6)
    project_refit(project_id=ds_project.pk)
    ds_project.classes = ["cat", "dog"]
    ds_project.save(update_fields=["classes"])
    item = item_create_text(project=ds_project, contributor=None, text="after the change")
    label(good[0], item, "cat")
    label(good[1], item, "cat")
    item.refresh_from_db()  # new labelers of 0.8 on two classes: 0.94 isn't sure enough
    assert item.status == Item.Status.OPEN and item.confidence == pytest.approx(0.64 / 0.68)
    label(good[2], item, "cat")
    item.refresh_from_db()
    assert item.status == Item.Status.ACCEPTED and item.decided_label == "cat"


@pytest.mark.probation
def test_a_refit_relabels_an_accepted_item_only_if_the_online_rule_agrees(
    make_contributor: Callable[[], Contributor], settings: Any
) -> None:
    """Six new wallets answer "bad" on an item three established labelers accepted as "good". A
    batch fit that trusts the ring would relabel it; the online rule weighs each new wallet as a
    labeler of the probation accuracy (0.919 for "bad", under 0.95), so the item stays "good"
    while they are on probation, and changes once they are not."""
    from labeling.services.decisions import _redecide_accepted

    settings.PROBATION_LABELS = 0  # probation by the account's age alone
    project = Project.objects.create(
        name="Ring", data_kind=Project.DataKind.TEXT, classes=["good", "bad"], overlap=3
    )
    established = [make_contributor() for _ in range(3)]
    User.objects.filter(pk__in=[c.user.pk for c in established]).update(
        date_joined=timezone.now() - timedelta(days=settings.PROBATION_DAYS + 1)
    )
    item = item_create_text(project=project, contributor=None, text="accepted")
    for who in established:
        annotation_create(item=item, annotator=who.user, label="good", leased_only=False)
    committed(lambda: item_decide(item_id=item.pk))
    item.refresh_from_db()
    assert (item.status, item.decided_label) == (Item.Status.ACCEPTED, "good")
    for who in [make_contributor() for _ in range(6)]:
        Annotation.objects.create(item=item, annotator=who.user, label="bad")

    def refit_says_bad() -> None:
        # What a batch fit trusting the ring returns for the item.
        labels, posteriors = np.array([1]), np.array([[0.01, 0.99]])
        _redecide_accepted(project, labels, posteriors, {item.pk: 0}, project.classes)

    committed(refit_says_bad)
    item.refresh_from_db()
    assert (item.decided_label, item.decision_version) == ("good", 1)

    settings.PROBATION_DAYS = 0  # the ring is out of probation: 6 to 3 at 0.8 is 0.985
    committed(refit_says_bad)
    item.refresh_from_db()
    assert (item.decided_label, item.decision_version) == ("bad", 2)
