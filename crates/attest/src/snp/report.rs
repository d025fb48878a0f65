//! The SEV-SNP ATTESTATION_REPORT structure (AMD SEV-SNP Firmware ABI Specification,
//! "ATTESTATION_REPORT Structure"), versions 2, 3 and 5.
//!
//! | offset | size | field | since |
//! |---|---|---|---|
//! | 0x000 | 4 | VERSION | |
//! | 0x004 | 4 | GUEST_SVN | |
//! | 0x008 | 8 | POLICY | |
//! | 0x010 | 16 | FAMILY_ID | |
//! | 0x020 | 16 | IMAGE_ID | |
//! | 0x030 | 4 | VMPL | |
//! | 0x034 | 4 | SIGNATURE_ALGO (1 = ECDSA P-384 with SHA-384) | |
//! | 0x038 | 8 | CURRENT_TCB | |
//! | 0x040 | 8 | PLATFORM_INFO | |
//! | 0x048 | 4 | AUTHOR_KEY_EN (bit 0), MASK_CHIP_KEY (bit 1), SIGNING_KEY (bits 4:2) | |
//! | 0x050 | 64 | REPORT_DATA | |
//! | 0x090 | 48 | MEASUREMENT | |
//! | 0x0C0 | 32 | HOST_DATA | |
//! | 0x0E0 | 48 | ID_KEY_DIGEST | |
//! | 0x110 | 48 | AUTHOR_KEY_DIGEST | |
//! | 0x140 | 32 | REPORT_ID | |
//! | 0x160 | 32 | REPORT_ID_MA | |
//! | 0x180 | 8 | REPORTED_TCB | |
//! | 0x188 | 1+1+1 | CPUID_FAM_ID, CPUID_MOD_ID, CPUID_STEP | v3 |
//! | 0x1A0 | 64 | CHIP_ID | |
//! | 0x1E0 | 8 | COMMITTED_TCB | |
//! | 0x1E8 | 1+1+1 | CURRENT_BUILD, CURRENT_MINOR, CURRENT_MAJOR | |
//! | 0x1EC | 1+1+1 | COMMITTED_BUILD, COMMITTED_MINOR, COMMITTED_MAJOR | |
//! | 0x1F0 | 8 | LAUNCH_TCB | |
//! | 0x1F8 | 8 | LAUNCH_MIT_VECTOR | v5 |
//! | 0x200 | 8 | CURRENT_MIT_VECTOR | v5 |
//! | 0x2A0 | 512 | SIGNATURE: R (72, little-endian), S (72, little-endian), reserved | |
//!
//! The report is exactly 0x4A0 = 1184 bytes; the signature covers bytes 0x000..0x2A0.
//! Version 4 was never a released layout and is rejected like any unknown version.

use crate::error::Error;

/// Size of the report.
pub(crate) const REPORT_LEN: usize = 0x4a0;
/// End of the signed bytes (start of the signature).
pub(crate) const SIGNED_LEN: usize = 0x2a0;

/// TCB_VERSION layout differs by product: Milan and Genoa put BOOT_LOADER, TEE at bytes 0, 1,
/// SNP at 6 and MICROCODE at 7; Turin puts FMC, BOOT_LOADER, TEE, SNP at bytes 0..4 and
/// MICROCODE at 7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tcb {
    pub fmc: Option<u8>,
    pub bootloader: u8,
    pub tee: u8,
    pub snp: u8,
    pub microcode: u8,
}

impl Tcb {
    pub fn decode(raw: [u8; 8], turin: bool) -> Self {
        let [b0, b1, b2, b3, _, _, b6, b7] = raw;
        if turin {
            Self {
                fmc: Some(b0),
                bootloader: b1,
                tee: b2,
                snp: b3,
                microcode: b7,
            }
        } else {
            Self {
                fmc: None,
                bootloader: b0,
                tee: b1,
                snp: b6,
                microcode: b7,
            }
        }
    }

    pub fn to_json(self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        if let Some(f) = self.fmc {
            m.insert("fmc".into(), f.into());
        }
        m.insert("bl".into(), self.bootloader.into());
        m.insert("tee".into(), self.tee.into());
        m.insert("snp".into(), self.snp.into());
        m.insert("ucode".into(), self.microcode.into());
        serde_json::Value::Object(m)
    }
}

/// Which key signed the report (SIGNING_KEY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SigningKey {
    Vcek,
    Vlek,
    /// 7: the report is not signed.
    None,
}

