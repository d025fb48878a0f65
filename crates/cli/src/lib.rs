//! Commands of the `pith` binary. Each subsystem has its own module with its clap `Args`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod attest;
pub mod attest_quote;
pub mod chain;
pub mod gov;
pub mod stake;
pub mod dev;
pub mod run;

/// Pith: an open confidential-compute network.
#[derive(Debug, Parser)]
#[command(name = "pith", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify or produce TEE attestation evidence.
    #[command(subcommand)]
    Attest(attest::AttestCommand),
    /// Run a local chain (anvil + the Pith contracts) or inspect one.
    #[command(subcommand)]
    Chain(chain::ChainCommand),
    /// Stake PHA in worker operators' pools.
    #[command(subcommand)]
    Stake(stake::StakeCommand),
    /// Governance: propose, vote, execute.
    #[command(subcommand)]
    Gov(gov::GovCommand),
    /// Run one invocation of a JavaScript program in the local sandbox.
    Run(run::RunArgs),
    /// Serve a JavaScript program on 127.0.0.1, reloading it when the file changes.
    Dev(dev::DevArgs),
}

/// Exit code for a usage error or an unreadable file.
pub const EXIT_USAGE: u8 = 2;

/// Parse the command line and run it.
pub fn main() -> ExitCode {
    init_tracing();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Attest(cmd) => attest::run(cmd),
        Command::Chain(cmd) => chain::run(cmd),
        Command::Stake(cmd) => stake::run(cmd),
        Command::Gov(cmd) => gov::run(cmd),
        Command::Run(args) => run::run(args),
        Command::Dev(args) => dev::run(args),
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("PITH_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
