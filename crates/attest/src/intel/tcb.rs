//! Our own TCBInfo (v2 and v3) and QE identity parsing and TCB-level evaluation.
//!
//! dcap-qvl 0.7 only parses TCBInfo v3, and its verifier needs all five collateral files;
//! this module serves TCBInfo v2 (flat `sgxtcbcompNNsvn`, no `id`, no advisories) and the
//! lenient / own-pipeline paths. Semantics follow Intel's QVL (and the corpus README §4):
//! levels sorted like QVL (SGX components, then PCESVN, then TDX components, highest
//! first); the first level met by every component wins; for TDX, TEE_TCB_SVN bytes 0-1
//! are left to the TDX module identity when TEE_TCB_SVN[1] > 0; module identity
//! `TDX_%02X` of TEE_TCB_SVN[1] (MRSIGNERSEAM and SEAM attributes checked), its level by
//! TEE_TCB_SVN[0]; QE level by ISVSVN; convergence like QVL's `convergeTcbStatuses`.

use serde_json::{Map, Value as Json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{Error, ErrorClass};
use crate::report::TcbStatus;

/// Which TEE a TCBInfo or QE identity is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tee {
    Sgx,
    Tdx,
}

/// One TCB level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Level {
    pub sgx: [u8; 16],
    pub pce_svn: u16,
    /// TDX components (TDX TCBInfo only).
    pub tdx: Option<[u8; 16]>,
    pub status: TcbStatus,
    pub advisory_ids: Vec<String>,
}

/// A TDX module identity (`tdxModuleIdentities[]`) or the base `tdxModule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ModuleIdentity {
    pub id: String,
    pub mrsigner: [u8; 48],
    pub attributes: [u8; 8],
    pub attributes_mask: [u8; 8],
    /// (isvsvn, status, advisories), highest isvsvn first.
    pub levels: Vec<(u8, TcbStatus, Vec<String>)>,
}

/// Parsed TCBInfo (v2 or v3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TcbInfo {
    pub tee: Tee,
    pub version: u64,
    pub issue_date: OffsetDateTime,
    pub next_update: OffsetDateTime,
    pub fmspc: [u8; 6],
    pub pce_id: [u8; 2],
    pub levels: Vec<Level>,
    pub tdx_module: Option<ModuleIdentity>,
    pub tdx_module_identities: Vec<ModuleIdentity>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::malformed(msg)
}

fn field<'a>(m: &'a Map<String, Json>, k: &str, ctx: &str) -> Result<&'a Json, Error> {
    m.get(k).ok_or_else(|| bad(format!("{ctx}: missing {k}")))
}
fn str_field<'a>(m: &'a Map<String, Json>, k: &str, ctx: &str) -> Result<&'a str, Error> {
    field(m, k, ctx)?
        .as_str()
        .ok_or_else(|| bad(format!("{ctx}: {k} is not a string")))
}
fn u64_field(m: &Map<String, Json>, k: &str, ctx: &str) -> Result<u64, Error> {
    field(m, k, ctx)?
        .as_u64()
        .ok_or_else(|| bad(format!("{ctx}: {k} is not an unsigned integer")))
}
fn svn8(v: u64, what: &str) -> Result<u8, Error> {
    u8::try_from(v).map_err(|_| bad(format!("{what} {v} out of range")))
}
fn obj<'a>(v: &'a Json, ctx: &str) -> Result<&'a Map<String, Json>, Error> {
    v.as_object()
        .ok_or_else(|| bad(format!("{ctx} is not an object")))
}
fn arr<'a>(v: &'a Json, ctx: &str) -> Result<&'a Vec<Json>, Error> {
    v.as_array()
        .ok_or_else(|| bad(format!("{ctx} is not an array")))
}
pub(crate) fn hex_array<const N: usize>(s: &str, what: &str) -> Result<[u8; N], Error> {
    let v = hex::decode(s).map_err(|_| bad(format!("{what} is not hex")))?;
    <[u8; N]>::try_from(v.as_slice())
        .map_err(|_| bad(format!("{what} has {} bytes, expected {N}", v.len())))
}
pub(crate) fn date(s: &str, what: &str) -> Result<OffsetDateTime, Error> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|_| bad(format!("{what} {s:?} is not RFC 3339")))
}
fn status(m: &Map<String, Json>, ctx: &str) -> Result<TcbStatus, Error> {
    str_field(m, "tcbStatus", ctx)?.parse()
}
fn advisories(m: &Map<String, Json>) -> Result<Vec<String>, Error> {
    match m.get("advisoryIDs") {
        None => Ok(Vec::new()),
        Some(v) => arr(v, "advisoryIDs")?
            .iter()
            .map(|a| {
                a.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad("advisory id is not a string"))
            })
            .collect(),
    }
}

