//! Resource limits, usage figures and the typed outcome of an invocation.

use serde::{Deserialize, Serialize};

/// Every resource a program can consume, with its ceiling. One struct for everything
/// (STYLE habit 9): the CLI's `--limit NAME=VALUE` names are the field names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Heap of the JavaScript runtime in MiB (counted by our allocator, including the
    /// engine's own structures and the Web API prelude, about 1 MiB). Default 64.
    pub memory_mb: u64,
    /// Native stack the engine may use for JavaScript frames, in KiB. Default 512.
    pub stack_kb: u64,
    /// CPU time of the instance thread (JavaScript and host callbacks, not waiting), in ms (checked by the
    /// engine's interrupt handler every 10,000 operations). Default 1,000.
    pub cpu_ms: u64,
    /// Wall-clock time of one invocation including waiting on I/O and timers, in ms.
    /// Default 30,000.
    pub wall_ms: u64,
    /// Outgoing HTTP requests per invocation (each redirect hop counts). Default 50.
    pub egress_requests: u64,
    /// Bytes sent plus received by outgoing HTTP per invocation. Default 10 MiB.
    pub egress_bytes: u64,
    /// Size of the response body. Default 10 MiB.
    pub output_bytes: u64,
    /// Bytes of console output kept per invocation. Default 64 KiB.
    pub log_bytes: u64,
    /// Key-value operations per invocation. Default 1,000.
    pub kv_ops: u64,
    /// Tokens the host's model may generate for one invocation's `env.ai.chat` calls
    /// (completion tokens; a call reserves its `max_tokens`). Default 1,024. Inference
    /// time is bounded by `wall_ms`.
    pub ai_tokens: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mb: 64,
            stack_kb: 512,
            cpu_ms: 1_000,
            wall_ms: 30_000,
            egress_requests: 50,
            egress_bytes: 10 * 1024 * 1024,
            output_bytes: 10 * 1024 * 1024,
            log_bytes: 64 * 1024,
            kv_ops: 1_000,
            ai_tokens: 1_024,
        }
    }
}

/// The names accepted by [`Limits::set`], in the order of the struct.
pub const LIMIT_NAMES: [&str; 10] = [
    "memory_mb",
    "stack_kb",
    "cpu_ms",
    "wall_ms",
    "egress_requests",
    "egress_bytes",
    "output_bytes",
    "log_bytes",
    "kv_ops",
    "ai_tokens",
];

/// An unknown limit name or a value that is not a positive integer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LimitParseError {
    /// The name is not one of [`LIMIT_NAMES`].
    #[error("unknown limit `{0}` (known: {known})", known = LIMIT_NAMES.join(", "))]
    UnknownName(String),
    /// The value is not an integer greater than zero.
    #[error("limit `{0}` needs a positive integer, got `{1}`")]
    BadValue(String, String),
}

impl Limits {
    /// Set one limit by its name.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), LimitParseError> {
        let v: u64 = value
            .trim()
            .parse()
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| LimitParseError::BadValue(name.to_owned(), value.to_owned()))?;
        let slot = match name {
            "memory_mb" => &mut self.memory_mb,
            "stack_kb" => &mut self.stack_kb,
            "cpu_ms" => &mut self.cpu_ms,
            "wall_ms" => &mut self.wall_ms,
            "egress_requests" => &mut self.egress_requests,
            "egress_bytes" => &mut self.egress_bytes,
            "output_bytes" => &mut self.output_bytes,
            "log_bytes" => &mut self.log_bytes,
            "kv_ops" => &mut self.kv_ops,
            "ai_tokens" => &mut self.ai_tokens,
            _ => return Err(LimitParseError::UnknownName(name.to_owned())),
        };
        *slot = v;
        Ok(())
    }

    /// Parse `NAME=VALUE`.
    pub fn set_pair(&mut self, pair: &str) -> Result<(), LimitParseError> {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| LimitParseError::BadValue(pair.to_owned(), String::new()))?;
        self.set(name.trim(), value)
    }

    /// Memory limit in bytes.
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
    }

    /// Stack limit in bytes.
    pub fn stack_bytes(&self) -> usize {
        usize::try_from(self.stack_kb.saturating_mul(1024)).unwrap_or(usize::MAX)
    }
}

