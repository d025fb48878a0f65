// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "./Base.sol";
import {PHA} from "../src/PHA.sol";
import {Registry} from "../src/Registry.sol";
import {Programs} from "../src/Programs.sol";
import {StakePools} from "../src/StakePools.sol";
import {Billing} from "../src/Billing.sol";
import {OracleAnchor} from "../src/OracleAnchor.sol";
import {IRegistry, IPrograms, IStakePools} from "../src/Interfaces.sol";

/// Deploys the Pith contracts with this test contract as admin (the timelock's place), the
/// simulated platform enabled and one KMS member, like the local profile of contracts/README.md.
abstract contract Fixture is Test {
    uint8 internal constant SIM = 255;
    uint8 internal constant TDX = 2;
    uint8 internal constant ROLE_KMS = 0;
    uint8 internal constant ROLE_WORKER = 1;
    bytes32 internal constant WORKER_MEAS = keccak256("pith-worker local build");
    bytes32 internal constant KMS_MEAS = keccak256("pith-kms local build");
    uint256 internal constant T0 = 1_800_000_000;

    PHA internal pha;
    Registry internal registry;
    Programs internal programs;
    StakePools internal pools;
    Billing internal billing;
    OracleAnchor internal anchor;

    address internal treasury = address(0x7EA5);
    address internal operator = address(0x0BE1);
    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);
    address internal stranger = address(0x5757);

    uint256 internal kms1Key = 0xC0FFEE01;
    uint256 internal kms2Key = 0xC0FFEE02;
    uint256 internal kms3Key = 0xC0FFEE03;
    uint256 internal workerKey = 0xD00D01;
    uint256 internal worker2Key = 0xD00D02;
    address internal worker;
    address internal worker2;

    bytes internal evidence = hex"0102030405060708090a";

    function setUp() public virtual {
        vm.warp(T0);
        vm.roll(100);
        worker = vm.addr(workerKey);
        worker2 = vm.addr(worker2Key);
        pha = new PHA(treasury, 600_000_000e18, address(this), 400_000_000e18);
        registry = new Registry(address(this), 1 days);
        programs = new Programs();
        pools = new StakePools(address(this), pha, registry, treasury, defaultParams());
        billing = new Billing(address(this), pha, registry, programs, pools, treasury, 60);
        anchor = new OracleAnchor(address(this), pha, registry, programs, pools, 60, 500_000, 0);

        registry.setPlatform(SIM, true, 0);
        registry.setMeasurement(SIM, ROLE_WORKER, WORKER_MEAS, true);
        registry.setMeasurement(SIM, ROLE_KMS, KMS_MEAS, true);
        address[] memory members = new address[](1);
        members[0] = vm.addr(kms1Key);
        registry.setKmsCommittee(members, 1);

        billing.setPrices(Billing.Prices(1e15, 1e12, 1e9, 1e13));
        billing.setTreasuryFeeBps(500);
        billing.setWithdrawDelay(60);
        billing.setEmissionSchedule(100_000e18, 0.9e18);
        pha.approve(address(billing), 10_000_000e18);
        billing.fundEmission(10_000_000e18);
    }

    function defaultParams() internal pure returns (StakePools.Params memory) {
        return StakePools.Params({
            minStake: 1_000e18,
            minDeposit: 1e18,
            unbondingPeriod: 60,
            gracePeriod: 60,
            slashWindow: 1 days,
            slashCapBps: 1000,
            offlineSlashBps: 100,
            maxCommissionBps: 5000
        });
    }

    // ---- helpers

    function give(address to, uint256 amount) internal {
        pha.transfer(to, amount);
    }

    function reg(address w, address op, uint64 expiry) internal view returns (Registry.WorkerRegistration memory) {
        return Registry.WorkerRegistration({
            worker: w,
            operator: op,
            platform: SIM,
            measurementHash: WORKER_MEAS,
            tcbStatus: 0,
            evidenceHash: keccak256(evidence),
            expiry: expiry
        });
    }

    /// Signatures of `digest` by `keys`, ordered by ascending signer address.
    function kmsSign(uint256[] memory keys, bytes32 digest) internal pure returns (bytes[] memory sigs) {
        uint256 n = keys.length;
        for (uint256 i = 0; i < n; ++i) {
            for (uint256 j = i + 1; j < n; ++j) {
                if (vm.addr(keys[j]) < vm.addr(keys[i])) (keys[i], keys[j]) = (keys[j], keys[i]);
            }
        }
        sigs = new bytes[](n);
        for (uint256 i = 0; i < n; ++i) {
            sigs[i] = signDigest(keys[i], digest);
        }
    }

    function one(uint256 key) internal pure returns (uint256[] memory keys) {
        keys = new uint256[](1);
        keys[0] = key;
    }

    function registerWorker(uint256 key, address op) internal {
        Registry.WorkerRegistration memory r = reg(vm.addr(key), op, uint64(block.timestamp + 1 hours));
        registry.registerWorker(r, evidence, kmsSign(one(kms1Key), registry.registrationDigest(r)));
    }

    /// Operator with a pool, a registered worker, `stake` deposited by the operator and locked.
    function runningWorker(uint256 key, address op, uint256 stake) internal {
        registerWorker(key, op);
        if (!pools.poolExists(op)) {
            vm.prank(op);
            pools.createPool(1000);
        }
        give(op, stake);
        vm.startPrank(op);
        pha.approve(address(pools), stake);
        pools.deposit(op, stake);
        pools.startWorker(vm.addr(key), stake);
        vm.stopPrank();
    }

    function noConfig() internal pure returns (Programs.Config memory c) {}

    function newProgram(address owner) internal returns (uint256 id) {
        vm.prank(owner);
        id = programs.register(keccak256(abi.encode("code", owner)), noConfig());
    }
}
