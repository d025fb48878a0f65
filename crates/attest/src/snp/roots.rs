//! Pinned AMD trust anchors: ARK (root), ASK (signs VCEKs) and ASVK (signs VLEKs) per
//! product, copied byte for byte from `testdata/attestation/roots/amd/` (see its README for
//! provenance). A root or intermediate supplied with the evidence is accepted only when it
//! is DER-equal to one of these.

use std::sync::OnceLock;

use rsa::{BigUint, RsaPublicKey};
use time::OffsetDateTime;

use super::Product;
use super::x509::{self, Certificate, Der, TAG_INTEGER, TAG_SEQUENCE};
use crate::error::Error;

/// (product, ARK, ASK, ASVK) PEM files.
type PemSet = (Product, &'static [u8], &'static [u8], &'static [u8]);

const PEMS: [PemSet; 3] = [
    (
        Product::Milan,
        include_bytes!("../../roots/amd/ark_milan.pem"),
        include_bytes!("../../roots/amd/ask_milan.pem"),
        include_bytes!("../../roots/amd/asvk_milan.pem"),
    ),
    (
        Product::Genoa,
        include_bytes!("../../roots/amd/ark_genoa.pem"),
        include_bytes!("../../roots/amd/ask_genoa.pem"),
        include_bytes!("../../roots/amd/asvk_genoa.pem"),
    ),
    (
        Product::Turin,
        include_bytes!("../../roots/amd/ark_turin.pem"),
        include_bytes!("../../roots/amd/ask_turin.pem"),
        include_bytes!("../../roots/amd/asvk_turin.pem"),
    ),
];

/// One pinned certificate with what verification needs from it.
#[derive(Debug)]
pub(crate) struct Anchor {
    pub der: Vec<u8>,
    pub subject_raw: Vec<u8>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub key: RsaPublicKey,
}

/// The pinned certificates of one product.
#[derive(Debug)]
pub(crate) struct ProductRoots {
    pub ark: Anchor,
    pub ask: Anchor,
    pub asvk: Anchor,
}

/// RSA public key from a SubjectPublicKeyInfo whose algorithm is rsaEncryption or
/// RSASSA-PSS (the key bits are a PKCS#1 RSAPublicKey either way).
pub(crate) fn rsa_key(cert: &Certificate<'_>) -> Result<RsaPublicKey, Error> {
    const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    if cert.key_algorithm.oid != RSA_ENCRYPTION && cert.key_algorithm.oid != super::OID_RSASSA_PSS {
        return Err(Error::bad_chain("AMD CA key is not an RSA key"));
    }
    let mut d = Der::new(cert.key);
    let seq = d.expect(TAG_SEQUENCE)?;
    d.finish()?;
    let mut k = Der::new(seq.value);
    let n = x509::uint_bytes(k.expect(TAG_INTEGER)?.value)?;
    let e = x509::uint_bytes(k.expect(TAG_INTEGER)?.value)?;
    k.finish()?;
    RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e))
        .map_err(|e| Error::bad_chain(format!("AMD CA RSA key: {e}")))
}

fn anchor(pem: &[u8]) -> Result<Anchor, Error> {
    let der = x509::der_or_pem(pem)?;
    let cert = Certificate::parse(&der)?;
    Ok(Anchor {
        subject_raw: cert.subject_raw.to_vec(),
        not_before: cert.not_before,
        not_after: cert.not_after,
        key: rsa_key(&cert)?,
        der: der.clone(),
    })
}

fn load() -> Result<Vec<(Product, ProductRoots)>, Error> {
    PEMS.iter()
        .map(|&(p, ark, ask, asvk)| {
            Ok((
                p,
                ProductRoots {
                    ark: anchor(ark)?,
                    ask: anchor(ask)?,
                    asvk: anchor(asvk)?,
                },
            ))
        })
        .collect()
}

/// The pinned certificates of `product`.
pub(crate) fn for_product(product: Product) -> Result<&'static ProductRoots, Error> {
    static ROOTS: OnceLock<Result<Vec<(Product, ProductRoots)>, Error>> = OnceLock::new();
    let all = ROOTS.get_or_init(load).as_ref().map_err(|e| e.clone())?;
    all.iter()
        .find(|(p, _)| *p == product)
        .map(|(_, r)| r)
        .ok_or_else(|| Error::bad_chain(format!("no pinned AMD roots for {}", product.name())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use sha2::{Digest, Sha256};

    use super::*;

    /// SHA-256 of the DER of each pinned certificate, as published in
    /// testdata/attestation/roots/README.md.
    const PINNED_SHA256: [(Product, &str, &str, &str); 3] = [
        (
            Product::Milan,
            "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
            "67d303bd3905fd38db8b20e0793699870e7fa612eaad5dec358293fd8c0bac1b",
            "c5e081f59b7efab1fe2f8b505e159704e72f29cab7ef7cf628a05a42439082f5",
        ),
        (
            Product::Genoa,
            "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
            "5464738c1546aed5f2cecf1dc98c5c960a92e8913238a61711bc90ec6e828521",
            "197e610743a917d6b9bb982a5a9226ccc0a15b611be0619e626aca9151457372",
        ),
        (
            Product::Turin,
            "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
            "5b77ef5fe7a7a004fd9032668fba9d0fda22f88c4442069a479636a6ae3b3185",
            "104e10a8bd060a3c20a434261a57d0588fd65a88915b4f65b08bdecaf8df1a3c",
        ),
    ];

    #[test]
    fn pinned_certificates_have_the_published_hashes() {
        for (product, ark, ask, asvk) in PINNED_SHA256 {
            let r = for_product(product).unwrap();
            assert_eq!(
                hex::encode(Sha256::digest(&r.ark.der)),
                ark,
                "{product:?} ARK"
            );
            assert_eq!(
                hex::encode(Sha256::digest(&r.ask.der)),
                ask,
                "{product:?} ASK"
            );
            assert_eq!(
                hex::encode(Sha256::digest(&r.asvk.der)),
                asvk,
                "{product:?} ASVK"
            );
        }
    }

    /// The pinned chain is constant, so its signatures are checked here once rather than
    /// on every verification: ARK self-signed, ASK and ASVK signed by the ARK.
    #[test]
    fn pinned_chains_verify() {
        for (product, ..) in PINNED_SHA256 {
            let r = for_product(product).unwrap();
            let ark = Certificate::parse(&r.ark.der).unwrap();
            super::super::verify_pss(&r.ark.key, &ark).unwrap();
            assert_eq!(ark.issuer_raw, ark.subject_raw);
            for inter in [&r.ask, &r.asvk] {
                let c = Certificate::parse(&inter.der).unwrap();
                super::super::verify_pss(&r.ark.key, &c).unwrap();
                assert_eq!(c.issuer_raw, ark.subject_raw);
            }
            // An ASK is not signed by another product's ARK.
            let other = for_product(if product == Product::Milan {
                Product::Genoa
            } else {
                Product::Milan
            })
            .unwrap();
            let ask = Certificate::parse(&r.ask.der).unwrap();
            assert!(super::super::verify_pss(&other.ark.key, &ask).is_err());
        }
    }
}
