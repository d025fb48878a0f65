//! The host primitives behind the prelude's `__pith_host` object: the synchronous
//! operations (bytes, URL, crypto digests, console, timers) and the asynchronous ones
//! started through `start_op` (fetch, kv, keys, chain, attestation), completed by the
//! instance's event loop.

use super::*;
use crate::host::{AI_MAX_MESSAGES, AI_MAX_PROMPT_BYTES, AiChatRequest, AiMessage};

// ------------------------------------------------------------------------- host primitives

pub(super) fn throw_type(ctx: &Ctx<'_>, m: &str) -> rquickjs::Error {
    rquickjs::Exception::throw_type(ctx, m)
}

pub(super) fn host_object<'js>(ctx: &Ctx<'js>, st: &Rc<State>) -> rquickjs::Result<Object<'js>> {
    let h = Object::new(ctx.clone())?;
    {
        let st = st.clone();
        h.set(
            "log",
            Func::from(
                move |ctx: Ctx<'js>, level: String, msg: String| -> rquickjs::Result<()> {
                    let limit = st.limits.get().log_bytes;
                    let n = st.log_bytes.get().saturating_add(msg.len() as u64);
                    if n > limit {
                        st.kill(
                            ErrorKind::LogLimit,
                            format!("log limit of {limit} bytes exceeded"),
                        );
                        return Err(rquickjs::Exception::throw_internal(
                            &ctx,
                            "log limit exceeded",
                        ));
                    }
                    st.log_bytes.set(n);
                    st.logs.borrow_mut().push(LogLine {
                        level,
                        message: msg,
                    });
                    Ok(())
                },
            ),
        )?;
    }
    {
        let st = st.clone();
        h.set(
            "start",
            Func::from(
                move |ctx: Ctx<'js>, name: String, arg: Value<'js>| -> rquickjs::Result<f64> {
                    start_op(&ctx, &st, &name, arg).map(|id| id as f64)
                },
            ),
        )?;
    }
    {
        let st = st.clone();
        h.set(
            "clearTimer",
            Func::from(move |id: f64| {
                let id = id as u64;
                if let Some(at) = st.timer_at.borrow_mut().remove(&id) {
                    st.timers.borrow_mut().remove(&(at, id));
                }
            }),
        )?;
    }
    {
        let st = st.clone();
        h.set(
            "randomBytes",
            Func::from(
                move |ctx: Ctx<'js>, n: usize| -> rquickjs::Result<TypedArray<'js, u8>> {
                    let mut b = vec![0u8; n.min(65536)];
                    st.host.random.fill(&mut b);
                    TypedArray::new(ctx, b)
                },
            ),
        )?;
    }
    {
        let st = st.clone();
        h.set("now", Func::from(move || st.host.clock.now_ms()))?;
    }
    h.set(
        "digest",
        Func::from(
            |ctx: Ctx<'js>,
             alg: String,
             data: Value<'js>|
             -> rquickjs::Result<rquickjs::ArrayBuffer<'js>> {
                use sha2::Digest as _;
                let b =
                    bytes_of(&data).ok_or_else(|| throw_type(&ctx, "digest: expected bytes"))?;
                let d: Vec<u8> = match alg.as_str() {
                    "SHA-1" => sha1_digest(&b).to_vec(),
                    "SHA-256" => sha2::Sha256::digest(&b).to_vec(),
                    "SHA-384" => sha2::Sha384::digest(&b).to_vec(),
                    "SHA-512" => sha2::Sha512::digest(&b).to_vec(),
                    _ => return Err(throw_type(&ctx, "unsupported digest")),
                };
                rquickjs::ArrayBuffer::new(ctx, d)
            },
        ),
    )?;
    h.set(
        "utf8Encode",
        Func::from(
            |ctx: Ctx<'js>, s: rquickjs::String<'js>| -> rquickjs::Result<TypedArray<'js, u8>> {
                // Lone surrogates become U+FFFD (what TextEncoder does).
                let s = s.to_string().unwrap_or_default();
                TypedArray::new(ctx, s.into_bytes())
            },
        ),
    )?;
    h.set(
        "utf8Decode",
        Func::from(
            |ctx: Ctx<'js>,
             data: Value<'js>,
             fatal: bool,
             ignore_bom: bool|
             -> rquickjs::Result<Value<'js>> {
                let b =
                    bytes_of(&data).ok_or_else(|| throw_type(&ctx, "decode: expected bytes"))?;
                let b = if !ignore_bom && b.starts_with(&[0xEF, 0xBB, 0xBF]) {
                    &b[3..]
                } else {
                    &b[..]
                };
                let s = if fatal {
                    match std::str::from_utf8(b) {
                        Ok(s) => std::borrow::Cow::Borrowed(s),
                        Err(_) => return Ok(Value::new_null(ctx)),
                    }
                } else {
                    String::from_utf8_lossy(b)
                };
                Ok(rquickjs::String::from_str(ctx, &s)?.into_value())
            },
        ),
    )?;
    h.set(
        "atob",
        Func::from(|ctx: Ctx<'js>, s: String| -> rquickjs::Result<Value<'js>> {
            match crate::bytes::forgiving_base64_decode(&s) {
                Some(b) => {
                    let latin1: String = b.iter().map(|&c| char::from(c)).collect();
                    Ok(rquickjs::String::from_str(ctx, &latin1)?.into_value())
                }
                None => Ok(Value::new_null(ctx)),
            }
        }),
    )?;
    h.set(
        "btoa",
        Func::from(|ctx: Ctx<'js>, s: String| -> rquickjs::Result<Value<'js>> {
            let mut bytes = Vec::with_capacity(s.len());
            for c in s.chars() {
                match u8::try_from(u32::from(c)) {
                    Ok(b) => bytes.push(b),
                    Err(_) => return Ok(Value::new_null(ctx)),
                }
            }
            use base64::Engine as _;
            let e = base64::engine::general_purpose::STANDARD.encode(bytes);
            Ok(rquickjs::String::from_str(ctx, &e)?.into_value())
        }),
    )?;
    h.set(
        "urlParse",
        Func::from(
            |ctx: Ctx<'js>, input: String, base: Opt<String>| -> rquickjs::Result<Value<'js>> {
                let parsed = match base.0 {
                    Some(b) => url::Url::parse(&b).and_then(|b| b.join(&input)),
                    None => url::Url::parse(&input),
                };
                match parsed {
                    Ok(u) => url_components(&ctx, &u),
                    Err(_) => Ok(Value::new_null(ctx)),
                }
            },
        ),
    )?;
    h.set(
        "urlSet",
        Func::from(
            |ctx: Ctx<'js>,
             href: String,
             part: String,
             value: String|
             -> rquickjs::Result<Value<'js>> {
                let Ok(mut u) = url::Url::parse(&href) else {
                    return Ok(Value::new_null(ctx));
                };
                let ok = match part.as_str() {
                    "href" => match url::Url::parse(&value) {
                        Ok(n) => {
                            u = n;
                            true
                        }
                        Err(_) => false,
                    },
                    "protocol" => u.set_scheme(value.trim_end_matches(':')).is_ok(),
                    "username" => u.set_username(&value).is_ok(),
                    "password" => u.set_password(Some(&value)).is_ok(),
                    "host" => url::quirks::set_host(&mut u, &value).is_ok(),
                    "hostname" => url::quirks::set_hostname(&mut u, &value).is_ok(),
                    "port" => url::quirks::set_port(&mut u, &value).is_ok(),
                    "pathname" => {
                        url::quirks::set_pathname(&mut u, &value);
                        true
                    }
                    "search" => {
                        url::quirks::set_search(&mut u, &value);
                        true
                    }
                    "hash" => {
                        url::quirks::set_hash(&mut u, &value);
                        true
                    }
                    _ => false,
                };
                if ok {
                    url_components(&ctx, &u)
                } else {
                    Ok(Value::new_null(ctx))
                }
            },
        ),
    )?;
    Ok(h)
}

