// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Fixture} from "./Fixture.sol";
import {Test} from "./Base.sol";
import {PHA} from "../src/PHA.sol";
import {StakePools} from "../src/StakePools.sol";
import {Billing} from "../src/Billing.sol";

/// Drives StakePools and Billing with random sequences of deposit, withdraw, reward, slash,
/// settle, emission claims and time jumps, and keeps the ghost state the invariants need.
contract Handler is Test {
    PHA internal pha;
    StakePools internal pools;
    Billing internal billing;
    address[3] public stakers = [address(0x5001), address(0x5002), address(0x5003)];
    address[2] public operators;
    uint256[2] internal workerKeys;
    uint256 internal program;
    address internal programOwner;
    uint64[2] internal nonces;

    /// Set when a share price went down in an action other than a slash.
    bool public priceWentDown;
    uint256 public calls;

    constructor(
        PHA pha_,
        StakePools pools_,
        Billing billing_,
        address[2] memory ops,
        uint256[2] memory keys,
        uint256 program_,
        address owner_
    ) {
        pha = pha_;
        pools = pools_;
        billing = billing_;
        operators = ops;
        workerKeys = keys;
        program = program_;
        programOwner = owner_;
    }

    function allStakers() external view returns (address[3] memory) {
        return stakers;
    }

    // ---- actions

    function deposit(uint256 who, uint256 op, uint256 amount) external tracked(false) {
        address s = stakers[who % 3];
        amount = bound(amount, 1e18, pha.balanceOf(s) < 1e18 ? 1e18 : pha.balanceOf(s));
        if (pha.balanceOf(s) < amount) return;
        vm.prank(s);
        try pools.deposit(operators[op % 2], amount) {} catch {}
    }

    function requestWithdraw(uint256 who, uint256 op, uint256 fraction) external tracked(false) {
        address s = stakers[who % 3];
        address o = operators[op % 2];
        uint256 shares = pools.sharesOf(o, s) * bound(fraction, 1, 100) / 100;
        if (shares == 0) return;
        vm.prank(s);
        pools.requestWithdraw(o, shares);
    }

    function delegateVotes(uint256 who, uint256 to) external tracked(false) {
        address s = stakers[who % 3];
        address d = to % 4 == 3 ? address(0) : stakers[to % 4];
        vm.prank(s);
        pools.delegate(d);
    }

    function syncVotes(uint256 who, uint256 op) external tracked(false) {
        pools.syncVotes(stakers[who % 3], operators[op % 2]);
    }

    function processWithdrawals(uint256 op) external tracked(false) {
        pools.processWithdrawals(operators[op % 2], 5);
    }

    function reward(uint256 op, uint256 amount) external tracked(false) {
        amount = bound(amount, 0, 10_000e18);
        pools.distribute(operators[op % 2], amount);
    }

    function slash(uint256 op, uint256 amount) external tracked(true) {
        address o = operators[op % 2];
        StakePools.Pool memory p = pools.pool(o);
        amount = bound(amount, 0, p.totalStake / 20); // within the 10 % cap most of the time
        try pools.slash(o, amount, "fuzz") {} catch {}
    }

    function forceStop(uint256 op) external tracked(false) {
        try pools.forceStop(operators[op % 2]) {} catch {}
    }

    function restartWorker(uint256 op) external tracked(false) {
        uint256 i = op % 2;
        address w = vm.addr(workerKeys[i]);
        vm.startPrank(operators[i]);
        try pools.stopWorker(w) {} catch {}
        try pools.startWorker(w, 1_000e18) {} catch {}
        vm.stopPrank();
    }

    function programDeposit(uint256 amount) external tracked(false) {
        amount = bound(amount, 0, 1_000e18);
        billing.deposit(program, amount);
    }

    function programWithdraw(uint256 amount) external tracked(false) {
        vm.prank(programOwner);
        billing.requestWithdrawal(program, uint192(bound(amount, 1, 2_000e18)));
        vm.warp(block.timestamp + 60);
        vm.prank(programOwner);
        billing.withdraw(program, programOwner);
    }

    function settle(uint256 op, uint64 requests, uint64 cpu, uint64 tokens) external tracked(false) {
        uint256 i = op % 2;
        Billing.UsageBatch memory b;
        b.worker = vm.addr(workerKeys[i]);
        b.nonce = nonces[i]++;
        b.entries = new Billing.UsageEntry[](1);
        b.entries[0] = Billing.UsageEntry(
            program, uint64(bound(requests, 0, 100_000)), uint64(bound(cpu, 0, 1e6)), 0, uint64(bound(tokens, 0, 1e6))
        );
        billing.submitUsage(b, signDigest(workerKeys[i], billing.usageDigest(b)));
    }

    function claimEmission(uint256 op, uint256 back) external tracked(false) {
        uint256 epoch = billing.currentEpoch();
        if (epoch == 0) return;
        try billing.claimEmission(epoch - 1 - bound(back, 0, epoch - 1), operators[op % 2]) {} catch {}
    }

    function sweepTreasury() external tracked(false) {
        billing.sweepTreasury();
    }

    function warp(uint256 secs) external tracked(false) {
        vm.warp(block.timestamp + bound(secs, 1, 200));
        vm.roll(block.number + 1);
    }

    // ---- share-price tracking

    modifier tracked(bool isSlash) {
        ++calls;
        uint256[2] memory stake;
        uint256[2] memory shares;
        for (uint256 i = 0; i < 2; ++i) {
            StakePools.Pool memory p = pools.pool(operators[i]);
            (stake[i], shares[i]) = (p.totalStake, p.totalShares);
        }
        _;
        if (isSlash) return;
        for (uint256 i = 0; i < 2; ++i) {
            StakePools.Pool memory p = pools.pool(operators[i]);
            if (shares[i] == 0 || p.totalShares == 0) continue;
            // new price >= old price  <=>  newStake * oldShares >= oldStake * newShares
            if (p.totalStake * shares[i] < stake[i] * p.totalShares) priceWentDown = true;
        }
    }
}

