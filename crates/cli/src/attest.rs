//! `pith attest verify` (`pith attest quote` and `dev-ca` are in `attest_quote`): verify evidence from a file, optionally appraise it against a
//! policy, and print a summary or one JSON object.
//!
//! Exit codes: 0 the evidence verifies (and the policy, if given, allows it); 1 it does not
//! (or the policy denies it); 2 usage errors and unreadable files.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, anyhow};
use clap::{Args, Subcommand, ValueEnum};
use pith_attest::detect::{self, Encoding};
use pith_attest::policy::{Appraisal, Policy};
use pith_attest::{
    Claims, Collateral, Error, ErrorClass, Evidence, Platform, Rejected, Value, Verified,
    VerifyOptions, appraise, measurement_hash, verify,
};
use serde_json::{Map, Value as Json, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Exit code: valid (and allowed).
const EXIT_VALID: u8 = 0;
/// Exit code: invalid, or denied by the policy.
const EXIT_INVALID: u8 = 1;

/// Where the local network keeps its development CA (`pith up`'s default directory).
const LOCAL_DEV_CA: &str = ".pith/dev-ca.pem";

/// `pith attest ...`
#[derive(Debug, Subcommand)]
pub enum AttestCommand {
    /// Verify attestation evidence (exit 0 valid, 1 invalid, 2 usage error).
    Verify(VerifyArgs),
    /// Produce evidence with the local TEE (simulated when there is none).
    Quote(crate::attest_quote::QuoteArgs),
    /// Manage the local network's development CA (signs simulated evidence).
    #[command(subcommand)]
    DevCa(crate::attest_quote::DevCaCommand),
}

/// `--platform` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlatformArg {
    /// Detect from the evidence bytes.
    Auto,
    /// Intel SGX (DCAP quote v3).
    Sgx,
    /// Intel TDX (DCAP quote v4/v5).
    Tdx,
    /// AMD SEV-SNP attestation report.
    #[value(name = "sev-snp")]
    SevSnp,
    /// AWS Nitro Enclaves attestation document.
    Nitro,
    /// NVIDIA GPU / NVSwitch SPDM report or serialized evidence (JSON).
    #[value(name = "nvidia-gpu")]
    NvidiaGpu,
    /// Simulated evidence signed by a development CA.
    Simulated,
}

impl PlatformArg {
    fn platform(self) -> Option<Platform> {
        match self {
            Self::Auto => None,
            Self::Sgx => Some(Platform::Sgx),
            Self::Tdx => Some(Platform::Tdx),
            Self::SevSnp => Some(Platform::SevSnp),
            Self::Nitro => Some(Platform::Nitro),
            Self::NvidiaGpu => Some(Platform::NvidiaGpu),
            Self::Simulated => Some(Platform::Simulated),
        }
    }
}

/// Arguments of `pith attest verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Evidence file: binary, hex or base64 (auto-detected), or NVIDIA evidence.json.
    pub evidence: PathBuf,
    /// Platform of the evidence.
    #[arg(long, value_enum, default_value = "auto")]
    pub platform: PlatformArg,
    /// Collateral directory in the corpus layout (testdata/attestation/README.md). Without
    /// it, collateral is fetched (Intel PCS / AMD KDS) where the platform needs any.
    #[arg(long, value_name = "DIR")]
    pub collateral: Option<PathBuf>,
    /// Verify as of this RFC 3339 instant (default: now).
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// Appraisal policy (TOML); the exit code then follows the policy's decision.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Skip an absent Intel PCK CRL or QE identity, listing what was skipped in `warnings`.
    #[arg(long)]
    pub lenient_collateral: bool,
    /// Development CA for simulated evidence (default: .pith/dev-ca.pem when present).
    #[arg(long, value_name = "FILE")]
    pub dev_ca: Option<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Run an attest command.
pub fn run(cmd: AttestCommand) -> ExitCode {
    match cmd {
        AttestCommand::Verify(args) => match verify_command(&args) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("pith attest verify: {e:#}");
                ExitCode::from(crate::EXIT_USAGE)
            }
        },
        AttestCommand::Quote(args) => crate::attest_quote::run_quote(&args),
        AttestCommand::DevCa(cmd) => crate::attest_quote::run_dev_ca(&cmd),
    }
}

/// Everything read from the command line and files before verification. Any failure here
/// is a usage error (exit 2).
struct Inputs {
    input: Vec<u8>,
    collateral: Option<Collateral>,
    now: OffsetDateTime,
    policy: Option<Policy>,
    options: VerifyOptions,
}

