//! Versioned binary bundles of secret keys: what the KMS seals to a worker (a program's keys
//! for several epochs) and to a KMS peer (master keys for several epochs), and what both seal
//! to their own disk.
//!
//! ```text
//! program bundle = "PITHPKB\0" ‖ version(1) = 0x01 ‖ program_id(32) ‖ be16(n) ‖
//!                  n × (be32(epoch) ‖ encryption_ikm(32) ‖ signing(32) ‖ storage(32) ‖ user_root(32))
//! master bundle  = "PITHMKB\0" ‖ version(1) = 0x01 ‖ be16(n) ‖ n × (be32(epoch) ‖ master_key(32))
//! ```
//! Records are sorted by strictly increasing epoch; `1 <= n <=` [`MAX_EPOCHS`]. Parsing is
//! strict: wrong magic or version, a count out of range, a short record, unsorted or repeated
//! epochs, an invalid signing scalar and trailing bytes are all refused. Decoded keys and
//! encodings are zeroized on drop.

use zeroize::Zeroizing;

use crate::domain::{MASTER_BUNDLE_MAGIC, PROGRAM_BUNDLE_MAGIC};
use crate::error::{CryptoError, Result};
use crate::keytree::{MasterKey, ProgramId, ProgramKeyParts, ProgramKeys};

/// Format version of both bundles.
pub const VERSION: u8 = 1;
/// Most epochs one bundle may carry.
pub const MAX_EPOCHS: usize = 1024;
/// Bytes of one program-bundle record.
pub const PROGRAM_RECORD_LEN: usize = 4 + 4 * 32;
/// Bytes of one master-bundle record.
pub const MASTER_RECORD_LEN: usize = 4 + 32;

fn check_epochs(epochs: impl Iterator<Item = u32>, what: &'static str) -> Result<usize> {
    let mut last: Option<u32> = None;
    let mut n = 0usize;
    for e in epochs {
        if last.is_some_and(|l| e <= l) {
            return Err(CryptoError::malformed(
                what,
                "epochs not strictly increasing",
            ));
        }
        last = Some(e);
        n = n.saturating_add(1);
    }
    if n == 0 || n > MAX_EPOCHS {
        return Err(CryptoError::malformed(
            what,
            format!("must hold 1..={MAX_EPOCHS} epochs"),
        ));
    }
    Ok(n)
}

fn header<'a>(bytes: &'a [u8], magic: &[u8; 8], what: &'static str) -> Result<&'a [u8]> {
    let rest = bytes
        .strip_prefix(magic.as_slice())
        .ok_or_else(|| CryptoError::malformed(what, "bad magic"))?;
    let (version, rest) = rest
        .split_first()
        .ok_or_else(|| CryptoError::malformed(what, "truncated header"))?;
    if *version != VERSION {
        return Err(CryptoError::malformed(
            what,
            format!("unknown version {version}"),
        ));
    }
    Ok(rest)
}

fn count<'a>(rest: &'a [u8], record_len: usize, what: &'static str) -> Result<(usize, &'a [u8])> {
    let (n, rest) = rest
        .split_first_chunk::<2>()
        .ok_or_else(|| CryptoError::malformed(what, "truncated count"))?;
    let n = usize::from(u16::from_be_bytes(*n));
    if n == 0 || n > MAX_EPOCHS {
        return Err(CryptoError::malformed(
            what,
            format!("must hold 1..={MAX_EPOCHS} epochs"),
        ));
    }
    if Some(rest.len()) != n.checked_mul(record_len) {
        return Err(CryptoError::malformed(
            what,
            "length does not match the record count",
        ));
    }
    Ok((n, rest))
}

/// One program's keys for several epochs (oldest first).
pub struct ProgramKeyBundle {
    program: ProgramId,
    keys: Vec<ProgramKeys>,
}

impl std::fmt::Debug for ProgramKeyBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgramKeyBundle")
            .field("program", &self.program.to_hex())
            .field("epochs", &self.epochs())
            .finish_non_exhaustive()
    }
}

