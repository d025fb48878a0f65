//! `pith:host` (wit/pith-host.wit) for WASM programs, over the same host traits as the
//! JavaScript `env`.

use std::sync::atomic::Ordering;

use wasmtime::component::{HasSelf, Linker};

use super::State;
use crate::host::HostError;
use crate::limits::ErrorKind;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "pith:host/imports",
        imports: { default: async | trappable },
    });
}

use bindings::pith::host::{attestation, chain, keys, kv, program, secrets};

/// Add every `pith:host` interface to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    bindings::Imports::add_to_linker::<State, HasSelf<State>>(linker, |s| s)
}

fn msg(e: HostError) -> String {
    e.to_string()
}

impl State {
    /// Count one kv operation; past `kv_ops` the invocation ends (a trap).
    fn count_kv(&self) -> wasmtime::Result<()> {
        let limit = self.shared.limits().kv_ops;
        let n = self.shared.kv_ops.fetch_add(1, Ordering::Relaxed) + 1;
        if n > limit {
            self.shared.kv_ops.store(limit, Ordering::Relaxed);
            self.shared.kill(
                ErrorKind::KvLimit,
                format!("kv operation limit of {limit} exceeded"),
            );
            return Err(wasmtime::format_err!("kv operation limit exceeded"));
        }
        Ok(())
    }
}

impl program::Host for State {
    async fn id(&mut self) -> wasmtime::Result<String> {
        Ok(self.program.id.clone())
    }

    async fn code_hash(&mut self) -> wasmtime::Result<Vec<u8>> {
        Ok(self.program.code_hash.to_vec())
    }
}

impl secrets::Host for State {
    async fn get(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self.secrets.get(&name).cloned())
    }

    async fn names(&mut self) -> wasmtime::Result<Vec<String>> {
        Ok(self.secrets.keys().cloned().collect())
    }
}

impl kv::Host for State {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, String>> {
        self.count_kv()?;
        Ok(self.host.kv.get(&self.program, &key).await.map_err(msg))
    }

    async fn put(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        self.count_kv()?;
        Ok(self
            .host
            .kv
            .put(&self.program, &key, value)
            .await
            .map_err(msg))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), String>> {
        self.count_kv()?;
        Ok(self.host.kv.delete(&self.program, &key).await.map_err(msg))
    }

    async fn list(
        &mut self,
        prefix: String,
        limit: u32,
        cursor: String,
    ) -> wasmtime::Result<Result<kv::Page, String>> {
        self.count_kv()?;
        let limit = usize::try_from(limit.clamp(1, 1000)).unwrap_or(1000);
        Ok(self
            .host
            .kv
            .list(&self.program, &prefix, limit, &cursor)
            .await
            .map(|p| kv::Page {
                keys: p.keys,
                cursor: p.cursor,
            })
            .map_err(msg))
    }
}

async fn sign(
    keys: &dyn crate::host::KeyProvider,
    program: &crate::host::ProgramRef,
    path: &str,
    digest: [u8; 32],
) -> Result<Vec<u8>, String> {
    keys.sign_digest(program, path, digest)
        .await
        .map(|s| s.to_vec())
        .map_err(msg)
}

impl keys::Host for State {
    async fn derive(&mut self, path: String) -> wasmtime::Result<Result<keys::Derived, String>> {
        Ok(self
            .host
            .keys
            .derive(&self.program, &path)
            .await
            .map(|d| keys::Derived {
                public_key: d.public_key,
                address: d.address.to_vec(),
            })
            .map_err(msg))
    }

    async fn sign_message(
        &mut self,
        path: String,
        message: Vec<u8>,
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        Ok(sign(
            self.host.keys.as_ref(),
            &self.program,
            &path,
            crate::eth::personal_message_hash(&message),
        )
        .await)
    }

    async fn sign_typed_data(
        &mut self,
        path: String,
        typed_data: String,
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        let digest = serde_json::from_str::<serde_json::Value>(&typed_data)
            .map_err(|e| format!("sign-typed-data: {e}"))
            .and_then(|td| {
                crate::eip712::typed_data_hash(&td).map_err(|e| format!("sign-typed-data: {e}"))
            });
        Ok(match digest {
            Ok(d) => sign(self.host.keys.as_ref(), &self.program, &path, d).await,
            Err(e) => Err(e),
        })
    }
}

impl attestation::Host for State {
    async fn attest(&mut self, report_data: Vec<u8>) -> wasmtime::Result<Result<Vec<u8>, String>> {
        if report_data.len() > 64 {
            return Ok(Err("report data must be at most 64 bytes".into()));
        }
        Ok(self
            .host
            .attestation
            .attest(&self.program, report_data)
            .await
            .map_err(msg))
    }
}

fn tx(json: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err("the transaction must be a JSON object".into()),
        Err(e) => Err(format!("invalid transaction JSON: {e}")),
    }
}

impl chain::Host for State {
    async fn call(&mut self, tx_json: String) -> wasmtime::Result<Result<String, String>> {
        Ok(match tx(&tx_json) {
            Ok(t) => self.host.chain.call(&self.program, t).await.map_err(msg),
            Err(e) => Err(e),
        })
    }

    async fn send_transaction(
        &mut self,
        tx_json: String,
    ) -> wasmtime::Result<Result<String, String>> {
        Ok(match tx(&tx_json) {
            Ok(t) => self
                .host
                .chain
                .send_transaction(&self.program, t)
                .await
                .map_err(msg),
            Err(e) => Err(e),
        })
    }
}
