// The "verify" button: check a worker's registered attestation from the browser.
//
// 1. registry_record: the worker's record read from the Registry over the chain RPC with viem
//    (not from the gateway), and compared with what the gateway says.
// 2. evidence_hash: keccak256(evidence bytes) equals the registered evidence hash.
// 3. attestation: the SDK's `verifyEvidence` (@pith/sdk, bundled from sdk/js/src) checks the
//    evidence in the browser (simulated evidence: WebCrypto, to the network's development CA);
//    evidence it answers `unsupported` for is sent to the gateway, which verifies it with
//    pith-attest, and the result is labelled "verified by gateway".
// 4. measurement: the verified evidence's measurement hash equals the registered one.
// 5. binding: report_data[0..32] is the worker binding of its address, the X25519 key it
//    reports (relayed by the gateway, untrusted: no other key gives the same hash), the chain
//    id and the Registry — the evidence was made for this worker on this network.

import { bytesToHex, createClient, hexToBytes, http, keccak256, parseAbi } from "viem";
import { getChainId, readContract } from "viem/actions";
import type { Attestation, Hex } from "./api";
import { api } from "./api";
import { verifyEvidence, verifyReceipt, workerReportData, type Deployment } from "../../sdk/js/src/index.ts";
import { intelCollateralFromFiles, verifyIntelEvidence } from "../../sdk/js/src/evidence-intel.ts";
import type { Overview, Receipt } from "./api";

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface AttestationVerdict {
  ok: boolean;
  /** Who verified the evidence itself. */
  verifiedBy: "browser" | "gateway";
  checks: Check[];
}

const REGISTRY_ABI = parseAbi([
  "struct Worker { address operator; uint8 platform; uint8 tcbStatus; uint64 expiry; bool revoked; bytes32 measurementHash; bytes32 evidenceHash; }",
  "function workerInfo(address worker) view returns (Worker)",
]);

interface Facts {
  platform: number;
  tcbStatus: number;
  measurementHash: Hex;
  evidenceHash: Hex;
}

async function registryFacts(att: Attestation, rpcUrl: string): Promise<{ facts: Facts; check: Check }> {
  const fromGateway: Facts = {
    platform: att.platform_id,
    tcbStatus: att.tcb_status,
    measurementHash: att.measurement_hash,
    evidenceHash: att.evidence_hash,
  };
  try {
    const client = createClient({ transport: http(rpcUrl, { timeout: 5_000, retryCount: 0 }) });
    const chainId = await getChainId(client);
    if (chainId !== att.chain_id) {
      return { facts: fromGateway, check: { name: "registry_record", ok: false, detail: `RPC serves chain ${chainId}, the gateway says ${att.chain_id}` } };
    }
    const w = await readContract(client, { address: att.registry, abi: REGISTRY_ABI, functionName: "workerInfo", args: [att.worker] });
    const facts: Facts = { platform: w.platform, tcbStatus: w.tcbStatus, measurementHash: w.measurementHash, evidenceHash: w.evidenceHash };
    const same =
      facts.platform === fromGateway.platform &&
      facts.tcbStatus === fromGateway.tcbStatus &&
      facts.measurementHash.toLowerCase() === fromGateway.measurementHash.toLowerCase() &&
      facts.evidenceHash.toLowerCase() === fromGateway.evidenceHash.toLowerCase();
    const ok = same && !w.revoked && w.operator !== "0x0000000000000000000000000000000000000000";
    return {
      facts,
      check: {
        name: "registry_record",
        ok,
        detail: ok
          ? `read from the Registry at ${att.registry} with viem: operator ${w.operator}, platform ${w.platform}, expiry ${new Date(Number(w.expiry) * 1000).toISOString()}`
          : w.revoked
            ? "the Registry marks the worker revoked"
            : "the Registry's record differs from the gateway's",
      },
    };
  } catch (e) {
    return {
      facts: fromGateway,
      check: { name: "registry_record", ok: false, detail: `could not read the Registry over ${rpcUrl}: ${(e as Error).message.split("\n")[0]}` },
    };
  }
}

