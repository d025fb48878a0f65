//! Egress policy end to end: refused destinations reject with `EgressDenied` (catchable);
//! uncaught, the invocation fails with `egress_denied`. A redirect to a private address
//! is refused at the hop.

mod common;
use common::*;
use pith_sandbox::{ErrorKind, Outcome, Request};

fn fetch_program(url: &str, allow: &[&str], catch: bool) -> Outcome {
    let src = if catch {
        format!(
            "export default {{ async fetch() {{ try {{ await fetch({url:?}); return new Response('reached'); }}
              catch (e) {{ return new Response(e.name + ': ' + (e instanceof EgressDenied) + ': ' + e.message); }} }} }}"
        )
    } else {
        format!(
            "export default {{ async fetch() {{ const r = await fetch({url:?}); return new Response(await r.text()); }} }}"
        )
    };
    let mut p = program(&src);
    p.egress.allow_hosts = allow.iter().map(|s| s.to_string()).collect();
    run_program(p, Request::get("http://localhost/"))
}

#[test]
fn refused_destinations() {
    let port = serve(|_| ("200 OK".into(), vec![], b"secret".to_vec()));
    let cases = [
        // (url, allow-list): on the allow-list by name, but the address is not public.
        (format!("http://127.0.0.1:{port}/"), vec![]),
        (
            format!("http://localhost:{port}/"),
            vec!["localhost".to_owned()],
        ),
        (
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            vec!["169.254.169.254:81".to_owned()],
        ),
        (
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            vec![],
        ),
        ("http://10.0.0.1/".to_owned(), vec![]),
        (format!("http://[::1]:{port}/"), vec![]),
        ("http://[::ffff:127.0.0.1]/".to_owned(), vec![]),
        ("file:///etc/passwd".to_owned(), vec![]),
        ("data:text/plain,hello".to_owned(), vec![]),
        ("https://example.com/".to_owned(), vec![]),
    ];
    for (url, allow) in &cases {
        let allow: Vec<&str> = allow.iter().map(String::as_str).collect();
        let o = fetch_program(url, &allow, true);
        let b = body(&o);
        assert!(b.starts_with("EgressDenied: true: "), "{url}: {b}");
        assert!(o.usage.egress_bytes == 0, "{url}: {:?}", o.usage);
        let o = fetch_program(url, &allow, false);
        assert_eq!(kind(&o), ErrorKind::EgressDenied, "{url}");
    }
}

#[test]
fn explicitly_allowed_loopback_works() {
    let port = serve(|p| {
        (
            "200 OK".into(),
            vec![("x-path".into(), p.into())],
            b"{\"price\": 42}".to_vec(),
        )
    });
    let allow = format!("127.0.0.1:{port}");
    let o = fetch_program(&format!("http://127.0.0.1:{port}/quote"), &[&allow], false);
    assert_eq!(body(&o), "{\"price\": 42}");
    assert_eq!(o.usage.egress_requests, 1);
    assert!(o.usage.egress_bytes > 13);
    // Another port on the same host is not allowed.
    let o = fetch_program(
        &format!("http://127.0.0.1:{}/", port.wrapping_add(1)),
        &[&allow],
        true,
    );
    assert!(body(&o).starts_with("EgressDenied"));
}

#[test]
fn redirect_to_private_address_is_refused() {
    for target in [
        "http://10.0.0.1/",
        "http://127.0.0.2/",
        "http://169.254.169.254/",
    ] {
        let t = target.to_owned();
        let port = serve(move |_| {
            (
                "302 Found".into(),
                vec![("location".into(), t.clone())],
                Vec::new(),
            )
        });
        let allow = format!("127.0.0.1:{port}");
        let url = format!("http://127.0.0.1:{port}/go");
        let o = fetch_program(&url, &[&allow], true);
        assert!(
            body(&o).starts_with("EgressDenied: true"),
            "{target}: {}",
            body(&o)
        );
        assert_eq!(o.usage.egress_requests, 2, "the first hop counts");
        let o = fetch_program(&url, &[&allow], false);
        assert_eq!(kind(&o), ErrorKind::EgressDenied);
    }
}

#[test]
fn redirect_within_allowed_host_is_followed() {
    let port = serve(|p| {
        if p == "/a" {
            (
                "301 Moved".into(),
                vec![("location".into(), "/b".into())],
                Vec::new(),
            )
        } else {
            ("200 OK".into(), vec![], b"at b".to_vec())
        }
    });
    let allow = format!("127.0.0.1:{port}");
    let src = format!(
        "export default {{ async fetch() {{ const r = await fetch('http://127.0.0.1:{port}/a'); return Response.json({{ t: await r.text(), red: r.redirected, url: r.url }}); }} }}"
    );
    let mut p = program(&src);
    p.egress.allow_hosts = vec![allow];
    let o = run_program(p, Request::get("http://localhost/"));
    assert_eq!(
        body(&o),
        format!("{{\"t\":\"at b\",\"red\":true,\"url\":\"http://127.0.0.1:{port}/b\"}}")
    );
    assert_eq!(o.usage.egress_requests, 2);
}

#[test]
fn huge_download_hits_egress_limit() {
    let port = serve(|_| ("200 OK".into(), vec![], vec![b'z'; 2 * 1024 * 1024]));
    let src = format!(
        "export default {{ async fetch() {{ try {{ await (await fetch('http://127.0.0.1:{port}/')).text(); }} catch (e) {{}} return new Response('caught'); }} }}"
    );
    let mut p = program(&src);
    p.egress.allow_hosts = vec![format!("127.0.0.1:{port}")];
    p.limits.egress_bytes = 1024 * 1024;
    let o = run_program(p, Request::get("http://localhost/"));
    assert_eq!(kind(&o), ErrorKind::EgressLimit);
}

#[test]
fn request_count_limit() {
    let port = serve(|_| ("200 OK".into(), vec![], b"ok".to_vec()));
    let src = format!(
        "export default {{ async fetch() {{ for (;;) {{ try {{ await fetch('http://127.0.0.1:{port}/'); }} catch (e) {{}} }} }} }}"
    );
    let mut p = program(&src);
    p.egress.allow_hosts = vec![format!("127.0.0.1:{port}")];
    p.limits.egress_requests = 5;
    let o = run_program(p, Request::get("http://localhost/"));
    assert_eq!(kind(&o), ErrorKind::EgressLimit);
    assert_eq!(o.usage.egress_requests, 5);
}
