//! A whole local network for the end-to-end tests: `pith up` as a real child process on
//! loopback (anvil, KMS, two workers, gateway), and the `pith` commands run against it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long `pith up` may take to print `ready` (a guard against a hang, not a measurement).
const UP_GUARD: Duration = Duration::from_secs(420);

pub fn pith_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pith"))
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A running `pith up`; stopped with SIGTERM (then SIGKILL) on drop.
pub struct Net {
    pub dir: tempfile::TempDir,
    pub child: Child,
    pub ready: String,
    lines: mpsc::Receiver<String>,
    pub output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Net {
    /// Start `pith up --dir TMP` and wait for its `ready` line.
    pub fn up() -> Net {
        let dir = tempfile::Builder::new()
            .prefix("pith-e2e-")
            .tempdir()
            .unwrap();
        Self::up_in(dir)
    }

    pub fn up_in(dir: tempfile::TempDir) -> Net {
        Self::start(dir, None)
    }

    /// Start `pith up --dir TMP --model MODEL`: workers serve `model` to programs.
    pub fn up_with_model(model: &Path) -> Net {
        let dir = tempfile::Builder::new()
            .prefix("pith-e2e-")
            .tempdir()
            .unwrap();
        Self::start(dir, Some(model))
    }

    fn start(dir: tempfile::TempDir, model: Option<&Path>) -> Net {
        let mut cmd = Command::new(pith_bin());
        cmd.arg("up").arg("--dir").arg(dir.path());
        if let Some(m) = model {
            cmd.arg("--model").arg(m);
        }
        let mut child = cmd
            .current_dir(repo_root())
            .env("PITH_UP_RESTART_DELAY", "3")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    output.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        drop(tx); // so a `pith up` that exits ends the wait at once instead of at the guard
        let mut net = Net {
            dir,
            child,
            ready: String::new(),
            lines,
            output,
        };
        net.ready = net
            .wait_line(|l| l.starts_with("ready"), UP_GUARD)
            .unwrap_or_else(|| {
                panic!(
                    "pith up did not print `ready`:\n{}\n{}",
                    net.transcript(),
                    net.logs()
                )
            });
        net
    }

    /// Wait for a line of `pith up`'s output matching `pred`.
    pub fn wait_line(&mut self, pred: impl Fn(&str) -> bool, guard: Duration) -> Option<String> {
        let deadline = Instant::now() + guard;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(l) if pred(&l) => return Some(l),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => return None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    pub fn transcript(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// The tail of every service log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        if let Ok(rd) = std::fs::read_dir(self.dir.path().join("logs")) {
            for e in rd.flatten() {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                let tail: Vec<&str> = text
                    .lines()
                    .rev()
                    .take(40)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                out.push_str(&format!(
                    "--- {}\n{}\n",
                    e.path().display(),
                    tail.join("\n")
                ));
            }
        }
        out
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `pith ARGS --dir DIR`, from the repository root.
    pub fn pith(&self, args: &[&str]) -> Output {
        let out = Command::new(pith_bin())
            .args(args)
            .arg("--dir")
            .arg(self.path())
            .current_dir(repo_root())
            .output()
            .unwrap();
        out
    }

    /// `pith ARGS --dir DIR --json`, which must exit 0; its JSON.
    pub fn pith_json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.pith(&a);
        assert!(
            out.status.success(),
            "pith {args:?} failed ({}):\nstdout: {}\nstderr: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "pith {args:?}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    pub fn network(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.path().join("network.json")).unwrap()).unwrap()
    }

    pub fn deployment(&self) -> pith_chain::manifest::Deployment {
        serde_json::from_slice(&std::fs::read(self.path().join("deployment.json")).unwrap())
            .unwrap()
    }

    pub fn rpc(&self) -> String {
        self.network()["rpc_url"].as_str().unwrap().to_owned()
    }

    pub fn gateway(&self) -> String {
        self.network()["gateway_url"].as_str().unwrap().to_owned()
    }

    /// The pid of a child of `pith up` (`anvil`, `kms`, `gateway`, `worker-0`, ...).
    pub fn pid(&self, name: &str) -> Option<i32> {
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.path().join("processes.json")).ok()?)
                .ok()?;
        m.get(name)?.as_i64().map(|p| p as i32)
    }

    pub fn kill9(&self, name: &str) -> i32 {
        let pid = self
            .pid(name)
            .unwrap_or_else(|| panic!("no pid for {name}"));
        let st = Command::new("kill")
            .arg("-9")
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(st.success(), "kill -9 {pid}");
        pid
    }

    /// The private key file of development account `i` (keys/dev-i.key).
    pub fn key_file(&self, i: usize) -> PathBuf {
        self.path().join("keys").join(format!("dev-{i}.key"))
    }

    pub fn signer(&self, i: usize) -> alloy::signers::local::PrivateKeySigner {
        let hex = std::fs::read_to_string(self.key_file(i)).unwrap();
        hex.trim().parse().unwrap()
    }

    /// Stop `pith up` with SIGTERM and wait; returns its exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// How long a test waits for one network event (a guard against a hang, not a measurement).
pub const GUARD: Duration = Duration::from_secs(180);

/// A finished command's status, stdout and stderr, for assertion messages.
pub fn out_text(o: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Poll `f` until it returns Some, or panic with `what` after `guard`.
pub fn eventually<T>(what: &str, guard: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + guard;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not reached within {guard:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Build the sandbox test component NAME into `dir` with wasm-tools.
pub fn wasm_component(dir: &Path, name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sandbox/tests/wasm");
    let prelude = std::fs::read_to_string(src.join("prelude.wat")).unwrap();
    let guest = std::fs::read_to_string(src.join(format!("{name}.wat"))).unwrap();
    let (imports, body) = guest.split_once(";; ---- body ----\n").unwrap();
    let wat = dir.join(format!("{name}.wat"));
    std::fs::write(
        &wat,
        format!(
            "{}{body})",
            prelude.replace(";; ---- test imports ----\n", imports)
        ),
    )
    .unwrap();
    let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wit");
    let core = dir.join(format!("{name}.core.wasm"));
    let out = dir.join(format!("{name}.wasm"));
    let ok = Command::new("wasm-tools")
        .args(["component", "embed"])
        .arg(&wit)
        .args(["--world", "pith:host/app"])
        .arg(&wat)
        .arg("-o")
        .arg(&core)
        .status()
        .expect("wasm-tools (scripts/install.d/wasm-toolchain)")
        .success();
    assert!(ok);
    assert!(
        Command::new("wasm-tools")
            .args(["component", "new"])
            .arg(&core)
            .arg("-o")
            .arg(&out)
            .status()
            .unwrap()
            .success()
    );
    out
}
