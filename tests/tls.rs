//! TLS and proxies: a private CA (`--cacert`), client certificates (`--cert`/`--key`),
//! `--insecure` (warned about), the collection's `tls:` block, and `HTTP_PROXY`/`NO_PROXY`.
//! Certificates are made here (rcgen); the servers listen on 127.0.0.1 and stop when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

use crate::common::Project;

struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn pki() -> Pki {
    let mut ca = CertificateParams::new(vec![]).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "postie test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let mut sp = CertificateParams::new(vec!["localhost".into()]).unwrap();
    sp.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let server_cert = sp.signed_by(&server_key, &ca).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut cp = CertificateParams::new(vec!["postie-client".into()]).unwrap();
    cp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = cp.signed_by(&client_key, &ca).unwrap();
    Pki {
        ca: ca.pem(),
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
    }
}

/// An HTTPS server answering `{"client_cert": true|false}`; with `require_client`, only to
/// clients presenting a certificate the CA signed.
struct TlsServer {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn tls_server(p: &Pki, require_client: bool) -> TlsServer {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = vec![CertificateDer::from_pem_slice(p.server_cert.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(p.server_key.as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(p.ca.as_bytes()).unwrap())
        .unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    );
    let verifier = if require_client {
        verifier.build().unwrap()
    } else {
        verifier.allow_unauthenticated().build().unwrap()
    };
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let done = stop.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if done.load(Ordering::SeqCst) {
                return;
            }
            let Ok(tcp) = conn else { continue };
            let config = config.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut buf = [0u8; 4096];
                let mut req = Vec::new();
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let has_cert = tls.conn.peer_certificates().is_some_and(|c| !c.is_empty());
                let body = format!("{{\"client_cert\": {has_cert}}}");
                let _ = write!(
                    tls,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    TlsServer { port, stop }
}

fn project_for(port: u16, tls: &str) -> Project {
    Project::new(&format!(
        "name: t\n{tls}requests:\n  hello:\n    url: https://localhost:{port}/hello\n"
    ))
}

fn write_pki(p: &Project, k: &Pki) {
    std::fs::write(p.path("ca.pem"), &k.ca).unwrap();
    std::fs::write(p.path("client.pem"), &k.client_cert).unwrap();
    std::fs::write(p.path("client.key"), &k.client_key).unwrap();
}

#[test]
fn a_private_ca_insecure_and_client_certificates() {
    let k = pki();
    let server = tls_server(&k, false);
    let p = project_for(server.port, "");
    write_pki(&p, &k);
    // Unknown issuer: refused, with what to do.
    let r = p.postie(&["send", "c.yaml", "hello"]);
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(r.all().contains("--cacert"), "{}", r.all());
    // Trusted through --cacert.
    let r = p.postie(&["send", "c.yaml", "hello", "--cacert", "ca.pem"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("\"client_cert\": false"), "{}", r.stdout);
    // Not verified at all: works, and says so.
    let r = p.postie(&["send", "c.yaml", "hello", "--insecure"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr
            .contains("TLS certificate verification is off (--insecure)"),
        "{}",
        r.stderr
    );
    // A bad CA file is named.
    std::fs::write(p.path("bad.pem"), "not a certificate").unwrap();
    let r = p.postie(&["send", "c.yaml", "hello", "--cacert", "bad.pem"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("bad.pem"), "{}", r.stderr);
    drop(server);
    // Mutual TLS: the server wants a client certificate.
    let server = tls_server(&k, true);
    let p = project_for(server.port, "");
    write_pki(&p, &k);
    let r = p.postie(&["send", "c.yaml", "hello", "--cacert", "ca.pem"]);
    assert_eq!(r.code, 3, "{}", r.all());
    let r = p.postie(&[
        "send",
        "c.yaml",
        "hello",
        "--cacert",
        "ca.pem",
        "--cert",
        "client.pem",
        "--key",
        "client.key",
    ]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("\"client_cert\": true"), "{}", r.stdout);
    // The same from the collection's `tls:` block (paths relative to the collection).
    let p = project_for(
        server.port,
        "tls:\n  cacert: ca.pem\n  cert: client.pem\n  key: client.key\n",
    );
    write_pki(&p, &k);
    let r = p.postie(&["send", "c.yaml", "hello"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("\"client_cert\": true"), "{}", r.stdout);
}

#[test]
fn http_proxy_and_no_proxy_from_the_environment() {
    // A forward proxy that answers every request itself and remembers the request line.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten().take(1) {
            let mut s = s;
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            record
                .lock()
                .unwrap()
                .push(text.lines().next().unwrap_or("").to_string());
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\nconnection: close\r\n\r\n{\"proxied\": 1}\n");
        }
    });
    let p = Project::new("name: p\nrequests:\n  x:\n    url: http://api.example.invalid/items\n");
    let proxy = format!("http://127.0.0.1:{port}");
    let r = p.postie_env(
        &["send", "c.yaml", "x"],
        &[("HTTP_PROXY", &proxy), ("NO_PROXY", "")],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("\"proxied\": 1"), "{}", r.stdout);
    assert_eq!(
        seen.lock().unwrap().first().map(String::as_str),
        Some("GET http://api.example.invalid/items HTTP/1.1")
    );
    // NO_PROXY: straight to the host, which does not exist.
    let r = p.postie_env(
        &["send", "c.yaml", "x"],
        &[("HTTP_PROXY", &proxy), ("NO_PROXY", "api.example.invalid")],
    );
    assert_eq!(r.code, 3, "{}", r.all());
}

/// Plain HTTP never sets TLS up (the platform's roots cost milliseconds a process); the first
/// `https://` hop does, a redirect from http to https included. TLS options set it up at once.
#[test]
fn tls_is_set_up_by_the_first_https_request_only() {
    use postie::exchange::{Body, Rendered, Sender, TlsOptions};
    let k = pki();
    let server = tls_server(&k, false);
    let hop = httpmock::MockServer::start();
    hop.mock(|when, then| {
        when.path("/plain");
        then.status(200).body("{}");
    });
    hop.mock(|when, then| {
        when.path("/hop");
        then.status(302).header(
            "location",
            format!("https://localhost:{}/hello", server.port),
        );
    });
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &k.ca).unwrap();
    let get = |url: String| Rendered {
        name: "r".into(),
        method: "GET".into(),
        url,
        headers: vec![],
        body: Body::None,
        follow_redirects: true,
        timeout: std::time::Duration::from_secs(10),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sender = Sender::new().unwrap();
        let ex = sender.send(&get(hop.url("/plain"))).await.unwrap();
        assert_eq!(ex.status, 200);
        assert!(!sender.tls_ready(), "an http:// request set TLS up");
        // The hop to https makes the TLS client, which verifies as ever: an unknown CA.
        let err = sender.send(&get(hop.url("/hop"))).await.unwrap_err();
        assert!(sender.tls_ready());
        assert!(err.to_string().contains("certificate"), "{err}");
        // TLS options given: the client is made at once (a problem with it is said before
        // anything is sent), and the hop goes through with the CA.
        let sender = Sender::with_tls(&TlsOptions {
            cacert: Some(ca.clone()),
            ..Default::default()
        })
        .unwrap();
        assert!(sender.tls_ready());
        let ex = sender.send(&get(hop.url("/hop"))).await.unwrap();
        assert_eq!(ex.status, 200);
        assert_eq!(ex.json.unwrap()["client_cert"], false);
    });
}
