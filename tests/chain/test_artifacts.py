"""The committed contract artifacts are what the committed sources compile to.

The rebuild needs Node and ``rewards/contracts/node_modules`` (``make contracts``). Without
them the rebuild test skips on a developer machine and fails under CI=true, where CI
installs the node modules before running tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from rewards.chain.artifact import (
    ARTIFACTS_DIR,
    CONTRACT_NAMES,
    CONTRACTS_DIR,
    SOURCE_NAMES,
    load_artifact,
    sources_sha256,
)


def _node_or_skip() -> str:
    node = shutil.which("node")
    solc_js = CONTRACTS_DIR / "node_modules" / "solc"
    if node and solc_js.is_dir():
        return node
    reason = "node and rewards/contracts/node_modules are needed (run `make contracts`)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_each_artifact_was_built_from_the_committed_sources(name: str) -> None:
    assert load_artifact(name).sources_sha256 == sources_sha256(), (
        "a .sol source changed without a rebuild: run `make contracts` and commit the artifacts"
    )


def test_every_solidity_source_is_part_of_the_build() -> None:
    on_disk = sorted(
        str(p.relative_to(CONTRACTS_DIR))
        for p in CONTRACTS_DIR.rglob("*.sol")
        if "node_modules" not in p.parts
    )
    assert on_disk == sorted(SOURCE_NAMES)
    assert hashlib.sha256(b"").hexdigest() != sources_sha256()


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_the_artifact_targets_cancun_with_the_pinned_compiler(name: str) -> None:
    settings = json.loads((ARTIFACTS_DIR / f"{name}.json").read_text())["compiler"]["settings"]

    assert load_artifact(name).compiler_version.startswith("0.8.37+")
    assert settings["evmVersion"] == "cancun"  # py-evm cannot run solc 0.8.37's default, osaka
    assert settings["optimizer"]["enabled"] is True


def test_npm_dependencies_are_pinned_exactly() -> None:
    package = json.loads((CONTRACTS_DIR / "package.json").read_text())
    lock = json.loads((CONTRACTS_DIR / "package-lock.json").read_text())
    pinned = package["devDependencies"]

    assert pinned["solc"] == "0.8.37"
    assert pinned["hardhat"] == "2.29.1"
    assert pinned["@openzeppelin/contracts"].startswith("5.")
    for name, version in pinned.items():
        assert version[0].isdigit(), f"{name} must be pinned exactly, got {version}"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version


def test_a_fresh_build_reproduces_the_committed_artifact(tmp_path: Path) -> None:
    node = _node_or_skip()

    subprocess.run(
        [node, str(CONTRACTS_DIR / "build.mjs"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )

    for name in CONTRACT_NAMES:
        rebuilt = json.loads((tmp_path / f"{name}.json").read_text())
        committed = json.loads((ARTIFACTS_DIR / f"{name}.json").read_text())
        for key in ("abi", "bytecode", "deployedBytecode", "compiler", "sourcesSha256"):
            assert rebuilt[key] == committed[key], f"{name} {key} differs: `make contracts`"
        assert (tmp_path / f"{name}.json").read_bytes() == (
            ARTIFACTS_DIR / f"{name}.json"
        ).read_bytes()
