//! The OpenAPI 3.1 document served at `/openapi.json`, written as data. A test checks that
//! every route of the router appears in it with its method.

use serde_json::{Value, json};

fn err(desc: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
}

fn ok_json(desc: &str, schema: Value) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": schema}}})
}

fn ok_bytes(desc: &str, media: &str) -> Value {
    json!({"description": desc, "content": {media: {"schema": {"type": "string", "contentEncoding": "binary"}}}})
}

fn path_param(name: &str, desc: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": desc, "schema": {"type": "string"}})
}

fn program_id() -> Value {
    path_param(
        "id",
        "Program id: 0x + 64 hex digits (uint256 as 32 bytes), or a decimal number",
    )
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn hex(desc: &str) -> Value {
    json!({"type": "string", "pattern": "^0x[0-9a-f]*$", "description": desc})
}

fn limit_param(default: u64, max: u64) -> Value {
    json!({"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": max, "default": default}})
}

fn dec(desc: &str) -> Value {
    json!({"type": "string", "pattern": "^[0-9]+$", "description": desc})
}

fn explorer_schemas() -> Value {
    json!({
        "ExplorerOverview": {
            "type": "object",
            "required": ["chain_id", "rpc_url", "block", "deploy_block", "contracts", "workers", "programs", "receipts", "total_stake", "kms_members", "dev_ca", "version"],
            "properties": {
                "chain_id": {"type": "integer"}, "rpc_url": {"type": "string"}, "block": {"type": "integer"}, "deploy_block": {"type": "integer"},
                "contracts": {"type": "object", "additionalProperties": hex("address")},
                "workers": {"type": "object", "properties": {"known": {"type": "integer"}, "active": {"type": "integer"}, "healthy": {"type": "integer"}}},
                "programs": {"type": "integer"}, "receipts": {"type": "integer"}, "total_stake": dec("PHA wei"),
                "kms_members": {"type": "array", "items": hex("address")}, "dev_ca": {"type": "boolean"}, "version": {"type": "string"}}
        },
        "ExplorerWorker": {
            "allOf": [r("WorkerEntry"), {"type": "object", "required": ["revoked", "uptime"], "properties": {
                "tcb_status_name": {"type": ["string", "null"]}, "registered_at": {"type": ["integer", "null"], "description": "unix seconds"},
                "revoked": {"type": "boolean"},
                "uptime": {"type": "object", "description": "health checks by this gateway since it started", "properties": {
                    "checks": {"type": "integer"}, "passed": {"type": "integer"},
                    "first_check": {"type": ["integer", "null"]}, "up_since": {"type": ["integer", "null"]}}}}}]
        },
        "ExplorerAttestation": {
            "type": "object",
            "required": ["worker", "platform", "platform_id", "evidence", "evidence_hash", "measurement_hash", "tcb_status", "chain_id", "registry"],
            "properties": {
                "worker": hex("address"), "platform": {"type": "string"}, "platform_id": {"type": "integer"},
                "evidence": hex("the posted evidence bytes"), "evidence_hash": hex("registered keccak256(evidence)"),
                "measurement_hash": hex("registered"), "tcb_status": {"type": "integer"},
                "dev_ca_pem": {"type": ["string", "null"], "description": "the network's development CA (simulated evidence)"},
                "enc_public_key": {"oneOf": [hex("the worker's X25519 key as it reports it (checked by the report_data binding)"), {"type": "null"}]},
                "chain_id": {"type": "integer"}, "registry": hex("address")}
        },
        "ExplorerProgramPage": {
            "type": "object", "required": ["total", "programs"],
            "properties": {"total": {"type": "integer"}, "programs": {"type": "array", "items": {"type": "object",
                "required": ["program_id", "id", "owner", "code_hash", "deposit", "calls", "versions"],
                "properties": {
                    "program_id": hex("bytes32"), "id": dec("program id"), "owner": hex("address"), "code_hash": hex("sha256"),
                    "deposit": dec("PHA wei"), "calls": {"type": "integer", "description": "receipts stored by this gateway"},
                    "versions": {"type": "array", "items": {"type": "object", "properties": {
                        "kind": {"type": "string", "enum": ["registered", "upgraded"]}, "code_hash": hex("sha256"),
                        "block": {"type": "integer"}, "tx": {"oneOf": [hex("transaction hash"), {"type": "null"}]}}}}}}}}
        },
        "ExplorerPool": {
            "type": "object", "required": ["operator", "commission_bps", "total_stake", "locked_stake", "total_shares", "queued_shares", "workers"],
            "properties": {
                "operator": hex("address"), "commission_bps": {"type": "integer"}, "total_stake": dec("PHA wei"),
                "locked_stake": dec("PHA wei"), "total_shares": dec("shares"), "queued_shares": dec("shares"),
                "workers": {"type": "array", "items": hex("address")}}
        },
        "ExplorerProposal": {
            "type": "object", "required": ["id", "proposer", "description", "state", "vote_start", "vote_end", "votes", "actions", "block"],
            "properties": {
                "id": dec("proposal id"), "proposer": hex("address"), "description": {"type": "string"},
                "state": {"type": "string", "enum": ["pending", "active", "canceled", "defeated", "succeeded", "queued", "expired", "executed"]},
                "vote_start": dec("block"), "vote_end": dec("block"),
                "votes": {"type": "object", "properties": {"for": dec("votes"), "against": dec("votes"), "abstain": dec("votes")}},
                "actions": {"type": "integer"}, "block": {"type": "integer"}}
        },
        "ExplorerCallSeries": {
            "type": "object", "required": ["bucket_seconds", "start", "counts", "scanned", "truncated"],
            "properties": {
                "bucket_seconds": {"type": "integer"}, "start": {"type": "integer", "description": "unix seconds"},
                "counts": {"type": "array", "items": {"type": "integer"}}, "scanned": {"type": "integer"}, "truncated": {"type": "boolean"}}
        },
        "ExplorerVerifyRequest": {
            "type": "object", "required": ["evidence"],
            "properties": {"platform": {"type": ["string", "null"], "description": "text id; detected when absent"}, "evidence": hex("evidence bytes")}
        },
        "ExplorerVerdict": {
            "type": "object", "required": ["ok", "verified_by", "at"],
            "properties": {
                "ok": {"type": "boolean"}, "platform": {"type": ["string", "null"]}, "verified_by": {"type": "string", "enum": ["gateway"]},
                "measurement_hash": {"oneOf": [hex("bytes32"), {"type": "null"}]}, "report_data": {"oneOf": [hex("64 bytes"), {"type": "null"}]},
                "tcb_status": {"type": ["string", "null"]},
                "error": {"oneOf": [{"type": "object", "properties": {"class": {"type": "string"}, "message": {"type": "string"}}}, {"type": "null"}]},
                "at": {"type": "integer"}}
        }
    })
}

