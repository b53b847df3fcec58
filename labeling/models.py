"""Projects (collection campaigns), their data items, and the crowd's annotations of them."""

from __future__ import annotations

import unicodedata
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from rewards.fields import TokenAmountField

MAX_CLASSES = 9  # the labeling page binds keys 1-9
# A class is an answer's label and a decision's: the label columns hold 100 characters.
CLASS_NAME_MAX = 100


class ConsensusMethod(models.TextChoices):
    BAYES_DS = "bayes_ds", "Bayesian Dawid-Skene"
    MAJORITY_VOTE = "majority_vote", "Majority vote"
    WAWA = "wawa", "Wawa (worker agreement with aggregate)"
    ZBS = "zbs", "Zero-based skill"
    DAWID_SKENE = "dawid_skene", "Dawid-Skene"
    ONE_COIN = "one_coin", "One-coin Dawid-Skene"
    GLAD = "glad", "GLAD"
    MACE = "mace", "MACE"


class Project(models.Model):
    class DataKind(models.TextChoices):
        TEXT = "text", "Text"
        IMAGE = "image", "Image"

    class Task(models.TextChoices):
        CLASSIFY = "classify", "Pick one class"
        MULTILABEL = "multilabel", "Pick every class that applies"
        BOXES = "boxes", "Draw boxes (images)"
        SPANS = "spans", "Mark spans (texts)"
        PAIRWISE = "pairwise", "Choose the better of two"

    class FraudPolicy(models.TextChoices):
        HOLD = "hold", "Hold: their answers leave consensus until a moderator reviews the flag"
        COUNT = "count", "Count: their answers still count; only their rewards are held"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    data_kind = models.CharField(max_length=8, choices=DataKind.choices)
    task = models.CharField(
        max_length=12,
        choices=Task.choices,
        default=Task.CLASSIFY,
        help_text="What contributors do with each item (labeling.answers).",
    )
    question = models.CharField(
        max_length=300, blank=True, help_text="The question the labeling page asks."
    )
    guidelines = models.TextField(
        blank=True, help_text="How to answer, with examples; shown beside every item."
    )
    classes = models.JSONField(help_text='Label class names, e.g. ["cat", "dog"] (2 to 9).')
    overlap = models.PositiveSmallIntegerField(
        default=3, help_text="Labels an item gets before its first decision (the minimum)."
    )
    max_labels = models.PositiveSmallIntegerField(
        default=7,
        help_text="Ties ask for one more label, up to this; then the item goes to review.",
    )
    reward_per_label = TokenAmountField(
        default=0, help_text="Paid per accepted label, in units of the payout asset (e.g. 2.5)."
    )
    reward_per_item = TokenAmountField(
        default=0,
        help_text="Paid per accepted contribution, in units of the payout asset (e.g. 2.5).",
    )
    consensus_method = models.CharField(
        max_length=16,
        choices=ConsensusMethod.choices,
        default=ConsensusMethod.BAYES_DS,
        help_text="How the crowd's labels are turned into a decision.",
    )
    acceptance_threshold = models.FloatField(
        default=0.95,
        help_text="Accept an item once its posterior reaches this (model methods; ignored by majority vote).",
    )
    agreement_threshold = models.FloatField(
        default=0.5,
        help_text="Multi-label, boxes and spans: an answer agrees with the decision (and is "
        "paid) at this similarity: Jaccard, mean IoU, character F1.",
    )
    spans_may_overlap = models.BooleanField(default=False)
    lease_seconds = models.PositiveIntegerField(
        default=600, help_text="How long an item served to a contributor is theirs to answer."
    )
    daily_upload_quota = models.PositiveIntegerField(
        default=200, help_text="Uploads per contributor per day (UTC); 0 closes uploads."
    )
    min_seconds_per_label = models.FloatField(
        default=0.5,
        help_text="An answer given sooner than this after the item was shown is faster than a "
        "person can read it (the speed check flags contributors who answer so, often).",
    )
    fraud_policy = models.CharField(
        max_length=8,
        choices=FraudPolicy.choices,
        default=FraudPolicy.HOLD,
        help_text="What an open fraud flag does to a contributor's answers in this project.",
    )
    licence = models.CharField(max_length=100, default="CC-BY-4.0")
    price = TokenAmountField(
        default=0,
        help_text="What a buyer pays for the dataset on-chain, in units of the payout asset "
        "(POST /api/v1/datasets/{id}/purchase); 0: not sold on-chain, moderators grant it.",
    )
    is_open = models.BooleanField(default=True)
    reopened_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When the project last reopened after a pause: an item's wait for its next "
        "label (CONSENSUS_LABEL_WAIT_SECONDS) counts from here at the earliest.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1), name="project_overlap_positive"),
            models.CheckConstraint(
                condition=Q(max_labels__gte=F("overlap")), name="project_max_labels_gte_overlap"
            ),
            models.CheckConstraint(
                condition=Q(reward_per_label__gte=0), name="project_reward_per_label_nonneg"
            ),
            models.CheckConstraint(
                condition=Q(reward_per_item__gte=0), name="project_reward_per_item_nonneg"
            ),
            models.CheckConstraint(condition=Q(price__gte=0), name="project_price_nonneg"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Reopening starts every item's wait afresh: the pause was nobody's failure to label.
        fields = kwargs.get("update_fields")
        if self.pk is not None and self.is_open and (fields is None or "is_open" in fields):
            stored = Project.objects.filter(pk=self.pk).values_list("is_open", flat=True).first()
            if stored is False:
                self.reopened_at = timezone.now()
                if fields is not None:
                    kwargs["update_fields"] = {*fields, "reopened_at"}
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if self.task == Project.Task.PAIRWISE:
            self.classes = ["a", "b"]  # the two sides of a pair
        if self.task == Project.Task.BOXES and self.data_kind != Project.DataKind.IMAGE:
            raise ValidationError({"task": "Boxes are drawn on images: choose the image kind."})
        if self.task == Project.Task.SPANS and self.data_kind != Project.DataKind.TEXT:
            raise ValidationError({"task": "Spans are marked in texts: choose the text kind."})
        threshold = self.acceptance_threshold
        if threshold is not None and not 0.5 < threshold < 1.0:
            # At 0.5 two classes can tie at the threshold (the first would be accepted); 1 is
            # reached by no posterior with a calibration floor, and by few without.
            raise ValidationError(
                {"acceptance_threshold": "The acceptance threshold is above 0.5 and below 1."}
            )
        classes = self.classes
        if not isinstance(classes, list) or not all(
            isinstance(c, str) and c.strip() for c in classes
        ):
            raise ValidationError({"classes": "Give a list of non-empty class names."})
        if any(len(c) > CLASS_NAME_MAX for c in classes):
            raise ValidationError(
                {"classes": f"A class name has at most {CLASS_NAME_MAX} characters."}
            )
        if any(unicodedata.category(ch) == "Cc" for c in classes for ch in c):
            # NUL above all: PostgreSQL's JSON cannot hold it (a 500 on saving the project).
            raise ValidationError(
                {"classes": "Class names may not contain control characters (tabs, newlines)."}
            )
        self._clean_labeled()
        if not 2 <= len(classes) <= MAX_CLASSES:
            raise ValidationError({"classes": f"A project has 2 to {MAX_CLASSES} classes."})
        if len(set(classes)) != len(classes):
            raise ValidationError({"classes": "Class names must be distinct."})

    def _clean_labeled(self) -> None:
        """Once the project is labeled, its task and data kind stay, classes may only be added at
        the end, and overlapping spans, once allowed, stay allowed.

        Answers, decisions and gold answers name classes by name, and a class's position is its
        code (YOLO and COCO exports, stored consensus fits' confusion matrices): a renamed,
        removed or reordered class left accepted records naming no class (exports failed with a
        KeyError) or another one. Raises ``ValidationError`` on the field changed.
        """
        if self.pk is None:
            return
        stored = (
            Project.objects.filter(pk=self.pk)
            .values_list("task", "data_kind", "classes", "spans_may_overlap")
            .first()
        )
        if stored is None or not _project_is_labeled(self.pk):
            return
        task, data_kind, stored_classes, overlapped = stored
        errors: dict[str, str] = {}
        if overlapped and not self.spans_may_overlap:
            # Stored answers may hold overlapping spans of different classes, which a vote
            # over all classes at once can't take (their items' decisions failed).
            errors["spans_may_overlap"] = (
                "Spans may already overlap in the project's answers: this stays on once the "
                "project has answers, decisions or gold answers."
            )
        for field, name, was in (("task", "task", task), ("data_kind", "data kind", data_kind)):
            if getattr(self, field) != was:
                errors[field] = (
                    f"The {name} can't change once the project has answers, decisions or gold "
                    "answers: create a new project."
                )
        kept = list(stored_classes or [])
        if self.classes[: len(kept)] != kept:
            errors["classes"] = (
                "The project has answers, decisions or gold answers: keep every class, in "
                f"the same order ({', '.join(kept)}), and add new ones after them."
            )
        if errors:
            raise ValidationError(errors)


def _project_is_labeled(project_id: int) -> bool:
    """Whether anything stored names one of the project's classes: an answer, a decision (an
    item decided before decisions were recorded has its decided_label alone) or a gold answer."""
    if Annotation.objects.filter(item__project_id=project_id).exists():
        return True
    return (
        Item.objects.filter(project_id=project_id)
        .filter(~Q(decided_label="") | ~Q(gold_label="") | Q(decision_version__gt=0))
        .exists()
    )


def item_upload_to(item: Item, filename: str) -> str:
    return f"items/{item.project_id}/{item.content_sha256[:2]}/{filename}"


class Item(models.Model):
    """One data item of a project: a text or an image, and the crowd's decision about it."""

    class Status(models.TextChoices):
        OPEN = "open", "Collecting labels"
        ACCEPTED = "accepted", "Accepted"
        REVIEW = "review", "Needs review"
        REJECTED = "rejected", "Rejected"

    class WithdrawnReason(models.TextChoices):
        """Why an accepted record left the dataset (buyers' tombstones say it)."""

        REOPENED = "reopened", "Reopened: its counted answers no longer decide it"
        BANNED_LABELER = "banned_labeler", "Reopened: a labeler of it was banned"
        FRAUD_FLAG = "fraud_flag", "Reopened: a labeler of it is held by a fraud flag"

    # No index of its own: (project, status, id) below serves every lookup by project. A
    # single-column project index was the one PostgreSQL picked, on a fresh project whose
    # statistics were stale, for the duplicate check (reading every item of the project).
    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, related_name="items", db_index=False
    )
    contributor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="contributions",
    )
    text = models.TextField(blank=True)
    image = models.FileField(upload_to=item_upload_to, blank=True)
    image_format = models.CharField(max_length=8, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    # Pairwise items: the second text or image ("b"; the first is "a").
    text_b = models.TextField(blank=True)
    image_b = models.FileField(upload_to=item_upload_to, blank=True)
    image_b_format = models.CharField(max_length=8, blank=True)
    width_b = models.PositiveIntegerField(null=True, blank=True)
    height_b = models.PositiveIntegerField(null=True, blank=True)
    licence = models.CharField(
        max_length=100, blank=True, help_text="The licence the contributor accepted at upload."
    )
    near_hash = models.CharField(
        max_length=72,  # "t" + 64 hex digits for texts: 64 refused every text on PostgreSQL
        blank=True,
        help_text="Perceptual hash (images) or normalised-text hash, for near-duplicates.",
    )
    size_bytes = models.PositiveIntegerField(default=0)
    content_sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    label_count = models.PositiveIntegerField(default=0)
    required_labels = models.PositiveSmallIntegerField(
        help_text="Answers wanted, counting those left out of consensus (excluded_labels)."
    )
    excluded_labels = models.PositiveSmallIntegerField(
        default=0,
        help_text="Answers of banned or flagged contributors left out of this item's decision; "
        "each is made up for by one more answer wanted.",
    )
    decided_label = models.CharField(max_length=100, blank=True)
    decided_value = models.JSONField(
        default=dict, blank=True, help_text="The decision in the task's shape (labeling.answers)."
    )
    decision_version = models.PositiveIntegerField(
        default=0, help_text="How many times it was accepted."
    )
    agreement = models.FloatField(
        null=True, blank=True, help_text="Share of labels equal to the decision."
    )
    confidence = models.FloatField(
        null=True, blank=True, help_text="Posterior probability of the decision."
    )
    gold_label = models.CharField(
        max_length=100,
        blank=True,
        help_text="Known answer: a gold task that measures contributors' skill.",
    )
    gold_since = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When a moderator made it gold after it was created: answers given before "
        "then saw an ordinary item, so they earn no gold bonus and count neither for nor against "
        "gold accuracy. Empty: gold from the start (or never made gold). Kept while it isn't "
        "gold, for a re-gold with no answers in between.",
    )
    gold_version = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text="How many times a moderator changed its gold answer (set, corrected or "
        "cleared): a gold bonus is credited at most once per answer and version "
        "(gold:<answer id>, then gold:<answer id>:<version>).",
    )
    gold_cleared_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When a moderator last cleared its gold answer: an answer given after then saw "
        "an ordinary item, so a re-gold then counts only answers from the re-gold on.",
    )
    gold_changed_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When a moderator last changed its gold answer (set, corrected or cleared): "
        "the periodic sweep settles the bonuses of the items changed recently, whatever the "
        "age of their answers, in case the settling task after the change was lost.",
    )
    prelabel = models.JSONField(
        default=dict,
        blank=True,
        help_text="An answer imported from another tool (labeling.imports), in the task's shape: "
        "for moderators; never shown to contributors, whose answers it would anchor.",
    )
    gold_explanation = models.TextField(
        blank=True, help_text="Shown to a contributor who got this gold item wrong."
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When its acceptance was last taken back (a recheck reopened it): buyers' "
        "incremental syncs get a tombstone for it. Cleared when it is accepted again.",
    )
    withdrawn_reason = models.CharField(
        max_length=16, choices=WithdrawnReason.choices, blank=True, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # The content hash leads, so the duplicate check can ask by hash alone (see
            # labeling.services.items.item_id_with_content): no project index can serve that.
            models.UniqueConstraint(
                fields=["content_sha256", "project"], name="item_unique_content_per_project"
            ),
            models.CheckConstraint(
                condition=~Q(status="accepted")
                | (~Q(decided_label="") & Q(decided_at__isnull=False)),
                name="item_accepted_has_decision",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "status", "id"]),
            # Declared here rather than with db_index on the field: on PostgreSQL that also
            # built a second, pattern-matching index that no query uses and every insert paid.
            models.Index(fields=["near_hash"], name="item_near_hash"),
            # Buyers' tombstones (market.records): the items of a project withdrawn after a
            # cursor. Partial: only the few items ever withdrawn are in it.
            models.Index(
                fields=["project", "withdrawn_at"],
                name="item_withdrawn",
                condition=Q(withdrawn_at__isnull=False),
            ),
            # The gold sweep's items changed recently (rewards.services.gold_items_settle_changed).
            # Partial: only the few items a moderator ever made gold or changed are in it.
            models.Index(
                fields=["gold_changed_at", "id"],
                name="item_gold_changed",
                condition=Q(gold_changed_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        # By project and id, as moderators name them ("Sentiment #13"); lists that show many
        # items select their projects with them.
        return f"{self.project.name} #{self.pk}"

    def clean(self) -> None:
        if self.gold_label and self.gold_label not in (self.project.classes or []):
            raise ValidationError(
                {
                    "gold_label": f"{self.gold_label!r} is not a class of this project: "
                    f"choose one of {', '.join(self.project.classes)}"
                }
            )


class Annotation(models.Model):
    # Both foreign keys are served by the indexes below (an index fewer to write per answer):
    # the unique (item, annotator) for an item's answers, (annotator, id) for a labeler's, in
    # order (the fraud check reads their latest).
    item = models.ForeignKey(
        Item, on_delete=models.CASCADE, related_name="annotations", db_index=False
    )
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="annotations",
        db_index=False,
    )
    label = models.CharField(
        max_length=100, help_text='The class (classify), "a"/"b" (pairwise) or a summary.'
    )
    value = models.JSONField(
        default=dict, blank=True, help_text="The answer in its task's shape (labeling.answers)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # The race between two submissions of one contributor is settled here, not in Python.
            models.UniqueConstraint(
                fields=["item", "annotator"], name="annotation_one_per_annotator"
            ),
        ]
        indexes = [models.Index(fields=["annotator", "id"], name="annotation_by_annotator")]

    def __str__(self) -> str:
        return f"{self.annotator} → {self.label} on item {self.item_id}"


class DecisionDue(models.Model):
    """An item that has the labels it asked for and waits for its decision: the decisions' work
    queue, in the database. A submit adds the row in the statement that counts the label; the
    decision that claims it deletes it in the transaction that decides the item, so a crash
    leaves it queued (``labeling.services.items_decide_due``)."""

    item = models.OneToOneField(
        Item, on_delete=models.CASCADE, primary_key=True, related_name="decision_due"
    )
    due_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"item {self.item_id} due since {self.due_at:%Y-%m-%d %H:%M:%S}"


class Skip(models.Model):
    """A contributor passed on an item (unclear, or outside what they know): it is not served to
    them again. Others still get it; a skip is not a label and earns nothing."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="skips")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="skips"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "user"], name="skip_once_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} skipped item {self.item_id}"


class Assignment(models.Model):
    """The lease of an item served to a contributor by ``next-task``.

    While it is live (not answered, not released, ``expires_at`` ahead: the project's
    ``lease_seconds``) it counts against the labels the item still needs, so concurrent
    contributors are never handed more leases than an item needs; only the holder may answer the
    item, and fetch its content. Answering ends it (``answered_at``); skipping releases it
    (``released_at``); expiry releases it by itself. ``shown_at`` is when the page reported
    showing it (fraud checks compare it with the answer's time).
    """

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="assignments")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    served_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    shown_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "user"], name="assignment_one_per_user"),
        ]
        indexes = [
            models.Index(fields=["user", "expires_at"]),
            models.Index(fields=["item", "expires_at"]),
        ]

    def __str__(self) -> str:
        return f"item {self.item_id} served to {self.user} at {self.served_at:%Y-%m-%d %H:%M}"


class WorkerSkill(models.Model):
    """A contributor's estimated quality in one project, from the last full consensus fit."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="worker_skills")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="skills"
    )
    accuracy = models.FloatField()
    confusion = models.JSONField(help_text="K x K: P(answers l | truth k), rows in class order.")
    label_count = models.PositiveIntegerField()
    gold_answered = models.PositiveIntegerField(default=0)
    gold_correct = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="worker_skill_one_per_project")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project}: {self.accuracy:.2f}"


