// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Fixture} from "./Fixture.sol";
import {PithGovernor} from "../src/PithGovernor.sol";
import {Timelock} from "../src/Timelock.sol";
import {Registry} from "../src/Registry.sol";
import {StakePools} from "../src/StakePools.sol";
import {IGovernor} from "@openzeppelin/contracts/governance/IGovernor.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

/// The deployment of contracts/README.md (local profile), the hand-over of every admin role to
/// the timelock, and whole proposals in which staked PHA votes.
contract GovernanceTest is Fixture {
    PithGovernor internal governor;
    Timelock internal timelock;

    function setUp() public override {
        super.setUp(); // deploy + initial configuration, as the deployer (this contract)
        address[] memory none = new address[](0);
        address[] memory anyone = new address[](1);
        timelock = new Timelock(1, none, anyone, address(this));
        governor = new PithGovernor(pha, IVotes(address(pools)), timelock, 1, 5, 0, 4);
        timelock.grantRole(timelock.PROPOSER_ROLE(), address(governor));
        timelock.grantRole(timelock.CANCELLER_ROLE(), address(governor));
        IAccessControl[4] memory owned = [
            IAccessControl(address(registry)),
            IAccessControl(address(pools)),
            IAccessControl(address(billing)),
            IAccessControl(address(anchor))
        ];
        for (uint256 i = 0; i < owned.length; ++i) {
            owned[i].grantRole(0x00, address(timelock));
            owned[i].renounceRole(0x00, address(this));
        }
        timelock.renounceRole(timelock.DEFAULT_ADMIN_ROLE(), address(this));

        vm.prank(operator);
        pools.createPool(0);
        give(alice, 30_000_000e18);
        give(bob, 20_000_000e18);
        vm.prank(alice);
        pha.delegate(alice);
        vm.startPrank(bob);
        pha.approve(address(pools), type(uint256).max);
        pools.deposit(operator, 20_000_000e18); // bob's PHA is all staked
        vm.stopPrank();
        vm.roll(block.number + 1);
    }

    function proposal() internal view returns (address[] memory t, uint256[] memory v, bytes[] memory c) {
        t = new address[](1);
        v = new uint256[](1);
        c = new bytes[](1);
        t[0] = address(registry);
        c[0] = abi.encodeCall(Registry.setPlatform, (TDX, true, 1));
    }

    function testDeployerHoldsNoRole() public view {
        assertFalse(registry.hasRole(0x00, address(this)));
        assertFalse(pools.hasRole(0x00, address(this)));
        assertFalse(billing.hasRole(0x00, address(this)));
        assertFalse(anchor.hasRole(0x00, address(this)));
        assertFalse(timelock.hasRole(timelock.DEFAULT_ADMIN_ROLE(), address(this)));
        assertTrue(registry.hasRole(0x00, address(timelock)));
        assertTrue(timelock.hasRole(timelock.PROPOSER_ROLE(), address(governor)));
        assertTrue(timelock.hasRole(timelock.DEFAULT_ADMIN_ROLE(), address(timelock)));
    }

    function testDeployerCannotConfigureAnymore() public {
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, address(this), bytes32(0))
        );
        registry.setPlatform(TDX, true, 0);
    }

    function testStakedPhaVotes() public view {
        uint256 snapshot = block.number - 1;
        assertEq(pha.getPastVotes(bob, snapshot), 0);
        assertEq(governor.getVotes(bob, snapshot), 20_000_000e18);
        assertEq(governor.getVotes(alice, snapshot), 30_000_000e18);
        assertEq(governor.quorum(snapshot), 40_000_000e18);
    }

    function testProposalPassesWithStakeVotes() public {
        (address[] memory t, uint256[] memory v, bytes[] memory c) = proposal();
        vm.prank(alice);
        uint256 id = governor.propose(t, v, c, "allow TDX");
        vm.roll(block.number + 2);
        vm.prank(alice);
        governor.castVote(id, 1);
        vm.prank(bob);
        governor.castVote(id, 1); // 20M of staked PHA
        vm.roll(block.number + 6);
        assertEq(uint256(governor.state(id)), uint256(IGovernor.ProposalState.Succeeded));
        governor.queue(t, v, c, keccak256("allow TDX"));
        vm.warp(block.timestamp + 1);
        governor.execute(t, v, c, keccak256("allow TDX"));
        Registry.PlatformConfig memory p = registry.platformConfig(TDX);
        assertTrue(p.enabled);
        assertEq(uint256(p.maxTcbStatus), 1);
    }

    function testProposalWithoutStakeVotesMissesQuorum() public {
        (address[] memory t, uint256[] memory v, bytes[] memory c) = proposal();
        vm.prank(alice);
        uint256 id = governor.propose(t, v, c, "allow TDX");
        vm.roll(block.number + 2);
        vm.prank(alice);
        governor.castVote(id, 1); // 30M < 40M quorum
        vm.roll(block.number + 6);
        assertEq(uint256(governor.state(id)), uint256(IGovernor.ProposalState.Defeated));
    }

    function testStakeWithdrawnAfterSnapshotStillCounts() public {
        (address[] memory t, uint256[] memory v, bytes[] memory c) = proposal();
        vm.prank(alice);
        uint256 id = governor.propose(t, v, c, "allow TDX");
        vm.roll(block.number + 2);
        vm.prank(bob);
        pools.requestWithdraw(operator, 20_000_000e18);
        vm.warp(block.timestamp + 60);
        pools.processWithdrawals(operator, 1);
        assertEq(pools.getVotes(bob), 0);
        vm.prank(bob);
        governor.castVote(id, 1); // votes at the snapshot
        (, uint256 forVotes,) = governor.proposalVotes(id);
        assertEq(forVotes, 20_000_000e18);
    }

    function testTimelockIsTheOnlyWayIn() public {
        vm.expectRevert();
        timelock.schedule(address(registry), 0, "", bytes32(0), bytes32(0), 1);
        vm.prank(stranger);
        vm.expectRevert();
        pools.slash(operator, 1, "");
    }
}
