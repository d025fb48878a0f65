//! Commands of the `pith` binary. Each subsystem has its own module with its clap `Args`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod attest;
pub mod attest_quote;
pub mod call;
pub mod chain;
pub mod dev;
pub mod gateway;
pub mod gov;
pub mod kms;
pub mod network;
pub mod new;
pub mod programs;
pub mod proxy;
pub mod run;
pub mod stake;
pub mod status;
pub mod trust;
pub mod up;
pub mod verify;
pub mod worker;

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
    /// Run a worker node (attested; runs encrypted program invocations).
    Worker(worker::WorkerArgs),
    /// Call a program with an encrypted request through the gateway and verify the receipt.
    Call(call::CallArgs),
    /// Serve a program on 127.0.0.1 as plain HTTP: every request is encrypted to it, every
    /// answer's receipt verified (for clients that know nothing of Pith).
    Proxy(proxy::ProxyArgs),
    /// Verify a receipt or a worker down to the TEE vendor's root (or the dev CA).
    Verify(verify::VerifyArgs),
    /// Show the local network: chain, KMS, workers, gateway.
    Status(status::StatusArgs),
    /// Start a whole local network (anvil, contracts, KMS, two workers, gateway) and stay in
    /// the foreground; rerun to resume it.
    Up(up::UpArgs),
    /// Deploy a program: upload its code, register it, send secrets, deposit PHA.
    Deploy(programs::DeployArgs),
    /// Manage your programs.
    #[command(subcommand)]
    Programs(programs::ProgramsCommand),
    /// Scaffold a new program: `pith new agent NAME`.
    New(new::NewArgs),
    /// Run the public gateway of a network (routing, code store, receipts, metrics).
    Gateway(gateway::GatewayArgs),
    /// Run a KMS node (attested; master keys, worker registration, key release).
    Kms(kms::KmsArgs),
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
        Command::Worker(args) => worker::run(args),
        Command::Call(args) => call::run(args),
        Command::Proxy(args) => proxy::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Status(args) => status::run(args),
        Command::Up(args) => up::run(args),
        Command::Deploy(args) => programs::run_deploy(args),
        Command::Programs(cmd) => programs::run(cmd),
        Command::New(a) => new::run(a),
        Command::Gateway(args) => gateway::run(args),
        Command::Kms(args) => kms::run(args),
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("PITH_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
