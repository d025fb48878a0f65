//! The event watcher: delivers the logs matching a filter once they are `confirmations`
//! blocks deep, detects reorganisations that reach below that depth (it keeps the hashes
//! and delivered logs of the last [`WatcherConfig::reorg_window`] blocks), and then
//! retracts the logs of every dropped block ([`WatchEvent::Removed`], newest first) before
//! delivering the new branch's logs. The cursor (next block, recent block hashes and logs)
//! is saved to a JSON file so a restarted watcher continues where it stopped.
//!
//! Delivery is at least once: [`EventWatcher::poll`] advances the cursor in memory and
//! [`EventWatcher::save`] persists it; a consumer that saves after handling a batch sees a
//! batch again only if it crashed between the two.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::B256;
use alloy::providers::Provider;
use alloy::rpc::types::{Filter, Log};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::manifest::write_atomic;

/// How the watcher runs. Defaults: 2 confirmations, 64-block reorg window, 2,000-block
/// `eth_getLogs` ranges, no cursor file (in memory only).
#[derive(Debug, Clone)]
pub struct WatcherConfig {
    confirmations: u64,
    reorg_window: usize,
    max_range: u64,
    cursor_file: Option<PathBuf>,
    poll_interval: Duration,
}

impl Default for WatcherConfig {
    fn default() -> Self {
        Self {
            confirmations: 2,
            reorg_window: 64,
            max_range: 2_000,
            cursor_file: None,
            poll_interval: Duration::from_secs(1),
        }
    }
}

impl WatcherConfig {
    /// The defaults above.
    pub fn new() -> Self {
        Self::default()
    }
    /// Deliver a log once its block has this many blocks on top of it counted inclusively
    /// (0: deliver at the head, 1: the head block counts as one confirmation).
    pub fn confirmations(mut self, n: u64) -> Self {
        self.confirmations = n;
        self
    }
    /// How many delivered blocks to remember for reorg detection (default 64, minimum 1).
    /// A reorg deeper than this is reported as an error instead of silently missed.
    pub fn reorg_window(mut self, n: usize) -> Self {
        self.reorg_window = n.max(1);
        self
    }
    /// Largest block range of one `eth_getLogs` request (default 2,000).
    pub fn max_range(mut self, n: u64) -> Self {
        self.max_range = n.max(1);
        self
    }
    /// Persist the cursor in this file; a watcher created with an existing file resumes.
    pub fn cursor_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.cursor_file = Some(path.into());
        self
    }
    /// Sleep between polls in [`EventWatcher::run`] (default 1 s).
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d;
        self
    }
}

/// What the watcher delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent {
    /// A log with the required confirmations, in chain order.
    Log(Log),
    /// A log delivered earlier whose block left the canonical chain; undo its effects.
    /// Delivered newest first, with `removed = true`.
    Removed(Log),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SeenBlock {
    number: u64,
    hash: B256,
    logs: Vec<Log>,
}

/// The persisted state of a watcher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// The next block to scan.
    pub next_block: u64,
    recent: VecDeque<SeenBlock>,
}

impl Cursor {
    fn load(path: &Path) -> Result<Option<Self>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::json(path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }
}

/// Watches logs matching a filter. See the module documentation.
#[derive(Debug)]
pub struct EventWatcher<P> {
    provider: P,
    filter: Filter,
    config: WatcherConfig,
    cursor: Cursor,
}

impl<P: Provider> EventWatcher<P> {
    /// A watcher for `filter` (its address and topics; its block range is ignored) starting
    /// at `from_block`, or where the cursor file says when it exists.
    pub fn new(
        provider: P,
        filter: Filter,
        from_block: u64,
        config: WatcherConfig,
    ) -> Result<Self> {
        let cursor = match &config.cursor_file {
            Some(p) => Cursor::load(p)?,
            None => None,
        }
        .unwrap_or(Cursor {
            next_block: from_block,
            recent: VecDeque::new(),
        });
        Ok(Self {
            provider,
            filter,
            config,
            cursor,
        })
    }

    /// The current cursor.
    pub fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    /// Persist the cursor (no-op without a cursor file).
    pub fn save(&self) -> Result<()> {
        if let Some(p) = &self.config.cursor_file {
            let bytes = serde_json::to_vec(&self.cursor).map_err(|e| Error::json(p, e))?;
            write_atomic(p, &bytes)?;
        }
        Ok(())
    }

