//! Host traits: everything a program reaches outside the sandbox goes through one of
//! these. The worker wires real implementations; `pith run` and the tests wire the local
//! ones in this module and [`crate::egress::HttpEgress`].

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use k256::ecdsa::SigningKey;
use sha2::{Digest as _, Sha256};

/// A boxed, sendable future (host traits are object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Who is calling: every host call is scoped to one program.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProgramRef {
    /// Program id (on chain: `0x`-hex; locally: any string).
    pub id: String,
    /// SHA-256 of the program's source.
    pub code_hash: [u8; 32],
}

/// An error from a host service, surfaced to the program as a rejected promise.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The service is not available in this host (for example no chain configured).
    #[error("{0} is not available in this host")]
    Unavailable(&'static str),
    /// The program asked for something invalid (bad key path, bad typed data, ...).
    #[error("{0}")]
    Invalid(String),
    /// The service failed.
    #[error("{0}")]
    Failed(String),
}

// ------------------------------------------------------------------------- egress

/// An outgoing HTTP request as the program made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Method, e.g. `GET`.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Header pairs (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body bytes (empty for none).
    pub body: Vec<u8>,
    /// Follow redirects (`true`) or return them (`false`, the program's `redirect: "manual"`).
    pub follow_redirects: bool,
}

/// A response returned to the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub status_text: String,
    /// Header pairs (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Final URL after redirects.
    pub url: String,
    /// Whether a redirect was followed.
    pub redirected: bool,
    /// Requests made, counting each redirect hop.
    pub requests: u64,
    /// Bytes sent plus received.
    pub bytes: u64,
}

/// Per-program egress policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    /// Allowed destinations, `host` or `host:port`. A host listed here may be reached
    /// even when it resolves to a private or loopback address (explicit allow).
    pub allow_hosts: Vec<String>,
}

/// Budget left for one fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EgressBudget {
    /// Requests left (each redirect hop takes one).
    pub requests: u64,
    /// Bytes left (sent plus received).
    pub bytes: u64,
}

/// Why an outgoing request did not produce a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// Refused by policy (allow-list, private address, scheme).
    #[error("{message}")]
    Denied {
        /// Why.
        message: String,
        /// Requests made before the refusal (redirect hops).
        requests: u64,
        /// Bytes moved before the refusal.
        bytes: u64,
    },
    /// The request or byte budget ran out.
    #[error("{0}")]
    Limit(String),
    /// Network failure, timeout, bad response.
    #[error("{0}")]
    Failed(String),
}

/// HTTP egress. Implementations must enforce the policy and the budget.
pub trait Egress: Send + Sync {
    /// Perform one fetch (following redirects when asked, re-checking each hop).
    fn fetch<'a>(
        &'a self,
        policy: &'a EgressPolicy,
        request: HttpRequest,
        budget: EgressBudget,
    ) -> BoxFuture<'a, Result<HttpResponse, EgressError>>;
}

// ------------------------------------------------------------------------- kv

/// One page of a key listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvPage {
    /// Keys in lexicographic byte order.
    pub keys: Vec<String>,
    /// Cursor for the next page; empty when complete.
    pub cursor: String,
}

/// A per-program key-value store. Implementations keep programs apart by `program.id`.
pub trait KvStore: Send + Sync {
    /// Value of `key`, if any.
    fn get<'a>(
        &'a self,
        program: &'a ProgramRef,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, HostError>>;
    /// Store `value` under `key`.
    fn put<'a>(
        &'a self,
        program: &'a ProgramRef,
        key: &'a str,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), HostError>>;
    /// Remove `key`.
    fn delete<'a>(
        &'a self,
        program: &'a ProgramRef,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(), HostError>>;
    /// Keys starting with `prefix`, after `cursor` (exclusive), at most `limit`.
    fn list<'a>(
        &'a self,
        program: &'a ProgramRef,
        prefix: &'a str,
        limit: usize,
        cursor: &'a str,
    ) -> BoxFuture<'a, Result<KvPage, HostError>>;
}

/// In-memory store, used by `pith run` (state lives as long as the process) and tests.
#[derive(Debug, Default)]
pub struct MemoryKv {
    map: Mutex<BTreeMap<(String, String), Vec<u8>>>,
}

