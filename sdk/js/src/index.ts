/**
 * `@pith/sdk`: the TypeScript client of Pith.
 *
 * ```ts
 * import { connect } from "@pith/sdk";
 * const pith = await connect({ gateway: "http://127.0.0.1:8700" });
 * const { response, verification } = await pith.call(1, { path: "/?name=you" });
 * console.log(response.text(), verification.ok);
 * ```
 */
export {
  connect,
  verifyReceipt,
  PithClient,
  OracleHelpers,
  postedEvidence,
  workerFacts,
  programIdHex,
  workerReportData,
  boundModelHash,
  modelCheck,
  type EvidenceCheckOptions,
  REQUEST_TTL_SECS,
  type CallRequest,
  type CallResponse,
  type Check,
  type ConnectOptions,
  type OracleFulfilment,
  type Deployment,
  type Exchange,
  type Program,
  type ReceiptVerdict,
  type StakePool,
  type VerifyReceiptContext,
  type VerifyReceiptOptions,
  type WorkerFacts,
} from "./client.ts";
export { verifyEvidence, measurementHash, detectPlatform, type EvidenceVerdict, type VerifyEvidenceOptions } from "./evidence.ts";
export {
  parseReceipt,
  parseKeyCertificate,
  receiptHash,
  keyCertificateHash,
  recoverSigner,
  verifyReceiptSignature,
  verifyKeyCertificateSignature,
  receiptTypes,
  programKeyTypes,
  type Receipt,
  type KeyCertificate,
} from "./receipt.ts";
export { encodeRequest, decodeResponse, type PlainRequest, type PlainResponse } from "./bhttp.ts";
export { encapsulateRequest, parseKeyConfigs, ClientSession, type KeyConfig } from "./ohttp.ts";
export { PithError, type PithErrorKind } from "./errors.ts";
export { registryAbi, programsAbi, stakePoolsAbi, oracleAnchorAbi } from "./abi.ts";
export type { Hex } from "./bytes.ts";
