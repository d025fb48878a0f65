//! Requests and responses as Oblivious HTTP (RFC 9458).
//!
//! A client fetches a program's key configuration (`application/ohttp-keys`, certified by
//! the KMS, see [`crate::certify`]), encodes its request as Binary HTTP (RFC 9292, known
//! length) with two extra header fields — `pith-nonce` (hex, 16 to 32 random bytes) and
//! `pith-expiry` (unix seconds) — and encapsulates it with HPKE to the program's X25519
//! key. The worker decapsulates with the program key (released by the KMS), runs the
//! program and encapsulates the Binary HTTP response on the same HPKE context.
//!
//! `request_hash = keccak256(bhttp request bytes)` and
//! `response_hash = keccak256(bhttp response bytes)`: both ends hold these exact bytes, so
//! both compute the hashes that the receipt ([`crate::receipt`]) signs.
//!
//! Key identifiers: the OHTTP `key_id` of a program key is `epoch mod 256`; a server holds
//! the keys of the current and previous epochs so requests made just before a rotation
//! still decrypt.

use std::collections::BTreeMap;
use std::io::Cursor;

use bhttp::{Message, Mode, StatusCode};
use ohttp::hpke::{Aead, Kdf, Kem};
use ohttp::{KeyConfig, SymmetricSuite};

use crate::domain::{EXPIRY_HEADER, NONCE_HEADER};
use crate::error::{CryptoError, Result};
use crate::keccak256;
use crate::keytree::ProgramKeys;

/// Largest request expiry accepted, counted from the verifier's clock (seconds).
pub const MAX_REQUEST_TTL_SECS: u64 = 300;

/// The symmetric suites a Pith program key offers, in preference order.
fn suites() -> Vec<SymmetricSuite> {
    vec![
        SymmetricSuite::new(Kdf::HkdfSha256, Aead::Aes128Gcm),
        SymmetricSuite::new(Kdf::HkdfSha256, Aead::ChaCha20Poly1305),
    ]
}

/// The OHTTP key configuration of `keys` (with its private key: server side only).
pub fn key_config(keys: &ProgramKeys) -> Result<KeyConfig> {
    let key_id =
        u8::try_from(keys.epoch() % 256).map_err(|e| CryptoError::Internal(e.to_string()))?;
    KeyConfig::derive(key_id, Kem::X25519Sha256, suites(), keys.encryption_ikm())
        .map_err(|e| CryptoError::Internal(format!("derive key config: {e}")))
}

fn ohttp_err(e: ohttp::Error) -> CryptoError {
    match e {
        ohttp::Error::KeyId => {
            CryptoError::UnknownKey("request is for another key configuration".into())
        }
        ohttp::Error::Truncated | ohttp::Error::Unsupported | ohttp::Error::Format => {
            CryptoError::malformed("oblivious http message", e.to_string())
        }
        other => CryptoError::Decrypt(other.to_string()),
    }
}

fn bhttp_err(what: &'static str) -> impl Fn(bhttp::Error) -> CryptoError {
    move |e| CryptoError::malformed(what, e.to_string())
}

/// A plaintext request to a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    nonce: Vec<u8>,
    expiry: u64,
}

impl Request {
    /// A request. `headers` must not contain `pith-nonce` or `pith-expiry` (they are set from
    /// `nonce` and `expiry`).
    pub fn new(
        method: &str,
        path: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        nonce: [u8; 16],
        expiry: u64,
    ) -> Self {
        Self {
            method: method.to_string(),
            path: path.to_string(),
            headers,
            body,
            nonce: nonce.to_vec(),
            expiry,
        }
    }
    /// HTTP method.
    pub fn method(&self) -> &str {
        &self.method
    }
    /// Path and query.
    pub fn path(&self) -> &str {
        &self.path
    }
    /// Header fields (names lower-case), without the Pith envelope fields.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }
    /// Body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
    /// The client's nonce (replay protection).
    pub fn nonce(&self) -> &[u8] {
        &self.nonce
    }
    /// Expiry, unix seconds.
    pub fn expiry(&self) -> u64 {
        self.expiry
    }

