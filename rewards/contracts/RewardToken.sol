// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

import {BatchPayouts} from "./BatchPayouts.sol";

/// @title Crowdmint reward token (CMT)
/// @notice Contributors are paid in CMT when a deployment mints its own token. The payout
///         service mints each payout batch in one transaction with `batchMint`, keyed by a
///         `batchId` it chose before sending, and commits the Merkle root of the batch's receipts.
/// @dev Idempotency lives on-chain (see BatchPayouts): a batchId can be minted once.
contract RewardToken is ERC20, AccessControl, BatchPayouts {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    event BatchMinted(bytes32 indexed batchId, bytes32 receiptsRoot, uint256 count, uint256 total);

    error InvalidAdmin();

    /// @param admin receives DEFAULT_ADMIN_ROLE (can grant/revoke minters) and MINTER_ROLE.
    constructor(address admin) ERC20("Crowdmint", "CMT") {
        if (admin == address(0)) revert InvalidAdmin();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
    }

    /// @notice Mints `amounts[i]` to `to[i]` for every i, once per `batchId`, and records
    ///         `receiptsRoot` for it.
    /// @dev Reverts with BatchAlreadyProcessed, EmptyReceiptsRoot, BatchLengthMismatch,
    ///      EmptyBatch, BatchTooLarge, ERC20InvalidReceiver(address(0)) for a zero recipient, or
    ///      AccessControlUnauthorizedAccount for a caller without MINTER_ROLE.
    ///      Emits one Transfer per recipient, then BatchMinted.
    function batchMint(
        bytes32 batchId,
        bytes32 receiptsRoot,
        address[] calldata to,
        uint256[] calldata amounts
    ) external onlyRole(MINTER_ROLE) {
        uint256 count = to.length;
        // Effects before the loop; _mint makes no external calls, so there is no reentrancy
        // path either way, but the record must be made in the same transaction as the mints.
        _recordBatch(batchId, receiptsRoot, count, amounts.length);

        uint256 total;
        for (uint256 i; i < count;) {
            (address recipient, uint256 amount) = _batchEntry(to, amounts, i);
            // _mint rejects address(0) and does a checked add on totalSupply.
            _mint(recipient, amount);
            unchecked {
                // Cannot overflow: `total` is a part of totalSupply, whose adds are checked.
                total += amount;
                ++i;
            }
        }

        emit BatchMinted(batchId, receiptsRoot, count, total);
    }
}
