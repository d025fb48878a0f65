/**
 * The client: connect to a gateway, get a program with its KMS-certified key, call it with
 * Oblivious HTTP, verify receipts against the chain, read registry and stake facts.
 *
 * Trust: the gateway is not trusted. Keys are used only when their certificate recovers to
 * a member of `Registry.kmsMembers()`; receipts are checked against the exact bytes sent and
 * received and against the Registry; evidence is taken from the `registerWorker` calldata on
 * chain, not from the gateway. The chain is read through `rpcUrl` — pass the `deployment`
 * you trust; without it the manifest comes from the gateway's `/v1/network` (convenient for
 * a local network, but then the gateway chooses which contracts you check against).
 */
import {
  createPublicClient,
  decodeFunctionData,
  getAddress,
  http,
  keccak256,
  type Address,
  type PublicClient,
} from "viem";
import { programsAbi, registryAbi, stakePoolsAbi, oracleAnchorAbi } from "./abi.ts";
import { decodeResponse, encodeRequest, type PlainResponse } from "./bhttp.ts";
import { concat, decodeUtf8, fromBase64Url, fromHex, toHex, utf8, type Hex } from "./bytes.ts";
import { PithError } from "./errors.ts";
import { verifyEvidence, type EvidenceVerdict } from "./evidence.ts";
import { encapsulateRequest } from "./ohttp.ts";
import {
  parseKeyCertificate,
  parseReceipt,
  verifyKeyCertificateSignature,
  verifyReceiptSignature,
  type KeyCertificate,
  type Receipt,
} from "./receipt.ts";

/** The deployment manifest (`deployment.json`, docs/protocol.md "deployment.json"). */
export interface Deployment {
  chain_id: number;
  rpc_url?: string;
  deploy_block?: number;
  contracts: {
    PHA: Address;
    Registry: Address;
    Programs: Address;
    StakePools: Address;
    Billing: Address;
    OracleAnchor: Address;
    Governor?: Address;
    Timelock?: Address;
  };
  [key: string]: unknown;
}

/** A request to a program (the inner, encrypted HTTP request). */
export interface CallRequest {
  /** Default `GET` (or `POST` when a body is given). */
  method?: string;
  /** Path and query, default `/`. */
  path?: string;
  headers?: Record<string, string> | [string, string][];
  body?: Uint8Array | string;
}

/** A program's response, decrypted. */
export interface CallResponse extends PlainResponse {
  /** The body as UTF-8 text. */
  text(): string;
}

/** One named check of a verification, as `pith call --json` reports them. */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** The result of verifying a receipt: `ok` only when every check passed. */
export interface ReceiptVerdict {
  ok: boolean;
  checks: Check[];
  /** The worker's posted evidence, verified, when evidence was checked. */
  evidence?: EvidenceVerdict;
}

/** What the caller saw of an exchange, to bind a receipt to it. */
export interface Exchange {
  programId: Hex;
  requestHash: Hex;
  responseHash: Hex;
  /** The `pith-worker` header, when present. */
  worker?: Address;
}

/** Options of receipt verification. */
export interface VerifyReceiptOptions {
  /** Bind the receipt to this exchange (request and response hashes, program, worker). */
  exchange?: Exchange;
  /**
   * Check the worker's posted evidence too: read it from the `registerWorker` calldata,
   * check its hash against the Registry, verify it ([`verifyEvidence`]) and compare its
   * measurement hash with the registered one. Simulated evidence needs `devCa`.
   */
  evidence?: EvidenceCheckOptions;
}

/** How to check a worker's posted evidence. */
export interface EvidenceCheckOptions {
  /** The development CA (DER, or PEM text/bytes) for simulated evidence (`pith up`: `DIR/dev-ca/dev-ca.pem`). */
  devCa?: Uint8Array | string;
  /** Appraise as of this time (default: now). */
  now?: Date;
  /**
   * The worker's X25519 key-transport public key (32 bytes). When given, `report_data` must be
   * the worker binding of the worker's address, this key, the chain id and the Registry
   * (check `binding`). The key may come from anywhere (the worker's `/v1/worker/info`):
   * the address inside the hash is what is bound.
   */
  encPublicKey?: Uint8Array;
  /** [`PithClient`] only: fetch `encPublicKey` from the worker's `/v1/worker/info` (URL from the gateway). */
  bindingFromWorker?: boolean;
}