fn read_inputs(args: &VerifyArgs) -> anyhow::Result<Inputs> {
    let input = std::fs::read(&args.evidence)
        .with_context(|| format!("cannot read evidence {}", args.evidence.display()))?;
    let collateral = args
        .collateral
        .as_deref()
        .map(read_collateral)
        .transpose()?;
    let now = match &args.at {
        Some(at) => OffsetDateTime::parse(at, &Rfc3339)
            .with_context(|| format!("--at {at:?} is not RFC 3339"))?,
        None => OffsetDateTime::now_utc(),
    };
    let policy = match &args.policy {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read policy {}", path.display()))?;
            Some(Policy::from_toml(&text).with_context(|| format!("policy {}", path.display()))?)
        }
        None => None,
    };
    let dev_ca = match &args.dev_ca {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("cannot read --dev-ca {}", path.display()))?,
        ),
        // The local network's CA, when there is one; unreadable counts as absent here.
        None => std::fs::read(LOCAL_DEV_CA).ok(),
    };
    let mut options = VerifyOptions::default();
    options.lenient_collateral = args.lenient_collateral;
    options.dev_ca = dev_ca;
    Ok(Inputs {
        input,
        collateral,
        now,
        policy,
        options,
    })
}

/// Read a collateral directory in the corpus layout. A case directory (holding
/// `collateral/`) is accepted too.
fn read_collateral(dir: &Path) -> anyhow::Result<Collateral> {
    if !dir.is_dir() {
        return Err(anyhow!("--collateral {} is not a directory", dir.display()));
    }
    let nested = dir.join("collateral");
    let dir = if nested.is_dir() && !dir.join("tcb_info.json").exists() {
        nested
    } else {
        dir.to_path_buf()
    };
    Collateral::from_dir(&dir).map_err(|e| anyhow!("collateral {}: {}", dir.display(), e.message()))
}

/// The result of the verification step, before output.
struct Outcome {
    encoding: Option<Encoding>,
    result: Result<Verified, Rejected>,
}

fn verify_command(args: &VerifyArgs) -> anyhow::Result<u8> {
    let inputs = read_inputs(args)?;
    let outcome = run_verification(args, &inputs);
    let appraisal = match (&inputs.policy, &outcome.result) {
        (Some(policy), Ok(v)) => Some(appraise(v, policy, inputs.now)),
        _ => None,
    };
    let ok = outcome.result.is_ok() && appraisal.as_ref().is_none_or(|a| a.allowed);
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let obj = to_json(
            &outcome,
            inputs.policy.is_some(),
            appraisal.as_ref(),
            inputs.now,
        );
        writeln!(stdout, "{obj}").context("cannot write to stdout")?;
    } else {
        write!(stdout, "{}", summary(&outcome, appraisal.as_ref()))
            .context("cannot write to stdout")?;
    }
    Ok(if ok { EXIT_VALID } else { EXIT_INVALID })
}

#[allow(clippy::result_large_err)]
fn run_verification(args: &VerifyArgs, inputs: &Inputs) -> Outcome {
    let decoded = match detect::evidence(&inputs.input, args.platform.platform()) {
        Ok(d) => d,
        Err(e) => {
            return Outcome {
                encoding: None,
                result: Err(Rejected::new(None, e)),
            };
        }
    };
    let evidence = decoded.evidence;
    let collateral = match &inputs.collateral {
        Some(c) => c.clone(),
        None => match fetched_collateral(&evidence, inputs.now) {
            Ok(c) => c,
            Err(e) => {
                return Outcome {
                    encoding: Some(decoded.encoding),
                    result: Err(Rejected::new(Some(evidence.platform()), e)),
                };
            }
        },
    };
    let result = verify(&evidence, &collateral, &inputs.options, inputs.now)
        .and_then(|v| enforce_expectations(v, &collateral));
    Outcome {
        encoding: Some(decoded.encoding),
        result,
    }
}

