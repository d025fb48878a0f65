//! The measurement hash: one 32-byte identifier per workload identity, used by on-chain
//! allow-lists, the KMS and policies. Defined in `docs/protocol.md` ("Measurement hash").
//!
//! ```text
//! measurement_hash = SHA-256( "pith/measurement/v1/" || platform
//!                             || for each identity field of the platform, in order, if present:
//!                                  u8(len(name)) || name || u32_be(len(value)) || value )
//! ```
//!
//! `platform` is [`Platform::as_str`]; names are the [`Measurements`] keys (ASCII); values
//! are the raw bytes from the evidence (text values in UTF-8). Field order per platform is
//! [`identity_fields`]. Absent fields are skipped; the name prefix keeps that unambiguous.

use sha2::{Digest, Sha256};

use crate::report::{Measurements, Platform, Value, Verified};

/// Domain tag prefix; the platform identifier follows it.
pub const DOMAIN_PREFIX: &str = "pith/measurement/v1/";

/// The fixed identity fields of `platform`, in hashing order. NVIDIA additionally hashes
/// every measurement block (`gpu{i}_block{n}`) after these, ordered by `(i, n)` numerically.
pub fn identity_fields(platform: Platform) -> &'static [&'static str] {
    match platform {
        Platform::Sgx => &["mr_enclave", "mr_signer", "isv_prod_id"],
        Platform::Tdx | Platform::Simulated => &[
            "mr_td",
            "mr_config_id",
            "mr_owner",
            "mr_owner_config",
            "rtmr0",
            "rtmr1",
            "rtmr2",
            "rtmr3",
        ],
        Platform::SevSnp => &["measurement", "host_data"],
        Platform::Nitro => &["pcr0", "pcr1", "pcr2"],
        Platform::NvidiaGpu => &["driver_version", "vbios_version"],
    }
}

/// Parse `gpu{i}_block{n}` into `(i, n)`.
pub(crate) fn gpu_block_key(name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix("gpu")?;
    let (i, n) = rest.split_once("_block")?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(i) || !all_digits(n) {
        return None;
    }
    Some((i.parse().ok()?, n.parse().ok()?))
}

/// The canonical bytes of a field value: raw bytes, or UTF-8 text. `isv_prod_id` given as
/// decimal text is normalised to its 2-byte little-endian form (as in the SGX report body).
fn canonical(name: &str, value: &Value) -> Vec<u8> {
    match value {
        Value::Bytes(b) => b.clone(),
        Value::Text(t) if name == "isv_prod_id" => match t.trim().parse::<u16>() {
            Ok(n) => n.to_le_bytes().to_vec(),
            Err(_) => t.as_bytes().to_vec(),
        },
        Value::Text(t) => t.as_bytes().to_vec(),
    }
}

/// The hash preimage for `measurements` of `platform` (see the module docs).
pub fn preimage(platform: Platform, measurements: &Measurements) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(DOMAIN_PREFIX.as_bytes());
    out.extend_from_slice(platform.as_str().as_bytes());
    let mut push = |name: &str, value: &Value| {
        let bytes = canonical(name, value);
        // Names are short ASCII constants or `gpu{i}_block{n}`; values are at most a few
        // hundred bytes. Saturate rather than wrap if that ever stops being true.
        out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&bytes);
    };
    for name in identity_fields(platform) {
        if let Some(v) = measurements.get(*name) {
            push(name, v);
        }
    }
    if platform == Platform::NvidiaGpu {
        let mut blocks: Vec<((u32, u32), &String, &Value)> = measurements
            .iter()
            .filter_map(|(k, v)| gpu_block_key(k).map(|key| (key, k, v)))
            .collect();
        blocks.sort_by_key(|(key, _, _)| *key);
        for (_, name, v) in blocks {
            push(name, v);
        }
    }
    out
}

/// SHA-256 of [`preimage`].
pub fn hash_measurements(platform: Platform, measurements: &Measurements) -> [u8; 32] {
    Sha256::digest(preimage(platform, measurements)).into()
}

