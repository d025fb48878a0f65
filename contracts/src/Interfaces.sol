// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice Registry views used by the other Pith contracts.
interface IRegistry {
    function isActiveWorker(address worker) external view returns (bool);
    function workerStatus(address worker) external view returns (bool active, address operator, uint8 platform);
    function isKnownWorker(address worker) external view returns (bool);
    function operatorOf(address worker) external view returns (address);
    function platformOf(address worker) external view returns (uint8);
    function checkKmsSignatures(bytes32 digest, bytes[] calldata signatures) external view;
}

/// @notice Programs views used by Billing and OracleAnchor.
interface IPrograms {
    function exists(uint256 programId) external view returns (bool);
    function ownerOf(uint256 programId) external view returns (address);
    function codeHashOf(uint256 programId) external view returns (bytes32);
    function platformAllowed(uint256 programId, uint8 platform) external view returns (bool);
    function runInfo(uint256 programId) external view returns (bytes32 codeHash, uint256 platformMask);
}

/// @notice StakePools entry points used by Billing and OracleAnchor.
interface IStakePools {
    function poolExists(address operator) external view returns (bool);
    function canWork(address worker) external view returns (bool);
    function workStatus(address worker) external view returns (bool ok, address operator, uint8 platform);
    function distribute(address operator, uint256 amount) external;
}

/// @notice Implemented by contracts that receive OracleAnchor results.
interface IPithOracleConsumer {
    function onPithOracleResult(uint256 requestId, bytes calldata result) external;
}
