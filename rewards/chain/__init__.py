"""On-chain payouts: the only package in Crowdmint that imports web3.

Public API::

    ChainClient, SignedTransaction, Receipt, BatchMintedEvent, TokenInfo, TokenTransfer
    embedded_client(), rpc_client(url, private_key, token_address), client_from_settings(...)
    ChainError, ChainUnavailable, ChainConfigError, ContractCallReverted, TransactionFailed
    batch_id_from_key(key), batch_mint_gas_limit(n), MAX_BATCH_SIZE, NODE_TX_GAS_CAP
"""

from rewards.chain.client import (
    MAX_BATCH_SIZE,
    NODE_TX_GAS_CAP,
    BatchMintedEvent,
    ChainClient,
    Receipt,
    SignedTransaction,
    TokenInfo,
    TokenTransfer,
    batch_id_from_key,
    batch_mint_gas_limit,
)
from rewards.chain.errors import (
    ChainConfigError,
    ChainError,
    ChainUnavailable,
    ContractCallReverted,
    TransactionFailed,
)
from rewards.chain.factory import (
    client_from_settings,
    embedded_account_keys,
    embedded_client,
    rpc_client,
)

__all__ = [
    "MAX_BATCH_SIZE",
    "NODE_TX_GAS_CAP",
    "BatchMintedEvent",
    "ChainClient",
    "ChainConfigError",
    "ChainError",
    "ChainUnavailable",
    "ContractCallReverted",
    "Receipt",
    "SignedTransaction",
    "TokenInfo",
    "TokenTransfer",
    "TransactionFailed",
    "batch_id_from_key",
    "batch_mint_gas_limit",
    "client_from_settings",
    "embedded_account_keys",
    "embedded_client",
    "rpc_client",
]
