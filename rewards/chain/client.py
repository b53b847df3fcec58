"""A small, typed client for Crowdmint's payout contracts.

This module (with the rest of ``rewards.chain``) is the only place in the project that
imports web3. It signs locally with an ``eth_account`` key and talks to any JSON-RPC node,
or to the in-process eth-tester chain (see ``rewards.chain.factory``).

Two payout modes, one interface:
- ``mint``: the platform's RewardToken mints each batch (``batchMint``); the asset paid is the
  token itself.
- ``erc20``: a RewardDistributor pays each batch in an existing ERC-20 (a stablecoin), pulled
  from a treasury by allowance (``batchTransfer``); the asset is that ERC-20.

Idempotency contract for payouts: every batch is paid under a ``batch_id`` that the
contract accepts once, with the Merkle root of its receipts. Whatever
``send_raw``/``wait_for_receipt`` raise or return, the only authority on "did this batch pay
out?" is ``is_batch_processed(batch_id)``: a killed node surfaces as a connection error even
when the transaction was mined, and a revert reaches Python as a different exception type on
each backend.
"""

from __future__ import annotations

import ast
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from eth_abi.abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress, HexStr
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ProviderConnectionError, TransactionNotFound
from web3.logs import DISCARD

from config.metrics import CHAIN_RPC_ERRORS
from rewards.chain.artifact import ContractArtifact, load_artifact
from rewards.chain.errors import (
    ChainConfigError,
    ChainError,
    ChainUnavailable,
    ContractCallReverted,
    TransactionFailed,
)

#: The contracts' own limit (BatchPayouts.MAX_BATCH_SIZE).
MAX_BATCH_SIZE = 500
MINT = "mint"
ERC20 = "erc20"
#: Hardhat (and Geth's default txpool policy since Osaka) reject a tx whose gas limit
#: exceeds 2**24; every limit this client signs stays strictly below it.
NODE_TX_GAS_CAP = 16_777_216
#: Gas limit of a batchMint tx = BASE + PER_RECIPIENT * len(recipients). Measured (see
#: bench/gas/results.md): ~25.2k per new wallet, ~8.1k per returning one, 55-75k fixed
#: (21k intrinsic + batch flag + first totalSupply write + event). ~20% headroom on both;
#: unused gas is not charged. A computed limit (instead of eth_estimateGas) lets a batch be
#: signed without simulating it, so a replayed batch still yields a tx that the contract
#: rejects on-chain, which is what the idempotency story relies on.
BATCH_MINT_BASE_GAS = 100_000
BATCH_MINT_GAS_PER_RECIPIENT = 30_000
#: batchTransfer: an ERC-20 transferFrom per recipient (measured ~28k for a new wallet, ~11k
#: for a returning one, bench/gas/results.md), with headroom for tokens heavier than
#: OpenZeppelin's. At 32k a full batch would pass the node cap, so ERC-20 batches are smaller.
BATCH_TRANSFER_BASE_GAS = 100_000
BATCH_TRANSFER_GAS_PER_RECIPIENT = 32_000
MAX_TRANSFER_BATCH_SIZE = 400
DEFAULT_PRIORITY_FEE_WEI = 1_000_000_000
_UINT256_MAX = 2**256 - 1
_BATCH_ID_DOMAIN = b"crowdmint:payout-batch:"

# Exceptions that mean "the node did not answer", whatever the transport. web3's HTTP
# provider lets requests' ConnectionError through unwrapped.
_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.RequestException,
    ProviderConnectionError,
    ConnectionError,
    TimeoutError,
)

# Broadcast errors after which the caller should re-read state rather than give up: the node
# already has this exact tx, or the nonce was consumed (possibly by this very tx).
_BENIGN_SEND_ERRORS = re.compile(
    r"already known|known transaction|already imported|already exists|nonce too low"
    r"|transaction already in (?:the )?(?:pool|mempool)",
    re.IGNORECASE,
)
# eth-tester words "nonce too low" as "Invalid transaction nonce: Expected 2, but got 1".
_ETH_TESTER_NONCE = re.compile(r"Expected (\d+), but got (\d+)")
# eth-tester reports revert data as the repr of a bytes object inside the message.
_ETH_TESTER_REVERT = re.compile(r"execution reverted: (b(['\"]).*\2)\s*$", re.DOTALL)


@dataclass(frozen=True)
class SignedTransaction:
    """A signed, not yet broadcast transaction. Persist it before sending so a retry
    re-broadcasts the same bytes (same hash, same nonce) instead of signing a new one."""

    tx_hash: str  # 0x-prefixed, lower-case hex
    raw: bytes
    nonce: int


