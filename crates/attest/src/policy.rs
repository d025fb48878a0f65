//! Appraisal policy: what verified evidence is *allowed* to do, separate from whether it is
//! authentic (IETF RATS: verification, then appraisal).
//!
//! [`verify`](crate::verify) answers "is this evidence genuine, and what does it say?";
//! [`appraise`] answers "is that acceptable here?". A [`Policy`] is read from TOML; every
//! field has a secure default (`Policy::default()` is the policy nodes use), and each
//! field's documentation says what relaxing it gives up.
//!
//! ```
//! use pith_attest::policy::Policy;
//! let policy = Policy::from_toml(r#"
//!     min_tcb_status = "SWHardeningNeeded"
//!     allowed_advisory_ids = ["INTEL-SA-00615"]
//!
//!     [[measurements.tdx]]
//!     mr_td = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
//!
//!     [[measurements.sev-snp]]
//!     measurement_hash = "b24891ecc7935ea38ab93bdd081bb15b2cda0c9f322091fed1536e8bddf781b2"
//! "#).unwrap();
//! assert!(!policy.allow_debug && policy.require_sept_ve_disable);
//! ```
//!
//! Rules (each evaluated; every failing rule adds a [`Denial`]):
//!
//! | rule | default | denies when |
//! |---|---|---|
//! | `platform` | all hardware platforms | `platforms` is set and does not list the platform |
//! | `simulated` | forbidden | the platform is `simulated` and `allow_simulated` is false |
//! | `debug` | forbidden | the evidence reports debug mode and `allow_debug` is false |
//! | `sept_ve_disable` | required (TDX) | a TD does not report `sept_ve_disable = true` |
//! | `service_td` | forbidden | the TD reports `service_td = true` |
//! | `migration_agent` | forbidden | an SNP guest's policy allows a migration agent |
//! | `vmpl` | any | the SNP report's VMPL is above `snp_max_vmpl` |
//! | `tcb_status` | `UpToDate` | the TCB status code is above `min_tcb_status`'s |
//! | `advisories` | any | `allowed_advisory_ids` is set and an advisory is not in it |
//! | `measurement` | any | allow-list entries exist and none matches |
//! | `nonce` | none | `expected_nonce` is set and the evidence's nonce differs (or is absent) |
//! | `report_data` | none | `expected_report_data` is set and the report data does not start with it |
//! | `max_age` | none | the evidence has a timestamp (Nitro, simulated) older than `max_age_seconds` or in the future |
//! | `window` | always | `now` is outside the verified window, or before the verification time |

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::measurement::measurement_hash;
use crate::report::{Platform, TcbStatus, Value, Verified};

/// Measurement allow-list entry: named fields that must all equal the evidence's (values as
/// printed by `pith attest verify --json`: lowercase hex, or text for NVIDIA versions), and
/// optionally `measurement_hash` (hex, see `docs/protocol.md`).
pub type MeasurementEntry = BTreeMap<String, String>;