pub(super) fn url_components<'js>(ctx: &Ctx<'js>, u: &url::Url) -> rquickjs::Result<Value<'js>> {
    use url::quirks as q;
    let parts = [
        q::href(u),
        q::protocol(u),
        q::username(u),
        q::password(u),
        q::host(u),
        q::hostname(u),
        q::port(u),
        q::pathname(u),
        q::search(u),
        q::hash(u),
    ];
    let a = Array::new(ctx.clone())?;
    for (i, p) in parts.iter().enumerate() {
        a.set(i, *p)?;
    }
    a.set(10, q::origin(u))?;
    Ok(a.into_value())
}

pub(super) fn sha1_digest(b: &[u8]) -> [u8; 20] {
    crate::bytes::sha1(b)
}

pub(super) fn arg_list<'js>(v: &Value<'js>) -> Option<Array<'js>> {
    v.as_array().cloned()
}

pub(super) fn start_op<'js>(
    ctx: &Ctx<'js>,
    st: &Rc<State>,
    name: &str,
    arg: Value<'js>,
) -> rquickjs::Result<u64> {
    let bad = |m: &str| throw_type(ctx, m);
    // Every kv operation counts against the kv_ops limit before anything else.
    if matches!(name, "kv_get" | "kv_delete" | "kv_put" | "kv_list") && st.count_kv().is_err() {
        return Err(rquickjs::Exception::throw_internal(
            ctx,
            "kv limit exceeded",
        ));
    }
    match name {
        "timer" => {
            let a = arg_list(&arg).ok_or_else(|| bad("timer"))?;
            let ms: f64 = a.get(0)?;
            let reuse: f64 = a.get(1)?;
            let id = if reuse > 0.0 {
                reuse as u64
            } else {
                st.new_id()
            };
            let at = Instant::now() + Duration::from_secs_f64((ms.max(0.0) / 1000.0).min(1.0e7));
            st.timers.borrow_mut().insert((at, id));
            st.timer_at.borrow_mut().insert(id, at);
            Ok(id)
        }
        "fetch" => {
            let a = arg_list(&arg).ok_or_else(|| bad("fetch"))?;
            let method: String = a.get(0)?;
            let url: String = a.get(1)?;
            let headers: Vec<Vec<String>> = a.get(2)?;
            let body_v: Value<'js> = a.get(3)?;
            let redirect: String = a.get(4)?;
            let body = if body_v.is_null() {
                Vec::new()
            } else {
                bytes_of(&body_v).ok_or_else(|| bad("fetch body"))?
            };
            let limits = st.limits.get();
            let used = st.egress_requests.get() + st.fetch_inflight.get();
            if used >= limits.egress_requests {
                st.kill(
                    ErrorKind::EgressLimit,
                    format!(
                        "egress request limit of {} exceeded",
                        limits.egress_requests
                    ),
                );
                return Err(rquickjs::Exception::throw_internal(
                    ctx,
                    "egress limit exceeded",
                ));
            }
            if redirect == "error" {
                return Err(bad("fetch: redirect mode \"error\" is not supported"));
            }
            st.fetch_inflight.set(st.fetch_inflight.get() + 1);
            let budget = EgressBudget {
                requests: limits.egress_requests - used,
                bytes: limits.egress_bytes.saturating_sub(st.egress_bytes.get()),
            };
            let req = HttpRequest {
                method,
                url,
                headers: headers
                    .into_iter()
                    .filter_map(|mut kv| {
                        let v = kv.pop()?;
                        let k = kv.pop()?;
                        Some((k, v))
                    })
                    .collect(),
                body,
                follow_redirects: redirect != "manual",
            };
            let egress = st.host.egress.clone();
            let policy = st.egress_policy.clone();
            let id = st.new_id();
            st.spawn(id, async move {
                match egress.fetch(&policy, req, budget).await {
                    Ok(r) => {
                        let acct = (r.requests, r.bytes, false);
                        Completion {
                            id: 0,
                            result: Ok(Done::Http(r)),
                            egress: Some(acct),
                            ai: None,
                        }
                    }
                    Err(EgressError::Denied {
                        message,
                        requests,
                        bytes,
                    }) => Completion {
                        id: 0,
                        result: Err(JsErr {
                            name: "EgressDenied".into(),
                            message,
                        }),
                        egress: Some((requests, bytes, true)),
                        ai: None,
                    },
                    Err(EgressError::Limit(m)) => Completion {
                        id: 0,
                        result: Err(JsErr {
                            name: "EgressLimit".into(),
                            message: m,
                        }),
                        egress: Some((0, 0, false)),
                        ai: None,
                    },
                    Err(EgressError::Failed(m)) => Completion {
                        id: 0,
                        result: Err(JsErr {
                            name: "TypeError".into(),
                            message: m,
                        }),
                        egress: Some((1, 0, false)),
                        ai: None,
                    },
                }
            });
            Ok(id)
        }
        "kv_get" | "kv_delete" => {
            let key: String = arg.get()?;
            let kv = st.host.kv.clone();
            let p = st.program.clone();
            let id = st.new_id();
            let get = name == "kv_get";
            st.spawn(id, async move {
                done(if get {
                    kv.get(&p, &key)
                        .await
                        .map(|v| v.map_or(Done::Null, Done::Bytes))
                        .map_err(host_err)
                } else {
                    kv.delete(&p, &key)
                        .await
                        .map(|()| Done::Undefined)
                        .map_err(host_err)
                })
            });
            Ok(id)
        }
        "kv_put" => {
            let a = arg_list(&arg).ok_or_else(|| bad("kv_put"))?;
            let key: String = a.get(0)?;
            let v: Value<'js> = a.get(1)?;
            let value = bytes_of(&v).ok_or_else(|| bad("kv.put: value"))?;
            let kv = st.host.kv.clone();
            let p = st.program.clone();
            let id = st.new_id();
            st.spawn(id, async move {
                done(
                    kv.put(&p, &key, value)
                        .await
                        .map(|()| Done::Undefined)
                        .map_err(host_err),
                )
            });
            Ok(id)
        }
        "kv_list" => {
            let a = arg_list(&arg).ok_or_else(|| bad("kv_list"))?;
            let prefix: String = a.get(0)?;
            let limit: i64 = a.get(1)?;
            let cursor: String = a.get(2)?;
            let kv = st.host.kv.clone();
            let p = st.program.clone();
            let id = st.new_id();
            st.spawn(id, async move {
                let limit = usize::try_from(limit.clamp(1, 1000)).unwrap_or(1000);
                done(
                    kv.list(&p, &prefix, limit, &cursor)
                        .await
                        .map(|pg| Done::KvPage(pg.keys, pg.cursor))
                        .map_err(host_err),
                )
            });
            Ok(id)
        }
        "derive" => {
            let path: String = arg.get()?;
            let keys = st.host.keys.clone();
            let p = st.program.clone();
            let id = st.new_id();
            st.spawn(id, async move {
                done(
                    keys.derive(&p, &path)
                        .await
                        .map(|d| {
                            Done::Derived(
                                format!("0x{}", hex::encode(&d.public_key)),
                                crate::eth::checksum_address(&d.address),
                            )
                        })
                        .map_err(host_err),
                )
            });
            Ok(id)
        }
        "sign" | "sign_typed_data" => {
            let a = arg_list(&arg).ok_or_else(|| bad(name))?;
            let path: String = a.get(0)?;
            let digest = if name == "sign" {
                let v: Value<'js> = a.get(1)?;
                let msg = bytes_of(&v).ok_or_else(|| bad("sign: bytes"))?;
                crate::eth::personal_message_hash(&msg)
            } else {
                let json: String = a.get(1)?;
                let td: serde_json::Value =
                    serde_json::from_str(&json).map_err(|e| bad(&format!("signTypedData: {e}")))?;
                crate::eip712::typed_data_hash(&td)
                    .map_err(|e| bad(&format!("signTypedData: {e}")))?
            };
            let keys = st.host.keys.clone();
            let p = st.program.clone();
            let id = st.new_id();
            st.spawn(id, async move {
                done(
                    keys.sign_digest(&p, &path, digest)
                        .await
                        .map(|s| Done::Str(format!("0x{}", hex::encode(s))))
                        .map_err(host_err),
                )
            });
            Ok(id)
        }
        "attestation" => {
            let data = bytes_of(&arg).ok_or_else(|| bad("attestation: bytes"))?;
            if data.len() > 64 {
                return Err(bad("attestation: report data is at most 64 bytes"));
            }
            let att = st.host.attestation.clone();
            let p = st.program.clone();
            let id = st.new_id();
            st.spawn(id, async move {
                done(
                    att.attest(&p, data)
                        .await
                        .map(Done::Bytes)
                        .map_err(host_err),
                )
            });
            Ok(id)
        }
        "eth_call" | "send_transaction" => {
            let json: String = arg.get()?;
            let tx: serde_json::Value =
                serde_json::from_str(&json).map_err(|e| bad(&e.to_string()))?;
            let chain = st.host.chain.clone();
            let p = st.program.clone();
            let id = st.new_id();
            let call = name == "eth_call";
            st.spawn(id, async move {
                let r = if call {
                    chain.call(&p, tx).await
                } else {
                    chain.send_transaction(&p, tx).await
                };
                done(r.map(Done::Str).map_err(host_err))
            });
            Ok(id)
        }
        "ai_chat" => {
            let json: String = arg.get()?;
            let limits = st.limits.get();
            let remaining = limits.ai_tokens.saturating_sub(st.ai_reserved.get());
            let request = match parse_ai_request(&json, remaining) {
                Ok(r) => r,
                Err(AiRequestError::Invalid(m)) => return Err(bad(&format!("env.ai.chat: {m}"))),
                Err(AiRequestError::OverBudget(asked)) => {
                    st.kill(
                        ErrorKind::AiLimit,
                        format!("env.ai.chat asked for {asked} tokens; {remaining} of the ai_tokens limit of {} left", limits.ai_tokens),
                    );
                    return Err(rquickjs::Exception::throw_internal(
                        ctx,
                        "ai token limit exceeded",
                    ));
                }
            };
            let reserved = u64::from(request.max_tokens);
            st.ai_reserved
                .set(st.ai_reserved.get().saturating_add(reserved));
            let deadline = st.start.get() + Duration::from_millis(limits.wall_ms);
            let ai = st.host.ai.clone();
            let p = st.program.clone();
            let id = st.new_id();
            st.spawn(id, async move {
                match ai.chat(&p, request, deadline).await {
                    Ok(reply) => {
                        let tokens = (reserved, u64::from(reply.prompt_tokens), u64::from(reply.completion_tokens));
                        let body = serde_json::json!({
                            "message": {"role": "assistant", "content": reply.content},
                            "finish_reason": reply.finish_reason,
                            "usage": {
                                "prompt_tokens": reply.prompt_tokens,
                                "completion_tokens": reply.completion_tokens,
                                "total_tokens": u64::from(reply.prompt_tokens) + u64::from(reply.completion_tokens),
                            },
                            "model": reply.model,
                            "model_hash": format!("0x{}", hex::encode(reply.model_hash)),
                        });
                        Completion { id: 0, result: Ok(Done::Str(body.to_string())), egress: None, ai: Some(tokens) }
                    }
                    Err(e) => Completion { id: 0, result: Err(host_err(e)), egress: None, ai: Some((reserved, 0, 0)) },
                }
            });
            Ok(id)
        }
        other => Err(bad(&format!("unknown host op {other}"))),
    }
}

