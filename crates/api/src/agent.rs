//! Agent triggers: a program that runs by itself, on a schedule (a cron expression) and on
//! on-chain events (a contract address and an event signature).
//!
//! The program's owner signs the triggers (`SignedTriggers`, tag [`TRIGGERS_TAG`]) and uploads
//! them to the gateway (`PUT /v1/programs/{id}/triggers`), which keeps the newest version whose
//! signature recovers to the program's owner on chain and lists them all at `GET /v1/agents`.
//! Workers poll that list, check each signature against the owner on chain themselves (the
//! gateway is trusted with nothing but availability), and fire the triggers: a firing runs the
//! program with `POST https://pith/.pith/agent`, headers `pith-trigger` (`cron` or `event`) and
//! `pith-firing` (the firing id), and a JSON body describing it. Each firing runs once on the
//! whole network: see docs/adr/0170-agents.md for the claim rule.
//!
//! [`TRIGGERS_TAG`]: crate::binding::TRIGGERS_TAG

use std::str::FromStr;

use pith_crypto::{Address, B256};
use serde::{Deserialize, Serialize};

use crate::binding::{TRIGGERS_TAG, message_digest};

/// `PUT` (owner-signed upload) and `GET` of one program's triggers.
pub const PROGRAM_TRIGGERS: &str = "/v1/programs/{id}/triggers";
/// `GET`: every program's newest signed triggers (`[SignedTriggers]`).
pub const AGENTS: &str = "/v1/agents";
/// Path an agent firing calls.
pub const FIRING_PATH: &str = "/.pith/agent";
/// Header naming the trigger kind (`cron` or `event`).
pub const TRIGGER_HEADER: &str = "pith-trigger";
/// Header carrying the firing id.
pub const FIRING_HEADER: &str = "pith-firing";
/// Most event triggers a program may declare.
pub const MAX_EVENTS: usize = 8;
/// Shortest interval between two cron firings accepted (seconds).
pub const MIN_CRON_INTERVAL_SECS: i64 = 1;

/// What makes a program run by itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Triggers {
    /// Cron expression with seconds (`sec min hour day-of-month month day-of-week [year]`,
    /// UTC), or the classic five fields (minute first; fires at second 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// On-chain events that fire the program, one firing per log.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventTrigger>,
}

/// One event filter: logs of `address` whose first topic is `keccak256(event)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventTrigger {
    /// The emitting contract.
    pub address: Address,
    /// The event signature, e.g. `Posted(uint256,string)` (no spaces, no parameter names).
    pub event: String,
}

impl EventTrigger {
    /// `keccak256(event)`: the log's first topic.
    pub fn topic0(&self) -> B256 {
        B256::from(pith_crypto::keccak256(self.event.as_bytes()))
    }
}

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule(cron::Schedule);

impl Schedule {
    /// Parse a cron expression (see [`Triggers::cron`]).
    pub fn parse(expr: &str) -> Result<Self, String> {
        let fields = expr.split_whitespace().count();
        let full = if fields == 5 {
            format!("0 {expr}")
        } else {
            expr.to_owned()
        };
        cron::Schedule::from_str(&full)
            .map(Self)
            .map_err(|e| format!("cron expression {expr:?}: {e}"))
    }

    /// The firing times after `after` up to and including `until` (unix seconds), oldest first,
    /// at most `limit` of them (the newest ones when there are more).
    pub fn due(&self, after: i64, until: i64, limit: usize) -> Vec<i64> {
        let Some(start) = chrono::DateTime::from_timestamp(after, 0) else {
            return Vec::new();
        };
        let mut out: Vec<i64> = Vec::new();
        for t in self.0.after(&start) {
            let ts = t.timestamp();
            if ts > until {
                break;
            }
            out.push(ts);
            if out.len() > limit {
                out.remove(0);
            }
        }
        out
    }
}

impl Triggers {
    /// Checks: a parsable cron expression, at most [`MAX_EVENTS`] events with well-formed
    /// signatures. No trigger at all is valid: it stops the agent.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(c) = &self.cron {
            Schedule::parse(c)?;
        }
        if self.events.len() > MAX_EVENTS {
            return Err(format!("at most {MAX_EVENTS} event triggers"));
        }
        for e in &self.events {
            check_event_signature(&e.event)?;
        }
        Ok(())
    }

    /// The bytes the owner signs over (their JSON, as this type serializes).
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// `Name(type,type,...)` with no spaces and a name that starts with a letter.
pub fn check_event_signature(sig: &str) -> Result<(), String> {
    let bad = || {
        Err(format!(
            "event {sig:?}: expected Name(type,...) without spaces"
        ))
    };
    let Some((name, rest)) = sig.split_once('(') else {
        return bad();
    };
    if !rest.ends_with(')')
        || name.is_empty()
        || !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || sig.chars().any(char::is_whitespace)
    {
        return bad();
    }
    Ok(())
}