impl ProgramKeyBundle {
    const WHAT: &'static str = "program key bundle";

    /// A bundle of `keys` (all of `program`, strictly increasing epochs, 1..=[`MAX_EPOCHS`]).
    pub fn new(program: ProgramId, keys: Vec<ProgramKeys>) -> Result<Self> {
        if keys.iter().any(|k| k.program() != program) {
            return Err(CryptoError::malformed(
                Self::WHAT,
                "keys of another program",
            ));
        }
        check_epochs(keys.iter().map(ProgramKeys::epoch), Self::WHAT)?;
        Ok(Self { program, keys })
    }

    /// Derive `program`'s keys for every master key (sorted by epoch by the caller).
    pub fn derive(program: ProgramId, masters: &[MasterKey]) -> Result<Self> {
        Self::new(
            program,
            crate::keytree::program_key_epochs(&program, masters)?,
        )
    }

    /// The program.
    pub fn program(&self) -> ProgramId {
        self.program
    }

    /// Epochs held, oldest first.
    pub fn epochs(&self) -> Vec<u32> {
        self.keys.iter().map(ProgramKeys::epoch).collect()
    }

    /// The keys, oldest first.
    pub fn keys(&self) -> &[ProgramKeys] {
        &self.keys
    }

    /// The keys, oldest first.
    pub fn into_keys(self) -> Vec<ProgramKeys> {
        self.keys
    }

    /// The binary encoding (zeroized on drop).
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(
            43usize.saturating_add(self.keys.len().saturating_mul(PROGRAM_RECORD_LEN)),
        ));
        out.extend_from_slice(PROGRAM_BUNDLE_MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.program.0);
        // `new` bounds the count by MAX_EPOCHS, which fits in u16.
        out.extend_from_slice(
            &u16::try_from(self.keys.len())
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        for k in &self.keys {
            let parts = k.to_parts();
            out.extend_from_slice(&k.epoch().to_be_bytes());
            out.extend_from_slice(&parts.encryption_ikm);
            out.extend_from_slice(&parts.signing);
            out.extend_from_slice(&parts.storage);
            out.extend_from_slice(&parts.user_root);
        }
        out
    }

    /// Parse an encoding strictly (see the module docs).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let rest = header(bytes, PROGRAM_BUNDLE_MAGIC, Self::WHAT)?;
        let (program, rest) = rest
            .split_first_chunk::<32>()
            .ok_or_else(|| CryptoError::malformed(Self::WHAT, "truncated header"))?;
        let program = ProgramId(*program);
        let (n, mut rest) = count(rest, PROGRAM_RECORD_LEN, Self::WHAT)?;
        let mut keys = Vec::with_capacity(n);
        for _ in 0..n {
            let bad = || CryptoError::malformed(Self::WHAT, "truncated record");
            let (epoch, r) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
            let (enc, r) = r.split_first_chunk::<32>().ok_or_else(bad)?;
            let (sig, r) = r.split_first_chunk::<32>().ok_or_else(bad)?;
            let (sto, r) = r.split_first_chunk::<32>().ok_or_else(bad)?;
            let (user, r) = r.split_first_chunk::<32>().ok_or_else(bad)?;
            let parts = ProgramKeyParts {
                encryption_ikm: *enc,
                signing: *sig,
                storage: *sto,
                user_root: *user,
            };
            keys.push(ProgramKeys::from_parts(
                program,
                u32::from_be_bytes(*epoch),
                &parts,
            )?);
            rest = r;
        }
        if !rest.is_empty() {
            return Err(CryptoError::malformed(Self::WHAT, "trailing bytes"));
        }
        Self::new(program, keys)
    }
}

/// Master keys for several epochs (oldest first).
pub struct MasterKeyBundle {
    keys: Vec<MasterKey>,
}

impl std::fmt::Debug for MasterKeyBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKeyBundle")
            .field("epochs", &self.epochs())
            .finish_non_exhaustive()
    }
}