/** `report_data[0..32]` of a worker's evidence (docs/protocol.md "Identity binding"); bytes 32..64 name its model (zero: none). */
export function workerReportData(worker: Address, encPublicKey: Uint8Array, chainId: number, registry: Address): Uint8Array {
  const chain = new Uint8Array(8);
  new DataView(chain.buffer).setBigUint64(0, BigInt(chainId));
  return fromHex(
    keccak256(concat(utf8.encode("pith/v1/worker-report"), fromHex(worker), encPublicKey, chain, fromHex(registry))),
    "report data",
  );
}

/** The model hash a worker's `report_data` binds (bytes 32..64), or `null` when they are zero (no model). */
export function boundModelHash(reportData: Hex): Hex | null {
  const m = reportData.slice(66, 130);
  return m.length === 64 && !/^0+$/.test(m) ? `0x${m.toLowerCase()}` : null;
}

/**
 * As `pith verify`'s `model` check: a receipt naming a model (`modelHash` non-zero) must come
 * from a worker whose evidence binds that model. `null` (no check) for a receipt without one.
 */
export function modelCheck(reportData: Hex, modelHash: Hex): Check | null {
  if (/^0x0+$/.test(modelHash)) return null;
  const bound = boundModelHash(reportData);
  if (bound === modelHash.toLowerCase()) return { name: "model", ok: true, detail: `answered by model sha256 ${bound}, bound in the worker's evidence` };
  return {
    name: "model",
    ok: false,
    detail: bound ? `receipt names model ${modelHash} / the worker's evidence binds ${bound}` : `receipt names model ${modelHash} but the worker's evidence binds none`,
  };
}

/** Context of the standalone [`verifyReceipt`]. */
export interface VerifyReceiptContext extends VerifyReceiptOptions {
  deployment: Deployment;
  /** A viem public client on the deployment's chain, or an RPC URL. */
  chain: PublicClient | string;
}

/** A program, with its certified key configuration. */
export interface Program {
  programId: Hex;
  owner: Address;
  codeHash: Hex;
  /** The `application/ohttp-keys` body, checked against `certificate`. */
  ohttpKeys: Uint8Array;
  certificate: KeyCertificate;
  /** The KMS committee member that signed the certificate. */
  kms: Address;
  /** The program's own Ethereum address (newest epoch). */
  address: Address;
}

/** A worker's facts as the Registry holds them (plus what the gateway says of its health). */
export interface WorkerFacts {
  address: Address;
  operator: Address;
  platform: number;
  tcbStatus: number;
  expiry: number;
  revoked: boolean;
  measurementHash: Hex;
  evidenceHash: Hex;
  /** `Registry.isActiveWorker`. */
  active: boolean;
  /** From the gateway: announced URL and health (not verified). */
  url?: string | null;
  healthy?: boolean;
}

/** A stake pool (`StakePools.pool(operator)`), amounts in PHA wei. */
export interface StakePool {
  operator: Address;
  exists: boolean;
  commissionBps: number;
  generation: number;
  totalShares: bigint;
  totalStake: bigint;
  lockedStake: bigint;
  freeStake: bigint;
  queuedShares: bigint;
  commission: bigint;
  slashedInWindow: bigint;
}

/** Seconds a request stays valid (`pith-expiry`), as the CLI uses. */
export const REQUEST_TTL_SECS = 60;

/** Program id as the 32-byte hex the routes and receipts use: from a number, bigint or hex. */
export function programIdHex(id: number | bigint | string): Hex {
  let n: bigint;
  try {
    if (typeof id === "string" && !/^(0x[0-9a-fA-F]{1,64}|[0-9]{1,78})$/.test(id.trim())) throw new Error("syntax");
    n = BigInt(typeof id === "string" ? id.trim() : id);
  } catch {
    throw new PithError("invalid_argument", `program id ${String(id)} is not a number`);
  }
  if (n < 0n || n >= 1n << 256n) throw new PithError("invalid_argument", `program id ${String(id)} is out of range`);
  return `0x${n.toString(16).padStart(64, "0")}`;
}

function chainClient(chain: PublicClient | string): PublicClient {
  return typeof chain === "string" ? createPublicClient({ transport: http(chain) }) : chain;
}

async function read<T>(what: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw new PithError("chain", `${what}: ${(e as Error).message.split("\n")[0]}`, { cause: e });
  }
}

const nowSecs = () => Math.floor(Date.now() / 1000);

