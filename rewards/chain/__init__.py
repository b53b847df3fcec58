"""On-chain payouts: the only package in Crowdmint that imports web3.

Public API::

    ChainClient, SignedTransaction, Receipt, BatchPaidEvent, TokenInfo, TokenTransfer, AssetPayment,
    WalletTransfer
    embedded_client(), rpc_client(url, private_key, token_address, ...), client_from_settings(...)
    ChainError, ChainUnavailable, ChainConfigError, ContractCallReverted, TransactionFailed
    batch_id_from_key(key), batch_gas_limit(n, mode), max_batch_size(mode), MINT, ERC20
    merkle: receipt leaves and proofs the contracts verify (rewards.chain.merkle)
"""

from rewards.chain.client import (
    ERC20,
    MAX_BATCH_SIZE,
    MAX_TRANSFER_BATCH_SIZE,
    MINT,
    NODE_TX_GAS_CAP,
    AssetPayment,
    BatchPaidEvent,
    ChainClient,
    Receipt,
    SignedTransaction,
    TokenInfo,
    TokenTransfer,
    WalletTransfer,
    batch_gas_limit,
    batch_id_from_key,
    batch_mint_gas_limit,
    max_batch_size,
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
    "ERC20",
    "MAX_BATCH_SIZE",
    "MAX_TRANSFER_BATCH_SIZE",
    "MINT",
    "NODE_TX_GAS_CAP",
    "AssetPayment",
    "BatchPaidEvent",
    "ChainClient",
    "ChainConfigError",
    "ChainError",
    "ChainUnavailable",
    "ContractCallReverted",
    "Receipt",
    "SignedTransaction",
    "TokenInfo",
    "TokenTransfer",
    "WalletTransfer",
    "TransactionFailed",
    "batch_gas_limit",
    "batch_id_from_key",
    "batch_mint_gas_limit",
    "max_batch_size",
    "client_from_settings",
    "embedded_account_keys",
    "embedded_client",
    "rpc_client",
]