/// Why an `env.ai.chat` request was refused before reaching the host's model.
#[derive(Debug, PartialEq)]
pub(super) enum AiRequestError {
    /// Malformed (a `TypeError` for the program).
    Invalid(String),
    /// `max_tokens` is more than the invocation's `ai_tokens` budget leaves.
    OverBudget(u64),
}

/// Default `max_tokens` when the program gives none (capped by what the budget leaves).
const AI_DEFAULT_MAX_TOKENS: u64 = 256;

/// Parses and checks the JSON of an `env.ai.chat` request against the budget left.
pub(super) fn parse_ai_request(
    json: &str,
    remaining: u64,
) -> Result<AiChatRequest, AiRequestError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        model: Option<String>,
        messages: Vec<AiMessage>,
        max_tokens: Option<u64>,
        temperature: Option<f64>,
        top_p: Option<f64>,
        seed: Option<u64>,
        stop: Option<serde_json::Value>,
    }
    let invalid = |m: &str| AiRequestError::Invalid(m.to_owned());
    let raw: Raw =
        serde_json::from_str(json).map_err(|e| AiRequestError::Invalid(e.to_string()))?;
    if raw.messages.is_empty() || raw.messages.len() > AI_MAX_MESSAGES {
        return Err(AiRequestError::Invalid(format!(
            "messages: 1 to {AI_MAX_MESSAGES} messages"
        )));
    }
    let mut bytes = 0usize;
    for m in &raw.messages {
        if !matches!(m.role.as_str(), "system" | "user" | "assistant") {
            return Err(AiRequestError::Invalid(format!(
                "unknown role `{}` (system, user, assistant)",
                m.role
            )));
        }
        bytes = bytes.saturating_add(m.content.len());
    }
    if bytes > AI_MAX_PROMPT_BYTES {
        return Err(AiRequestError::Invalid(format!(
            "messages: more than {AI_MAX_PROMPT_BYTES} bytes of content"
        )));
    }
    let max_tokens = match raw.max_tokens {
        Some(0) => return Err(invalid("max_tokens must be at least 1")),
        Some(n) if n > remaining => return Err(AiRequestError::OverBudget(n)),
        Some(n) => n,
        None if remaining == 0 => return Err(AiRequestError::OverBudget(1)),
        None => AI_DEFAULT_MAX_TOKENS.min(remaining),
    };
    let temperature = raw.temperature.unwrap_or(0.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(invalid("temperature must be between 0 and 2"));
    }
    let top_p = raw.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(invalid("top_p must be in (0, 1]"));
    }
    let stop = match raw.stop {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::String(s)) => vec![s],
        Some(serde_json::Value::Array(a)) => a
            .into_iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid("stop: strings"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid("stop: a string or an array of strings")),
    };
    if stop.len() > 4 || stop.iter().any(|s| s.is_empty() || s.len() > 64) {
        return Err(invalid(
            "stop: at most 4 non-empty strings of at most 64 bytes",
        ));
    }
    Ok(AiChatRequest {
        model: raw.model,
        messages: raw.messages,
        max_tokens: u32::try_from(max_tokens).map_err(|_| invalid("max_tokens too large"))?,
        temperature: temperature as f32,
        top_p: top_p as f32,
        seed: raw.seed,
        stop,
    })
}