/** Read a worker's Registry record. */
export async function workerFacts(chain: PublicClient, d: Deployment, worker: Address): Promise<WorkerFacts> {
  const registry = d.contracts.Registry;
  const [info, active] = await Promise.all([
    read("Registry.workerInfo", () => chain.readContract({ address: registry, abi: registryAbi, functionName: "workerInfo", args: [worker] })),
    read("Registry.isActiveWorker", () => chain.readContract({ address: registry, abi: registryAbi, functionName: "isActiveWorker", args: [worker] })),
  ]);
  return {
    address: getAddress(worker),
    operator: info.operator,
    platform: info.platform,
    tcbStatus: info.tcbStatus,
    expiry: Number(info.expiry),
    revoked: info.revoked,
    measurementHash: info.measurementHash,
    evidenceHash: info.evidenceHash,
    active,
  };
}

/**
 * A worker's registered evidence, taken from the calldata of the `registerWorker`
 * transaction whose `WorkerRegistered` log carries the Registry's current evidence hash
 * (never from the gateway); `keccak256(evidence)` is checked against it.
 */
export async function postedEvidence(chain: PublicClient, d: Deployment, worker: Address, evidenceHash: Hex): Promise<Uint8Array> {
  const logs = await read("WorkerRegistered logs", () =>
    chain.getContractEvents({
      address: d.contracts.Registry,
      abi: registryAbi,
      eventName: "WorkerRegistered",
      args: { worker },
      fromBlock: BigInt(d.deploy_block ?? 0),
      toBlock: "latest",
    }),
  );
  const log = [...logs].reverse().find((l) => l.args.evidenceHash?.toLowerCase() === evidenceHash.toLowerCase());
  if (!log) throw new PithError("chain", `no WorkerRegistered log of ${worker} with evidence hash ${evidenceHash}`);
  const tx = await read("registration transaction", () => chain.getTransaction({ hash: log.transactionHash }));
  let evidence: Hex;
  try {
    const call = decodeFunctionData({ abi: registryAbi, data: tx.input });
    if (call.functionName !== "registerWorker") throw new Error(call.functionName);
    const [reg, ev] = call.args as unknown as [{ worker: Address }, Hex];
    if (getAddress(reg.worker) !== getAddress(worker)) throw new Error("registration names another worker");
    evidence = ev;
  } catch (e) {
    throw new PithError("chain", `registration ${log.transactionHash} is not a direct registerWorker call (${(e as Error).message})`);
  }
  if (keccak256(evidence) !== evidenceHash.toLowerCase()) throw new PithError("chain", "posted evidence does not hash to the registered evidence hash");
  return fromHex(evidence, "evidence");
}

/** Code hashes a program has had: current, and every `ProgramRegistered`/`ProgramUpgraded`. */
async function codeHistory(chain: PublicClient, d: Deployment, programId: Hex): Promise<Hex[]> {
  const id = BigInt(programId);
  const current = await read("Programs.codeHashOf", () =>
    chain.readContract({ address: d.contracts.Programs, abi: programsAbi, functionName: "codeHashOf", args: [id] }),
  );
  const out: Hex[] = [current];
  for (const eventName of ["ProgramRegistered", "ProgramUpgraded"] as const) {
    const logs = await read(`Programs.${eventName} logs`, () =>
      chain.getContractEvents({ address: d.contracts.Programs, abi: programsAbi, eventName, args: { programId: id }, fromBlock: BigInt(d.deploy_block ?? 0), toBlock: "latest" }),
    );
    for (const l of logs) {
      const a = l.args as { programId?: bigint; codeHash?: Hex; oldCodeHash?: Hex; newCodeHash?: Hex };
      if (a.programId !== id) continue;
      for (const h of [a.codeHash, a.oldCodeHash, a.newCodeHash]) if (h) out.push(h);
    }
  }
  return out;
}

/**
 * Verify a receipt: its EIP-712 signature, domain, the exchange it claims (when given), the
 * worker in the Registry, the code hash in Programs, and optionally the worker's posted
 * evidence. Never throws for a bad receipt: the verdict lists what failed.
 */