impl MemoryKv {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Vec<u8>>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Largest key the local stores accept, in bytes.
pub const MAX_KV_KEY: usize = 512;
/// Largest value the local stores accept, in bytes.
pub const MAX_KV_VALUE: usize = 1024 * 1024;

fn check_kv(key: &str, value: Option<&[u8]>) -> Result<(), HostError> {
    if key.is_empty() || key.len() > MAX_KV_KEY {
        return Err(HostError::Invalid(format!(
            "kv key must be 1..={MAX_KV_KEY} bytes"
        )));
    }
    if value.is_some_and(|v| v.len() > MAX_KV_VALUE) {
        return Err(HostError::Invalid(format!(
            "kv value must be at most {MAX_KV_VALUE} bytes"
        )));
    }
    Ok(())
}

impl KvStore for MemoryKv {
    fn get<'a>(
        &'a self,
        program: &'a ProgramRef,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, HostError>> {
        Box::pin(async move {
            check_kv(key, None)?;
            Ok(self
                .lock()
                .get(&(program.id.clone(), key.to_owned()))
                .cloned())
        })
    }
    fn put<'a>(
        &'a self,
        program: &'a ProgramRef,
        key: &'a str,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), HostError>> {
        Box::pin(async move {
            check_kv(key, Some(&value))?;
            self.lock()
                .insert((program.id.clone(), key.to_owned()), value);
            Ok(())
        })
    }
    fn delete<'a>(
        &'a self,
        program: &'a ProgramRef,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(), HostError>> {
        Box::pin(async move {
            check_kv(key, None)?;
            self.lock().remove(&(program.id.clone(), key.to_owned()));
            Ok(())
        })
    }
    fn list<'a>(
        &'a self,
        program: &'a ProgramRef,
        prefix: &'a str,
        limit: usize,
        cursor: &'a str,
    ) -> BoxFuture<'a, Result<KvPage, HostError>> {
        Box::pin(async move {
            let map = self.lock();
            let start = (
                program.id.clone(),
                if cursor.is_empty() {
                    prefix.to_owned()
                } else {
                    cursor.to_owned()
                },
            );
            let limit = limit.clamp(1, 1000);
            let mut keys = Vec::new();
            let mut more = false;
            for ((pid, k), _) in map.range(start..) {
                if pid != &program.id || !k.starts_with(prefix) {
                    break;
                }
                if !cursor.is_empty() && k.as_str() == cursor {
                    continue;
                }
                if keys.len() == limit {
                    more = true;
                    break;
                }
                keys.push(k.clone());
            }
            let cursor = if more {
                keys.last().cloned().unwrap_or_default()
            } else {
                String::new()
            };
            Ok(KvPage { keys, cursor })
        })
    }
}

// ------------------------------------------------------------------------- keys

/// Public half of a derived key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedPublic {
    /// SEC1 compressed secp256k1 public key (33 bytes).
    pub public_key: Vec<u8>,
    /// Ethereum address (last 20 bytes of keccak256 of the uncompressed key).
    pub address: [u8; 20],
}

/// Keys derived for a program. The secret never leaves the provider: programs get the
/// public key and signatures only (see docs/adr/0010-sandbox-isolation.md).
pub trait KeyProvider: Send + Sync {
    /// Public key and address of `path` for `program`.
    fn derive<'a>(
        &'a self,
        program: &'a ProgramRef,
        path: &'a str,
    ) -> BoxFuture<'a, Result<DerivedPublic, HostError>>;
    /// Sign a 32-byte digest with the key at `path`: 65 bytes `r ‖ s ‖ v` (v = 27/28).
    fn sign_digest<'a>(
        &'a self,
        program: &'a ProgramRef,
        path: &'a str,
        digest: [u8; 32],
    ) -> BoxFuture<'a, Result<[u8; 65], HostError>>;
}

/// Local key provider for `pith run` and tests: keys derived from a local seed.
///
/// secret = SHA-256("pith/sandbox/local-key/v1" ‖ u32be(len seed) ‖ seed ‖ u32be(len id) ‖ id
/// ‖ u32be(len path) ‖ path ‖ counter), with the counter incremented until the result is a
/// valid secp256k1 scalar. Not for production: the worker wires the KMS-backed provider.
pub struct LocalKeys {
    seed: Vec<u8>,
}

impl std::fmt::Debug for LocalKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalKeys(..)")
    }
}

impl LocalKeys {
    /// A provider with the given seed.
    pub fn new(seed: impl Into<Vec<u8>>) -> Self {
        Self { seed: seed.into() }
    }