/// Triggers as uploaded: signed by the program's owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedTriggers {
    /// The program.
    pub program_id: B256,
    /// Monotonic version (a newer upload replaces an older one; unix seconds is a good choice).
    pub version: u64,
    /// The triggers.
    pub triggers: Triggers,
    /// `0x`-hex 65-byte signature over [`SignedTriggers::digest`].
    pub signature: String,
}

impl SignedTriggers {
    /// `message_digest(TRIGGERS_TAG, [program_id, keccak256(triggers JSON)], version)`.
    pub fn digest(program_id: B256, version: u64, triggers: &Triggers) -> B256 {
        let body = pith_crypto::keccak256(&triggers.canonical());
        message_digest(TRIGGERS_TAG, &[program_id.as_slice(), &body], version)
    }

    /// The address that signed (check it against `Programs.ownerOf`).
    pub fn signer(&self) -> Result<Address, String> {
        let sig = hex::decode(self.signature.strip_prefix("0x").unwrap_or(&self.signature))
            .map_err(|_| "signature is not hex".to_owned())?;
        pith_crypto::receipt::recover(
            &Self::digest(self.program_id, self.version, &self.triggers),
            &sig,
        )
        .map_err(|e| format!("signature: {e}"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn schedules_with_and_without_seconds() {
        let every_10s = Schedule::parse("*/10 * * * * *").unwrap();
        assert_eq!(every_10s.due(1_000, 1_030, 10), vec![1_010, 1_020, 1_030]);
        assert_eq!(every_10s.due(1_000, 1_030, 2), vec![1_020, 1_030]);
        assert!(every_10s.due(1_000, 1_005, 10).is_empty());
        let minutely = Schedule::parse("* * * * *").unwrap();
        assert_eq!(minutely.due(60, 180, 10), vec![120, 180]);
        assert!(Schedule::parse("not cron").is_err());
        assert!(Schedule::parse("99 * * * * *").is_err());
    }

    #[test]
    fn validation() {
        let ok = Triggers {
            cron: Some("*/5 * * * * *".into()),
            events: vec![EventTrigger {
                address: Address::ZERO,
                event: "Posted(uint256,string)".into(),
            }],
        };
        assert!(ok.validate().is_ok());
        assert!(
            Triggers::default().validate().is_ok(),
            "no triggers: the agent stops"
        );
        for bad in [
            "Posted",
            "Posted(uint256, string)",
            "(uint256)",
            "1x()",
            "Po-sted()",
        ] {
            let t = Triggers {
                cron: None,
                events: vec![EventTrigger {
                    address: Address::ZERO,
                    event: bad.into(),
                }],
            };
            assert!(t.validate().is_err(), "{bad}");
        }
        let many = Triggers {
            cron: None,
            events: vec![ok.events[0].clone(); MAX_EVENTS + 1],
        };
        assert!(many.validate().is_err());
        assert_eq!(
            ok.events[0].topic0(),
            B256::from(pith_crypto::keccak256(b"Posted(uint256,string)"))
        );
    }

    #[test]
    fn signatures_bind_program_version_and_triggers() {
        use k256::ecdsa::SigningKey;
        let key = SigningKey::from_slice(&[7; 32]).unwrap();
        let owner = pith_crypto::keytree::address_of(&key);
        let t = Triggers {
            cron: Some("*/5 * * * * *".into()),
            events: vec![],
        };
        let digest = SignedTriggers::digest(B256::repeat_byte(1), 3, &t);
        let bytes = pith_crypto::receipt::sign_hash(&key, &digest).unwrap();
        let signed = SignedTriggers {
            program_id: B256::repeat_byte(1),
            version: 3,
            triggers: t.clone(),
            signature: format!("0x{}", hex::encode(&bytes)),
        };
        assert_eq!(signed.signer().unwrap(), owner);
        for changed in [
            SignedTriggers {
                version: 4,
                ..signed.clone()
            },
            SignedTriggers {
                program_id: B256::repeat_byte(2),
                ..signed.clone()
            },
            SignedTriggers {
                triggers: Triggers {
                    cron: Some("* * * * *".into()),
                    events: vec![],
                },
                ..signed.clone()
            },
        ] {
            assert_ne!(changed.signer().ok(), Some(owner));
        }
    }
}