#[cfg(test)]
mod ai_tests {
    use super::*;

    #[test]
    fn ai_requests_are_checked() {
        let ok =
            parse_ai_request(r#"{"messages":[{"role":"user","content":"hi"}]}"#, 1024).unwrap();
        assert_eq!(
            (ok.max_tokens, ok.temperature, ok.top_p, ok.stop.len()),
            (256, 0.0, 1.0, 0)
        );
        let ok = parse_ai_request(r#"{"messages":[{"role":"user","content":"hi"}]}"#, 10).unwrap();
        assert_eq!(ok.max_tokens, 10);
        let ok = parse_ai_request(
            r#"{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"u"}],"max_tokens":5,"temperature":0.7,"top_p":0.9,"seed":7,"stop":"\n"}"#,
            5,
        )
        .unwrap();
        assert_eq!(
            (ok.max_tokens, ok.seed, ok.stop),
            (5, Some(7), vec!["\n".to_owned()])
        );
        for bad in [
            r#"{"messages":[]}"#,
            r#"{"messages":[{"role":"tool","content":"x"}]}"#,
            r#"{"messages":[{"role":"user"}]}"#,
            r#"{"messages":[{"role":"user","content":"x","name":"n"}]}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"max_tokens":0}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"temperature":3}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"top_p":0}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"stop":[1]}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"tools":[]}"#,
            r#"[1]"#,
        ] {
            assert!(
                matches!(parse_ai_request(bad, 1024), Err(AiRequestError::Invalid(_))),
                "{bad}"
            );
        }
        let big = format!(
            r#"{{"messages":[{{"role":"user","content":"{}"}}]}}"#,
            "x".repeat(AI_MAX_PROMPT_BYTES + 1)
        );
        assert!(matches!(
            parse_ai_request(&big, 1024),
            Err(AiRequestError::Invalid(_))
        ));
        assert_eq!(
            parse_ai_request(
                r#"{"messages":[{"role":"user","content":"x"}],"max_tokens":11}"#,
                10
            ),
            Err(AiRequestError::OverBudget(11))
        );
        assert_eq!(
            parse_ai_request(r#"{"messages":[{"role":"user","content":"x"}]}"#, 0),
            Err(AiRequestError::OverBudget(1))
        );
    }
}
