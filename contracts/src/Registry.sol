// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Retirable} from "./Retirable.sol";
import {IRegistry} from "./Interfaces.sol";

/// @title Registry: TEE platforms, allowed measurements, the KMS committee and attested workers.
/// @notice Platform ids, measurement hashes and TCB status codes are those of docs/protocol.md
/// (shared with pith-attest and the KMS). A worker is registered with a registration that a
/// threshold of the KMS committee signed (EIP-712, see docs/protocol.md "Contracts: signed
/// messages"); the evidence bytes travel in the calldata and their keccak256 is in the event, so
/// anyone can fetch the transaction and re-verify the evidence.
contract Registry is Retirable, EIP712, IRegistry {
    /// Role codes of the measurement allow-lists.
    uint8 public constant ROLE_KMS = 0;
    uint8 public constant ROLE_WORKER = 1;
    /// Largest TCB status code defined (Revoked); never acceptable.
    uint8 public constant TCB_REVOKED = 6;

    bytes32 public constant WORKER_REGISTRATION_TYPEHASH = keccak256(
        "WorkerRegistration(address worker,address operator,uint8 platform,bytes32 measurementHash,uint8 tcbStatus,bytes32 evidenceHash,uint64 expiry)"
    );
    bytes32 public constant WORKER_REVOCATION_TYPEHASH =
        keccak256("WorkerRevocation(address worker,uint8 reason)");

    struct PlatformConfig {
        bool enabled;
        /// Worst TCB status code accepted (0 = UpToDate only).
        uint8 maxTcbStatus;
    }

    struct WorkerRegistration {
        address worker;
        address operator;
        uint8 platform;
        bytes32 measurementHash;
        uint8 tcbStatus;
        bytes32 evidenceHash;
        uint64 expiry;
    }

    struct Worker {
        address operator;
        uint8 platform;
        uint8 tcbStatus;
        uint64 expiry;
        bool revoked;
        bytes32 measurementHash;
        bytes32 evidenceHash;
    }

    mapping(uint8 => PlatformConfig) private _platforms;
    mapping(bytes32 => bool) private _measurements; // keccak256(platform, role, hash)
    mapping(address => Worker) private _workers;

    address[] private _kmsMembers;
    mapping(address => uint256) private _kmsGeneration; // member => generation it belongs to
    uint256 public kmsGeneration;
    uint8 public kmsThreshold;

    /// Longest registration validity a KMS signature may grant.
    uint64 public maxRegistrationTtl;
    /// Epoch of the KMS master key (the `epoch` of the pith-crypto key tree). Governance raises
    /// it with `rotateKmsKey`; the KMS committee watches `KmsKeyRotationOrdered` and derives the
    /// new epoch's keys. Starts at 0.
    uint32 public kmsKeyEpoch;

    event PlatformSet(uint8 indexed platform, bool enabled, uint8 maxTcbStatus);
    event MeasurementSet(uint8 indexed platform, uint8 indexed role, bytes32 indexed measurementHash, bool allowed);
    event KmsCommitteeSet(uint256 indexed generation, address[] members, uint8 threshold);
    event KmsEvidencePosted(
        address indexed member, uint8 platform, bytes32 measurementHash, uint8 tcbStatus, bytes32 evidenceHash
    );
    event WorkerRegistered(
        address indexed worker,
        address indexed operator,
        uint8 platform,
        bytes32 measurementHash,
        uint8 tcbStatus,
        bytes32 evidenceHash,
        uint64 expiry,
        bool renewal
    );
    event WorkerRevoked(address indexed worker, uint8 reason, bool byKms);
    event MaxRegistrationTtlSet(uint64 ttl);
    event KmsKeyRotationOrdered(uint32 indexed epoch);

    error BadRole(uint8 role);
    error BadTcbStatus(uint8 tcbStatus);
    error BadThreshold();
    error DuplicateOrUnsortedSigner(address signer);
    error NotKmsMember(address signer);
    error NotEnoughSignatures(uint256 got, uint256 threshold);
    error RegistrationExpired(uint64 expiry);
    error ExpiryTooFar(uint64 expiry);
    error PlatformNotEnabled(uint8 platform);
    error TcbNotAccepted(uint8 tcbStatus);
    error MeasurementNotAllowed(uint8 platform, uint8 role, bytes32 measurementHash);
    error EvidenceHashMismatch();
    error WorkerIsRevoked(address worker);
    error OperatorMismatch(address registered, address given);
    error StaleRegistration(uint64 current, uint64 given);
    error UnknownWorker(address worker);

    constructor(address admin, uint64 maxTtl) Retirable(admin) EIP712("Pith Registry", "1") {
        maxRegistrationTtl = maxTtl;
        emit MaxRegistrationTtlSet(maxTtl);
    }

    // ---------------------------------------------------------------- governance

    /// Enable or disable a platform and set the worst TCB status accepted for it.
    function setPlatform(uint8 platform, bool enabled, uint8 maxTcbStatus) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (maxTcbStatus >= TCB_REVOKED) revert BadTcbStatus(maxTcbStatus);
        _platforms[platform] = PlatformConfig(enabled, maxTcbStatus);
        emit PlatformSet(platform, enabled, maxTcbStatus);
    }

    /// Allow or disallow a measurement hash for a platform and role (ROLE_KMS or ROLE_WORKER).
    function setMeasurement(uint8 platform, uint8 role, bytes32 measurementHash, bool allowed)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        if (role > ROLE_WORKER) revert BadRole(role);
        _measurements[_measurementKey(platform, role, measurementHash)] = allowed;
        emit MeasurementSet(platform, role, measurementHash, allowed);
    }

    /// Replace the KMS committee. Signatures of earlier members stop counting at once.
    function setKmsCommittee(address[] calldata members, uint8 threshold) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (threshold == 0 || threshold > members.length) revert BadThreshold();
        uint256 generation = kmsGeneration + 1;
        kmsGeneration = generation;
        delete _kmsMembers;
        for (uint256 i = 0; i < members.length; ++i) {
            address m = members[i];
            if (m == address(0)) revert ZeroAddress();
            if (_kmsGeneration[m] == generation) revert DuplicateOrUnsortedSigner(m);
            _kmsGeneration[m] = generation;
            _kmsMembers.push(m);
        }
        kmsThreshold = threshold;
        emit KmsCommitteeSet(generation, members, threshold);
    }

    function setMaxRegistrationTtl(uint64 ttl) external onlyRole(DEFAULT_ADMIN_ROLE) {
        maxRegistrationTtl = ttl;
        emit MaxRegistrationTtlSet(ttl);
    }

    /// Revoke a worker for good (its address can never register again). Governance.
    function revokeWorker(address worker, uint8 reason) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _revoke(worker, reason, false);
    }

    /// Order the KMS committee to rotate its master key: the key epoch goes up by one and the
    /// KMS moves to it when it sees the event. Governance only (the timelock after deployment).
    function rotateKmsKey() external onlyRole(DEFAULT_ADMIN_ROLE) returns (uint32 epoch) {
        epoch = kmsKeyEpoch + 1;
        kmsKeyEpoch = epoch;
        emit KmsKeyRotationOrdered(epoch);
    }

    // ---------------------------------------------------------------- KMS

    /// Revoke a worker with a threshold of KMS signatures over WorkerRevocation(worker, reason),
    /// for example after a TCB downgrade. Anyone may submit.
    function revokeWorkerByKms(address worker, uint8 reason, bytes[] calldata signatures) external {
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(WORKER_REVOCATION_TYPEHASH, worker, reason)));
        checkKmsSignatures(digest, signatures);
        _revoke(worker, reason, true);
    }

    /// A KMS member posts its own evidence so that anyone can re-verify it; the measurement must
    /// be allowed for ROLE_KMS on that platform.
    function postKmsEvidence(uint8 platform, bytes32 measurementHash, uint8 tcbStatus, bytes calldata evidence)
        external
        whenActive
    {
        if (_kmsGeneration[msg.sender] != kmsGeneration || kmsGeneration == 0) revert NotKmsMember(msg.sender);
        _checkPolicy(platform, ROLE_KMS, measurementHash, tcbStatus);
        emit KmsEvidencePosted(msg.sender, platform, measurementHash, tcbStatus, keccak256(evidence));
    }

    // ---------------------------------------------------------------- workers

    /// Register or re-attest a worker. `evidence` is the raw evidence the KMS verified; its
    /// keccak256 must equal `reg.evidenceHash`. Anyone may submit (the worker, its operator or a
    /// relayer): the KMS signatures bind every field. Signatures must come from distinct current
    /// committee members, sorted by signer address, at least `kmsThreshold` of them.
    function registerWorker(WorkerRegistration calldata reg, bytes calldata evidence, bytes[] calldata signatures)
        external
        whenActive
    {
        if (reg.expiry <= block.timestamp) revert RegistrationExpired(reg.expiry);
        if (reg.expiry > block.timestamp + maxRegistrationTtl) revert ExpiryTooFar(reg.expiry);
        if (reg.worker == address(0) || reg.operator == address(0)) revert ZeroAddress();
        _checkPolicy(reg.platform, ROLE_WORKER, reg.measurementHash, reg.tcbStatus);
        if (keccak256(evidence) != reg.evidenceHash) revert EvidenceHashMismatch();

        Worker storage w = _workers[reg.worker];
        bool renewal = w.operator != address(0);
        if (renewal) {
            if (w.revoked) revert WorkerIsRevoked(reg.worker);
            if (w.operator != reg.operator) revert OperatorMismatch(w.operator, reg.operator);
            if (reg.expiry <= w.expiry) revert StaleRegistration(w.expiry, reg.expiry);
        }

        bytes32 digest = _hashTypedDataV4(
            keccak256(
                abi.encode(
                    WORKER_REGISTRATION_TYPEHASH,
                    reg.worker,
                    reg.operator,
                    reg.platform,
                    reg.measurementHash,
                    reg.tcbStatus,
                    reg.evidenceHash,
                    reg.expiry
                )
            )
        );
        checkKmsSignatures(digest, signatures);

        w.operator = reg.operator;
        w.platform = reg.platform;
        w.tcbStatus = reg.tcbStatus;
        w.expiry = reg.expiry;
        w.measurementHash = reg.measurementHash;
        w.evidenceHash = reg.evidenceHash;
        emit WorkerRegistered(
            reg.worker,
            reg.operator,
            reg.platform,
            reg.measurementHash,
            reg.tcbStatus,
            reg.evidenceHash,
            reg.expiry,
            renewal
        );
    }

    // ---------------------------------------------------------------- views

    /// Verify that `signatures` over `digest` come from at least `kmsThreshold` distinct members
    /// of the current committee, sorted by ascending signer address. Reverts otherwise.
    function checkKmsSignatures(bytes32 digest, bytes[] calldata signatures) public view {
        uint256 threshold = kmsThreshold;
        if (threshold == 0 || signatures.length < threshold) revert NotEnoughSignatures(signatures.length, threshold);
        uint256 generation = kmsGeneration;
        address last = address(0);
        for (uint256 i = 0; i < signatures.length; ++i) {
            address signer = ECDSA.recover(digest, signatures[i]);
            if (signer <= last) revert DuplicateOrUnsortedSigner(signer);
            if (_kmsGeneration[signer] != generation) revert NotKmsMember(signer);
            last = signer;
        }
    }

    /// Registered, not revoked, not expired, and still within the current policy (platform
    /// enabled, TCB status accepted, measurement allowed for workers).
    function isActiveWorker(address worker) external view returns (bool active) {
        (active,,) = workerStatus(worker);
    }

    /// `isActiveWorker` with the worker's operator and platform, in one call.
    function workerStatus(address worker) public view returns (bool active, address operator, uint8 platform) {
        Worker storage w = _workers[worker];
        operator = w.operator;
        platform = w.platform;
        if (operator == address(0) || w.revoked || w.expiry <= block.timestamp) return (false, operator, platform);
        PlatformConfig memory p = _platforms[platform];
        if (!p.enabled || w.tcbStatus > p.maxTcbStatus) return (false, operator, platform);
        active = _measurements[_measurementKey(platform, ROLE_WORKER, w.measurementHash)];
    }

    /// Registered at some point and never revoked (expired workers are still known: their past
    /// usage can still be settled).
    function isKnownWorker(address worker) external view returns (bool) {
        Worker storage w = _workers[worker];
        return w.operator != address(0) && !w.revoked;
    }

    function operatorOf(address worker) external view returns (address) {
        return _workers[worker].operator;
    }

    function platformOf(address worker) external view returns (uint8) {
        return _workers[worker].platform;
    }

    function workerInfo(address worker) external view returns (Worker memory) {
        return _workers[worker];
    }

    function platformConfig(uint8 platform) external view returns (PlatformConfig memory) {
        return _platforms[platform];
    }

    function isAllowedMeasurement(uint8 platform, uint8 role, bytes32 measurementHash) external view returns (bool) {
        return _measurements[_measurementKey(platform, role, measurementHash)];
    }

    function kmsMembers() external view returns (address[] memory) {
        return _kmsMembers;
    }

    function isKmsMember(address account) external view returns (bool) {
        return kmsGeneration != 0 && _kmsGeneration[account] == kmsGeneration;
    }

    /// The EIP-712 digest the KMS signs for a registration (a convenience for clients).
    function registrationDigest(WorkerRegistration calldata reg) external view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    WORKER_REGISTRATION_TYPEHASH,
                    reg.worker,
                    reg.operator,
                    reg.platform,
                    reg.measurementHash,
                    reg.tcbStatus,
                    reg.evidenceHash,
                    reg.expiry
                )
            )
        );
    }

    function revocationDigest(address worker, uint8 reason) external view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(WORKER_REVOCATION_TYPEHASH, worker, reason)));
    }

    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ---------------------------------------------------------------- internal

    function _checkPolicy(uint8 platform, uint8 role, bytes32 measurementHash, uint8 tcbStatus) private view {
        PlatformConfig memory p = _platforms[platform];
        if (!p.enabled) revert PlatformNotEnabled(platform);
        if (tcbStatus > p.maxTcbStatus) revert TcbNotAccepted(tcbStatus);
        if (!_measurements[_measurementKey(platform, role, measurementHash)]) {
            revert MeasurementNotAllowed(platform, role, measurementHash);
        }
    }

    function _revoke(address worker, uint8 reason, bool byKms) private {
        Worker storage w = _workers[worker];
        if (w.operator == address(0)) revert UnknownWorker(worker);
        if (w.revoked) revert WorkerIsRevoked(worker);
        w.revoked = true;
        emit WorkerRevoked(worker, reason, byKms);
    }

    function _measurementKey(uint8 platform, uint8 role, bytes32 measurementHash) private pure returns (bytes32) {
        return keccak256(abi.encode(platform, role, measurementHash));
    }
}