    /// Check the expiry against `now` (unix seconds): not past, and at most
    /// [`MAX_REQUEST_TTL_SECS`] ahead (which bounds how long a replay cache must remember).
    pub fn check_fresh(&self, now: u64) -> Result<()> {
        if self.expiry < now {
            return Err(CryptoError::Expired(format!(
                "expired at {}, now {now}",
                self.expiry
            )));
        }
        if self.expiry.saturating_sub(now) > MAX_REQUEST_TTL_SECS {
            return Err(CryptoError::Expired(format!(
                "expiry {} is more than {MAX_REQUEST_TTL_SECS} s ahead of {now}",
                self.expiry
            )));
        }
        Ok(())
    }

    /// Binary HTTP (known-length) encoding, including the envelope fields.
    pub fn to_bhttp(&self) -> Result<Vec<u8>> {
        let mut m = Message::request(
            self.method.as_bytes().to_vec(),
            b"https".to_vec(),
            b"pith".to_vec(),
            self.path.as_bytes().to_vec(),
        );
        for (k, v) in &self.headers {
            let name = k.to_ascii_lowercase();
            if name == NONCE_HEADER || name == EXPIRY_HEADER {
                return Err(CryptoError::malformed(
                    "request",
                    format!("header {name} is reserved"),
                ));
            }
            m.put_header(name.into_bytes(), v.as_bytes().to_vec());
        }
        m.put_header(
            NONCE_HEADER.as_bytes().to_vec(),
            hex::encode(&self.nonce).into_bytes(),
        );
        m.put_header(
            EXPIRY_HEADER.as_bytes().to_vec(),
            self.expiry.to_string().into_bytes(),
        );
        m.write_content(&self.body);
        let mut out = Vec::with_capacity(self.body.len().saturating_add(128));
        m.write_bhttp(Mode::KnownLength, &mut out)
            .map_err(bhttp_err("request"))?;
        Ok(out)
    }

    /// Parse a Binary HTTP request with its envelope fields. Trailing bytes are rejected.
    pub fn from_bhttp(bytes: &[u8]) -> Result<Self> {
        let m = read_exact_message(bytes, "request")?;
        let c = m.control();
        let (Some(method), Some(path)) = (c.method(), c.path()) else {
            return Err(CryptoError::malformed("request", "not a request"));
        };
        let text = |b: &[u8], what: &'static str| {
            String::from_utf8(b.to_vec())
                .map_err(|_| CryptoError::malformed("request", format!("{what} is not UTF-8")))
        };
        let mut headers = Vec::new();
        let mut nonce = None;
        let mut expiry = None;
        for f in m.header().iter() {
            let name = text(f.name(), "header name")?.to_ascii_lowercase();
            let value = text(f.value(), "header value")?;
            if name == NONCE_HEADER {
                let n = hex::decode(&value)
                    .map_err(|_| CryptoError::malformed("request", "pith-nonce is not hex"))?;
                if !(16..=32).contains(&n.len()) || nonce.replace(n).is_some() {
                    return Err(CryptoError::malformed(
                        "request",
                        "pith-nonce must appear once, 16..=32 bytes",
                    ));
                }
            } else if name == EXPIRY_HEADER {
                let e: u64 = value.parse().map_err(|_| {
                    CryptoError::malformed("request", "pith-expiry is not a number")
                })?;
                if expiry.replace(e).is_some() {
                    return Err(CryptoError::malformed(
                        "request",
                        "pith-expiry must appear once",
                    ));
                }
            } else {
                headers.push((name, value));
            }
        }
        Ok(Self {
            method: text(method, "method")?,
            path: text(path, "path")?,
            headers,
            body: m.content().to_vec(),
            nonce: nonce.ok_or_else(|| CryptoError::malformed("request", "missing pith-nonce"))?,
            expiry: expiry
                .ok_or_else(|| CryptoError::malformed("request", "missing pith-expiry"))?,
        })
    }
}

