//! `env.ai.chat`: the request the host's model receives, the reply the program sees, the
//! token budget (`ai_tokens`, `ai_limit` even when caught), usage figures and bad input.
//!
//! The provider here is a host implementation of the trait that answers by rule (the
//! worker wires the real model, tested in pith-worker); it records what it was asked.

mod common;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::*;
use pith_sandbox::host::{
    AiChatReply, AiChatRequest, AiProvider, BoxFuture, HostError, ProgramRef,
};
use pith_sandbox::{ErrorKind, Host, Request};

/// Answers with the last user message reversed, generating one token per character up to
/// `max_tokens`; remembers every request and deadline.
#[derive(Default)]
struct RuleModel {
    seen: Mutex<Vec<(AiChatRequest, Instant)>>,
}

impl AiProvider for RuleModel {
    fn chat<'a>(
        &'a self,
        _program: &'a ProgramRef,
        request: AiChatRequest,
        deadline: Instant,
    ) -> BoxFuture<'a, Result<AiChatReply, HostError>> {
        Box::pin(async move {
            self.seen.lock().unwrap().push((request.clone(), deadline));
            if request.model.as_deref().is_some_and(|m| m != "rule-model") {
                return Err(HostError::Invalid(format!(
                    "this host serves rule-model, not {:?}",
                    request.model
                )));
            }
            let last = request
                .messages
                .iter()
                .rev()
                .find(|m| m.role == "user")
                .map(|m| m.content.clone())
                .unwrap_or_default();
            let full: String = last.chars().rev().collect();
            let n = full.chars().count().min(request.max_tokens as usize);
            let content: String = full.chars().take(n).collect();
            let prompt: usize = request
                .messages
                .iter()
                .map(|m| m.content.chars().count() + 4)
                .sum();
            Ok(AiChatReply {
                finish_reason: if n < full.chars().count() {
                    "length"
                } else {
                    "stop"
                }
                .to_owned(),
                content,
                prompt_tokens: u32::try_from(prompt).unwrap(),
                completion_tokens: u32::try_from(n).unwrap(),
                model: "rule-model".to_owned(),
                model_hash: [7u8; 32],
            })
        })
    }
}

fn run_ai(
    src: &str,
    limits: impl FnOnce(&mut pith_sandbox::Limits),
) -> (pith_sandbox::Outcome, Arc<RuleModel>) {
    let model = Arc::new(RuleModel::default());
    let mut host = Host::local(b"ai-test".to_vec());
    host.ai = model.clone();
    let mut p = program(src);
    limits(&mut p.limits);
    (
        run_with_host(p, Request::get("http://localhost/"), host),
        model,
    )
}

#[test]
fn chat_reaches_the_host_model_and_returns_its_reply() {
    let (o, model) = run_ai(
        &json_handler(
            "return await env.ai.chat({ messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'olleh' }], max_tokens: 50, temperature: 0.5, seed: 9, stop: ['\\n'] });",
        ),
        |_| {},
    );
    let v: serde_json::Value = serde_json::from_str(&body(&o)).unwrap();
    assert_eq!(
        v["message"],
        serde_json::json!({"role": "assistant", "content": "hello"})
    );
    assert_eq!(v["finish_reason"], "stop");
    assert_eq!(
        v["usage"],
        serde_json::json!({"prompt_tokens": 21, "completion_tokens": 5, "total_tokens": 26})
    );
    assert_eq!(v["model"], "rule-model");
    assert_eq!(v["model_hash"], format!("0x{}", "07".repeat(32)));
    assert_eq!(
        (o.usage.ai_prompt_tokens, o.usage.ai_completion_tokens),
        (21, 5)
    );
    let seen = model.seen.lock().unwrap();
    let (req, deadline) = &seen[0];
    assert_eq!(
        (req.max_tokens, req.temperature, req.seed, req.stop.clone()),
        (50, 0.5, Some(9), vec!["\n".to_owned()])
    );
    assert_eq!(req.messages.len(), 2);
    // The deadline is the invocation's wall-time limit (30 s by default), not later.
    assert!(
        deadline.saturating_duration_since(Instant::now()) <= std::time::Duration::from_secs(30)
    );
}

