// The gateway's explorer API (docs/protocol.md, "Explorer"). Every call is same-origin.

export type Hex = `0x${string}`;

export interface Overview {
  chain_id: number;
  rpc_url: string;
  block: number;
  deploy_block: number;
  contracts: Record<string, Hex>;
  workers: { known: number; active: number; healthy: number };
  programs: number;
  receipts: number;
  total_stake: string;
  kms_members: Hex[];
  dev_ca: boolean;
  version: string;
}

export interface Uptime {
  checks: number;
  passed: number;
  first_check: number | null;
  up_since: number | null;
}

export interface Worker {
  address: Hex;
  url: string | null;
  operator: Hex;
  platform: string;
  platform_id: number;
  measurement_hash: Hex;
  tcb_status: number;
  tcb_status_name: string | null;
  evidence_hash: Hex;
  registered: boolean;
  revoked: boolean;
  healthy: boolean;
  expiry: number;
  registered_block: number | null;
  registered_at: number | null;
  last_seen: number | null;
  stake: string;
  calls: number;
  uptime: Uptime;
}

export interface Attestation {
  worker: Hex;
  platform: string;
  platform_id: number;
  evidence: Hex;
  evidence_hash: Hex;
  measurement_hash: Hex;
  tcb_status: number;
  dev_ca_pem: string | null;
  enc_public_key: Hex | null;
  chain_id: number;
  registry: Hex;
}

export interface Version {
  kind: "registered" | "upgraded";
  code_hash: Hex;
  block: number;
  tx: Hex | null;
}

export interface Program {
  program_id: Hex;
  id: string;
  owner: Hex;
  code_hash: Hex;
  deposit: string;
  calls: number;
  versions: Version[];
}

export interface Receipt {
  chainId: number;
  verifyingContract: Hex;
  programId: Hex;
  codeHash: Hex;
  requestHash: Hex;
  responseHash: Hex;
  modelHash: Hex;
  worker: Hex;
  timestamp: number;
  cpuMicros: number;
  wallMicros: number;
  memoryBytes: number;
  egressBytes: number;
  signature: Hex;
}

export interface Pool {
  operator: Hex;
  commission_bps: number;
  total_stake: string;
  locked_stake: string;
  total_shares: string;
  queued_shares: string;
  workers: Hex[];
}

export interface Proposal {
  id: string;
  proposer: Hex;
  description: string;
  state: string;
  vote_start: string;
  vote_end: string;
  votes: { for: string; against: string; abstain: string };
  actions: number;
  block: number;
}

export interface CallSeries {
  bucket_seconds: number;
  start: number;
  counts: number[];
  scanned: number;
  truncated: boolean;
}

export interface GatewayVerdict {
  ok: boolean;
  platform: string | null;
  verified_by: "gateway";
  measurement_hash: Hex | null;
  report_data: Hex | null;
  tcb_status: string | null;
  error: { class: string; message: string } | null;
  at: number;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly kind: string,
    message: string,
  ) {
    super(message);
  }
}

const BASE = "/explorer/api";

async function json<T>(path: string, init?: RequestInit): Promise<T> {
  const r = await fetch(BASE + path, init);
  const text = await r.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiError(r.status, "bad_response", `${path}: answer is not JSON`);
  }
  if (!r.ok) {
    const e = (body as { error?: { kind?: string; message?: string } }).error;
    throw new ApiError(r.status, e?.kind ?? "unknown", `${path}: ${e?.message ?? r.statusText}`);
  }
  return body as T;
}

/** `GET /explorer/api/workers/{address}/collateral`: Intel PCS files (CRLs as 0x-hex DER). */
export interface IntelCollateralFiles {
  tcb_info: string;
  qe_identity: string;
  tcb_signing_chain: string;
  pck_crl: Hex;
  pck_crl_issuer_chain: string | null;
  root_ca_crl: Hex;
}

export const api = {
  overview: () => json<Overview>("/overview"),
  workers: () => json<Worker[]>("/workers"),
  attestation: (address: Hex) => json<Attestation>(`/workers/${address}/attestation`),
  collateral: (address: Hex) => json<IntelCollateralFiles>(`/workers/${address}/collateral`),
  programs: (limit = 50) => json<{ total: number; programs: Program[] }>(`/programs?limit=${limit}`),
  receipts: (limit = 50) => json<Receipt[]>(`/receipts?limit=${limit}`),
  pools: () => json<Pool[]>("/pools"),
  proposals: () => json<Proposal[]>("/proposals"),
  calls: (bucket: number, buckets: number) => json<CallSeries>(`/calls?bucket=${bucket}&buckets=${buckets}`),
  verifyEvidence: (evidence: Hex, platform: string) =>
    json<GatewayVerdict>("/verify-evidence", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ evidence, platform }),
    }),
};