/// A parsed report. Borrowed fields point into the evidence bytes.
#[derive(Debug, Clone)]
pub(crate) struct Report<'a> {
    pub bytes: &'a [u8],
    pub version: u32,
    pub guest_svn: u32,
    pub policy: u64,
    pub family_id: &'a [u8],
    pub image_id: &'a [u8],
    pub vmpl: u32,
    pub current_tcb: [u8; 8],
    pub platform_info: u64,
    pub author_key_en: bool,
    pub mask_chip_key: bool,
    pub signing_key: SigningKey,
    pub report_data: &'a [u8],
    pub measurement: &'a [u8],
    pub host_data: &'a [u8],
    pub id_key_digest: &'a [u8],
    pub author_key_digest: &'a [u8],
    pub report_id: &'a [u8],
    pub report_id_ma: &'a [u8],
    pub reported_tcb: [u8; 8],
    /// (family, model, stepping), report v3 and later.
    pub cpuid: Option<(u8, u8, u8)>,
    pub chip_id: &'a [u8],
    pub committed_tcb: [u8; 8],
    /// (major, minor, build)
    pub current_version: (u8, u8, u8),
    pub committed_version: (u8, u8, u8),
    pub launch_tcb: [u8; 8],
    /// (launch, current), report v5 and later.
    pub mit_vectors: Option<(u64, u64)>,
    /// R and S, each 72 bytes little-endian.
    pub sig_r: &'a [u8],
    pub sig_s: &'a [u8],
}

fn field(bytes: &[u8], offset: usize, len: usize) -> Result<&[u8], Error> {
    offset
        .checked_add(len)
        .and_then(|end| bytes.get(offset..end))
        .ok_or_else(|| Error::malformed("SEV-SNP report: field out of range"))
}

fn array8(bytes: &[u8], offset: usize) -> Result<[u8; 8], Error> {
    field(bytes, offset, 8)?
        .try_into()
        .map_err(|_| Error::malformed("SEV-SNP report: field"))
}

fn u32_le(bytes: &[u8], offset: usize) -> Result<u32, Error> {
    let a: [u8; 4] = field(bytes, offset, 4)?
        .try_into()
        .map_err(|_| Error::malformed("SEV-SNP report: field"))?;
    Ok(u32::from_le_bytes(a))
}

fn u64_le(bytes: &[u8], offset: usize) -> Result<u64, Error> {
    Ok(u64::from_le_bytes(array8(bytes, offset)?))
}

fn byte(bytes: &[u8], offset: usize) -> Result<u8, Error> {
    bytes
        .get(offset)
        .copied()
        .ok_or_else(|| Error::malformed("SEV-SNP report: field out of range"))
}

fn version_triplet(bytes: &[u8], offset: usize) -> Result<(u8, u8, u8), Error> {
    // BUILD, MINOR, MAJOR
    Ok((
        byte(bytes, offset.saturating_add(2))?,
        byte(bytes, offset.saturating_add(1))?,
        byte(bytes, offset)?,
    ))
}