export async function verifyAttestation(att: Attestation, rpcUrl: string, now: Date = new Date()): Promise<AttestationVerdict> {
  const checks: Check[] = [];
  const { facts, check } = await registryFacts(att, rpcUrl);
  checks.push(check);

  let evidence: Uint8Array;
  try {
    evidence = hexToBytes(att.evidence);
  } catch {
    checks.push({ name: "evidence_hash", ok: false, detail: "evidence is not hex" });
    return { ok: false, verifiedBy: "browser", checks };
  }
  const h = keccak256(evidence);
  checks.push({
    name: "evidence_hash",
    ok: h.toLowerCase() === facts.evidenceHash.toLowerCase(),
    detail: `keccak256(evidence) ${h} / registered ${facts.evidenceHash}`,
  });

  let verifiedBy: "browser" | "gateway" = "browser";
  let measurement: Hex | null = null;
  let reportData: Hex | null = null;
  const devCa = att.dev_ca_pem ? new TextEncoder().encode(att.dev_ca_pem) : undefined;
  let local = await verifyEvidence(evidence, { now, devCa });
  // Intel quotes: verified here too (dcap-qvl), with Intel-signed collateral the gateway
  // relays for this worker; without it they go to the gateway like other hardware evidence.
  if (local.verifiedBy !== "browser" && (local.platform === "sgx" || local.platform === "tdx")) {
    const files = await api.collateral(att.worker).catch(() => null);
    if (files) {
      try {
        const collateral = intelCollateralFromFiles({
          tcbInfo: files.tcb_info,
          qeIdentity: files.qe_identity,
          tcbSigningChain: files.tcb_signing_chain,
          pckCrl: hexToBytes(files.pck_crl),
          rootCaCrl: hexToBytes(files.root_ca_crl),
          pckCrlIssuerChain: files.pck_crl_issuer_chain ?? undefined,
        });
        local = await verifyIntelEvidence(evidence, { collateral, now });
      } catch (e) {
        local = { ok: false, platform: local.platform, verifiedBy: "browser", error: { kind: "malformed", message: `collateral: ${(e as Error).message}` } };
      }
    }
  }
  if (local.verifiedBy === "browser") {
    if (local.platform !== att.platform) {
      checks.push({ name: "attestation", ok: false, detail: `evidence is ${local.platform}, the Registry says ${att.platform}` });
    } else if (local.ok && local.measurementHash) {
      measurement = local.measurementHash;
      reportData = local.reportData ?? null;
      checks.push({
        name: "attestation",
        ok: true,
        detail:
          local.platform === "simulated"
            ? "simulated evidence verifies in the browser (WebCrypto) to the development CA the gateway serves — NOT a TEE"
            : `${local.platform} evidence verifies in the browser`,
      });
    } else {
      checks.push({ name: "attestation", ok: false, detail: `${local.error?.kind ?? "invalid"}: ${local.error?.message ?? "does not verify"}` });
    }
  } else {
    verifiedBy = "gateway";
    try {
      const v = await api.verifyEvidence(att.evidence, att.platform);
      measurement = v.ok ? v.measurement_hash : null;
      reportData = v.ok ? v.report_data : null;
      checks.push({
        name: "attestation",
        ok: v.ok,
        detail: v.ok
          ? `${v.platform} evidence verified by the gateway (pith-attest)${v.tcb_status ? `, TCB ${v.tcb_status}` : ""}; the browser cannot check it yet`
          : `verified by the gateway: ${v.error?.class}: ${v.error?.message}`,
      });
    } catch (e) {
      checks.push({ name: "attestation", ok: false, detail: `gateway verification failed: ${(e as Error).message}` });
    }
  }
  if (measurement) {
    checks.push({
      name: "measurement",
      ok: measurement.toLowerCase() === facts.measurementHash.toLowerCase(),
      detail: `evidence ${measurement} / registered ${facts.measurementHash}`,
    });
  }
  if (measurement) {
    if (!att.enc_public_key) {
      checks.push({ name: "binding", ok: false, detail: "the worker's X25519 key is not available (no answer from the worker), so report_data cannot be checked" });
    } else {
      const want = bytesToHex(workerReportData(att.worker, hexToBytes(att.enc_public_key), att.chain_id, att.registry));
      const got = (reportData ?? "0x").slice(0, 66).toLowerCase();
      const model = (reportData ?? "").slice(66);
      checks.push({
        name: "binding",
        ok: got === want.toLowerCase(),
        detail: `report_data[0..32] ${got} / binding of ${att.worker} with its key to chain ${att.chain_id}, Registry ${att.registry}: ${want}${/^0*$/.test(model) ? "" : `; model sha256 0x${model}`}`,
      });
    }
  }
  return { ok: checks.every((c) => c.ok) && measurement !== null, verifiedBy, checks };
}

/// A stored receipt, checked in the browser with the SDK's `verifyReceipt`: the EIP-712
/// signature recovers the worker it names, the chain and Registry are this network's, the worker
/// is (or was, at the receipt's time) registered and the code hash is in the program's history —
/// the last two read from the chain with viem, not from the gateway.
export async function checkReceipt(receipt: Receipt, o: Overview): Promise<{ ok: boolean; checks: Check[] }> {
  const deployment = { chain_id: o.chain_id, rpc_url: o.rpc_url, deploy_block: o.deploy_block, contracts: o.contracts } as unknown as Deployment;
  const v = await verifyReceipt(receipt as never, { deployment, chain: o.rpc_url });
  return { ok: v.ok, checks: v.checks };
}
