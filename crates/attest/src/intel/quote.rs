//! Intel DCAP quote framing (v3 SGX, v4/v5 TDX): our own cursor parser.
//!
//! dcap-qvl parses quotes too, but it neither reports where the signed region ends nor
//! rejects non-zero bytes after the signature data; both are part of our contract
//! (`signed_region`, framing rules), and the named measurement fields come from here.
//! Layouts: Intel SGX ECDSA Quote Library API (quote v3), Intel TDX DCAP Quoting Library
//! API (quote v4, v5 with body descriptor; TD 1.0 / TD 1.5 report bodies).

use crate::error::Error;

/// Header length (all versions).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const HEADER_LEN: usize = 48;
/// SGX enclave report body.
pub(crate) const SGX_REPORT_LEN: usize = 384;
/// TD 1.0 report body.
pub(crate) const TD10_LEN: usize = 584;
/// TD 1.5 report body (TD 1.0 + TEE_TCB_SVN2 + MRSERVICETD).
pub(crate) const TD15_LEN: usize = 648;
/// TD 1.5 "ex" report body (quote v5 body type 4).
pub(crate) const TD15_EX_LEN: usize = 885;
/// v5 body descriptor: type (u16) + size (u32).
#[cfg_attr(not(test), allow(dead_code))]
const BODY_DESCRIPTOR_LEN: usize = 6;

pub(crate) const TEE_TYPE_SGX: u32 = 0x0000_0000;
pub(crate) const TEE_TYPE_TDX: u32 = 0x0000_0081;
/// ECDSA-256-with-P-256 attestation key.
const ATT_KEY_TYPE_ECDSA_P256: u16 = 2;
/// Intel's QE vendor id (939A7233-F79C-4CA9-940A-0DB3957F0607).
pub(crate) const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
];
/// Certification data type 5: PCK leaf + intermediate + root, PEM.
const CERT_TYPE_PCK_CHAIN: u16 = 5;
/// Certification data type 6: QE report certification data (v4/v5).
const CERT_TYPE_QE_REPORT: u16 = 6;

/// A cursor over untrusted bytes: every read is checked and returns a `Result`.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }
    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Error> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| Error::malformed(format!("{what}: length overflow")))?;
        let out = self
            .bytes
            .get(self.pos..end)
            .ok_or_else(|| Error::malformed(format!("quote truncated in {what}")))?;
        self.pos = end;
        Ok(out)
    }
    pub(crate) fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], Error> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    pub(crate) fn u16(&mut self, what: &str) -> Result<u16, Error> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = self.bytes.get(self.pos..).unwrap_or_default();
        self.pos = self.bytes.len();
        out
    }
}

/// The report body of a quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// SGX enclave report.
    Sgx(SgxReport),
    /// TD report; `td15` holds the TD 1.5 additions.
    Td(TdReport),
}

/// SGX enclave report (384 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SgxReport {
    pub cpu_svn: [u8; 16],
    pub misc_select: u32,
    pub attributes: [u8; 16],
    pub mr_enclave: [u8; 32],
    pub mr_signer: [u8; 32],
    pub isv_prod_id: u16,
    pub isv_svn: u16,
    pub report_data: [u8; 64],
}

impl SgxReport {
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let cpu_svn = r.array("cpu_svn")?;
        let misc_select = r.u32("misc_select")?;
        r.take(28, "reserved1")?;
        let attributes = r.array("attributes")?;
        let mr_enclave = r.array("mr_enclave")?;
        r.take(32, "reserved2")?;
        let mr_signer = r.array("mr_signer")?;
        r.take(96, "reserved3")?;
        let isv_prod_id = r.u16("isv_prod_id")?;
        let isv_svn = r.u16("isv_svn")?;
        r.take(60, "reserved4")?;
        let report_data = r.array("report_data")?;
        Ok(Self {
            cpu_svn,
            misc_select,
            attributes,
            mr_enclave,
            mr_signer,
            isv_prod_id,
            isv_svn,
            report_data,
        })
    }
    /// SGX ATTRIBUTES.DEBUG (bit 1 of the flags).
    pub(crate) fn debug(&self) -> bool {
        self.attributes.first().is_some_and(|b| b & 0x02 != 0)
    }
}

/// TD report (TD 1.0 fields, plus TD 1.5 fields when present).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TdReport {
    pub tee_tcb_svn: [u8; 16],
    pub mr_seam: [u8; 48],
    pub mr_signer_seam: [u8; 48],
    pub seam_attributes: [u8; 8],
    pub td_attributes: [u8; 8],
    pub xfam: [u8; 8],
    pub mr_td: [u8; 48],
    pub mr_config_id: [u8; 48],
    pub mr_owner: [u8; 48],
    pub mr_owner_config: [u8; 48],
    pub rtmr: [[u8; 48]; 4],
    pub report_data: [u8; 64],
    /// TD 1.5: TEE_TCB_SVN2 and MRSERVICETD.
    pub td15: Option<([u8; 16], [u8; 48])>,
}

