//! Key transport: secrets sealed by a KMS node to an attested recipient's X25519 key.
//!
//! HPKE (RFC 9180) in base mode with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and
//! ChaCha20-Poly1305 (suite `0x0020 / 0x0001 / 0x0003`):
//!
//! ```text
//! info   = "pith/v1/key-transport" ‖ 0x00 ‖ purpose ‖ 0x00 ‖ context
//! aad    = version (1 byte)
//! sealed = version(1) = 0x01 ‖ enc(32) ‖ ciphertext (plaintext ‖ 16-byte tag)
//! ```
//! `purpose` is [`Purpose::label`] (`program-keys` or `master-keys`), `context` binds the
//! parties: `program_id(32) ‖ worker(20)` for a program key bundle, `responder(20) ‖
//! requester(20)` for replicated master keys. A bundle sealed for one purpose, program,
//! worker or peer does not open under any other.
//!
//! The recipient key is the X25519 key bound into the recipient's evidence
//! (`report_data`), so only code with the attested measurement holds the secret half.

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use zeroize::Zeroizing;

use crate::domain;
use crate::error::{CryptoError, Result};

type KemT = X25519HkdfSha256;

/// Version byte of a sealed transport message.
pub const VERSION: u8 = 1;
/// Length of the encapsulated key.
pub const ENC_LEN: usize = 32;
/// Length of the AEAD tag.
pub const TAG_LEN: usize = 16;
/// Overhead of a sealed message over its plaintext.
pub const OVERHEAD: usize = 1 + ENC_LEN + TAG_LEN;

/// What a sealed message carries (bound into HPKE `info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A program key bundle ([`crate::bundle::ProgramKeyBundle`]) for a worker.
    ProgramKeys,
    /// A master key bundle ([`crate::bundle::MasterKeyBundle`]) for a KMS peer.
    MasterKeys,
}

impl Purpose {
    /// The label bound into `info`.
    pub fn label(self) -> &'static str {
        match self {
            Self::ProgramKeys => domain::TRANSPORT_PROGRAM_KEYS,
            Self::MasterKeys => domain::TRANSPORT_MASTER_KEYS,
        }
    }
}

/// The HPKE `info` of a purpose and context.
pub fn info(purpose: Purpose, context: &[u8]) -> Vec<u8> {
    let label = purpose.label().as_bytes();
    let mut info = Vec::with_capacity(
        domain::TRANSPORT_INFO
            .len()
            .saturating_add(label.len())
            .saturating_add(context.len())
            .saturating_add(2),
    );
    info.extend_from_slice(domain::TRANSPORT_INFO);
    info.push(0);
    info.extend_from_slice(label);
    info.push(0);
    info.extend_from_slice(context);
    info
}

/// Context of a program key bundle: `program_id ‖ worker`.
pub fn program_context(program_id: &[u8; 32], worker: &crate::Address) -> Vec<u8> {
    let mut c = program_id.to_vec();
    c.extend_from_slice(worker.as_slice());
    c
}

/// Context of replicated master keys: `responder ‖ requester`.
pub fn replication_context(responder: &crate::Address, requester: &crate::Address) -> Vec<u8> {
    let mut c = responder.to_vec();
    c.extend_from_slice(requester.as_slice());
    c
}

/// The X25519 public key of a transport secret (the same as `x25519_dalek`'s, after clamping).
pub fn public_key(secret: &[u8; 32]) -> Result<[u8; 32]> {
    let sk = <KemT as Kem>::PrivateKey::from_bytes(secret)
        .map_err(|e| CryptoError::Internal(format!("x25519 key: {e}")))?;
    let pk = KemT::sk_to_pk(&sk);
    let mut out = [0u8; 32];
    out.copy_from_slice(&pk.to_bytes());
    Ok(out)
}

/// Adapts a `rand_core` 0.6 CSPRNG (the workspace's) to the `rand_core` 0.10 traits hpke uses.
struct Rng<'a, R: rand_core::CryptoRngCore>(&'a mut R);

