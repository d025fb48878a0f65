//! `pith attest quote` and `pith attest dev-ca init`: produce evidence with the local
//! evidence provider (simulated when no TEE is present).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use pith_attest::provider::{DetectOptions, Paths, SimulatedOptions, SimulatedSource, detect};
use pith_attest::simulated::{CERT_FILE, DevCa};

/// Default directory of the local network's development CA.
pub const DEFAULT_DEV_CA_DIR: &str = ".pith";

/// Arguments of `pith attest quote`.
#[derive(Debug, Args)]
pub struct QuoteArgs {
    /// Data to bind into the evidence, hex (at most 64 bytes; zero-padded on the right).
    #[arg(long, value_name = "HEX")]
    pub report_data: Option<String>,
    /// Write the evidence (binary) to FILE; without it, print it as hex on stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Development CA directory for simulated evidence (created if absent).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DEV_CA_DIR)]
    pub dev_ca_dir: PathBuf,
    /// Configuration file measured into simulated evidence (`mr_config_id`, `mr_td`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Produce simulated evidence even when a TEE interface is present.
    #[arg(long)]
    pub simulated: bool,
    /// Re-root the TEE interface paths (/sys/kernel/config/tsm, /dev/attestation,
    /// /dev/nsm) under DIR; for tests with fake trees.
    #[arg(long, value_name = "DIR", hide = true)]
    pub tee_root: Option<PathBuf>,
}

/// `pith attest dev-ca ...`
#[derive(Debug, Subcommand)]
pub enum DevCaCommand {
    /// Create the development CA of a local network (or show the existing one).
    Init {
        /// Directory for dev-ca.pem and dev-ca.key.
        #[arg(long, value_name = "DIR", default_value = DEFAULT_DEV_CA_DIR)]
        dir: PathBuf,
    },
}

/// Run `pith attest quote`: 0 on success, 1 when no evidence could be produced, 2 on
/// usage errors.
pub fn run_quote(args: &QuoteArgs) -> ExitCode {
    let report_data = match args
        .report_data
        .as_deref()
        .map(parse_report_data)
        .transpose()
    {
        Ok(rd) => rd.unwrap_or([0; 64]),
        Err(e) => {
            eprintln!("pith attest quote: {e:#}");
            return ExitCode::from(crate::EXIT_USAGE);
        }
    };
    let config = match &args.config {
        Some(path) => match std::fs::read(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("pith attest quote: cannot read {}: {e}", path.display());
                return ExitCode::from(crate::EXIT_USAGE);
            }
        },
        None => Vec::new(),
    };
    match quote(args, &report_data, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pith attest quote: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn quote(args: &QuoteArgs, report_data: &[u8; 64], config: Vec<u8>) -> anyhow::Result<()> {
    let sim = SimulatedOptions {
        dev_ca_dir: args.dev_ca_dir.clone(),
        create: true,
        config,
        ..Default::default()
    };
    let source: Box<dyn pith_attest::provider::EvidenceSource> = if args.simulated {
        Box::new(SimulatedSource::open(&sim)?)
    } else {
        let paths = args
            .tee_root
            .as_deref()
            .map(Paths::under)
            .unwrap_or_default();
        detect(&DetectOptions {
            paths,
            simulated: Some(sim),
        })?
    };
    let evidence = source.quote(report_data).context("producing evidence")?;
    let platform = source.platform();
    match &args.out {
        Some(path) => {
            std::fs::write(path, &evidence)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "{platform} evidence, {} bytes, written to {}",
                evidence.len(),
                path.display()
            );
        }
        None => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", hex::encode(&evidence))?;
            eprintln!("{platform} evidence, {} bytes", evidence.len());
        }
    }
    if platform == pith_attest::Platform::Simulated {
        eprintln!(
            "SIMULATED evidence (no TEE): verify with --dev-ca {}",
            args.dev_ca_dir.join(CERT_FILE).display()
        );
    }
    Ok(())
}

/// Run `pith attest dev-ca ...`.
pub fn run_dev_ca(cmd: &DevCaCommand) -> ExitCode {
    match cmd {
        DevCaCommand::Init { dir } => match init(dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("pith attest dev-ca init: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}

fn init(dir: &Path) -> anyhow::Result<()> {
    DevCa::init(dir, SystemTime::now())?;
    println!("{}", dir.join(CERT_FILE).display());
    Ok(())
}

/// Hex (optionally `0x`-prefixed), at most 64 bytes, zero-padded on the right.
fn parse_report_data(s: &str) -> anyhow::Result<[u8; 64]> {
    let s = s.trim();
    let s = s.strip_prefix("0x").unwrap_or(s);
    let bytes = hex::decode(s).context("--report-data is not hex")?;
    if bytes.len() > 64 {
        bail!("--report-data is {} bytes; at most 64", bytes.len());
    }
    let mut rd = [0u8; 64];
    rd.get_mut(..bytes.len())
        .context("length")?
        .copy_from_slice(&bytes);
    Ok(rd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_data_parsing() {
        let rd = parse_report_data("0xabcd").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&rd[..2], &[0xab, 0xcd]);
        assert!(rd[2..].iter().all(|&b| b == 0));
        assert!(parse_report_data(&"00".repeat(64)).is_ok());
        assert!(parse_report_data(&"00".repeat(65)).is_err());
        assert!(parse_report_data("xyz").is_err());
        assert!(parse_report_data("abc").is_err());
    }
}