/// An appraisal policy. Unknown keys are rejected when parsing, so that a misspelt rule
/// never silently falls back to its default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Policy {
    /// Platforms accepted at all; `None` (default) accepts every platform except
    /// `simulated`, which is governed by `allow_simulated` in any case.
    pub platforms: Option<Vec<Platform>>,
    /// Accept `simulated` evidence (signed by a development CA, no hardware protection).
    /// Default `false`: turning it on means anyone with the local network's development CA
    /// key can pose as a TEE. Only for local development networks.
    pub allow_simulated: bool,
    /// Accept debug enclaves / TDs / guests / Nitro debug mode. Default `false`: a debug TEE
    /// lets its host read and change its memory, so it protects nothing.
    pub allow_debug: bool,
    /// Require TDX `SEPT_VE_DISABLE` (TD attribute bit 28). Default `true`: without it the TD
    /// receives #VE on EPT violations, which the host can use as a side channel and to
    /// inject faults into a guest that is not hardened against it.
    pub require_sept_ve_disable: bool,
    /// Accept a TDX service TD. Default `false`: service TDs (for example a migration TD)
    /// have access to other TDs' state.
    pub allow_service_td: bool,
    /// Accept an SNP guest whose policy allows association with a migration agent. Default
    /// `false`: a migration agent can export the guest's memory.
    pub allow_snp_migration_agent: bool,
    /// Highest SNP VMPL accepted for the report (`None`, default: any). VMPL 0 is the most
    /// privileged level; a paravisor setup reports from VMPL 0.
    pub snp_max_vmpl: Option<u32>,
    /// Worst Intel TCB status accepted, by its code in `docs/protocol.md` (a larger code is
    /// never better). Default `UpToDate`. `SWHardeningNeeded` additionally trusts that the
    /// enclave has the software mitigations Intel's advisories ask for; `OutOfDate` accepts
    /// platforms with known, fixed vulnerabilities. Platforms without a TCB status are not
    /// affected.
    pub min_tcb_status: TcbStatus,
    /// Advisory IDs (for example `INTEL-SA-00615`) that are accepted; with `Some`, evidence
    /// reporting any other advisory is denied. `None` (default): the TCB status rule alone
    /// decides.
    pub allowed_advisory_ids: Option<Vec<String>>,
    /// Allowed measurements per platform (`[[measurements.<platform>]]` tables). When any
    /// entry exists (here or in `measurement_hashes`), evidence must match one entry of its
    /// platform or one hash. Empty (default): measurements are not restricted.
    pub measurements: BTreeMap<Platform, Vec<MeasurementEntry>>,
    /// Allowed measurement hashes (hex, any platform; the hash includes the platform).
    pub measurement_hashes: Vec<String>,
    /// The verifier's nonce (hex), which the evidence's nonce field (Nitro, NVIDIA) must
    /// equal. For platforms without a nonce field use `expected_report_data`.
    pub expected_nonce: Option<String>,
    /// Bytes (hex, at most 64) the evidence's report data must begin with: SGX/TDX REPORTDATA,
    /// SNP REPORT_DATA, simulated report_data, Nitro `user_data`. Binds a nonce or a key.
    pub expected_report_data: Option<String>,
    /// Maximum age in seconds of evidence that carries a timestamp (Nitro, simulated).
    /// Evidence without a timestamp (SGX, TDX, SNP, NVIDIA) is not affected: bind a nonce
    /// into report data instead.
    pub max_age_seconds: Option<u64>,
}

impl Default for Policy {
    /// The secure defaults: the policy nodes use.
    fn default() -> Self {
        Self {
            platforms: None,
            allow_simulated: false,
            allow_debug: false,
            require_sept_ve_disable: true,
            allow_service_td: false,
            allow_snp_migration_agent: false,
            snp_max_vmpl: None,
            min_tcb_status: TcbStatus::UpToDate,
            allowed_advisory_ids: None,
            measurements: BTreeMap::new(),
            measurement_hashes: Vec::new(),
            expected_nonce: None,
            expected_report_data: None,
            max_age_seconds: None,
        }
    }
}

/// A policy file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Not valid TOML, or a key or value of the wrong kind.
    #[error("policy is not valid: {0}")]
    Parse(String),
    /// A value is syntactically fine but unusable.
    #[error("policy field {field}: {message}")]
    Invalid {
        /// The offending field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl Policy {
    /// Parse and validate a TOML policy.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let policy: Policy = toml::from_str(text).map_err(|e| PolicyError::Parse(e.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    /// The default node policy with `simulated` evidence allowed: for local development
    /// networks only.
    pub fn local_development() -> Self {
        Self {
            allow_simulated: true,
            ..Self::default()
        }
    }

    /// Check values that TOML types cannot express.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let invalid = |field: String, message: &str| PolicyError::Invalid {
            field,
            message: message.into(),
        };
        for (platform, entries) in &self.measurements {
            for (i, entry) in entries.iter().enumerate() {
                let field = format!("measurements.{platform}[{i}]");
                if entry.is_empty() {
                    return Err(invalid(
                        field,
                        "empty entry (would allow every measurement)",
                    ));
                }
                for (name, value) in entry {
                    let ok_name = !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                    if !ok_name {
                        return Err(invalid(format!("{field}.{name}"), "not a measurement name"));
                    }
                    if name == "measurement_hash" && decode_hash(value).is_none() {
                        return Err(invalid(format!("{field}.{name}"), "not a 32-byte hex hash"));
                    }
                }
            }
        }
        for (i, h) in self.measurement_hashes.iter().enumerate() {
            if decode_hash(h).is_none() {
                return Err(invalid(
                    format!("measurement_hashes[{i}]"),
                    "not a 32-byte hex hash",
                ));
            }
        }
        if let Some(n) = &self.expected_nonce
            && decode_hex(n).is_none_or(|b| b.is_empty())
        {
            return Err(invalid("expected_nonce".into(), "not non-empty hex"));
        }
        if let Some(r) = &self.expected_report_data
            && decode_hex(r).is_none_or(|b| b.is_empty() || b.len() > 64)
        {
            return Err(invalid(
                "expected_report_data".into(),
                "not 1 to 64 bytes of hex",
            ));
        }
        Ok(())
    }

    fn has_measurement_allow_list(&self) -> bool {
        !self.measurement_hashes.is_empty() || self.measurements.values().any(|v| !v.is_empty())
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    let s = s.strip_prefix("0x").unwrap_or(s);
    hex::decode(s).ok()
}

