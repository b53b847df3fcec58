"""Money: an append-only ledger of credits in token base units, and the batches that pay them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from rewards.asset import payout_asset
from rewards.fields import TokenAmountField


class LedgerEntry(models.Model):
    """One credit (or correction) to a user. Never updated or deleted: balances are sums.

    A re-decided item's unpaid label credits are cancelled by reversal entries (negative), which
    net against the user's other unpaid credits when they are paid; so is a gold bonus its answer
    no longer deserves, paid or not (a paid one comes off the user's next payout).

    ``(reason, source)`` is unique, so the same accepted item or label can't be credited twice,
    whatever retries or races happen.
    """

    class Reason(models.TextChoices):
        CONTRIBUTION = "contribution", "Accepted contribution"
        LABEL = "label", "Accepted label"
        GOLD = "gold", "Gold answer bonus"
        ADJUSTMENT = "adjustment", "Moderator adjustment"
        REVERSAL = "reversal", "Reversal of an unpaid credit"
        BUDGET = "budget", "Scaled down to the epoch's budget"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    amount = TokenAmountField()
    reason = models.CharField(max_length=16, choices=Reason.choices)
    source = models.CharField(
        max_length=64, help_text="What earned it, e.g. item:12 or annotation:40."
    )
    project = models.ForeignKey(
        "labeling.Project", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    item = models.ForeignKey(
        "labeling.Item",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The item whose decision earned it.",
    )
    memo = models.CharField(max_length=200, blank=True)
    policy_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="The project's reward policy version that set the amount."
    )
    epoch = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="The budget epoch it was credited in (hours since 1970 / REWARD_EPOCH_HOURS).",
    )
    policy_inputs = models.JSONField(
        default=dict, blank=True, help_text="What the policy computed the amount from."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.UniqueConstraint(
                fields=["reason", "source"], name="ledger_entry_once_per_source"
            ),
            # Credits are positive; only a reversal and a budget reduction are negative.
            models.CheckConstraint(
                condition=Q(amount__gt=0)
                | (Q(reason__in=["reversal", "budget"]) & Q(amount__lt=0)),
                name="ledger_entry_amount_sign",
            ),
        ]

    def __str__(self) -> str:
        return f"{payout_asset().format(self.amount)} to {self.user} for {self.source}"


class PayoutBatch(models.Model):
    """One transaction paying many wallets: ``batchMint`` of the platform's token, or
    ``batchTransfer`` of an existing ERC-20 through the RewardDistributor.

    ``batch_id`` is the contract-level idempotency key: the contract refuses a batch id it has
    already processed, so re-sending a batch after a crash can never pay twice. The signed
    transaction and its hash are recorded before broadcast. ``receipts_root`` is the Merkle root
    of the batch's receipts (one per allocated ledger entry), which the contract stores with it.
    """

    class Mode(models.TextChoices):
        MINT = "mint", "Mint the platform's token"
        ERC20 = "erc20", "Transfer an existing ERC-20"

    class Status(models.TextChoices):
        PREPARED = "prepared", "Prepared"
        SUBMITTED = "submitted", "Submitted"
        CONFIRMED = "confirmed", "Confirmed"
        FAILED = "failed", "Failed"

    batch_id = models.CharField(max_length=66, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PREPARED)
    chain_id = models.PositiveBigIntegerField()
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.MINT)
    token_address = models.CharField(
        max_length=42, help_text="The payout contract: the token (mint) or the distributor."
    )
    receipts_root = models.CharField(
        max_length=66, blank=True, help_text="Merkle root of the batch's receipts (0x hex)."
    )
    recipient_count = models.PositiveIntegerField()
    total = TokenAmountField()
    tx_hash = models.CharField(max_length=66, blank=True)
    tx_nonce = models.PositiveBigIntegerField(null=True, blank=True)
    raw_tx = models.TextField(
        blank=True, help_text="The signed transaction, hex: re-broadcast as is."
    )
    attempts = models.JSONField(
        default=list, blank=True, help_text="Earlier tx hashes of this batch."
    )
    block_number = models.PositiveBigIntegerField(null=True, blank=True)
    gas_used = models.PositiveBigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    held_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    held_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A moderator put it on hold: it is not sent until approved.",
    )
    hold_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "payout batches"
        permissions = [("approve_payoutbatch", "Can approve, hold and settle payout batches")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="prepared") | Q(status="failed") | ~Q(tx_hash=""),
                name="payout_batch_hash_recorded_before_broadcast",
            ),
        ]

    def __str__(self) -> str:
        return f"Batch {self.batch_id[:10]}… ({self.status})"


class PayoutTransfer(models.Model):
    """What one wallet receives in a batch: the sum of its allocated credits."""

    batch = models.ForeignKey(PayoutBatch, on_delete=models.CASCADE, related_name="transfers")
    wallet_address = models.CharField(max_length=42)
    amount = TokenAmountField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "wallet_address"], name="payout_transfer_one_per_wallet"
            ),
        ]

    def __str__(self) -> str:
        return f"{payout_asset().format(self.amount)} to {self.wallet_address}"


class PayoutAllocation(models.Model):
    """Puts one credit into one live batch. A credit is in at most one batch at a time (unique);
    it is paid when that batch is confirmed. A failed batch's allocations are released.

    ``receipt`` is the credit's receipt as it was when the batch was made (what its Merkle
    ``leaf`` commits to); it never changes afterwards.
    """

    entry = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, related_name="allocation")
    batch = models.ForeignKey(PayoutBatch, on_delete=models.PROTECT, related_name="allocations")
    receipt = models.JSONField(default=dict)
    leaf = models.CharField(max_length=66, blank=True, help_text="0x hex")

    def __str__(self) -> str:
        return f"{self.entry_id} in {self.batch_id}"


class ReconciliationRun(models.Model):
    """One check of the payout invariants against the chain (``rewards.reconcile``): Celery beat
    runs it every ``RECONCILE_INTERVAL_SECONDS``; a failing run is an alert in admin."""

    ok = models.BooleanField()
    checked_batches = models.PositiveIntegerField()
    results = models.JSONField(help_text="Each invariant: name, ok, what was checked, violations.")
    error = models.TextField(
        blank=True, help_text="Why the run could not complete, if it couldn't."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        verdict = "ok" if self.ok else "FAILING"
        return f"Reconciliation {self.created_at:%Y-%m-%d %H:%M}: {verdict}"


class PayoutSettings(models.Model):
    """Moderator-set payout rules (one row): batches above a total wait for approval."""

    # None: no threshold. (TokenAmountField is typed for its non-null uses.)
    approval_threshold = TokenAmountField(  # type: ignore[misc]
        null=True,
        blank=True,
        help_text="Batches whose total is above this (base units) wait for a moderator's "
        "approval. Empty: only PAYOUT_REQUIRE_APPROVAL decides.",
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "payout settings"

    def __str__(self) -> str:
        return "Payout settings"


class RewardPolicy(models.Model):
    """How a project pays, versioned: a new version for every change, never edited in place.

    Every ledger entry names the version that set its amount and the inputs it used. A label
    that agrees with an accepted decision earns ``per_label`` x (how sure the decision is, above
    chance) x (how skilled its labeler is, above chance); an accepted contribution earns
    ``per_item``; a right gold answer earns ``gold_bonus`` x (the labeler's gold accuracy, above
    chance). Within one epoch (``REWARD_EPOCH_HOURS``) a project pays at most ``epoch_budget``:
    above it, that epoch's credits are scaled down proportionally when it closes.
    """

    project = models.ForeignKey(
        "labeling.Project", on_delete=models.PROTECT, related_name="reward_policies"
    )
    version = models.PositiveIntegerField()
    per_label = TokenAmountField(default=0, help_text="Base units for an agreeing label.")
    per_item = TokenAmountField(default=0, help_text="Base units for an accepted contribution.")
    gold_bonus = TokenAmountField(default=0, help_text="Base units for a right gold answer.")
    weight_by_posterior = models.BooleanField(
        default=True, help_text="Scale label rewards by the decision's posterior above chance."
    )
    weight_by_skill = models.BooleanField(
        default=True, help_text="Scale label rewards by the labeler's estimated accuracy."
    )
    epoch_budget = TokenAmountField(  # type: ignore[misc]
        null=True, blank=True, help_text="At most this much per epoch (base units); empty: none."
    )
    note = models.CharField(max_length=500, blank=True, help_text="Why this version.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "-version"]
        verbose_name_plural = "reward policies"
        constraints = [
            models.UniqueConstraint(
                fields=["project", "version"], name="reward_policy_one_per_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} reward policy v{self.version}"


class DecisionCredit(models.Model):
    """A recorded decision turned into ledger entries: at most once (one-to-one)."""

    decision = models.OneToOneField(
        "labeling.Decision", on_delete=models.PROTECT, related_name="credit"
    )
    policy = models.ForeignKey(RewardPolicy, on_delete=models.PROTECT, related_name="+")
    entries = models.PositiveIntegerField(help_text="Ledger entries it wrote.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"credits of decision {self.decision_id}"


class EpochClose(models.Model):
    """A project's budget epoch, closed: what it spent and how much was scaled down."""

    project = models.ForeignKey("labeling.Project", on_delete=models.PROTECT, related_name="+")
    epoch = models.BigIntegerField()
    budget = TokenAmountField()
    spent = TokenAmountField(
        help_text="Net credits of the epoch before scaling (base units), without those of "
        "contributors a fraud flag held at the close (see held users)."
    )
    scaled_to = TokenAmountField(
        help_text="Net credits after scaling: at most the budget, unless credits already in a "
        "payout (never cut) exceed it."
    )
    policy = models.ForeignKey(RewardPolicy, on_delete=models.PROTECT, related_name="+")
    # The rate the cut credits were paid at, cut_to / cut_from (both 0 when nothing was cut), and
    # the contributors whose credits were left out: released later, theirs are cut at that rate.
    cut_from = TokenAmountField(
        default=0, help_text="What the credits that were cut paid before the cut (base units)."
    )
    cut_to = TokenAmountField(
        default=0,
        help_text="What those credits pay after it: the epoch's rate is cut_to / cut_from.",
    )
    held_users = models.JSONField(
        default=list,
        blank=True,
        help_text="Contributors a fraud flag held at the close. Their credits of the epoch were "
        "left out; if a moderator releases them, they are cut at the epoch's rate before payment.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-epoch"]
        constraints = [
            models.UniqueConstraint(fields=["project", "epoch"], name="epoch_close_once"),
        ]

    def __str__(self) -> str:
        return f"epoch {self.epoch} of {self.project}"


class GoldBonusKept(models.Model):
    """A gold bonus kept although its answer no longer deserves it, while its item's gold answer
    stays at ``gold_version``: the bonuses owed back when reversals of gold bonuses began were
    granted under the rules of their time (often paid long before), so the upgrade grandfathers
    them (migration ``rewards.0011``) instead of taking them back. Any later change of the
    item's gold answer bumps its version, and the bonus is then reversed like any other if it is
    owed; the bonus of an answer withdrawn before the upgrade is kept for good. (A marker, not a
    zero-amount ledger entry: ledger amounts are never 0.)"""

    bonus = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, related_name="+")
    gold_version = models.PositiveIntegerField(
        help_text="The item's gold version it is kept under (labeling.Item.gold_version)."
    )
    memo = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "gold bonuses kept"

    def __str__(self) -> str:
        return f"bonus {self.bonus_id} kept at gold version {self.gold_version}"
