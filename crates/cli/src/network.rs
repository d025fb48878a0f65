//! How the network commands (`pith status|deploy|call|verify|programs`) find a network:
//! `--dir DIR` (default `.pith/`, the directory `pith up` writes `network.json` into) or
//! explicit `--gateway URL --rpc URL` with `--private-key-file FILE` / `--keystore FILE` to
//! sign. A key is never taken from the command line itself.
//!
//! Also the small HTTP client the CLI uses to talk to the gateway (plain JSON and the
//! `message/ohttp-*` bodies), with typed errors decoded from `pith_api::ErrorBody`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy::primitives::Address;
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use pith_api::network::NetworkFile;
use pith_api::{ApiError, ErrorBody};
use pith_chain::client::{PithContracts, read_provider, signing_provider};
use pith_chain::keys;
use pith_chain::manifest::Deployment;

use crate::chain::{DEFAULT_DIR, KEYSTORE_PASSWORD_ENV};

/// Where the network is and who signs.
#[derive(Debug, Clone, Args)]
pub struct NetOpts {
    /// Network directory written by `pith up` (network.json, keys). Default: .pith
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Gateway base URL (default: network.json's).
    #[arg(long)]
    pub gateway: Option<String>,
    /// Chain JSON-RPC URL (default: network.json's, else the gateway's).
    #[arg(long)]
    pub rpc: Option<String>,
    /// File holding the signing key as hex (mode 0600).
    #[arg(long, conflicts_with = "keystore")]
    pub private_key_file: Option<PathBuf>,
    /// Encrypted JSON keystore; password from $PITH_KEYSTORE_PASSWORD or a prompt.
    #[arg(long)]
    pub keystore: Option<PathBuf>,
}

/// A resolved network.
pub struct Network {
    /// The directory, when the network was found through one.
    pub dir: Option<PathBuf>,
    /// network.json, when read from a directory.
    pub file: Option<NetworkFile>,
    /// Gateway base URL (no trailing slash).
    pub gateway: String,
    /// Chain RPC URL.
    pub rpc: String,
    /// The deployment.
    pub deployment: Deployment,
    /// The signer, when asked for.
    pub signer: Option<PrivateKeySigner>,
    /// HTTP client.
    pub http: Http,
}

impl NetOpts {
    fn dir_path(&self) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))
    }

    /// Resolve the network; load a signer when `signing`.
    pub async fn resolve(&self, signing: bool) -> Result<Network> {
        let http = Http::new()?;
        let dir = self.dir_path();
        let explicit = self.gateway.is_some() && self.dir.is_none();
        let file = if explicit && !dir.join(pith_api::network::FILE_NAME).exists() {
            None
        } else {
            match NetworkFile::read(&dir) {
                Ok(f) => Some(f),
                Err(e) if self.gateway.is_some() => {
                    tracing::debug!("no network file: {e}");
                    None
                }
                Err(e) => {
                    return Err(anyhow!(
                        "{e} (run `pith up`, or pass --gateway URL --rpc URL)"
                    ));
                }
            }
        };
        let gateway = match (&self.gateway, &file) {
            (Some(g), _) => g.trim_end_matches('/').to_string(),
            (None, Some(f)) => f.gateway_url.trim_end_matches('/').to_string(),
            (None, None) => bail!("no network: pass --dir DIR or --gateway URL"),
        };
        let (deployment, rpc) = match &file {
            Some(f) => {
                let d: Deployment = serde_json::from_value(f.deployment.clone())
                    .context("network.json: deployment")?;
                (d, self.rpc.clone().unwrap_or_else(|| f.rpc_url.clone()))
            }
            None => {
                let info: pith_api::gateway::NetworkInfo = http
                    .get_json(&format!("{gateway}{}", pith_api::gateway::NETWORK))
                    .await
                    .context("asking the gateway for the network")?;
                let d: Deployment =
                    serde_json::from_value(info.deployment).context("gateway: deployment")?;
                let rpc = self.rpc.clone().unwrap_or(info.rpc_url);
                (d, rpc)
            }
        };
        let signer = if signing {
            Some(self.signer(file.as_ref(), &dir)?)
        } else {
            None
        };
        Ok(Network {
            dir: file.as_ref().map(|_| dir),
            file,
            gateway,
            rpc,
            deployment,
            signer,
            http,
        })
    }

    fn signer(&self, file: Option<&NetworkFile>, dir: &Path) -> Result<PrivateKeySigner> {
        if let Some(f) = &self.private_key_file {
            return Ok(keys::signer_from_key_file(f)?);
        }
        if let Some(ks) = &self.keystore {
            let password = match std::env::var(KEYSTORE_PASSWORD_ENV) {
                Ok(p) => p,
                Err(_) => rpassword::prompt_password(format!("password for {}: ", ks.display()))
                    .context("reading the keystore password")?,
            };
            return Ok(keys::signer_from_keystore(ks, password.as_bytes())?);
        }
        let Some(f) = file else {
            bail!("signing needs --private-key-file FILE or --keystore FILE")
        };
        let acct = f
            .accounts
            .iter()
            .find(|a| a.role == "developer")
            .ok_or_else(|| {
                anyhow!("network.json has no developer account; pass --private-key-file")
            })?;
        let path = resolve_path(dir, &acct.key_file);
        keys::signer_from_key_file(&path)
            .with_context(|| format!("developer key {}", path.display()))
    }
}

