// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title Idempotent payout batches that commit to their receipts
/// @notice Every payout batch has a `batchId` chosen by the payout service before sending, and the
///         Merkle root of the receipts it pays (one leaf per ledger entry). A batch id is paid at
///         most once: its root is stored when it is paid, and a second payment reverts.
/// @dev The payout service never trusts an RPC error to know whether a batch landed (a node that
///      dies after mining still answers with a connection error); it reads
///      `processedBatches(batchId)`. Anyone can check a receipt against the stored root with
///      `verifyReceipt` (OpenZeppelin MerkleProof: sorted-pair keccak256).
abstract contract BatchPayouts {
    /// @notice Upper bound on recipients per batch: keeps a batch well under a node's
    ///         per-transaction gas cap (Hardhat: 16,777,216) even when every wallet is new.
    uint256 public constant MAX_BATCH_SIZE = 500;

    /// @notice batchId => Merkle root of the batch's receipts; zero until the batch is paid.
    mapping(bytes32 batchId => bytes32 receiptsRoot) public batchRoots;

    error BatchAlreadyProcessed(bytes32 batchId);
    error BatchLengthMismatch(uint256 recipients, uint256 amounts);
    error EmptyBatch();
    error BatchTooLarge(uint256 count, uint256 max);
    error EmptyReceiptsRoot();
    error InvalidRecipientWord(uint256 index);

    /// @notice Whether `batchId` has been paid.
    function processedBatches(bytes32 batchId) external view returns (bool) {
        return batchRoots[batchId] != bytes32(0);
    }

    /// @notice Whether `leaf` is one of the receipts of the paid batch `batchId`.
    function verifyReceipt(bytes32 batchId, bytes32[] calldata proof, bytes32 leaf)
        external
        view
        returns (bool)
    {
        bytes32 root = batchRoots[batchId];
        return root != bytes32(0) && MerkleProof.verifyCalldata(proof, root, leaf);
    }

    /// @dev Checks a batch and records it as paid, in the transaction that pays it.
    function _recordBatch(bytes32 batchId, bytes32 receiptsRoot, uint256 count, uint256 amounts)
        internal
    {
        if (batchRoots[batchId] != bytes32(0)) revert BatchAlreadyProcessed(batchId);
        if (receiptsRoot == bytes32(0)) revert EmptyReceiptsRoot();
        if (count != amounts) revert BatchLengthMismatch(count, amounts);
        if (count == 0) revert EmptyBatch();
        if (count > MAX_BATCH_SIZE) revert BatchTooLarge(count, MAX_BATCH_SIZE);
        batchRoots[batchId] = receiptsRoot;
    }

    /// @dev `to[i]` and `amounts[i]` read without the per-read bounds checks the compiler adds:
    ///      the caller has checked that both arrays hold `count` entries (`_recordBatch`) and
    ///      that `i < count`, and the ABI decoder has checked at entry that both arrays lie
    ///      inside the calldata. A recipient word with any of its top 96 bits set reverts, as
    ///      ABI decoding of an `address` would.
    function _batchEntry(address[] calldata to, uint256[] calldata amounts, uint256 i)
        internal
        pure
        returns (address recipient, uint256 amount)
    {
        uint256 word;
        assembly ("memory-safe") {
            let at := shl(5, i)
            word := calldataload(add(to.offset, at))
            amount := calldataload(add(amounts.offset, at))
        }
        if (word >> 160 != 0) revert InvalidRecipientWord(i);
        recipient = address(uint160(word));
    }
}