export async function verifyReceipt(receipt: Receipt, ctx: VerifyReceiptContext): Promise<ReceiptVerdict> {
  const checks: Check[] = [];
  const add = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });
  const d = ctx.deployment;
  let r: Receipt;
  try {
    r = parseReceipt(receipt);
  } catch (e) {
    add("receipt_format", false, (e as Error).message);
    return { ok: false, checks };
  }
  try {
    const w = await verifyReceiptSignature(r);
    add("receipt_signature", true, `signed by worker ${w}`);
  } catch (e) {
    add("receipt_signature", false, (e as Error).message);
  }
  const domainOk = r.chainId === d.chain_id && getAddress(r.verifyingContract) === getAddress(d.contracts.Registry);
  add("receipt_domain", domainOk, `receipt chain ${r.chainId} Registry ${r.verifyingContract} / network chain ${d.chain_id} Registry ${d.contracts.Registry}`);
  const x = ctx.exchange;
  if (x) {
    add("receipt_program", r.programId === x.programId.toLowerCase(), `receipt program ${r.programId} / called ${x.programId}`);
    add("request_hash", r.requestHash === x.requestHash.toLowerCase(), `receipt ${r.requestHash} / sent ${x.requestHash}`);
    add("response_hash", r.responseHash === x.responseHash.toLowerCase(), `receipt ${r.responseHash} / received ${x.responseHash}`);
    if (x.worker) add("receipt_worker", getAddress(x.worker) === r.worker, `receipt ${r.worker} / gateway says ${x.worker}`);
  }
  const chain = chainClient(ctx.chain);
  let facts: WorkerFacts | undefined;
  try {
    facts = await workerFacts(chain, d, r.worker);
    // as `pith verify`: known, not revoked, and registered at the time of the receipt
    const known = facts.operator !== "0x0000000000000000000000000000000000000000";
    const ok = known && !facts.revoked && facts.expiry >= r.timestamp;
    add("worker_registered", ok, `Registry: known ${known}, active ${facts.active}, revoked ${facts.revoked}, expiry ${facts.expiry}, receipt time ${r.timestamp}`);
  } catch (e) {
    add("worker_registered", false, (e as Error).message);
  }
  try {
    const history = await codeHistory(chain, d, r.programId);
    add("code_hash", history.includes(r.codeHash), `receipt code ${r.codeHash} / Programs: current ${history[0]}, ${history.length - 1} registered/upgraded`);
  } catch (e) {
    add("code_hash", false, (e as Error).message);
  }
  let evidence: EvidenceVerdict | undefined;
  if (ctx.evidence && facts) {
    try {
      const bytes = await postedEvidence(chain, d, r.worker, facts.evidenceHash);
      add("evidence_hash", true, `evidence from the registerWorker calldata hashes to ${facts.evidenceHash}`);
      const opts: { devCa?: Uint8Array | string; now?: Date } = {};
      if (ctx.evidence.devCa) opts.devCa = ctx.evidence.devCa;
      if (ctx.evidence.now) opts.now = ctx.evidence.now;
      evidence = await verifyEvidence(bytes, opts);
      add("attestation", evidence.ok, evidence.ok ? `${evidence.platform} evidence verified (${evidence.verifiedBy})` : `${evidence.platform}: ${evidence.error?.kind}: ${evidence.error?.message}`);
      if (evidence.ok) {
        add("measurement", evidence.measurementHash === facts.measurementHash.toLowerCase(), `evidence ${evidence.measurementHash} / registered ${facts.measurementHash}`);
        const registry = d.contracts.Registry;
        const [allowed, config] = await Promise.all([
          read("Registry.isAllowedMeasurement", () =>
            chain.readContract({ address: registry, abi: registryAbi, functionName: "isAllowedMeasurement", args: [facts!.platform, 1, facts!.measurementHash] }),
          ),
          read("Registry.platformConfig", () => chain.readContract({ address: registry, abi: registryAbi, functionName: "platformConfig", args: [facts!.platform] })),
        ]);
        const policyOk = allowed && config.enabled && facts.tcbStatus <= config.maxTcbStatus;
        add("policy", policyOk, `measurement allowed for workers ${allowed}, platform ${facts.platform} enabled ${config.enabled}, TCB ${facts.tcbStatus} ≤ ${config.maxTcbStatus}`);
        if (ctx.evidence.encPublicKey) {
          // bytes 0..32 bind identity; 32..64 name the model the worker serves (zero: none)
          const want = toHex(workerReportData(r.worker, ctx.evidence.encPublicKey, d.chain_id, registry));
          const got = evidence.reportData?.slice(0, 66);
          const model = boundModelHash(evidence.reportData!);
          add("binding", got === want, `report_data ${got} / binding of worker ${r.worker} to chain ${d.chain_id}, Registry ${registry}: ${want}; ${model ? `model sha256 ${model}` : "no model"}`);
        }
        const model = modelCheck(evidence.reportData!, r.modelHash);
        if (model) checks.push(model);
      }
    } catch (e) {
      add("evidence_hash", false, (e as Error).message);
    }
  }
  const verdict: ReceiptVerdict = { ok: checks.every((c) => c.ok), checks };
  if (evidence) verdict.evidence = evidence;
  return verdict;
}