impl TdReport {
    fn parse(bytes: &[u8], td15: bool) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let tee_tcb_svn = r.array("tee_tcb_svn")?;
        let mr_seam = r.array("mr_seam")?;
        let mr_signer_seam = r.array("mr_signer_seam")?;
        let seam_attributes = r.array("seam_attributes")?;
        let td_attributes = r.array("td_attributes")?;
        let xfam = r.array("xfam")?;
        let mr_td = r.array("mr_td")?;
        let mr_config_id = r.array("mr_config_id")?;
        let mr_owner = r.array("mr_owner")?;
        let mr_owner_config = r.array("mr_owner_config")?;
        let rtmr = [
            r.array("rtmr0")?,
            r.array("rtmr1")?,
            r.array("rtmr2")?,
            r.array("rtmr3")?,
        ];
        let report_data = r.array("report_data")?;
        let td15 = if td15 {
            Some((r.array("tee_tcb_svn2")?, r.array("mr_service_td")?))
        } else {
            None
        };
        Ok(Self {
            tee_tcb_svn,
            mr_seam,
            mr_signer_seam,
            seam_attributes,
            td_attributes,
            xfam,
            mr_td,
            mr_config_id,
            mr_owner,
            mr_owner_config,
            rtmr,
            report_data,
            td15,
        })
    }

    pub(crate) fn attributes(&self) -> u64 {
        u64::from_le_bytes(self.td_attributes)
    }
}

/// A parsed quote: header fields, body, signature data, and where the signed region ends.
#[derive(Debug, Clone)]
pub(crate) struct Quote<'a> {
    pub version: u16,
    pub tee_type: u32,
    pub body: Body,
    /// End of header‖(body descriptor)‖body: the bytes the attestation key signs.
    pub signed_len: usize,
    pub signature: [u8; 64],
    pub attestation_key: [u8; 64],
    pub qe_report: &'a [u8],
    pub qe_report_signature: [u8; 64],
    pub qe_auth_data: &'a [u8],
    /// Certification data type (5 for an embedded PCK chain).
    pub cert_type: u16,
    pub cert_data: &'a [u8],
    /// Non-zero bytes follow the signature data. Such a quote is `malformed`; the verifier
    /// reports that only when nothing else failed, so the primary failure of a quote that
    /// is also bad in another way stays visible (one upstream test quote carries text
    /// after its signature data and is expected to fail on its TCB level).
    pub nonzero_trailer: bool,
}

/// Parse the header and body only, returning (version, tee_type, body, signed_len).
fn parse_signed(r: &mut Reader<'_>) -> Result<(u16, u32, Body), Error> {
    let version = r.u16("header")?;
    let key_type = r.u16("header")?;
    let tee_type = r.u32("header")?;
    r.take(4, "header")?; // QE SVN, PCE SVN
    let vendor: [u8; 16] = r.array("header")?;
    r.take(20, "header")?; // user data
    if key_type != ATT_KEY_TYPE_ECDSA_P256 {
        return Err(Error::malformed(format!(
            "unsupported attestation key type {key_type}"
        )));
    }
    if vendor != INTEL_QE_VENDOR_ID {
        return Err(Error::malformed("QE vendor id is not Intel's"));
    }
    let body = match (version, tee_type) {
        (3, TEE_TYPE_SGX) => Body::Sgx(SgxReport::parse(r.take(SGX_REPORT_LEN, "report body")?)?),
        (4, TEE_TYPE_TDX) => Body::Td(TdReport::parse(r.take(TD10_LEN, "report body")?, false)?),
        (5, TEE_TYPE_TDX) => {
            let body_type = r.u16("body descriptor")?;
            let size = r.u32("body descriptor")?;
            let (len, td15) = match body_type {
                2 => (TD10_LEN, false),
                3 => (TD15_LEN, true),
                4 => (TD15_EX_LEN, true),
                t => return Err(Error::malformed(format!("unsupported v5 body type {t}"))),
            };
            if usize::try_from(size).ok() != Some(len) {
                return Err(Error::malformed(format!(
                    "v5 body size {size} does not match type {body_type}"
                )));
            }
            let bytes = r.take(len, "report body")?;
            Body::Td(TdReport::parse(bytes, td15)?)
        }
        (v, t) => {
            return Err(Error::malformed(format!(
                "unsupported quote version {v} with TEE type {t:#x}"
            )));
        }
    };
    Ok((version, tee_type, body))
}

