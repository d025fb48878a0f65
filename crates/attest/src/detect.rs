//! Evidence input handling: text decoding (hex, base64) and platform auto-detection.
//!
//! Detection only looks at framing bytes; it never decides validity. A wrong guess is
//! caught by the platform's verifier, which parses the bytes in full.
//!
//! | platform | recognised by |
//! |---|---|
//! | `sgx` | Intel quote header: version 3 (or 4/5 with TEE type 0x00), attestation key type 2 or 3 |
//! | `tdx` | Intel quote header: version 4 or 5, TEE type 0x81, attestation key type 2 or 3 |
//! | `sev-snp` | at least 0x2A0 bytes, version 2..=15 (u32 LE at 0), signature algorithm 1 (ECDSA P-384, u32 LE at 0x34) |
//! | `nitro` | CBOR: array of 4 (`0x84`), or tag 18 (`0xd2`) then array of 4 |
//! | `nvidia-gpu` | SPDM 1.x `GET_MEASUREMENTS` request (`0x1?` `0xE0`), or a JSON array (serialized evidence) |
//! | `simulated` | magic `PITHSIM1` (see `simulated`) |

use crate::Evidence;
use crate::error::Error;
use crate::report::Platform;

/// Byte offset of the SEV-SNP signature (end of the signed part of the report).
const SNP_SIGNED_LEN: usize = 0x2A0;

/// Detect the platform of raw (binary, already decoded) evidence bytes, or `None` when no
/// platform's framing matches.
pub fn platform(bytes: &[u8]) -> Option<Platform> {
    if looks_like_json_array(bytes) {
        return Some(Platform::NvidiaGpu);
    }
    match bytes {
        [0x84, ..] | [0xd2, 0x84, ..] => return Some(Platform::Nitro),
        [v, 0xE0, ..] if v & 0xF0 == 0x10 => return Some(Platform::NvidiaGpu),
        _ => {}
    }
    if let Some(p) = intel(bytes) {
        return Some(p);
    }
    if snp(bytes) {
        return Some(Platform::SevSnp);
    }
    if bytes.starts_with(crate::simulated::MAGIC) {
        return Some(Platform::Simulated);
    }
    None
}

fn u16_le(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([*b.first()?, *b.get(1)?]))
}

fn u32_le(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// Intel DCAP quote header: version (u16), attestation key type (u16), TEE type (u32).
fn intel(bytes: &[u8]) -> Option<Platform> {
    // A header alone is 48 bytes; anything shorter is not worth calling a quote.
    if bytes.len() < 48 {
        return None;
    }
    let version = u16_le(bytes, 0)?;
    let key_type = u16_le(bytes, 2)?;
    let tee_type = u32_le(bytes, 4)?;
    if !matches!(key_type, 2 | 3) {
        return None;
    }
    match (version, tee_type) {
        (3, 0x00) | (4 | 5, 0x00) => Some(Platform::Sgx),
        (4 | 5, 0x81) => Some(Platform::Tdx),
        _ => None,
    }
}

/// SEV-SNP ATTESTATION_REPORT: plausible version and ECDSA P-384 signature algorithm. The
/// exact length (1184) is the verifier's check, so that a truncated or padded report is
/// reported as `malformed` SNP evidence rather than as unknown bytes.
fn snp(bytes: &[u8]) -> bool {
    if bytes.len() < SNP_SIGNED_LEN {
        return false;
    }
    let version_ok = u32_le(bytes, 0).is_some_and(|v| (2..=15).contains(&v));
    let algo_ok = u32_le(bytes, 0x34) == Some(1);
    version_ok && algo_ok
}

fn looks_like_json_array(bytes: &[u8]) -> bool {
    let mut it = bytes.iter().skip_while(|b| b.is_ascii_whitespace());
    matches!(it.next(), Some(b'['))
        && bytes.iter().rev().find(|b| !b.is_ascii_whitespace()) == Some(&b']')
}

/// How the input file was encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Raw bytes (including JSON evidence, which is passed on as is).
    Binary,
    /// Hexadecimal text (whitespace and an optional `0x` prefix tolerated).
    Hex,
    /// Base64 text, standard or URL-safe alphabet, padded or not (whitespace tolerated).
    Base64,
}