/// A path from network.json: relative to the network directory unless absolute.
pub fn resolve_path(dir: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

impl Network {
    /// Contract clients (signing when a signer was loaded).
    pub fn contracts(&self) -> Result<PithContracts> {
        Ok(PithContracts::new(&self.deployment, self.provider()?))
    }
    /// A provider (signing when a signer was loaded).
    pub fn provider(&self) -> Result<DynProvider> {
        Ok(match &self.signer {
            Some(s) => signing_provider(&self.rpc, s.clone())?,
            None => read_provider(&self.rpc)?,
        })
    }
    /// The signer's address.
    pub fn sender(&self) -> Result<Address> {
        self.signer
            .as_ref()
            .map(|s| s.address())
            .ok_or_else(|| anyhow!("no signer"))
    }
    /// The chain id of the deployment.
    pub fn chain_id(&self) -> u64 {
        self.deployment.chain_id
    }
    /// The development CA certificate of the network, when it has one (simulated platform).
    pub fn dev_ca_pem(&self) -> Option<Vec<u8>> {
        let dir = self.dir.as_ref()?;
        let ca = self.file.as_ref()?.dev_ca.as_ref()?;
        std::fs::read(resolve_path(dir, ca).join(pith_attest::simulated::CERT_FILE)).ok()
    }
    /// A gateway URL for `path` (a route constant with `{id}`-style holes already filled).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway)
    }
}

/// An HTTP error from a Pith service.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The service answered with a typed error body.
    #[error("{url}: {status}: {} ({})", .error.message, .error.kind.as_str())]
    Api {
        /// URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The error.
        error: ApiError,
    },
    /// The service answered with a non-2xx status and no error body.
    #[error("{url}: HTTP {status}: {body}")]
    Status {
        /// URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// Body (truncated).
        body: String,
    },
    /// Transport failure.
    #[error("{url}: {source}")]
    Transport {
        /// URL.
        url: String,
        /// Cause.
        source: reqwest::Error,
    },
    /// A 2xx body that did not parse.
    #[error("{url}: bad answer: {message}")]
    Decode {
        /// URL.
        url: String,
        /// What was wrong.
        message: String,
    },
}

impl HttpError {
    /// The API error kind, when the service sent one.
    pub fn kind(&self) -> Option<pith_api::ErrorKind> {
        match self {
            Self::Api { error, .. } => Some(error.kind),
            _ => None,
        }
    }
}