/** Options of [`connect`]. */
export interface ConnectOptions {
  /** Gateway base URL, e.g. `http://127.0.0.1:8700`. */
  gateway: string;
  /** JSON-RPC URL of the chain (default: the deployment's `rpc_url`). */
  rpcUrl?: string;
  /** The deployment manifest you trust (default: the gateway's `/v1/network`). */
  deployment?: Deployment;
  /** `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
}

async function gatewayError(res: Response, url: string): Promise<PithError> {
  let remoteKind: string | undefined;
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = (await res.json()) as { error?: { kind?: string; message?: string } };
    if (body.error?.kind) {
      remoteKind = body.error.kind;
      message = `${body.error.kind}: ${body.error.message ?? ""}`;
    }
  } catch {
    /* not a JSON error body */
  }
  const extra: { status: number; remoteKind?: string } = { status: res.status };
  if (remoteKind !== undefined) extra.remoteKind = remoteKind;
  return new PithError("gateway", `${url}: ${message}`, extra);
}

/** A connection to a Pith network through one gateway. */
export class PithClient {
  readonly gateway: string;
  readonly deployment: Deployment;
  readonly chain: PublicClient;
  private readonly fetchFn: typeof fetch;

  /** Use [`connect`]. */
  constructor(gateway: string, deployment: Deployment, chain: PublicClient, fetchFn: typeof fetch) {
    this.gateway = gateway.replace(/\/+$/, "");
    this.deployment = deployment;
    this.chain = chain;
    this.fetchFn = fetchFn;
  }

  private async http(path: string, init?: RequestInit): Promise<Response> {
    const url = this.gateway + path;
    let res: Response;
    try {
      res = await this.fetchFn(url, init);
    } catch (e) {
      throw new PithError("gateway", `${url}: ${(e as Error).message}`, { cause: e });
    }
    if (!res.ok) throw await gatewayError(res, url);
    return res;
  }

  /** `Registry.kmsMembers()`. */
  async kmsMembers(): Promise<Address[]> {
    const m = await read("Registry.kmsMembers", () =>
      this.chain.readContract({ address: this.deployment.contracts.Registry, abi: registryAbi, functionName: "kmsMembers" }),
    );
    return m.map((a) => getAddress(a));
  }

  /**
   * A program and its key configuration, whose certificate must name this program, chain
   * and Registry, cover exactly the served key bytes, be unexpired and be signed by a
   * member of `Registry.kmsMembers()`. Fails with `bad_signature`, `expired` or
   * `untrusted_signer` otherwise.
   */
  async getProgram(id: number | bigint | string): Promise<Program> {
    const programId = programIdHex(id);
    const res = await this.http(`/v1/programs/${programId}/ohttp-keys`);
    const header = res.headers.get("pith-key-certificate");
    if (!header) throw new PithError("malformed", "ohttp-keys answer carries no pith-key-certificate header");
    const ohttpKeys = new Uint8Array(await res.arrayBuffer());
    let certJson: unknown;
    try {
      certJson = JSON.parse(decodeUtf8(fromBase64Url(header, "pith-key-certificate"), "pith-key-certificate"));
    } catch (e) {
      throw e instanceof PithError ? e : new PithError("malformed", "pith-key-certificate is not JSON");
    }
    const certificate = parseKeyCertificate(certJson);
    const [kms, facts] = await Promise.all([this.checkCertificate(certificate, ohttpKeys, programId), this.programFacts(programId)]);
    return { programId, ...facts, ohttpKeys, certificate, kms, address: certificate.programAddress };
  }

  /** Check a key certificate for `programId` against the served bytes and the chain. */
  async checkCertificate(c: KeyCertificate, ohttpKeys: Uint8Array, programId: Hex): Promise<Address> {
    if (c.programId !== programId.toLowerCase()) throw new PithError("bad_signature", `certificate is for program ${c.programId}, not ${programId}`);
    if (c.chainId !== this.deployment.chain_id || getAddress(c.verifyingContract) !== getAddress(this.deployment.contracts.Registry)) {
      throw new PithError("bad_signature", `certificate is for chain ${c.chainId} Registry ${c.verifyingContract}, not this network`);
    }
    const signer = await verifyKeyCertificateSignature(c, ohttpKeys, nowSecs());
    const committee = await this.kmsMembers();
    if (!committee.includes(signer)) throw new PithError("untrusted_signer", `certificate signer ${signer} is not in Registry.kmsMembers() [${committee.join(", ")}]`);
    return signer;
  }

  private async programFacts(programId: Hex): Promise<{ owner: Address; codeHash: Hex }> {
    const p = await read("Programs.program", () =>
      this.chain.readContract({ address: this.deployment.contracts.Programs, abi: programsAbi, functionName: "program", args: [BigInt(programId)] }),
    );
    if (/^0x0+$/.test(p.codeHash)) throw new PithError("invalid_argument", `program ${programId} does not exist on chain`);
    return { owner: p.owner, codeHash: p.codeHash };
  }