/// What an invocation consumed. Always reported, also when it failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Time spent running JavaScript and host callbacks (not waiting), in ms.
    pub cpu_ms: u64,
    /// Wall-clock duration of the invocation, in ms.
    pub wall_ms: u64,
    /// `cpu_ms` in microseconds (what receipts and billing count: most requests take
    /// well under a millisecond).
    pub cpu_us: u64,
    /// `wall_ms` in microseconds.
    pub wall_us: u64,
    /// Peak bytes held by the JavaScript heap during the invocation.
    pub memory_bytes: u64,
    /// Outgoing HTTP requests made (each redirect hop counts), including refused ones.
    pub egress_requests: u64,
    /// Bytes sent plus received by outgoing HTTP.
    pub egress_bytes: u64,
    /// Bytes of console output accepted.
    pub log_bytes: u64,
    /// Key-value operations performed.
    pub kv_ops: u64,
    /// Prompt tokens the host's model read for `env.ai.chat`.
    pub ai_prompt_tokens: u64,
    /// Tokens the host's model generated for `env.ai.chat`.
    pub ai_completion_tokens: u64,
}

impl Usage {
    /// Usage with the time fields (`cpu_ms`, `wall_ms`, `cpu_us`, `wall_us`) of `cpu` and
    /// `wall`, and everything else zero: the one place the millisecond and microsecond
    /// figures are derived, so they always agree.
    pub fn timed(cpu: std::time::Duration, wall: std::time::Duration) -> Self {
        let sat = |n: u128| u64::try_from(n).unwrap_or(u64::MAX);
        Self {
            cpu_ms: sat(cpu.as_millis()),
            wall_ms: sat(wall.as_millis()),
            cpu_us: sat(cpu.as_micros()),
            wall_us: sat(wall.as_micros()),
            ..Self::default()
        }
    }
}

/// Why an invocation failed. The serialized names are part of the CLI contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The CPU budget (`cpu_ms`) ran out.
    CpuLimit,
    /// The heap reached `memory_mb`.
    MemoryLimit,
    /// The JavaScript stack reached `stack_kb`.
    StackLimit,
    /// The invocation took longer than `wall_ms`.
    WallTimeLimit,
    /// The response body exceeded `output_bytes`.
    OutputLimit,
    /// Console output exceeded `log_bytes`.
    LogLimit,
    /// An outgoing request was refused by the egress policy and not handled.
    EgressDenied,
    /// `egress_requests` or `egress_bytes` ran out.
    EgressLimit,
    /// `kv_ops` ran out.
    KvLimit,
    /// An `env.ai.chat` call asked for more tokens than `ai_tokens` leaves.
    AiLimit,
    /// An uncaught exception, or the handler did not return a Response.
    ProgramError,
    /// The program does not compile or does not export a `fetch` handler.
    InvalidProgram,
}

impl ErrorKind {
    /// The wire name (`cpu_limit`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CpuLimit => "cpu_limit",
            Self::MemoryLimit => "memory_limit",
            Self::StackLimit => "stack_limit",
            Self::WallTimeLimit => "wall_time_limit",
            Self::OutputLimit => "output_limit",
            Self::LogLimit => "log_limit",
            Self::EgressDenied => "egress_denied",
            Self::EgressLimit => "egress_limit",
            Self::KvLimit => "kv_limit",
            Self::AiLimit => "ai_limit",
            Self::ProgramError => "program_error",
            Self::InvalidProgram => "invalid_program",
        }
    }

    /// True for the kinds that mean "a limit was hit": these end the invocation even when
    /// the program catches the exception the engine raised.
    pub fn is_limit(self) -> bool {
        matches!(
            self,
            Self::CpuLimit
                | Self::MemoryLimit
                | Self::StackLimit
                | Self::WallTimeLimit
                | Self::OutputLimit
                | Self::LogLimit
                | Self::EgressLimit
                | Self::KvLimit
                | Self::AiLimit
        )
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed invocation: the kind and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct InvocationError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Details (the exception message and stack for program errors).
    pub message: String,
}

impl InvocationError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_by_name() {
        let mut l = Limits::default();
        l.set_pair("cpu_ms=5").unwrap();
        assert_eq!(l.cpu_ms, 5);
        assert_eq!(
            l.set_pair("nope=1"),
            Err(LimitParseError::UnknownName("nope".into()))
        );
        assert!(l.set_pair("cpu_ms=0").is_err());
        assert!(l.set_pair("cpu_ms=x").is_err());
        assert!(l.set_pair("cpu_ms").is_err());
        for n in LIMIT_NAMES {
            l.set(n, "7").unwrap();
        }
        assert_eq!(l.kv_ops, 7);
    }
}