fn schemas() -> Value {
    let mut s = base_schemas();
    if let (Some(base), Value::Object(more)) = (s.as_object_mut(), explorer_schemas()) {
        base.extend(more);
    }
    s
}

fn base_schemas() -> Value {
    json!({
        "ErrorBody": {
            "type": "object", "required": ["error"],
            "properties": {"error": {"type": "object", "required": ["kind", "message"], "properties": {
                "kind": {"type": "string", "enum": ["bad_request", "unauthorized", "evidence_invalid", "policy_rejected",
                    "decrypt_failed", "expired", "replay", "unknown_program", "code_mismatch", "not_found", "too_large",
                    "rate_limited", "no_worker", "draining", "unavailable", "storage_integrity", "internal"]},
                "message": {"type": "string"}}}}
        },
        "NetworkInfo": {
            "type": "object", "required": ["chain_id", "rpc_url", "deployment", "kms", "version"],
            "properties": {
                "chain_id": {"type": "integer"}, "rpc_url": {"type": "string"},
                "deployment": {"type": "object", "description": "deployment.json as written by pith-chain"},
                "kms": {"type": "array", "items": r("Endpoint")}, "version": {"type": "string"}}
        },
        "Endpoint": {"type": "object", "required": ["address", "url"], "properties": {"address": hex("address"), "url": {"type": "string"}}},
        "CodeUploaded": {"type": "object", "required": ["code_hash", "size"], "properties": {"code_hash": hex("sha256 of the code"), "size": {"type": "integer"}}},
        "ProgramConfig": {
            "type": "object",
            "properties": {
                "memory_mib": {"type": "integer"}, "cpu_millis": {"type": "integer"}, "wall_millis": {"type": "integer"},
                "egress_count": {"type": "integer"}, "egress_bytes": {"type": "integer"}, "output_bytes": {"type": "integer"},
                "platform_mask": {"type": "string", "description": "uint256 as a decimal string"},
                "egress_allow_list_hash": hex("bytes32")}
        },
        "KeyCertificate": {
            "type": "object", "description": "EIP-712 ProgramKey statement of a KMS (docs/protocol.md)",
            "required": ["chainId", "verifyingContract", "programId", "epoch", "keyConfigHash", "notAfter", "kms", "signature"],
            "properties": {
                "chainId": {"type": "integer"}, "verifyingContract": hex("Registry"), "programId": hex("bytes32"),
                "epoch": {"type": "integer"}, "keyConfigHash": hex("keccak256 of the application/ohttp-keys body"),
                "notAfter": {"type": "integer"}, "kms": hex("KMS address"), "signature": hex("65 bytes")}
        },
        "ProgramKeyInfo": {
            "type": "object", "required": ["program_id", "ohttp_keys", "certificate"],
            "properties": {"program_id": hex("bytes32"), "ohttp_keys": hex("application/ohttp-keys body"), "certificate": r("KeyCertificate")}
        },
        "ProgramEntry": {
            "type": "object", "required": ["program_id", "owner", "code_hash", "config", "deposit", "calls"],
            "properties": {
                "program_id": hex("bytes32"), "owner": hex("address"), "code_hash": hex("sha256 of the code"),
                "config": r("ProgramConfig"), "key": {"oneOf": [r("ProgramKeyInfo"), {"type": "null"}]},
                "deposit": {"type": "string", "description": "PHA wei, decimal"}, "calls": {"type": "integer"},
                "address": {"oneOf": [hex("address"), {"type": "null"}]}}
        },
        "Announce": {
            "type": "object", "required": ["worker", "url", "timestamp", "signature"],
            "properties": {
                "worker": hex("worker address"), "url": {"type": "string"}, "timestamp": {"type": "integer"},
                "signature": hex("65 bytes over message_digest(\"pith/v1/worker-announce\", [worker, url], timestamp)")}
        },
        "WorkerEntry": {
            "type": "object",
            "required": ["address", "operator", "platform", "platform_id", "measurement_hash", "tcb_status", "evidence_hash",
                "registered", "healthy", "expiry", "stake", "calls"],
            "properties": {
                "address": hex("address"), "url": {"type": ["string", "null"]}, "operator": hex("address"),
                "platform": {"type": "string"}, "platform_id": {"type": "integer"}, "measurement_hash": hex("bytes32"),
                "tcb_status": {"type": "integer"}, "evidence_hash": hex("keccak256 of the registered evidence"),
                "registered": {"type": "boolean"}, "healthy": {"type": "boolean"}, "expiry": {"type": "integer"},
                "registered_block": {"type": ["integer", "null"]}, "last_seen": {"type": ["integer", "null"]},
                "stake": {"type": "string", "description": "PHA wei, decimal"}, "calls": {"type": "integer"}}
        },
        "SignedReceipt": {
            "type": "object", "description": "EIP-712 Receipt signed by the worker (docs/protocol.md, Receipts)",
            "required": ["chainId", "verifyingContract", "programId", "codeHash", "requestHash", "responseHash", "modelHash",
                "worker", "timestamp", "cpuMicros", "wallMicros", "memoryBytes", "egressBytes", "signature"],
            "properties": {
                "chainId": {"type": "integer"}, "verifyingContract": hex("Registry"), "programId": hex("bytes32"),
                "codeHash": hex("bytes32"), "requestHash": hex("keccak256 of the Binary HTTP request"),
                "responseHash": hex("keccak256 of the Binary HTTP response"), "modelHash": hex("bytes32"),
                "worker": hex("address"), "timestamp": {"type": "integer"}, "cpuMicros": {"type": "integer"},
                "wallMicros": {"type": "integer"}, "memoryBytes": {"type": "integer"}, "egressBytes": {"type": "integer"},
                "signature": hex("65 bytes")}
        },
        "ProgramLogs": {
            "type": "object", "required": ["program_id", "entries"],
            "properties": {"program_id": hex("bytes32"), "entries": {"type": "array", "items": {"type": "object",
                "required": ["time_ms", "level", "message", "worker"],
                "properties": {"time_ms": {"type": "integer"}, "level": {"type": "string"}, "message": {"type": "string"}, "worker": hex("address")}}}}
        }
    })
}