  /**
   * Call a program: encrypt the request to its certified key, send it through the gateway,
   * decrypt the answer and verify the receipt against this exchange and the chain.
   * `verification.ok` is false when any check failed; the response is returned anyway.
   */
  async call(
    programId: number | bigint | string,
    request: CallRequest = {},
    opts: { program?: Program; evidence?: VerifyReceiptOptions["evidence"] } = {},
  ): Promise<{ response: CallResponse; receipt: Receipt; verification: ReceiptVerdict; worker?: Address }> {
    const program = opts.program ?? (await this.getProgram(programId));
    const body = typeof request.body === "string" ? utf8.encode(request.body) : (request.body ?? new Uint8Array());
    const headers = Array.isArray(request.headers) ? request.headers : Object.entries(request.headers ?? {});
    let path = request.path ?? "/";
    if (!path.startsWith("/")) path = `/${path}`;
    const bhttp = encodeRequest({
      method: (request.method ?? (body.length > 0 ? "POST" : "GET")).toUpperCase(),
      path,
      headers: headers.map(([k, v]) => [k.toLowerCase(), v]),
      body,
      nonce: crypto.getRandomValues(new Uint8Array(16)),
      expiry: nowSecs() + REQUEST_TTL_SECS,
    });
    const requestHash = keccak256(bhttp);
    const { wire, session } = await encapsulateRequest(program.ohttpKeys, bhttp);
    const res = await this.http(`/v1/programs/${program.programId}/invoke`, {
      method: "POST",
      headers: { "content-type": "message/ohttp-req" },
      body: new Uint8Array(wire),
    });
    const receiptHeader = res.headers.get("pith-receipt");
    if (!receiptHeader) throw new PithError("malformed", "the answer carries no pith-receipt header");
    let receiptJson: unknown;
    try {
      receiptJson = JSON.parse(decodeUtf8(fromBase64Url(receiptHeader, "pith-receipt"), "pith-receipt"));
    } catch (e) {
      throw e instanceof PithError ? e : new PithError("malformed", "pith-receipt is not JSON");
    }
    const receipt = parseReceipt(receiptJson);
    const workerHeader = res.headers.get("pith-worker");
    const plain = session.openResponse(new Uint8Array(await res.arrayBuffer()));
    const responseHash = keccak256(plain);
    const decoded = decodeResponse(plain);
    const response: CallResponse = { ...decoded, text: () => decodeUtf8(decoded.body, "response body") };
    const exchange: Exchange = { programId: program.programId, requestHash, responseHash };
    if (workerHeader) exchange.worker = getAddress(workerHeader);
    const vopts: VerifyReceiptOptions = { exchange };
    if (opts.evidence) vopts.evidence = opts.evidence;
    const verification = await this.verifyReceipt(receipt, vopts);
    const out: { response: CallResponse; receipt: Receipt; verification: ReceiptVerdict; worker?: Address } = { response, receipt, verification };
    if (exchange.worker) out.worker = exchange.worker;
    return out;
  }

  /** Verify a receipt against this network's chain (see the standalone [`verifyReceipt`]). */
  async verifyReceipt(receipt: Receipt, opts: VerifyReceiptOptions = {}): Promise<ReceiptVerdict> {
    const o = { ...opts };
    if (o.evidence?.bindingFromWorker && !o.evidence.encPublicKey) {
      try {
        o.evidence = { ...o.evidence, encPublicKey: await this.workerEncKey(receipt.worker) };
      } catch (e) {
        const v = await verifyReceipt(receipt, { ...o, deployment: this.deployment, chain: this.chain });
        v.checks.push({ name: "binding", ok: false, detail: `worker's X25519 key not available: ${(e as Error).message}` });
        return { ...v, ok: false };
      }
    }
    return verifyReceipt(receipt, { ...o, deployment: this.deployment, chain: this.chain });
  }

  /** The worker's X25519 key as the worker reports it (`/v1/worker/info` at the URL the gateway knows). */
  async workerEncKey(worker: Address): Promise<Uint8Array> {
    const entry = (await (await this.http(`/v1/workers/${worker.toLowerCase()}`)).json()) as { url?: string | null };
    if (!entry.url) throw new PithError("gateway", `the gateway knows no URL for worker ${worker}`);
    const url = `${entry.url.replace(/\/+$/, "")}/v1/worker/info`;
    let info: { address?: string; enc_public_key?: string };
    try {
      const res = await this.fetchFn(url);
      if (!res.ok) throw await gatewayError(res, url);
      info = (await res.json()) as typeof info;
    } catch (e) {
      throw e instanceof PithError ? e : new PithError("gateway", `${url}: ${(e as Error).message}`, { cause: e });
    }
    if (!info.address || getAddress(info.address) !== getAddress(worker) || !info.enc_public_key) {
      throw new PithError("malformed", `${url} does not describe worker ${worker}`);
    }
    const key = fromHex(info.enc_public_key, "enc_public_key");
    if (key.length !== 32) throw new PithError("malformed", "enc_public_key is not 32 bytes");
    return key;
  }

