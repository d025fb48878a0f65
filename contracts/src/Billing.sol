// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {Retirable} from "./Retirable.sol";
import {IRegistry, IPrograms, IStakePools} from "./Interfaces.sol";

/// @title Billing: program deposits, usage settlement and emission rewards.
/// @notice Program owners (or anyone) deposit PHA for a program. Workers sign batches of usage
/// (EIP-712, docs/protocol.md) with their registered key; anyone submits them. A batch nonce must
/// be at least the worker's next nonce, so no batch is ever counted twice. Usage (requests, CPU
/// milliseconds, egress bytes, model tokens) is priced by the governance price list and charged
/// to each program's deposit (up to what is left); the proceeds, less the treasury fee, go to
/// the worker operator's pool. Each epoch's emission budget, decaying geometrically, is shared
/// by operators in proportion to the PHA their workers earned in that epoch.
contract Billing is Retirable, EIP712 {
    using SafeERC20 for IERC20;

    bytes32 public constant USAGE_ENTRY_TYPEHASH =
        keccak256("UsageEntry(uint256 programId,uint64 requests,uint64 cpuMillis,uint64 egressBytes,uint64 aiTokens)");
    bytes32 public constant USAGE_BATCH_TYPEHASH = keccak256(
        "UsageBatch(address worker,uint64 nonce,UsageEntry[] entries)UsageEntry(uint256 programId,uint64 requests,uint64 cpuMillis,uint64 egressBytes,uint64 aiTokens)"
    );
    uint256 private constant BPS = 10_000;
    uint256 private constant WAD = 1e18;

    struct UsageEntry {
        uint256 programId;
        uint64 requests;
        uint64 cpuMillis;
        uint64 egressBytes;
        /// Prompt plus completion tokens of the worker's model (env.ai.chat, inference programs).
        uint64 aiTokens;
    }

    struct UsageBatch {
        address worker;
        uint64 nonce;
        UsageEntry[] entries;
    }

    /// PHA (in wei) per unit of each resource.
    struct Prices {
        uint128 perRequest;
        uint128 perCpuMilli;
        uint128 perEgressByte;
        uint128 perAiToken;
    }

    struct PendingWithdrawal {
        uint192 amount;
        uint64 readyAt;
    }

    IERC20 public immutable token;
    uint64 public immutable genesis;
    uint64 public immutable epochLength;

    IRegistry public registry;
    IPrograms public programs;
    IStakePools public stakePools;
    address public treasury;
    Prices public prices;
    uint16 public treasuryFeeBps;
    uint64 public withdrawDelay;

    /// Emission schedule: epoch e's budget is initialEpochBudget * decayWad^e / 1e18^e.
    uint256 public initialEpochBudget;
    uint256 public decayWad;

    mapping(uint256 => uint256) public deposits;
    mapping(uint256 => PendingWithdrawal) public pendingWithdrawals;
    mapping(address => uint64) public nextUsageNonce;
    uint256 public treasuryAccrued;
    /// PHA held for emissions and not yet committed to an epoch.
    uint256 public emissionReserve;
    /// PHA committed to fixed epoch budgets and not yet paid.
    uint256 public emissionCommitted;
    mapping(uint256 => uint256) public workDone; // epoch => total PHA earned
    mapping(uint256 => mapping(address => uint256)) public workOf; // epoch => operator => PHA earned
    mapping(uint256 => uint256) public epochBudget; // fixed at the first claim
    mapping(uint256 => bool) public epochBudgetFixed;
    mapping(uint256 => mapping(address => bool)) public emissionClaimed;

    event Deposited(uint256 indexed programId, address indexed from, uint256 amount);
    event WithdrawalRequested(uint256 indexed programId, uint256 amount, uint64 readyAt);
    event Withdrawn(uint256 indexed programId, address indexed to, uint256 amount);
    event UsageSettled(
        address indexed worker, address indexed operator, uint64 nonce, uint256 charged, uint256 fee, uint256 entries
    );
    event Underfunded(uint256 indexed programId, uint256 cost, uint256 charged);
    event EmissionFunded(address indexed from, uint256 amount);
    event EmissionClaimed(uint256 indexed epoch, address indexed operator, uint256 amount);
    event TreasurySwept(address indexed treasury, uint256 amount);
    event PricesSet(Prices prices);
    event TreasuryFeeSet(uint16 bps);
    event TreasurySet(address treasury);
    event WithdrawDelaySet(uint64 delay);
    event EmissionScheduleSet(uint256 initialEpochBudget, uint256 decayWad);
    event ContractsSet(address registry, address programs, address stakePools);

    error UnknownProgram(uint256 programId);
    error NotProgramOwner(uint256 programId, address caller);
    error NotReady(uint64 readyAt);
    error NothingPending(uint256 programId);
    error UnknownWorker(address worker);
    error BadSignature();
    error UsageReplayed(uint64 nonce, uint64 next);
    error NoPool(address operator);
    error EpochNotOver(uint256 epoch);
    error AlreadyClaimed(uint256 epoch, address operator);
    error NoWork(uint256 epoch, address operator);
    error BadParams();

    constructor(
        address admin,
        IERC20 token_,
        IRegistry registry_,
        IPrograms programs_,
        IStakePools stakePools_,
        address treasury_,
        uint64 epochLength_
    ) Retirable(admin) EIP712("Pith Billing", "1") {
        if (address(token_) == address(0) || treasury_ == address(0)) revert ZeroAddress();
        if (epochLength_ == 0) revert BadParams();
        token = token_;
        genesis = uint64(block.timestamp);
        epochLength = epochLength_;
        treasury = treasury_;
        _setContracts(registry_, programs_, stakePools_);
    }

    // ---------------------------------------------------------------- governance

    function setPrices(Prices calldata p) external onlyRole(DEFAULT_ADMIN_ROLE) {
        prices = p;
        emit PricesSet(p);
    }

    function setTreasuryFeeBps(uint16 bps) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (bps > BPS) revert BadParams();
        treasuryFeeBps = bps;
        emit TreasuryFeeSet(bps);
    }

    function setTreasury(address t) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (t == address(0)) revert ZeroAddress();
        treasury = t;
        emit TreasurySet(t);
    }

    function setWithdrawDelay(uint64 delay) external onlyRole(DEFAULT_ADMIN_ROLE) {
        withdrawDelay = delay;
        emit WithdrawDelaySet(delay);
    }

    /// Budgets of epochs not yet fixed follow the new schedule. `decay` is a 1e18 fraction <= 1.
    function setEmissionSchedule(uint256 initialBudget, uint256 decay) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (decay > WAD) revert BadParams();
        initialEpochBudget = initialBudget;
        decayWad = decay;
        emit EmissionScheduleSet(initialBudget, decay);
    }

    /// Point at new Registry / Programs / StakePools (migration, docs/adr/0020-contract-upgrades.md).
    function setContracts(IRegistry r, IPrograms p, IStakePools s) external onlyRole(DEFAULT_ADMIN_ROLE) {
        token.forceApprove(address(stakePools), 0);
        _setContracts(r, p, s);
    }

    // ---------------------------------------------------------------- program owners

    function deposit(uint256 programId, uint256 amount) external whenActive {
        if (!programs.exists(programId)) revert UnknownProgram(programId);
        token.safeTransferFrom(msg.sender, address(this), amount);
        deposits[programId] += amount;
        emit Deposited(programId, msg.sender, amount);
    }

    /// Announce a withdrawal of `amount` from the program's deposit, possible after
    /// `withdrawDelay` (so that workers can settle usage already done). Replaces any earlier one.
    function requestWithdrawal(uint256 programId, uint192 amount) external {
        _onlyProgramOwner(programId);
        uint64 readyAt = uint64(block.timestamp) + withdrawDelay;
        pendingWithdrawals[programId] = PendingWithdrawal(amount, readyAt);
        emit WithdrawalRequested(programId, amount, readyAt);
    }

    /// Pay out the announced withdrawal (at most what the deposit still holds) to `to`.
    function withdraw(uint256 programId, address to) external returns (uint256 amount) {
        _onlyProgramOwner(programId);
        if (to == address(0)) revert ZeroAddress();
        PendingWithdrawal memory w = pendingWithdrawals[programId];
        if (w.amount == 0) revert NothingPending(programId);
        if (block.timestamp < w.readyAt) revert NotReady(w.readyAt);
        delete pendingWithdrawals[programId];
        amount = Math.min(w.amount, deposits[programId]);
        deposits[programId] -= amount;
        token.safeTransfer(to, amount);
        emit Withdrawn(programId, to, amount);
    }

    // ---------------------------------------------------------------- workers

    /// Settle a usage batch signed by `batch.worker`. Anyone may submit.
    function submitUsage(UsageBatch calldata batch, bytes calldata signature) external returns (uint256 charged) {
        address worker = batch.worker;
        if (!registry.isKnownWorker(worker)) revert UnknownWorker(worker);
        uint64 next = nextUsageNonce[worker];
        if (batch.nonce < next) revert UsageReplayed(batch.nonce, next);

        uint256 n = batch.entries.length;
        bytes32[] memory hashes = new bytes32[](n);
        Prices memory p = prices;
        for (uint256 i = 0; i < n; ++i) {
            UsageEntry calldata e = batch.entries[i];
            hashes[i] = _hashEntry(e);
            uint256 cost = uint256(e.requests) * p.perRequest + uint256(e.cpuMillis) * p.perCpuMilli
                + uint256(e.egressBytes) * p.perEgressByte + uint256(e.aiTokens) * p.perAiToken;
            if (cost == 0) continue;
            uint256 balance = deposits[e.programId];
            uint256 take = cost <= balance ? cost : balance;
            if (take != cost) emit Underfunded(e.programId, cost, take);
            if (take != 0) {
                deposits[e.programId] = balance - take;
                charged += take;
            }
        }
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(USAGE_BATCH_TYPEHASH, worker, batch.nonce, keccak256(abi.encodePacked(hashes))))
        );
        if (ECDSA.recover(digest, signature) != worker) revert BadSignature();
        nextUsageNonce[worker] = batch.nonce + 1;

        address operator = registry.operatorOf(worker);
        if (!stakePools.poolExists(operator)) revert NoPool(operator);
        uint256 fee = charged * treasuryFeeBps / BPS;
        if (charged != 0) {
            treasuryAccrued += fee;
            uint256 epoch = currentEpoch();
            workDone[epoch] += charged;
            workOf[epoch][operator] += charged;
            if (charged > fee) stakePools.distribute(operator, charged - fee);
        }
        emit UsageSettled(worker, operator, batch.nonce, charged, fee, n);
    }

    // ---------------------------------------------------------------- emissions and treasury

    /// Add PHA to the emission reserve (the deployer moves PHA's emission allocation here).
    function fundEmission(uint256 amount) external {
        token.safeTransferFrom(msg.sender, address(this), amount);
        emissionReserve += amount;
        emit EmissionFunded(msg.sender, amount);
    }

    /// Pay `operator`'s share of a finished epoch's emission budget into its pool. Anyone may call.
    function claimEmission(uint256 epoch, address operator) external returns (uint256 amount) {
        if (epoch >= currentEpoch()) revert EpochNotOver(epoch);
        if (emissionClaimed[epoch][operator]) revert AlreadyClaimed(epoch, operator);
        uint256 work = workOf[epoch][operator];
        if (work == 0) revert NoWork(epoch, operator);
        emissionClaimed[epoch][operator] = true;
        uint256 budget = _fixBudget(epoch);
        amount = Math.mulDiv(budget, work, workDone[epoch]);
        emissionCommitted -= amount;
        if (amount != 0) stakePools.distribute(operator, amount);
        emit EmissionClaimed(epoch, operator, amount);
    }

    /// Send the accrued treasury fees to the treasury. Anyone may call.
    function sweepTreasury() external returns (uint256 amount) {
        amount = treasuryAccrued;
        treasuryAccrued = 0;
        token.safeTransfer(treasury, amount);
        emit TreasurySwept(treasury, amount);
    }

    // ---------------------------------------------------------------- views

    function currentEpoch() public view returns (uint256) {
        return (block.timestamp - genesis) / epochLength;
    }

    /// The schedule's budget for `epoch` (before capping by the reserve).
    function scheduledBudget(uint256 epoch) public view returns (uint256) {
        return Math.mulDiv(initialEpochBudget, _powWad(decayWad, epoch), WAD);
    }

    function usageDigest(UsageBatch calldata batch) external view returns (bytes32) {
        uint256 n = batch.entries.length;
        bytes32[] memory hashes = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            hashes[i] = _hashEntry(batch.entries[i]);
        }
        return _hashTypedDataV4(
            keccak256(abi.encode(USAGE_BATCH_TYPEHASH, batch.worker, batch.nonce, keccak256(abi.encodePacked(hashes))))
        );
    }

    // ---------------------------------------------------------------- internal

    function _hashEntry(UsageEntry calldata e) private pure returns (bytes32) {
        return
            keccak256(abi.encode(USAGE_ENTRY_TYPEHASH, e.programId, e.requests, e.cpuMillis, e.egressBytes, e.aiTokens));
    }

    function _onlyProgramOwner(uint256 programId) private view {
        address owner = programs.ownerOf(programId);
        if (owner == address(0)) revert UnknownProgram(programId);
        if (owner != msg.sender) revert NotProgramOwner(programId, msg.sender);
    }

    function _setContracts(IRegistry r, IPrograms p, IStakePools s) private {
        if (address(r) == address(0) || address(p) == address(0) || address(s) == address(0)) revert ZeroAddress();
        registry = r;
        programs = p;
        stakePools = s;
        token.forceApprove(address(s), type(uint256).max);
        emit ContractsSet(address(r), address(p), address(s));
    }

    function _fixBudget(uint256 epoch) private returns (uint256 budget) {
        if (epochBudgetFixed[epoch]) return epochBudget[epoch];
        budget = Math.min(scheduledBudget(epoch), emissionReserve);
        epochBudgetFixed[epoch] = true;
        epochBudget[epoch] = budget;
        emissionReserve -= budget;
        emissionCommitted += budget;
    }

    /// base^exp for a 1e18 fixed-point base <= 1e18 (square and multiply, rounding down).
    function _powWad(uint256 base, uint256 exp) private pure returns (uint256 result) {
        result = WAD;
        while (exp != 0) {
            if (exp & 1 == 1) result = result * base / WAD;
            base = base * base / WAD;
            exp >>= 1;
        }
    }

    function _onRetire(address next) internal override {
        uint256 amount = emissionReserve;
        emissionReserve = 0;
        if (amount != 0) {
            token.forceApprove(next, amount);
            Billing(next).fundEmission(amount);
        }
    }
}
