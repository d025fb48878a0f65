//! `pith new agent NAME`: the scaffold is a program that answers a cron firing and a plain
//! request under `pith run`; bad names and existing directories are usage errors.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

fn pith(dir: &std::path::Path) -> Command {
    let mut c = Command::new(common::pith_bin());
    c.current_dir(dir);
    c
}

#[test]
fn scaffolded_agent_runs_its_firings() {
    let dir = tempfile::tempdir().unwrap();
    let out = pith(dir.path())
        .args(["new", "agent", "watcher"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::out_text(&out));
    let agent = dir.path().join("watcher");
    let src = std::fs::read_to_string(agent.join("index.js")).unwrap();
    assert!(src.starts_with("// watcher: a Pith agent."), "{src}");
    assert!(
        std::fs::read_to_string(agent.join("README.md"))
            .unwrap()
            .contains("pith programs triggers")
    );

    let firing = |trigger: &str, body: &str| {
        let out = pith(&agent)
            .args([
                "run",
                "index.js",
                "--method",
                "POST",
                "--path",
                "/.pith/agent",
            ])
            .args([
                "--header",
                &format!("pith-trigger: {trigger}"),
                "--body",
                body,
                "--json",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", common::out_text(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let v = firing(
        "cron",
        r#"{"trigger":"cron","firing":"cron:60","scheduledTime":60000}"#,
    );
    assert_eq!(v["body"], r#"{"ok":true,"firings":1}"#, "{v}");
    assert_eq!(v["logs"][0]["message"], "tick cron:60", "{v}");
    let v = firing(
        "event",
        r#"{"trigger":"event","firing":"event:1:0x01:0","event":{"address":"0x00000000000000000000000000000000000000aa","topics":[],"data":"0x"}}"#,
    );
    assert_eq!(
        v["logs"][0]["message"],
        "event event:1:0x01:0 from 0x00000000000000000000000000000000000000aa",
        "{v}"
    );
    let out = pith(&agent)
        .args(["run", "index.js", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], 200, "{v}");

    for bad in [
        vec!["new", "agent", "bad name"],
        vec!["new", "agent", "watcher"],
        vec!["new", "wizard", "x"],
    ] {
        let out = pith(dir.path()).args(&bad).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{bad:?}: {}",
            common::out_text(&out)
        );
    }
}
