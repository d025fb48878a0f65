// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @title PHA, the Pith network token.
/// @notice Fixed supply: everything is minted once, in the constructor, to the treasury and to the
/// emission reserve (which the deployer hands to Billing). There is no mint function.
/// Votes are checkpointed by block number (ERC20Votes); staked PHA votes through StakePools
/// (see docs/adr/0021-staked-voting-power.md).
contract PHA is ERC20, ERC20Permit, ERC20Votes {
    error ZeroAddress();

    constructor(address treasury, uint256 treasuryAmount, address emissionReserve, uint256 emissionAmount)
        ERC20("Pith", "PHA")
        ERC20Permit("Pith")
    {
        if (treasury == address(0) || emissionReserve == address(0)) revert ZeroAddress();
        _mint(treasury, treasuryAmount);
        _mint(emissionReserve, emissionAmount);
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }

    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }
}
