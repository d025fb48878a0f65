// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "./Base.sol";
import {AgentInbox} from "../src/examples/AgentInbox.sol";

contract AgentInboxTest is Test {
    AgentInbox internal inbox;
    address internal agent = address(0xA6E7);
    address internal user = address(0xB0B);

    function setUp() public {
        inbox = new AgentInbox(agent);
    }

    function testPostThenOneDecisionByTheAgent() public {
        vm.prank(user);
        uint256 id = inbox.post("I love this");
        assertEq(id, 1);
        assertEq(inbox.posts(), 1);
        assertEq(keccak256(bytes(inbox.texts(1))), keccak256("I love this"));
        vm.prank(agent);
        inbox.decide(1, 1, true); // POSITIVE
        assertEq(uint256(inbox.decision(1)), 1);
    }

    function testOnlyTheAgentDecides() public {
        inbox.post("x");
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(AgentInbox.OnlyAgent.selector, user));
        inbox.decide(1, 1, false);
    }

    function testASecondDecisionReverts() public {
        inbox.post("x");
        vm.startPrank(agent);
        inbox.decide(1, 3, false);
        vm.expectRevert(abi.encodeWithSelector(AgentInbox.AlreadyDecided.selector, 1));
        inbox.decide(1, 2, true);
        vm.stopPrank();
        assertEq(uint256(inbox.decision(1)), 3);
    }

    function testUnknownPostsAndBadLabelsRevert() public {
        inbox.post("x");
        vm.startPrank(agent);
        vm.expectRevert(abi.encodeWithSelector(AgentInbox.NoSuchPost.selector, 0));
        inbox.decide(0, 1, true);
        vm.expectRevert(abi.encodeWithSelector(AgentInbox.NoSuchPost.selector, 2));
        inbox.decide(2, 1, true);
        vm.expectRevert(abi.encodeWithSelector(AgentInbox.BadLabel.selector, 0));
        inbox.decide(1, 0, true);
        vm.expectRevert(abi.encodeWithSelector(AgentInbox.BadLabel.selector, 4));
        inbox.decide(1, 4, true);
        vm.stopPrank();
    }
}
