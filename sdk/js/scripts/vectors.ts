// The TypeScript half of the cross-language vectors (testdata/vectors/README.md).
//   npm run vectors            rewrite testdata/vectors/ts.json
// test/vectors.test.ts rebuilds the same object and fails when the committed file differs.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { keccak256 } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { encodeRequest, encodeResponse, type PlainRequest } from "../src/bhttp.ts";
import { fromHex, toHex } from "../src/bytes.ts";
import { encapsulateRequest, openRequest, sealResponse } from "../src/ohttp.ts";
import { programKeyTypes, receiptTypes } from "../src/receipt.ts";

export const vectorsDir = join(dirname(fileURLToPath(import.meta.url)), "../../../testdata/vectors");

export function readVectors(name: "rust.json" | "ts.json"): Record<string, any> {
  return JSON.parse(readFileSync(join(vectorsDir, name), "utf8"));
}

const fill = (b: number, n: number) => toHex(new Uint8Array(n).fill(b));

/** Build ts.json from rust.json (the key configuration both sides use). */
export async function makeTsVectors(rust: Record<string, any>): Promise<Record<string, unknown>> {
  const ohttpKeys = fromHex(rust.ohttp_keys);
  const req: PlainRequest = {
    method: "PUT",
    path: "/from/typescript?y=2",
    headers: [
      ["content-type", "text/plain; charset=utf-8"],
      ["x-vector", "ts→rust ✓"],
    ],
    body: new TextEncoder().encode("made by @pith/sdk"),
    nonce: fromHex(fill(0x44, 16)),
    expiry: 1_800_000_100,
  };
  const bhttp = encodeRequest(req);
  // A fixed ephemeral key only so that the file is reproducible; never for real requests.
  const { wire } = await encapsulateRequest(ohttpKeys, bhttp, { dangerFixedEphemeralIkm: fromHex(fill(0x55, 32)) });
  const response = { status: 202, headers: [["x-from", "sdk"]] as [string, string][], body: new TextEncoder().encode("accepted") };
  const resBhttp = encodeResponse(response);
  const opened = await openRequest(fromHex(rust.encryption_ikm), rust.key_id, wire);
  const resWire = sealResponse(opened, resBhttp, fromHex(fill(0x66, 16)));

  const worker = privateKeyToAccount(fill(0x0a, 32));
  const registry = "0x4242424242424242424242424242424242424242" as const;
  const domain = (name: string) => ({ name, version: "1", chainId: 31337n, verifyingContract: registry });
  const message = {
    programId: rust.program_id,
    codeHash: fill(0x0d, 32),
    requestHash: keccak256(bhttp),
    responseHash: keccak256(resBhttp),
    modelHash: fill(0, 32),
    worker: worker.address,
    timestamp: 1_800_000_101n,
    cpuMicros: 42n,
    wallMicros: 4_200n,
    memoryBytes: 1_048_576n,
    egressBytes: 0n,
  } as const;
  const receiptSig = await worker.signTypedData({ domain: domain("Pith Receipt"), types: receiptTypes, primaryType: "Receipt", message });
  const kms = privateKeyToAccount(fill(0x0b, 32));
  const cert = {
    programId: rust.program_id,
    epoch: rust.epoch,
    keyConfigHash: keccak256(ohttpKeys),
    programAddress: rust.program_address,
    notAfter: 1_900_000_000n,
  };
  const certSig = await kms.signTypedData({ domain: domain("Pith KMS"), types: programKeyTypes, primaryType: "ProgramKey", message: cert });
  const { hashTypedData } = await import("viem");
  return {
    ohttp_keys: rust.ohttp_keys,
    request: {
      method: req.method,
      path: req.path,
      headers: req.headers,
      body: toHex(req.body),
      nonce: toHex(req.nonce),
      expiry: req.expiry,
    },
    request_bhttp: toHex(bhttp),
    request_hash: keccak256(bhttp),
    ephemeral_ikm: fill(0x55, 32),
    request_wire: toHex(wire),
    response: { status: response.status, headers: response.headers, body: toHex(response.body) },
    response_bhttp: toHex(resBhttp),
    response_nonce: fill(0x66, 16),
    response_wire: toHex(resWire),
    receipt: {
      chainId: 31337,
      verifyingContract: registry,
      programId: message.programId,
      codeHash: message.codeHash,
      requestHash: message.requestHash,
      responseHash: message.responseHash,
      modelHash: message.modelHash,
      worker: worker.address.toLowerCase(),
      timestamp: Number(message.timestamp),
      cpuMicros: Number(message.cpuMicros),
      wallMicros: Number(message.wallMicros),
      memoryBytes: Number(message.memoryBytes),
      egressBytes: Number(message.egressBytes),
      signature: receiptSig,
    },
    receipt_worker: worker.address.toLowerCase(),
    receipt_signing_hash: hashTypedData({ domain: domain("Pith Receipt"), types: receiptTypes, primaryType: "Receipt", message }),
    key_certificate: {
      chainId: 31337,
      verifyingContract: registry,
      programId: cert.programId,
      epoch: cert.epoch,
      keyConfigHash: cert.keyConfigHash,
      programAddress: cert.programAddress,
      notAfter: Number(cert.notAfter),
      kms: kms.address.toLowerCase(),
      signature: certSig,
    },
    kms: kms.address.toLowerCase(),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = await makeTsVectors(readVectors("rust.json"));
  writeFileSync(join(vectorsDir, "ts.json"), JSON.stringify(out, null, 2) + "\n");
  console.log(`wrote ${join(vectorsDir, "ts.json")}`);
}
