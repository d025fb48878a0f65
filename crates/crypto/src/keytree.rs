//! The key tree: HKDF-SHA256 from the master key to per-program keys.
//!
//! ```text
//! prk            = HKDF-Extract(salt = "pith/keytree/v1", ikm = master_key)
//! okm(label, ctx) = HKDF-Expand(prk, info = label ‖ 0x00 ‖ be32(epoch) ‖ (be16(len(c)) ‖ c)*, 32)
//! encryption  = okm("pith/v1/program/encryption", [program_id])   -> OHTTP DeriveKeyPair ikm (X25519)
//! signing     = okm("pith/v1/program/signing",    [program_id, [counter]]) -> secp256k1 scalar
//! storage     = okm("pith/v1/program/storage",    [program_id])   -> ChaCha20-Poly1305 key
//! user_root   = okm("pith/v1/program/user-root",  [program_id])   -> per-program user-key root
//! user(path)  = HKDF-Expand(prk = user_root,
//!                           info = "pith/v1/program/user" ‖ 0x00 ‖ (be16(len(c)) ‖ c)* for c in [path, [counter]], 32)
//!               -> secp256k1 scalar
//! ```
//! Identity and confidentiality rotate differently (docs/adr/0100-program-identity-across-key-epochs.md):
//! a program's *identity* — its signing key (so its Ethereum address) and its user-key root —
//! comes from the network's **genesis** master key (the lowest epoch, kept forever), so the
//! address that contracts trust and the keys `env.keys.derive` returns survive every
//! governance-ordered rotation; its *confidentiality* keys — encryption and storage — come
//! from each epoch's master key, so a rotation re-keys requests and newly written storage.
//! [`program_key_epochs`] applies that rule; [`MasterKey::program_keys`] alone derives
//! everything from one master key (what the genesis epoch gives).
//! The user-key root is released to workers with the other program keys, so a worker derives
//! `env.keys.derive(path)` without the master key (and a worker never holds anything from
//! which another program's keys follow).
//! The signing scalar uses the first counter (0, 1, ...) whose output is a valid non-zero
//! scalar below the curve order (a retry happens with probability ~2^-128).

use hkdf::Hkdf;
use k256::ecdsa::SigningKey;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::Address;
use crate::domain;
use crate::error::{CryptoError, Result};

/// A program identifier (the `bytes32` id in the Programs contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProgramId(pub [u8; 32]);

impl ProgramId {
    /// Parse `0x`-prefixed or bare hex.
    pub fn from_hex(s: &str) -> Result<Self> {
        let raw = hex::decode(s.strip_prefix("0x").unwrap_or(s))
            .map_err(|e| CryptoError::malformed("program id", e.to_string()))?;
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|_| CryptoError::malformed("program id", "expected 32 bytes"))?;
        Ok(Self(bytes))
    }
    /// `0x`-prefixed lowercase hex.
    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.0))
    }
}

/// The KMS master key of one epoch. Zeroized on drop; never printed.
pub struct MasterKey {
    secret: Zeroizing<[u8; 32]>,
    epoch: u32,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    /// A master key from its 32 secret bytes and its epoch.
    pub fn from_bytes(mut secret: [u8; 32], epoch: u32) -> Self {
        let key = Self {
            secret: Zeroizing::new(secret),
            epoch,
        };
        secret.zeroize();
        key
    }

    /// A fresh random master key.
    pub fn generate(rng: &mut impl rand_core::CryptoRngCore, epoch: u32) -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(secret.as_mut());
        Self { secret, epoch }
    }

    /// The secret bytes, for sealing to disk or replicating to an attested peer only.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The key's epoch (incremented by each governance-ordered rotation).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    fn okm(&self, label: &str, context: &[&[u8]]) -> Result<Zeroizing<[u8; 32]>> {
        let hk = Hkdf::<Sha256>::new(Some(domain::KEYTREE_SALT), self.secret.as_ref());
        expand(&hk, label, Some(self.epoch), context)
    }

    fn secp256k1(&self, label: &str, context: &[&[u8]]) -> Result<SigningKey> {
        let hk = Hkdf::<Sha256>::new(Some(domain::KEYTREE_SALT), self.secret.as_ref());
        secp256k1_from(&hk, label, Some(self.epoch), context)
    }

    /// Every key of `program` derived from this master key alone (identity included): the
    /// keys of the genesis epoch.
    pub fn program_keys(&self, program: &ProgramId) -> Result<ProgramKeys> {
        self.program_keys_with_identity(program, self)
    }

    /// `program`'s keys of this epoch with its identity (signing key, user-key root) from
    /// `identity`, the genesis master key (see the module documentation).
    pub fn program_keys_with_identity(
        &self,
        program: &ProgramId,
        identity: &MasterKey,
    ) -> Result<ProgramKeys> {
        Ok(ProgramKeys {
            program: *program,
            epoch: self.epoch,
            encryption_ikm: self.okm(domain::PROGRAM_ENCRYPTION, &[&program.0])?,
            signing: identity.secp256k1(domain::PROGRAM_SIGNING, &[&program.0])?,
            storage: StorageKey(self.okm(domain::PROGRAM_STORAGE, &[&program.0])?),
            user_root: identity.okm(domain::PROGRAM_USER_ROOT, &[&program.0])?,
        })
    }

    /// The key a program derives at `path` (`env.keys.derive(path)`) when this is the
    /// genesis master key; the same as [`ProgramKeys::user_key`].
    pub fn user_key(&self, program: &ProgramId, path: &str) -> Result<SigningKey> {
        self.program_keys(program)?.user_key(path)
    }
}