impl Encoding {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Binary => "binary",
            Self::Hex => "hex",
            Self::Base64 => "base64",
        }
    }
}

/// Evidence decoded from an input file, with how it was encoded.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The evidence (platform detected or as given).
    pub evidence: Evidence,
    /// The input encoding.
    pub encoding: Encoding,
}

/// Decode an input file's content into evidence: binary, hex or base64 text (whitespace
/// tolerant), or NVIDIA serialized evidence (JSON, passed on as is). With `platform`
/// `None` the platform is detected from the decoded bytes.
///
/// Errors (`malformed`): empty input, or no platform recognised when detecting.
pub fn evidence(input: &[u8], platform: Option<Platform>) -> Result<Decoded, Error> {
    let candidates = candidates(input);
    if candidates.is_empty() {
        return Err(Error::malformed("empty evidence"));
    }
    // Prefer the first decoding whose bytes are recognised (and, with an explicit platform,
    // recognised as that platform); with an explicit platform and nothing recognised, take
    // the first decoding and let the verifier report what is wrong.
    let recognised = candidates.iter().find_map(|(enc, bytes)| {
        let p = self::platform(bytes)?;
        match platform {
            Some(want) if want != p => None,
            _ => Some((p, *enc, bytes)),
        }
    });
    match (recognised, platform) {
        (Some((p, encoding, bytes)), _) => Ok(Decoded {
            evidence: Evidence::new(p, bytes.clone()),
            encoding,
        }),
        (None, Some(p)) => {
            let (encoding, bytes) = candidates
                .into_iter()
                .next()
                .ok_or_else(|| Error::malformed("empty evidence"))?;
            Ok(Decoded {
                evidence: Evidence::new(p, bytes),
                encoding,
            })
        }
        (None, None) => Err(Error::malformed(
            "unrecognised evidence: not an Intel quote, SEV-SNP report, Nitro document, SPDM report, \
             NVIDIA evidence list or simulated evidence (in binary, hex or base64)",
        )),
    }
}

/// The possible decodings of `input`, most specific first: hex, base64, then the raw bytes.
fn candidates(input: &[u8]) -> Vec<(Encoding, Vec<u8>)> {
    let mut out = Vec::new();
    if input.iter().all(|b| b.is_ascii_whitespace()) {
        return out;
    }
    if !looks_like_json_array(input) {
        if let Some(b) = decode_hex(input) {
            out.push((Encoding::Hex, b));
        }
        if let Some(b) = decode_base64(input) {
            out.push((Encoding::Base64, b));
        }
    }
    out.push((Encoding::Binary, input.to_vec()));
    out
}

fn compact(input: &[u8]) -> Option<Vec<u8>> {
    if !input.is_ascii() {
        return None;
    }
    let s: Vec<u8> = input
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if s.is_empty() { None } else { Some(s) }
}

/// Hex text, whitespace anywhere, optional `0x` prefix, either case.
pub fn decode_hex(input: &[u8]) -> Option<Vec<u8>> {
    let s = compact(input)?;
    let s = s
        .strip_prefix(b"0x")
        .or_else(|| s.strip_prefix(b"0X"))
        .unwrap_or(&s);
    hex::decode(s).ok()
}

