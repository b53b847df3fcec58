"""The compiled contracts, loaded from the committed build artifacts.

``rewards/contracts/build.mjs`` writes ``rewards/contracts/artifacts/<Contract>.json``; they are
committed so that Python never needs Node at runtime.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "contracts"
ARTIFACTS_DIR = CONTRACTS_DIR / "artifacts"
ARTIFACT_PATH = ARTIFACTS_DIR / "RewardToken.json"
SOURCE_PATH = CONTRACTS_DIR / "RewardToken.sol"
#: Every Solidity source of ours, by source unit name (build.mjs's SOURCES, in its order).
SOURCE_NAMES = (
    "BatchPayouts.sol",
    "RewardDistributor.sol",
    "RewardToken.sol",
    "test/MockStablecoin.sol",
)
CONTRACT_NAMES = ("RewardToken", "RewardDistributor", "MockStablecoin")


@dataclass(frozen=True)
class ContractArtifact:
    """ABI and bytecode of one compiled contract (0x-prefixed hex bytecode)."""

    contract_name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    compiler_version: str
    sources_sha256: str


def sources_sha256() -> str:
    """The digest build.mjs records: every source's name and text, in SOURCE_NAMES order."""
    digest = hashlib.sha256()
    for name in SOURCE_NAMES:
        digest.update(f"{name}\n{(CONTRACTS_DIR / name).read_text(encoding='utf-8')}\n".encode())
    return digest.hexdigest()


@cache
def load_artifact(name: str) -> ContractArtifact:
    """Load and cache the artifact of contract ``name`` (one of CONTRACT_NAMES).

    Raises ``FileNotFoundError`` if it was never built (run ``make contracts``) and
    ``KeyError``/``ValueError`` if it is malformed.
    """
    path = ARTIFACTS_DIR / f"{name}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    bytecode = data["bytecode"]
    if not isinstance(bytecode, str) or not bytecode.startswith("0x") or len(bytecode) < 4:
        raise ValueError(f"{path}: empty or malformed bytecode")
    return ContractArtifact(
        contract_name=data["contractName"],
        abi=data["abi"],
        bytecode=bytecode,
        deployed_bytecode=data["deployedBytecode"],
        compiler_version=data["compiler"]["version"],
        sources_sha256=data["sourcesSha256"],
    )


def load_reward_token_artifact() -> ContractArtifact:
    return load_artifact("RewardToken")