impl<R: rand_core::CryptoRngCore> hpke::rand_core::TryRng for Rng<'_, R> {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> std::result::Result<u32, Self::Error> {
        Ok(self.0.next_u32())
    }
    fn try_next_u64(&mut self) -> std::result::Result<u64, Self::Error> {
        Ok(self.0.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> std::result::Result<(), Self::Error> {
        self.0.fill_bytes(dst);
        Ok(())
    }
}

impl<R: rand_core::CryptoRngCore> hpke::rand_core::TryCryptoRng for Rng<'_, R> {}

/// Seal `plaintext` to `recipient` (X25519 public key) for `purpose` and `context`, with the
/// OS random source.
pub fn seal(
    recipient: &[u8; 32],
    purpose: Purpose,
    context: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    seal_with_rng(
        recipient,
        purpose,
        context,
        plaintext,
        &mut rand_core::OsRng,
    )
}

/// [`seal`] with a caller-provided CSPRNG (the ephemeral key).
pub fn seal_with_rng(
    recipient: &[u8; 32],
    purpose: Purpose,
    context: &[u8],
    plaintext: &[u8],
    rng: &mut impl rand_core::CryptoRngCore,
) -> Result<Vec<u8>> {
    let pk = <KemT as Kem>::PublicKey::from_bytes(recipient)
        .map_err(|e| CryptoError::malformed("transport recipient key", e.to_string()))?;
    let info = info(purpose, context);
    let (enc, ct) = hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, KemT>(
        &OpModeS::Base,
        &pk,
        &info,
        plaintext,
        &[VERSION],
        &mut Rng(rng),
    )
    .map_err(|e| CryptoError::Internal(format!("hpke seal: {e}")))?;
    let mut out = Vec::with_capacity(plaintext.len().saturating_add(OVERHEAD));
    out.push(VERSION);
    out.extend_from_slice(&enc.to_bytes());
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Open a message sealed with [`seal`] with the recipient's X25519 secret. Fails with
/// [`CryptoError::Malformed`] for bad framing and [`CryptoError::Decrypt`] for a wrong key,
/// purpose or context, or any tampering.
pub fn open(
    secret: &[u8; 32],
    purpose: Purpose,
    context: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let (version, rest) = sealed
        .split_first()
        .ok_or_else(|| CryptoError::malformed("sealed transport message", "empty"))?;
    if *version != VERSION {
        return Err(CryptoError::malformed(
            "sealed transport message",
            format!("unknown version {version}"),
        ));
    }
    let (enc, ct) = rest.split_first_chunk::<ENC_LEN>().ok_or_else(|| {
        CryptoError::malformed(
            "sealed transport message",
            "shorter than its encapsulated key",
        )
    })?;
    if ct.len() < TAG_LEN {
        return Err(CryptoError::malformed(
            "sealed transport message",
            "shorter than its tag",
        ));
    }
    let enc = <KemT as Kem>::EncappedKey::from_bytes(enc)
        .map_err(|e| CryptoError::malformed("sealed transport message", e.to_string()))?;
    let sk = <KemT as Kem>::PrivateKey::from_bytes(secret)
        .map_err(|e| CryptoError::Internal(format!("x25519 key: {e}")))?;
    let info = info(purpose, context);
    hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, KemT>(
        &OpModeR::Base,
        &sk,
        &enc,
        &info,
        ct,
        &[VERSION],
    )
    .map(Zeroizing::new)
    .map_err(|_| {
        CryptoError::Decrypt(
            "key transport message does not open with this key, purpose and context".into(),
        )
    })
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;
    use rand_core::{OsRng, RngCore};

    fn keypair() -> ([u8; 32], [u8; 32]) {
        let mut s = [0u8; 32];
        OsRng.fill_bytes(&mut s);
        (s, public_key(&s).unwrap())
    }

    #[test]
    fn round_trip() {
        let (sk, pk) = keypair();
        for len in [0usize, 1, 200, 5000] {
            let msg = vec![0xa5u8; len];
            let sealed = seal(&pk, Purpose::ProgramKeys, b"ctx", &msg).unwrap();
            assert_eq!(sealed.len(), len + OVERHEAD);
            assert_eq!(
                open(&sk, Purpose::ProgramKeys, b"ctx", &sealed)
                    .unwrap()
                    .as_slice(),
                msg.as_slice()
            );
        }
        // two seals of the same plaintext differ (fresh ephemeral key)
        let a = seal(&pk, Purpose::MasterKeys, b"c", b"m").unwrap();
        let b = seal(&pk, Purpose::MasterKeys, b"c", b"m").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn public_key_matches_x25519() {
        // hpke's X25519 and the classic scalar multiplication by the base point agree
        // (RFC 7748 section 6.1 Alice's key pair).
        let sk: [u8; 32] =
            hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .unwrap()
                .try_into()
                .unwrap();
        assert_eq!(
            hex::encode(public_key(&sk).unwrap()),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
    }

    #[test]
    fn wrong_recipient_purpose_or_context() {
        let (sk, pk) = keypair();
        let (other_sk, _) = keypair();
        let sealed = seal(&pk, Purpose::ProgramKeys, b"program|worker", b"secret").unwrap();
        assert!(matches!(
            open(&other_sk, Purpose::ProgramKeys, b"program|worker", &sealed),
            Err(CryptoError::Decrypt(_))
        ));
        assert!(matches!(
            open(&sk, Purpose::MasterKeys, b"program|worker", &sealed),
            Err(CryptoError::Decrypt(_))
        ));
        assert!(matches!(
            open(&sk, Purpose::ProgramKeys, b"program|worker2", &sealed),
            Err(CryptoError::Decrypt(_))
        ));
        assert!(matches!(
            open(&sk, Purpose::ProgramKeys, b"", &sealed),
            Err(CryptoError::Decrypt(_))
        ));
    }

    #[test]
    fn every_byte_tampered_and_truncations_fail() {
        let (sk, pk) = keypair();
        let sealed = seal(&pk, Purpose::ProgramKeys, b"c", b"some secret bytes").unwrap();
        for i in 0..sealed.len() {
            for bit in [0x01u8, 0x80] {
                let mut t = sealed.clone();
                t[i] ^= bit;
                assert!(
                    open(&sk, Purpose::ProgramKeys, b"c", &t).is_err(),
                    "byte {i} bit {bit:#x}"
                );
            }
        }
        for n in 0..sealed.len() {
            assert!(
                open(&sk, Purpose::ProgramKeys, b"c", &sealed[..n]).is_err(),
                "truncated to {n}"
            );
        }
        let mut longer = sealed.clone();
        longer.push(0);
        assert!(open(&sk, Purpose::ProgramKeys, b"c", &longer).is_err());
        assert!(matches!(
            open(&sk, Purpose::ProgramKeys, b"c", &[]),
            Err(CryptoError::Malformed { .. })
        ));
        assert!(matches!(
            open(&sk, Purpose::ProgramKeys, b"c", &[2]),
            Err(CryptoError::Malformed { .. })
        ));
    }

    #[test]
    fn info_layout() {
        assert_eq!(
            info(Purpose::ProgramKeys, b"xy"),
            b"pith/v1/key-transport\0program-keys\0xy".to_vec()
        );
        assert_eq!(
            info(Purpose::MasterKeys, b""),
            b"pith/v1/key-transport\0master-keys\0".to_vec()
        );
    }
}
