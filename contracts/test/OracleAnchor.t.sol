// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Fixture} from "./Fixture.sol";
import {OracleAnchor} from "../src/OracleAnchor.sol";
import {OracleConsumer} from "../src/examples/OracleConsumer.sol";
import {Programs} from "../src/Programs.sol";
import {Retirable} from "../src/Retirable.sol";
import {IRegistry, IPrograms, IStakePools, IPithOracleConsumer} from "../src/Interfaces.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

contract RevertingConsumer is IPithOracleConsumer {
    function onPithOracleResult(uint256, bytes calldata) external pure {
        revert("no thanks");
    }
}

contract GasHog is IPithOracleConsumer {
    uint256 public spins;

    function onPithOracleResult(uint256, bytes calldata) external {
        while (true) ++spins;
    }
}

contract OracleAnchorTest is Fixture {
    uint256 internal prog;
    OracleConsumer internal consumer;
    bytes internal constant PAYLOAD = "what is the price?";
    bytes internal constant RESULT = "42";

    function setUp() public override {
        super.setUp();
        prog = newProgram(alice);
        runningWorker(workerKey, operator, 1_000e18);
        consumer = new OracleConsumer(anchor);
        anchor.setParams(60, 500_000, 1e18);
        give(bob, 100e18);
        vm.prank(bob);
        pha.approve(address(consumer), type(uint256).max);
    }

    function unauthorized(address who) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, who, bytes32(0));
    }

    function ask() internal returns (uint256 id) {
        vm.prank(bob);
        id = consumer.ask(prog, PAYLOAD, 100_000, 2e18);
    }

    function signResult(uint256 key, uint256 id, bytes memory result) internal view returns (bytes memory) {
        return signDigest(key, anchor.resultDigest(id, prog, programs.codeHashOf(prog), keccak256(result)));
    }

    // ---------------------------------------------------------------- request

    function testRequest() public {
        uint256 id = ask();
        assertEq(id, 1);
        OracleAnchor.Request memory r = anchor.requestInfo(id);
        assertEq(r.requester, address(consumer));
        assertEq(uint256(r.fee), 2e18);
        assertEq(uint256(r.deadline), block.timestamp + 60);
        assertEq(uint256(r.programId), prog);
        assertEq(pha.balanceOf(address(anchor)), 2e18);
    }

    function testRequestReverts() public {
        vm.expectRevert(abi.encodeWithSelector(OracleAnchor.UnknownProgram.selector, 99));
        anchor.request(99, PAYLOAD, 0, 1e18);
        vm.expectRevert(abi.encodeWithSelector(OracleAnchor.UnknownProgram.selector, uint256(1) << 64));
        anchor.request(uint256(1) << 64, PAYLOAD, 0, 1e18);
        vm.expectRevert(abi.encodeWithSelector(OracleAnchor.CallbackGasTooHigh.selector, uint32(500_001), uint32(500_000)));
        anchor.request(prog, PAYLOAD, 500_001, 1e18);
        vm.expectRevert(abi.encodeWithSelector(OracleAnchor.FeeTooLow.selector, uint128(1), uint128(1e18)));
        anchor.request(prog, PAYLOAD, 0, 1);
        vm.prank(stranger);
        vm.expectRevert(); // no allowance
        anchor.request(prog, PAYLOAD, 0, 1e18);
        anchor.retire(address(0x9E77));
        vm.expectRevert(abi.encodeWithSelector(Retirable.IsRetired.selector, address(0x9E77)));
        anchor.request(prog, PAYLOAD, 0, 1e18);
    }

    // ---------------------------------------------------------------- fulfil

    function testFulfilCallsBack() public {
        uint256 id = ask();
        vm.expectEmit(true, true, false, true);
        emit OracleAnchor.OracleFulfilled(id, worker, keccak256(RESULT), true);
        vm.prank(stranger); // any relayer
        anchor.fulfil(id, RESULT, signResult(workerKey, id, RESULT));
        assertEq(consumer.results(id), RESULT);
        assertEq(anchor.feesOwed(operator), 2e18);
        assertEq(anchor.requestInfo(id).requester, address(0));
        uint256 c0 = pools.pool(operator).commission;
        assertEq(anchor.sweepFees(operator), 2e18 - 1); // one wei stays to keep the slot warm-priced
        assertEq(pools.pool(operator).commission - c0, 0.2e18 - 1);
        assertEq(anchor.feesOwed(operator), 1);
        assertEq(anchor.sweepFees(operator), 0);
    }

    function testOpenFeeAccount() public {
        assertEq(anchor.feesOwed(operator), 0);
        uint256 before = pha.balanceOf(bob);
        vm.startPrank(bob);
        pha.approve(address(anchor), 1);
        vm.expectEmit(true, true, false, false);
        emit OracleAnchor.FeeAccountOpened(operator, bob);
        anchor.openFeeAccount(operator);
        vm.stopPrank();
        assertEq(anchor.feesOwed(operator), 1);
        assertEq(before - pha.balanceOf(bob), 1);
        // a second call is a no-op and takes nothing
        vm.prank(bob);
        anchor.openFeeAccount(operator);
        assertEq(before - pha.balanceOf(bob), 1);
        // the fulfilment adds to the open account; a sweep pays all but the kept wei
        uint256 id = ask();
        anchor.fulfil(id, RESULT, signResult(workerKey, id, RESULT));
        assertEq(anchor.feesOwed(operator), 2e18 + 1);
        assertEq(anchor.sweepFees(operator), 2e18);
        assertEq(anchor.feesOwed(operator), 1);
    }

    function testOpenFeeAccountReverts() public {
        vm.expectRevert(Retirable.ZeroAddress.selector);
        anchor.openFeeAccount(address(0));
        // without an allowance for the wei
        vm.prank(stranger);
        vm.expectRevert();
        anchor.openFeeAccount(operator);
        assertEq(anchor.feesOwed(operator), 0);
    }

    function testFulfilTwiceReverts() public {
        uint256 id = ask();
        bytes memory sig = signResult(workerKey, id, RESULT);
        anchor.fulfil(id, RESULT, sig);
        vm.expectRevert(abi.encodeWithSelector(OracleAnchor.UnknownRequest.selector, id));
        anchor.fulfil(id, RESULT, sig);
    }

    function testFulfilRevertsAfterTimeout() public {
        uint256 id = ask();
        bytes memory sig = signResult(workerKey, id, RESULT);
        vm.warp(block.timestamp + 61);
        vm.expectRevert(abi.encodeWithSelector(OracleAnchor.RequestExpired.selector, id, uint64(block.timestamp - 1)));
        anchor.fulfil(id, RESULT, sig);
    }

    function testFulfilRevertsForUnregisteredSigner() public {
        uint256 id = ask();
        bytes memory sig = signResult(worker2Key, id, RESULT);
        vm.expectRevert(abi.encodeWithSelector(OracleAnchor.WorkerNotAllowed.selector, worker2));
        anchor.fulfil(id, RESULT, sig);
    }

    function testFulfilRevertsOnTamperedResult() public {
        uint256 id = ask();
        bytes memory sig = signResult(workerKey, id, RESULT);
        vm.expectRevert(); // recovers to some unregistered address
        anchor.fulfil(id, "43", sig);
    }

    function testFulfilRevertsForStoppedOrRevokedWorker() public {
        uint256 id = ask();
        bytes memory sig = signResult(workerKey, id, RESULT);
        vm.prank(operator);
        pools.stopWorker(worker);
        vm.expectRevert(abi.encodeWithSelector(OracleAnchor.WorkerNotAllowed.selector, worker));
        anchor.fulfil(id, RESULT, sig);
        vm.prank(operator);
        pools.startWorker(worker, 1_000e18);
        registry.revokeWorker(worker, 1);
        vm.expectRevert(abi.encodeWithSelector(OracleAnchor.WorkerNotAllowed.selector, worker));
        anchor.fulfil(id, RESULT, sig);
    }

    function testFulfilRevertsForDisallowedPlatform() public {
        Programs.Config memory c = noConfig();
        c.platformMask = uint256(1) << TDX;
        vm.prank(alice);
        programs.setConfig(prog, c);
        uint256 id = ask();
        bytes memory sig = signResult(workerKey, id, RESULT);
        vm.expectRevert(abi.encodeWithSelector(OracleAnchor.WorkerNotAllowed.selector, worker));
        anchor.fulfil(id, RESULT, sig);
    }

    function testFulfilRevertsWhenCodeChangedSinceSigning() public {
        uint256 id = ask();
        bytes memory sig = signResult(workerKey, id, RESULT);
        vm.prank(alice);
        programs.upgrade(prog, keccak256("new code"));
        vm.expectRevert();
        anchor.fulfil(id, RESULT, sig);
    }

    function testCallbackFailureDoesNotRevert() public {
        RevertingConsumer rc = new RevertingConsumer();
        give(address(rc), 1e18);
        vm.startPrank(address(rc));
        pha.approve(address(anchor), 1e18);
        uint256 id = anchor.request(prog, PAYLOAD, 50_000, 1e18);
        vm.stopPrank();
        vm.expectEmit(true, true, false, true);
        emit OracleAnchor.OracleFulfilled(id, worker, keccak256(RESULT), false);
        anchor.fulfil(id, RESULT, signResult(workerKey, id, RESULT));
        assertEq(anchor.feesOwed(operator), 1e18);
    }

    function testCallbackGasIsLimited() public {
        GasHog hog = new GasHog();
        give(address(hog), 1e18);
        vm.startPrank(address(hog));
        pha.approve(address(anchor), 1e18);
        uint256 id = anchor.request(prog, PAYLOAD, 100_000, 1e18);
        vm.stopPrank();
        anchor.fulfil(id, RESULT, signResult(workerKey, id, RESULT)); // hog runs out, fulfil completes
        assertEq(anchor.requestInfo(id).requester, address(0));
    }

    function testFulfilRevertsWithTooLittleGasForCallback() public {
        uint256 id = ask();
        bytes memory sig = signResult(workerKey, id, RESULT);
        vm.expectRevert(OracleAnchor.InsufficientGas.selector);
        anchor.fulfil{gas: 100_000}(id, RESULT, sig);
    }

    // ---------------------------------------------------------------- refund

    function testRefundAfterTimeout() public {
        uint256 id = ask();
        vm.expectRevert(abi.encodeWithSelector(OracleAnchor.NotExpired.selector, id, uint64(block.timestamp + 60)));
        anchor.refund(id);
        vm.warp(block.timestamp + 61);
        uint256 before = pha.balanceOf(address(consumer));
        vm.prank(stranger);
        anchor.refund(id);
        assertEq(pha.balanceOf(address(consumer)) - before, 2e18);
        vm.expectRevert(abi.encodeWithSelector(OracleAnchor.UnknownRequest.selector, id));
        anchor.refund(id);
        vm.expectRevert(abi.encodeWithSelector(OracleAnchor.UnknownRequest.selector, 99));
        anchor.refund(99);
    }

    function testFulfilledRequestCannotBeRefunded() public {
        uint256 id = ask();
        anchor.fulfil(id, RESULT, signResult(workerKey, id, RESULT));
        vm.warp(block.timestamp + 61);
        vm.expectRevert(abi.encodeWithSelector(OracleAnchor.UnknownRequest.selector, id));
        anchor.refund(id);
    }

    // ---------------------------------------------------------------- governance

    function testSetters() public {
        anchor.setParams(10, 1, 0);
        assertEq(uint256(anchor.timeout()), 10);
        anchor.setContracts(IRegistry(address(1)), IPrograms(address(2)), IStakePools(address(3)));
        assertEq(address(anchor.stakePools()), address(3));
        assertEq(pha.allowance(address(anchor), address(pools)), 0);
    }

    function testSettersRevert() public {
        vm.startPrank(stranger);
        vm.expectRevert(unauthorized(stranger));
        anchor.setParams(10, 1, 0);
        vm.expectRevert(unauthorized(stranger));
        anchor.setContracts(IRegistry(address(1)), IPrograms(address(2)), IStakePools(address(3)));
        vm.stopPrank();
        vm.expectRevert(OracleAnchor.BadParams.selector);
        anchor.setParams(0, 1, 0);
        vm.expectRevert(Retirable.ZeroAddress.selector);
        anchor.setContracts(IRegistry(address(0)), IPrograms(address(2)), IStakePools(address(3)));
    }

    function testConsumerRejectsStrangers() public {
        vm.expectRevert(OracleConsumer.OnlyAnchor.selector);
        consumer.onPithOracleResult(1, RESULT);
    }
}
