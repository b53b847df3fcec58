// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title Crowdmint reward token (CMT)
/// @notice Contributors are paid in CMT. The payout service mints each payout batch in one
///         transaction with `batchMint`, keyed by a `batchId` it chose before sending.
/// @dev Idempotency lives on-chain: a batchId can be minted once. The payout service never
///      trusts an RPC error to know whether a batch landed (a node that dies after mining
///      still answers with a connection error); it reads `processedBatches(batchId)`.
contract RewardToken is ERC20, AccessControl {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @notice Upper bound on recipients per batch: keeps a batch well under a node's
    ///         per-transaction gas cap (Hardhat: 16,777,216) even when every wallet is new.
    uint256 public constant MAX_BATCH_SIZE = 500;

    /// @notice batchId => true once that batch was minted.
    mapping(bytes32 batchId => bool processed) public processedBatches;

    event BatchMinted(bytes32 indexed batchId, uint256 count, uint256 total);

    error BatchAlreadyProcessed(bytes32 batchId);
    error BatchLengthMismatch(uint256 recipients, uint256 amounts);
    error EmptyBatch();
    error BatchTooLarge(uint256 count, uint256 max);
    error InvalidAdmin();

    /// @param admin receives DEFAULT_ADMIN_ROLE (can grant/revoke minters) and MINTER_ROLE.
    constructor(address admin) ERC20("Crowdmint", "CMT") {
        if (admin == address(0)) revert InvalidAdmin();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
    }

    /// @notice Mints `amounts[i]` to `to[i]` for every i, once per `batchId`.
    /// @dev Reverts with BatchAlreadyProcessed, BatchLengthMismatch, EmptyBatch, BatchTooLarge,
    ///      ERC20InvalidReceiver(address(0)) for a zero recipient, or
    ///      AccessControlUnauthorizedAccount for a caller without MINTER_ROLE.
    ///      Emits one Transfer per recipient, then BatchMinted.
    function batchMint(bytes32 batchId, address[] calldata to, uint256[] calldata amounts)
        external
        onlyRole(MINTER_ROLE)
    {
        uint256 count = to.length;
        if (processedBatches[batchId]) revert BatchAlreadyProcessed(batchId);
        if (count != amounts.length) revert BatchLengthMismatch(count, amounts.length);
        if (count == 0) revert EmptyBatch();
        if (count > MAX_BATCH_SIZE) revert BatchTooLarge(count, MAX_BATCH_SIZE);

        // Effects before the loop; _mint makes no external calls, so there is no reentrancy
        // path either way, but the flag must be set in the same transaction as the mints.
        processedBatches[batchId] = true;

        uint256 total;
        for (uint256 i; i < count;) {
            uint256 amount = amounts[i];
            // _mint rejects address(0) and does a checked add on totalSupply.
            _mint(to[i], amount);
            unchecked {
                // Cannot overflow: `total` is a part of totalSupply, whose adds are checked.
                total += amount;
                ++i;
            }
        }

        emit BatchMinted(batchId, count, total);
    }
}
