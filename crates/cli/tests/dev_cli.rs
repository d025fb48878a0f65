//! `pith dev`: serves on 127.0.0.1 and reloads when the file changes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let status = buf.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = buf
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn dev_serves_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let prog = dir.path().join("p.js");
    std::fs::write(&prog, "let n = 0; export default { async fetch(req) { n++; return new Response('v1 ' + n + ' ' + new URL(req.url).pathname); } }").unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_pith"))
        .args(["dev", prog.to_str().unwrap(), "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Kill(child);
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("ready http://127.0.0.1:"), "{line}");
    let addr = line
        .trim_start_matches("ready http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(get(&addr, "/a"), (200, "v1 1 /a".into()));
    assert_eq!(
        get(&addr, "/b"),
        (200, "v1 2 /b".into()),
        "warm instance reused"
    );
    // Change the file (different length, so the change is seen even with coarse mtimes).
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(
        &prog,
        "export default { async fetch() { return new Response('version two'); } }",
    )
    .unwrap();
    let f = std::fs::File::options().write(true).open(&prog).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(f);
    assert_eq!(get(&addr, "/"), (200, "version two".into()));
    // A program error is a 500 with the error kind, and the server keeps serving.
    std::fs::write(
        &prog,
        "export default { async fetch() { throw new Error('bad'); } }",
    )
    .unwrap();
    let f = std::fs::File::options().write(true).open(&prog).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(10))
        .unwrap();
    drop(f);
    let (status, body) = get(&addr, "/");
    assert_eq!(status, 500);
    assert!(body.starts_with("program_error"), "{body}");
}