fn components(v: &Json, ctx: &str) -> Result<[u8; 16], Error> {
    let list = arr(v, ctx)?;
    if list.len() != 16 {
        return Err(bad(format!(
            "{ctx}: {} components, expected 16",
            list.len()
        )));
    }
    let mut out = [0u8; 16];
    for (slot, c) in out.iter_mut().zip(list) {
        *slot = svn8(u64_field(obj(c, ctx)?, "svn", ctx)?, ctx)?;
    }
    Ok(out)
}

fn module_identity(v: &Json, id: Option<&str>) -> Result<ModuleIdentity, Error> {
    let m = obj(v, "tdx module identity")?;
    let ctx = "tdx module identity";
    let id = match id {
        Some(i) => i.to_owned(),
        None => str_field(m, "id", ctx)?.to_owned(),
    };
    let mut levels = Vec::new();
    if let Some(ls) = m.get("tcbLevels") {
        for l in arr(ls, "tdx module tcbLevels")? {
            let l = obj(l, ctx)?;
            let tcb = obj(field(l, "tcb", ctx)?, ctx)?;
            levels.push((
                svn8(u64_field(tcb, "isvsvn", ctx)?, "isvsvn")?,
                status(l, ctx)?,
                advisories(l)?,
            ));
        }
    }
    levels.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(ModuleIdentity {
        id,
        mrsigner: hex_array(str_field(m, "mrsigner", ctx)?, "tdxModule mrsigner")?,
        attributes: hex_array(str_field(m, "attributes", ctx)?, "tdxModule attributes")?,
        attributes_mask: hex_array(
            str_field(m, "attributesMask", ctx)?,
            "tdxModule attributesMask",
        )?,
        levels,
    })
}

impl TcbInfo {
    /// Parse the signed `tcbInfo` JSON text (v2 or v3).
    pub(crate) fn parse(text: &str) -> Result<Self, Error> {
        let v: Json =
            serde_json::from_str(text).map_err(|e| bad(format!("TCBInfo is not JSON: {e}")))?;
        let m = obj(&v, "tcbInfo")?;
        let ctx = "tcbInfo";
        let version = u64_field(m, "version", ctx)?;
        let tee = match (version, m.get("id").and_then(Json::as_str)) {
            (2, None) => Tee::Sgx,
            (v, Some("SGX")) if v >= 2 => Tee::Sgx,
            (v, Some("TDX")) if v >= 3 => Tee::Tdx,
            (v, id) => {
                return Err(Error::new(
                    ErrorClass::Unsupported,
                    format!("unsupported TCBInfo version {v} id {id:?}"),
                ));
            }
        };
        let mut levels = Vec::new();
        for l in arr(field(m, "tcbLevels", ctx)?, "tcbLevels")? {
            let l = obj(l, "tcb level")?;
            let tcb = obj(field(l, "tcb", "tcb level")?, "tcb")?;
            let (sgx, tdx) = if version == 2 {
                let mut sgx = [0u8; 16];
                for (i, slot) in sgx.iter_mut().enumerate() {
                    let k = format!("sgxtcbcomp{:02}svn", i.saturating_add(1));
                    *slot = svn8(u64_field(tcb, &k, "tcb")?, &k)?;
                }
                (sgx, None)
            } else {
                let sgx = components(field(tcb, "sgxtcbcomponents", "tcb")?, "sgxtcbcomponents")?;
                let tdx = match tee {
                    Tee::Tdx => Some(components(
                        field(tcb, "tdxtcbcomponents", "tcb")?,
                        "tdxtcbcomponents",
                    )?),
                    Tee::Sgx => None,
                };
                (sgx, tdx)
            };
            let pce_svn = u16::try_from(u64_field(tcb, "pcesvn", "tcb")?)
                .map_err(|_| bad("pcesvn out of range"))?;
            levels.push(Level {
                sgx,
                pce_svn,
                tdx,
                status: status(l, "tcb level")?,
                advisory_ids: advisories(l)?,
            });
        }
        // Intel QVL's order, independent of the JSON order.
        levels.sort_by(|a, b| {
            b.sgx
                .cmp(&a.sgx)
                .then_with(|| b.pce_svn.cmp(&a.pce_svn))
                .then_with(|| b.tdx.cmp(&a.tdx))
        });
        let tdx_module = match m.get("tdxModule") {
            Some(v) => Some(module_identity(v, Some("base"))?),
            None => None,
        };
        let mut tdx_module_identities = Vec::new();
        if let Some(ids) = m.get("tdxModuleIdentities") {
            for i in arr(ids, "tdxModuleIdentities")? {
                tdx_module_identities.push(module_identity(i, None)?);
            }
        }
        Ok(Self {
            tee,
            version,
            issue_date: date(str_field(m, "issueDate", ctx)?, "tcbInfo issueDate")?,
            next_update: date(str_field(m, "nextUpdate", ctx)?, "tcbInfo nextUpdate")?,
            fmspc: hex_array(str_field(m, "fmspc", ctx)?, "fmspc")?,
            pce_id: hex_array(str_field(m, "pceId", ctx)?, "pceId")?,
            levels,
            tdx_module,
            tdx_module_identities,
        })
    }