/// A response: status, headers, body.
#[derive(Debug)]
pub struct Answer {
    /// Status.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body.
    pub body: Vec<u8>,
}

impl Answer {
    /// A header as a string.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The CLI's HTTP client.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
}

impl Http {
    /// A client with sensible timeouts.
    pub fn new() -> Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .context("building the HTTP client")?;
        Ok(Self { client })
    }

    /// Send a request; a non-2xx answer becomes an [`HttpError`].
    pub async fn send(&self, req: reqwest::RequestBuilder, url: &str) -> Result<Answer, HttpError> {
        let resp = req.send().await.map_err(|source| HttpError::Transport {
            url: url.into(),
            source,
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|source| HttpError::Transport {
                url: url.into(),
                source,
            })?
            .to_vec();
        if !(200..300).contains(&status) {
            if let Ok(e) = serde_json::from_slice::<ErrorBody>(&body) {
                return Err(HttpError::Api {
                    url: url.into(),
                    status,
                    error: e.error,
                });
            }
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(HttpError::Status {
                url: url.into(),
                status,
                body: text,
            });
        }
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// GET.
    pub async fn get(&self, url: &str) -> Result<Answer, HttpError> {
        self.send(self.client.get(url), url).await
    }

    /// GET a JSON body.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<T, HttpError> {
        let a = self.get(url).await?;
        serde_json::from_slice(&a.body).map_err(|e| HttpError::Decode {
            url: url.into(),
            message: e.to_string(),
        })
    }

    /// POST (or another method) with a body and content type.
    pub async fn send_body(
        &self,
        method: reqwest::Method,
        url: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Answer, HttpError> {
        let req = self
            .client
            .request(method, url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        self.send(req, url).await
    }

    /// The inner reqwest client.
    pub fn inner(&self) -> &reqwest::Client {
        &self.client
    }
}

/// Fill `{name}` in a route constant.
pub fn route(template: &str, name: &str, value: &str) -> String {
    template.replace(&format!("{{{name}}}"), value)
}

/// Current unix time, seconds.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_fills_holes() {
        assert_eq!(
            route(pith_api::gateway::PROGRAM_OHTTP_KEYS, "id", "0x01"),
            "/v1/programs/0x01/ohttp-keys"
        );
        assert_eq!(
            route(pith_api::gateway::WORKER, "address", "0xab"),
            "/v1/workers/0xab"
        );
    }

    #[test]
    fn relative_paths_resolve_against_the_dir() {
        assert_eq!(
            resolve_path(Path::new("/n"), "keys/dev-1.key"),
            PathBuf::from("/n/keys/dev-1.key")
        );
        assert_eq!(
            resolve_path(Path::new("/n"), "/abs/k"),
            PathBuf::from("/abs/k")
        );
    }
}

/// SIGINT and SIGTERM, caught from the moment this is made. Make it before a process
/// announces that it is ready: a signal sent between the announcement and the handler would
/// otherwise kill it with the default disposition (no drain, no state saved).
pub struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    /// Catch SIGINT and SIGTERM from now on.
    pub fn install() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            int: signal(SignalKind::interrupt()).context("catching SIGINT")?,
            term: signal(SignalKind::terminate()).context("catching SIGTERM")?,
        })
    }

    /// The next SIGINT or SIGTERM.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

/// Wait until SIGINT or SIGTERM, then cancel `shutdown` and wait for the service task `done`
/// to finish draining; a service that stops on its own ends the wait with its result.
pub async fn serve_until_signal<E: std::fmt::Display>(
    mut signals: Signals,
    shutdown: tokio_util::sync::CancellationToken,
    mut done: tokio::task::JoinHandle<std::result::Result<(), E>>,
) -> Result<()> {
    tokio::select! {
        () = signals.recv() => {}
        r = &mut done => return r?.map_err(|e| anyhow!("{e}")),
    }
    shutdown.cancel();
    done.await?.map_err(|e| anyhow!("{e}"))
}
