// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Fixture} from "./Fixture.sol";
import {Programs} from "../src/Programs.sol";

contract ProgramsTest is Fixture {
    bytes32 internal constant CODE1 = keccak256("code v1");
    bytes32 internal constant CODE2 = keccak256("code v2");
    bytes32 internal constant CODE3 = keccak256("code v3");
    uint256 internal id;

    function setUp() public override {
        super.setUp();
        Programs.Config memory c = noConfig();
        c.memoryMib = 64;
        c.egressAllowListHash = keccak256("api.example.com");
        vm.prank(alice);
        id = programs.register(CODE1, c);
    }

    function testRegister() public view {
        assertEq(id, 1);
        assertEq(programs.programCount(), 1);
        assertTrue(programs.exists(id));
        assertFalse(programs.exists(2));
        assertEq(programs.ownerOf(id), alice);
        assertEq(programs.codeHashOf(id), CODE1);
        Programs.Program memory p = programs.program(id);
        assertEq(uint256(p.config.memoryMib), 64);
        assertEq(p.config.egressAllowListHash, keccak256("api.example.com"));
        assertEq(p.codeAdmin, address(0));
    }

    function testRegisterRevertsOnZeroCodeHash() public {
        vm.expectRevert(Programs.ZeroCodeHash.selector);
        programs.register(bytes32(0), noConfig());
    }

    function testSetConfig() public {
        Programs.Config memory c = noConfig();
        c.cpuMillis = 5000;
        vm.prank(alice);
        programs.setConfig(id, c);
        assertEq(uint256(programs.program(id).config.cpuMillis), 5000);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Programs.NotOwner.selector, id, bob));
        programs.setConfig(id, c);
        vm.expectRevert(abi.encodeWithSelector(Programs.UnknownProgram.selector, 9));
        programs.setConfig(9, c);
    }

    function testTransferOwnership() public {
        vm.prank(alice);
        programs.transferOwnership(id, bob);
        assertEq(programs.ownerOf(id), bob);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Programs.NotOwner.selector, id, alice));
        programs.transferOwnership(id, alice);
        vm.prank(bob);
        vm.expectRevert(Programs.ZeroAddress.selector);
        programs.transferOwnership(id, address(0));
    }

    function testUpgradeByOwner() public {
        vm.prank(alice);
        programs.upgrade(id, CODE2);
        assertEq(programs.codeHashOf(id), CODE2);
    }

    function testUpgradeReverts() public {
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Programs.NotOwner.selector, id, bob));
        programs.upgrade(id, CODE2);
        vm.prank(alice);
        vm.expectRevert(Programs.ZeroCodeHash.selector);
        programs.upgrade(id, bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(Programs.UnknownProgram.selector, 9));
        programs.upgrade(9, CODE2);
    }

    function testAllowListPolicy() public {
        // The owner prepares the list, then commits to a code admin (a DAO, say: bob).
        vm.startPrank(alice);
        programs.setAllowedCode(id, CODE2, true);
        programs.setCodeAdmin(id, bob);
        vm.expectRevert(abi.encodeWithSelector(Programs.CodeNotAllowed.selector, id, CODE3));
        programs.upgrade(id, CODE3);
        programs.upgrade(id, CODE2); // allowed: the owner may move to a listed hash
        // The owner can no longer edit the list or lift the policy.
        vm.expectRevert(abi.encodeWithSelector(Programs.NotAuthorized.selector, id, alice));
        programs.setAllowedCode(id, CODE3, true);
        vm.expectRevert(abi.encodeWithSelector(Programs.NotCodeAdmin.selector, id, alice));
        programs.setCodeAdmin(id, address(0));
        vm.stopPrank();
        // The code admin lists CODE3 and upgrades itself.
        vm.startPrank(bob);
        programs.setAllowedCode(id, CODE3, true);
        assertTrue(programs.isAllowedCode(id, CODE3));
        programs.upgrade(id, CODE3);
        assertEq(programs.codeHashOf(id), CODE3);
        programs.setCodeAdmin(id, address(0)); // lift the policy
        vm.stopPrank();
        vm.prank(alice);
        programs.upgrade(id, CODE1);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Programs.NotOwner.selector, id, stranger));
        programs.upgrade(id, CODE2);
    }

    function testPolicyRevertsForStrangers() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Programs.NotOwner.selector, id, stranger));
        programs.setCodeAdmin(id, stranger);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Programs.NotAuthorized.selector, id, stranger));
        programs.setAllowedCode(id, CODE2, true);
        vm.prank(alice);
        programs.setCodeAdmin(id, bob);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Programs.NotAuthorized.selector, id, stranger));
        programs.upgrade(id, CODE2);
        vm.expectRevert(abi.encodeWithSelector(Programs.UnknownProgram.selector, 9));
        programs.setCodeAdmin(9, bob);
        vm.expectRevert(abi.encodeWithSelector(Programs.UnknownProgram.selector, 9));
        programs.setAllowedCode(9, CODE2, true);
    }

    function testPlatformMask() public {
        assertTrue(programs.platformAllowed(id, SIM)); // mask 0: all
        Programs.Config memory c = noConfig();
        c.platformMask = (uint256(1) << TDX);
        vm.prank(alice);
        programs.setConfig(id, c);
        assertTrue(programs.platformAllowed(id, TDX));
        assertFalse(programs.platformAllowed(id, SIM));
    }

    function testRunInfo() public {
        Programs.Config memory c = noConfig();
        c.platformMask = 6;
        vm.prank(alice);
        programs.setConfig(id, c);
        (bytes32 code, uint256 mask) = programs.runInfo(id);
        assertEq(code, CODE1);
        assertEq(mask, 6);
    }
}