/// Base64 text (standard or URL-safe alphabet, with or without padding), whitespace anywhere.
pub fn decode_base64(input: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let s = compact(input)?;
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(&s).ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn intel_header(version: u16, tee: u32) -> Vec<u8> {
        let mut q = vec![0u8; 600];
        q[0..2].copy_from_slice(&version.to_le_bytes());
        q[2..4].copy_from_slice(&2u16.to_le_bytes());
        q[4..8].copy_from_slice(&tee.to_le_bytes());
        q
    }

    #[test]
    fn intel_headers() {
        assert_eq!(platform(&intel_header(3, 0)), Some(Platform::Sgx));
        assert_eq!(platform(&intel_header(4, 0x81)), Some(Platform::Tdx));
        assert_eq!(platform(&intel_header(5, 0x81)), Some(Platform::Tdx));
        assert_eq!(platform(&intel_header(3, 0x81)), None);
        assert_eq!(platform(&intel_header(6, 0x81)), None);
        let mut bad_key = intel_header(4, 0x81);
        bad_key[2] = 9;
        assert_eq!(platform(&bad_key), None);
        assert_eq!(platform(&intel_header(4, 0x81)[..20]), None);
    }

    #[test]
    fn snp_reports() {
        let mut r = vec![0u8; 1184];
        r[0] = 2;
        r[0x34] = 1;
        assert_eq!(platform(&r), Some(Platform::SevSnp));
        r[0] = 5;
        assert_eq!(platform(&r), Some(Platform::SevSnp));
        r[0] = 1;
        assert_eq!(platform(&r), None);
        r[0] = 3;
        r[0x34] = 2;
        assert_eq!(platform(&r), None);
    }

    #[test]
    fn cbor_spdm_json() {
        assert_eq!(platform(&[0x84, 0x44, 0xa1]), Some(Platform::Nitro));
        assert_eq!(platform(&[0xd2, 0x84, 0x44]), Some(Platform::Nitro));
        assert_eq!(
            platform(&[0x11, 0xe0, 0x01, 0xff]),
            Some(Platform::NvidiaGpu)
        );
        assert_eq!(platform(&[0x12, 0xe0]), Some(Platform::NvidiaGpu));
        assert_eq!(platform(&[0x11, 0xe1]), None);
        assert_eq!(
            platform(b"  [ {\"arch\": \"HOPPER\"} ]\n"),
            Some(Platform::NvidiaGpu)
        );
        assert_eq!(platform(b"[ unterminated"), None);
        assert_eq!(platform(b""), None);
        assert_eq!(platform(b"hello world"), None);
        assert_eq!(platform(b"PITHSIM1\x00\x01"), Some(Platform::Simulated));
        assert_eq!(platform(b"PITHSIM2"), None);
    }

    #[test]
    fn text_encodings() {
        let q = intel_header(4, 0x81);
        let hex_text = format!("0x{}\n", hex::encode(&q));
        let d = evidence(hex_text.as_bytes(), None).unwrap();
        assert_eq!(
            (d.encoding, d.evidence.platform()),
            (Encoding::Hex, Platform::Tdx)
        );
        assert_eq!(d.evidence.bytes(), &q[..]);

        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&q);
        let wrapped: String = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        let d = evidence(wrapped.as_bytes(), None).unwrap();
        assert_eq!(
            (d.encoding, d.evidence.platform()),
            (Encoding::Base64, Platform::Tdx)
        );
        assert_eq!(d.evidence.bytes(), &q[..]);

        let d = evidence(&q, None).unwrap();
        assert_eq!(
            (d.encoding, d.evidence.platform()),
            (Encoding::Binary, Platform::Tdx)
        );

        let json = b"[{\"evidence\": \"AAAA\"}]";
        let d = evidence(json, None).unwrap();
        assert_eq!(
            (d.encoding, d.evidence.platform()),
            (Encoding::Binary, Platform::NvidiaGpu)
        );
        assert_eq!(d.evidence.bytes(), json);
    }

    #[test]
    fn garbage_and_explicit_platform() {
        assert!(evidence(b"", None).is_err());
        assert!(evidence(b" \n\t", None).is_err());
        let e = evidence(b"certainly not evidence", None).unwrap_err();
        assert_eq!(e.class(), crate::ErrorClass::Malformed);
        // With an explicit platform, unrecognised bytes go to that platform's verifier.
        let d = evidence(b"deadbeef", Some(Platform::SevSnp)).unwrap();
        assert_eq!(d.evidence.platform(), Platform::SevSnp);
        assert_eq!(d.evidence.bytes(), &[0xde, 0xad, 0xbe, 0xef]);
        // An explicit platform picks the decoding recognised as that platform.
        let q = intel_header(3, 0);
        let d = evidence(hex::encode(&q).as_bytes(), Some(Platform::Sgx)).unwrap();
        assert_eq!(d.evidence.bytes(), &q[..]);
    }
}