/// `program`'s keys for every master key held (`masters` sorted by strictly increasing
/// epoch): each epoch's encryption and storage keys, and in every epoch the identity of the
/// genesis (first) master key. What the KMS certifies and releases.
pub fn program_key_epochs<M: std::borrow::Borrow<MasterKey>>(
    program: &ProgramId,
    masters: &[M],
) -> Result<Vec<ProgramKeys>> {
    let genesis: &MasterKey = masters
        .first()
        .ok_or_else(|| CryptoError::malformed("master keys", "none held"))?
        .borrow();
    if masters
        .windows(2)
        .any(|w| w.first().map(|m| m.borrow().epoch()) >= w.get(1).map(|m| m.borrow().epoch()))
    {
        return Err(CryptoError::malformed(
            "master keys",
            "epochs not strictly increasing",
        ));
    }
    masters
        .iter()
        .map(|m| m.borrow().program_keys_with_identity(program, genesis))
        .collect()
}

/// HKDF-Expand with the key-tree info layout:
/// `label ‖ 0x00 ‖ be32(epoch) ‖ (be16(len(c)) ‖ c)*`.
/// With `epoch` `None` (user keys: the user-key root already binds the master key and its
/// epoch), the `be32(epoch)` field is absent.
fn expand(
    hk: &Hkdf<Sha256>,
    label: &str,
    epoch: Option<u32>,
    context: &[&[u8]],
) -> Result<Zeroizing<[u8; 32]>> {
    let mut info = Zeroizing::new(Vec::with_capacity(64));
    info.extend_from_slice(label.as_bytes());
    info.push(0);
    if let Some(epoch) = epoch {
        info.extend_from_slice(&epoch.to_be_bytes());
    }
    for part in context {
        let len = u16::try_from(part.len()).map_err(|_| {
            CryptoError::malformed("derivation context", "component over 65535 bytes")
        })?;
        info.extend_from_slice(&len.to_be_bytes());
        info.extend_from_slice(part);
    }
    let mut out = Zeroizing::new([0u8; 32]);
    hk.expand(&info, out.as_mut())
        .map_err(|e| CryptoError::Internal(format!("hkdf expand: {e}")))?;
    Ok(out)
}

/// The first counter (appended as one more context component) whose output is a valid
/// secp256k1 scalar.
fn secp256k1_from(
    hk: &Hkdf<Sha256>,
    label: &str,
    epoch: Option<u32>,
    context: &[&[u8]],
) -> Result<SigningKey> {
    for counter in 0u8..=255 {
        let mut ctx: Vec<&[u8]> = context.to_vec();
        let c = [counter];
        ctx.push(&c);
        let okm = expand(hk, label, epoch, &ctx)?;
        if let Ok(key) = SigningKey::from_slice(okm.as_ref()) {
            return Ok(key);
        }
    }
    Err(CryptoError::Internal(
        "no valid secp256k1 scalar in 256 tries".into(),
    ))
}

/// The keys of one program in one epoch, as released by the KMS to an attested worker.
pub struct ProgramKeys {
    program: ProgramId,
    epoch: u32,
    encryption_ikm: Zeroizing<[u8; 32]>,
    signing: SigningKey,
    storage: StorageKey,
    user_root: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for ProgramKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgramKeys")
            .field("program", &self.program)
            .field("epoch", &self.epoch)
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

impl ProgramKeys {
    /// Rebuild from the released parts (the wire format of key release, [`crate::bundle`]).
    pub fn from_parts(program: ProgramId, epoch: u32, parts: &ProgramKeyParts) -> Result<Self> {
        let signing_key = SigningKey::from_slice(&parts.signing).map_err(|_| {
            CryptoError::malformed("program signing key", "not a valid secp256k1 scalar")
        })?;
        Ok(Self {
            program,
            epoch,
            encryption_ikm: Zeroizing::new(parts.encryption_ikm),
            signing: signing_key,
            storage: StorageKey(Zeroizing::new(parts.storage)),
            user_root: Zeroizing::new(parts.user_root),
        })
    }

