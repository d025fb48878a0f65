//! `pith new agent NAME [--dir DIR]`: scaffold a program that runs by itself (an agent):
//! `DIR/NAME/index.js` (from `templates/agent.js`) and a README with the commands that deploy
//! it and set its triggers.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

const AGENT_JS: &str = include_str!("../templates/agent.js");

/// What to scaffold.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    /// A program with triggers: a cron schedule and on-chain events.
    Agent,
}

/// Arguments of `pith new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// What to create.
    pub kind: Kind,
    /// Its name (letters, digits, `-` and `_`): the directory created.
    pub name: String,
    /// Where to create it (default: the current directory).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
}

fn readme(name: &str) -> String {
    format!(
        "# {name}\n\nA Pith agent: a program that runs by itself on a cron schedule and on on-chain events.\n\n\
Try it locally: `pith run index.js --method POST --path /.pith/agent --header 'pith-trigger: cron' \\\n\
  --body '{{\"trigger\":\"cron\",\"firing\":\"cron:0\",\"scheduledTime\":0}}' --json`\n\n\
On a network (`scripts/up` for a local one):\n\n\
    pith deploy . --fund 0.1 --deposit 10 --cron \"*/30 * * * * *\"\n\
    pith programs triggers ID --cron \"*/10 * * * * *\" --on-event 0xCONTRACT:Name(type,...)\n\
    pith call ID          # what it has done\n\
    pith programs logs ID # its firings, each with its receipt\n\n\
Each firing runs once on the whole network; make on-chain actions idempotent (see index.js).\n"
    )
}

fn create(a: &NewArgs) -> Result<PathBuf> {
    let ok = !a.name.is_empty()
        && a.name.len() <= 64
        && a.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        bail!("name {:?}: use 1 to 64 letters, digits, '-' or '_'", a.name);
    }
    let dir = a.dir.join(&a.name);
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    match a.kind {
        Kind::Agent => {
            std::fs::write(dir.join("index.js"), AGENT_JS.replace("__NAME__", &a.name))
                .context("writing index.js")?;
            std::fs::write(dir.join("README.md"), readme(&a.name)).context("writing README.md")?;
        }
    }
    Ok(dir)
}

/// Run `pith new`.
pub fn run(a: NewArgs) -> ExitCode {
    match create(&a) {
        Ok(dir) => {
            println!(
                "created {} (index.js, README.md); next: pith deploy {} --fund 0.1 --cron \"*/30 * * * * *\"",
                dir.display(),
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(crate::EXIT_USAGE)
        }
    }
}
