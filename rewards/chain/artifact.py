"""The compiled RewardToken, loaded from the committed build artifact.

``rewards/contracts/build.mjs`` writes ``rewards/contracts/artifacts/RewardToken.json``; it
is committed so that Python never needs Node at runtime.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ARTIFACT_PATH = (
    Path(__file__).resolve().parent.parent / "contracts" / "artifacts" / "RewardToken.json"
)
SOURCE_PATH = Path(__file__).resolve().parent.parent / "contracts" / "RewardToken.sol"


@dataclass(frozen=True)
class ContractArtifact:
    """ABI and bytecode of one compiled contract (0x-prefixed hex bytecode)."""

    contract_name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    compiler_version: str
    source_sha256: str


@cache
def load_reward_token_artifact(path: Path = ARTIFACT_PATH) -> ContractArtifact:
    """Load and cache the RewardToken artifact.

    Raises ``FileNotFoundError`` if the artifact was never built (run ``make contracts``)
    and ``KeyError``/``ValueError`` if it is malformed.
    """
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
        source_sha256=data["sourceSha256"],
    )