    fn key(&self, program: &ProgramRef, path: &str) -> Result<SigningKey, HostError> {
        if path.is_empty() || path.len() > 256 {
            return Err(HostError::Invalid("key path must be 1..=256 bytes".into()));
        }
        for counter in 0u8..=255 {
            let mut h = Sha256::new();
            h.update(b"pith/sandbox/local-key/v1");
            for part in [self.seed.as_slice(), program.id.as_bytes(), path.as_bytes()] {
                h.update(u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
                h.update(part);
            }
            h.update([counter]);
            if let Ok(k) = SigningKey::from_slice(&h.finalize()) {
                return Ok(k);
            }
        }
        Err(HostError::Failed("key derivation failed".into()))
    }
}

/// Ethereum address of a verifying key.
pub fn eth_address(key: &k256::ecdsa::VerifyingKey) -> [u8; 20] {
    let point = key.to_encoded_point(false);
    let hash = crate::keccak256(point.as_bytes().get(1..).unwrap_or_default());
    let mut a = [0u8; 20];
    a.copy_from_slice(hash.get(12..).unwrap_or(&[0u8; 20]));
    a
}

/// Sign a digest recoverably: `r ‖ s ‖ v` with v = 27 + recovery id.
pub fn sign_recoverable(key: &SigningKey, digest: &[u8; 32]) -> Result<[u8; 65], HostError> {
    let (sig, rec) = key
        .sign_prehash_recoverable(digest)
        .map_err(|e| HostError::Failed(e.to_string()))?;
    let mut out = [0u8; 65];
    out[..64].copy_from_slice(&sig.to_bytes());
    out[64] = 27 + rec.to_byte();
    Ok(out)
}

impl KeyProvider for LocalKeys {
    fn derive<'a>(
        &'a self,
        program: &'a ProgramRef,
        path: &'a str,
    ) -> BoxFuture<'a, Result<DerivedPublic, HostError>> {
        Box::pin(async move {
            let k = self.key(program, path)?;
            let vk = k.verifying_key();
            Ok(DerivedPublic {
                public_key: vk.to_encoded_point(true).as_bytes().to_vec(),
                address: eth_address(vk),
            })
        })
    }
    fn sign_digest<'a>(
        &'a self,
        program: &'a ProgramRef,
        path: &'a str,
        digest: [u8; 32],
    ) -> BoxFuture<'a, Result<[u8; 65], HostError>> {
        Box::pin(async move { sign_recoverable(&self.key(program, path)?, &digest) })
    }
}

// ------------------------------------------------------------------------- chain, attestation

/// Chain access for a program: calls and transactions from the program's own address.
/// Arguments and results are JSON-RPC shaped (`{"to", "data", "value"}` objects, hex
/// strings), so the provider can forward them to `eth_call` / `eth_sendRawTransaction`.
pub trait ChainProvider: Send + Sync {
    /// `eth_call`; returns the result data as `0x` hex.
    fn call<'a>(
        &'a self,
        program: &'a ProgramRef,
        tx: serde_json::Value,
    ) -> BoxFuture<'a, Result<String, HostError>>;
    /// Sign with the program's key and send; returns the transaction hash as `0x` hex.
    fn send_transaction<'a>(
        &'a self,
        program: &'a ProgramRef,
        tx: serde_json::Value,
    ) -> BoxFuture<'a, Result<String, HostError>>;
}

/// No chain configured: every call fails with [`HostError::Unavailable`]. What `pith run`
/// uses until the chain layer is wired.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoChain;

impl ChainProvider for NoChain {
    fn call<'a>(
        &'a self,
        _: &'a ProgramRef,
        _: serde_json::Value,
    ) -> BoxFuture<'a, Result<String, HostError>> {
        Box::pin(async { Err(HostError::Unavailable("env.chain")) })
    }
    fn send_transaction<'a>(
        &'a self,
        _: &'a ProgramRef,
        _: serde_json::Value,
    ) -> BoxFuture<'a, Result<String, HostError>> {
        Box::pin(async { Err(HostError::Unavailable("env.chain")) })
    }
}

/// Evidence for the program: the host binds `report_data` into its TEE evidence.
pub trait AttestationProvider: Send + Sync {
    /// Evidence bytes for the given report data (at most 64 bytes).
    fn attest<'a>(
        &'a self,
        program: &'a ProgramRef,
        report_data: Vec<u8>,
    ) -> BoxFuture<'a, Result<Vec<u8>, HostError>>;
}

/// No attestation available: every call fails with [`HostError::Unavailable`].
#[derive(Debug, Default, Clone, Copy)]
pub struct NoAttestation;

impl AttestationProvider for NoAttestation {
    fn attest<'a>(
        &'a self,
        _: &'a ProgramRef,
        _: Vec<u8>,
    ) -> BoxFuture<'a, Result<Vec<u8>, HostError>> {
        Box::pin(async { Err(HostError::Unavailable("env.attestation")) })
    }
}

// ------------------------------------------------------------------------- AI

