//! What the inference benchmarks share (`crates/infer/benches/generate.rs`,
//! `bench/inference-serving.rs`): the prompts, candle's own greedy loop as the baseline, and
//! small helpers.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use pith_infer::Model;

pub const PROMPTS: [&str; 4] = [
    "Tell me a long story about a dragon who learns to cook.",
    "Write a detailed essay about the history of the bicycle.",
    "Describe, step by step, how to bake bread at home.",
    "Explain in detail how the planets of the solar system formed.",
];

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub struct Run {
    pub ttft: Duration,
    pub total: Duration,
    pub tokens: Vec<u32>,
}

/// candle's own greedy loop on pre-tokenized input.
pub fn baseline(model: &Model, prompt: &[u32], n: usize) -> Run {
    let mut weights = model.weights();
    let mut sampler = LogitsProcessor::from_sampling(0, Sampling::ArgMax);
    let start = Instant::now();
    let input = Tensor::new(prompt, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let mut logits = weights.forward(&input, 0).unwrap();
    let mut tokens = Vec::with_capacity(n);
    let mut ttft = Duration::ZERO;
    loop {
        let next = sampler.sample(&logits.squeeze(0).unwrap()).unwrap();
        tokens.push(next);
        if tokens.len() == 1 {
            ttft = start.elapsed();
        }
        if tokens.len() == n {
            break;
        }
        let input = Tensor::new(&[next], &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        logits = weights
            .forward(&input, prompt.len() + tokens.len() - 1)
            .unwrap();
    }
    Run {
        ttft,
        total: start.elapsed(),
        tokens,
    }
}

/// Decode rate: tokens after the first, per second after the first token.
pub fn decode_rate(tokens: usize, ttft: Duration, total: Duration) -> f64 {
    tokens.saturating_sub(1) as f64 / total.saturating_sub(ttft).as_secs_f64()
}
