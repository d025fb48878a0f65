//! `pith attest verify` and `pith attest quote`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

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

/// Arguments of `pith attest verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Evidence file: binary, hex or base64 (auto-detected), or NVIDIA evidence.json.
    pub evidence: PathBuf,
    /// Platform of the evidence.
    #[arg(long, default_value = "auto")]
    pub platform: String,
    /// Collateral directory in the corpus layout.
    #[arg(long)]
    pub collateral: Option<PathBuf>,
    /// Verify as of this RFC 3339 instant (default: now).
    #[arg(long)]
    pub at: Option<String>,
    /// Appraisal policy (TOML).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Skip an absent Intel PCK CRL or QE identity, with a warning.
    #[arg(long)]
    pub lenient_collateral: bool,
    /// Development CA for simulated evidence.
    #[arg(long)]
    pub dev_ca: Option<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Run an attest command.
pub fn run(cmd: AttestCommand) -> ExitCode {
    match cmd {
        AttestCommand::Verify(args) => {
            eprintln!("pith attest verify {}: the verifier front end is being built", args.evidence.display());
            ExitCode::from(crate::EXIT_USAGE)
        }
        AttestCommand::Quote(args) => crate::attest_quote::run_quote(&args),
        AttestCommand::DevCa(cmd) => crate::attest_quote::run_dev_ca(&cmd),
    }
}
