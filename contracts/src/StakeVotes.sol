// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IERC5805} from "@openzeppelin/contracts/interfaces/IERC5805.sol";

/// @title StakeVotes: the voting power of staked PHA (IVotes + IERC6372, block-number clock).
/// @notice The same interface and events as OpenZeppelin `Votes`, with a storage layout made for
/// a cheap first stake (docs/adr/0050-stake-votes-storage.md): an account's own voting units,
/// its current votes and the block of its latest checkpoint share one slot, so a staker's first
/// deposit creates one account slot instead of four (units, checkpoint array length, checkpoint
/// entry, plus the delegation default). Older checkpoints move to `_history` only when a later
/// block changes the votes. Votes count for the account itself until it delegates elsewhere.
/// Units and votes are uint96 (7.9e28 wei > PHA's total supply of 1e27); checkpoint blocks are
/// uint40.
abstract contract StakeVotes is EIP712, Nonces, IERC5805 {
    bytes32 private constant DELEGATION_TYPEHASH = keccak256("Delegation(address delegatee,uint256 nonce,uint256 expiry)");

    struct Account {
        uint96 units; // the account's own voting units
        uint96 votes; // votes delegated to the account (its own included), as of `key`
        uint40 key; // block of the latest checkpoint; 0 = none yet
        uint24 history; // number of older checkpoints in `_history`
    }

    struct Checkpoint {
        uint40 key;
        uint96 votes;
    }

    mapping(address => Account) private _accounts;
    mapping(address => mapping(uint256 => Checkpoint)) private _history;
    mapping(address => address) private _delegatee; // zero: the account itself

    error ERC5805FutureLookup(uint256 timepoint, uint48 clock);
    error TotalSupplyNotTracked();

    // ---------------------------------------------------------------- IERC6372

    function clock() public view virtual returns (uint48) {
        return SafeCast.toUint48(block.number);
    }

    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() public view virtual returns (string memory) {
        return "mode=blocknumber&from=default";
    }

    // ---------------------------------------------------------------- IVotes

    function getVotes(address account) public view returns (uint256) {
        return _accounts[account].votes;
    }

    /// Votes of `account` at the end of block `timepoint` (which must be in the past).
    function getPastVotes(address account, uint256 timepoint) public view returns (uint256) {
        uint48 now_ = clock();
        if (timepoint >= now_) revert ERC5805FutureLookup(timepoint, now_);
        Account memory a = _accounts[account];
        if (a.key == 0) return 0;
        if (timepoint >= a.key) return a.votes;
        // The last older checkpoint with key <= timepoint (keys strictly increase).
        mapping(uint256 => Checkpoint) storage h = _history[account];
        uint256 lo = 0;
        uint256 hi = a.history;
        while (lo < hi) {
            uint256 mid = (lo + hi) / 2;
            if (h[mid].key > timepoint) hi = mid;
            else lo = mid + 1;
        }
        return lo == 0 ? 0 : h[lo - 1].votes;
    }

    /// Not tracked: a total-supply checkpoint on every deposit would cost ~5-25k gas and the
    /// Governor's quorum counts PHA's total supply, which includes staked PHA.
    function getPastTotalSupply(uint256) public pure returns (uint256) {
        revert TotalSupplyNotTracked();
    }

    /// Stake votes count for the account itself until it delegates them elsewhere.
    function delegates(address account) public view returns (address) {
        address d = _delegatee[account];
        return d == address(0) ? account : d;
    }

    /// Delegate the caller's stake votes; address(0) means back to the caller itself.
    function delegate(address delegatee) public {
        _delegate(msg.sender, delegatee);
    }

    function delegateBySig(address delegatee, uint256 nonce, uint256 expiry, uint8 v, bytes32 r, bytes32 s) public {
        if (block.timestamp > expiry) revert VotesExpiredSignature(expiry);
        address signer =
            ECDSA.recover(_hashTypedDataV4(keccak256(abi.encode(DELEGATION_TYPEHASH, delegatee, nonce, expiry))), v, r, s);
        _useCheckedNonce(signer, nonce);
        _delegate(signer, delegatee);
    }

    // ---------------------------------------------------------------- for the pools

    /// The account's own voting units.
    function _unitsOf(address account) internal view returns (uint256) {
        return _accounts[account].units;
    }

    /// Change `account`'s own units by `+add - sub` and its delegate's votes with them.
    function _moveUnits(address account, uint256 add, uint256 sub) internal {
        Account memory a = _accounts[account];
        a.units = SafeCast.toUint96(uint256(a.units) + add - sub);
        address d = _delegatee[account];
        if (d == address(0)) {
            _setVotes(account, a, add, sub); // one store for units and votes
        } else {
            _accounts[account] = a;
            _moveVotes(d, add, sub);
        }
    }

    // ---------------------------------------------------------------- internal

    function _delegate(address account, address delegatee) private {
        address to = delegatee == address(0) ? account : delegatee;
        address from = delegates(account);
        _delegatee[account] = to == account ? address(0) : to;
        emit DelegateChanged(account, from, to);
        if (from == to) return;
        uint256 units = _accounts[account].units;
        if (units == 0) return;
        _moveVotes(from, 0, units);
        _moveVotes(to, units, 0);
    }

    function _moveVotes(address who, uint256 add, uint256 sub) private {
        _setVotes(who, _accounts[who], add, sub);
    }

    /// Write `who`'s account `a` with its votes changed by `+add - sub`, checkpointing the
    /// previous votes when they were set in an earlier block.
    function _setVotes(address who, Account memory a, uint256 add, uint256 sub) private {
        uint256 old = a.votes;
        uint256 next = old + add - sub;
        uint40 now_ = SafeCast.toUint40(block.number);
        if (a.key != now_) {
            if (a.key != 0) {
                _history[who][a.history] = Checkpoint(a.key, a.votes);
                a.history += 1;
            }
            a.key = now_;
        }
        a.votes = SafeCast.toUint96(next);
        _accounts[who] = a;
        if (old != next) emit DelegateVotesChanged(who, old, next);
    }
}
