// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Fixture} from "./Fixture.sol";
import {Billing} from "../src/Billing.sol";
import {Retirable} from "../src/Retirable.sol";
import {IRegistry, IPrograms, IStakePools} from "../src/Interfaces.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

contract BillingTest is Fixture {
    uint256 internal prog;

    function setUp() public override {
        super.setUp();
        prog = newProgram(alice);
        give(alice, 1_000e18);
        vm.startPrank(alice);
        pha.approve(address(billing), type(uint256).max);
        billing.deposit(prog, 100e18);
        vm.stopPrank();
        runningWorker(workerKey, operator, 1_000e18);
    }

    function unauthorized(address who) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, who, bytes32(0));
    }

    function batch(address w, uint64 nonce, uint256 programId, uint64 requests)
        internal
        pure
        returns (Billing.UsageBatch memory b)
    {
        b.worker = w;
        b.nonce = nonce;
        b.entries = new Billing.UsageEntry[](1);
        b.entries[0] = Billing.UsageEntry(programId, requests, 1000, 1e6, 0);
    }

    /// batch(.., requests) whose entry also carries `tokens` model tokens.
    function tokenBatch(address w, uint64 nonce, uint256 programId, uint64 requests, uint64 tokens)
        internal
        pure
        returns (Billing.UsageBatch memory b)
    {
        b = batch(w, nonce, programId, requests);
        b.entries[0].aiTokens = tokens;
    }

    function signBatch(uint256 key, Billing.UsageBatch memory b) internal view returns (bytes memory) {
        return signDigest(key, billing.usageDigest(b));
    }

    // cost of batch(.., requests): requests * 1e15 + 1000 * 1e12 + 1e6 * 1e9 = requests * 1e15 + 2e15
    function cost(uint64 requests) internal pure returns (uint256) {
        return uint256(requests) * 1e15 + 2e15;
    }

    // cost of tokenBatch(.., requests, tokens): cost(requests) + tokens * 1e13
    function tokenCost(uint64 requests, uint64 tokens) internal pure returns (uint256) {
        return cost(requests) + uint256(tokens) * 1e13;
    }

    // ---------------------------------------------------------------- deposits

    function testDeposit() public {
        assertEq(billing.deposits(prog), 100e18);
        vm.prank(alice);
        billing.deposit(prog, 1e18);
        assertEq(billing.deposits(prog), 101e18);
    }

    function testDepositReverts() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Billing.UnknownProgram.selector, 77));
        billing.deposit(77, 1e18);
        vm.prank(stranger);
        vm.expectRevert(); // no allowance
        billing.deposit(prog, 1e18);
    }

    function testWithdrawAfterDelay() public {
        vm.prank(alice);
        billing.requestWithdrawal(prog, 40e18);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Billing.NotReady.selector, uint64(block.timestamp + 60)));
        billing.withdraw(prog, alice);
        vm.warp(block.timestamp + 60);
        uint256 before = pha.balanceOf(bob);
        vm.prank(alice);
        billing.withdraw(prog, bob);
        assertEq(pha.balanceOf(bob) - before, 40e18);
        assertEq(billing.deposits(prog), 60e18);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Billing.NothingPending.selector, prog));
        billing.withdraw(prog, alice);
    }

    function testWithdrawIsCappedByWhatUsageLeft() public {
        vm.prank(alice);
        billing.requestWithdrawal(prog, 100e18);
        Billing.UsageBatch memory b = batch(worker, 0, prog, 10_000); // costs 10.002 PHA
        billing.submitUsage(b, signBatch(workerKey, b));
        vm.warp(block.timestamp + 60);
        vm.prank(alice);
        uint256 got = billing.withdraw(prog, alice);
        assertEq(got, 100e18 - cost(10_000));
        assertEq(billing.deposits(prog), 0);
    }

    function testWithdrawReverts() public {
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Billing.NotProgramOwner.selector, prog, bob));
        billing.requestWithdrawal(prog, 1);
        vm.expectRevert(abi.encodeWithSelector(Billing.UnknownProgram.selector, 77));
        billing.requestWithdrawal(77, 1);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Billing.NotProgramOwner.selector, prog, bob));
        billing.withdraw(prog, bob);
        vm.prank(alice);
        vm.expectRevert(Retirable.ZeroAddress.selector);
        billing.withdraw(prog, address(0));
    }

    // ---------------------------------------------------------------- usage

    function testSubmitUsagePaysPoolAndTreasury() public {
        Billing.UsageBatch memory b = batch(worker, 0, prog, 1000); // 1.002 PHA
        uint256 c = cost(1000);
        uint256 stake0 = pools.pool(operator).totalStake;
        vm.prank(stranger); // anyone may relay
        uint256 charged = billing.submitUsage(b, signBatch(workerKey, b));
        assertEq(charged, c);
        assertEq(billing.deposits(prog), 100e18 - c);
        uint256 fee = c * 500 / 10_000;
        assertEq(billing.treasuryAccrued(), fee);
        uint256 toPool = c - fee;
        assertEq(pools.pool(operator).commission, toPool * 1000 / 10_000);
        assertEq(pools.pool(operator).totalStake - stake0, toPool - toPool * 1000 / 10_000);
        assertEq(billing.workOf(0, operator), c);
        assertEq(billing.workDone(0), c);
        assertEq(uint256(billing.nextUsageNonce(worker)), 1);
        uint256 t0 = pha.balanceOf(treasury);
        billing.sweepTreasury();
        assertEq(pha.balanceOf(treasury) - t0, fee);
        assertEq(billing.treasuryAccrued(), 0);
    }

    function testReplayedBatchReverts() public {
        Billing.UsageBatch memory b = batch(worker, 0, prog, 1000);
        bytes memory sig = signBatch(workerKey, b);
        billing.submitUsage(b, sig);
        vm.expectRevert(abi.encodeWithSelector(Billing.UsageReplayed.selector, uint64(0), uint64(1)));
        billing.submitUsage(b, sig);
    }

    function testNonceGapsAllowedButNeverBackwards() public {
        Billing.UsageBatch memory b5 = batch(worker, 5, prog, 1);
        billing.submitUsage(b5, signBatch(workerKey, b5));
        Billing.UsageBatch memory b3 = batch(worker, 3, prog, 1);
        bytes memory sig3 = signBatch(workerKey, b3);
        vm.expectRevert(abi.encodeWithSelector(Billing.UsageReplayed.selector, uint64(3), uint64(6)));
        billing.submitUsage(b3, sig3);
    }

    function testBadSignatureReverts() public {
        Billing.UsageBatch memory b = batch(worker, 0, prog, 1000);
        bytes memory sig = signBatch(worker2Key, b);
        vm.expectRevert(Billing.BadSignature.selector);
        billing.submitUsage(b, sig);
        // A valid signature over different entries does not carry over.
        sig = signBatch(workerKey, b);
        b.entries[0].requests = 1_000_000;
        vm.expectRevert(Billing.BadSignature.selector);
        billing.submitUsage(b, sig);
    }

    function testUnknownOrRevokedWorkerReverts() public {
        Billing.UsageBatch memory b = batch(worker2, 0, prog, 1);
        bytes memory sig = signBatch(worker2Key, b);
        vm.expectRevert(abi.encodeWithSelector(Billing.UnknownWorker.selector, worker2));
        billing.submitUsage(b, sig);
        registry.revokeWorker(worker, 1);
        b = batch(worker, 0, prog, 1);
        sig = signBatch(workerKey, b);
        vm.expectRevert(abi.encodeWithSelector(Billing.UnknownWorker.selector, worker));
        billing.submitUsage(b, sig);
    }

    function testExpiredWorkerCanStillSettle() public {
        vm.warp(block.timestamp + 2 hours);
        Billing.UsageBatch memory b = batch(worker, 0, prog, 1000);
        assertEq(billing.submitUsage(b, signBatch(workerKey, b)), cost(1000));
    }

    function testNoPoolReverts() public {
        registerWorker(worker2Key, bob); // bob has no pool
        Billing.UsageBatch memory b = batch(worker2, 0, prog, 1);
        bytes memory sig = signBatch(worker2Key, b);
        vm.expectRevert(abi.encodeWithSelector(Billing.NoPool.selector, bob));
        billing.submitUsage(b, sig);
    }

    function testUnderfundedProgramChargesWhatIsLeft() public {
        Billing.UsageBatch memory b = batch(worker, 0, prog, 200_000); // 200.002 PHA > 100 PHA
        vm.expectEmit(true, false, false, true);
        emit Billing.Underfunded(prog, cost(200_000), 100e18);
        assertEq(billing.submitUsage(b, signBatch(workerKey, b)), 100e18);
        assertEq(billing.deposits(prog), 0);
    }

    // ---------------------------------------------------------------- model tokens

    function testModelTokensAreCharged() public {
        Billing.UsageBatch memory b = tokenBatch(worker, 0, prog, 1000, 250_000); // 1.002 + 2.5 PHA
        uint256 c = tokenCost(1000, 250_000);
        assertEq(c, cost(1000) + 2.5e18);
        assertEq(billing.submitUsage(b, signBatch(workerKey, b)), c);
        assertEq(billing.deposits(prog), 100e18 - c);
        assertEq(billing.workOf(0, operator), c);
    }

    function testOnlyTokensPriced() public {
        billing.setPrices(Billing.Prices(0, 0, 0, 7));
        Billing.UsageBatch memory b = tokenBatch(worker, 0, prog, 1000, 3);
        assertEq(billing.submitUsage(b, signBatch(workerKey, b)), 21);
        b = tokenBatch(worker, 1, prog, 1000, 0);
        assertEq(billing.submitUsage(b, signBatch(workerKey, b)), 0);
        assertEq(billing.deposits(prog), 100e18 - 21);
    }

    function testUnderfundedByTokensChargesWhatIsLeft() public {
        // 1.002 PHA of requests, CPU and egress plus 2,000 PHA of tokens > the 100 PHA deposit
        Billing.UsageBatch memory b = tokenBatch(worker, 0, prog, 1000, 200_000_000);
        vm.expectEmit(true, false, false, true);
        emit Billing.Underfunded(prog, tokenCost(1000, 200_000_000), 100e18);
        assertEq(billing.submitUsage(b, signBatch(workerKey, b)), 100e18);
        assertEq(billing.deposits(prog), 0);
        assertEq(uint256(billing.nextUsageNonce(worker)), 1);
    }

    function testUsageTypehashesCoverTokens() public view {
        assertEq(
            billing.USAGE_ENTRY_TYPEHASH(),
            keccak256(
                "UsageEntry(uint256 programId,uint64 requests,uint64 cpuMillis,uint64 egressBytes,uint64 aiTokens)"
            )
        );
        assertEq(
            billing.USAGE_BATCH_TYPEHASH(),
            keccak256(
                "UsageBatch(address worker,uint64 nonce,UsageEntry[] entries)UsageEntry(uint256 programId,uint64 requests,uint64 cpuMillis,uint64 egressBytes,uint64 aiTokens)"
            )
        );
    }

    /// The digest of `b` computed here from the type strings: with `withTokens` the current
    /// type, without it the type before aiTokens (what a worker of the previous version signs).
    function typedDigest(Billing.UsageBatch memory b, bool withTokens) internal view returns (bytes32) {
        string memory entryType = withTokens
            ? "UsageEntry(uint256 programId,uint64 requests,uint64 cpuMillis,uint64 egressBytes,uint64 aiTokens)"
            : "UsageEntry(uint256 programId,uint64 requests,uint64 cpuMillis,uint64 egressBytes)";
        bytes32[] memory hashes = new bytes32[](b.entries.length);
        for (uint256 i = 0; i < b.entries.length; ++i) {
            Billing.UsageEntry memory e = b.entries[i];
            hashes[i] = withTokens
                ? keccak256(
                    abi.encode(
                        keccak256(bytes(entryType)), e.programId, e.requests, e.cpuMillis, e.egressBytes, e.aiTokens
                    )
                )
                : keccak256(
                    abi.encode(keccak256(bytes(entryType)), e.programId, e.requests, e.cpuMillis, e.egressBytes)
                );
        }
        bytes32 batchType =
            keccak256(abi.encodePacked("UsageBatch(address worker,uint64 nonce,UsageEntry[] entries)", entryType));
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("Pith Billing"),
                keccak256("1"),
                block.chainid,
                address(billing)
            )
        );
        bytes32 structHash = keccak256(abi.encode(batchType, b.worker, b.nonce, keccak256(abi.encodePacked(hashes))));
        return keccak256(abi.encodePacked("\x19\x01", domain, structHash));
    }

    function testBatchSignedWithOldTypeReverts() public {
        Billing.UsageBatch memory b = tokenBatch(worker, 0, prog, 1000, 0);
        // The construction here agrees with the contract for the current type...
        assertEq(typedDigest(b, true), billing.usageDigest(b));
        // ...and a signature over the old type (no aiTokens, even with none used) is refused.
        bytes32 old = typedDigest(b, false);
        assertTrue(old != billing.usageDigest(b), "the type change moves the digest");
        bytes memory sig = signDigest(workerKey, old);
        vm.expectRevert(Billing.BadSignature.selector);
        billing.submitUsage(b, sig);
        assertEq(uint256(billing.nextUsageNonce(worker)), 0);
        assertEq(billing.submitUsage(b, signBatch(workerKey, b)), cost(1000));
    }

    function testTokensAreSigned() public {
        Billing.UsageBatch memory b = tokenBatch(worker, 0, prog, 1000, 5);
        bytes memory sig = signBatch(workerKey, b);
        b.entries[0].aiTokens = 0; // a relayer dropping the tokens
        vm.expectRevert(Billing.BadSignature.selector);
        billing.submitUsage(b, sig);
        b.entries[0].aiTokens = 6;
        vm.expectRevert(Billing.BadSignature.selector);
        billing.submitUsage(b, sig);
        b.entries[0].aiTokens = 5;
        assertEq(billing.submitUsage(b, sig), tokenCost(1000, 5));
    }

    function testFreeBatchAndUnknownProgram() public {
        billing.setPrices(Billing.Prices(0, 0, 0, 0));
        Billing.UsageBatch memory b = batch(worker, 0, 999, 5);
        assertEq(billing.submitUsage(b, signBatch(workerKey, b)), 0);
        assertEq(uint256(billing.nextUsageNonce(worker)), 1);
    }

    // ---------------------------------------------------------------- emissions

    function testClaimEmission() public {
        Billing.UsageBatch memory b = batch(worker, 0, prog, 1000);
        billing.submitUsage(b, signBatch(workerKey, b));
        vm.expectRevert(abi.encodeWithSelector(Billing.EpochNotOver.selector, 0));
        billing.claimEmission(0, operator);
        vm.warp(block.timestamp + 60);
        uint256 reserve0 = billing.emissionReserve();
        uint256 commission0 = pools.pool(operator).commission;
        uint256 amount = billing.claimEmission(0, operator);
        assertEq(amount, 100_000e18); // the only operator with work in epoch 0 takes the budget
        assertEq(billing.emissionReserve(), reserve0 - 100_000e18);
        assertEq(pools.pool(operator).commission - commission0, 10_000e18);
        vm.expectRevert(abi.encodeWithSelector(Billing.AlreadyClaimed.selector, 0, operator));
        billing.claimEmission(0, operator);
        vm.expectRevert(abi.encodeWithSelector(Billing.NoWork.selector, 0, bob));
        billing.claimEmission(0, bob);
    }

    function testEmissionSharedByWork() public {
        runningWorker(worker2Key, bob, 1_000e18);
        Billing.UsageBatch memory b1 = batch(worker, 0, prog, 3000); // 3.002
        Billing.UsageBatch memory b2 = batch(worker2, 0, prog, 1000); // 1.002
        billing.submitUsage(b1, signBatch(workerKey, b1));
        billing.submitUsage(b2, signBatch(worker2Key, b2));
        vm.warp(block.timestamp + 60);
        uint256 a1 = billing.claimEmission(0, operator);
        uint256 a2 = billing.claimEmission(0, bob);
        assertEq(a1, 100_000e18 * cost(3000) / (cost(3000) + cost(1000)));
        assertEq(a2, 100_000e18 * cost(1000) / (cost(3000) + cost(1000)));
        assertLe(a1 + a2, 100_000e18, "never more than the budget");
        assertEq(billing.emissionCommitted(), 100_000e18 - a1 - a2);
    }

    function testEmissionBudgetDecays() public view {
        assertEq(billing.scheduledBudget(0), 100_000e18);
        assertEq(billing.scheduledBudget(1), 90_000e18);
        assertEq(billing.scheduledBudget(3), 72_900e18);
    }

    function testEmissionCappedByReserve() public {
        billing.setEmissionSchedule(20_000_000e18, 1e18); // more than the 10M reserve
        Billing.UsageBatch memory b = batch(worker, 0, prog, 1);
        billing.submitUsage(b, signBatch(workerKey, b));
        vm.warp(block.timestamp + 60);
        assertEq(billing.claimEmission(0, operator), 10_000_000e18);
        assertEq(billing.emissionReserve(), 0);
    }

    function testFundEmission() public {
        uint256 r0 = billing.emissionReserve();
        pha.approve(address(billing), 5e18);
        billing.fundEmission(5e18);
        assertEq(billing.emissionReserve(), r0 + 5e18);
    }

    // ---------------------------------------------------------------- governance

    function testSetters() public {
        billing.setPrices(Billing.Prices(1, 2, 3, 4));
        (uint128 a, uint128 b, uint128 c, uint128 d) = billing.prices();
        assertEq(a, 1);
        assertEq(b, 2);
        assertEq(c, 3);
        assertEq(d, 4);
        billing.setTreasuryFeeBps(100);
        assertEq(uint256(billing.treasuryFeeBps()), 100);
        billing.setTreasury(bob);
        assertEq(billing.treasury(), bob);
        billing.setWithdrawDelay(5);
        assertEq(uint256(billing.withdrawDelay()), 5);
        billing.setEmissionSchedule(1, 0.5e18);
        assertEq(billing.decayWad(), 0.5e18);
        billing.setContracts(IRegistry(address(1)), IPrograms(address(2)), IStakePools(address(3)));
        assertEq(address(billing.stakePools()), address(3));
        assertEq(pha.allowance(address(billing), address(pools)), 0);
        assertEq(pha.allowance(address(billing), address(3)), type(uint256).max);
    }

    function testSettersRevert() public {
        vm.startPrank(stranger);
        vm.expectRevert(unauthorized(stranger));
        billing.setPrices(Billing.Prices(1, 2, 3, 4));
        vm.expectRevert(unauthorized(stranger));
        billing.setTreasuryFeeBps(1);
        vm.expectRevert(unauthorized(stranger));
        billing.setTreasury(bob);
        vm.expectRevert(unauthorized(stranger));
        billing.setWithdrawDelay(1);
        vm.expectRevert(unauthorized(stranger));
        billing.setEmissionSchedule(1, 1);
        vm.expectRevert(unauthorized(stranger));
        billing.setContracts(IRegistry(address(1)), IPrograms(address(2)), IStakePools(address(3)));
        vm.stopPrank();
        vm.expectRevert(Billing.BadParams.selector);
        billing.setTreasuryFeeBps(10_001);
        vm.expectRevert(Billing.BadParams.selector);
        billing.setEmissionSchedule(1, 1e18 + 1);
        vm.expectRevert(Retirable.ZeroAddress.selector);
        billing.setTreasury(address(0));
        vm.expectRevert(Retirable.ZeroAddress.selector);
        billing.setContracts(IRegistry(address(0)), IPrograms(address(2)), IStakePools(address(3)));
    }

    function testRetireHandsEmissionReserveToSuccessor() public {
        Billing next = new Billing(address(this), pha, registry, programs, pools, treasury, 60);
        uint256 reserve = billing.emissionReserve();
        billing.retire(address(next));
        assertEq(billing.emissionReserve(), 0);
        assertEq(next.emissionReserve(), reserve);
        assertEq(pha.balanceOf(address(next)), reserve);
        // New deposits go to the successor; owners can still leave and workers still settle.
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Retirable.IsRetired.selector, address(next)));
        billing.deposit(prog, 1e18);
        Billing.UsageBatch memory b = batch(worker, 0, prog, 1000);
        billing.submitUsage(b, signBatch(workerKey, b));
        vm.prank(alice);
        billing.requestWithdrawal(prog, 1_000e18);
        vm.warp(block.timestamp + 60);
        vm.prank(alice);
        assertEq(billing.withdraw(prog, alice), 100e18 - cost(1000));
    }

    function testFuzzBudgetNeverGrows(uint256 e, uint256 decay) public {
        e = bound(e, 0, 100_000);
        decay = bound(decay, 0, 1e18);
        billing.setEmissionSchedule(100_000e18, decay);
        assertLe(billing.scheduledBudget(e + 1), billing.scheduledBudget(e), "decaying budget");
        assertLe(billing.scheduledBudget(e), 100_000e18, "bounded by the initial budget");
    }

    function testFuzzChargeNeverExceedsDeposit(uint64 requests, uint64 cpu, uint64 egress, uint64 tokens) public {
        Billing.UsageBatch memory b;
        b.worker = worker;
        b.entries = new Billing.UsageEntry[](1);
        b.entries[0] = Billing.UsageEntry(prog, requests, cpu, egress, tokens);
        uint256 charged = billing.submitUsage(b, signBatch(workerKey, b));
        assertLe(charged, 100e18, "charged <= deposit");
        assertEq(billing.deposits(prog), 100e18 - charged);
    }
}