#[test]
fn the_token_budget_counts_what_was_generated_and_ends_the_invocation_when_exceeded() {
    // 60 reserved but 5 generated: the second call's 90 still fits in 100.
    let (o, _) = run_ai(
        &json_handler(
            "const a = await env.ai.chat({ messages: [{ role: 'user', content: 'abcde' }], max_tokens: 60 }); \
             const b = await env.ai.chat({ messages: [{ role: 'user', content: 'xyz' }], max_tokens: 90 }); \
             return [a.message.content, b.message.content];",
        ),
        |l| l.ai_tokens = 100,
    );
    assert_eq!(body(&o), r#"["edcba","zyx"]"#);
    assert_eq!(o.usage.ai_completion_tokens, 8);
    // Asking for more than is left ends the invocation with ai_limit, even when caught.
    let (o, model) = run_ai(
        &json_handler(
            "try { await env.ai.chat({ messages: [{ role: 'user', content: 'x' }], max_tokens: 101 }); } catch (e) {} return 'went on';",
        ),
        |l| l.ai_tokens = 100,
    );
    assert_eq!(kind(&o), ErrorKind::AiLimit, "{o:?}");
    assert!(
        model.seen.lock().unwrap().is_empty(),
        "the model was called over budget"
    );
    // Calls in flight reserve their max_tokens: two concurrent 60s do not fit in 100.
    let (o, _) = run_ai(
        &json_handler(
            "const m = [{ role: 'user', content: 'x' }]; return await Promise.all([env.ai.chat({ messages: m, max_tokens: 60 }), env.ai.chat({ messages: m, max_tokens: 60 })]);",
        ),
        |l| l.ai_tokens = 100,
    );
    assert_eq!(kind(&o), ErrorKind::AiLimit, "{o:?}");
    // max_tokens omitted: the default (256) is capped by what is left; generation stops there.
    let (o, model) = run_ai(
        &json_handler(
            "return (await env.ai.chat({ messages: [{ role: 'user', content: 'abcdefghij' }] })).finish_reason;",
        ),
        |l| l.ai_tokens = 4,
    );
    assert_eq!(body(&o), r#""length""#);
    assert_eq!(model.seen.lock().unwrap()[0].0.max_tokens, 4);
    assert_eq!(o.usage.ai_completion_tokens, 4);
}

#[test]
fn bad_requests_are_type_errors_and_host_refusals_are_errors() {
    for req in [
        "{}",
        "{ messages: [] }",
        "{ messages: [{ role: 'robot', content: 'x' }] }",
        "{ messages: [{ role: 'user', content: 7 }] }",
        "{ messages: [{ role: 'user', content: 'x' }], max_tokens: 0 }",
        "{ messages: [{ role: 'user', content: 'x' }], temperature: -1 }",
        "{ messages: [{ role: 'user', content: 'x' }], functions: [] }",
        "'just a string'",
        "undefined",
    ] {
        let (o, model) = run_ai(
            &json_handler(&format!(
                "try {{ await env.ai.chat({req}); return 'accepted'; }} catch (e) {{ return e.name; }}"
            )),
            |_| {},
        );
        assert_eq!(body(&o), r#""TypeError""#, "{req}");
        assert!(
            model.seen.lock().unwrap().is_empty(),
            "{req} reached the model"
        );
    }
    // Uncaught: a program error, not a limit.
    let (o, _) = run_ai(
        &json_handler("return await env.ai.chat({ messages: [] });"),
        |_| {},
    );
    assert_eq!(kind(&o), ErrorKind::ProgramError);
    // The host refuses another model by name.
    let (o, _) = run_ai(
        &json_handler(
            "try { await env.ai.chat({ model: 'gpt-9', messages: [{ role: 'user', content: 'x' }] }); } catch (e) { return e.message; }",
        ),
        |_| {},
    );
    assert!(body(&o).contains("not Some(\\\"gpt-9\\\")"), "{}", body(&o));
}

#[test]
fn without_a_model_env_ai_is_unavailable() {
    let o = run(&json_handler(
        "try { await env.ai.chat({ messages: [{ role: 'user', content: 'x' }] }); } catch (e) { return e.message; }",
    ));
    assert_eq!(body(&o), r#""env.ai is not available in this host""#);
    assert_eq!(o.usage.ai_completion_tokens, 0);
}

#[test]
fn env_ai_cannot_be_replaced() {
    let o = run(&json_handler(
        "'use strict'; let r = []; try { env.ai.chat = () => 1; } catch (e) { r.push(e.name); } try { env.ai = {}; } catch (e) { r.push(e.name); } return r;",
    ));
    assert_eq!(body(&o), r#"["TypeError","TypeError"]"#);
}
