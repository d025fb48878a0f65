// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Fixture} from "./Fixture.sol";
import {StakePools} from "../src/StakePools.sol";
import {StakeVotes} from "../src/StakeVotes.sol";
import {Registry} from "../src/Registry.sol";
import {Retirable} from "../src/Retirable.sol";
import {IRegistry} from "../src/Interfaces.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

contract StakePoolsTest is Fixture {
    function setUp() public override {
        super.setUp();
        vm.prank(operator);
        pools.createPool(1000); // 10 %
        give(alice, 100_000e18);
        give(bob, 100_000e18);
        vm.prank(alice);
        pha.approve(address(pools), type(uint256).max);
        vm.prank(bob);
        pha.approve(address(pools), type(uint256).max);
        pha.approve(address(pools), type(uint256).max);
    }

    function unauthorized(address who) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, who, bytes32(0));
    }

    function depositAs(address who, uint256 amount) internal returns (uint256) {
        vm.prank(who);
        return pools.deposit(operator, amount);
    }

    function price() internal view returns (uint256) {
        StakePools.Pool memory p = pools.pool(operator);
        return p.totalStake * 1e18 / p.totalShares;
    }

    // ---------------------------------------------------------------- pools

    function testCreatePool() public view {
        StakePools.Pool memory p = pools.pool(operator);
        assertTrue(p.exists);
        assertEq(uint256(p.commissionBps), 1000);
        assertTrue(pools.poolExists(operator));
        assertFalse(pools.poolExists(alice));
    }

    function testCreatePoolReverts() public {
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(StakePools.PoolExists.selector, operator));
        pools.createPool(0);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(StakePools.CommissionTooHigh.selector, uint16(5001)));
        pools.createPool(5001);
    }

    function testSetCommission() public {
        vm.prank(operator);
        pools.setCommission(2500);
        assertEq(uint256(pools.pool(operator).commissionBps), 2500);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(StakePools.CommissionTooHigh.selector, uint16(6000)));
        pools.setCommission(6000);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(StakePools.NoPool.selector, alice));
        pools.setCommission(0);
    }

    // ---------------------------------------------------------------- deposits

    function testDepositMintsSharesAndVotes() public {
        uint256 shares = depositAs(alice, 1_000e18);
        assertEq(shares, 1_000e18);
        assertEq(pools.sharesOf(operator, alice), 1_000e18);
        assertEq(pha.balanceOf(address(pools)), 1_000e18);
        // Stake votes: self-delegated on the first deposit, counted at the next block.
        assertEq(pools.delegates(alice), alice);
        assertEq(pools.getVotes(alice), 1_000e18);
        assertEq(pools.votingUnits(alice), 1_000e18);
        vm.roll(block.number + 1);
        assertEq(pools.getPastVotes(alice, block.number - 1), 1_000e18);
    }

    function testDepositAfterRewardsAtHigherPrice() public {
        depositAs(alice, 1_000e18);
        pools.distribute(operator, 100e18); // 10 to commission, 90 to the price
        assertEq(pools.pool(operator).commission, 10e18);
        assertEq(pools.valueOf(operator, 1_000e18), 1_090e18);
        uint256 shares = depositAs(bob, 1_090e18);
        assertEq(shares, 1_000e18);
    }

    function testDepositReverts() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(StakePools.BelowMinimum.selector, 1e18 - 1, 1e18));
        pools.deposit(operator, 1e18 - 1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(StakePools.NoPool.selector, bob));
        pools.deposit(bob, 1e18);
        vm.prank(stranger); // no balance, no allowance
        vm.expectRevert();
        pools.deposit(operator, 1e18);
    }

    function testDepositRevertsOnZeroShares() public {
        StakePools.Params memory p = defaultParams();
        p.minDeposit = 1;
        pools.setParams(p);
        depositAs(alice, 1); // one share of one wei
        pools.distribute(operator, 1_000e18); // inflate the price: a deposit would round to 0 shares
        vm.prank(bob);
        vm.expectRevert(StakePools.ZeroShares.selector);
        pools.deposit(operator, 1e18);
    }

    function testDepositRevertsWhenRetired() public {
        pools.retire(address(0x9E77));
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Retirable.IsRetired.selector, address(0x9E77)));
        pools.deposit(operator, 1e18);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Retirable.IsRetired.selector, address(0x9E77)));
        pools.createPool(0);
    }

    // ---------------------------------------------------------------- withdrawals

    function testWithdrawAfterUnbonding() public {
        depositAs(alice, 1_000e18);
        vm.prank(alice);
        uint256 idx = pools.requestWithdraw(operator, 400e18);
        assertEq(idx, 0);
        assertEq(pools.queuedSharesOf(operator, alice), 400e18);
        assertEq(pools.processWithdrawals(operator, 10), 0); // not matured
        vm.warp(block.timestamp + 60);
        uint256 before = pha.balanceOf(alice);
        assertEq(pools.processWithdrawals(operator, 10), 1);
        assertEq(pha.balanceOf(alice) - before, 400e18);
        assertEq(pools.sharesOf(operator, alice), 600e18);
        assertEq(pools.queuedSharesOf(operator, alice), 0);
        assertEq(pools.getVotes(alice), 600e18);
        assertEq(pools.pool(operator).queueHead, 1);
    }

    function testQueuedSharesEarnAndAreSlashed() public {
        depositAs(alice, 1_000e18);
        vm.prank(alice);
        pools.requestWithdraw(operator, 1_000e18);
        pools.slash(operator, 100e18, "x");
        vm.warp(block.timestamp + 60);
        uint256 before = pha.balanceOf(alice);
        pools.processWithdrawals(operator, 1);
        assertEq(pha.balanceOf(alice) - before, 900e18);
    }

    function testRequestWithdrawReverts() public {
        depositAs(alice, 10e18);
        vm.prank(alice);
        vm.expectRevert(StakePools.ZeroShares.selector);
        pools.requestWithdraw(operator, 0);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(StakePools.InsufficientShares.selector, 10e18, 11e18));
        pools.requestWithdraw(operator, 11e18);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(StakePools.NoPool.selector, bob));
        pools.requestWithdraw(bob, 1);
    }



    function testUnfundedWithdrawal() public {
        runningWorker(workerKey, operator, 1_000e18);
        // The operator asks for all of its stake back while it is locked on the worker.
        vm.prank(operator);
        pools.requestWithdraw(operator, 1_000e18);
        vm.warp(block.timestamp + 60);
        assertEq(pools.processWithdrawals(operator, 1), 0); // matured but unfunded
        assertTrue(pools.canWork(worker));
        // Before the grace period ends nobody can force a stop.
        vm.expectRevert(abi.encodeWithSelector(StakePools.NothingOverdue.selector, operator));
        pools.forceStop(operator);
        vm.warp(block.timestamp + 60);
        vm.prank(stranger);
        pools.forceStop(operator);
        assertFalse(pools.canWork(worker));
        assertEq(pools.pool(operator).lockedStake, 0);
        assertEq(uint256(pools.pool(operator).generation), 1);
        assertEq(pools.processWithdrawals(operator, 1), 1);
        // Stopped worker cannot be stopped again; it can be restarted with fresh stake.
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(StakePools.WorkerNotRunning.selector, worker));
        pools.stopWorker(worker);
    }

    function testForceStopRevertsWhenFundable() public {
        depositAs(alice, 100e18);
        vm.expectRevert(abi.encodeWithSelector(StakePools.NothingOverdue.selector, operator));
        pools.forceStop(operator); // empty queue
        vm.prank(alice);
        pools.requestWithdraw(operator, 100e18);
        vm.warp(block.timestamp + 1000);
        vm.expectRevert(abi.encodeWithSelector(StakePools.NothingOverdue.selector, operator));
        pools.forceStop(operator); // overdue but fundable: just process it
        vm.expectRevert(abi.encodeWithSelector(StakePools.NoPool.selector, alice));
        pools.forceStop(alice);
    }

    function testQueueIsFifoAndRespectsMax() public {
        depositAs(alice, 100e18);
        depositAs(bob, 100e18);
        vm.prank(alice);
        pools.requestWithdraw(operator, 50e18);
        vm.prank(bob);
        pools.requestWithdraw(operator, 50e18);
        vm.prank(alice);
        pools.requestWithdraw(operator, 50e18);
        vm.warp(block.timestamp + 60);
        assertEq(pools.processWithdrawals(operator, 2), 2);
        assertEq(pools.queueLength(operator), 3);
        assertEq(pools.withdrawal(operator, 2).staker, alice);
        assertEq(pools.processWithdrawals(operator, 2), 1);
        assertEq(pools.processWithdrawals(operator, 2), 0);
    }

    // ---------------------------------------------------------------- workers

    function testStartStopWorker() public {
        runningWorker(workerKey, operator, 1_000e18);
        assertTrue(pools.canWork(worker));
        assertEq(pools.workerStake(worker).amount, 1_000e18);
        assertEq(pools.freeStake(operator), 0);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(StakePools.WorkerRunning.selector, worker));
        pools.startWorker(worker, 1_000e18);
        vm.prank(operator);
        pools.stopWorker(worker);
        assertFalse(pools.canWork(worker));
        assertEq(pools.freeStake(operator), 1_000e18);
    }

    function testStartWorkerReverts() public {
        registerWorker(workerKey, operator);
        registerWorker(worker2Key, alice);
        depositAs(alice, 1_500e18);
        vm.startPrank(operator);
        vm.expectRevert(abi.encodeWithSelector(StakePools.NotWorkerOperator.selector, worker2, operator));
        pools.startWorker(worker2, 1_000e18);
        vm.expectRevert(abi.encodeWithSelector(StakePools.BelowMinimum.selector, 999e18, 1_000e18));
        pools.startWorker(worker, 999e18);
        vm.expectRevert(abi.encodeWithSelector(StakePools.InsufficientFreeStake.selector, 1_500e18, 2_000e18));
        pools.startWorker(worker, 2_000e18);
        vm.stopPrank();
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(StakePools.NoPool.selector, alice));
        pools.startWorker(worker2, 1_000e18);
    }

    function testQueuedWithdrawalsAreNotFreeStake() public {
        registerWorker(workerKey, operator);
        depositAs(alice, 1_500e18);
        vm.prank(alice);
        pools.requestWithdraw(operator, 1_000e18);
        assertEq(pools.freeStake(operator), 500e18);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(StakePools.InsufficientFreeStake.selector, 500e18, 1_000e18));
        pools.startWorker(worker, 1_000e18);
    }

    function testCanWorkNeedsActiveRegistration() public {
        runningWorker(workerKey, operator, 1_000e18);
        vm.warp(block.timestamp + 1 hours); // registration expired
        assertFalse(pools.canWork(worker));
    }

    function testCanWorkNeedsMinStake() public {
        runningWorker(workerKey, operator, 1_000e18);
        StakePools.Params memory p = defaultParams();
        p.minStake = 2_000e18;
        pools.setParams(p);
        assertFalse(pools.canWork(worker));
    }

    // ---------------------------------------------------------------- rewards

    function testDistributeAndClaimCommission() public {
        depositAs(alice, 1_000e18);
        uint256 p0 = price();
        pools.distribute(operator, 1_000e18);
        assertEq(pools.pool(operator).commission, 100e18);
        assertGe(price(), p0, "price up");
        uint256 before = pha.balanceOf(operator);
        vm.prank(operator);
        pools.claimCommission();
        assertEq(pha.balanceOf(operator) - before, 100e18);
        assertEq(pools.pool(operator).commission, 0);
    }

    function testDistributeToEmptyPoolIsAllCommission() public {
        pools.distribute(operator, 5e18);
        assertEq(pools.pool(operator).commission, 5e18);
        assertEq(pools.pool(operator).totalStake, 0);
    }

    function testDistributeReverts() public {
        vm.expectRevert(abi.encodeWithSelector(StakePools.NoPool.selector, alice));
        pools.distribute(alice, 1);
        vm.prank(stranger);
        vm.expectRevert();
        pools.distribute(operator, 1e18); // no allowance
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(StakePools.NoPool.selector, alice));
        pools.claimCommission();
    }

    function testSyncVotesAfterRewards() public {
        depositAs(alice, 1_000e18);
        pools.distribute(operator, 1_000e18);
        assertEq(pools.getVotes(alice), 1_000e18); // not synced yet
        pools.syncVotes(alice, operator);
        assertEq(pools.getVotes(alice), 1_900e18);
        assertEq(pools.votingUnitsIn(alice, operator), 1_900e18);
    }

    // ---------------------------------------------------------------- slashing

    function testGovernanceSlash() public {
        depositAs(alice, 1_000e18);
        uint256 t0 = pha.balanceOf(treasury);
        pools.slash(operator, 100e18, "misbehaviour");
        assertEq(pha.balanceOf(treasury) - t0, 100e18);
        assertEq(pools.valueOf(operator, 1_000e18), 900e18);
        pools.syncVotes(alice, operator);
        assertEq(pools.getVotes(alice), 900e18);
    }

    function testSlashCap() public {
        depositAs(alice, 1_000e18);
        vm.expectRevert(abi.encodeWithSelector(StakePools.SlashAboveCap.selector, 100e18 + 1, 100e18));
        pools.slash(operator, 100e18 + 1, "");
        pools.slash(operator, 60e18, "");
        // The cap holds per window: 10 % of the stake at the window's start.
        vm.expectRevert(abi.encodeWithSelector(StakePools.SlashAboveCap.selector, 41e18, 40e18));
        pools.slash(operator, 41e18, "");
        pools.slash(operator, 40e18, "");
        vm.warp(block.timestamp + 1 days);
        pools.slash(operator, 90e18, "");
    }

    function testSlashRevertsForNonAdmin() public {
        depositAs(alice, 1_000e18);
        vm.prank(stranger);
        vm.expectRevert(unauthorized(stranger));
        pools.slash(operator, 1, "");
        vm.expectRevert(abi.encodeWithSelector(StakePools.NoPool.selector, alice));
        pools.slash(alice, 0, "");
    }

    function testSlashClampsLockedStake() public {
        runningWorker(workerKey, operator, 1_000e18);
        pools.slash(operator, 100e18, "");
        assertEq(pools.pool(operator).lockedStake, 900e18);
    }

    function testSlashOffline() public {
        runningWorker(workerKey, operator, 10_000e18);
        bytes32 digest = pools.offlineReportDigest(worker, uint64(block.timestamp - 600));
        bytes[] memory sigs = kmsSign(one(kms1Key), digest);
        uint256 t0 = pha.balanceOf(treasury);
        vm.prank(stranger);
        pools.slashOffline(worker, uint64(block.timestamp - 600), sigs);
        assertEq(pha.balanceOf(treasury) - t0, 100e18); // 1 % of the locked stake
        assertFalse(pools.canWork(worker));
        assertEq(pools.pool(operator).lockedStake, 0);
        assertTrue(pools.offlineReportUsed(digest));
    }

    function testSlashOfflineReplayReverts() public {
        runningWorker(workerKey, operator, 10_000e18);
        uint64 since = uint64(block.timestamp - 600);
        bytes[] memory sigs = kmsSign(one(kms1Key), pools.offlineReportDigest(worker, since));
        pools.slashOffline(worker, since, sigs);
        vm.prank(operator);
        pools.startWorker(worker, 1_000e18);
        vm.expectRevert(
            abi.encodeWithSelector(StakePools.ReportReplayed.selector, pools.offlineReportDigest(worker, since))
        );
        pools.slashOffline(worker, since, sigs);
    }

    function testSlashOfflineRevertsOnBadSignatureOrIdleWorker() public {
        runningWorker(workerKey, operator, 10_000e18);
        uint64 since = uint64(block.timestamp - 600);
        bytes[] memory bad = kmsSign(one(kms2Key), pools.offlineReportDigest(worker, since));
        vm.expectRevert(abi.encodeWithSelector(Registry.NotKmsMember.selector, vm.addr(kms2Key)));
        pools.slashOffline(worker, since, bad);
        bytes[] memory sigs = kmsSign(one(kms1Key), pools.offlineReportDigest(worker2, since));
        vm.expectRevert(abi.encodeWithSelector(StakePools.WorkerNotRunning.selector, worker2));
        pools.slashOffline(worker2, since, sigs);
    }

    function testSlashOfflineRespectsCap() public {
        StakePools.Params memory p = defaultParams();
        p.offlineSlashBps = 5000;
        pools.setParams(p);
        runningWorker(workerKey, operator, 10_000e18);
        uint64 since = uint64(block.timestamp - 600);
        uint256 t0 = pha.balanceOf(treasury);
        pools.slashOffline(worker, since, kmsSign(one(kms1Key), pools.offlineReportDigest(worker, since)));
        assertEq(pha.balanceOf(treasury) - t0, 1_000e18); // capped at 10 %, not 50 %
    }

    // ---------------------------------------------------------------- governance setters

    function testSetters() public {
        StakePools.Params memory p = defaultParams();
        p.minDeposit = 5e18;
        pools.setParams(p);
        (, uint256 minDeposit,,,,,,) = pools.params();
        assertEq(minDeposit, 5e18);
        pools.setTreasury(alice);
        assertEq(pools.treasury(), alice);
        pools.setRegistry(IRegistry(address(0x1234)));
        assertEq(address(pools.registry()), address(0x1234));
    }

    function testSettersRevert() public {
        StakePools.Params memory p = defaultParams();
        vm.startPrank(stranger);
        vm.expectRevert(unauthorized(stranger));
        pools.setParams(p);
        vm.expectRevert(unauthorized(stranger));
        pools.setTreasury(alice);
        vm.expectRevert(unauthorized(stranger));
        pools.setRegistry(IRegistry(address(1)));
        vm.stopPrank();
        p.slashCapBps = 10_001;
        vm.expectRevert(StakePools.BadParams.selector);
        pools.setParams(p);
        p = defaultParams();
        p.minDeposit = 0;
        vm.expectRevert(StakePools.BadParams.selector);
        pools.setParams(p);
        vm.expectRevert(Retirable.ZeroAddress.selector);
        pools.setTreasury(address(0));
        vm.expectRevert(Retirable.ZeroAddress.selector);
        pools.setRegistry(IRegistry(address(0)));
    }

    function testWithdrawalsStayOpenAfterRetire() public {
        depositAs(alice, 100e18);
        pools.retire(address(0x9E77));
        vm.prank(alice);
        pools.requestWithdraw(operator, 100e18);
        vm.warp(block.timestamp + 60);
        assertEq(pools.processWithdrawals(operator, 1), 1);
    }

    function testStakeVotesDelegation() public {
        depositAs(alice, 1_000e18);
        assertEq(pools.delegates(alice), alice); // default: the staker itself
        vm.prank(alice);
        pools.delegate(bob);
        assertEq(pools.getVotes(alice), 0);
        assertEq(pools.getVotes(bob), 1_000e18);
        depositAs(alice, 500e18);
        assertEq(pools.getVotes(bob), 1_500e18);
        vm.prank(alice);
        pools.delegate(alice);
        assertEq(pools.getVotes(alice), 1_500e18);
        assertEq(pools.getVotes(bob), 0);
    }

    /// Past votes across blocks: the latest checkpoint lives in the account slot, older ones in
    /// the history; lookups must find the value in force at the end of each block.
    function testPastVotesAcrossBlocks() public {
        uint256 b0 = block.number;
        vm.roll(b0 + 10);
        depositAs(alice, 100e18); // block b0+10: 100
        vm.roll(b0 + 20);
        depositAs(alice, 50e18); // b0+20: 150
        depositAs(alice, 50e18); // same block: 200 (one checkpoint per block)
        vm.roll(b0 + 30);
        vm.prank(alice);
        pools.delegate(bob); // b0+30: alice 0, bob 200
        vm.roll(b0 + 40);
        assertEq(pools.getPastVotes(alice, b0 + 9), 0);
        assertEq(pools.getPastVotes(alice, b0 + 10), 100e18);
        assertEq(pools.getPastVotes(alice, b0 + 15), 100e18);
        assertEq(pools.getPastVotes(alice, b0 + 20), 200e18);
        assertEq(pools.getPastVotes(alice, b0 + 29), 200e18);
        assertEq(pools.getPastVotes(alice, b0 + 30), 0);
        assertEq(pools.getPastVotes(alice, b0 + 39), 0);
        assertEq(pools.getPastVotes(bob, b0 + 29), 0);
        assertEq(pools.getPastVotes(bob, b0 + 30), 200e18);
        assertEq(pools.votingUnits(alice), 200e18); // units stay the staker's own
        assertEq(pools.votingUnits(bob), 0);
        vm.expectRevert(abi.encodeWithSelector(StakeVotes.ERC5805FutureLookup.selector, b0 + 40, uint48(b0 + 40)));
        pools.getPastVotes(alice, b0 + 40);
    }

    function testDelegateBySig() public {
        uint256 key = 0xA11CE5;
        address signer = vm.addr(key);
        give(signer, 1_000e18);
        vm.prank(signer);
        pha.approve(address(pools), type(uint256).max);
        depositAs(signer, 300e18);
        uint256 expiry = block.timestamp + 100;
        bytes32 structHash = keccak256(
            abi.encode(keccak256("Delegation(address delegatee,uint256 nonce,uint256 expiry)"), bob, uint256(0), expiry)
        );
        (, string memory name, string memory version, uint256 chainId, address verifying,,) = pools.eip712Domain();
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256(bytes(name)),
                keccak256(bytes(version)),
                chainId,
                verifying
            )
        );
        (uint8 v, bytes32 r, bytes32 s_) = vm.sign(key, keccak256(abi.encodePacked("\x19\x01", domain, structHash)));
        pools.delegateBySig(bob, 0, expiry, v, r, s_);
        assertEq(pools.delegates(signer), bob);
        assertEq(pools.getVotes(bob), 300e18);
        assertEq(pools.nonces(signer), 1);
        // Replayed: the nonce is used.
        vm.expectRevert();
        pools.delegateBySig(bob, 0, expiry, v, r, s_);
        // Expired.
        vm.warp(expiry + 1);
        vm.expectRevert(abi.encodeWithSignature("VotesExpiredSignature(uint256)", expiry));
        pools.delegateBySig(bob, 1, expiry, v, r, s_);
    }

    /// Queued shares stay in the position (and keep voting) until paid; only active shares can
    /// be queued again.
    function testQueuedSharesKeepVotesUntilPaid() public {
        depositAs(alice, 1_000e18);
        vm.prank(alice);
        pools.requestWithdraw(operator, 400e18);
        assertEq(pools.sharesOf(operator, alice), 600e18);
        assertEq(pools.queuedSharesOf(operator, alice), 400e18);
        assertEq(pools.getVotes(alice), 1_000e18);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(StakePools.InsufficientShares.selector, 600e18, 601e18));
        pools.requestWithdraw(operator, 601e18);
        vm.warp(block.timestamp + 60);
        assertEq(pools.processWithdrawals(operator, 1), 1);
        assertEq(pools.sharesOf(operator, alice), 600e18);
        assertEq(pools.queuedSharesOf(operator, alice), 0);
        assertEq(pools.getVotes(alice), 600e18);
    }

    function testStakeTotalSupplyIsNotTracked() public {
        vm.expectRevert(StakeVotes.TotalSupplyNotTracked.selector);
        pools.getPastTotalSupply(0);
    }

    function testWorkStatus() public {
        (bool ok, address op, uint8 platform) = pools.workStatus(worker);
        assertFalse(ok);
        assertEq(op, address(0));
        runningWorker(workerKey, operator, 1_000e18);
        (ok, op, platform) = pools.workStatus(worker);
        assertTrue(ok);
        assertEq(op, operator);
        assertEq(uint256(platform), SIM);
    }

    function testDelegateToZeroMeansSelf() public {
        depositAs(alice, 1_000e18);
        vm.prank(alice);
        pools.delegate(bob);
        vm.prank(alice);
        pools.delegate(address(0));
        assertEq(pools.delegates(alice), alice);
        assertEq(pools.getVotes(alice), 1_000e18);
        assertEq(pools.getVotes(bob), 0);
        // Withdrawing still works (the units can be taken back from where they are).
        vm.prank(alice);
        pools.requestWithdraw(operator, 1_000e18);
        vm.warp(block.timestamp + 60);
        assertEq(pools.processWithdrawals(operator, 1), 1);
        assertEq(pools.getVotes(alice), 0);
    }

    /// Deposit then withdraw everything: a staker never gets back more than it put in plus the
    /// rewards distributed meanwhile, and never less than its deposit minus one wei of rounding
    /// when nothing was slashed.
    function testFuzzRoundTrip(uint256 a, uint256 b, uint256 reward) public {
        a = bound(a, 1e18, 50_000e18);
        b = bound(b, 1e18, 50_000e18);
        reward = bound(reward, 0, 10_000e18);
        depositAs(bob, b);
        uint256 before = pha.balanceOf(alice);
        depositAs(alice, a);
        pools.distribute(operator, reward);
        uint256 shares = pools.sharesOf(operator, alice);
        vm.prank(alice);
        pools.requestWithdraw(operator, shares);
        vm.warp(block.timestamp + 60);
        pools.processWithdrawals(operator, 1);
        uint256 returned = pha.balanceOf(alice) + a - before; // paid out by the withdrawal
        assertLe(returned, a + reward, "no profit beyond rewards");
        assertGe(returned + 1, a, "no loss beyond rounding");
    }
}