fn read_exact_message(bytes: &[u8], what: &'static str) -> Result<Message> {
    let mut cursor = Cursor::new(bytes);
    let m = Message::read_bhttp(&mut cursor).map_err(bhttp_err(what))?;
    let used =
        usize::try_from(cursor.position()).map_err(|e| CryptoError::Internal(e.to_string()))?;
    // RFC 9292 allows zero padding after a message; anything else is trailing garbage.
    if bytes
        .get(used..)
        .is_some_and(|rest| rest.iter().any(|&b| b != 0))
    {
        return Err(CryptoError::malformed(what, "trailing bytes"));
    }
    Ok(m)
}

/// A plaintext response from a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Header fields (names lower-case).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// Binary HTTP (known-length) encoding.
    pub fn to_bhttp(&self) -> Result<Vec<u8>> {
        let status = StatusCode::try_from(self.status)
            .map_err(|_| CryptoError::malformed("response", "bad status"))?;
        let mut m = Message::response(status);
        for (k, v) in &self.headers {
            m.put_header(k.to_ascii_lowercase().into_bytes(), v.as_bytes().to_vec());
        }
        m.write_content(&self.body);
        let mut out = Vec::with_capacity(self.body.len().saturating_add(64));
        m.write_bhttp(Mode::KnownLength, &mut out)
            .map_err(bhttp_err("response"))?;
        Ok(out)
    }

    /// Parse a Binary HTTP response.
    pub fn from_bhttp(bytes: &[u8]) -> Result<Self> {
        let m = read_exact_message(bytes, "response")?;
        let status = m
            .control()
            .status()
            .ok_or_else(|| CryptoError::malformed("response", "not a response"))?;
        let mut headers = Vec::new();
        for f in m.header().iter() {
            let name = String::from_utf8(f.name().to_vec())
                .map_err(|_| CryptoError::malformed("response", "header name"))?;
            let value = String::from_utf8(f.value().to_vec())
                .map_err(|_| CryptoError::malformed("response", "header value"))?;
            headers.push((name.to_ascii_lowercase(), value));
        }
        Ok(Self {
            status: status.code(),
            headers,
            body: m.content().to_vec(),
        })
    }
}

/// Client side of one request/response exchange.
pub struct ClientSession {
    response: ohttp::ClientResponse,
    request_hash: [u8; 32],
}

impl std::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSession")
            .field("request_hash", &hex::encode(self.request_hash))
            .finish_non_exhaustive()
    }
}

impl ClientSession {
    /// Encapsulate `request` to the key configuration list `ohttp_keys`
    /// (`application/ohttp-keys`). Returns the `message/ohttp-req` bytes and the session that
    /// decapsulates the response.
    pub fn encapsulate(ohttp_keys: &[u8], request: &Request) -> Result<(Vec<u8>, Self)> {
        let bhttp = request.to_bhttp()?;
        let client =
            ohttp::ClientRequest::from_encoded_config_list(ohttp_keys).map_err(ohttp_err)?;
        let (wire, response) = client.encapsulate(&bhttp).map_err(ohttp_err)?;
        Ok((
            wire,
            Self {
                response,
                request_hash: keccak256(&bhttp),
            },
        ))
    }

    /// keccak256 of the Binary HTTP request (what the receipt's `requestHash` must be).
    pub fn request_hash(&self) -> [u8; 32] {
        self.request_hash
    }

    /// Decapsulate the `message/ohttp-res` bytes. Returns the response and its hash.
    pub fn decapsulate(self, wire: &[u8]) -> Result<(Response, [u8; 32])> {
        let bhttp = self.response.decapsulate(wire).map_err(ohttp_err)?;
        Ok((Response::from_bhttp(&bhttp)?, keccak256(&bhttp)))
    }
}

/// Server side: a program's OHTTP keys, for the current and earlier epochs.
pub struct ProgramServer {
    servers: BTreeMap<u8, (u32, ohttp::Server)>,
}