fn decode_hash(s: &str) -> Option<[u8; 32]> {
    decode_hex(s)?.try_into().ok()
}

/// The rule a denial comes from (stable names, used in output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rule {
    /// `platforms`
    Platform,
    /// `allow_simulated`
    Simulated,
    /// `allow_debug`
    Debug,
    /// `require_sept_ve_disable`
    SeptVeDisable,
    /// `allow_service_td`
    ServiceTd,
    /// `allow_snp_migration_agent`
    MigrationAgent,
    /// `snp_max_vmpl`
    Vmpl,
    /// `min_tcb_status`
    TcbStatus,
    /// `allowed_advisory_ids`
    Advisories,
    /// `measurements` / `measurement_hashes`
    Measurement,
    /// `expected_nonce`
    Nonce,
    /// `expected_report_data`
    ReportData,
    /// `max_age_seconds`
    MaxAge,
    /// The verified window does not cover the appraisal time.
    Window,
}

impl Rule {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Platform => "platform",
            Self::Simulated => "simulated",
            Self::Debug => "debug",
            Self::SeptVeDisable => "sept_ve_disable",
            Self::ServiceTd => "service_td",
            Self::MigrationAgent => "migration_agent",
            Self::Vmpl => "vmpl",
            Self::TcbStatus => "tcb_status",
            Self::Advisories => "advisories",
            Self::Measurement => "measurement",
            Self::Nonce => "nonce",
            Self::ReportData => "report_data",
            Self::MaxAge => "max_age",
            Self::Window => "window",
        }
    }
}

/// Why a policy denied evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The rule.
    pub rule: Rule,
    /// Human-readable detail.
    pub message: String,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule.as_str(), self.message)
    }
}

/// The result of [`appraise`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appraisal {
    /// Whether the policy allows the evidence (no denials).
    pub allowed: bool,
    /// Every rule that denied, in rule order. Empty when allowed.
    pub reasons: Vec<Denial>,
}