contract AccountingInvariants is Fixture {
    Handler internal handler;
    address[2] internal ops = [address(0x0BE1), address(0x0BE2)];

    function setUp() public override {
        super.setUp();
        uint256 prog = newProgram(alice);
        runningWorker(workerKey, ops[0], 1_000e18);
        runningWorker(worker2Key, ops[1], 1_000e18);
        handler = new Handler(pha, pools, billing, ops, [workerKey, worker2Key], prog, alice);
        pools.grantRole(0x00, address(handler)); // the handler slashes as governance
        give(address(handler), 1_000_000e18);
        vm.startPrank(address(handler));
        pha.approve(address(pools), type(uint256).max);
        pha.approve(address(billing), type(uint256).max);
        vm.stopPrank();
        address[3] memory s = handler.allStakers();
        for (uint256 i = 0; i < 3; ++i) {
            give(s[i], 100_000e18);
            vm.prank(s[i]);
            pha.approve(address(pools), type(uint256).max);
        }
        targetContract(address(handler));
    }

    /// Every PHA is held by someone we know: nothing created, nothing lost.
    function invariantNoTokenCreatedOrLost() public view {
        address[3] memory s = handler.allStakers();
        uint256 sum = pha.balanceOf(address(this)) + pha.balanceOf(address(handler)) + pha.balanceOf(treasury)
            + pha.balanceOf(address(pools)) + pha.balanceOf(address(billing)) + pha.balanceOf(alice)
            + pha.balanceOf(ops[0]) + pha.balanceOf(ops[1]);
        for (uint256 i = 0; i < 3; ++i) {
            sum += pha.balanceOf(s[i]);
        }
        assertEq(sum, pha.totalSupply(), "sum of balances");
        assertEq(pha.totalSupply(), 1_000_000_000e18, "fixed supply");
    }

    /// StakePools holds exactly the stake and commission it owes.
    function invariantStakePoolsSolvent() public view {
        uint256 owed;
        for (uint256 i = 0; i < 2; ++i) {
            StakePools.Pool memory p = pools.pool(ops[i]);
            owed += p.totalStake + p.commission;
        }
        assertEq(pha.balanceOf(address(pools)), owed, "pools balance");
    }

    /// Shares add up: every staker's active + queued shares make the pool's total.
    function invariantSharesAddUp() public view {
        address[3] memory s = handler.allStakers();
        for (uint256 i = 0; i < 2; ++i) {
            uint256 sum = pools.sharesOf(ops[i], ops[i]) + pools.queuedSharesOf(ops[i], ops[i]);
            for (uint256 j = 0; j < 3; ++j) {
                sum += pools.sharesOf(ops[i], s[j]) + pools.queuedSharesOf(ops[i], s[j]);
            }
            StakePools.Pool memory p = pools.pool(ops[i]);
            assertEq(sum, p.totalShares, "shares");
            assertLe(p.lockedStake, p.totalStake, "locked <= stake");
        }
    }

    /// Billing holds exactly deposits + emission reserve + committed emissions + treasury fees.
    function invariantBillingSolvent() public view {
        uint256 owed = billing.deposits(1) + billing.emissionReserve() + billing.emissionCommitted()
            + billing.treasuryAccrued();
        assertEq(pha.balanceOf(address(billing)), owed, "billing balance");
    }

    /// Stake votes are conserved: what delegatees hold equals the stakers' voting units, and no
    /// staker's units exceed the value of its shares by more than rounding since its last sync
    /// (they can only lag rewards or slashes, which `syncVotes` corrects).
    function invariantStakeVotesConserved() public view {
        address[3] memory s = handler.allStakers();
        uint256 votes;
        uint256 units;
        for (uint256 i = 0; i < 3; ++i) {
            votes += pools.getVotes(s[i]);
            units += pools.votingUnits(s[i]);
        }
        for (uint256 i = 0; i < 2; ++i) {
            votes += pools.getVotes(ops[i]);
            units += pools.votingUnits(ops[i]);
        }
        assertEq(votes, units, "stake votes");
    }

    /// Share prices never go down except by slashing.
    function invariantSharePriceMonotone() public view {
        assertFalse(handler.priceWentDown());
    }
}
