// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Fixture} from "./Fixture.sol";
import {Registry} from "../src/Registry.sol";
import {Retirable} from "../src/Retirable.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

contract RegistryTest is Fixture {
    bytes32 internal constant ADMIN = 0x00;

    function unauthorized(address who) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, who, ADMIN);
    }

    function sign1(Registry.WorkerRegistration memory r) internal view returns (bytes[] memory) {
        return kmsSign(one(kms1Key), registry.registrationDigest(r));
    }

    function committee3(uint8 threshold) internal {
        address[] memory m = new address[](3);
        m[0] = vm.addr(kms1Key);
        m[1] = vm.addr(kms2Key);
        m[2] = vm.addr(kms3Key);
        registry.setKmsCommittee(m, threshold);
    }

    // ---------------------------------------------------------------- governance setters

    function testSetPlatform() public {
        registry.setPlatform(TDX, true, 1);
        Registry.PlatformConfig memory p = registry.platformConfig(TDX);
        assertTrue(p.enabled);
        assertEq(uint256(p.maxTcbStatus), 1);
    }

    function testSetPlatformRevertsForNonAdmin() public {
        vm.prank(stranger);
        vm.expectRevert(unauthorized(stranger));
        registry.setPlatform(TDX, true, 0);
    }

    function testSetPlatformRevertsOnRevokedTcb() public {
        vm.expectRevert(abi.encodeWithSelector(Registry.BadTcbStatus.selector, uint8(6)));
        registry.setPlatform(TDX, true, 6);
    }

    function testSetMeasurement() public {
        bytes32 m = keccak256("other");
        assertFalse(registry.isAllowedMeasurement(SIM, ROLE_WORKER, m));
        registry.setMeasurement(SIM, ROLE_WORKER, m, true);
        assertTrue(registry.isAllowedMeasurement(SIM, ROLE_WORKER, m));
        assertFalse(registry.isAllowedMeasurement(SIM, ROLE_KMS, m));
        registry.setMeasurement(SIM, ROLE_WORKER, m, false);
        assertFalse(registry.isAllowedMeasurement(SIM, ROLE_WORKER, m));
    }

    function testSetMeasurementRevertsForNonAdmin() public {
        vm.prank(stranger);
        vm.expectRevert(unauthorized(stranger));
        registry.setMeasurement(SIM, ROLE_WORKER, bytes32(0), true);
    }

    function testSetMeasurementRevertsOnBadRole() public {
        vm.expectRevert(abi.encodeWithSelector(Registry.BadRole.selector, uint8(2)));
        registry.setMeasurement(SIM, 2, bytes32(0), true);
    }

    function testSetKmsCommittee() public {
        committee3(2);
        assertEq(uint256(registry.kmsThreshold()), 2);
        assertEq(registry.kmsMembers().length, 3);
        assertEq(registry.kmsGeneration(), 2);
        assertTrue(registry.isKmsMember(vm.addr(kms3Key)));
        assertFalse(registry.isKmsMember(stranger));
    }

    function testSetKmsCommitteeDropsOldMembers() public {
        address[] memory m = new address[](1);
        m[0] = vm.addr(kms2Key);
        registry.setKmsCommittee(m, 1);
        assertFalse(registry.isKmsMember(vm.addr(kms1Key)));
        Registry.WorkerRegistration memory r = reg(worker, operator, uint64(block.timestamp + 100));
        bytes[] memory sigs = sign1(r); // kms1, no longer a member
        vm.expectRevert(abi.encodeWithSelector(Registry.NotKmsMember.selector, vm.addr(kms1Key)));
        registry.registerWorker(r, evidence, sigs);
    }

    function testSetKmsCommitteeRevertsForNonAdmin() public {
        address[] memory m = new address[](1);
        m[0] = stranger;
        vm.prank(stranger);
        vm.expectRevert(unauthorized(stranger));
        registry.setKmsCommittee(m, 1);
    }

    function testSetKmsCommitteeRevertsOnBadThreshold() public {
        address[] memory m = new address[](1);
        m[0] = stranger;
        vm.expectRevert(Registry.BadThreshold.selector);
        registry.setKmsCommittee(m, 0);
        vm.expectRevert(Registry.BadThreshold.selector);
        registry.setKmsCommittee(m, 2);
    }

    function testSetKmsCommitteeRevertsOnDuplicateOrZero() public {
        address[] memory m = new address[](2);
        m[0] = stranger;
        m[1] = stranger;
        vm.expectRevert(abi.encodeWithSelector(Registry.DuplicateOrUnsortedSigner.selector, stranger));
        registry.setKmsCommittee(m, 1);
        m[1] = address(0);
        vm.expectRevert(Retirable.ZeroAddress.selector);
        registry.setKmsCommittee(m, 1);
    }

    function testSetMaxRegistrationTtl() public {
        registry.setMaxRegistrationTtl(7 days);
        assertEq(uint256(registry.maxRegistrationTtl()), 7 days);
        vm.prank(stranger);
        vm.expectRevert(unauthorized(stranger));
        registry.setMaxRegistrationTtl(1);
    }

    // ---------------------------------------------------------------- registration

    function testRegisterWorker() public {
        Registry.WorkerRegistration memory r = reg(worker, operator, uint64(block.timestamp + 1 hours));
        vm.expectEmit(true, true, false, true);
        emit Registry.WorkerRegistered(
            worker, operator, SIM, WORKER_MEAS, 0, keccak256(evidence), uint64(block.timestamp + 1 hours), false
        );
        vm.prank(stranger); // anyone may relay
        registry.registerWorker(r, evidence, sign1(r));
        assertTrue(registry.isActiveWorker(worker));
        assertTrue(registry.isKnownWorker(worker));
        assertEq(registry.operatorOf(worker), operator);
        assertEq(uint256(registry.platformOf(worker)), SIM);
        Registry.Worker memory w = registry.workerInfo(worker);
        assertEq(w.evidenceHash, keccak256(evidence));
        assertEq(w.measurementHash, WORKER_MEAS);
        assertEq(uint256(w.expiry), block.timestamp + 1 hours);
    }

    function testRegisterWithThresholdOfThree() public {
        committee3(2);
        Registry.WorkerRegistration memory r = reg(worker, operator, uint64(block.timestamp + 1 hours));
        uint256[] memory keys = new uint256[](2);
        keys[0] = kms3Key;
        keys[1] = kms1Key;
        bytes[] memory sigs = kmsSign(keys, registry.registrationDigest(r));
        registry.registerWorker(r, evidence, sigs);
        assertTrue(registry.isActiveWorker(worker));
    }

    function testRegisterRevertsBelowThreshold() public {
        committee3(2);
        Registry.WorkerRegistration memory r = reg(worker, operator, uint64(block.timestamp + 1 hours));
        bytes[] memory sigs = sign1(r);
        vm.expectRevert(abi.encodeWithSelector(Registry.NotEnoughSignatures.selector, 1, 2));
        registry.registerWorker(r, evidence, sigs);
    }

    function testRegisterRevertsOnDuplicateSigner() public {
        committee3(2);
        Registry.WorkerRegistration memory r = reg(worker, operator, uint64(block.timestamp + 1 hours));
        bytes[] memory one_ = sign1(r);
        bytes[] memory sigs = new bytes[](2);
        sigs[0] = one_[0];
        sigs[1] = one_[0];
        vm.expectRevert(abi.encodeWithSelector(Registry.DuplicateOrUnsortedSigner.selector, vm.addr(kms1Key)));
        registry.registerWorker(r, evidence, sigs);
    }

    function testRegisterRevertsOnUnsortedSigners() public {
        committee3(2);
        Registry.WorkerRegistration memory r = reg(worker, operator, uint64(block.timestamp + 1 hours));
        uint256[] memory keys = new uint256[](2);
        keys[0] = kms1Key;
        keys[1] = kms2Key;
        bytes[] memory sorted = kmsSign(keys, registry.registrationDigest(r));
        bytes[] memory sigs = new bytes[](2);
        sigs[0] = sorted[1];
        sigs[1] = sorted[0];
        address second = ECDSA.recover(registry.registrationDigest(r), sorted[0]);
        vm.expectRevert(abi.encodeWithSelector(Registry.DuplicateOrUnsortedSigner.selector, second));
        registry.registerWorker(r, evidence, sigs);
    }

    function testRegisterRevertsOnNonMemberSignature() public {
        Registry.WorkerRegistration memory r = reg(worker, operator, uint64(block.timestamp + 1 hours));
        bytes[] memory sigs = kmsSign(one(kms2Key), registry.registrationDigest(r));
        vm.expectRevert(abi.encodeWithSelector(Registry.NotKmsMember.selector, vm.addr(kms2Key)));
        registry.registerWorker(r, evidence, sigs);
    }

    function testRegisterRevertsWhenAnyFieldDiffersFromSigned() public {
        Registry.WorkerRegistration memory r = reg(worker, operator, uint64(block.timestamp + 1 hours));
        bytes[] memory sigs = sign1(r);
        r.operator = stranger; // front-runner tries to take the worker
        address recovered = ECDSA.recover(registry.registrationDigest(r), sigs[0]);
        vm.expectRevert(abi.encodeWithSelector(Registry.NotKmsMember.selector, recovered));
        registry.registerWorker(r, evidence, sigs);
    }

    function testRegisterRevertsOnMalformedSignature() public {
        Registry.WorkerRegistration memory r = reg(worker, operator, uint64(block.timestamp + 1 hours));
        bytes[] memory sigs = new bytes[](1);
        sigs[0] = hex"1234";
        vm.expectRevert(abi.encodeWithSelector(ECDSA.ECDSAInvalidSignatureLength.selector, 2));
        registry.registerWorker(r, evidence, sigs);
    }

    function testRegisterRevertsWhenExpired() public {
        Registry.WorkerRegistration memory r = reg(worker, operator, uint64(block.timestamp));
        bytes[] memory sigs = sign1(r);
        vm.expectRevert(abi.encodeWithSelector(Registry.RegistrationExpired.selector, uint64(block.timestamp)));
        registry.registerWorker(r, evidence, sigs);
    }

    function testRegisterRevertsWhenSignedRegistrationExpiredBeforeSubmission() public {
        Registry.WorkerRegistration memory r = reg(worker, operator, uint64(block.timestamp + 10));
        bytes[] memory sigs = sign1(r);
        vm.warp(block.timestamp + 10);
        vm.expectRevert(abi.encodeWithSelector(Registry.RegistrationExpired.selector, r.expiry));
        registry.registerWorker(r, evidence, sigs);
    }

    function testRegisterRevertsWhenExpiryTooFar() public {
        Registry.WorkerRegistration memory r = reg(worker, operator, uint64(block.timestamp + 1 days + 1));
        bytes[] memory sigs = sign1(r);
        vm.expectRevert(abi.encodeWithSelector(Registry.ExpiryTooFar.selector, r.expiry));
        registry.registerWorker(r, evidence, sigs);
    }

    function testRegisterRevertsOnZeroAddresses() public {
        Registry.WorkerRegistration memory r = reg(address(0), operator, uint64(block.timestamp + 1 hours));
        bytes[] memory sigs = sign1(r);
        vm.expectRevert(Retirable.ZeroAddress.selector);
        registry.registerWorker(r, evidence, sigs);
        r = reg(worker, address(0), uint64(block.timestamp + 1 hours));
        sigs = sign1(r);
        vm.expectRevert(Retirable.ZeroAddress.selector);
        registry.registerWorker(r, evidence, sigs);
    }

    function testRegisterRevertsOnDisabledPlatform() public {
        Registry.WorkerRegistration memory r = reg(worker, operator, uint64(block.timestamp + 1 hours));
        r.platform = TDX;
        bytes[] memory sigs = sign1(r);
        vm.expectRevert(abi.encodeWithSelector(Registry.PlatformNotEnabled.selector, TDX));
        registry.registerWorker(r, evidence, sigs);
    }

    function testRegisterRevertsOnTcbNotAccepted() public {
        Registry.WorkerRegistration memory r = reg(worker, operator, uint64(block.timestamp + 1 hours));
        r.tcbStatus = 4; // OutOfDate
        bytes[] memory sigs = sign1(r);
        vm.expectRevert(abi.encodeWithSelector(Registry.TcbNotAccepted.selector, uint8(4)));
        registry.registerWorker(r, evidence, sigs);
    }

    function testRegisterRevertsOnMeasurementNotAllowed() public {
        Registry.WorkerRegistration memory r = reg(worker, operator, uint64(block.timestamp + 1 hours));
        r.measurementHash = KMS_MEAS; // allowed for the KMS role only
        bytes[] memory sigs = sign1(r);
        vm.expectRevert(
            abi.encodeWithSelector(Registry.MeasurementNotAllowed.selector, SIM, ROLE_WORKER, KMS_MEAS)
        );
        registry.registerWorker(r, evidence, sigs);
    }

    function testRegisterRevertsOnEvidenceMismatch() public {
        Registry.WorkerRegistration memory r = reg(worker, operator, uint64(block.timestamp + 1 hours));
        bytes[] memory sigs = sign1(r);
        vm.expectRevert(Registry.EvidenceHashMismatch.selector);
        registry.registerWorker(r, hex"0102030405060708090b", sigs);
    }

    function testReattestBeforeExpiry() public {
        registerWorker(workerKey, operator);
        vm.warp(block.timestamp + 50 minutes);
        Registry.WorkerRegistration memory r = reg(worker, operator, uint64(block.timestamp + 1 hours));
        vm.expectEmit(true, true, false, true);
        emit Registry.WorkerRegistered(worker, operator, SIM, WORKER_MEAS, 0, keccak256(evidence), r.expiry, true);
        registry.registerWorker(r, evidence, sign1(r));
        vm.warp(block.timestamp + 30 minutes); // past the first expiry
        assertTrue(registry.isActiveWorker(worker));
    }

    function testReplayedRegistrationReverts() public {
        Registry.WorkerRegistration memory r = reg(worker, operator, uint64(block.timestamp + 1 hours));
        bytes[] memory sigs = sign1(r);
        registry.registerWorker(r, evidence, sigs);
        vm.expectRevert(abi.encodeWithSelector(Registry.StaleRegistration.selector, r.expiry, r.expiry));
        registry.registerWorker(r, evidence, sigs);
    }

    function testReattestRevertsOnOperatorChange() public {
        registerWorker(workerKey, operator);
        Registry.WorkerRegistration memory r = reg(worker, stranger, uint64(block.timestamp + 2 hours));
        bytes[] memory sigs = sign1(r);
        vm.expectRevert(abi.encodeWithSelector(Registry.OperatorMismatch.selector, operator, stranger));
        registry.registerWorker(r, evidence, sigs);
    }

    function testExpiredWorkerIsInactiveButKnown() public {
        registerWorker(workerKey, operator);
        vm.warp(block.timestamp + 1 hours);
        assertFalse(registry.isActiveWorker(worker));
        assertTrue(registry.isKnownWorker(worker));
    }

    function testPolicyChangeDeactivatesWorker() public {
        registerWorker(workerKey, operator);
        registry.setMeasurement(SIM, ROLE_WORKER, WORKER_MEAS, false);
        assertFalse(registry.isActiveWorker(worker));
        registry.setMeasurement(SIM, ROLE_WORKER, WORKER_MEAS, true);
        assertTrue(registry.isActiveWorker(worker));
        registry.setPlatform(SIM, false, 0);
        assertFalse(registry.isActiveWorker(worker));
    }

    function testTcbTighteningDeactivatesWorker() public {
        registry.setPlatform(SIM, true, 1);
        Registry.WorkerRegistration memory r = reg(worker, operator, uint64(block.timestamp + 1 hours));
        r.tcbStatus = 1;
        registry.registerWorker(r, evidence, sign1(r));
        assertTrue(registry.isActiveWorker(worker));
        registry.setPlatform(SIM, true, 0);
        assertFalse(registry.isActiveWorker(worker));
    }

    function testUnknownWorkerViews() public view {
        assertFalse(registry.isActiveWorker(stranger));
        assertFalse(registry.isKnownWorker(stranger));
        assertEq(registry.operatorOf(stranger), address(0));
    }

    // ---------------------------------------------------------------- revocation

    function testRevokeByGovernance() public {
        registerWorker(workerKey, operator);
        vm.expectEmit(true, false, false, true);
        emit Registry.WorkerRevoked(worker, 7, false);
        registry.revokeWorker(worker, 7);
        assertFalse(registry.isActiveWorker(worker));
        assertFalse(registry.isKnownWorker(worker));
        // A revoked worker can never come back.
        Registry.WorkerRegistration memory r = reg(worker, operator, uint64(block.timestamp + 2 hours));
        bytes[] memory sigs = sign1(r);
        vm.expectRevert(abi.encodeWithSelector(Registry.WorkerIsRevoked.selector, worker));
        registry.registerWorker(r, evidence, sigs);
    }

    function testRevokeRevertsForNonAdmin() public {
        registerWorker(workerKey, operator);
        vm.prank(operator);
        vm.expectRevert(unauthorized(operator));
        registry.revokeWorker(worker, 1);
    }

    function testRevokeRevertsOnUnknownOrRevoked() public {
        vm.expectRevert(abi.encodeWithSelector(Registry.UnknownWorker.selector, worker));
        registry.revokeWorker(worker, 1);
        registerWorker(workerKey, operator);
        registry.revokeWorker(worker, 1);
        vm.expectRevert(abi.encodeWithSelector(Registry.WorkerIsRevoked.selector, worker));
        registry.revokeWorker(worker, 1);
    }

    function testRevokeByKms() public {
        registerWorker(workerKey, operator);
        bytes[] memory sigs = kmsSign(one(kms1Key), registry.revocationDigest(worker, 3));
        vm.expectEmit(true, false, false, true);
        emit Registry.WorkerRevoked(worker, 3, true);
        vm.prank(stranger);
        registry.revokeWorkerByKms(worker, 3, sigs);
        assertFalse(registry.isKnownWorker(worker));
    }

    function testRevokeByKmsRevertsOnBadSignature() public {
        registerWorker(workerKey, operator);
        bytes[] memory sigs = kmsSign(one(kms2Key), registry.revocationDigest(worker, 3));
        vm.expectRevert(abi.encodeWithSelector(Registry.NotKmsMember.selector, vm.addr(kms2Key)));
        registry.revokeWorkerByKms(worker, 3, sigs);
        // Signed for another reason code: recovers to some other address.
        sigs = kmsSign(one(kms1Key), registry.revocationDigest(worker, 4));
        vm.expectRevert();
        registry.revokeWorkerByKms(worker, 3, sigs);
        assertTrue(registry.isKnownWorker(worker));
    }

    // ---------------------------------------------------------------- KMS key rotation

    function testRotateKmsKey() public {
        assertEq(uint256(registry.kmsKeyEpoch()), 0);
        vm.expectEmit(true, false, false, true);
        emit Registry.KmsKeyRotationOrdered(1);
        assertEq(uint256(registry.rotateKmsKey()), 1);
        assertEq(uint256(registry.kmsKeyEpoch()), 1);
        registry.rotateKmsKey();
        assertEq(uint256(registry.kmsKeyEpoch()), 2);
        // The packed neighbours are untouched.
        assertEq(uint256(registry.kmsThreshold()), 1);
    }

    function testRotateKmsKeyRevertsForNonAdminAndKms() public {
        vm.prank(stranger);
        vm.expectRevert(unauthorized(stranger));
        registry.rotateKmsKey();
        // A KMS member cannot order its own rotation either: only governance can.
        vm.prank(vm.addr(kms1Key));
        vm.expectRevert(unauthorized(vm.addr(kms1Key)));
        registry.rotateKmsKey();
        assertEq(uint256(registry.kmsKeyEpoch()), 0);
    }

    // ---------------------------------------------------------------- KMS evidence

    function testPostKmsEvidence() public {
        bytes memory ev = hex"deadbeef";
        vm.expectEmit(true, false, false, true);
        emit Registry.KmsEvidencePosted(vm.addr(kms1Key), SIM, KMS_MEAS, 0, keccak256(ev));
        vm.prank(vm.addr(kms1Key));
        registry.postKmsEvidence(SIM, KMS_MEAS, 0, ev);
    }

    function testPostKmsEvidenceRevertsForNonMember() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Registry.NotKmsMember.selector, stranger));
        registry.postKmsEvidence(SIM, KMS_MEAS, 0, hex"00");
    }

    function testPostKmsEvidenceRevertsOnWorkerMeasurement() public {
        vm.prank(vm.addr(kms1Key));
        vm.expectRevert(abi.encodeWithSelector(Registry.MeasurementNotAllowed.selector, SIM, ROLE_KMS, WORKER_MEAS));
        registry.postKmsEvidence(SIM, WORKER_MEAS, 0, hex"00");
    }

    // ---------------------------------------------------------------- retirement

    function testRetireStopsRegistrationKeepsViews() public {
        registerWorker(workerKey, operator);
        address next = address(0x9E77);
        registry.retire(next);
        assertEq(registry.successor(), next);
        Registry.WorkerRegistration memory r = reg(worker2, operator, uint64(block.timestamp + 1 hours));
        bytes[] memory sigs = sign1(r);
        vm.expectRevert(abi.encodeWithSelector(Retirable.IsRetired.selector, next));
        registry.registerWorker(r, evidence, sigs);
        assertTrue(registry.isActiveWorker(worker));
        vm.expectRevert(abi.encodeWithSelector(Retirable.IsRetired.selector, next));
        registry.retire(next);
    }

    function testRetireRevertsForNonAdminOrZero() public {
        vm.prank(stranger);
        vm.expectRevert(unauthorized(stranger));
        registry.retire(address(1));
        vm.expectRevert(Retirable.ZeroAddress.selector);
        registry.retire(address(0));
    }

    function testDomainSeparatorBindsChainAndAddress() public view {
        bytes32 expected = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("Pith Registry"),
                keccak256("1"),
                block.chainid,
                address(registry)
            )
        );
        assertEq(registry.domainSeparator(), expected);
    }

    function testWorkerStatus() public {
        (bool active, address op, uint8 platform) = registry.workerStatus(worker);
        assertFalse(active);
        assertEq(op, address(0));
        registerWorker(workerKey, operator);
        (active, op, platform) = registry.workerStatus(worker);
        assertTrue(active);
        assertEq(op, operator);
        assertEq(uint256(platform), SIM);
        registry.revokeWorker(worker, 1);
        (active, op,) = registry.workerStatus(worker);
        assertFalse(active);
        assertEq(op, operator);
    }
}