/// Appraise verified evidence against `policy` at `now`.
pub fn appraise(verified: &Verified, policy: &Policy, now: OffsetDateTime) -> Appraisal {
    let mut reasons = Vec::new();
    let mut deny = |rule: Rule, message: String| reasons.push(Denial { rule, message });
    let platform = verified.platform();
    let claims = verified.claims();
    let prop_bool = |name: &str| {
        claims
            .properties
            .get(name)
            .and_then(serde_json::Value::as_bool)
    };

    if let Some(list) = &policy.platforms
        && !list.contains(&platform)
    {
        deny(
            Rule::Platform,
            format!("platform {platform} is not in the policy's platforms"),
        );
    }
    if platform == Platform::Simulated && !policy.allow_simulated {
        deny(
            Rule::Simulated,
            "simulated evidence (development CA, no hardware protection) is not allowed".into(),
        );
    }
    if claims.debug == Some(true) && !policy.allow_debug {
        deny(Rule::Debug, format!("{platform} evidence is in debug mode"));
    }
    if platform == Platform::Tdx && policy.require_sept_ve_disable {
        match prop_bool("sept_ve_disable") {
            Some(true) => {}
            Some(false) => deny(
                Rule::SeptVeDisable,
                "TD attribute SEPT_VE_DISABLE is not set".into(),
            ),
            None => deny(
                Rule::SeptVeDisable,
                "evidence does not report SEPT_VE_DISABLE".into(),
            ),
        }
    }
    if platform == Platform::Tdx
        && !policy.allow_service_td
        && prop_bool("service_td") == Some(true)
    {
        deny(Rule::ServiceTd, "the TD is a service TD".into());
    }
    if platform == Platform::SevSnp {
        if !policy.allow_snp_migration_agent && prop_bool("migration_agent") == Some(true) {
            deny(
                Rule::MigrationAgent,
                "guest policy allows a migration agent".into(),
            );
        }
        if let Some(max) = policy.snp_max_vmpl {
            match claims
                .properties
                .get("vmpl")
                .and_then(serde_json::Value::as_u64)
            {
                Some(v) if v <= u64::from(max) => {}
                Some(v) => deny(Rule::Vmpl, format!("report VMPL {v} is above {max}")),
                None => deny(Rule::Vmpl, "evidence does not report its VMPL".into()),
            }
        }
    }
    if let Some(status) = verified.tcb_status()
        && status.code() > policy.min_tcb_status.code()
    {
        deny(
            Rule::TcbStatus,
            format!(
                "TCB status {status} is worse than the policy's minimum {}",
                policy.min_tcb_status
            ),
        );
    }
    if let (Some(allowed), Some(ids)) = (&policy.allowed_advisory_ids, verified.advisory_ids()) {
        let extra: Vec<&str> = ids
            .iter()
            .filter(|id| !allowed.contains(id))
            .map(String::as_str)
            .collect();
        if !extra.is_empty() {
            deny(
                Rule::Advisories,
                format!("advisories not allowed: {}", extra.join(", ")),
            );
        }
    }
    if policy.has_measurement_allow_list() && !measurement_allowed(verified, policy) {
        deny(
            Rule::Measurement,
            format!("{platform} measurements match no allow-list entry"),
        );
    }
    if let Some(want) = policy.expected_nonce.as_deref().and_then(decode_hex) {
        match &claims.nonce {
            Some(got) if *got == want => {}
            Some(got) => deny(
                Rule::Nonce,
                format!("nonce {} differs from the expected one", hex::encode(got)),
            ),
            None => deny(
                Rule::Nonce,
                format!("{platform} evidence has no nonce field; bind the nonce into report data"),
            ),
        }
    }
    if let Some(want) = policy.expected_report_data.as_deref().and_then(decode_hex) {
        let got = claims
            .report_data
            .as_deref()
            .or(claims.user_data.as_deref());
        match got {
            Some(got) if got.starts_with(&want) => {}
            Some(_) => deny(
                Rule::ReportData,
                "report data does not begin with the expected bytes".into(),
            ),
            None => deny(
                Rule::ReportData,
                format!("{platform} evidence has no report data"),
            ),
        }
    }
    if let (Some(max), Some(ts)) = (policy.max_age_seconds, timestamp(verified)) {
        let max_age = time::Duration::seconds(i64::try_from(max).unwrap_or(i64::MAX));
        if ts > now {
            deny(
                Rule::MaxAge,
                format!("evidence timestamp {ts} is after the appraisal time {now}"),
            );
        } else if ts.checked_add(max_age).is_some_and(|limit| limit < now) {
            deny(
                Rule::MaxAge,
                format!("evidence from {ts} is more than {max}s old at {now}"),
            );
        }
    }
    let window = verified.window();
    if now < verified.verified_at() || now < window.start || now > window.end {
        deny(
            Rule::Window,
            format!(
                "appraisal time {now} is outside the verified window {}..{} (verified at {})",
                window.start,
                window.end,
                verified.verified_at()
            ),
        );
    }
    Appraisal {
        allowed: reasons.is_empty(),
        reasons,
    }
}

/// Does any allow-list entry (or hash) accept the evidence's measurements?
fn measurement_allowed(verified: &Verified, policy: &Policy) -> bool {
    let hash = measurement_hash(verified);
    if policy
        .measurement_hashes
        .iter()
        .filter_map(|h| decode_hash(h))
        .any(|h| h == hash)
    {
        return true;
    }
    let ms = verified.measurements();
    let entries = policy
        .measurements
        .get(&verified.platform())
        .map(Vec::as_slice)
        .unwrap_or_default();
    entries.iter().any(|entry| {
        !entry.is_empty()
            && entry.iter().all(|(name, want)| {
                if name == "measurement_hash" {
                    return decode_hash(want) == Some(hash);
                }
                match ms.get(name) {
                    Some(Value::Bytes(b)) => decode_hex(want).is_some_and(|w| w == *b),
                    Some(Value::Text(t)) => t == want,
                    None => false,
                }
            })
    })
}

/// The evidence's own timestamp, where the platform has one: Nitro property `timestamp`
/// (milliseconds since the Unix epoch, as in the attestation document), simulated property
/// `timestamp` (Unix seconds).
fn timestamp(verified: &Verified) -> Option<OffsetDateTime> {
    let v = verified.claims().properties.get("timestamp")?;
    let nanos_per_unit: i128 = match verified.platform() {
        Platform::Nitro => 1_000_000,
        Platform::Simulated => 1_000_000_000,
        _ => return None,
    };
    let n = i128::from(v.as_i64()?);
    OffsetDateTime::from_unix_timestamp_nanos(n.checked_mul(nanos_per_unit)?).ok()
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