/// The explorer's routes (`crate::explorer`), merged into the document's paths.
fn explorer_paths() -> Value {
    let rate = err("Over the per-IP rate limit (rate_limited)");
    json!({
            "/explorer/": {"get": {"operationId": "explorerPage", "summary": "The network explorer (HTML; assets embedded in the gateway; Content-Security-Policy: self and the chain RPC only)",
                "responses": {"200": ok_bytes("page", "text/html"), "429": rate}}},
            "/explorer": {"get": {"operationId": "explorerRedirect", "summary": "Redirects to /explorer/",
                "responses": {"308": {"description": "Location: /explorer/"}}}},
            "/explorer/assets/{file}": {"get": {"operationId": "explorerAsset", "summary": "A built asset of the explorer (app.js, app.css)",
                "parameters": [path_param("file", "app.js or app.css")],
                "responses": {"200": ok_bytes("asset", "text/javascript"), "404": err("no such asset"), "429": rate}}},
            "/explorer/api/overview": {"get": {"operationId": "explorerOverview", "summary": "Chain, contracts, counts of workers/programs/receipts, total stake, KMS committee",
                "responses": {"200": ok_json("overview", r("ExplorerOverview")), "503": err("chain unavailable"), "429": rate}}},
            "/explorer/api/workers": {"get": {"operationId": "explorerWorkers", "summary": "Workers with TCB status name, registration time, revocation and health history",
                "responses": {"200": ok_json("workers", json!({"type": "array", "items": r("ExplorerWorker")})), "429": rate}}},
            "/explorer/api/workers/{address}/attestation": {"get": {"operationId": "explorerAttestation",
                "summary": "A worker's registered evidence (0x-hex, from the registerWorker calldata, keccak-checked), its registered facts and the development CA for simulated evidence",
                "parameters": [path_param("address", "worker address, 0x-hex")],
                "responses": {"200": ok_json("attestation", r("ExplorerAttestation")), "400": err("bad address"), "404": err("never registered / evidence not found"), "503": err("chain unavailable"), "429": rate}}},
            "/explorer/api/workers/{address}/collateral": {"get": {"operationId": "explorerCollateral",
                "summary": "The Intel collateral (PCS files: TCB info, QE identity and their signing chain as text, CRLs as 0x-hex DER) for a worker's registered SGX/TDX evidence, from the gateway's collateral source; Intel signs it, the gateway is not trusted for it",
                "parameters": [path_param("address", "worker address, 0x-hex")],
                "responses": {"200": ok_json("collateral", json!({"type": "object"})), "400": err("bad address"), "404": err("never registered / not an Intel quote / no collateral"), "503": err("chain unavailable"), "429": rate}}},
            "/explorer/api/programs": {"get": {"operationId": "explorerPrograms", "summary": "Programs newest first with code history and stored call counts",
                "parameters": [limit_param(50, 200), {"name": "offset", "in": "query", "required": false, "description": "skip this many of the newest", "schema": {"type": "integer", "minimum": 0}}],
                "responses": {"200": ok_json("programs", r("ExplorerProgramPage")), "400": err("bad limit/offset"), "503": err("chain unavailable"), "429": rate}}},
            "/explorer/api/receipts": {"get": {"operationId": "explorerReceipts", "summary": "Stored receipts, newest first (signatures checked as on /v1/receipts)",
                "parameters": [limit_param(50, 500), {"name": "program", "in": "query", "required": false, "schema": {"type": "string"}}],
                "responses": {"200": ok_json("receipts", json!({"type": "array", "items": r("SignedReceipt")})), "400": err("bad limit/program"), "429": rate}}},
            "/explorer/api/pools": {"get": {"operationId": "explorerPools", "summary": "Stake pools (from PoolCreated events), largest stake first, at most 200",
                "responses": {"200": ok_json("pools", json!({"type": "array", "items": r("ExplorerPool")})), "503": err("chain unavailable"), "429": rate}}},
            "/explorer/api/proposals": {"get": {"operationId": "explorerProposals", "summary": "Governance proposals (ProposalCreated events) newest first with state and votes",
                "parameters": [limit_param(50, 200)],
                "responses": {"200": ok_json("proposals", json!({"type": "array", "items": r("ExplorerProposal")})), "400": err("bad limit"), "503": err("chain unavailable"), "429": rate}}},
            "/explorer/api/calls": {"get": {"operationId": "explorerCalls", "summary": "Calls over time: stored receipts counted per bucket by receipt timestamp",
                "parameters": [
                    {"name": "bucket", "in": "query", "required": false, "description": "bucket width, seconds", "schema": {"type": "integer", "minimum": 1, "maximum": 86400, "default": 60}},
                    {"name": "buckets", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 60}},
                    {"name": "program", "in": "query", "required": false, "schema": {"type": "string"}}],
                "responses": {"200": ok_json("series", r("ExplorerCallSeries")), "400": err("bad bucket/buckets/program"), "429": rate}}},
            "/explorer/api/verify-evidence": {"post": {"operationId": "explorerVerifyEvidence",
                "summary": "Verify evidence with pith-attest at the gateway (for evidence the browser cannot check); 200 with a verdict for valid and invalid evidence alike",
                "requestBody": {"required": true, "content": {"application/json": {"schema": r("ExplorerVerifyRequest")}}},
                "responses": {"200": ok_json("verdict", r("ExplorerVerdict")), "400": err("bad JSON, hex or platform"), "413": err("evidence over 128 KiB"), "429": rate}}}
    })
}