@dataclass(frozen=True)
class Receipt:
    """The outcome of a mined transaction. ``status`` is False when it reverted."""

    tx_hash: str
    status: bool
    block_number: int
    gas_used: int


@dataclass(frozen=True)
class BatchPaidEvent:
    """One ``BatchMinted`` or ``BatchTransferred(batchId, receiptsRoot, count, total)`` log of
    the payout contract."""

    batch_id: bytes
    receipts_root: bytes
    count: int
    total: int
    tx_hash: str
    block_number: int


@dataclass(frozen=True)
class TokenTransfer:
    """One ERC-20 ``Transfer`` log; ``from_address`` is the zero address for a mint."""

    from_address: str
    to_address: str
    value: int


@dataclass(frozen=True)
class WalletTransfer:
    """A value transfer seen on the chain: ``asset`` is ``native`` (ether in a transaction) or
    the ERC-20's address (a ``Transfer`` log)."""

    from_address: str
    to_address: str
    value: int
    asset: str
    block_number: int
    tx_hash: str


@dataclass(frozen=True)
class AssetPayment:
    """What a mined transaction did with the paid asset: whether it succeeded, where, when and
    how deep it is, who sent it, and its ``Transfer`` logs of that asset (in log order).
    ``block_timestamp`` is its block's timestamp (Unix seconds, the chain's clock): when the
    payment was made, whatever later changed off-chain (a dataset's price)."""

    tx_hash: str
    status: bool
    block_number: int
    block_timestamp: int
    confirmations: int
    sender: str
    asset: str
    transfers: tuple[TokenTransfer, ...]

    def paid_to(self, address: str) -> int:
        """Base units this transaction moved to ``address`` (0 for a reverted one)."""
        if not self.status:
            return 0
        return sum(t.value for t in self.transfers if t.to_address.lower() == address.lower())


@dataclass(frozen=True)
class TokenInfo:
    """ERC-20 metadata and supply of the token at the latest block."""

    address: str
    name: str
    symbol: str
    decimals: int
    total_supply: int


def max_batch_size(mode: str) -> int:
    """The most recipients one batch may pay in ``mode`` (``mint`` or ``erc20``)."""
    return MAX_BATCH_SIZE if mode == MINT else MAX_TRANSFER_BATCH_SIZE


def batch_gas_limit(recipient_count: int, mode: str = MINT) -> int:
    """The gas limit ``sign_payout_batch`` uses for a batch of ``recipient_count`` recipients.

    Raises ``ValueError`` outside 1..max_batch_size(mode).
    """
    largest = max_batch_size(mode)
    if not 1 <= recipient_count <= largest:
        raise ValueError(f"recipient_count must be 1..{largest}, got {recipient_count}")
    if mode == MINT:
        return BATCH_MINT_BASE_GAS + BATCH_MINT_GAS_PER_RECIPIENT * recipient_count
    return BATCH_TRANSFER_BASE_GAS + BATCH_TRANSFER_GAS_PER_RECIPIENT * recipient_count


def batch_mint_gas_limit(recipient_count: int) -> int:
    """The gas limit of a ``batchMint`` of ``recipient_count`` recipients."""
    return batch_gas_limit(recipient_count, MINT)


# The largest batch must fit under the node cap; checked at import, not at payout time.
assert batch_gas_limit(MAX_BATCH_SIZE, MINT) < NODE_TX_GAS_CAP
assert batch_gas_limit(MAX_TRANSFER_BATCH_SIZE, ERC20) < NODE_TX_GAS_CAP


def batch_id_from_key(key: str) -> bytes:
    """Derive the 32-byte on-chain batch id from an application key (e.g. a payout batch UUID).

    Domain-separated keccak256, so the same key always maps to the same id and ids cannot
    collide with other uses of the hash.
    """
    return keccak(_BATCH_ID_DOMAIN + key.encode("utf-8"))


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _check_batch_id(batch_id: bytes) -> bytes:
    if not isinstance(batch_id, bytes | bytearray) or len(batch_id) != 32:
        raise ValueError("batch_id must be exactly 32 bytes")
    return bytes(batch_id)


def _check_root(root: bytes) -> bytes:
    if not isinstance(root, bytes | bytearray) or len(root) != 32 or not any(root):
        raise ValueError("receipts_root must be 32 bytes, not all zero")
    return bytes(root)


def _checksum(address: str, what: str = "address") -> ChecksumAddress:
    if not isinstance(address, str) or not Web3.is_address(address):
        raise ValueError(f"invalid {what}: {address!r}")
    return Web3.to_checksum_address(address)