    /// The first level the platform meets (SGX: CPUSVN components and PCESVN; TDX also
    /// TEE_TCB_SVN, bytes 0-1 skipped when TEE_TCB_SVN[1] > 0).
    pub(crate) fn platform_level(
        &self,
        cpu_svn: &[u8; 16],
        pce_svn: u16,
        tee_tcb_svn: Option<&[u8; 16]>,
    ) -> Result<&Level, Error> {
        let meets = |have: &[u8; 16], need: &[u8; 16], skip: usize| {
            have.iter().zip(need).skip(skip).all(|(h, n)| h >= n)
        };
        self.levels
            .iter()
            .find(|l| {
                meets(cpu_svn, &l.sgx, 0)
                    && pce_svn >= l.pce_svn
                    && match (tee_tcb_svn, &l.tdx) {
                        (None, _) => true,
                        (Some(svn), Some(need)) => {
                            let skip = if svn.get(1).is_some_and(|&v| v > 0) {
                                2
                            } else {
                                0
                            };
                            meets(svn, need, skip)
                        }
                        (Some(_), None) => false,
                    }
            })
            .ok_or_else(|| {
                Error::new(
                    ErrorClass::NoMatchingTcbLevel,
                    "platform is below every TCB level in the TCBInfo",
                )
            })
    }

    /// The TDX module identity for TEE_TCB_SVN[1] (the base `tdxModule` when it is 0).
    pub(crate) fn module_identity(
        &self,
        tee_tcb_svn: &[u8; 16],
    ) -> Result<Option<&ModuleIdentity>, Error> {
        let version = tee_tcb_svn.get(1).copied().unwrap_or(0);
        if version == 0 {
            return Ok(self.tdx_module.as_ref());
        }
        let want = format!("TDX_{version:02X}");
        self.tdx_module_identities
            .iter()
            .find(|i| i.id.eq_ignore_ascii_case(&want))
            .map(Some)
            .ok_or_else(|| {
                Error::new(
                    ErrorClass::WrongCollateral,
                    format!("TCBInfo has no TDX module identity {want}"),
                )
            })
    }
}

/// Check MRSIGNERSEAM and SEAM attributes against the module identity, and return the
/// module TCB level (status, advisories) when the identity has levels and the module
/// version is non-zero.
pub(crate) fn tdx_module_level(
    info: &TcbInfo,
    tee_tcb_svn: &[u8; 16],
    mr_signer_seam: &[u8; 48],
    seam_attributes: &[u8; 8],
) -> Result<Option<(TcbStatus, Vec<String>)>, Error> {
    let Some(identity) = info.module_identity(tee_tcb_svn)? else {
        return Err(Error::new(
            ErrorClass::WrongCollateral,
            "TDX TCBInfo has no tdxModule",
        ));
    };
    if &identity.mrsigner != mr_signer_seam {
        return Err(Error::new(
            ErrorClass::WrongCollateral,
            "MRSIGNERSEAM differs from the TDX module identity",
        ));
    }
    for ((want, mask), have) in identity
        .attributes
        .iter()
        .zip(&identity.attributes_mask)
        .zip(seam_attributes)
    {
        if want & mask != have & mask || have & !mask != 0 {
            return Err(Error::new(
                ErrorClass::WrongCollateral,
                "SEAM attributes differ from the TDX module identity",
            ));
        }
    }
    if tee_tcb_svn.get(1).copied().unwrap_or(0) == 0 {
        return Ok(None);
    }
    let isvsvn = tee_tcb_svn.first().copied().unwrap_or(0);
    identity
        .levels
        .iter()
        .find(|(svn, _, _)| isvsvn >= *svn)
        .map(|(_, s, a)| Some((*s, a.clone())))
        .ok_or_else(|| {
            Error::new(
                ErrorClass::NoMatchingTcbLevel,
                format!("TDX module ISVSVN {isvsvn} is below every module TCB level"),
            )
        })
}

