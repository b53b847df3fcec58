"""Exceptions raised by :mod:`rewards.chain`.

Callers never decide whether a payout landed from the exception they got: a node that dies
after mining still surfaces as a connection error. They re-read chain state
(``ChainClient.is_batch_processed``) instead. The exception types here only say what went
wrong well enough to log it and pick a retry delay.
"""

from __future__ import annotations


class ChainError(Exception):
    """Any failure talking to the chain or a rejection by the node or the contract."""


class ChainUnavailable(ChainError):
    """The node could not be reached, or did not answer in time.

    A transaction broadcast that ends in this error may or may not have reached the node
    (and may even be mined): re-read state before re-signing.
    """


class ChainConfigError(ChainError):
    """The chain settings are missing or contradictory (no key, two keys, bad address)."""


class ContractCallReverted(ChainError):
    """A read-only call (``eth_call``) of the token contract reverted.

    ``error_name`` is the Solidity custom error (``"BatchAlreadyProcessed"``, ...) when the
    revert data could be decoded against the contract ABI, else ``None``; ``error_args``
    holds its decoded arguments.
    """

    def __init__(
        self, message: str, *, error_name: str | None = None, error_args: tuple[object, ...] = ()
    ) -> None:
        super().__init__(message)
        self.error_name = error_name
        self.error_args = error_args


class TransactionFailed(ChainError):
    """A transaction this client sent and waited for was mined with status 0 (reverted)."""