def _config_address(value: str, what: str) -> ChecksumAddress:
    try:
        return _checksum(value, what)
    except ValueError as exc:
        raise ChainConfigError(str(exc)) from None


@contextmanager
def _translate_errors(action: str) -> Iterator[None]:
    """Re-raise anything from web3/the provider as ChainUnavailable or ChainError."""
    try:
        yield
    except ChainError:
        raise
    except _UNAVAILABLE_ERRORS as exc:
        CHAIN_RPC_ERRORS.labels("unavailable").inc()
        raise ChainUnavailable(f"{action}: node unavailable ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:
        CHAIN_RPC_ERRORS.labels("error").inc()
        raise ChainError(f"{action}: {type(exc).__name__}: {exc}") from exc


class ChainClient:
    """Deploys and drives one payout contract with one locally held signing key.

    Mint mode (``token_address``): the RewardToken pays by minting. ERC-20 mode
    (``distributor_address``): a RewardDistributor pays in its ``asset`` from its treasury.

    Every method raises ``ChainUnavailable`` when the node cannot be reached and
    ``ChainError`` for any other failure reported by the node; argument errors that no node
    could accept (bad address, wrong batch id length, empty batch) raise ``ValueError``
    before any I/O.

    Nonces: ``sign_payout_batch`` uses the signer's pending nonce unless one is passed. The
    client does not serialize concurrent signers; the payout service must (one sender).
    """

    def __init__(
        self,
        web3: Web3,
        account: LocalAccount,
        token_address: str | None = None,
        *,
        distributor_address: str | None = None,
        poll_interval: float = 0.5,
    ) -> None:
        self._w3 = web3
        self._account = account
        self._poll_interval = poll_interval
        self._token_artifact: ContractArtifact = load_artifact("RewardToken")
        self._distributor_artifact: ContractArtifact = load_artifact("RewardDistributor")
        self._erc20_abi = load_artifact("MockStablecoin").abi
        self._chain_id: int | None = None
        self._payout: Contract | None = None
        self._payout_address: ChecksumAddress | None = None
        self._asset: Contract | None = None
        self._mode: str | None = None
        self._error_selectors = {
            **_error_selectors(self._token_artifact.abi),
            **_error_selectors(self._distributor_artifact.abi),
        }
        if token_address is not None:
            self.token_address = token_address
        if distributor_address is not None:
            self.distributor_address = distributor_address

    # -- identity ---------------------------------------------------------------------------

    @property
    def address(self) -> ChecksumAddress:
        """Checksum address of the signer."""
        return self._account.address

    @property
    def chain_id(self) -> int:
        """The node's chain id, fetched once and cached. Raises ChainUnavailable/ChainError."""
        if self._chain_id is None:
            with _translate_errors("eth_chainId"):
                self._chain_id = int(self._w3.eth.chain_id)
        return self._chain_id

    @property
    def mode(self) -> str | None:
        """``"mint"``, ``"erc20"``, or None before a payout contract is configured."""
        return self._mode

    @property
    def payout_address(self) -> str | None:
        """Checksum address of the contract that pays batches (token or distributor)."""
        return self._payout_address

    @property
    def token_address(self) -> str | None:
        """Checksum address of the RewardToken (mint mode), or None."""
        return self._payout_address if self._mode == MINT else None

    @token_address.setter
    def token_address(self, value: str) -> None:
        address = _config_address(value, "token address")
        self._mode = MINT
        self._payout_address = address
        self._payout = self._w3.eth.contract(address=address, abi=self._token_artifact.abi)
        self._asset = self._payout

    @property
    def distributor_address(self) -> str | None:
        """Checksum address of the RewardDistributor (ERC-20 mode), or None."""
        return self._payout_address if self._mode == ERC20 else None

    @distributor_address.setter
    def distributor_address(self, value: str) -> None:
        address = _config_address(value, "distributor address")
        self._mode = ERC20
        self._payout_address = address
        self._payout = self._w3.eth.contract(address=address, abi=self._distributor_artifact.abi)
        self._asset = None  # read from the distributor on first use

    def with_signer(self, private_key: str) -> ChainClient:
        """A client on the same node and payout contract that signs with another key.

        Raises ChainConfigError for an invalid key (never echoed).
        """
        try:
            account: LocalAccount = Account.from_key(private_key)
        except Exception:
            raise ChainConfigError("not a valid secp256k1 private key") from None
        return ChainClient(
            self._w3,
            account,
            self.token_address,
            distributor_address=self.distributor_address,
            poll_interval=self._poll_interval,
        )

    def _contract(self) -> Contract:
        if self._payout is None:
            raise ChainConfigError(
                "no payout contract: deploy_token()/deploy_distributor() or configure one"
            )
        return self._payout

    def _asset_contract(self) -> Contract:
        if self._asset is None:
            distributor = self._contract()
            with _translate_errors("RewardDistributor.asset"):
                asset = str(distributor.functions.asset().call())
            self._asset = self._erc20(asset)
        return self._asset

    def _erc20(self, address: str) -> Contract:
        return self._w3.eth.contract(
            address=_checksum(address, "ERC-20 address"), abi=self._erc20_abi
        )

    @property
    def asset_address(self) -> str:
        """The ERC-20 whose balances the payouts raise (the token itself when minting)."""
        return str(self._asset_contract().address)

    # -- deployment -------------------------------------------------------------------------

    def deploy_token(self, *, timeout: float = 120) -> str:
        """Deploy a RewardToken with the signer as admin and minter; pay with it from now on.

        Raises ChainUnavailable, TransactionFailed if the deployment reverted, ChainError if
        it was not mined within ``timeout`` seconds.
        """
        address = self._deploy(self._token_artifact, [self.address], timeout=timeout)
        self.token_address = address
        return address

    def deploy_distributor(self, asset: str, treasury: str, *, timeout: float = 120) -> str:
        """Deploy a RewardDistributor paying ``asset`` from ``treasury`` (the signer is admin
        and distributor); pay with it from now on. The treasury must then approve it."""
        address = self._deploy(
            self._distributor_artifact,
            [self.address, _checksum(asset, "asset"), _checksum(treasury, "treasury")],
            timeout=timeout,
        )
        self.distributor_address = address
        return address

    def deploy_mock_stablecoin(self, *, timeout: float = 120) -> str:
        """Deploy a 6-decimal test ERC-20 anyone may mint (tests and local nodes only)."""
        return self._deploy(load_artifact("MockStablecoin"), [], timeout=timeout)

    def mint_mock_stablecoin(self, asset: str, to: str, amount: int) -> Receipt:
        """Mint test dollars of a MockStablecoin to ``to`` (tests and local nodes only)."""
        call = self._erc20(asset).functions.mint(_checksum(to, "recipient"), int(amount))
        return self._transact(call, f"mint {asset}")

    def approve(self, asset: str, spender: str, amount: int) -> Receipt:
        """``asset.approve(spender, amount)`` from the signer (a treasury approving the
        distributor). Raises TransactionFailed if it reverted."""
        call = self._erc20(asset).functions.approve(_checksum(spender, "spender"), int(amount))
        return self._transact(call, f"approve {spender}")

    def _deploy(self, artifact: ContractArtifact, args: list[Any], *, timeout: float) -> str:
        factory = self._w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        with _translate_errors(f"deploy {artifact.contract_name}"):
            estimate = factory.constructor(*args).estimate_gas({"from": self.address})
            tx: dict[str, Any] = {
                "from": self.address,
                "nonce": self.next_nonce(),
                "chainId": self.chain_id,
                "gas": min(int(estimate * 1.25), NODE_TX_GAS_CAP - 1),
                **self._fee_fields(),
            }
            built = factory.constructor(*args).build_transaction(tx)
            signed = self._account.sign_transaction(built)
        tx_hash = self.send_raw(bytes(signed.raw_transaction))
        receipt = self.wait_for_receipt(tx_hash, timeout=timeout)
        if receipt is None:
            raise ChainError(f"deployment {tx_hash} not mined within {timeout}s")
        if not receipt.status:
            raise TransactionFailed(f"deployment {tx_hash} reverted")
        with _translate_errors("read deployment receipt"):
            address = self._w3.eth.get_transaction_receipt(HexStr(tx_hash))["contractAddress"]
        return str(address)

    def _transact(self, call: Any, what: str, *, timeout: float = 120) -> Receipt:
        with _translate_errors(what):
            estimate = call.estimate_gas({"from": self.address})
            tx: dict[str, Any] = {
                "from": self.address,
                "nonce": self.next_nonce(),
                "chainId": self.chain_id,
                "gas": min(int(estimate * 1.25) + 10_000, NODE_TX_GAS_CAP - 1),
                **self._fee_fields(),
            }
            signed = self._account.sign_transaction(dict(call.build_transaction(tx)))
        tx_hash = self.send_raw(bytes(signed.raw_transaction))
        receipt = self.wait_for_receipt(tx_hash, timeout=timeout)
        if receipt is None:
            raise ChainError(f"{what}: {tx_hash} not mined within {timeout}s")
        if not receipt.status:
            raise TransactionFailed(f"{what}: {tx_hash} reverted")
        return receipt

    # -- reads ------------------------------------------------------------------------------

    def is_batch_processed(self, batch_id: bytes) -> bool:
        """True once the payout contract paid ``batch_id`` (at the latest block).

        This is the authority for payout retries. Raises ValueError unless ``batch_id`` is
        32 bytes, ChainConfigError without a payout contract, ChainUnavailable, ChainError.
        """
        batch_id = _check_batch_id(batch_id)
        contract = self._contract()
        with _translate_errors("processedBatches"):
            return bool(contract.functions.processedBatches(batch_id).call())

    def batch_root(self, batch_id: bytes) -> bytes | None:
        """The receipts' Merkle root the contract recorded for ``batch_id``; None if unpaid."""
        batch_id = _check_batch_id(batch_id)
        contract = self._contract()
        with _translate_errors("batchRoots"):
            root = bytes(contract.functions.batchRoots(batch_id).call())
        return root if any(root) else None

    def verify_receipt(self, batch_id: bytes, proof: Sequence[bytes], leaf: bytes) -> bool:
        """Ask the contract whether ``leaf`` is a receipt of paid batch ``batch_id``."""
        contract = self._contract()
        with _translate_errors("verifyReceipt"):
            return bool(
                contract.functions.verifyReceipt(
                    _check_batch_id(batch_id), [bytes(p) for p in proof], bytes(leaf)
                ).call()
            )

    def balance_of(self, address: str) -> int:
        """Balance of ``address`` in the paid asset's base units."""
        owner = _checksum(address)
        contract = self._asset_contract()
        with _translate_errors("balanceOf"):
            return int(contract.functions.balanceOf(owner).call())

    def allowance(self, owner: str, spender: str) -> int:
        """The paid asset's allowance of ``owner`` to ``spender``."""
        contract = self._asset_contract()
        with _translate_errors("allowance"):
            return int(contract.functions.allowance(_checksum(owner), _checksum(spender)).call())

    def treasury(self) -> str | None:
        """The distributor's treasury (ERC-20 mode); None when minting."""
        if self._mode != ERC20:
            return None
        with _translate_errors("RewardDistributor.treasury"):
            return str(self._contract().functions.treasury().call())

    def token_info(self) -> TokenInfo:
        """Name, symbol, decimals and total supply of the paid asset."""
        contract = self._asset_contract()
        with _translate_errors("token metadata"):
            return TokenInfo(
                address=contract.address,
                name=str(contract.functions.name().call()),
                symbol=str(contract.functions.symbol().call()),
                decimals=int(contract.functions.decimals().call()),
                total_supply=int(contract.functions.totalSupply().call()),
            )

    def wallet_transfers(
        self, from_block: int, to_block: int, wallets: set[str]
    ) -> list[WalletTransfer]:
        """Transfers in blocks ``from_block``..``to_block`` that touch one of ``wallets``
        (lower-case addresses): the paid asset's ``Transfer`` logs and plain ether sends, for the
        fraud check that links wallets funded from, or paying out to, one address."""
        contract = self._asset_contract()
        found: list[WalletTransfer] = []
        with _translate_errors("eth_getLogs Transfer"):
            logs = contract.events.Transfer().get_logs(from_block=from_block, to_block=to_block)
        for log in logs:
            sender, receiver = str(log["args"]["from"]), str(log["args"]["to"])
            if sender.lower() in wallets or receiver.lower() in wallets:
                found.append(
                    WalletTransfer(
                        sender,
                        receiver,
                        int(log["args"]["value"]),
                        str(contract.address),
                        int(log["blockNumber"]),
                        _hex(log["transactionHash"]),
                    )
                )
        with _translate_errors("eth_getBlockByNumber"):
            for number in range(from_block, to_block + 1):
                block = self._w3.eth.get_block(number, full_transactions=True)
                for tx in block.get("transactions", []):
                    if isinstance(tx, bytes | str) or not tx.get("to") or not int(tx["value"]):
                        continue
                    sender, receiver = str(tx["from"]), str(tx["to"])
                    if sender.lower() in wallets or receiver.lower() in wallets:
                        found.append(
                            WalletTransfer(
                                sender,
                                receiver,
                                int(tx["value"]),
                                "native",
                                number,
                                _hex(tx["hash"]),
                            )
                        )
        return found

    def transaction_count(self, address: str) -> int:
        """How many transactions ``address`` has sent (its nonce at the latest block)."""
        with _translate_errors("eth_getTransactionCount"):
            return int(self._w3.eth.get_transaction_count(_checksum(address)))

    def block_number(self) -> int:
        """The node's latest block number: a liveness probe. Raises ChainUnavailable/ChainError."""
        with _translate_errors("eth_blockNumber"):
            return int(self._w3.eth.block_number)

    def next_nonce(self) -> int:
        """The signer's pending nonce (counts transactions still in the node's pool)."""
        with _translate_errors("eth_getTransactionCount"):
            return int(self._w3.eth.get_transaction_count(self.address, "pending"))

    def confirmed_nonce(self) -> int:
        """The signer's nonce at the latest block: transactions below it are mined (or replaced)."""
        with _translate_errors("eth_getTransactionCount"):
            return int(self._w3.eth.get_transaction_count(self.address, "latest"))

    def has_transaction(self, tx_hash: str) -> bool:
        """Whether the node knows ``tx_hash``, mined or still in its pool.

        Raises ChainUnavailable when the node cannot be reached (never a silent False).
        """
        with _translate_errors("eth_getTransactionByHash"):
            try:
                self._w3.eth.get_transaction(HexStr(tx_hash))
            except TransactionNotFound:
                return False
        return True

    def is_minter(self, address: str | None = None) -> bool:
        """Whether ``address`` (default: the signer) may pay batches: MINTER_ROLE on the token,
        or DISTRIBUTOR_ROLE on the distributor."""
        who = self.address if address is None else _checksum(address)
        contract = self._contract()
        with _translate_errors("hasRole"):
            if self._mode == MINT:
                role = contract.functions.MINTER_ROLE().call()
            else:
                role = contract.functions.DISTRIBUTOR_ROLE().call()
            return bool(contract.functions.hasRole(role, who).call())

    def get_receipt(self, tx_hash: str) -> Receipt | None:
        """The receipt of ``tx_hash``, or None if the node has not mined it (or never saw it)."""
        with _translate_errors("eth_getTransactionReceipt"):
            try:
                raw = self._w3.eth.get_transaction_receipt(HexStr(tx_hash))
            except TransactionNotFound:
                return None
        return Receipt(
            tx_hash=_hex(raw["transactionHash"]),
            status=bool(raw["status"]),
            block_number=int(raw["blockNumber"]),
            gas_used=int(raw["gasUsed"]),
        )

    def transfers_in(self, tx_hash: str) -> list[TokenTransfer]:
        """The paid asset's Transfer logs emitted by mined tx ``tx_hash``, in log order.

        Empty for a reverted tx. Raises ChainError if the tx is not mined.
        """
        contract = self._asset_contract()
        with _translate_errors("eth_getTransactionReceipt"):
            raw = self._w3.eth.get_transaction_receipt(HexStr(tx_hash))
            events = contract.events.Transfer().process_receipt(raw, errors=DISCARD)
        return [
            TokenTransfer(
                from_address=str(e["args"]["from"]),
                to_address=str(e["args"]["to"]),
                value=int(e["args"]["value"]),
            )
            for e in events
            if e["address"] == contract.address
        ]

    def asset_payment(self, tx_hash: str) -> AssetPayment | None:
        """The paid asset's transfers made by ``tx_hash`` with its status, block timestamp and
        confirmations (a dataset purchase is proven this way); None if the node has not mined it.

        Raises ValueError for a malformed hash, ChainUnavailable, ChainError.
        """
        if not re.fullmatch(r"0x[0-9a-fA-F]{64}", tx_hash):
            raise ValueError("a transaction hash is 0x and 64 hex digits")
        contract = self._asset_contract()
        with _translate_errors("eth_getTransactionReceipt"):
            try:
                raw = self._w3.eth.get_transaction_receipt(HexStr(tx_hash))
            except TransactionNotFound:
                return None
            events = contract.events.Transfer().process_receipt(raw, errors=DISCARD)
            latest = int(self._w3.eth.block_number)
            block = int(raw["blockNumber"])
            # By hash: the block this receipt is in, even if the chain reorganised since.
            timestamp = int(self._w3.eth.get_block(raw["blockHash"])["timestamp"])
        return AssetPayment(
            tx_hash=_hex(raw["transactionHash"]),
            status=bool(raw["status"]),
            block_number=block,
            block_timestamp=timestamp,
            confirmations=max(0, latest - block + 1),
            sender=str(raw["from"]),
            asset=str(contract.address),
            transfers=tuple(
                TokenTransfer(
                    from_address=str(e["args"]["from"]),
                    to_address=str(e["args"]["to"]),
                    value=int(e["args"]["value"]),
                )
                for e in events
                if e["address"] == contract.address
            ),
        )

    def transfer_asset(self, to: str, amount: int) -> Receipt:
        """Transfer ``amount`` base units of the paid asset from the signer to ``to`` (a
        buyer paying for a dataset on a test or local node). Raises TransactionFailed."""
        contract = self._asset_contract()
        call = contract.functions.transfer(_checksum(to, "recipient"), int(amount))
        return self._transact(call, f"transfer to {to}")

    def wait_for_receipt(self, tx_hash: str, timeout: float = 120) -> Receipt | None:
        """Poll until ``tx_hash`` is mined; None after ``timeout`` seconds.

        Raises ChainUnavailable as soon as the node stops answering (the tx may still be
        mined: re-read state later).
        """
        deadline = time.monotonic() + timeout
        while True:
            receipt = self.get_receipt(tx_hash)
            if receipt is not None:
                return receipt
            if time.monotonic() >= deadline:
                return None
            time.sleep(min(self._poll_interval, max(0.0, deadline - time.monotonic())))

    def batch_events(self, from_block: int = 0) -> list[BatchPaidEvent]:
        """Every batch the payout contract paid (``BatchMinted``/``BatchTransferred`` logs)
        from ``from_block`` to the latest block."""
        contract = self._contract()
        event = (
            contract.events.BatchMinted if self._mode == MINT else contract.events.BatchTransferred
        )
        with _translate_errors("eth_getLogs batch events"):
            logs = event.get_logs(from_block=from_block)
        return [
            BatchPaidEvent(
                batch_id=bytes(log["args"]["batchId"]),
                receipts_root=bytes(log["args"]["receiptsRoot"]),
                count=int(log["args"]["count"]),
                total=int(log["args"]["total"]),
                tx_hash=_hex(log["transactionHash"]),
                block_number=int(log["blockNumber"]),
            )
            for log in logs
        ]

    # -- payout batches ---------------------------------------------------------------------

    def _batch_call(
        self,
        batch_id: bytes,
        receipts_root: bytes,
        recipients: Sequence[str],
        amounts: Sequence[int],
    ) -> Any:
        contract = self._contract()
        function = (
            contract.functions.batchMint if self._mode == MINT else contract.functions.batchTransfer
        )
        return function(batch_id, receipts_root, list(recipients), [int(a) for a in amounts])

    def check_payout_batch(
        self,
        batch_id: bytes,
        receipts_root: bytes,
        recipients: Sequence[str],
        amounts: Sequence[int],
    ) -> None:
        """Simulate the batch payment from the signer (``eth_call``) without sending anything.

        Returns None if the contract would accept the batch now. Raises ContractCallReverted
        (with the decoded custom error name when possible: BatchAlreadyProcessed,
        EmptyReceiptsRoot, BatchLengthMismatch, EmptyBatch, BatchTooLarge, ERC20InvalidReceiver,
        InvalidRecipient, ERC20InsufficientAllowance, AccessControlUnauthorizedAccount),
        ChainUnavailable, ChainConfigError. No argument validation happens here: this asks
        the contract itself.
        """
        call = self._batch_call(
            _check_batch_id(batch_id), bytes(receipts_root), recipients, amounts
        )
        try:
            call.call({"from": self.address})
        except _UNAVAILABLE_ERRORS as exc:
            CHAIN_RPC_ERRORS.labels("unavailable").inc()
            raise ChainUnavailable(f"batch simulation: node unavailable ({exc})") from exc
        except Exception as exc:
            # Each backend raises its own type for a revert; decode the data, not the type.
            name, args = self._decode_revert(exc)
            raise ContractCallReverted(
                f"batch payment would revert: {name or exc}", error_name=name, error_args=args
            ) from exc

    def sign_payout_batch(
        self,
        batch_id: bytes,
        receipts_root: bytes,
        recipients: Sequence[str],
        amounts: Sequence[int],
        *,
        nonce: int | None = None,
    ) -> SignedTransaction:
        """Sign (not send) ``batchMint``/``batchTransfer(batch_id, receipts_root, recipients,
        amounts)``.

        The gas limit is computed (``batch_gas_limit``), not estimated, so signing does not
        depend on the batch's current on-chain state; it is always below the 2**24 node cap.
        With ``nonce=None`` the signer's pending nonce is read from the node, as are the
        EIP-1559 fees.

        Raises ValueError for a batch the contract would reject whatever the state (zero root,
        length mismatch, empty, too many recipients, invalid or zero address, amount outside
        uint256), ChainConfigError without a payout contract, ChainUnavailable, ChainError.
        """
        batch_id = _check_batch_id(batch_id)
        receipts_root = _check_root(receipts_root)
        mode = self._mode or MINT
        if len(recipients) != len(amounts):
            raise ValueError(f"{len(recipients)} recipients but {len(amounts)} amounts")
        largest = max_batch_size(mode)
        if not 1 <= len(recipients) <= largest:
            raise ValueError(f"a batch has 1..{largest} recipients, got {len(recipients)}")
        to = [_checksum(r, "recipient") for r in recipients]
        if any(int(a, 16) == 0 for a in to):
            raise ValueError("zero address recipient")
        values = [int(a) for a in amounts]
        if any(not 0 <= v <= _UINT256_MAX for v in values):
            raise ValueError("amounts must be within uint256")
        call = self._batch_call(batch_id, receipts_root, to, values)
        if nonce is None:
            nonce = self.next_nonce()
        with _translate_errors("sign batch payment"):
            tx: dict[str, Any] = {
                "from": self.address,
                "nonce": nonce,
                "chainId": self.chain_id,
                "gas": batch_gas_limit(len(to), mode),
                **self._fee_fields(),
            }
            built = call.build_transaction(tx)
            signed = self._account.sign_transaction(dict(built))
        return SignedTransaction(
            tx_hash=_hex(signed.hash), raw=bytes(signed.raw_transaction), nonce=nonce
        )

    def send_raw(self, raw: bytes) -> str:
        """Broadcast a signed transaction; return its hash (computed locally from ``raw``).

        Not fatal, returns the hash: the node already knows this tx, the nonce is already
        used (by this tx or another; check ``get_receipt``/``is_batch_processed``), or the
        node reports an error but has the tx (Hardhat automine of a reverting tx).
        Raises ChainUnavailable if the node cannot be reached (the tx may have arrived) and
        ChainError for any other rejection (bad signature, insufficient funds, nonce gap).
        """
        tx_hash = _hex(keccak(raw))
        try:
            with _translate_errors("eth_sendRawTransaction"):
                self._w3.eth.send_raw_transaction(raw)
        except ChainUnavailable:
            raise
        except ChainError as exc:
            if _is_benign_send_error(str(exc)) or self._node_has_tx(tx_hash):
                return tx_hash
            raise
        return tx_hash

    # -- internals --------------------------------------------------------------------------

    def _node_has_tx(self, tx_hash: str) -> bool:
        try:
            self._w3.eth.get_transaction(HexStr(tx_hash))
        except Exception:
            return False
        return True

    def _fee_fields(self) -> dict[str, int]:
        latest = self._w3.eth.get_block("latest")
        base_fee = latest.get("baseFeePerGas")
        if base_fee is None:  # pre-London chain
            return {"gasPrice": int(self._w3.eth.gas_price)}
        try:
            priority = int(self._w3.eth.max_priority_fee)
        except _UNAVAILABLE_ERRORS:
            raise
        except Exception:
            priority = DEFAULT_PRIORITY_FEE_WEI
        # 2x base fee survives six full blocks of base-fee growth before the tx stalls.
        return {"maxFeePerGas": 2 * int(base_fee) + priority, "maxPriorityFeePerGas": priority}

    def _decode_revert(self, exc: BaseException) -> tuple[str | None, tuple[object, ...]]:
        data = _revert_data(exc)
        if data is None or len(data) < 4:
            return None, ()
        entry = self._error_selectors.get(data[:4])
        if entry is None:
            return None, ()
        name, types = entry
        try:
            return name, tuple(abi_decode(types, data[4:]))
        except Exception:
            return name, ()


def _is_benign_send_error(message: str) -> bool:
    if _BENIGN_SEND_ERRORS.search(message):
        return True
    match = _ETH_TESTER_NONCE.search(message)
    return bool(match and int(match.group(2)) < int(match.group(1)))


def _error_selectors(abi: list[dict[str, Any]]) -> dict[bytes, tuple[str, list[str]]]:
    selectors: dict[bytes, tuple[str, list[str]]] = {}
    for item in abi:
        if item.get("type") != "error":
            continue
        types = [str(i["type"]) for i in item.get("inputs", [])]
        selectors[keccak(text=f"{item['name']}({','.join(types)})")[:4]] = (item["name"], types)
    return selectors


def _revert_data(exc: BaseException) -> bytes | None:
    """Best-effort extraction of revert data from whichever exception the backend raised."""
    for candidate in (exc, exc.__cause__, exc.__context__):
        if candidate is None:
            continue
        data = getattr(candidate, "data", None)
        if isinstance(data, dict):
            data = data.get("data")
        if isinstance(data, str) and data.startswith("0x"):
            try:
                return bytes.fromhex(data[2:])
            except ValueError:
                pass
        match = _ETH_TESTER_REVERT.search(str(candidate))
        if match:
            try:
                value = ast.literal_eval(match.group(1))
            except (ValueError, SyntaxError):
                continue
            if isinstance(value, bytes):
                return value
    return None