    /// Check for a reorg, then deliver everything newly confirmed. Returns the events in
    /// order (retractions first).
    pub async fn poll(&mut self) -> Result<Vec<WatchEvent>> {
        let mut events = self.unwind_reorg().await?;
        let head = self.provider.get_block_number().await.map_err(Error::rpc)?;
        // A block at height h has head - h + 1 confirmations.
        let Some(target) = (head + 1).checked_sub(self.config.confirmations.max(1)) else {
            return Ok(events);
        };
        while self.cursor.next_block <= target {
            let from = self.cursor.next_block;
            let to = target.min(from.saturating_add(self.config.max_range - 1));
            match self.scan(from, to).await? {
                Some(mut evs) => events.append(&mut evs),
                // The chain moved under us (a log's block hash disagrees with the header
                // we read): stop here, the next poll detects and unwinds the reorg.
                None => break,
            }
        }
        Ok(events)
    }

    /// Poll forever, handing each non-empty batch to `handle` and saving the cursor after
    /// it returns. Returns when `handle` fails or the node errors.
    pub async fn run<F, Fut, E>(mut self, mut handle: F) -> std::result::Result<(), E>
    where
        F: FnMut(Vec<WatchEvent>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<(), E>>,
        E: From<Error>,
    {
        loop {
            let events = self.poll().await?;
            if !events.is_empty() {
                handle(events).await?;
            }
            self.save()?;
            tokio::time::sleep(self.config.poll_interval).await;
        }
    }

    async fn block_hash(&self, number: u64) -> Result<Option<B256>> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .await
            .map_err(Error::rpc)?;
        Ok(block.map(|b| b.header.hash))
    }

    /// Compare the remembered blocks with the chain; retract the logs of dropped blocks
    /// and rewind the cursor to the first dropped block.
    async fn unwind_reorg(&mut self) -> Result<Vec<WatchEvent>> {
        let mut removed = Vec::new();
        while let Some(last) = self.cursor.recent.back() {
            if self.block_hash(last.number).await? == Some(last.hash) {
                break;
            }
            let Some(dropped) = self.cursor.recent.pop_back() else {
                break;
            };
            tracing::info!(
                target: "pith_chain::watcher",
                block = dropped.number,
                hash = %dropped.hash,
                logs = dropped.logs.len(),
                "block left the canonical chain; retracting its logs"
            );
            self.cursor.next_block = dropped.number;
            for mut log in dropped.logs.into_iter().rev() {
                log.removed = true;
                removed.push(WatchEvent::Removed(log));
            }
            if self.cursor.recent.is_empty() {
                return Err(Error::State(format!(
                    "reorg deeper than the watcher's window of {} blocks (at block {})",
                    self.config.reorg_window, dropped.number
                )));
            }
        }
        Ok(removed)
    }

    /// Deliver the logs of blocks `from..=to`. Returns `None` when the chain changed during
    /// the scan (nothing is committed then).
    async fn scan(&mut self, from: u64, to: u64) -> Result<Option<Vec<WatchEvent>>> {
        let filter = self.filter.clone().from_block(from).to_block(to);
        let logs = self.provider.get_logs(&filter).await.map_err(Error::rpc)?;
        // Remember the hashes of the blocks that fall in the reorg window.
        let window_start = to
            .saturating_sub(self.config.reorg_window as u64 - 1)
            .max(from);
        let mut seen = Vec::new();
        for n in window_start..=to {
            let Some(hash) = self.block_hash(n).await? else {
                return Ok(None);
            };
            seen.push(SeenBlock {
                number: n,
                hash,
                logs: Vec::new(),
            });
        }
        for log in &logs {
            let (Some(n), Some(h)) = (log.block_number, log.block_hash) else {
                return Err(Error::Rpc("eth_getLogs returned a pending log".into()));
            };
            if let Some(b) = seen.iter_mut().find(|b| b.number == n) {
                if b.hash != h {
                    return Ok(None);
                }
                b.logs.push(log.clone());
            }
        }
        // The new blocks must extend the remembered ones.
        if let (Some(first), Some(prev)) = (seen.first(), self.cursor.recent.back()) {
            if first.number == prev.number + 1 {
                let parent = self
                    .provider
                    .get_block_by_number(BlockNumberOrTag::Number(first.number))
                    .await
                    .map_err(Error::rpc)?
                    .map(|b| b.header.parent_hash);
                if parent != Some(prev.hash) {
                    return Ok(None);
                }
            }
        }
        self.cursor.recent.extend(seen);
        while self.cursor.recent.len() > self.config.reorg_window {
            self.cursor.recent.pop_front();
        }
        self.cursor.next_block = to + 1;
        Ok(Some(logs.into_iter().map(WatchEvent::Log).collect()))
    }
}