/// Parsed QE identity (`enclaveIdentity`, v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QeIdentity {
    pub id: String,
    pub version: u64,
    pub issue_date: OffsetDateTime,
    pub next_update: OffsetDateTime,
    pub miscselect: u32,
    pub miscselect_mask: u32,
    pub attributes: [u8; 16],
    pub attributes_mask: [u8; 16],
    pub mrsigner: [u8; 32],
    pub isvprodid: u16,
    /// (isvsvn, status, advisories), highest isvsvn first.
    pub levels: Vec<(u16, TcbStatus, Vec<String>)>,
}

impl QeIdentity {
    pub(crate) fn parse(text: &str) -> Result<Self, Error> {
        let v: Json =
            serde_json::from_str(text).map_err(|e| bad(format!("QE identity is not JSON: {e}")))?;
        let m = obj(&v, "enclaveIdentity")?;
        let ctx = "enclaveIdentity";
        let mut levels = Vec::new();
        for l in arr(field(m, "tcbLevels", ctx)?, "tcbLevels")? {
            let l = obj(l, ctx)?;
            let tcb = obj(field(l, "tcb", ctx)?, ctx)?;
            let svn = u16::try_from(u64_field(tcb, "isvsvn", ctx)?)
                .map_err(|_| bad("isvsvn out of range"))?;
            levels.push((svn, status(l, ctx)?, advisories(l)?));
        }
        levels.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(Self {
            id: str_field(m, "id", ctx)?.to_owned(),
            version: u64_field(m, "version", ctx)?,
            issue_date: date(str_field(m, "issueDate", ctx)?, "QE identity issueDate")?,
            next_update: date(str_field(m, "nextUpdate", ctx)?, "QE identity nextUpdate")?,
            miscselect: u32::from_le_bytes(hex_array(
                str_field(m, "miscselect", ctx)?,
                "miscselect",
            )?),
            miscselect_mask: u32::from_le_bytes(hex_array(
                str_field(m, "miscselectMask", ctx)?,
                "miscselectMask",
            )?),
            attributes: hex_array(str_field(m, "attributes", ctx)?, "attributes")?,
            attributes_mask: hex_array(str_field(m, "attributesMask", ctx)?, "attributesMask")?,
            mrsigner: hex_array(str_field(m, "mrsigner", ctx)?, "mrsigner")?,
            isvprodid: u16::try_from(u64_field(m, "isvprodid", ctx)?)
                .map_err(|_| bad("isvprodid out of range"))?,
            levels,
        })
    }

    /// Check the QE report against this identity and return its TCB level.
    /// `miscselect` is the report's MISCSELECT (little-endian in the report); the JSON's
    /// hex bytes are read little-endian too, as dcap-qvl does.
    pub(crate) fn evaluate(
        &self,
        tee: Tee,
        mr_signer: &[u8; 32],
        isv_prod_id: u16,
        miscselect: u32,
        attributes: &[u8; 16],
        isv_svn: u16,
    ) -> Result<(TcbStatus, Vec<String>), Error> {
        let wrong = |m: &str| Err(Error::new(ErrorClass::WrongCollateral, m.to_owned()));
        let want_id = match tee {
            Tee::Sgx => "QE",
            Tee::Tdx => "TD_QE",
        };
        if self.id != want_id {
            return wrong(&format!("QE identity id {:?}, expected {want_id}", self.id));
        }
        if &self.mrsigner != mr_signer {
            return wrong("QE MRSIGNER differs from the QE identity");
        }
        if self.isvprodid != isv_prod_id {
            return wrong("QE ISVPRODID differs from the QE identity");
        }
        if miscselect & self.miscselect_mask != self.miscselect & self.miscselect_mask {
            return wrong("QE MISCSELECT differs from the QE identity");
        }
        for ((want, mask), have) in self
            .attributes
            .iter()
            .zip(&self.attributes_mask)
            .zip(attributes)
        {
            if want & mask != have & mask {
                return wrong("QE ATTRIBUTES differ from the QE identity");
            }
        }
        self.levels
            .iter()
            .find(|(svn, _, _)| isv_svn >= *svn)
            .map(|(_, s, a)| (*s, a.clone()))
            .ok_or_else(|| {
                Error::new(
                    ErrorClass::NoMatchingTcbLevel,
                    format!("QE ISVSVN {isv_svn} is below every QE TCB level"),
                )
            })
    }
}

