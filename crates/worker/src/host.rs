//! The sandbox host services a worker wires: program keys from the KMS-released key set,
//! chain access through alloy (calls, and transactions signed by the program's own key).
//! `env.kv` is [`crate::kv::SealedKv`]; `env.attestation` is [`crate::evidence::Attester`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use pith_crypto::keytree::ProgramId;
use pith_sandbox::host::{
    BoxFuture, ChainProvider, DerivedPublic, HostError, KeyProvider, ProgramRef,
};

use crate::keys::{KeyRing, ProgramKeySet};

fn keyset(keys: &KeyRing, program: &ProgramRef) -> Result<Arc<ProgramKeySet>, HostError> {
    let id = ProgramId::from_hex(&program.id)
        .map_err(|e| HostError::Invalid(format!("program id: {e}")))?;
    keys.get(&id).ok_or(HostError::Unavailable(
        "program keys (not released to this worker)",
    ))
}

/// `env.keys`: keys derived from the program's user-key root released by the KMS.
#[derive(Debug)]
pub struct ProgramKeys {
    keys: Arc<KeyRing>,
}

impl ProgramKeys {
    /// Over the worker's key ring.
    pub fn new(keys: Arc<KeyRing>) -> Self {
        Self { keys }
    }

    fn user_key(
        &self,
        program: &ProgramRef,
        path: &str,
    ) -> Result<k256::ecdsa::SigningKey, HostError> {
        let set = keyset(&self.keys, program)?;
        set.user_key(path).map_err(|e| match e {
            crate::WorkerError::Api(a) => HostError::Invalid(a.message),
            other => HostError::Failed(other.to_string()),
        })
    }
}

impl KeyProvider for ProgramKeys {
    fn derive<'a>(
        &'a self,
        program: &'a ProgramRef,
        path: &'a str,
    ) -> BoxFuture<'a, Result<DerivedPublic, HostError>> {
        Box::pin(async move {
            let k = self.user_key(program, path)?;
            let vk = k.verifying_key();
            Ok(DerivedPublic {
                public_key: vk.to_encoded_point(true).as_bytes().to_vec(),
                address: pith_sandbox::host::eth_address(vk),
            })
        })
    }

    fn sign_digest<'a>(
        &'a self,
        program: &'a ProgramRef,
        path: &'a str,
        digest: [u8; 32],
    ) -> BoxFuture<'a, Result<[u8; 65], HostError>> {
        Box::pin(async move {
            pith_sandbox::host::sign_recoverable(&self.user_key(program, path)?, &digest)
        })
    }
}

/// `env.chain`: `eth_call` from the program's address, and transactions signed with the
/// program's own key (its owner funds the address).
pub struct Chain {
    rpc_url: String,
    read: DynProvider,
    keys: Arc<KeyRing>,
    senders: Mutex<HashMap<Address, DynProvider>>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("rpc_url", &self.rpc_url)
            .finish_non_exhaustive()
    }
}

fn field<'a>(tx: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    tx.get(name).and_then(serde_json::Value::as_str)
}

fn parse_tx(tx: &serde_json::Value, from: Address) -> Result<TransactionRequest, HostError> {
    let to: Address = field(tx, "to")
        .ok_or_else(|| HostError::Invalid("transaction needs a \"to\" address".into()))?
        .parse()
        .map_err(|e| HostError::Invalid(format!("bad \"to\": {e}")))?;
    let data: Bytes = match field(tx, "data") {
        Some(d) => d
            .parse()
            .map_err(|e| HostError::Invalid(format!("bad \"data\": {e}")))?,
        None => Bytes::new(),
    };
    let mut req = TransactionRequest::default()
        .with_from(from)
        .with_to(to)
        .with_input(data);
    if let Some(v) = tx.get("value").filter(|v| !v.is_null()) {
        let value = match v {
            serde_json::Value::String(s) if s.starts_with("0x") => {
                U256::from_str_radix(s.trim_start_matches("0x"), 16)
                    .map_err(|e| HostError::Invalid(format!("bad \"value\": {e}")))?
            }
            serde_json::Value::String(s) => s
                .parse()
                .map_err(|e| HostError::Invalid(format!("bad \"value\": {e}")))?,
            serde_json::Value::Number(n) => U256::from(
                n.as_u64()
                    .ok_or_else(|| HostError::Invalid("bad \"value\"".into()))?,
            ),
            _ => return Err(HostError::Invalid("bad \"value\"".into())),
        };
        req = req.with_value(value);
    }
    if let Some(g) = tx.get("gas").and_then(|g| {
        g.as_str()
            .map(str::to_owned)
            .or_else(|| g.as_u64().map(|n| n.to_string()))
    }) {
        let gas = if let Some(h) = g.strip_prefix("0x") {
            u64::from_str_radix(h, 16)
        } else {
            g.parse()
        }
        .map_err(|e| HostError::Invalid(format!("bad \"gas\": {e}")))?;
        req = req.with_gas_limit(gas);
    }
    Ok(req)
}

impl Chain {
    /// Chain access through the RPC at `rpc_url`.
    pub fn new(rpc_url: &str, keys: Arc<KeyRing>) -> Result<Self, crate::WorkerError> {
        let read = pith_chain::client::read_provider(rpc_url)
            .map_err(|e| crate::WorkerError::Chain(e.to_string()))?;
        Ok(Self {
            rpc_url: rpc_url.to_owned(),
            read,
            keys,
            senders: Mutex::new(HashMap::new()),
        })
    }

    fn sender(&self, set: &ProgramKeySet) -> Result<(Address, DynProvider), HostError> {
        let address = set.address();
        let mut m = self
            .senders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(p) = m.get(&address) {
            return Ok((address, p.clone()));
        }
        let signer = PrivateKeySigner::from_signing_key(set.current().signing_key().clone());
        let p = pith_chain::client::signing_provider(&self.rpc_url, signer)
            .map_err(|e| HostError::Failed(e.to_string()))?;
        m.insert(address, p.clone());
        Ok((address, p))
    }
}

impl ChainProvider for Chain {
    fn call<'a>(
        &'a self,
        program: &'a ProgramRef,
        tx: serde_json::Value,
    ) -> BoxFuture<'a, Result<String, HostError>> {
        Box::pin(async move {
            let set = keyset(&self.keys, program)?;
            let req = parse_tx(&tx, set.address())?;
            let out = self
                .read
                .call(req)
                .await
                .map_err(|e| HostError::Failed(format!("eth_call: {e}")))?;
            Ok(format!("{out}"))
        })
    }

    fn send_transaction<'a>(
        &'a self,
        program: &'a ProgramRef,
        tx: serde_json::Value,
    ) -> BoxFuture<'a, Result<String, HostError>> {
        Box::pin(async move {
            let set = keyset(&self.keys, program)?;
            let (from, provider) = self.sender(&set)?;
            let req = parse_tx(&tx, from)?;
            let pending = provider.send_transaction(req).await.map_err(|e| {
                HostError::Failed(format!("eth_sendRawTransaction from {from}: {e}"))
            })?;
            Ok(format!("{:#x}", pending.tx_hash()))
        })
    }
}