/// One chat message: `role` is `system`, `user` or `assistant`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiMessage {
    /// Who speaks.
    pub role: String,
    /// What they say.
    pub content: String,
}

/// A chat request from `env.ai.chat`, already checked by the sandbox: 1 to
/// [`AI_MAX_MESSAGES`] messages with known roles and at most [`AI_MAX_PROMPT_BYTES`] of
/// content, `max_tokens` within the invocation's `ai_tokens` budget, `temperature` in
/// 0..=2 (0 is greedy decoding), `top_p` in (0, 1], at most 4 stop strings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AiChatRequest {
    /// The model the program names, if it named one; the host refuses another model.
    pub model: Option<String>,
    /// The conversation.
    pub messages: Vec<AiMessage>,
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// Sampling temperature; 0 is greedy.
    pub temperature: f32,
    /// Nucleus sampling mass.
    pub top_p: f32,
    /// Seed of the sampler (with a temperature above 0).
    pub seed: Option<u64>,
    /// Stop sequences.
    pub stop: Vec<String>,
}

/// Most messages in one `env.ai.chat` request.
pub const AI_MAX_MESSAGES: usize = 64;
/// Most bytes of message content in one `env.ai.chat` request.
pub const AI_MAX_PROMPT_BYTES: usize = 64 * 1024;

/// What the host's model answered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AiChatReply {
    /// The assistant's text.
    pub content: String,
    /// `stop` (end of turn or a stop sequence) or `length` (`max_tokens` reached).
    pub finish_reason: String,
    /// Tokens in the rendered prompt.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// The model's name.
    pub model: String,
    /// SHA-256 of the model file: what receipts name.
    pub model_hash: [u8; 32],
}

/// The host's own language model for `env.ai.chat` (no data leaves the host).
pub trait AiProvider: Send + Sync {
    /// Answer `request`; stop generating at `deadline` (the invocation's wall-time limit)
    /// with an error.
    fn chat<'a>(
        &'a self,
        program: &'a ProgramRef,
        request: AiChatRequest,
        deadline: std::time::Instant,
    ) -> BoxFuture<'a, Result<AiChatReply, HostError>>;
}

/// No model in this host: every call fails with [`HostError::Unavailable`].
#[derive(Debug, Default, Clone, Copy)]
pub struct NoAi;

impl AiProvider for NoAi {
    fn chat<'a>(
        &'a self,
        _: &'a ProgramRef,
        _: AiChatRequest,
        _: std::time::Instant,
    ) -> BoxFuture<'a, Result<AiChatReply, HostError>> {
        Box::pin(async { Err(HostError::Unavailable("env.ai")) })
    }
}

// ------------------------------------------------------------------------- clock, randomness

/// Wall clock for `Date.now()`.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> f64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> f64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
            .floor()
    }
}

/// Randomness for `crypto.getRandomValues` and `crypto.randomUUID`.
pub trait Randomness: Send + Sync {
    /// Fill `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// The operating system's CSPRNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl Randomness for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        if getrandom::getrandom(buf).is_err() {
            // The OS RNG does not fail on supported platforms; never hand out zeros silently.
            tracing::error!(target: "pith::sandbox", "OS random source failed");
            std::process::abort();
        }
    }
}

/// Everything the sandbox reaches outside itself.
#[derive(Clone)]
pub struct Host {
    /// Outgoing HTTP.
    pub egress: Arc<dyn Egress>,
    /// Program storage.
    pub kv: Arc<dyn KvStore>,
    /// Derived keys.
    pub keys: Arc<dyn KeyProvider>,
    /// Chain access.
    pub chain: Arc<dyn ChainProvider>,
    /// TEE evidence.
    pub attestation: Arc<dyn AttestationProvider>,
    /// The host's language model.
    pub ai: Arc<dyn AiProvider>,
    /// Clock.
    pub clock: Arc<dyn Clock>,
    /// Randomness.
    pub random: Arc<dyn Randomness>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Host(..)")
    }
}

impl Host {
    /// Local host for `pith run` and tests: real HTTP egress, in-memory kv, keys from
    /// `key_seed`, no chain, no attestation, no model, system clock, OS randomness.
    pub fn local(key_seed: impl Into<Vec<u8>>) -> Self {
        Self {
            egress: Arc::new(crate::egress::HttpEgress::new()),
            kv: Arc::new(MemoryKv::default()),
            keys: Arc::new(LocalKeys::new(key_seed)),
            chain: Arc::new(NoChain),
            attestation: Arc::new(NoAttestation),
            ai: Arc::new(NoAi),
            clock: Arc::new(SystemClock),
            random: Arc::new(OsRandom),
        }
    }
}