    /// The secret parts (for key release and sealing only).
    pub fn to_parts(&self) -> ProgramKeyParts {
        ProgramKeyParts {
            encryption_ikm: *self.encryption_ikm,
            signing: self.signing.to_bytes().into(),
            storage: *self.storage.0,
            user_root: *self.user_root,
        }
    }

    /// The key a program derives at `path` (`env.keys.derive(path)`, 1..=256 bytes).
    pub fn user_key(&self, path: &str) -> Result<SigningKey> {
        if path.is_empty() || path.len() > 256 {
            return Err(CryptoError::malformed("key path", "must be 1..=256 bytes"));
        }
        let hk = Hkdf::<Sha256>::from_prk(self.user_root.as_ref())
            .map_err(|_| CryptoError::Internal("user-key root is not a valid PRK".into()))?;
        secp256k1_from(&hk, domain::PROGRAM_USER, None, &[path.as_bytes()])
    }
    /// The program.
    pub fn program(&self) -> ProgramId {
        self.program
    }
    /// The epoch these keys belong to.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }
    /// Input keying material of the X25519 OHTTP key (see [`crate::envelope`]).
    pub fn encryption_ikm(&self) -> &[u8; 32] {
        &self.encryption_ikm
    }
    /// The program's signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }
    /// The program's Ethereum address.
    pub fn address(&self) -> Address {
        address_of(&self.signing)
    }
    /// The program's storage key.
    pub fn storage_key(&self) -> &StorageKey {
        &self.storage
    }
}

/// The secret parts of one epoch's program keys, as released and sealed. Zeroized on drop.
#[derive(Clone, Zeroize, zeroize::ZeroizeOnDrop)]
pub struct ProgramKeyParts {
    /// Input keying material of the X25519 OHTTP key.
    pub encryption_ikm: [u8; 32],
    /// secp256k1 signing scalar.
    pub signing: [u8; 32],
    /// Storage key.
    pub storage: [u8; 32],
    /// User-key root.
    pub user_root: [u8; 32],
}

impl std::fmt::Debug for ProgramKeyParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgramKeyParts(..)")
    }
}

/// A 256-bit storage key (see [`crate::seal`]). Zeroized on drop.
pub struct StorageKey(pub(crate) Zeroizing<[u8; 32]>);

impl StorageKey {
    /// A storage key from raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }
    /// The raw bytes, for key release only.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StorageKey(..)")
    }
}