impl std::fmt::Debug for ProgramServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let epochs: Vec<u32> = self.servers.values().map(|(e, _)| *e).collect();
        f.debug_struct("ProgramServer")
            .field("epochs", &epochs)
            .finish()
    }
}

impl ProgramServer {
    /// A server holding the key of `keys`' epoch.
    pub fn new(keys: &ProgramKeys) -> Result<Self> {
        let mut s = Self {
            servers: BTreeMap::new(),
        };
        s.add_epoch(keys)?;
        Ok(s)
    }

    /// Also accept requests to another epoch's key (kept after a rotation).
    pub fn add_epoch(&mut self, keys: &ProgramKeys) -> Result<()> {
        let config = key_config(keys)?;
        let id =
            u8::try_from(keys.epoch() % 256).map_err(|e| CryptoError::Internal(e.to_string()))?;
        let server = ohttp::Server::new(config).map_err(ohttp_err)?;
        self.servers.insert(id, (keys.epoch(), server));
        Ok(())
    }

    /// The `application/ohttp-keys` body: the newest epoch's configuration first.
    pub fn encoded_key_configs(&self) -> Result<Vec<u8>> {
        let mut newest: Vec<&(u32, ohttp::Server)> = self.servers.values().collect();
        newest.sort_by_key(|(epoch, _)| std::cmp::Reverse(*epoch));
        // ClientRequest::from_encoded_config_list picks the last entry of the list, so the
        // newest key goes last.
        newest.reverse();
        let configs: Vec<&KeyConfig> = newest.iter().map(|(_, s)| s.config()).collect();
        KeyConfig::encode_list(&configs).map_err(ohttp_err)
    }

    /// Decapsulate a `message/ohttp-req`. The caller checks freshness
    /// ([`Request::check_fresh`]) and replay (the nonce) before running anything.
    pub fn decapsulate(&self, wire: &[u8]) -> Result<(Request, ServerReply)> {
        let server = self.server_for(wire)?;
        let (bhttp, response) = server.decapsulate(wire).map_err(ohttp_err)?;
        let request = Request::from_bhttp(&bhttp)?;
        Ok((
            request,
            ServerReply {
                response,
                request_hash: keccak256(&bhttp),
            },
        ))
    }
}

impl ProgramServer {
    /// The server of the key a request names (its first byte is the key id).
    pub(crate) fn server_for(&self, wire: &[u8]) -> Result<&ohttp::Server> {
        let key_id = *wire
            .first()
            .ok_or_else(|| CryptoError::malformed("oblivious http message", "empty"))?;
        let (_, server) = self.servers.get(&key_id).ok_or_else(|| {
            CryptoError::UnknownKey(format!("no key with id {key_id} for this program"))
        })?;
        Ok(server)
    }
}

/// Server side of one exchange: encapsulates the response on the request's HPKE context.
pub struct ServerReply {
    response: ohttp::ServerResponse,
    request_hash: [u8; 32],
}

impl std::fmt::Debug for ServerReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerReply")
            .field("request_hash", &hex::encode(self.request_hash))
            .finish_non_exhaustive()
    }
}

impl ServerReply {
    /// keccak256 of the Binary HTTP request.
    pub fn request_hash(&self) -> [u8; 32] {
        self.request_hash
    }