/// The measurement hash of verified evidence (see `docs/protocol.md`).
pub fn measurement_hash(verified: &Verified) -> [u8; 32] {
    hash_measurements(verified.platform(), verified.measurements())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, &str)]) -> Measurements {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::Bytes(hex::decode(v).unwrap())))
            .collect()
    }

    /// The test vectors of `docs/protocol.md`, computed independently (Python, from the raw
    /// corpus evidence) and checked here against this implementation.
    #[test]
    fn corpus_vectors() {
        for (platform, fields, want) in vectors::ALL {
            let got = hex::encode(hash_measurements(*platform, &m(fields)));
            assert_eq!(&got, want, "{platform}");
        }
    }

    #[test]
    fn order_names_and_absence_matter() {
        let a = m(&[("measurement", "aa"), ("host_data", "bb")]);
        let swapped = m(&[("measurement", "bb"), ("host_data", "aa")]);
        let only_measurement = m(&[("measurement", "aabb")]);
        let h = |x: &Measurements| hash_measurements(Platform::SevSnp, x);
        assert_ne!(h(&a), h(&swapped));
        assert_ne!(h(&a), h(&only_measurement));
        // Non-identity fields do not change the hash.
        let mut extra = a.clone();
        extra.insert("id_key_digest".into(), Value::Bytes(vec![1; 48]));
        assert_eq!(h(&a), h(&extra));
        // The platform is part of the domain tag.
        assert_ne!(
            hash_measurements(Platform::Tdx, &m(&[("mr_td", "00")])),
            hash_measurements(Platform::Simulated, &m(&[("mr_td", "00")]))
        );
    }

    #[test]
    fn preimage_layout() {
        let p = preimage(
            Platform::Nitro,
            &m(&[("pcr1", "0102"), ("pcr0", "ff"), ("pcr9", "00")]),
        );
        let mut want = b"pith/measurement/v1/nitro".to_vec();
        want.extend_from_slice(&[4, b'p', b'c', b'r', b'0', 0, 0, 0, 1, 0xff]);
        want.extend_from_slice(&[4, b'p', b'c', b'r', b'1', 0, 0, 0, 2, 1, 2]);
        assert_eq!(p, want);
    }

    #[test]
    fn isv_prod_id_text_and_bytes_agree() {
        let mut a = m(&[("mr_enclave", "11"), ("mr_signer", "22")]);
        let mut b = a.clone();
        a.insert("isv_prod_id".into(), Value::Text("258".into()));
        b.insert("isv_prod_id".into(), Value::Bytes(vec![2, 1]));
        assert_eq!(
            hash_measurements(Platform::Sgx, &a),
            hash_measurements(Platform::Sgx, &b)
        );
    }

    #[test]
    fn nvidia_blocks_numeric_order() {
        let mut ms = Measurements::new();
        ms.insert("driver_version".into(), Value::Text("535.86.09".into()));
        ms.insert("gpu0_block10".into(), Value::Bytes(vec![10]));
        ms.insert("gpu0_block2".into(), Value::Bytes(vec![2]));
        ms.insert("gpu1_block1".into(), Value::Bytes(vec![11]));
        let p = preimage(Platform::NvidiaGpu, &ms);
        let pos = |needle: &[u8]| p.windows(needle.len()).position(|w| w == needle).unwrap();
        assert!(pos(b"driver_version") < pos(b"gpu0_block2"));
        assert!(pos(b"gpu0_block2") < pos(b"gpu0_block10"));
        assert!(pos(b"gpu0_block10") < pos(b"gpu1_block1"));
        assert_eq!(gpu_block_key("gpu3_block17"), Some((3, 17)));
        assert_eq!(gpu_block_key("gpu_block1"), None);
        assert_eq!(gpu_block_key("gpu1_block"), None);
        assert_eq!(gpu_block_key("gpu1_blockx"), None);
    }
}

#[cfg(test)]
#[path = "measurement_vectors.rs"]
mod vectors;
