// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IPithOracleConsumer} from "../Interfaces.sol";
import {OracleAnchor} from "../OracleAnchor.sol";

/// @title OracleConsumer: the smallest useful OracleAnchor client. It asks a program and keeps
/// the last result per request. Used by the tests and as an example for dapp authors.
contract OracleConsumer is IPithOracleConsumer {
    OracleAnchor public immutable anchor;
    mapping(uint256 => bytes) public results;
    uint256 public lastRequestId;

    event ResultReceived(uint256 indexed requestId, bytes result);

    error OnlyAnchor();

    constructor(OracleAnchor anchor_) {
        anchor = anchor_;
    }

    /// Ask `programId`; the caller must have approved `fee` PHA to this contract.
    function ask(uint256 programId, bytes calldata payload, uint32 callbackGasLimit, uint128 fee)
        external
        returns (uint256 requestId)
    {
        IERC20 token = anchor.token();
        if (fee != 0) {
            token.transferFrom(msg.sender, address(this), fee);
            token.approve(address(anchor), fee);
        }
        requestId = anchor.request(programId, payload, callbackGasLimit, fee);
        lastRequestId = requestId;
    }

    function onPithOracleResult(uint256 requestId, bytes calldata result) external {
        if (msg.sender != address(anchor)) revert OnlyAnchor();
        results[requestId] = result;
        emit ResultReceived(requestId, result);
    }
}
