"""Reward amounts from a project's reward policy: integer arithmetic on base units.

Weights are how far a probability is above chance, on a 0..1 scale: for K classes,
``(p - 1/K) / (1 - 1/K)``, clamped. A coin-flip decision or a labeler at chance weighs 0; a
certain decision or a perfect labeler weighs 1. Weights are rounded to parts per million, then
``base x posterior weight x skill weight`` is floored to a whole base unit, so every amount is
reproducible from the inputs stored on its ledger entry.
"""

from __future__ import annotations

from dataclasses import dataclass

PPM = 1_000_000


@dataclass(frozen=True)
class Reward:
    amount: int
    inputs: dict[str, object]


def above_chance(probability: float, n_classes: int) -> float:
    """How far ``probability`` is above chance (1/K), scaled to 0..1."""
    chance = 1.0 / n_classes
    return min(1.0, max(0.0, (probability - chance) / (1.0 - chance)))


def _ppm(weight: float) -> int:
    return round(weight * PPM)


def label_reward(
    *,
    base: int,
    posterior: float,
    accuracy: float,
    accuracy_source: str,
    n_classes: int,
    weight_by_posterior: bool,
    weight_by_skill: bool,
) -> Reward:
    """What one label that agrees with an accepted decision earns."""
    posterior_ppm = _ppm(above_chance(posterior, n_classes)) if weight_by_posterior else PPM
    skill_ppm = _ppm(above_chance(accuracy, n_classes)) if weight_by_skill else PPM
    amount = base * posterior_ppm * skill_ppm // (PPM * PPM)
    return Reward(
        amount=amount,
        inputs={
            "rule": "label",
            "base": str(base),
            "posterior": posterior,
            "posterior_weight_ppm": posterior_ppm,
            "accuracy": accuracy,
            "accuracy_source": accuracy_source,
            "skill_weight_ppm": skill_ppm,
            "n_classes": n_classes,
        },
    )


def contribution_reward(*, base: int) -> Reward:
    """What an accepted contribution earns its uploader."""
    return Reward(amount=base, inputs={"rule": "contribution", "base": str(base)})


def gold_reward(*, base: int, correct: int, answered: int, n_classes: int) -> Reward:
    """What a right gold answer earns: the bonus weighted by the labeler's gold accuracy so far
    (this answer included, with one right and one wrong answer added as a prior), above chance:
    a labeler who guesses earns about nothing however lucky one answer was."""
    accuracy = (correct + 1) / (answered + 2)
    weight = _ppm(above_chance(accuracy, n_classes))
    return Reward(
        amount=base * weight // PPM,
        inputs={
            "rule": "gold",
            "base": str(base),
            "gold_correct": correct,
            "gold_answered": answered,
            "gold_accuracy": accuracy,
            "weight_ppm": weight,
            "n_classes": n_classes,
        },
    )


def budget_scale(*, positives: list[int], net: int, budget: int) -> list[int]:
    """How much to take off each credit that may still be cut so an epoch's net is at most
    ``budget``.

    ``positives`` are what those credits pay now; ``net`` is everything the epoch spends: these,
    plus what can't be cut (credits already paid), less any reversals counted against it. The
    credits share the room the rest leaves, ``budget - (net - sum(positives))``, at least 0, in
    proportion to what they pay, by largest remainder: each credit ``a`` keeps
    ``floor(a x room / sum(positives))``, and the base units those floors leave over go one each
    to the credits with the largest remainders (the earlier credit first on a tie). So the
    credits keep exactly ``room`` together: the epoch's net lands on the budget (or on what can't
    be cut, when that is already over it), never above it and with no dust below it; the result
    depends on the inputs alone; and no credit loses more than it pays. Nothing is taken when
    the net is within the budget.
    """
    total = sum(positives)
    if net <= budget or total == 0:
        return [0] * len(positives)
    room = max(0, budget - (net - total))  # what the credits may keep, together (< total)
    kept = [a * room // total for a in positives]
    left = room - sum(kept)  # < len(positives): each floor drops less than one unit
    # Largest remainder first; on a tie, the earlier credit. Only credits with a remainder get a
    # unit (the remainders sum to ``left``), so none keeps more than it pays.
    by_remainder = sorted(range(len(positives)), key=lambda i: (-(positives[i] * room % total), i))
    for i in by_remainder[:left]:
        kept[i] += 1
    return [a - k for a, k in zip(positives, kept, strict=True)]