  /** A receipt stored by the gateway, by request hash (verify it before trusting it). */
  async receipt(requestHash: Hex): Promise<Receipt> {
    const res = await this.http(`/v1/receipts/${requestHash}`);
    return parseReceipt(await res.json());
  }

  /** A stake pool's state, read from `StakePools`. */
  async stakePool(operator: Address): Promise<StakePool> {
    const sp = this.deployment.contracts.StakePools;
    const [p, free] = await Promise.all([
      read("StakePools.pool", () => this.chain.readContract({ address: sp, abi: stakePoolsAbi, functionName: "pool", args: [operator] })),
      read("StakePools.freeStake", () => this.chain.readContract({ address: sp, abi: stakePoolsAbi, functionName: "freeStake", args: [operator] })),
    ]);
    return {
      operator: getAddress(operator),
      exists: p.exists,
      commissionBps: p.commissionBps,
      generation: p.generation,
      totalShares: p.totalShares,
      totalStake: p.totalStake,
      lockedStake: p.lockedStake,
      freeStake: free,
      queuedShares: p.queuedShares,
      commission: p.commission,
      slashedInWindow: p.slashedInWindow,
    };
  }

  /**
   * The workers the gateway knows, each with its Registry record read from the chain
   * (authoritative) and the gateway's URL and health (informational).
   */
  async workers(): Promise<WorkerFacts[]> {
    const res = await this.http("/v1/workers");
    const list = (await res.json()) as { address: string; url?: string | null; healthy?: boolean }[];
    if (!Array.isArray(list)) throw new PithError("malformed", "/v1/workers is not a list");
    return Promise.all(
      list.map(async (w) => {
        const f = await workerFacts(this.chain, this.deployment, getAddress(w.address));
        return { ...f, url: w.url ?? null, healthy: w.healthy === true };
      }),
    );
  }

  /** A worker's Registry record. */
  worker(address: Address): Promise<WorkerFacts> {
    return workerFacts(this.chain, this.deployment, address);
  }

  /** A worker's posted evidence (from chain calldata) and its verification. */
  async workerEvidence(address: Address, opts: { devCa?: Uint8Array | string; now?: Date } = {}): Promise<{ evidence: Uint8Array; verdict: EvidenceVerdict; facts: WorkerFacts }> {
    const facts = await this.worker(address);
    const evidence = await postedEvidence(this.chain, this.deployment, address, facts.evidenceHash);
    return { evidence, verdict: await verifyEvidence(evidence, opts), facts };
  }

  /** Oracle helpers for EVM dapps (OracleAnchor). */
  get oracle(): OracleHelpers {
    return new OracleHelpers(this.chain, this.deployment);
  }
}

/** A fulfilled oracle request, as [`OracleHelpers.fulfilment`] reads and checks it. */
export interface OracleFulfilment {
  requestId: bigint;
  worker: Address;
  resultHash: Hex;
  callbackOk: boolean;
  transactionHash: Hex;
  blockNumber: bigint;
  /** The result bytes from the `fulfil` calldata; `null` when it was relayed through a contract. */
  result: Uint8Array | null;
  /** `keccak256(result) == resultHash`. */
  resultOk: boolean;
  /** The signing worker is known to the Registry and not revoked. */
  workerRegistered: boolean;
}

/**
 * OracleAnchor helpers: build the `request` call for the dapp's wallet client (viem
 * `writeContract`), read a request's state and its fulfilment, and check a result against it.
 */
export class OracleHelpers {
  constructor(
    private readonly chain: PublicClient,
    private readonly deployment: Deployment,
  ) {}

  /** Parameters for viem's `walletClient.writeContract` (the fee is PHA: approve OracleAnchor first). */
  requestCall(programId: number | bigint | string, payload: Uint8Array | string, opts: { callbackGasLimit?: number; fee?: bigint } = {}) {
    const data = typeof payload === "string" ? utf8.encode(payload) : payload;
    return {
      address: this.deployment.contracts.OracleAnchor,
      abi: oracleAnchorAbi,
      functionName: "request" as const,
      args: [BigInt(programIdHex(programId)), toHex(data), opts.callbackGasLimit ?? 0, opts.fee ?? 0n] as const,
    };
  }