/// The Ethereum address of a secp256k1 key: the last 20 bytes of keccak256 of the
/// uncompressed public key without its 0x04 prefix.
pub fn address_of(key: &SigningKey) -> Address {
    Address::from_public_key(key.verifying_key())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn derivations_are_deterministic_and_separated() {
        let m = MasterKey::from_bytes([1; 32], 1);
        let p = ProgramId([2; 32]);
        let a = m.program_keys(&p).unwrap();
        let b = m.program_keys(&p).unwrap();
        assert_eq!(a.encryption_ikm(), b.encryption_ikm());
        assert_eq!(a.address(), b.address());
        assert_ne!(a.encryption_ikm(), a.storage_key().expose_secret());
        // another program, another epoch and another master all give other keys
        let other = m.program_keys(&ProgramId([3; 32])).unwrap();
        assert_ne!(a.encryption_ikm(), other.encryption_ikm());
        assert_ne!(a.address(), other.address());
        let next = MasterKey::from_bytes([1; 32], 2).program_keys(&p).unwrap();
        assert_ne!(a.encryption_ikm(), next.encryption_ikm());
        let m2 = MasterKey::from_bytes([4; 32], 1).program_keys(&p).unwrap();
        assert_ne!(
            a.storage_key().expose_secret(),
            m2.storage_key().expose_secret()
        );
        // user keys differ per path and from the program key
        let u1 = m.user_key(&p, "a").unwrap();
        let u2 = m.user_key(&p, "b").unwrap();
        assert_ne!(address_of(&u1), address_of(&u2));
        assert_ne!(address_of(&u1), a.address());
        assert!(m.user_key(&p, "").is_err());
        // a worker holding only the released parts derives the same user keys
        let rebuilt = ProgramKeys::from_parts(p, 1, &a.to_parts()).unwrap();
        assert_eq!(address_of(&rebuilt.user_key("a").unwrap()), address_of(&u1));
        assert_eq!(rebuilt.address(), a.address());
        // the user key depends on the master key (and its epoch) it is derived under
        let u_next = MasterKey::from_bytes([1; 32], 2).user_key(&p, "a").unwrap();
        assert_ne!(address_of(&u_next), address_of(&u1));
    }

    #[test]
    fn identity_survives_rotation_confidentiality_does_not() {
        let p = ProgramId([7; 32]);
        let genesis = MasterKey::from_bytes([1; 32], 0);
        let rotated = MasterKey::from_bytes([9; 32], 3);
        let epochs = program_key_epochs(
            &p,
            &[
                MasterKey::from_bytes([1; 32], 0),
                MasterKey::from_bytes([9; 32], 3),
            ],
        )
        .unwrap();
        let [e0, e3] = epochs.as_slice() else {
            panic!("two epochs")
        };
        let alone = genesis.program_keys(&p).unwrap();
        // epoch 0 is exactly the genesis derivation
        assert_eq!(e0.address(), alone.address());
        assert_eq!(e0.encryption_ikm(), alone.encryption_ikm());
        // after a rotation: same address and user keys, new encryption and storage keys
        assert_eq!(e3.epoch(), 3);
        assert_eq!(e3.address(), alone.address());
        assert_eq!(
            address_of(&e3.user_key("oracle/price").unwrap()),
            address_of(&alone.user_key("oracle/price").unwrap())
        );
        let fresh = rotated.program_keys(&p).unwrap();
        assert_eq!(e3.encryption_ikm(), fresh.encryption_ikm());
        assert_eq!(
            e3.storage_key().expose_secret(),
            fresh.storage_key().expose_secret()
        );
        assert_ne!(e3.encryption_ikm(), e0.encryption_ikm());
        assert_ne!(
            e3.storage_key().expose_secret(),
            e0.storage_key().expose_secret()
        );
        // rebuilt from released parts, a worker derives the same identity in every epoch
        let rebuilt = ProgramKeys::from_parts(p, 3, &e3.to_parts()).unwrap();
        assert_eq!(
            address_of(&rebuilt.user_key("x").unwrap()),
            address_of(&e0.user_key("x").unwrap())
        );
        // misuse is an error, not a panic
        assert!(program_key_epochs::<MasterKey>(&p, &[]).is_err());
        assert!(
            program_key_epochs(
                &p,
                &[
                    MasterKey::from_bytes([9; 32], 3),
                    MasterKey::from_bytes([1; 32], 0)
                ]
            )
            .is_err()
        );
    }

    #[test]
    fn test_vector() {
        // Pinned so that every implementation (and every later version) derives the same
        // keys; documented in docs/protocol.md.
        let m = MasterKey::from_bytes([0x11; 32], 1);
        let k = m.program_keys(&ProgramId([0x22; 32])).unwrap();
        assert_eq!(hex::encode(k.encryption_ikm()), VECTOR_ENCRYPTION_IKM);
        assert_eq!(format!("{:#x}", k.address()), VECTOR_ADDRESS);
    }

    // Computed independently of this crate (Python: hmac/hashlib HKDF per RFC 5869, then
    // python-ecdsa + pycryptodome keccak for the address); see docs/protocol.md.
    const VECTOR_ENCRYPTION_IKM: &str =
        "ed0f8e3fba9d700e39d165d2d1b4e5c5e780cb3777f6f5456c42da9e14247278";
    const VECTOR_ADDRESS: &str = "0x7c6d09129c2581de98e54cdec391da837c9b927d";

    #[test]
    fn debug_never_prints_secrets() {
        let m = MasterKey::from_bytes([0xab; 32], 1);
        assert!(!format!("{m:?}").contains("ab, ab"));
        let k = m.program_keys(&ProgramId([0; 32])).unwrap();
        let s = format!("{k:?}");
        assert!(!s.contains(&hex::encode(k.encryption_ikm())));
    }

    #[test]
    fn program_id_hex() {
        let p = ProgramId::from_hex(&format!("0x{}", "ab".repeat(32))).unwrap();
        assert_eq!(p.to_hex(), format!("0x{}", "ab".repeat(32)));
        assert!(ProgramId::from_hex("0x1234").is_err());
        assert!(ProgramId::from_hex("zz").is_err());
    }
}
