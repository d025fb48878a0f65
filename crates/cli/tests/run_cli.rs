//! `pith run` through the real binary: JSON shape, exit codes.

use std::process::Command;

fn pith() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pith"))
}

fn write(dir: &tempfile::TempDir, name: &str, src: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, src).unwrap();
    p
}

#[test]
fn run_json_success() {
    let dir = tempfile::tempdir().unwrap();
    let prog = write(
        &dir,
        "p.js",
        r#"export default { async fetch(req, env) {
        console.log("m", req.method); const h = new Headers(); h.append("x-r", "1"); h.append("x-r", "2");
        return new Response(JSON.stringify({ path: new URL(req.url).pathname + new URL(req.url).search, body: await req.text(), s: env.secrets.K, hdr: req.headers.get("x-in") }), { headers: h }); } }"#,
    );
    let body = write(&dir, "body.txt", "from-file");
    let out = pith()
        .args([
            "run",
            prog.to_str().unwrap(),
            "--method",
            "POST",
            "--path",
            "/a?b=1",
            "--header",
            "X-In: v",
            "--secret",
            "K=sv",
        ])
        .arg(format!("--body=@{}", body.display()))
        .args(["--limit", "cpu_ms=500", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], 200);
    assert_eq!(v["headers"]["x-r"], "1, 2");
    let inner: serde_json::Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        inner,
        serde_json::json!({"path": "/a?b=1", "body": "from-file", "s": "sv", "hdr": "v"})
    );
    assert_eq!(
        v["logs"],
        serde_json::json!([{"level": "log", "message": "m POST"}])
    );
    assert_eq!(v["limits"]["cpu_ms"], 500);
    assert_eq!(v["error"], serde_json::Value::Null);
    for k in [
        "cpu_ms",
        "wall_ms",
        "memory_bytes",
        "egress_requests",
        "egress_bytes",
        "log_bytes",
        "kv_ops",
    ] {
        assert!(v["usage"][k].is_u64(), "usage.{k}");
    }
}

#[test]
fn run_json_binary_body_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bin = write(
        &dir,
        "b.js",
        "export default { async fetch() { return new Response(new Uint8Array([0xff, 0x00, 0x41])); } }",
    );
    let out = pith()
        .args(["run", bin.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["body"], serde_json::Value::Null);
    assert_eq!(v["body_base64"], "/wBB");

    let lp = write(
        &dir,
        "loop.js",
        "export default { async fetch() { for (;;) {} } }",
    );
    let out = pith()
        .args([
            "run",
            lp.to_str().unwrap(),
            "--limit",
            "cpu_ms=50",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "cpu_limit");
    assert_eq!(v["status"], serde_json::Value::Null);
    assert!(v["usage"]["cpu_ms"].as_u64().unwrap() >= 50);

    let bad = write(&dir, "bad.js", "export default {");
    let out = pith()
        .args(["run", bad.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "invalid_program");
}

#[test]
fn run_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "p.js",
        "export default { async fetch() { return new Response('x'); } }",
    );
    let p = p.to_str().unwrap();
    for args in [
        vec!["run", "/nonexistent/p.js"],
        vec!["run", p, "--limit", "nope=1"],
        vec!["run", p, "--limit", "cpu_ms=abc"],
        vec!["run", p, "--header", "no-colon"],
        vec!["run", p, "--secret", "novalue"],
        vec!["run", p, "--body", "@/nonexistent/body"],
        vec!["run", p, "--bogus-flag"],
        vec!["run", p, "--allow-host", "https://example.com"],
        vec!["run", p, "--allow-host", "example.com/path"],
        vec!["run", p, "--allow-host", "example.com:notaport"],
        vec!["run", p, "--allow-host", ""],
    ] {
        let out = pith().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

/// `pith run --model`: the real default model answers env.ai (greedy: the same answer twice),
/// usage counts its tokens; without --model env.ai is unavailable; a bad model file is a usage
/// error.
#[test]
fn run_with_the_real_model() {
    let Some(model) = pith_testkit::model_path() else {
        return;
    };
    let file_hash = format!(
        "0x{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            std::fs::read(&model).unwrap()
        ))
    );
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/ai-classify/index.js"
    );
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            example,
            "--path",
            "/?text=What%20a%20wonderful%20day",
            "--json",
        ];
        args.extend_from_slice(extra);
        pith().args(&args).output().unwrap()
    };
    let m = model.to_str().unwrap();
    let mut answers = Vec::new();
    for _ in 0..2 {
        let out = run(&["--model", m]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let body: serde_json::Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["model_hash"], file_hash.as_str(), "{body}");
        assert!(
            ["positive", "negative", "neutral"].contains(&body["label"].as_str().unwrap()),
            "{body}"
        );
        let used = v["usage"]["ai_completion_tokens"].as_u64().unwrap();
        assert!((1..=4).contains(&used), "{v}");
        assert!(v["usage"]["ai_prompt_tokens"].as_u64().unwrap() > 10, "{v}");
        answers.push(body["model_answer"].clone());
    }
    assert_eq!(answers[0], answers[1], "greedy answers differ");
    // Without a model: env.ai is unavailable, an uncaught program error.
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "program_error", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("env.ai is not available"),
        "{v}"
    );
    // A file that is not a model: exit 2 with the reason.
    let out = run(&["--model", example]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
