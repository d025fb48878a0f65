//! pith-infer generation speed against candle's own loop on the same model, in the same run.
//!
//!     scripts/install.d/model
//!     cargo bench -p pith-infer --bench generate            # ROUNDS=5 TOKENS=128 by default
//!
//! Baseline: a greedy loop written directly against candle's quantized llama `ModelWeights`
//! (`forward` on the pre-tokenized prompt, then one token at a time, argmax through candle's
//! `LogitsProcessor`), i.e. candle's generation example without printing. Measured: the same
//! greedy completion through `Engine::chat` (template rendering, tokenization, UTF-8
//! streaming to a callback, limit checks, usage). Runs alternate between the two, medians are
//! compared. Also: time to first token, aggregate tokens/s with 4 concurrent chats against the
//! same 4 chats one after the other, and the resident memory a slot's KV cache takes.

use std::ops::ControlFlow;
use std::time::Instant;

use candle_core::{Device, Tensor};
use pith_infer::{
    ChatMessage, ChatRequest, Control, Engine, EngineConfig, FinishReason, Model, Role,
};

mod common;
use common::{PROMPTS, Run, baseline, env_usize, median};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

fn request(prompt: &str, n: usize) -> ChatRequest {
    let mut r = ChatRequest::new(vec![ChatMessage::new(Role::User, prompt)]);
    r.temperature = Some(0.0);
    r.max_tokens = Some(n as u32);
    r
}

/// The same completion through the engine; time to first token is the first delta.
fn engine_run(engine: &Engine, prompt: &str, n: usize) -> (Run, FinishReason) {
    let start = Instant::now();
    let mut ttft = None;
    let done = engine
        .chat(&request(prompt, n), &Control::new(), |_| {
            ttft.get_or_insert_with(|| start.elapsed());
            ControlFlow::Continue(())
        })
        .unwrap();
    let total = start.elapsed();
    (
        Run {
            ttft: ttft.unwrap_or(total),
            total,
            tokens: done.tokens,
        },
        done.finish_reason,
    )
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken from the command line.
    let path = pith_infer::installed::default_model_path();
    if !path.is_file() {
        eprintln!(
            "model {} not found: run scripts/install.d/model",
            path.display()
        );
        std::process::exit(1);
    }
    let rounds = env_usize("ROUNDS", 5);
    let n = env_usize("TOKENS", 128);
    let rss_before_load = rss_bytes();
    let engine = Engine::new(Model::load(&path).unwrap(), EngineConfig::default());
    let model = engine.model();
    let rss_loaded = rss_bytes();
    println!(
        "model {} ({} bytes on disk), sha256 {}; {} rayon threads; {rounds} rounds of {n} tokens",
        model.id(),
        std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
        hex::encode(model.hash()),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );

    // Warm-up, and the exact prompt/token count both sides run.
    let prompt_ids = model
        .prompt_tokens(&[ChatMessage::new(Role::User, PROMPTS[0])])
        .unwrap();
    let (warm, finish) = engine_run(&engine, PROMPTS[0], n);
    let k = warm.tokens.len();
    let base_warm = baseline(model, &prompt_ids, k);
    assert_eq!(
        base_warm.tokens, warm.tokens,
        "engine and baseline disagree on greedy tokens"
    );
    println!(
        "prompt {} tokens, completion {k} tokens ({finish:?})",
        prompt_ids.len()
    );

    let (mut b_tps, mut e_tps, mut b_ttft, mut e_ttft) = (vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        let mut one = |engine_first: bool| {
            if engine_first {
                let (r, _) = engine_run(&engine, PROMPTS[0], n);
                e_tps.push(k as f64 / r.total.as_secs_f64());
                e_ttft.push(r.ttft.as_secs_f64() * 1e3);
            } else {
                let r = baseline(model, &prompt_ids, k);
                b_tps.push(k as f64 / r.total.as_secs_f64());
                b_ttft.push(r.ttft.as_secs_f64() * 1e3);
            }
        };
        one(round % 2 == 0);
        one(round % 2 != 0);
    }
    let (bt, et) = (median(b_tps), median(e_tps));
    let (bf, ef) = (median(b_ttft), median(e_ttft));
    println!();
    println!("| measure | candle loop (baseline) | Engine::chat | ratio engine/baseline |");
    println!("|---|---:|---:|---:|");
    println!(
        "| tokens/s, one chat ({k} tokens, prefill included) | {bt:.1} | {et:.1} | {:.3} (overhead {:+.1}%) |",
        et / bt,
        (bt / et - 1.0) * 100.0
    );
    println!(
        "| time to first token, ms ({} prompt tokens) | {bf:.1} | {ef:.1} | {:.3} |",
        prompt_ids.len(),
        ef / bf
    );

    // Four chats at once vs the same four one after the other, on the engine.
    let seq_start = Instant::now();
    let seq_tokens: usize = PROMPTS
        .iter()
        .map(|p| engine_run(&engine, p, n).0.tokens.len())
        .sum();
    let seq = seq_start.elapsed().as_secs_f64();
    let conc_start = Instant::now();
    let conc_tokens: usize = std::thread::scope(|s| {
        let hs: Vec<_> = PROMPTS
            .iter()
            .map(|p| {
                let e = engine.clone();
                s.spawn(move || engine_run(&e, p, n).0.tokens.len())
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let conc = conc_start.elapsed().as_secs_f64();
    println!(
        "| aggregate tokens/s, 4 chats ({seq_tokens} tokens): one after the other vs 4 concurrent | {:.1} | {:.1} | {:.3} |",
        seq_tokens as f64 / seq,
        conc_tokens as f64 / conc,
        (conc_tokens as f64 / conc) / (seq_tokens as f64 / seq)
    );

    // Memory: weights once, then what each slot (a clone of the weights) adds with a
    // 512-token KV cache.
    let before = rss_bytes();
    let mut slots: Vec<_> = (0..4).map(|_| model.weights()).collect();
    let cloned = rss_bytes();
    let long: Vec<u32> = prompt_ids.iter().copied().cycle().take(512).collect();
    for w in &mut slots {
        let input = Tensor::new(long.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        w.forward(&input, 0).unwrap();
    }
    let filled = rss_bytes();
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    // 30 layers x (K and V) x 3 KV heads x 64 dims x f32 per token.
    let kv_per_token = 30 * 2 * 3 * 64 * 4;
    println!();
    println!(
        "memory: RSS {:.1} MiB before load, {:.1} MiB loaded (+{:.1} MiB weights)",
        mib(rss_before_load),
        mib(rss_loaded),
        mib(rss_loaded.saturating_sub(rss_before_load))
    );
    println!(
        "memory: 4 slots cloned +{:.2} MiB in all; after a 512-token prompt in each: +{:.1} MiB per slot (KV cache computed: {:.1} MiB = {} KiB/token)",
        mib(cloned.saturating_sub(before)),
        mib(filled.saturating_sub(cloned)) / 4.0,
        mib(kv_per_token * 512),
        kv_per_token / 1024
    );
    drop(slots);
}