impl<'a> Report<'a> {
    /// Parse a report: exactly 1184 bytes, version 2, 3 or 5, signature algorithm 1, a known
    /// SIGNING_KEY value. Anything else is `malformed`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        if bytes.len() != REPORT_LEN {
            return Err(Error::malformed(format!(
                "SEV-SNP report must be exactly {REPORT_LEN} bytes, got {}",
                bytes.len()
            )));
        }
        let version = u32_le(bytes, 0x000)?;
        if !matches!(version, 2 | 3 | 5) {
            return Err(Error::malformed(format!(
                "SEV-SNP report version {version} is not supported (2, 3, 5)"
            )));
        }
        let sig_algo = u32_le(bytes, 0x034)?;
        if sig_algo != 1 {
            return Err(Error::malformed(format!(
                "SEV-SNP signature algorithm {sig_algo} (expected 1, ECDSA P-384)"
            )));
        }
        let key_info = u32_le(bytes, 0x048)?;
        let signing_key = match (key_info >> 2) & 0b111 {
            0 => SigningKey::Vcek,
            1 => SigningKey::Vlek,
            7 => SigningKey::None,
            other => {
                return Err(Error::malformed(format!(
                    "SEV-SNP SIGNING_KEY value {other} is reserved"
                )));
            }
        };
        let cpuid = if version >= 3 {
            Some((
                byte(bytes, 0x188)?,
                byte(bytes, 0x189)?,
                byte(bytes, 0x18a)?,
            ))
        } else {
            None
        };
        let mit_vectors = if version >= 5 {
            Some((u64_le(bytes, 0x1f8)?, u64_le(bytes, 0x200)?))
        } else {
            None
        };
        let signature = field(bytes, SIGNED_LEN, 144)?;
        let (sig_r, sig_s) = signature
            .split_at_checked(72)
            .ok_or_else(|| Error::malformed("signature"))?;
        Ok(Self {
            bytes,
            version,
            guest_svn: u32_le(bytes, 0x004)?,
            policy: u64_le(bytes, 0x008)?,
            family_id: field(bytes, 0x010, 16)?,
            image_id: field(bytes, 0x020, 16)?,
            vmpl: u32_le(bytes, 0x030)?,
            current_tcb: array8(bytes, 0x038)?,
            platform_info: u64_le(bytes, 0x040)?,
            author_key_en: key_info & 1 != 0,
            mask_chip_key: key_info & 0b10 != 0,
            signing_key,
            report_data: field(bytes, 0x050, 64)?,
            measurement: field(bytes, 0x090, 48)?,
            host_data: field(bytes, 0x0c0, 32)?,
            id_key_digest: field(bytes, 0x0e0, 48)?,
            author_key_digest: field(bytes, 0x110, 48)?,
            report_id: field(bytes, 0x140, 32)?,
            report_id_ma: field(bytes, 0x160, 32)?,
            reported_tcb: array8(bytes, 0x180)?,
            cpuid,
            chip_id: field(bytes, 0x1a0, 64)?,
            committed_tcb: array8(bytes, 0x1e0)?,
            current_version: version_triplet(bytes, 0x1e8)?,
            committed_version: version_triplet(bytes, 0x1ec)?,
            launch_tcb: array8(bytes, 0x1f0)?,
            mit_vectors,
            sig_r,
            sig_s,
        })
    }

    /// The signed bytes 0x000..0x2A0.
    pub fn signed_bytes(&self) -> Result<&'a [u8], Error> {
        field(self.bytes, 0, SIGNED_LEN)
    }

    /// All-zero CHIP_ID: the hypervisor set MaskChipId (or the report is VLEK-signed).
    pub fn chip_id_masked(&self) -> bool {
        self.chip_id.iter().all(|&b| b == 0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn sample() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/attestation/snp-n8-vlek-aws/evidence.bin"
        ))
        .unwrap()
    }

    #[test]
    fn parses_v3_fields() {
        let b = sample();
        let r = Report::parse(&b).unwrap();
        assert_eq!(r.version, 3);
        assert_eq!(r.vmpl, 1);
        assert_eq!(r.signing_key, SigningKey::Vlek);
        assert_eq!(r.cpuid, Some((0x19, 0x01, 0x01)));
        assert!(r.chip_id_masked());
        assert_eq!(r.current_version, (1, 55, 29));
        assert_eq!(
            Tcb::decode(r.reported_tcb, false),
            Tcb {
                fmc: None,
                bootloader: 4,
                tee: 0,
                snp: 0x18,
                microcode: 0xd9
            }
        );
    }

    #[test]
    fn rejects_wrong_length_version_algorithm_and_key() {
        let b = sample();
        assert!(Report::parse(&b[..REPORT_LEN - 1]).is_err());
        let mut longer = b.clone();
        longer.push(0);
        assert!(Report::parse(&longer).is_err());
        for v in [0u32, 1, 4, 6, 0x0100_0003] {
            let mut m = b.clone();
            m[0..4].copy_from_slice(&v.to_le_bytes());
            let e = Report::parse(&m).unwrap_err();
            assert_eq!(e.class(), crate::ErrorClass::Malformed, "version {v}");
        }
        let mut m = b.clone();
        m[0x34] = 2;
        assert!(Report::parse(&m).is_err());
        let mut m = b.clone();
        m[0x48] = 2 << 2;
        assert!(Report::parse(&m).is_err());
        let mut m = b;
        m[0x48] = 7 << 2;
        assert_eq!(Report::parse(&m).unwrap().signing_key, SigningKey::None);
    }

    #[test]
    fn v2_has_no_cpuid_and_v5_has_mitigation_vectors() {
        let mut b = sample();
        b[0] = 2;
        assert_eq!(Report::parse(&b).unwrap().cpuid, None);
        b[0] = 5;
        b[0x1f8] = 3;
        b[0x200] = 1;
        let r = Report::parse(&b).unwrap();
        assert_eq!(r.mit_vectors, Some((3, 1)));
    }

    #[test]
    fn turin_tcb_layout() {
        let t = Tcb::decode([1, 2, 3, 4, 0, 0, 0, 5], true);
        assert_eq!(
            t,
            Tcb {
                fmc: Some(1),
                bootloader: 2,
                tee: 3,
                snp: 4,
                microcode: 5
            }
        );
    }
}
