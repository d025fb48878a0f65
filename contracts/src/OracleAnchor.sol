// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Retirable} from "./Retirable.sol";
import {IRegistry, IPrograms, IStakePools, IPithOracleConsumer} from "./Interfaces.sol";

/// @title OracleAnchor: EVM contracts call Pith programs.
/// @notice `request` escrows a PHA fee and emits the payload; a worker runs the program and
/// signs the result (EIP-712 OracleResult, docs/protocol.md); anyone relays it with `fulfil`,
/// which accepts it only if the signer can work (active in the Registry, stake locked) and its
/// platform is allowed for the program, then calls the requester back with the requested gas
/// limit. A request not fulfilled before its deadline is refunded.
contract OracleAnchor is Retirable, EIP712 {
    using SafeERC20 for IERC20;

    bytes32 public constant ORACLE_RESULT_TYPEHASH =
        keccak256("OracleResult(uint256 requestId,uint256 programId,bytes32 codeHash,bytes32 resultHash)");

    struct Request {
        address requester;
        uint64 deadline;
        uint32 callbackGasLimit;
        uint64 programId;
        uint128 fee;
    }

    IERC20 public immutable token;
    IRegistry public registry;
    IPrograms public programs;
    IStakePools public stakePools;

    uint64 public timeout;
    uint32 public maxCallbackGas;
    uint128 public minFee;
    uint256 public requestCount;
    mapping(uint256 => Request) private _requests;
    /// Fees earned by each operator's workers, paid into its pool by `sweepFees`.
    mapping(address => uint256) public feesOwed;

    event OracleRequested(
        uint256 indexed requestId,
        uint256 indexed programId,
        address indexed requester,
        bytes payload,
        uint64 deadline,
        uint32 callbackGasLimit,
        uint128 fee
    );
    event OracleFulfilled(uint256 indexed requestId, address indexed worker, bytes32 resultHash, bool callbackOk);
    event OracleRefunded(uint256 indexed requestId, address indexed requester, uint128 fee);
    event FeesSwept(address indexed operator, uint256 amount);
    event FeeAccountOpened(address indexed operator, address indexed payer);
    event ParamsSet(uint64 timeout, uint32 maxCallbackGas, uint128 minFee);
    event ContractsSet(address registry, address programs, address stakePools);

    error UnknownProgram(uint256 programId);
    error CallbackGasTooHigh(uint32 gas, uint32 max);
    error FeeTooLow(uint128 fee, uint128 min);
    error UnknownRequest(uint256 requestId);
    error RequestExpired(uint256 requestId, uint64 deadline);
    error NotExpired(uint256 requestId, uint64 deadline);
    error WorkerNotAllowed(address worker);
    error InsufficientGas();
    error BadParams();

    constructor(
        address admin,
        IERC20 token_,
        IRegistry registry_,
        IPrograms programs_,
        IStakePools stakePools_,
        uint64 timeout_,
        uint32 maxCallbackGas_,
        uint128 minFee_
    ) Retirable(admin) EIP712("Pith OracleAnchor", "1") {
        if (address(token_) == address(0)) revert ZeroAddress();
        token = token_;
        _setContracts(registry_, programs_, stakePools_);
        _setParams(timeout_, maxCallbackGas_, minFee_);
    }

    // ---------------------------------------------------------------- governance

    function setParams(uint64 timeout_, uint32 maxCallbackGas_, uint128 minFee_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setParams(timeout_, maxCallbackGas_, minFee_);
    }

    function setContracts(IRegistry r, IPrograms p, IStakePools s) external onlyRole(DEFAULT_ADMIN_ROLE) {
        token.forceApprove(address(stakePools), 0);
        _setContracts(r, p, s);
    }

    // ---------------------------------------------------------------- requesters

    /// Ask program `programId` to process `payload`; escrows `fee` PHA from the caller. The result
    /// comes back through `IPithOracleConsumer.onPithOracleResult` with `callbackGasLimit` gas.
    function request(uint256 programId, bytes calldata payload, uint32 callbackGasLimit, uint128 fee)
        external
        whenActive
        returns (uint256 requestId)
    {
        if (programId > type(uint64).max || !programs.exists(programId)) revert UnknownProgram(programId);
        if (callbackGasLimit > maxCallbackGas) revert CallbackGasTooHigh(callbackGasLimit, maxCallbackGas);
        if (fee < minFee) revert FeeTooLow(fee, minFee);
        if (fee != 0) token.safeTransferFrom(msg.sender, address(this), fee);
        requestId = ++requestCount;
        uint64 deadline = uint64(block.timestamp) + timeout;
        _requests[requestId] = Request(msg.sender, deadline, callbackGasLimit, uint64(programId), fee);
        emit OracleRequested(requestId, programId, msg.sender, payload, deadline, callbackGasLimit, fee);
    }

    /// Refund the fee of a request whose deadline passed unfulfilled. Anyone may call.
    function refund(uint256 requestId) external {
        Request memory r = _requests[requestId];
        if (r.requester == address(0)) revert UnknownRequest(requestId);
        if (block.timestamp <= r.deadline) revert NotExpired(requestId, r.deadline);
        delete _requests[requestId];
        if (r.fee != 0) token.safeTransfer(r.requester, r.fee);
        emit OracleRefunded(requestId, r.requester, r.fee);
    }

    // ---------------------------------------------------------------- workers

    /// Deliver `result` for `requestId`, signed by the worker that computed it. Anyone may relay.
    /// The callback's failure does not revert the fulfilment (the event says whether it ran).
    function fulfil(uint256 requestId, bytes calldata result, bytes calldata signature) external {
        Request memory r = _requests[requestId];
        if (r.requester == address(0)) revert UnknownRequest(requestId);
        if (block.timestamp > r.deadline) revert RequestExpired(requestId, r.deadline);
        bytes32 resultHash = keccak256(result);
        (bytes32 codeHash, uint256 platformMask) = programs.runInfo(r.programId);
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(ORACLE_RESULT_TYPEHASH, requestId, uint256(r.programId), codeHash, resultHash))
        );
        address worker = ECDSA.recover(digest, signature);
        (bool ok, address operator, uint8 platform) = stakePools.workStatus(worker);
        if (!ok || (platformMask != 0 && (platformMask >> platform) & 1 == 0)) revert WorkerNotAllowed(worker);
        delete _requests[requestId];
        if (r.fee != 0) feesOwed[operator] += r.fee;

        ok = true;
        if (r.callbackGasLimit != 0) {
            // EIP-150 keeps 1/64 back: make sure the callee really gets the gas it asked for, so a
            // relayer cannot make the callback fail by sending too little.
            if (gasleft() < uint256(r.callbackGasLimit) * 64 / 63 + 10_000) revert InsufficientGas();
            (ok,) = r.requester.call{gas: r.callbackGasLimit}(
                abi.encodeCall(IPithOracleConsumer.onPithOracleResult, (requestId, result))
            );
        }
        emit OracleFulfilled(requestId, worker, resultHash, ok);
    }

    /// Open `operator`'s fee account ahead of its first fulfilment: the caller pays one wei of
    /// PHA (approved to this contract), which is owed to the operator from then on. Creating
    /// the storage slot costs about 20k gas once; paying it at onboarding keeps every fulfil,
    /// the first included, at the price of updating a non-zero slot (2.9k). Anyone may call;
    /// a no-op when the account is already open.
    function openFeeAccount(address operator) external {
        if (operator == address(0)) revert ZeroAddress();
        if (feesOwed[operator] != 0) return;
        token.safeTransferFrom(msg.sender, address(this), 1);
        feesOwed[operator] = 1;
        emit FeeAccountOpened(operator, msg.sender);
    }

    /// Pay the fees earned by `operator`'s workers into its pool. Anyone may call. One wei stays
    /// owed so that the slot is never cleared: the next fulfil then pays 2.9k gas, not 20k.
    function sweepFees(address operator) external returns (uint256 amount) {
        uint256 owed = feesOwed[operator];
        amount = owed > 1 ? owed - 1 : 0;
        feesOwed[operator] = owed - amount;
        if (amount != 0) stakePools.distribute(operator, amount);
        emit FeesSwept(operator, amount);
    }

    // ---------------------------------------------------------------- views

    function requestInfo(uint256 requestId) external view returns (Request memory) {
        return _requests[requestId];
    }

    function resultDigest(uint256 requestId, uint256 programId, bytes32 codeHash, bytes32 resultHash)
        external
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(ORACLE_RESULT_TYPEHASH, requestId, programId, codeHash, resultHash)));
    }

    // ---------------------------------------------------------------- internal

    function _setParams(uint64 timeout_, uint32 maxCallbackGas_, uint128 minFee_) private {
        if (timeout_ == 0) revert BadParams();
        timeout = timeout_;
        maxCallbackGas = maxCallbackGas_;
        minFee = minFee_;
        emit ParamsSet(timeout_, maxCallbackGas_, minFee_);
    }

    function _setContracts(IRegistry r, IPrograms p, IStakePools s) private {
        if (address(r) == address(0) || address(p) == address(0) || address(s) == address(0)) revert ZeroAddress();
        registry = r;
        programs = p;
        stakePools = s;
        token.forceApprove(address(s), type(uint256).max);
        emit ContractsSet(address(r), address(p), address(s));
    }
}