    /// Encapsulate `response`. Returns the `message/ohttp-res` bytes and the response hash.
    pub fn encapsulate(self, response: &Response) -> Result<(Vec<u8>, [u8; 32])> {
        let bhttp = response.to_bhttp()?;
        let hash = keccak256(&bhttp);
        let wire = self.response.encapsulate(&bhttp).map_err(ohttp_err)?;
        Ok((wire, hash))
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;
    use crate::keytree::{MasterKey, ProgramId};

    fn keys(epoch: u32, program: u8) -> ProgramKeys {
        MasterKey::from_bytes([5; 32], epoch)
            .program_keys(&ProgramId([program; 32]))
            .unwrap()
    }

    fn request() -> Request {
        Request::new(
            "POST",
            "/v1/x?y=1",
            vec![("content-type".into(), "text/plain".into())],
            b"hello".to_vec(),
            [3; 16],
            1_000,
        )
    }

    #[test]
    fn round_trip_and_hashes_agree() {
        let server = ProgramServer::new(&keys(1, 1)).unwrap();
        let cfg = server.encoded_key_configs().unwrap();
        let (wire, session) = ClientSession::encapsulate(&cfg, &request()).unwrap();
        let (got, reply) = server.decapsulate(&wire).unwrap();
        assert_eq!(got, request());
        assert_eq!(reply.request_hash(), session.request_hash());
        let resp = Response {
            status: 201,
            headers: vec![("x-a".into(), "b".into())],
            body: vec![0, 1, 2, 255],
        };
        let (rwire, rhash) = reply.encapsulate(&resp).unwrap();
        let (back, chash) = session.decapsulate(&rwire).unwrap();
        assert_eq!(back, resp);
        assert_eq!(rhash, chash);
    }

    #[test]
    fn wrong_program_key_is_a_clear_error() {
        let a = ProgramServer::new(&keys(1, 1)).unwrap();
        let b = ProgramServer::new(&keys(1, 2)).unwrap();
        let (wire, _) =
            ClientSession::encapsulate(&a.encoded_key_configs().unwrap(), &request()).unwrap();
        assert!(matches!(b.decapsulate(&wire), Err(CryptoError::Decrypt(_))));
        let c = ProgramServer::new(&keys(2, 1)).unwrap();
        assert!(matches!(
            c.decapsulate(&wire),
            Err(CryptoError::UnknownKey(_))
        ));
    }

    #[test]
    fn tampering_fails_and_never_panics() {
        let server = ProgramServer::new(&keys(1, 1)).unwrap();
        let (wire, _) =
            ClientSession::encapsulate(&server.encoded_key_configs().unwrap(), &request()).unwrap();
        for i in 0..wire.len() {
            let mut w = wire.clone();
            w[i] ^= 0x01;
            assert!(server.decapsulate(&w).is_err(), "flip at {i} accepted");
        }
        for cut in 0..wire.len() {
            assert!(server.decapsulate(&wire[..cut]).is_err());
        }
    }

    #[test]
    fn old_epochs_still_decrypt_after_rotation() {
        let old = ProgramServer::new(&keys(1, 1)).unwrap();
        let (wire, _) =
            ClientSession::encapsulate(&old.encoded_key_configs().unwrap(), &request()).unwrap();
        let mut rotated = ProgramServer::new(&keys(2, 1)).unwrap();
        rotated.add_epoch(&keys(1, 1)).unwrap();
        assert!(rotated.decapsulate(&wire).is_ok());
        // new clients use the newest key
        let (wire2, _) =
            ClientSession::encapsulate(&rotated.encoded_key_configs().unwrap(), &request())
                .unwrap();
        assert_eq!(wire2[0], 2);
    }

    #[test]
    fn freshness() {
        let r = request();
        assert!(r.check_fresh(1_000).is_ok());
        assert!(r.check_fresh(800).is_ok());
        assert!(r.check_fresh(1_001).is_err());
        assert!(r.check_fresh(1_000 - MAX_REQUEST_TTL_SECS - 1).is_err());
    }

    #[test]
    fn envelope_fields_are_required_and_reserved() {
        let bad = Request::new(
            "GET",
            "/",
            vec![("pith-nonce".into(), "00".into())],
            vec![],
            [0; 16],
            1,
        );
        assert!(bad.to_bhttp().is_err());
        let mut m = Message::request(
            b"GET".to_vec(),
            b"https".to_vec(),
            b"pith".to_vec(),
            b"/".to_vec(),
        );
        m.put_header(b"pith-expiry".to_vec(), b"5".to_vec());
        let mut bytes = Vec::new();
        m.write_bhttp(Mode::KnownLength, &mut bytes).unwrap();
        assert!(Request::from_bhttp(&bytes).is_err());
        let mut good = request().to_bhttp().unwrap();
        good.push(7);
        assert!(Request::from_bhttp(&good).is_err());
    }
}