class ConsensusFit(models.Model):
    """The last full fit of a project's consensus model: class priors and how it went."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="consensus_fit")
    method = models.CharField(max_length=16)
    priors = models.JSONField()
    default_confusion = models.JSONField(
        help_text=(
            "The fit's average labeler, for moderators. Decisions count a labeler the fit "
            "hasn't seen as a one-coin labeler of CONSENSUS_DEFAULT_ACCURACY."
        )
    )
    calibration_floor = models.FloatField(
        default=0.0,
        help_text=(
            "Share of items on which, judging by the gold items, the crowd's labels carry no "
            "information; every posterior is mixed with that much of a uniform one (0: no gold)."
        ),
    )
    iterations = models.PositiveIntegerField()
    converged = models.BooleanField()
    label_count = models.PositiveIntegerField()
    device = models.CharField(max_length=16)
    seconds = models.FloatField()
    fitted_at = models.DateTimeField()
    # Inter-annotator agreement over the items with two labels or more (None: undefined, e.g.
    # fewer than two such labels, or every label the same class).
    percent_agreement = models.FloatField(null=True, blank=True)
    fleiss_kappa = models.FloatField(null=True, blank=True)
    krippendorff_alpha = models.FloatField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.method} fit of {self.project} at {self.fitted_at:%Y-%m-%d %H:%M}"


class Decision(models.Model):
    """A decision about an item, recorded as a fact: the label, how sure, from which labels.

    Every acceptance (by the crowd online, by a refit, or by a moderator) appends one, versioned
    per item. The rewards app turns each into ledger entries (once: ``DecisionCredit``); labeling
    itself never touches money. The policy inputs are here: the posterior, the number of classes,
    and, for each agreeing label, its labeler's estimated accuracy when it was decided.
    """

    class DecidedBy(models.TextChoices):
        CROWD = "crowd", "The crowd's consensus"
        REFIT = "refit", "A refit of the consensus model"
        MODERATOR = "moderator", "A moderator"
        RECHECK = "recheck", "Re-decided when a labeler was banned, flagged or cleared"

    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="decisions")
    version = models.PositiveIntegerField(help_text="The item's decision_version it set.")
    label = models.CharField(
        max_length=100, blank=True, help_text="Empty: the acceptance was taken back."
    )
    value = models.JSONField(
        default=dict, blank=True, help_text="The decision in its task's shape."
    )
    posterior = models.FloatField(help_text="Probability of the label (1.0 for a moderator).")
    agreement = models.FloatField(null=True, blank=True)
    method = models.CharField(max_length=16)
    decided_by = models.CharField(max_length=10, choices=DecidedBy.choices)
    moderator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    n_classes = models.PositiveSmallIntegerField()
    agreeing = models.JSONField(
        default=list,
        help_text='The labels that agree: [{"annotation": id, "user": id, "accuracy": a|null}].',
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "version"], name="decision_once_per_version"),
        ]

    def __str__(self) -> str:
        return f"item {self.item_id} v{self.version}: {self.label} ({self.decided_by})"


def gold_answer_q() -> Q:
    """The condition on an ``Annotation`` that it is a gold answer (``gold_answers``), for
    filters and ``Count(..., filter=...)``."""
    return Q(item__gold_label__gt="") & (
        Q(item__gold_since__isnull=True) | Q(created_at__gte=F("item__gold_since"))
    )


def gold_answers(answers: models.QuerySet[Annotation]) -> models.QuerySet[Annotation]:
    """Of ``answers``, those given to a gold item while it was gold: the ones that earn a gold
    bonus and count for (or against) a contributor's gold accuracy, probation and the gold rate.
    An answer given before its item was made gold saw an ordinary item and counts as one."""
    return answers.filter(gold_answer_q())