/// The collateral source of `pith kms` and `pith worker`: fetched from Intel PCS / AMD KDS
/// (or the PCCS / KDS mirror in `PITH_PCCS_URL` / `PITH_AMD_KDS_URL`) and cached on disk,
/// or, with `PITH_COLLATERAL_DIR`, one fixed directory (a fleet of one platform type behind a
/// firewall). Simulated, Nitro and NVIDIA evidence need none and fetch nothing.
pub fn collateral_source() -> anyhow::Result<std::sync::Arc<dyn pith_attest::CollateralSource>> {
    Ok(match std::env::var_os("PITH_COLLATERAL_DIR") {
        Some(dir) => std::sync::Arc::new(
            pith_attest::FixedCollateral::from_dir(Path::new(&dir)).map_err(|e| {
                anyhow!(
                    "PITH_COLLATERAL_DIR {}: {}",
                    Path::new(&dir).display(),
                    e.message()
                )
            })?,
        ),
        None => std::sync::Arc::new(pith_attest::fetch::Fetcher::from_env()),
    })
}

/// Collateral when no `--collateral` directory is given: fetched where the platform needs
/// it ([`pith_attest::fetch::Fetcher`], configured by `PITH_PCCS_URL`, `PITH_AMD_KDS_URL`,
/// `PITH_CACHE_DIR`).
fn fetched_collateral(evidence: &Evidence, now: OffsetDateTime) -> Result<Collateral, Error> {
    use pith_attest::CollateralSource;
    pith_attest::fetch::Fetcher::from_env().collateral(evidence, now)
}

/// Backstop for `expected_pcrs.json` and `nonce.hex`: the platform verifiers enforce them;
/// this re-checks the verified claims so that a collateral directory's expectations always
/// hold for the CLI's verdict.
#[allow(clippy::result_large_err)] // `Rejected` carries the unverified claims by design.
fn enforce_expectations(verified: Verified, collateral: &Collateral) -> Result<Verified, Rejected> {
    let reject = |class: ErrorClass, msg: String| {
        Rejected::new(Some(verified.platform()), Error::new(class, msg))
            .with_claims(verified.claims().clone())
    };
    if let Some(raw) = &collateral.expected_pcrs {
        let expected: std::collections::BTreeMap<String, String> = serde_json::from_slice(raw)
            .map_err(|e| reject(ErrorClass::Malformed, format!("expected_pcrs.json: {e}")))?;
        for (name, want) in &expected {
            let got = match verified.measurements().get(name) {
                Some(Value::Bytes(b)) => hex::encode(b),
                Some(Value::Text(t)) => t.clone(),
                None => String::new(),
            };
            if !got.eq_ignore_ascii_case(want.trim()) {
                return Err(reject(
                    ErrorClass::PcrMismatch,
                    format!("{name} is {got:?}, expected {want}"),
                ));
            }
        }
    }
    if let (Some(raw), Some(got)) = (&collateral.nonce, &verified.claims().nonce) {
        let want = detect::decode_hex(raw)
            .ok_or_else(|| reject(ErrorClass::Malformed, "nonce.hex is not hex".to_string()))?;
        if *got != want {
            return Err(reject(
                ErrorClass::NonceMismatch,
                format!("nonce {} differs from nonce.hex", hex::encode(got)),
            ));
        }
    }
    Ok(verified)
}

fn rfc3339(t: OffsetDateTime) -> Json {
    t.format(&Rfc3339).map(Json::String).unwrap_or(Json::Null)
}

fn hex_opt(b: Option<&[u8]>) -> Json {
    b.map(|b| Json::String(hex::encode(b)))
        .unwrap_or(Json::Null)
}

/// The claim fields shared by `verified` output and `unverified`.
fn claims_json(c: &Claims) -> Map<String, Json> {
    let mut m = Map::new();
    m.insert(
        "measurements".into(),
        serde_json::to_value(&c.measurements).unwrap_or(Json::Null),
    );
    m.insert("report_data".into(), hex_opt(c.report_data.as_deref()));
    m.insert("user_data".into(), hex_opt(c.user_data.as_deref()));
    m.insert("nonce".into(), hex_opt(c.nonce.as_deref()));
    m.insert("public_key".into(), hex_opt(c.public_key.as_deref()));
    m.insert(
        "debug".into(),
        c.debug.map(Json::Bool).unwrap_or(Json::Null),
    );
    m.insert(
        "properties".into(),
        Json::Object(c.properties.clone().into_iter().collect()),
    );
    m
}