/// The document.
pub fn document() -> Value {
    let mut doc = base_document();
    if let (Some(paths), Value::Object(more)) = (
        doc.get_mut("paths").and_then(Value::as_object_mut),
        explorer_paths(),
    ) {
        paths.extend(more);
    }
    doc
}

fn base_document() -> Value {
    let rate = err("Over the per-IP rate limit (rate_limited)");
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Pith gateway",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Public API of a Pith network: programs with KMS-certified keys, encrypted invocation (RFC 9458 Oblivious HTTP) routed to attested workers, receipts, workers and their evidence. Every error is an ErrorBody."
        },
        "paths": {
            "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document", "responses": {"200": ok_json("OpenAPI 3.1", json!({"type": "object"}))}}},
            "/metrics": {"get": {"operationId": "metrics", "summary": "Prometheus metrics (text exposition format)", "responses": {"200": ok_bytes("metrics", "text/plain")}}},
            "/v1/health": {"get": {"operationId": "health", "summary": "Liveness", "responses": {"200": ok_json("alive", json!({"type": "object", "properties": {"ok": {"type": "boolean"}}}))}}},
            "/v1/network": {"get": {"operationId": "network", "summary": "Chain, deployment and KMS nodes", "responses": {"200": ok_json("network", r("NetworkInfo")), "429": rate}}},
            "/v1/code": {"post": {
                "operationId": "uploadCode", "summary": "Upload program code; content-addressed by sha256",
                "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "contentEncoding": "binary"}}}},
                "responses": {"201": ok_json("stored", r("CodeUploaded")), "400": err("empty body"), "413": err("over the code size limit"), "429": rate}}},
            "/v1/code/{hash}": {"get": {
                "operationId": "getCode", "summary": "Code by sha256 (the reader checks the hash)",
                "parameters": [path_param("hash", "sha256 of the code, 0x-hex")],
                "responses": {"200": ok_bytes("code", "application/octet-stream"), "400": err("bad hash"), "404": err("unknown"), "429": rate}}},
            "/v1/programs": {"get": {"operationId": "listPrograms", "summary": "Programs on chain (newest 500)",
                "responses": {"200": ok_json("programs", json!({"type": "array", "items": r("ProgramEntry")})), "503": err("chain unavailable"), "429": rate}}},
            "/v1/programs/{id}": {"get": {"operationId": "getProgram", "summary": "A program with its certified key",
                "parameters": [program_id()],
                "responses": {"200": ok_json("program", r("ProgramEntry")), "400": err("bad id"), "404": err("unknown_program"), "503": err("chain unavailable"), "429": rate}}},
            "/v1/programs/{id}/ohttp-keys": {"get": {"operationId": "getOhttpKeys",
                "summary": "The program's RFC 9458 key configuration; header pith-key-certificate = base64url(KeyCertificate JSON)",
                "parameters": [program_id()],
                "responses": {
                    "200": {"description": "key configuration list",
                        "headers": {"pith-key-certificate": {"description": "base64url (no padding) of the KeyCertificate JSON", "schema": {"type": "string"}}},
                        "content": {"application/ohttp-keys": {"schema": {"type": "string", "contentEncoding": "binary"}}}},
                    "404": err("unknown_program"), "503": err("no KMS served a key that checks"), "429": rate}}},
            "/v1/programs/{id}/invoke": {"post": {"operationId": "invoke",
                "summary": "Encrypted invocation, routed to one healthy registered worker; retried elsewhere only when never delivered",
                "parameters": [program_id()],
                "requestBody": {"required": true, "content": {"message/ohttp-req": {"schema": {"type": "string", "contentEncoding": "binary"}}}},
                "responses": {
                    "200": {"description": "encapsulated response",
                        "headers": {
                            "pith-receipt": {"description": "base64url (no padding) of the SignedReceipt JSON", "schema": {"type": "string"}},
                            "pith-worker": {"description": "address of the worker that ran it", "schema": {"type": "string"}}},
                        "content": {"message/ohttp-res": {"schema": {"type": "string", "contentEncoding": "binary"}}}},
                    "400": err("decrypt_failed / expired (from the worker)"), "404": err("unknown_program (from the worker)"),
                    "409": err("replay (from the worker)"), "413": err("body over the limit"), "429": rate,
                    "503": err("no_worker, or unavailable when a worker failed after delivery")}}},
            "/v1/programs/{id}/triggers": {
                "put": {"operationId": "putTriggers", "summary": "Store an agent's owner-signed triggers (cron and on-chain events; pith_api::agent::SignedTriggers)",
                    "parameters": [program_id()],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": {"204": {"description": "stored"}, "400": err("bad_request"), "401": err("unauthorized: not signed by the owner"), "404": err("unknown_program"), "409": err("replay: not a newer version"), "429": rate}},
                "get": {"operationId": "getTriggers", "summary": "A program's newest signed triggers",
                    "parameters": [program_id()],
                    "responses": {"200": ok_json("SignedTriggers", json!({"type": "object"})), "404": err("not_found"), "429": rate}}},
            "/v1/agents": {
                "get": {"operationId": "listAgents", "summary": "Every program's newest signed triggers (workers verify the owner signatures)",
                    "responses": {"200": ok_json("[SignedTriggers]", json!({"type": "array"})), "429": rate}}},
            "/v1/programs/{id}/secrets": {
                "put": {"operationId": "putSecrets", "summary": "Store an encrypted secrets upload (opaque to the gateway)",
                    "parameters": [program_id()],
                    "requestBody": {"required": true, "content": {"message/ohttp-req": {"schema": {"type": "string", "contentEncoding": "binary"}}}},
                    "responses": {"204": {"description": "stored"}, "404": err("unknown_program"), "413": err("over the limit"), "429": rate}},
                "get": {"operationId": "getSecrets", "summary": "The latest encrypted secrets upload",
                    "parameters": [program_id()],
                    "responses": {"200": ok_bytes("upload", "message/ohttp-req"), "404": err("none"), "429": rate}}},
            "/v1/programs/{id}/logs": {"get": {"operationId": "getLogs", "summary": "A program's recent logs from every healthy worker (owner only)",
                "parameters": [program_id(),
                    {"name": "timestamp", "in": "query", "required": true, "schema": {"type": "integer"}},
                    {"name": "signature", "in": "query", "required": true, "description": "owner's 65-byte signature over message_digest(\"pith/v1/program-logs\", [program_id], timestamp), 0x-hex", "schema": {"type": "string"}}],
                "responses": {"200": ok_json("logs", r("ProgramLogs")), "400": err("expired / malformed"), "401": err("not the owner"), "404": err("unknown_program"), "429": rate}}},
            "/v1/workers": {"get": {"operationId": "listWorkers", "summary": "Workers from the chain and announcements, with health",
                "responses": {"200": ok_json("workers", json!({"type": "array", "items": r("WorkerEntry")})), "429": rate}}},
            "/v1/workers/announce": {"post": {"operationId": "announce", "summary": "A worker announces its URL (signed heartbeat)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": r("Announce")}}},
                "responses": {"204": {"description": "accepted"}, "400": err("bad body / expired"), "401": err("bad signature"),
                    "403": err("policy_rejected: not active in the Registry"), "409": err("older than the last announcement"), "429": rate}}},
            "/v1/workers/{address}": {"get": {"operationId": "getWorker", "summary": "One worker",
                "parameters": [path_param("address", "worker address, 0x-hex")],
                "responses": {"200": ok_json("worker", r("WorkerEntry")), "400": err("bad address"), "404": err("unknown"), "429": rate}}},
            "/v1/workers/{address}/evidence": {"get": {"operationId": "getWorkerEvidence",
                "summary": "The worker's registered evidence, read from the registerWorker calldata and checked against the registered keccak256",
                "parameters": [path_param("address", "worker address, 0x-hex")],
                "responses": {"200": ok_bytes("evidence", "application/octet-stream"), "404": err("never registered / not found"), "503": err("chain unavailable"), "429": rate}}},
            "/v1/receipts": {"get": {"operationId": "listReceipts", "summary": "Stored receipts, newest first",
                "parameters": [
                    {"name": "program", "in": "query", "required": false, "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "maximum": 1000, "default": 100}}],
                "responses": {"200": ok_json("receipts", json!({"type": "array", "items": r("SignedReceipt")})), "429": rate}}},
            "/v1/receipts/{hash}": {"get": {"operationId": "getReceipt", "summary": "The receipt of a request (keccak256 of its Binary HTTP)",
                "parameters": [path_param("hash", "request hash, 0x-hex")],
                "responses": {"200": ok_json("receipt", r("SignedReceipt")), "404": err("unknown"), "429": rate}}}
        },
        "components": {"schemas": schemas()}
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let doc = super::document();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap_or_else(|| panic!("paths"));
        let mut documented = 0;
        for (method, path) in crate::routes::ROUTES {
            assert!(
                paths.get(*path).and_then(|p| p.get(*method)).is_some(),
                "{method} {path} missing from the OpenAPI document"
            );
        }
        for (path, item) in paths {
            for method in item.as_object().unwrap_or_else(|| panic!("item")).keys() {
                documented += 1;
                assert!(
                    crate::routes::ROUTES
                        .iter()
                        .any(|(m, p)| m == method && p == path),
                    "{method} {path} documented but not routed"
                );
            }
        }
        assert_eq!(documented, crate::routes::ROUTES.len());
        // Every $ref resolves.
        let text = doc.to_string();
        for piece in text.split("#/components/schemas/").skip(1) {
            let name: String = piece
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            assert!(
                doc["components"]["schemas"].get(&name).is_some(),
                "dangling $ref {name}"
            );
        }
    }
}
