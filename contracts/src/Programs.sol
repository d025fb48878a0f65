// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IPrograms} from "./Interfaces.sol";

/// @title Programs: code hash, owner and configuration of every Pith program.
/// @notice Ids are sequential from 1. The owner changes the configuration and the code. An owner
/// may commit to an upgrade policy: once `codeAdmin` is set, the code may only change to a code
/// hash on the program's allow-list, which only `codeAdmin` (a multisig, a DAO, a timelock; or
/// the owner itself) edits, and only `codeAdmin` can lift the policy again.
/// Programs holds no funds and has no global admin: it never needs an upgrade path of its own
/// beyond redeploying (see docs/adr/0020-contract-upgrades.md).
contract Programs is IPrograms {
    /// Limits the workers enforce (units as in pith-sandbox `Limits`); zero means the network
    /// default. `platformMask` bit i allows platform id i (docs/protocol.md); zero allows all.
    struct Config {
        uint32 memoryMib;
        uint32 cpuMillis;
        uint32 wallMillis;
        uint32 egressCount;
        uint64 egressBytes;
        uint64 outputBytes;
        uint256 platformMask;
        bytes32 egressAllowListHash;
    }

    struct Program {
        address owner;
        address codeAdmin;
        bytes32 codeHash;
        Config config;
    }

    uint256 public programCount;
    mapping(uint256 => Program) private _programs;
    mapping(uint256 => mapping(bytes32 => bool)) private _allowedCode;

    event ProgramRegistered(uint256 indexed programId, address indexed owner, bytes32 codeHash, Config config);
    event ProgramConfigured(uint256 indexed programId, Config config);
    event ProgramUpgraded(uint256 indexed programId, bytes32 oldCodeHash, bytes32 newCodeHash, address by);
    event OwnershipTransferred(uint256 indexed programId, address indexed previousOwner, address indexed newOwner);
    event CodeAdminSet(uint256 indexed programId, address codeAdmin);
    event AllowedCodeSet(uint256 indexed programId, bytes32 indexed codeHash, bool allowed);

    error UnknownProgram(uint256 programId);
    error NotOwner(uint256 programId, address caller);
    error NotCodeAdmin(uint256 programId, address caller);
    error NotAuthorized(uint256 programId, address caller);
    error CodeNotAllowed(uint256 programId, bytes32 codeHash);
    error ZeroCodeHash();
    error ZeroAddress();

    modifier onlyOwner(uint256 programId) {
        address owner = _programs[programId].owner;
        if (owner == address(0)) revert UnknownProgram(programId);
        if (owner != msg.sender) revert NotOwner(programId, msg.sender);
        _;
    }

    /// Register a program owned by the caller. Returns its id.
    function register(bytes32 codeHash, Config calldata config) external returns (uint256 programId) {
        if (codeHash == bytes32(0)) revert ZeroCodeHash();
        programId = ++programCount;
        Program storage p = _programs[programId];
        p.owner = msg.sender;
        p.codeHash = codeHash;
        p.config = config;
        emit ProgramRegistered(programId, msg.sender, codeHash, config);
    }

    function setConfig(uint256 programId, Config calldata config) external onlyOwner(programId) {
        _programs[programId].config = config;
        emit ProgramConfigured(programId, config);
    }

    function transferOwnership(uint256 programId, address newOwner) external onlyOwner(programId) {
        if (newOwner == address(0)) revert ZeroAddress();
        emit OwnershipTransferred(programId, msg.sender, newOwner);
        _programs[programId].owner = newOwner;
    }

    /// Change the code. Without a code admin: the owner, to any hash. With one: the owner or the
    /// code admin, to an allow-listed hash only.
    function upgrade(uint256 programId, bytes32 newCodeHash) external {
        Program storage p = _programs[programId];
        if (p.owner == address(0)) revert UnknownProgram(programId);
        if (newCodeHash == bytes32(0)) revert ZeroCodeHash();
        address admin = p.codeAdmin;
        if (admin == address(0)) {
            if (msg.sender != p.owner) revert NotOwner(programId, msg.sender);
        } else {
            if (msg.sender != p.owner && msg.sender != admin) revert NotAuthorized(programId, msg.sender);
            if (!_allowedCode[programId][newCodeHash]) revert CodeNotAllowed(programId, newCodeHash);
        }
        emit ProgramUpgraded(programId, p.codeHash, newCodeHash, msg.sender);
        p.codeHash = newCodeHash;
    }

    /// Commit to an allow-list upgrade policy controlled by `admin`. Only the owner, and only while
    /// no code admin is set; afterwards only the code admin can change or lift it.
    function setCodeAdmin(uint256 programId, address admin) external {
        Program storage p = _programs[programId];
        if (p.owner == address(0)) revert UnknownProgram(programId);
        if (p.codeAdmin == address(0)) {
            if (msg.sender != p.owner) revert NotOwner(programId, msg.sender);
        } else if (msg.sender != p.codeAdmin) {
            revert NotCodeAdmin(programId, msg.sender);
        }
        p.codeAdmin = admin;
        emit CodeAdminSet(programId, admin);
    }

    /// Edit the allow-list: the code admin, or the owner while no code admin is set (preparing
    /// the list before committing).
    function setAllowedCode(uint256 programId, bytes32 codeHash, bool allowed) external {
        Program storage p = _programs[programId];
        if (p.owner == address(0)) revert UnknownProgram(programId);
        address admin = p.codeAdmin;
        if (admin == address(0) ? msg.sender != p.owner : msg.sender != admin) {
            revert NotAuthorized(programId, msg.sender);
        }
        _allowedCode[programId][codeHash] = allowed;
        emit AllowedCodeSet(programId, codeHash, allowed);
    }

    // ---------------------------------------------------------------- views

    function exists(uint256 programId) external view returns (bool) {
        return _programs[programId].owner != address(0);
    }

    function ownerOf(uint256 programId) external view returns (address) {
        return _programs[programId].owner;
    }

    function codeHashOf(uint256 programId) external view returns (bytes32) {
        return _programs[programId].codeHash;
    }

    function program(uint256 programId) external view returns (Program memory) {
        return _programs[programId];
    }

    function isAllowedCode(uint256 programId, bytes32 codeHash) external view returns (bool) {
        return _allowedCode[programId][codeHash];
    }

    /// Code hash and platform mask in one call (OracleAnchor's fulfil path).
    function runInfo(uint256 programId) external view returns (bytes32 codeHash, uint256 platformMask) {
        Program storage p = _programs[programId];
        return (p.codeHash, p.config.platformMask);
    }

    /// Whether workers of `platform` may run the program.
    function platformAllowed(uint256 programId, uint8 platform) external view returns (bool) {
        uint256 mask = _programs[programId].config.platformMask;
        return mask == 0 || (mask >> platform) & 1 == 1;
    }
}