  /** `OracleAnchor.requestInfo(requestId)`: an open request (zero requester once closed). */
  async requestInfo(requestId: bigint) {
    return read("OracleAnchor.requestInfo", () =>
      this.chain.readContract({ address: this.deployment.contracts.OracleAnchor, abi: oracleAnchorAbi, functionName: "requestInfo", args: [requestId] }),
    );
  }

  /** `OracleAnchor.minFee()` (PHA wei). */
  async minFee(): Promise<bigint> {
    return read("OracleAnchor.minFee", () =>
      this.chain.readContract({ address: this.deployment.contracts.OracleAnchor, abi: oracleAnchorAbi, functionName: "minFee" }),
    );
  }

  /**
   * A request's fulfilment, or `null` while unfulfilled: the `OracleFulfilled` event and the
   * result bytes from the `fulfil` calldata, checked: `keccak256(result)` is the event's
   * `resultHash` (`resultOk`), and the worker that signed is registered in the Registry
   * (`workerRegistered`; OracleAnchor itself accepted it only if it could work).
   */
  async fulfilment(requestId: bigint): Promise<OracleFulfilment | null> {
    const logs = await read("OracleFulfilled logs", () =>
      this.chain.getContractEvents({
        address: this.deployment.contracts.OracleAnchor,
        abi: oracleAnchorAbi,
        eventName: "OracleFulfilled",
        args: { requestId },
        fromBlock: BigInt(this.deployment.deploy_block ?? 0),
        toBlock: "latest",
      }),
    );
    const l = logs.find((x) => x.args.requestId === requestId);
    if (!l) return null;
    const out: OracleFulfilment = {
      requestId,
      worker: l.args.worker!,
      resultHash: l.args.resultHash!,
      callbackOk: l.args.callbackOk!,
      transactionHash: l.transactionHash,
      blockNumber: l.blockNumber,
      result: null,
      resultOk: false,
      workerRegistered: false,
    };
    const tx = await read("fulfil transaction", () => this.chain.getTransaction({ hash: l.transactionHash }));
    try {
      const call = decodeFunctionData({ abi: oracleAnchorAbi, data: tx.input });
      if (call.functionName === "fulfil" && call.args[0] === requestId) out.result = fromHex(call.args[1], "result");
    } catch {
      /* relayed through another contract: the result bytes are not in this calldata */
    }
    out.resultOk = out.result !== null && keccak256(out.result) === out.resultHash.toLowerCase();
    const facts = await workerFacts(this.chain, this.deployment, out.worker);
    out.workerRegistered = facts.operator !== "0x0000000000000000000000000000000000000000" && !facts.revoked;
    return out;
  }

  /** `keccak256(result)`: what `OracleFulfilled.resultHash` must equal for `result`. */
  resultHash(result: Uint8Array | string): Hex {
    return keccak256(typeof result === "string" ? utf8.encode(result) : result);
  }
}

/**
 * Connect to a network through a gateway. With `deployment` given, the gateway is only used
 * for what it serves (keys, invocations, receipts); without it, the manifest is the
 * gateway's `/v1/network`.
 */
export async function connect(opts: ConnectOptions): Promise<PithClient> {
  const fetchFn = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const gateway = opts.gateway.replace(/\/+$/, "");
  let deployment = opts.deployment;
  let rpc = opts.rpcUrl;
  if (!deployment) {
    const url = `${gateway}/v1/network`;
    let res: Response;
    try {
      res = await fetchFn(url);
    } catch (e) {
      throw new PithError("gateway", `${url}: ${(e as Error).message}`, { cause: e });
    }
    if (!res.ok) throw await gatewayError(res, url);
    const info = (await res.json()) as { rpc_url?: string; deployment?: Deployment };
    if (!info.deployment?.contracts?.Registry) throw new PithError("malformed", `${url}: no deployment manifest`);
    deployment = info.deployment;
    rpc ??= info.rpc_url;
  }
  rpc ??= deployment.rpc_url;
  if (!rpc) throw new PithError("invalid_argument", "no rpcUrl and the deployment has no rpc_url");
  const chain = createPublicClient({ transport: http(rpc) });
  const chainId = await read("eth_chainId", () => chain.getChainId());
  if (chainId !== deployment.chain_id) throw new PithError("chain", `RPC is chain ${chainId}, deployment is for chain ${deployment.chain_id}`);
  return new PithClient(gateway, deployment, chain, fetchFn);
}

