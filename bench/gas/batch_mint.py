"""Gas per paid contributor: RewardToken.batchMint and RewardDistributor.batchTransfer versus one
transaction per contributor.

Runs on the embedded EVM (py-evm through eth-tester) by default, or on a JSON-RPC node with
--rpc-url (e.g. `npx hardhat node` from rewards/contracts). Everything is measured in the
same run on the same fresh chain:

- batchMint of COUNT new wallets (one tx), then of the same COUNT wallets again (returning);
- peer 1: batchMint with a single recipient, one tx per contributor (what the payout service
  would do without batching; it keeps the on-chain idempotency flag);
- peer 2: a plain ERC-20 `transfer` from a pre-minted treasury, one tx per contributor (the
  textbook way to pay a list of wallets; no idempotency flag);
- batchTransfer of an existing 6-decimal ERC-20 (the test stablecoin) from a treasury by
  allowance, to min(COUNT, 400) new wallets, then to the same wallets again.

Every batch commits a receipts root (the contracts store it per batch id), as in production.

"Gas per recipient" is the total gas of all the scenario's transactions divided by the number
of recipients, so the 21,000 intrinsic gas and per-tx fixed costs are included.

Usage: python bench/gas/batch_mint.py [--count 500] [--out bench/gas/results.md]
       python bench/gas/batch_mint.py --rpc-url http://127.0.0.1:8545 --out /tmp/hardhat.md
Exit status 1 when a batchMint figure misses its target.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from eth_abi.abi import encode  # noqa: E402
from eth_account import Account  # noqa: E402
from eth_utils.address import to_checksum_address  # noqa: E402
from eth_utils.crypto import keccak  # noqa: E402

from rewards.chain import (  # noqa: E402
    MAX_BATCH_SIZE,
    MAX_TRANSFER_BATCH_SIZE,
    ChainClient,
    batch_id_from_key,
    embedded_account_keys,
    embedded_client,
    rpc_client,
)
from rewards.chain.artifact import ARTIFACTS_DIR  # noqa: E402
from rewards.chain.merkle import merkle_root  # noqa: E402

ARTIFACT_PATH = ARTIFACTS_DIR / "RewardToken.json"

TARGET_NEW = 26_000  # the floor is the 22,100-gas first write of a balance slot
TARGET_RETURNING = 9_000
# Hardhat's well-known account #0: a public test key, prefunded on every Hardhat node.
HARDHAT_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
TRANSFER_SELECTOR = keccak(text="transfer(address,uint256)")[:4]
ONE_TOKEN = 10**18
ONE_DOLLAR = 10**6


@dataclass(frozen=True)
class Row:
    scenario: str
    wallets: str
    txs: int
    total_gas: int
    recipients: int
    seconds: float
    target: int | None = None

    @property
    def per_recipient(self) -> float:
        return self.total_gas / self.recipients

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        return "meets" if self.per_recipient <= self.target else "MISSES"


def payout_amounts(count: int) -> list[int]:
    """Realistic, varied payouts (1 to 7 tokens plus dust), deterministic."""
    return [ONE_TOKEN * (1 + i % 7) + i * 10**12 for i in range(count)]


def contributor_wallets(count: int, seed: str) -> list[str]:
    return [to_checksum_address(keccak(text=f"{seed}-{i}")[12:]) for i in range(count)]


def mined_gas(client: ChainClient, tx_hash: str) -> int:
    receipt = client.wait_for_receipt(tx_hash, timeout=120)
    if receipt is None or not receipt.status:
        raise SystemExit(f"benchmark tx {tx_hash} failed: {receipt}")
    return receipt.gas_used


def receipts_root(key: str, recipients: list[str]) -> bytes:
    """A root over one leaf per recipient, as a batch of that many receipts commits."""
    return merkle_root([keccak(text=f"{key}-{wallet}") for wallet in recipients])


def batch_mint(client: ChainClient, key: str, recipients: list[str], amounts: list[int]) -> int:
    """One batch payment (batchMint, or batchTransfer in the client's ERC-20 mode)."""
    root = receipts_root(key, recipients)
    signed = client.sign_payout_batch(batch_id_from_key(key), root, recipients, amounts)
    client.send_raw(signed.raw)
    return mined_gas(client, signed.tx_hash)


def timed(fn: Callable[[], int]) -> tuple[int, float]:
    start = time.perf_counter()
    gas = fn()
    return gas, time.perf_counter() - start


def transfer_each(client: ChainClient, key: str, recipients: list[str], amounts: list[int]) -> int:
    """One plain ERC-20 transfer per recipient from the signer's (treasury's) balance."""
    account = Account.from_key(key)
    assert client.token_address is not None
    nonce = client.next_nonce()
    total = 0
    for offset, (to, amount) in enumerate(zip(recipients, amounts, strict=True)):
        tx = {
            "to": client.token_address,
            "data": TRANSFER_SELECTOR + encode(["address", "uint256"], [to, amount]),
            "value": 0,
            "gas": 100_000,
            "nonce": nonce + offset,
            "chainId": client.chain_id,
            "maxFeePerGas": 20 * 10**9,
            "maxPriorityFeePerGas": 10**9,
        }
        signed = account.sign_transaction(tx)
        total += mined_gas(client, client.send_raw(bytes(signed.raw_transaction)))
    return total


def single_mint_each(
    client: ChainClient, tag: str, recipients: list[str], amounts: list[int]
) -> int:
    total = 0
    for i, (to, amount) in enumerate(zip(recipients, amounts, strict=True)):
        total += batch_mint(client, f"{tag}-{i}", [to], [amount])
    return total


def run(client: ChainClient, key: str, count: int) -> list[Row]:
    client.deploy_token()
    amounts = payout_amounts(count)
    rows: list[Row] = []

    batch_wallets = contributor_wallets(count, "batch")
    # The targets are defined for a full batch, where the fixed cost is spread over 500.
    full = count == MAX_BATCH_SIZE
    for label, target, key_suffix in (
        ("new", TARGET_NEW if full else None, "first"),
        ("returning", TARGET_RETURNING if full else None, "second"),
    ):
        gas, secs = timed(
            lambda k=key_suffix: batch_mint(client, f"bench-{k}", batch_wallets, amounts)
        )
        rows.append(
            Row(f"batchMint, {count} recipients in 1 tx", label, 1, gas, count, secs, target)
        )

    single_wallets = contributor_wallets(count, "single")
    for label, tag in (("new", "single-a"), ("returning", "single-b")):
        gas, secs = timed(lambda t=tag: single_mint_each(client, t, single_wallets, amounts))
        rows.append(
            Row("peer: batchMint with 1 recipient, 1 tx each", label, count, gas, count, secs)
        )

    # Fund the treasury (the signer) for the transfer peer; not measured.
    batch_mint(client, "bench-treasury", [client.address], [2 * sum(amounts)])
    transfer_wallets = contributor_wallets(count, "transfer")
    for label in ("new", "returning"):
        gas, secs = timed(lambda: transfer_each(client, key, transfer_wallets, amounts))
        rows.append(Row("peer: ERC-20 transfer, 1 tx each", label, count, gas, count, secs))

    # Payouts in an existing ERC-20: the signer is also the treasury here, and approves the
    # distributor for a finite allowance (the safe configuration: each payout lowers it).
    stable = min(count, MAX_TRANSFER_BATCH_SIZE)
    dollars = [ONE_DOLLAR * (1 + i % 7) + i for i in range(stable)]
    asset = client.deploy_mock_stablecoin()
    client.mint_mock_stablecoin(asset, client.address, 10 * sum(dollars))
    distributor = client.deploy_distributor(asset, client.address)
    client.approve(asset, distributor, 5 * sum(dollars))
    stable_wallets = contributor_wallets(stable, "stable")
    for label, key_suffix in (("new", "first"), ("returning", "second")):
        gas, secs = timed(
            lambda k=key_suffix: batch_mint(client, f"stable-{k}", stable_wallets, dollars)
        )
        rows.append(
            Row(f"batchTransfer (ERC-20), {stable} recipients in 1 tx", label, 1, gas, stable, secs)
        )
    return rows


def environment(rpc_url: str | None, chain_id: int) -> list[tuple[str, str]]:
    artifact = json.loads(ARTIFACT_PATH.read_text())
    lock = json.loads((ARTIFACT_PATH.parent.parent / "package-lock.json").read_text())
    oz = lock["packages"]["node_modules/@openzeppelin/contracts"]["version"]
    settings = artifact["compiler"]["settings"]
    cpu = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    if rpc_url is None:
        from eth_tester import PyEVMBackend  # type: ignore[import-untyped]

        fork = PyEVMBackend().chain.get_vm().fork
        chain = (
            f"embedded eth-tester {importlib.metadata.version('eth-tester')} / "
            f"py-evm {importlib.metadata.version('py-evm')}, fork {fork}"
        )
    else:
        chain = (
            f"JSON-RPC node, chain id {chain_id} (31337: `npx hardhat node`, Hardhat 2.29.1 / EDR)"
        )
    return [
        ("date (UTC)", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")),
        ("chain", chain),
        ("machine", f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores"),
        ("python", platform.python_version()),
        ("web3", importlib.metadata.version("web3")),
        ("compiler", artifact["compiler"]["version"]),
        (
            "settings",
            f"evmVersion {settings['evmVersion']}, optimizer runs {settings['optimizer']['runs']}, "
            f"viaIR {settings.get('viaIR', False)}",
        ),
        ("@openzeppelin/contracts", oz),
    ]


def render(rows: list[Row], env: list[tuple[str, str]], count: int) -> str:
    by_key = {(r.scenario.split(",")[0], r.wallets): r for r in rows}
    lines = [
        "# Gas per paid contributor: `RewardToken.batchMint`, `RewardDistributor.batchTransfer`",
        "",
        "Generated by `python bench/gas/batch_mint.py`; do not edit by hand. Gas per recipient =",
        "total gas of the scenario's transactions / recipients (21,000 intrinsic gas per tx",
        "included). A new wallet's floor is the 22,100-gas first write of its balance slot.",
        "",
        "| scenario | wallets | txs | total gas | gas / recipient | target | |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        target = f"<= {r.target:,}" if r.target else ""
        lines.append(
            f"| {r.scenario} | {r.wallets} | {r.txs} | {r.total_gas:,} | "
            f"{r.per_recipient:,.0f} | {target} | {r.verdict} |"
        )
    lines += [
        "",
        "Each batch stores its receipts' Merkle root (one 32-byte slot per batch, which also marks",
        "the batch id as paid). The ERC-20 batchTransfer pulls each amount from the treasury with",
        "`transferFrom` under a finite allowance (so each payout also lowers the allowance).",
    ]
    lines += ["", f"Savings of one {count}-recipient batchMint over the peers, per recipient:", ""]
    for wallets in ("new", "returning"):
        ours = by_key[("batchMint", wallets)].per_recipient
        for peer in ("peer: batchMint with 1 recipient", "peer: ERC-20 transfer"):
            theirs = by_key[(peer, wallets)].per_recipient
            lines.append(
                f"- {wallets} wallets vs {peer.removeprefix('peer: ')}: "
                f"{theirs - ours:,.0f} gas ({1 - ours / theirs:.0%} less)"
            )
    lines += [
        "",
        f"Recipients per scenario: {count}. Wall-clock seconds (py-evm is slow, ~40-50 tx/s):",
        "",
    ]
    lines += [f"- {r.scenario}, {r.wallets}: {r.seconds:.1f}s" for r in rows]
    lines += ["", "## Environment", ""]
    lines += [f"- {name}: {value}" for name, value in env]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500, help="recipients per scenario")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results.md"))
    parser.add_argument("--rpc-url", help="measure on this JSON-RPC node instead")
    parser.add_argument("--private-key", default=HARDHAT_KEY_0, help="signer for --rpc-url")
    args = parser.parse_args(argv)

    if args.rpc_url:
        key = args.private_key
        client = rpc_client(args.rpc_url, key, None)
    else:
        key = embedded_account_keys()[0]
        client = embedded_client()
    rows = run(client, key, args.count)
    report = render(rows, environment(args.rpc_url, client.chain_id), args.count)
    args.out.write_text(report)
    print(report)
    return 1 if any(r.verdict == "MISSES" for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