fn to_json(
    outcome: &Outcome,
    with_policy: bool,
    appraisal: Option<&Appraisal>,
    now: OffsetDateTime,
) -> Json {
    let mut o = Map::new();
    let encoding = outcome
        .encoding
        .map(|e| Json::String(e.as_str().into()))
        .unwrap_or(Json::Null);
    match &outcome.result {
        Ok(v) => {
            o.insert("platform".into(), json!(v.platform().as_str()));
            o.insert("verdict".into(), json!("valid"));
            o.insert(
                "tcb_status".into(),
                json!(v.tcb_status().map(|s| s.as_str())),
            );
            o.insert(
                "tcb_status_code".into(),
                json!(v.tcb_status().map(|s| s.code())),
            );
            o.insert("advisory_ids".into(), json!(v.advisory_ids()));
            o.extend(claims_json(v.claims()));
            o.insert(
                "measurement_hash".into(),
                json!(hex::encode(measurement_hash(v))),
            );
            o.insert(
                "window".into(),
                json!([rfc3339(v.window().start), rfc3339(v.window().end)]),
            );
            o.insert("failure".into(), Json::Null);
            o.insert("unverified".into(), Json::Null);
            o.insert("warnings".into(), json!(v.warnings()));
        }
        Err(r) => {
            o.insert("platform".into(), json!(r.platform.map(|p| p.as_str())));
            o.insert("verdict".into(), json!("invalid"));
            o.insert("tcb_status".into(), Json::Null);
            o.insert("tcb_status_code".into(), Json::Null);
            o.insert("advisory_ids".into(), Json::Null);
            for (k, _) in claims_json(&Claims::default()) {
                o.insert(k, Json::Null);
            }
            o.insert("measurement_hash".into(), Json::Null);
            o.insert("window".into(), Json::Null);
            o.insert("failure".into(), json!(r.error.class().as_str()));
            o.insert(
                "error".into(),
                json!({"class": r.error.class().as_str(), "message": r.error.message()}),
            );
            o.insert(
                "unverified".into(),
                r.unverified
                    .as_ref()
                    .map(|c| Json::Object(claims_json(c)))
                    .unwrap_or(Json::Null),
            );
            o.insert("warnings".into(), json!([]));
        }
    }
    o.insert("at".into(), rfc3339(now));
    o.insert("input_encoding".into(), encoding);
    if with_policy {
        let policy = match appraisal {
            Some(a) => json!({
                "allowed": a.allowed,
                "reasons": a.reasons.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }),
            None => {
                json!({"allowed": false, "reasons": ["verification: the evidence did not verify"]})
            }
        };
        o.insert("policy".into(), policy);
    }
    Json::Object(o)
}

fn summary(outcome: &Outcome, appraisal: Option<&Appraisal>) -> String {
    let mut s = String::new();
    match &outcome.result {
        Ok(v) => {
            s.push_str(&format!("valid: {} evidence", v.platform()));
            if let Some(status) = v.tcb_status() {
                s.push_str(&format!(", TCB {status}"));
            }
            if let Some(ids) = v.advisory_ids().filter(|a| !a.is_empty()) {
                s.push_str(&format!(" [{}]", ids.join(", ")));
            }
            s.push('\n');
            let w = v.window();
            s.push_str(&format!(
                "  window       {} .. {}\n",
                rfc3339_text(w.start),
                rfc3339_text(w.end)
            ));
            for (k, val) in v.measurements() {
                let text = match val {
                    Value::Bytes(b) => hex::encode(b),
                    Value::Text(t) => t.clone(),
                };
                s.push_str(&format!("  {k:<12} {text}\n"));
            }
            if let Some(rd) = v.report_data() {
                s.push_str(&format!("  report_data  {}\n", hex::encode(rd)));
            }
            s.push_str(&format!(
                "  measurement hash {}\n",
                hex::encode(measurement_hash(v))
            ));
            if let Some(debug) = v.claims().debug {
                s.push_str(&format!("  debug        {debug}\n"));
            }
            for (k, val) in &v.claims().properties {
                s.push_str(&format!("  {k:<12} {val}\n"));
            }
            for w in v.warnings() {
                s.push_str(&format!("  warning: {w}\n"));
            }
        }
        Err(r) => {
            let platform = r.platform.map(|p| p.as_str()).unwrap_or("unrecognised");
            s.push_str(&format!(
                "invalid: {platform} evidence: {}: {}\n",
                r.error.class(),
                r.error.message()
            ));
        }
    }
    if let Some(a) = appraisal {
        if a.allowed {
            s.push_str("policy: allowed\n");
        } else {
            s.push_str("policy: denied\n");
            for reason in &a.reasons {
                s.push_str(&format!("  {reason}\n"));
            }
        }
    }
    s
}

fn rfc3339_text(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}
