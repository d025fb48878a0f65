// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Retirable} from "./Retirable.sol";
import {StakeVotes} from "./StakeVotes.sol";
import {IRegistry, IStakePools} from "./Interfaces.sol";

/// @title StakePools: one pool per worker operator, delegated PHA, rewards, unbonding, slashing.
/// @notice Delegators deposit PHA into an operator's pool for shares. Rewards (from Billing and
/// OracleAnchor, through `distribute`) pay the operator's commission and raise the share price.
/// The operator locks pool stake on its workers (at least `minStake` each); only a worker with
/// locked stake `canWork`. Withdrawals queue FIFO per pool: a request matures after
/// `unbondingPeriod` and is paid from stake not locked on workers; a matured request still
/// unfunded `gracePeriod` later lets anyone force-stop all of the pool's workers, which unlocks
/// their stake. Slashing (governance, or a KMS committee offline report) is capped per window
/// and sends the slashed PHA to the treasury; queued withdrawals are slashed too.
/// Staked PHA keeps its voting power: each staker's voting units are the PHA value of its shares
/// (docs/adr/0021-staked-voting-power.md); the Governor adds them to PHA votes.
contract StakePools is Retirable, StakeVotes, IStakePools {
    using SafeERC20 for IERC20;

    bytes32 public constant OFFLINE_REPORT_TYPEHASH = keccak256("OfflineReport(address worker,uint64 offlineSince)");
    uint256 private constant BPS = 10_000;

    /// A pool as the `pool` view returns it (the ABI of earlier versions).
    struct Pool {
        bool exists;
        uint16 commissionBps;
        uint32 generation; // bumped by a forced stop: workers started earlier stop counting
        uint64 slashWindowStart;
        uint256 totalShares; // active + queued shares
        uint256 totalStake; // PHA backing all shares
        uint256 lockedStake; // PHA committed to running workers
        uint256 queuedShares; // shares in the withdrawal queue
        uint256 commission; // PHA owed to the operator, outside the share price
        uint256 slashedInWindow;
        uint256 queueHead;
    }

    /// A pool in storage: shares and stake share one slot, which every deposit, withdrawal and
    /// reward updates (uint128 is 3.4e38, far above PHA's 1e27 wei supply; share counts beyond
    /// it revert through SafeCast).
    struct PoolState {
        bool exists;
        uint16 commissionBps;
        uint32 generation;
        uint64 slashWindowStart;
        uint128 totalShares;
        uint128 totalStake;
        uint256 lockedStake;
        uint256 queuedShares;
        uint256 commission;
        uint256 slashedInWindow;
        uint256 queueHead;
    }

    struct Withdrawal {
        address staker;
        uint64 requestedAt;
        uint256 shares;
    }

    /// A staker's shares in a pool (active and queued: queued ones leave only when paid, so
    /// a deposit never reads the queue) and the voting units they gave at the last sync.
    struct Position {
        uint128 shares;
        uint128 units;
    }

    struct WorkerStake {
        address operator;
        uint32 generation;
        uint256 amount;
    }

    struct Params {
        uint256 minStake; // per worker
        uint256 minDeposit;
        uint64 unbondingPeriod;
        uint64 gracePeriod;
        uint64 slashWindow;
        uint16 slashCapBps; // max share of a pool's stake slashed per window
        uint16 offlineSlashBps; // share of a worker's locked stake slashed per offline report
        uint16 maxCommissionBps;
    }

    IERC20 public immutable token;
    IRegistry public registry;
    address public treasury;
    Params public params;

    mapping(address => PoolState) private _pools;
    mapping(address => mapping(address => Position)) private _positions; // operator => staker
    mapping(address => mapping(address => uint256)) private _queued; // operator => staker => queued shares
    mapping(address => Withdrawal[]) private _queue;
    mapping(address => WorkerStake) private _workerStakes;
    mapping(bytes32 => bool) public offlineReportUsed;

    event PoolCreated(address indexed operator, uint16 commissionBps);
    event CommissionSet(address indexed operator, uint16 commissionBps);
    event Deposited(address indexed operator, address indexed staker, uint256 amount, uint256 shares);
    event WithdrawalRequested(address indexed operator, address indexed staker, uint256 index, uint256 shares);
    event Withdrawn(address indexed operator, address indexed staker, uint256 index, uint256 shares, uint256 amount);
    event Distributed(address indexed operator, address indexed from, uint256 amount, uint256 commission);
    event CommissionClaimed(address indexed operator, uint256 amount);
    event WorkerStarted(address indexed operator, address indexed worker, uint256 amount);
    event WorkerStopped(address indexed operator, address indexed worker, uint256 amount);
    event PoolForceStopped(address indexed operator, uint32 generation, uint256 overdueIndex);
    event Slashed(address indexed operator, uint256 amount, bytes32 reason, bool byKms);
    event ParamsSet(Params params);
    event TreasurySet(address treasury);
    event RegistrySet(address registry);

    error PoolExists(address operator);
    error NoPool(address operator);
    error CommissionTooHigh(uint16 bps);
    error BelowMinimum(uint256 amount, uint256 minimum);
    error ZeroShares();
    error PoolInsolvent(address operator);
    error InsufficientShares(uint256 have, uint256 want);
    error NotWorkerOperator(address worker, address operator);
    error WorkerRunning(address worker);
    error WorkerNotRunning(address worker);
    error InsufficientFreeStake(uint256 free, uint256 want);
    error NothingOverdue(address operator);
    error SlashAboveCap(uint256 amount, uint256 cap);
    error ReportReplayed(bytes32 digest);
    error BadParams();

    constructor(address admin, IERC20 token_, IRegistry registry_, address treasury_, Params memory params_)
        Retirable(admin)
        EIP712("Pith StakePools", "1")
    {
        if (address(token_) == address(0) || address(registry_) == address(0) || treasury_ == address(0)) {
            revert ZeroAddress();
        }
        token = token_;
        registry = registry_;
        treasury = treasury_;
        _setParams(params_);
    }

    // ---------------------------------------------------------------- governance

    function setParams(Params calldata p) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setParams(p);
    }

    function setTreasury(address t) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (t == address(0)) revert ZeroAddress();
        treasury = t;
        emit TreasurySet(t);
    }

    /// Point at a new Registry (migration, docs/adr/0020-contract-upgrades.md).
    function setRegistry(IRegistry r) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (address(r) == address(0)) revert ZeroAddress();
        registry = r;
        emit RegistrySet(address(r));
    }

    /// Governance slash of `amount` PHA from `operator`'s pool, within the cap.
    function slash(address operator, uint256 amount, bytes32 reason) external onlyRole(DEFAULT_ADMIN_ROLE) {
        PoolState storage p = _pool(operator);
        uint256 cap = _slashRoom(p);
        if (amount > cap) revert SlashAboveCap(amount, cap);
        _slash(operator, p, amount, reason, false);
    }

    // ---------------------------------------------------------------- operators

    function createPool(uint16 commissionBps) external whenActive {
        PoolState storage p = _pools[msg.sender];
        if (p.exists) revert PoolExists(msg.sender);
        if (commissionBps > params.maxCommissionBps) revert CommissionTooHigh(commissionBps);
        p.exists = true;
        p.commissionBps = commissionBps;
        emit PoolCreated(msg.sender, commissionBps);
    }

    function setCommission(uint16 commissionBps) external {
        PoolState storage p = _pool(msg.sender);
        if (commissionBps > params.maxCommissionBps) revert CommissionTooHigh(commissionBps);
        p.commissionBps = commissionBps;
        emit CommissionSet(msg.sender, commissionBps);
    }

    /// Lock `amount` of the pool's free stake on `worker` (registered with this operator).
    function startWorker(address worker, uint256 amount) external whenActive {
        PoolState storage p = _pool(msg.sender);
        if (registry.operatorOf(worker) != msg.sender) revert NotWorkerOperator(worker, msg.sender);
        if (amount < params.minStake) revert BelowMinimum(amount, params.minStake);
        WorkerStake storage ws = _workerStakes[worker];
        if (ws.operator == msg.sender && ws.generation == p.generation && ws.amount != 0) revert WorkerRunning(worker);
        uint256 free = freeStake(msg.sender);
        if (amount > free) revert InsufficientFreeStake(free, amount);
        p.lockedStake += amount;
        _workerStakes[worker] = WorkerStake(msg.sender, p.generation, amount);
        emit WorkerStarted(msg.sender, worker, amount);
    }

    function stopWorker(address worker) external {
        PoolState storage p = _pool(msg.sender);
        WorkerStake memory ws = _workerStakes[worker];
        if (ws.operator != msg.sender || ws.generation != p.generation || ws.amount == 0) {
            revert WorkerNotRunning(worker);
        }
        delete _workerStakes[worker];
        p.lockedStake -= Math.min(ws.amount, p.lockedStake);
        emit WorkerStopped(msg.sender, worker, ws.amount);
    }

    function claimCommission() external {
        PoolState storage p = _pool(msg.sender);
        uint256 amount = p.commission;
        p.commission = 0;
        token.safeTransfer(msg.sender, amount);
        emit CommissionClaimed(msg.sender, amount);
    }

    // ---------------------------------------------------------------- stakers

    /// Deposit `amount` PHA into `operator`'s pool for shares at the current price (rounded in
    /// the pool's favour). Stake votes count for the staker itself unless it delegates them.
    function deposit(address operator, uint256 amount) external whenActive returns (uint256 minted) {
        PoolState storage p = _pool(operator);
        if (amount < params.minDeposit) revert BelowMinimum(amount, params.minDeposit);
        uint256 supply = p.totalShares;
        if (supply == 0) {
            minted = amount;
        } else {
            if (p.totalStake == 0) revert PoolInsolvent(operator);
            minted = Math.mulDiv(amount, supply, p.totalStake);
        }
        if (minted == 0) revert ZeroShares();
        token.safeTransferFrom(msg.sender, address(this), amount);
        p.totalShares = SafeCast.toUint128(supply + minted);
        p.totalStake = SafeCast.toUint128(p.totalStake + amount);
        Position storage pos = _positions[operator][msg.sender];
        pos.shares += SafeCast.toUint128(minted);
        _syncVotes(msg.sender, p, pos);
        emit Deposited(operator, msg.sender, amount, minted);
    }

    /// Queue `shares` for withdrawal. They stay in the pool (earning and slashable) until paid.
    function requestWithdraw(address operator, uint256 shares) external returns (uint256 index) {
        PoolState storage p = _pool(operator);
        Position storage pos = _positions[operator][msg.sender];
        uint256 have = pos.shares - _queued[operator][msg.sender];
        if (shares == 0) revert ZeroShares();
        if (shares > have) revert InsufficientShares(have, shares);
        _queued[operator][msg.sender] += shares; // pos.shares keeps them until paid
        p.queuedShares += shares;
        index = _queue[operator].length;
        _queue[operator].push(Withdrawal(msg.sender, uint64(block.timestamp), shares));
        emit WithdrawalRequested(operator, msg.sender, index, shares);
    }

    /// Pay matured, funded requests from the head of `operator`'s queue, at most `max` of them.
    /// Stops at the first request not yet matured or not fundable from free stake. Anyone may call.
    function processWithdrawals(address operator, uint256 max) external returns (uint256 paid) {
        PoolState storage p = _pool(operator);
        Withdrawal[] storage q = _queue[operator];
        uint256 head = p.queueHead;
        uint64 unbonding = params.unbondingPeriod;
        while (paid < max && head < q.length) {
            Withdrawal memory w = q[head];
            if (block.timestamp < uint256(w.requestedAt) + unbonding) break;
            uint256 amount = Math.mulDiv(w.shares, p.totalStake, p.totalShares);
            uint256 unlocked = p.totalStake - Math.min(p.lockedStake, p.totalStake);
            if (amount > unlocked) break;
            p.totalShares -= SafeCast.toUint128(w.shares);
            p.totalStake -= SafeCast.toUint128(amount);
            p.queuedShares -= w.shares;
            _queued[operator][w.staker] -= w.shares;
            Position storage pos = _positions[operator][w.staker];
            pos.shares -= uint128(w.shares); // queued shares are part of pos.shares
            delete q[head];
            ++head;
            ++paid;
            _syncVotes(w.staker, p, pos);
            token.safeTransfer(w.staker, amount);
            emit Withdrawn(operator, w.staker, head - 1, w.shares, amount);
        }
        p.queueHead = head;
    }

    /// Force-stop every worker of `operator`'s pool: allowed to anyone when the request at the
    /// head of the queue matured more than `gracePeriod` ago and still cannot be paid.
    function forceStop(address operator) external {
        PoolState storage p = _pool(operator);
        Withdrawal[] storage q = _queue[operator];
        uint256 head = p.queueHead;
        if (head >= q.length) revert NothingOverdue(operator);
        Withdrawal memory w = q[head];
        if (block.timestamp < uint256(w.requestedAt) + params.unbondingPeriod + params.gracePeriod) {
            revert NothingOverdue(operator);
        }
        uint256 amount = Math.mulDiv(w.shares, p.totalStake, p.totalShares);
        if (amount <= p.totalStake - Math.min(p.lockedStake, p.totalStake)) revert NothingOverdue(operator);
        p.generation += 1;
        p.lockedStake = 0;
        emit PoolForceStopped(operator, p.generation, head);
    }

    /// Bring `staker`'s voting units in `operator`'s pool to the current value of its shares
    /// (after rewards or a slash). Anyone may call.
    function syncVotes(address staker, address operator) external {
        _syncVotes(staker, _pool(operator), _positions[operator][staker]);
    }

    // ---------------------------------------------------------------- rewards and slashing

    /// Pay `amount` PHA (pulled from the caller) to `operator`'s pool: the commission to the
    /// operator, the rest raises the share price. With no shares, all of it is commission.
    function distribute(address operator, uint256 amount) external {
        PoolState storage p = _pool(operator);
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 commission = p.totalShares == 0 ? amount : amount * p.commissionBps / BPS;
        p.commission += commission;
        p.totalStake = SafeCast.toUint128(p.totalStake + amount - commission);
        emit Distributed(operator, msg.sender, amount, commission);
    }

    /// Slash a running worker's pool on a KMS committee report that it was offline since
    /// `offlineSince`: `offlineSlashBps` of its locked stake (within the cap), and the worker stops.
    function slashOffline(address worker, uint64 offlineSince, bytes[] calldata signatures) external {
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(OFFLINE_REPORT_TYPEHASH, worker, offlineSince)));
        if (offlineReportUsed[digest]) revert ReportReplayed(digest);
        registry.checkKmsSignatures(digest, signatures);
        offlineReportUsed[digest] = true;
        WorkerStake memory ws = _workerStakes[worker];
        PoolState storage p = _pools[ws.operator];
        if (ws.amount == 0 || ws.generation != p.generation) revert WorkerNotRunning(worker);
        delete _workerStakes[worker];
        p.lockedStake -= Math.min(ws.amount, p.lockedStake);
        emit WorkerStopped(ws.operator, worker, ws.amount);
        uint256 amount = Math.min(ws.amount * params.offlineSlashBps / BPS, _slashRoom(p));
        _slash(ws.operator, p, amount, keccak256(abi.encode(worker, offlineSince)), true);
    }

    // ---------------------------------------------------------------- views

    /// Registered, active in the Registry, and running with at least `minStake` locked.
    function canWork(address worker) external view returns (bool ok) {
        (ok,,) = workStatus(worker);
    }

    /// `canWork`, with the worker's operator and platform (one call for OracleAnchor).
    function workStatus(address worker) public view returns (bool ok, address operator, uint8 platform) {
        WorkerStake storage ws = _workerStakes[worker];
        address op = ws.operator;
        if (op == address(0) || ws.amount < params.minStake || ws.generation != _pools[op].generation) {
            return (false, op, 0);
        }
        bool active;
        (active, operator, platform) = registry.workerStatus(worker);
        ok = active && operator == op;
    }

    function poolExists(address operator) external view returns (bool) {
        return _pools[operator].exists;
    }

    function pool(address operator) external view returns (Pool memory) {
        PoolState storage p = _pools[operator];
        return Pool(
            p.exists,
            p.commissionBps,
            p.generation,
            p.slashWindowStart,
            p.totalShares,
            p.totalStake,
            p.lockedStake,
            p.queuedShares,
            p.commission,
            p.slashedInWindow,
            p.queueHead
        );
    }

    function sharesOf(address operator, address staker) external view returns (uint256) {
        return _positions[operator][staker].shares - _queued[operator][staker];
    }

    function queuedSharesOf(address operator, address staker) external view returns (uint256) {
        return _queued[operator][staker];
    }

    function queueLength(address operator) external view returns (uint256) {
        return _queue[operator].length;
    }

    function withdrawal(address operator, uint256 index) external view returns (Withdrawal memory) {
        return _queue[operator][index];
    }

    function workerStake(address worker) external view returns (WorkerStake memory) {
        return _workerStakes[worker];
    }

    /// PHA value of `shares` of `operator`'s pool at the current price (rounded down).
    function valueOf(address operator, uint256 shares) public view returns (uint256) {
        PoolState storage p = _pools[operator];
        return p.totalShares == 0 ? 0 : Math.mulDiv(shares, p.totalStake, p.totalShares);
    }

    /// Stake neither locked on workers nor owed to queued withdrawals.
    function freeStake(address operator) public view returns (uint256) {
        PoolState storage p = _pools[operator];
        uint256 committed = p.lockedStake + valueOf(operator, p.queuedShares);
        return p.totalStake > committed ? p.totalStake - committed : 0;
    }

    /// Current voting units of `staker` (sum over pools, as of each pool's last sync).
    function votingUnits(address staker) external view returns (uint256) {
        return _unitsOf(staker);
    }

    function votingUnitsIn(address staker, address operator) external view returns (uint256) {
        return _positions[operator][staker].units;
    }

    function offlineReportDigest(address worker, uint64 offlineSince) external view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(OFFLINE_REPORT_TYPEHASH, worker, offlineSince)));
    }

    // ---------------------------------------------------------------- internal

    function _pool(address operator) private view returns (PoolState storage p) {
        p = _pools[operator];
        if (!p.exists) revert NoPool(operator);
    }

    function _setParams(Params memory p) private {
        if (
            p.slashCapBps > BPS || p.offlineSlashBps > BPS || p.maxCommissionBps > BPS || p.minDeposit == 0
                || p.slashWindow == 0
        ) revert BadParams();
        params = p;
        emit ParamsSet(p);
    }

    /// How much more may be slashed from `p` in the current window.
    function _slashRoom(PoolState storage p) private view returns (uint256) {
        uint256 already = block.timestamp >= uint256(p.slashWindowStart) + params.slashWindow ? 0 : p.slashedInWindow;
        uint256 cap = (p.totalStake + already) * params.slashCapBps / BPS;
        return cap > already ? cap - already : 0;
    }

    function _slash(address operator, PoolState storage p, uint256 amount, bytes32 reason, bool byKms) private {
        if (block.timestamp >= uint256(p.slashWindowStart) + params.slashWindow) {
            p.slashWindowStart = uint64(block.timestamp);
            p.slashedInWindow = 0;
        }
        p.slashedInWindow += amount;
        p.totalStake -= SafeCast.toUint128(amount);
        if (p.lockedStake > p.totalStake) p.lockedStake = p.totalStake;
        token.safeTransfer(treasury, amount);
        emit Slashed(operator, amount, reason, byKms);
    }

    function _syncVotes(address staker, PoolState storage p, Position storage pos) private {
        uint256 shares = pos.shares; // active and queued
        uint256 value = p.totalShares == 0 ? 0 : Math.mulDiv(shares, p.totalStake, p.totalShares);
        uint256 old = pos.units;
        if (value == old) return;
        pos.units = SafeCast.toUint128(value);
        if (value > old) _moveUnits(staker, value - old, 0);
        else _moveUnits(staker, 0, old - value);
    }
}
