// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

import {BatchPayouts} from "./BatchPayouts.sol";

/// @title Crowdmint payouts in an existing ERC-20 (a stablecoin, say)
/// @notice Pays each payout batch from a treasury in one transaction with `batchTransfer`, keyed
///         by a `batchId` the payout service chose before sending, and commits the Merkle root of
///         the batch's receipts. The treasury (a multisig, say) keeps the funds and approves this
///         contract for an allowance: the payout key can move at most that much, and only to the
///         wallets of a batch.
/// @dev Idempotency lives on-chain (see BatchPayouts): a batchId can be paid once.
contract RewardDistributor is AccessControl, BatchPayouts {
    using SafeERC20 for IERC20;

    bytes32 public constant DISTRIBUTOR_ROLE = keccak256("DISTRIBUTOR_ROLE");

    /// @notice The ERC-20 paid out.
    IERC20 public immutable asset;
    /// @notice Where payouts come from; it must approve this contract.
    address public immutable treasury;

    event BatchTransferred(
        bytes32 indexed batchId, bytes32 receiptsRoot, uint256 count, uint256 total
    );

    error InvalidAdmin();
    error InvalidAsset();
    error InvalidTreasury();
    error InvalidRecipient(uint256 index);

    /// @param admin receives DEFAULT_ADMIN_ROLE and DISTRIBUTOR_ROLE.
    constructor(address admin, IERC20 asset_, address treasury_) {
        if (admin == address(0)) revert InvalidAdmin();
        if (address(asset_) == address(0)) revert InvalidAsset();
        if (treasury_ == address(0)) revert InvalidTreasury();
        asset = asset_;
        treasury = treasury_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(DISTRIBUTOR_ROLE, admin);
    }

    /// @notice Transfers `amounts[i]` of `asset` from the treasury to `to[i]` for every i, once per
    ///         `batchId`, and records `receiptsRoot` for it.
    /// @dev Reverts with BatchAlreadyProcessed, EmptyReceiptsRoot, BatchLengthMismatch,
    ///      EmptyBatch, BatchTooLarge, InvalidRecipient for a zero address, the asset's own error
    ///      when the treasury's balance or allowance is short, or AccessControlUnauthorizedAccount
    ///      for a caller without DISTRIBUTOR_ROLE. Emits BatchTransferred.
    function batchTransfer(
        bytes32 batchId,
        bytes32 receiptsRoot,
        address[] calldata to,
        uint256[] calldata amounts
    ) external onlyRole(DISTRIBUTOR_ROLE) {
        uint256 count = to.length;
        // Recorded before any external call: a reentrant call with this batchId reverts.
        _recordBatch(batchId, receiptsRoot, count, amounts.length);

        IERC20 token = asset;
        address from = treasury;
        uint256 total;
        for (uint256 i; i < count;) {
            (address recipient, uint256 amount) = _batchEntry(to, amounts, i);
            if (recipient == address(0)) revert InvalidRecipient(i);
            token.safeTransferFrom(from, recipient, amount);
            total += amount;
            unchecked {
                ++i;
            }
        }

        emit BatchTransferred(batchId, receiptsRoot, count, total);
    }
}
