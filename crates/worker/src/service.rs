//! Running the worker: HTTP server, background loops (registration + heartbeat, usage,
//! oracle), graceful drain.
//!
//! Drain (on the shutdown token, e.g. SIGTERM): the worker stops announcing, answers every
//! new invocation with `draining` (the gateway retries those elsewhere: they were never
//! delivered to a program), waits for in-flight invocations to finish (at most
//! [`DRAIN_TIMEOUT`]), settles pending usage, then closes the listener and returns.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::WorkerError;
use crate::node::{Config, Node};

/// Longest wait for in-flight invocations during a drain.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A worker started by [`start`].
#[derive(Debug)]
pub struct Running {
    /// The node.
    pub node: Arc<Node>,
    /// The bound address.
    pub addr: SocketAddr,
    /// Ends when the worker has drained and stopped.
    pub done: tokio::task::JoinHandle<Result<(), WorkerError>>,
}

/// Build the node, bind the listener, start the loops. Cancel `shutdown` to drain and stop.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Running, WorkerError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| WorkerError::State(format!("bind {}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| WorkerError::State(e.to_string()))?;
    let mut config = config;
    config.listen = addr;
    let node = Node::new(config)?;

    let loops = CancellationToken::new();
    let tasks = vec![
        tokio::spawn(heartbeat_loop(node.clone(), loops.clone())),
        tokio::spawn(usage_loop(node.clone(), loops.clone())),
        tokio::spawn(crate::oracle::run(node.clone(), loops.clone())),
        tokio::spawn(crate::agents::run(node.clone(), loops.clone())),
    ];

    let app = crate::server::router(node.clone());
    let stop_server = CancellationToken::new();
    let server = {
        let stop = stop_server.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        })
    };
    let n = node.clone();
    let done = tokio::spawn(async move {
        shutdown.cancelled().await;
        tracing::info!(target: "pith::worker", "draining");
        n.drain();
        let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        while n.in_flight() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        loops.cancel();
        for t in tasks {
            let _ = t.await;
        }
        if let Err(e) = crate::usage::submit(&n).await {
            tracing::warn!(target: "pith::worker", "final usage batch: {e}");
        }
        if let Err(e) = n.save_marks() {
            tracing::warn!(target: "pith::worker", "saving storage marks: {e}");
        }
        stop_server.cancel();
        server
            .await
            .map_err(|e| WorkerError::State(e.to_string()))?
            .map_err(|e| WorkerError::State(e.to_string()))?;
        tracing::info!(target: "pith::worker", "stopped");
        Ok(())
    });
    Ok(Running { node, addr, done })
}

async fn heartbeat_loop(node: Arc<Node>, stop: CancellationToken) {
    loop {
        if let Err(e) = node.save_marks() {
            tracing::warn!(target: "pith::worker", "saving storage marks: {e}");
        }
        if !node.is_draining() {
            match crate::register::ensure_registered(&node).await {
                Ok(_) => {
                    if let Err(e) = crate::register::announce(&node).await {
                        tracing::warn!(target: "pith::worker", "announce: {e}");
                    }
                }
                Err(e) => {
                    node.set_registered(None, 0);
                    tracing::warn!(target: "pith::worker", "registration: {e}");
                }
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(node.config.heartbeat) => {}
        }
    }
}

async fn usage_loop(node: Arc<Node>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(node.config.usage_interval) => {}
        }
        if let Err(e) = crate::usage::submit(&node).await {
            tracing::warn!(target: "pith::worker", "usage batch: {e}");
        }
    }
}
