// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title Retirable: the migration path of docs/adr/0020-contract-upgrades.md.
/// @notice Pith contracts are immutable. To replace one, governance deploys the successor and
/// calls `retire(successor)`: from then on the retired contract refuses new business (new
/// deposits, registrations, requests) but keeps every exit open (withdrawals, refunds, views),
/// so users move their funds themselves and nothing is ever taken from them by an upgrade.
abstract contract Retirable is AccessControl {
    /// The successor, once retired; zero while active.
    address public successor;

    event Retired(address indexed successor);

    error IsRetired(address successor);
    error ZeroAddress();

    constructor(address admin) {
        if (admin == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    modifier whenActive() {
        if (successor != address(0)) revert IsRetired(successor);
        _;
    }

    /// Retire this contract in favour of `next`. Admin (the timelock) only; irreversible.
    function retire(address next) external onlyRole(DEFAULT_ADMIN_ROLE) whenActive {
        if (next == address(0)) revert ZeroAddress();
        successor = next;
        _onRetire(next);
        emit Retired(next);
    }

    /// Hook for contracts that hand something over (for example the emission reserve).
    function _onRetire(address next) internal virtual {}
}