/// Parse a whole quote. Bytes after the signature data must all be zero (fixed-size
/// buffers pad with zeros); anything else is flagged in `nonzero_trailer`.
pub(crate) fn parse(bytes: &[u8]) -> Result<Quote<'_>, Error> {
    let mut r = Reader::new(bytes);
    let (version, tee_type, body) = parse_signed(&mut r)?;
    let signed_len = r.pos();
    let sig_len = r.u32("signature data length")?;
    let sig_len =
        usize::try_from(sig_len).map_err(|_| Error::malformed("signature data length"))?;
    let sig_data = r.take(sig_len, "signature data")?;
    let nonzero_trailer = r.rest().iter().any(|&b| b != 0);
    let mut s = Reader::new(sig_data);
    let signature = s.array("quote signature")?;
    let attestation_key = s.array("attestation key")?;
    let mut qe = if version == 3 {
        s
    } else {
        let t = s.u16("certification data type")?;
        if t != CERT_TYPE_QE_REPORT {
            return Err(Error::malformed(format!(
                "outer certification data type {t}, expected 6"
            )));
        }
        let len = s.u32("certification data size")?;
        let len = usize::try_from(len).map_err(|_| Error::malformed("certification data size"))?;
        Reader::new(s.take(len, "QE report certification data")?)
    };
    let qe_report = qe.take(SGX_REPORT_LEN, "QE report")?;
    let qe_report_signature = qe.array("QE report signature")?;
    let auth_len = usize::from(qe.u16("QE auth data size")?);
    let qe_auth_data = qe.take(auth_len, "QE auth data")?;
    let cert_type = qe.u16("certification data type")?;
    let cert_len = qe.u32("certification data size")?;
    let cert_len =
        usize::try_from(cert_len).map_err(|_| Error::malformed("certification data size"))?;
    let cert_data = qe.take(cert_len, "certification data")?;
    Ok(Quote {
        version,
        tee_type,
        body,
        signed_len,
        signature,
        attestation_key,
        qe_report,
        qe_report_signature,
        qe_auth_data,
        cert_type,
        cert_data,
        nonzero_trailer,
    })
}

/// The signed region (header‖body) if the header and body parse.
pub(crate) fn signed_region(bytes: &[u8]) -> Option<std::ops::Range<usize>> {
    let mut r = Reader::new(bytes);
    parse_signed(&mut r).ok()?;
    Some(0..r.pos())
}

impl Quote<'_> {
    /// The PEM PCK chain (certification data type 5).
    pub(crate) fn pck_chain_pem(&self) -> Result<&[u8], Error> {
        if self.cert_type != CERT_TYPE_PCK_CHAIN {
            return Err(Error::new(
                crate::ErrorClass::Unsupported,
                format!(
                    "certification data type {} (only 5, an embedded PCK chain, is supported)",
                    self.cert_type
                ),
            ));
        }
        Ok(self.cert_data)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn corpus(case: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/attestation")
            .join(case)
            .join("evidence.bin");
        std::fs::read(p).unwrap()
    }

    #[test]
    fn parses_v3_v4_v5_and_padding() {
        let q = corpus("sgx-s1-confsw-hardening");
        let p = parse(&q).unwrap();
        assert_eq!((p.version, p.signed_len), (3, HEADER_LEN + SGX_REPORT_LEN));
        let q = corpus("tdx-t1-uptodate");
        let p = parse(&q).unwrap();
        assert_eq!((p.version, p.signed_len), (4, HEADER_LEN + TD10_LEN));
        let q = corpus("tdx-t10-v5-uptodate");
        let p = parse(&q).unwrap();
        assert_eq!(p.signed_len, HEADER_LEN + BODY_DESCRIPTOR_LEN + TD15_LEN);
        assert!(matches!(p.body, Body::Td(TdReport { td15: Some(_), .. })));
    }

    #[test]
    fn rejects_non_zero_trailer_and_truncation() {
        let mut q = corpus("sgx-s1-confsw-hardening");
        q.extend_from_slice(&[0, 0, 0]);
        assert!(!parse(&q).unwrap().nonzero_trailer);
        q.push(1);
        assert!(parse(&q).unwrap().nonzero_trailer);
        let q = corpus("tdx-t1-uptodate");
        for cut in [0, 47, 48, 600, q.len() / 2] {
            assert_eq!(
                parse(&q[..cut]).unwrap_err().class(),
                crate::ErrorClass::Malformed
            );
        }
    }

    #[test]
    fn rejects_bad_header_fields() {
        let q = corpus("tdx-t1-uptodate");
        for (offset, what) in [
            (0usize, "version"),
            (2, "key type"),
            (4, "tee type"),
            (12, "vendor"),
        ] {
            let mut b = q.clone();
            b[offset] ^= 0x40;
            assert!(parse(&b).is_err(), "{what}");
        }
    }
}