/// QVL's `convergeTcbStatuses`: only an `OutOfDate` or `Revoked` component (QE, TDX
/// module) changes the platform status.
pub(crate) fn converge(platform: TcbStatus, component: TcbStatus) -> TcbStatus {
    use TcbStatus::*;
    match (component, platform) {
        (Revoked, _) => Revoked,
        (OutOfDate, UpToDate | SwHardeningNeeded) => OutOfDate,
        (OutOfDate, ConfigurationNeeded | ConfigurationAndSwHardeningNeeded) => {
            OutOfDateConfigurationNeeded
        }
        _ => platform,
    }
}

/// Union of advisory lists, sorted and deduplicated.
pub(crate) fn union_sorted<'a>(lists: impl IntoIterator<Item = &'a [String]>) -> Vec<String> {
    let mut out: Vec<String> = lists.into_iter().flatten().cloned().collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    const V2: &str = r#"{"version":2,"issueDate":"2025-01-01T00:00:00Z","nextUpdate":"2025-02-01T00:00:00Z","fmspc":"00906ED50000","pceId":"0000","tcbType":0,"tcbEvaluationDataNumber":17,"tcbLevels":[
      {"tcb":{"sgxtcbcomp01svn":2,"sgxtcbcomp02svn":2,"sgxtcbcomp03svn":2,"sgxtcbcomp04svn":4,"sgxtcbcomp05svn":1,"sgxtcbcomp06svn":128,"sgxtcbcomp07svn":0,"sgxtcbcomp08svn":0,"sgxtcbcomp09svn":0,"sgxtcbcomp10svn":0,"sgxtcbcomp11svn":0,"sgxtcbcomp12svn":0,"sgxtcbcomp13svn":0,"sgxtcbcomp14svn":0,"sgxtcbcomp15svn":0,"sgxtcbcomp16svn":0,"pcesvn":10},"tcbDate":"2020-01-01T00:00:00Z","tcbStatus":"OutOfDate"},
      {"tcb":{"sgxtcbcomp01svn":15,"sgxtcbcomp02svn":15,"sgxtcbcomp03svn":2,"sgxtcbcomp04svn":4,"sgxtcbcomp05svn":1,"sgxtcbcomp06svn":128,"sgxtcbcomp07svn":1,"sgxtcbcomp08svn":0,"sgxtcbcomp09svn":0,"sgxtcbcomp10svn":0,"sgxtcbcomp11svn":0,"sgxtcbcomp12svn":0,"sgxtcbcomp13svn":0,"sgxtcbcomp14svn":0,"sgxtcbcomp15svn":0,"sgxtcbcomp16svn":0,"pcesvn":13},"tcbDate":"2024-01-01T00:00:00Z","tcbStatus":"SWHardeningNeeded"}
    ]}"#;

    fn svn(first: &[u8]) -> [u8; 16] {
        let mut s = [0u8; 16];
        s[..first.len()].copy_from_slice(first);
        s
    }

    #[test]
    fn v2_levels_are_sorted_and_matched() {
        let info = TcbInfo::parse(V2).unwrap();
        assert_eq!(info.tee, Tee::Sgx);
        // Sorted highest first regardless of JSON order.
        assert_eq!(info.levels[0].status, TcbStatus::SwHardeningNeeded);
        let up = svn(&[15, 15, 2, 4, 1, 128, 1]);
        assert_eq!(
            info.platform_level(&up, 13, None).unwrap().status,
            TcbStatus::SwHardeningNeeded
        );
        // PCESVN too low for the top level: falls to the next.
        assert_eq!(
            info.platform_level(&up, 12, None).unwrap().status,
            TcbStatus::OutOfDate
        );
        // One component below the lowest level: no match.
        let low = svn(&[1, 15, 2, 4, 1, 128, 1]);
        assert_eq!(
            info.platform_level(&low, 13, None).unwrap_err().class(),
            ErrorClass::NoMatchingTcbLevel
        );
        // PCESVN below every level.
        assert_eq!(
            info.platform_level(&up, 9, None).unwrap_err().class(),
            ErrorClass::NoMatchingTcbLevel
        );
    }

    #[test]
    fn v2_rejects_bad_shapes() {
        for (from, to) in [
            ("\"sgxtcbcomp16svn\":0,\"pcesvn\":10", "\"pcesvn\":10"),
            ("\"tcbStatus\":\"OutOfDate\"", "\"tcbStatus\":\"Broken\""),
            ("\"sgxtcbcomp01svn\":2,", "\"sgxtcbcomp01svn\":300,"),
            ("\"fmspc\":\"00906ED50000\"", "\"fmspc\":\"00906ED5\""),
            ("\"version\":2", "\"version\":1"),
        ] {
            let text = V2.replacen(from, to, 1);
            assert_ne!(text, V2, "{from}");
            assert!(TcbInfo::parse(&text).is_err(), "{from} -> {to}");
        }
    }

    #[test]
    fn convergence_follows_qvl() {
        use TcbStatus::*;
        assert_eq!(converge(UpToDate, OutOfDate), OutOfDate);
        assert_eq!(converge(SwHardeningNeeded, OutOfDate), OutOfDate);
        assert_eq!(
            converge(ConfigurationNeeded, OutOfDate),
            OutOfDateConfigurationNeeded
        );
        assert_eq!(
            converge(ConfigurationAndSwHardeningNeeded, OutOfDate),
            OutOfDateConfigurationNeeded
        );
        assert_eq!(
            converge(ConfigurationAndSwHardeningNeeded, UpToDate),
            ConfigurationAndSwHardeningNeeded
        );
        assert_eq!(converge(UpToDate, Revoked), Revoked);
        assert_eq!(converge(OutOfDate, UpToDate), OutOfDate);
        assert_eq!(
            union_sorted([
                &["b".to_string(), "a".to_string()][..],
                &["a".to_string()][..]
            ]),
            ["a", "b"]
        );
    }

    fn tdx_info() -> TcbInfo {
        let text =
            std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
                "../../testdata/attestation/tdx-t5f-outofdate-2025-10/collateral/tcb_info.json",
            ))
            .unwrap();
        let (body, _) = super::super::collateral::split_signed(text.as_bytes(), "tcbInfo").unwrap();
        TcbInfo::parse(body).unwrap()
    }

    #[test]
    fn tdx_module_identity_and_levels() {
        let info = tdx_info();
        assert_eq!(info.tee, Tee::Tdx);
        let id = info.tdx_module_identities.first().unwrap().clone();
        let version = u8::from_str_radix(id.id.trim_start_matches("TDX_"), 16).unwrap();
        let top = id.levels.first().unwrap();
        let mut svn = [0u8; 16];
        svn[0] = top.0;
        svn[1] = version;
        let attrs = id.attributes;
        let got = tdx_module_level(&info, &svn, &id.mrsigner, &attrs)
            .unwrap()
            .unwrap();
        assert_eq!(got.0, top.1);
        // Wrong signer, attribute bits outside the mask, unknown module version, and an
        // ISVSVN below every module level all fail.
        let mut signer = id.mrsigner;
        signer[0] ^= 1;
        assert_eq!(
            tdx_module_level(&info, &svn, &signer, &attrs)
                .unwrap_err()
                .class(),
            ErrorClass::WrongCollateral
        );
        let mut a = attrs;
        a[7] ^= 0x80;
        assert!(tdx_module_level(&info, &svn, &id.mrsigner, &a).is_err());
        let mut s = svn;
        s[1] = 0x7f;
        assert_eq!(
            tdx_module_level(&info, &s, &id.mrsigner, &attrs)
                .unwrap_err()
                .class(),
            ErrorClass::WrongCollateral
        );
        let lowest = id.levels.last().unwrap().0;
        if lowest > 0 {
            let mut s = svn;
            s[0] = lowest - 1;
            assert_eq!(
                tdx_module_level(&info, &s, &id.mrsigner, &attrs)
                    .unwrap_err()
                    .class(),
                ErrorClass::NoMatchingTcbLevel
            );
        }
    }
}
