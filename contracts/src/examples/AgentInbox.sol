// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title AgentInbox: posts that an agent program classifies, one decision per post.
/// Anyone posts a text; the agent (a Pith program's own address, fixed at deployment) records
/// one label per post. A second decision for the same post reverts, so the agent's actions
/// cannot be duplicated on chain even if two firings raced (examples/agent).
contract AgentInbox {
    uint8 public constant POSITIVE = 1;
    uint8 public constant NEGATIVE = 2;
    uint8 public constant NEUTRAL = 3;

    address public immutable agent;
    uint256 public posts;
    mapping(uint256 => string) public texts;
    /// 0 = not decided yet; otherwise POSITIVE, NEGATIVE or NEUTRAL.
    mapping(uint256 => uint8) public decision;

    event Posted(uint256 indexed id, address indexed author, string text);
    /// `byModel`: the model's answer decided; false: the agent's fallback rule did.
    event Decided(uint256 indexed id, uint8 label, bool byModel);

    error OnlyAgent(address caller);
    error NoSuchPost(uint256 id);
    error BadLabel(uint8 label);
    error AlreadyDecided(uint256 id);

    constructor(address agent_) {
        agent = agent_;
    }

    function post(string calldata text) external returns (uint256 id) {
        id = ++posts;
        texts[id] = text;
        emit Posted(id, msg.sender, text);
    }

    function decide(uint256 id, uint8 label, bool byModel) external {
        if (msg.sender != agent) revert OnlyAgent(msg.sender);
        if (id == 0 || id > posts) revert NoSuchPost(id);
        if (label == 0 || label > NEUTRAL) revert BadLabel(label);
        if (decision[id] != 0) revert AlreadyDecided(id);
        decision[id] = label;
        emit Decided(id, label, byModel);
    }
}
