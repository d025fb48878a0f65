//! Collateral as raw material: the files of the corpus layout, parsed by each platform's
//! verifier. Loading is I/O; verification never does I/O.

use std::path::Path;

use crate::error::{Error, ErrorClass};

/// Collateral for one verification. Every field is the raw content of the file of the
/// same name in the corpus layout (`../shared/testdata/attestation/README.md`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Collateral {
    /// Intel `tcb_info.json` (PCS response shape).
    pub tcb_info: Option<Vec<u8>>,
    /// Intel `qe_identity.json` (PCS response shape).
    pub qe_identity: Option<Vec<u8>>,
    /// Intel `tcb_signing_chain.pem`.
    pub tcb_signing_chain: Option<Vec<u8>>,
    /// Intel `pck_crl.der`.
    pub pck_crl: Option<Vec<u8>>,
    /// Intel `pck_crl_issuer_chain.pem`.
    pub pck_crl_issuer_chain: Option<Vec<u8>>,
    /// Intel `root_ca_crl.der`.
    pub root_ca_crl: Option<Vec<u8>>,
    /// AMD `vcek.der` (or `vcek.pem` when there is no `vcek.der`; DER or PEM either way).
    pub vcek: Option<Vec<u8>>,
    /// AMD `vlek.der` (or `vlek.pem` when there is no `vlek.der`).
    pub vlek: Option<Vec<u8>>,
    /// `cert_chain.pem`: AMD ASK/ASVK + ARK, or an NVIDIA device chain (leaf first).
    pub cert_chain: Option<Vec<u8>>,
    /// `expected_pcrs.json`: `{"pcr0": "<hex>", ...}`; enforced when present.
    pub expected_pcrs: Option<Vec<u8>>,
    /// `nonce.hex`: the nonce the verifier expects; enforced when present.
    pub nonce: Option<Vec<u8>>,
}

impl Collateral {
    /// Read every known file present in `dir`. Absent files stay `None`; a file that
    /// exists but cannot be read is an error.
    pub fn from_dir(dir: &Path) -> Result<Self, Error> {
        let read = |name: &str| -> Result<Option<Vec<u8>>, Error> {
            let path = dir.join(name);
            match std::fs::read(&path) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::new(
                    ErrorClass::MissingCollateral,
                    format!("cannot read {}: {e}", path.display()),
                )),
            }
        };
        Ok(Self {
            tcb_info: read("tcb_info.json")?,
            qe_identity: read("qe_identity.json")?,
            tcb_signing_chain: read("tcb_signing_chain.pem")?,
            pck_crl: read("pck_crl.der")?,
            pck_crl_issuer_chain: read("pck_crl_issuer_chain.pem")?,
            root_ca_crl: read("root_ca_crl.der")?,
            vcek: read("vcek.der")?.or(read("vcek.pem")?),
            vlek: read("vlek.der")?.or(read("vlek.pem")?),
            cert_chain: read("cert_chain.pem")?,
            expected_pcrs: read("expected_pcrs.json")?,
            nonce: read("nonce.hex")?,
        })
    }
}

/// Where a long-running verifier (the KMS checking workers and peers, a worker checking its
/// own evidence) gets the collateral for one piece of evidence. Fetching is I/O and may
/// block; verification itself never does I/O.
pub trait CollateralSource: Send + Sync + std::fmt::Debug {
    /// The collateral for `evidence` as of `now`; an error of class `missing_collateral`
    /// when it cannot be had.
    fn collateral(
        &self,
        evidence: &crate::Evidence,
        now: time::OffsetDateTime,
    ) -> Result<Collateral, Error>;
}

/// No collateral: simulated evidence, Nitro documents and serialized NVIDIA evidence (which
/// need only the pinned roots) verify; Intel and AMD evidence are refused with
/// `missing_collateral`. The right source for a local network of simulated nodes.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCollateral;

impl CollateralSource for NoCollateral {
    fn collateral(
        &self,
        _evidence: &crate::Evidence,
        _now: time::OffsetDateTime,
    ) -> Result<Collateral, Error> {
        Ok(Collateral::default())
    }
}

/// The same collateral for every piece of evidence (a directory prepared offline, for a
/// fleet of one platform type behind a firewall; tests).
#[derive(Debug, Clone, Default)]
pub struct FixedCollateral(pub Collateral);

impl FixedCollateral {
    /// Collateral read from `dir` ([`Collateral::from_dir`]).
    pub fn from_dir(dir: &Path) -> Result<Self, Error> {
        Collateral::from_dir(dir).map(Self)
    }
}

impl CollateralSource for FixedCollateral {
    fn collateral(
        &self,
        _evidence: &crate::Evidence,
        _now: time::OffsetDateTime,
    ) -> Result<Collateral, Error> {
        Ok(self.0.clone())
    }
}
