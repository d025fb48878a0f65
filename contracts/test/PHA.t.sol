// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "./Base.sol";
import {PHA} from "../src/PHA.sol";

contract PHATest is Test {
    PHA internal pha;
    address internal treasury = address(0x7EA5);
    address internal reserve = address(0xE1);
    uint256 internal ownerKey = 0xA11CE;

    function setUp() public {
        vm.roll(10);
        pha = new PHA(treasury, 600e24, reserve, 400e24);
    }

    function testFixedSupply() public view {
        assertEq(pha.totalSupply(), 1e27);
        assertEq(pha.balanceOf(treasury), 600e24);
        assertEq(pha.balanceOf(reserve), 400e24);
        assertEq(uint256(pha.decimals()), 18);
        assertEq(keccak256(bytes(pha.symbol())), keccak256("PHA"));
    }

    function testConstructorRejectsZeroAddresses() public {
        vm.expectRevert(PHA.ZeroAddress.selector);
        new PHA(address(0), 1, reserve, 1);
        vm.expectRevert(PHA.ZeroAddress.selector);
        new PHA(treasury, 1, address(0), 1);
    }

    function testVotesFollowDelegation() public {
        assertEq(pha.getVotes(treasury), 0); // undelegated tokens do not vote
        vm.prank(treasury);
        pha.delegate(treasury);
        assertEq(pha.getVotes(treasury), 600e24);
        vm.prank(treasury);
        pha.transfer(address(0xB0B), 100e24);
        assertEq(pha.getVotes(treasury), 500e24);
        vm.roll(11);
        assertEq(pha.getPastVotes(treasury, 10), 500e24);
        assertEq(pha.getPastTotalSupply(10), 1e27);
        assertEq(keccak256(bytes(pha.CLOCK_MODE())), keccak256("mode=blocknumber&from=default"));
    }

    function testPermit() public {
        address owner = vm.addr(ownerKey);
        vm.prank(treasury);
        pha.transfer(owner, 10e18);
        uint256 deadline = block.timestamp + 1 hours;
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"),
                owner,
                address(this),
                10e18,
                pha.nonces(owner),
                deadline
            )
        );
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", pha.DOMAIN_SEPARATOR(), structHash));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ownerKey, digest);
        pha.permit(owner, address(this), 10e18, deadline, v, r, s);
        assertEq(pha.allowance(owner, address(this)), 10e18);
        assertEq(pha.nonces(owner), 1);
        // Replay fails: the nonce moved on.
        vm.expectRevert();
        pha.permit(owner, address(this), 10e18, deadline, v, r, s);
    }

    function testTransferRevertsOverBalance() public {
        vm.expectRevert();
        pha.transfer(treasury, 1);
    }
}