impl MasterKeyBundle {
    const WHAT: &'static str = "master key bundle";

    /// A bundle of `keys` (strictly increasing epochs, 1..=[`MAX_EPOCHS`]).
    pub fn new(keys: Vec<MasterKey>) -> Result<Self> {
        check_epochs(keys.iter().map(MasterKey::epoch), Self::WHAT)?;
        Ok(Self { keys })
    }

    /// Epochs held, oldest first.
    pub fn epochs(&self) -> Vec<u32> {
        self.keys.iter().map(MasterKey::epoch).collect()
    }

    /// The keys, oldest first.
    pub fn keys(&self) -> &[MasterKey] {
        &self.keys
    }

    /// The keys, oldest first.
    pub fn into_keys(self) -> Vec<MasterKey> {
        self.keys
    }

    /// The binary encoding (zeroized on drop).
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(
            11usize.saturating_add(self.keys.len().saturating_mul(MASTER_RECORD_LEN)),
        ));
        out.extend_from_slice(MASTER_BUNDLE_MAGIC);
        out.push(VERSION);
        out.extend_from_slice(
            &u16::try_from(self.keys.len())
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        for k in &self.keys {
            out.extend_from_slice(&k.epoch().to_be_bytes());
            out.extend_from_slice(k.expose_secret());
        }
        out
    }

    /// Parse an encoding strictly (see the module docs).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let rest = header(bytes, MASTER_BUNDLE_MAGIC, Self::WHAT)?;
        let (n, mut rest) = count(rest, MASTER_RECORD_LEN, Self::WHAT)?;
        let mut keys = Vec::with_capacity(n);
        for _ in 0..n {
            let bad = || CryptoError::malformed(Self::WHAT, "truncated record");
            let (epoch, r) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
            let (secret, r) = r.split_first_chunk::<32>().ok_or_else(bad)?;
            keys.push(MasterKey::from_bytes(*secret, u32::from_be_bytes(*epoch)));
            rest = r;
        }
        if !rest.is_empty() {
            return Err(CryptoError::malformed(Self::WHAT, "trailing bytes"));
        }
        Self::new(keys)
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
    use crate::keytree::address_of;
    use crate::transport::{self, Purpose};

    fn masters() -> Vec<MasterKey> {
        vec![
            MasterKey::from_bytes([1; 32], 0),
            MasterKey::from_bytes([2; 32], 1),
            MasterKey::from_bytes([3; 32], 5),
        ]
    }

    #[test]
    fn program_bundle_round_trip() {
        let p = ProgramId([9; 32]);
        let b = ProgramKeyBundle::derive(p, &masters()).unwrap();
        let enc = b.encode();
        assert_eq!(enc.len(), 8 + 1 + 32 + 2 + 3 * PROGRAM_RECORD_LEN);
        let d = ProgramKeyBundle::decode(&enc).unwrap();
        assert_eq!(d.program(), p);
        assert_eq!(d.epochs(), vec![0, 1, 5]);
        for (a, b) in b.keys().iter().zip(d.keys()) {
            assert_eq!(a.encryption_ikm(), b.encryption_ikm());
            assert_eq!(a.address(), b.address());
            assert_eq!(
                a.storage_key().expose_secret(),
                b.storage_key().expose_secret()
            );
            assert_eq!(
                address_of(&a.user_key("x").unwrap()),
                address_of(&b.user_key("x").unwrap())
            );
        }
        // Debug never prints secrets
        let dbg = format!("{d:?}");
        assert!(!dbg.contains(&hex::encode(b.keys()[0].encryption_ikm())));
    }

    #[test]
    fn master_bundle_round_trip() {
        let b = MasterKeyBundle::new(masters()).unwrap();
        let d = MasterKeyBundle::decode(&b.encode()).unwrap();
        assert_eq!(d.epochs(), vec![0, 1, 5]);
        assert_eq!(d.keys()[2].expose_secret(), &[3; 32]);
    }

    #[test]
    fn construction_refuses_bad_sets() {
        assert!(MasterKeyBundle::new(vec![]).is_err());
        assert!(
            MasterKeyBundle::new(vec![
                MasterKey::from_bytes([1; 32], 2),
                MasterKey::from_bytes([1; 32], 1)
            ])
            .is_err()
        );
        assert!(
            MasterKeyBundle::new(vec![
                MasterKey::from_bytes([1; 32], 2),
                MasterKey::from_bytes([1; 32], 2)
            ])
            .is_err()
        );
        let m = MasterKey::from_bytes([1; 32], 1);
        let other = m.program_keys(&ProgramId([2; 32])).unwrap();
        assert!(ProgramKeyBundle::new(ProgramId([1; 32]), vec![other]).is_err());
    }

    #[test]
    fn strict_parsing() {
        let p = ProgramKeyBundle::derive(ProgramId([9; 32]), &masters())
            .unwrap()
            .encode()
            .to_vec();
        let m = MasterKeyBundle::new(masters()).unwrap().encode().to_vec();
        // every truncation and one trailing byte
        for n in 0..p.len() {
            assert!(
                ProgramKeyBundle::decode(&p[..n]).is_err(),
                "program truncated to {n}"
            );
        }
        for n in 0..m.len() {
            assert!(
                MasterKeyBundle::decode(&m[..n]).is_err(),
                "master truncated to {n}"
            );
        }
        let mut t = p.clone();
        t.push(0);
        assert!(ProgramKeyBundle::decode(&t).is_err());
        let mut t = m.clone();
        t.push(0);
        assert!(MasterKeyBundle::decode(&t).is_err());
        // magic, version, count
        let mut t = m.clone();
        t[0] ^= 1;
        assert!(MasterKeyBundle::decode(&t).is_err());
        let mut t = m.clone();
        t[8] = 2;
        assert!(MasterKeyBundle::decode(&t).is_err());
        let mut t = m.clone();
        t[9..11].copy_from_slice(&0u16.to_be_bytes());
        assert!(MasterKeyBundle::decode(&t).is_err());
        let mut t = m.clone();
        t[9..11].copy_from_slice(&4u16.to_be_bytes());
        assert!(MasterKeyBundle::decode(&t).is_err());
        // the other format's magic
        assert!(MasterKeyBundle::decode(&p).is_err());
        assert!(ProgramKeyBundle::decode(&m).is_err());
        // unsorted epochs: swap the first two master records' epochs
        let mut t = m.clone();
        t[11..15].copy_from_slice(&3u32.to_be_bytes());
        assert!(MasterKeyBundle::decode(&t).is_err());
        // an invalid signing scalar (zero) in a program record
        let mut t = p.clone();
        let sig = 8 + 1 + 32 + 2 + 4 + 32;
        t[sig..sig + 32].fill(0);
        assert!(ProgramKeyBundle::decode(&t).is_err());
    }

    #[test]
    fn sealed_bundle_through_transport() {
        let mut sk = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut sk);
        let pk = transport::public_key(&sk).unwrap();
        let p = ProgramId([4; 32]);
        let worker = crate::Address::repeat_byte(7);
        let ctx = transport::program_context(&p.0, &worker);
        let b = ProgramKeyBundle::derive(p, &masters()).unwrap();
        let sealed = transport::seal(&pk, Purpose::ProgramKeys, &ctx, &b.encode()).unwrap();
        let opened = transport::open(&sk, Purpose::ProgramKeys, &ctx, &sealed).unwrap();
        let d = ProgramKeyBundle::decode(&opened).unwrap();
        assert_eq!(d.epochs(), vec![0, 1, 5]);
        // sealed for another worker: does not open under this worker's context
        let ctx2 = transport::program_context(&p.0, &crate::Address::repeat_byte(8));
        assert!(transport::open(&sk, Purpose::ProgramKeys, &ctx2, &sealed).is_err());
    }
}
