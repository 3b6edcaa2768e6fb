//! `postie mock --spec`: every operation of three documents others wrote answers a valid request
//! with a response its schema accepts, a broken request with a 4xx, and nothing ever with a 5xx
//! (a seeded sweep of arbitrary requests); resources a POST makes are there afterwards; security
//! and `Prefer` as documented.

use std::path::Path;

use postie::openapi::{Doc, Fill, In};

use crate::common::tool;
use serde_json::{Value, json};

fn fixture(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/interop/openapi")
        .join(rel)
}

fn serve(spec: &str, stateful: bool) -> (postie::mock::MockServer, Doc) {
    let path = fixture(spec);
    let mut cfg = postie::mock::MockConfig::bundled().unwrap();
    cfg.pack = false;
    cfg.spec = Some(std::sync::Arc::new(
        postie::mock::engine::spec::SpecServer::load(&path, 7, stateful).unwrap(),
    ));
    let doc = Doc::load(&path).unwrap();
    (postie::mock::MockServer::start(cfg).unwrap(), doc)
}

fn client() -> (tokio::runtime::Runtime, reqwest::Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    (rt, reqwest::Client::new())
}

/// A request the operation accepts: path, required query and header parameters from their
/// examples, a body built from the schema, credentials of every kind.
fn valid_request(doc: &Doc, op: &postie::openapi::Operation, base: &str) -> reqwest::Request {
    let mut path = op.path.clone();
    let mut query = Vec::new();
    let mut headers = reqwest::header::HeaderMap::new();
    for p in &op.params {
        let v = p
            .raw
            .get("example")
            .or_else(|| p.raw.get("x-example"))
            .cloned()
            .unwrap_or_else(|| postie::openapi::synthesise(doc, &p.schema, Fill::Plain, false));
        let text = match &v {
            Value::String(s) => s.clone(),
            Value::Array(a) => a
                .iter()
                .map(postie::capture::value_text)
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        let ok = postie::openapi::validate(
            doc,
            &p.schema,
            &postie::openapi::coerce(doc, &p.schema, &text),
            "p",
        )
        .is_empty();
        let text = if ok {
            text
        } else {
            postie::capture::value_text(&postie::openapi::synthesise(
                doc,
                &p.schema,
                Fill::Plain,
                false,
            ))
        };
        match p.place {
            In::Path => {
                path = path.replace(
                    &format!("{{{}}}", p.name),
                    &url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>(),
                )
            }
            In::Query if p.required => query.push((p.name.clone(), text)),
            In::Header if p.required => {
                if let (Ok(n), Ok(v)) = (
                    reqwest::header::HeaderName::from_bytes(p.name.as_bytes()),
                    reqwest::header::HeaderValue::from_str(&text),
                ) {
                    headers.insert(n, v);
                }
            }
            _ => {}
        }
    }
    headers.insert("authorization", "Bearer test-token".parse().unwrap());
    for (_, s) in doc.security_schemes() {
        if s.get("type").and_then(Value::as_str) == Some("apiKey")
            && s.get("in").and_then(Value::as_str) == Some("header")
            && let Some(n) = s.get("name").and_then(Value::as_str)
        {
            headers.insert(
                reqwest::header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                "k".parse().unwrap(),
            );
        }
    }
    let mut url = url::Url::parse(&format!("{base}{}{path}", doc.base_path())).unwrap();
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(&query);
    }
    let mut req = reqwest::Request::new(op.method.parse().unwrap(), url);
    *req.headers_mut() = headers;
    if let Some(b) = &op.body {
        let (media, schema, _) = b
            .content
            .iter()
            .find(|(m, _, _)| m.contains("json"))
            .unwrap_or(&b.content[0]);
        let v = postie::openapi::synthesise(doc, schema, Fill::Plain, false);
        let body = if media.contains("json") {
            serde_json::to_vec(&v).unwrap()
        } else if media.contains("x-www-form-urlencoded") {
            let pairs: Vec<(String, String)> = v
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, x)| (k.clone(), postie::capture::value_text(x)))
                .collect();
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&pairs)
                .finish()
                .into_bytes()
        } else {
            postie::capture::value_text(&v).into_bytes()
        };
        req.headers_mut()
            .insert("content-type", media.parse().unwrap());
        *req.body_mut() = Some(body.into());
    }
    req
}

#[test]
fn every_operation_answers_within_its_contract() {
    let (rt, client) = client();
    for spec in [
        "constant-contact-v3-swagger.yaml",
        "oai-petstore-expanded.swagger.json",
        "realworld-conduit.openapi-3.1.yaml",
    ] {
        let (mock, doc) = serve(spec, false);
        let ops = doc.operations();
        let mut answered = 0;
        for op in &ops {
            let req = valid_request(&doc, op, mock.url());
            let what = format!("{spec}: {} {}", op.method, op.path);
            let (status, ct, body) = rt.block_on(async {
                let r = client.execute(req).await.unwrap();
                let status = r.status().as_u16();
                let ct = r
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                (status, ct, r.bytes().await.unwrap())
            });
            assert!(
                status < 400,
                "{what}: {status} {}",
                String::from_utf8_lossy(&body)
            );
            // The body is what the document says a response with that status holds.
            if let Some(r) = op.responses.iter().find(|r| r.status == status.to_string())
                && let Some((_, schema, _)) = r.content.iter().find(|(m, _, _)| m.contains("json"))
                && ct.contains("json")
            {
                let v: Value = serde_json::from_slice(&body).unwrap();
                let problems = postie::openapi::validate_response(&doc, schema, &v, "response");
                assert!(problems.is_empty(), "{what}: {problems:?}\n{v}");
            }
            answered += 1;
        }
        assert_eq!(answered, ops.len());
        eprintln!("{spec}: {answered} operations answered within their contract");
    }
}

#[test]
fn broken_and_arbitrary_requests_get_4xx_never_5xx() {
    let (rt, client) = client();
    for spec in [
        "constant-contact-v3-swagger.yaml",
        "oai-petstore-expanded.swagger.json",
        "realworld-conduit.openapi-3.1.yaml",
    ] {
        let (mock, doc) = serve(spec, true);
        let ops = doc.operations();
        // Each operation with a JSON body, given the wrong shape of body: a 4xx.
        for op in ops.iter().filter(|o| {
            o.body
                .as_ref()
                .is_some_and(|b| b.required && b.content.iter().any(|(m, _, _)| m.contains("json")))
        }) {
            let mut req = valid_request(&doc, op, mock.url());
            *req.body_mut() = Some(b"[1, 2]".to_vec().into());
            req.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            let status =
                rt.block_on(async { client.execute(req).await.unwrap().status().as_u16() });
            assert!(
                (400..500).contains(&status),
                "{spec}: {} {} with a list for a body: {status}",
                op.method,
                op.path
            );
        }
        // Arbitrary methods, paths, headers and bodies: never a server error.
        let mut rng = postie::openapi::Rng::new(42);
        let methods = [
            "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "BREW",
        ];
        let bodies: [&[u8]; 6] = [
            b"",
            b"{",
            b"null",
            b"{\"a\": [1, {\"b\": null}]}",
            b"\xff\xfe",
            b"[[[[[[[[[[]]]]]]]]]]",
        ];
        for _ in 0..300 {
            let op = &ops[(rng.next_u64() % ops.len() as u64) as usize];
            let mut path: String = op.path.clone();
            for seg in ["{", "}"] {
                let _ = seg;
            }
            let noise = [
                "x",
                "0",
                "-1",
                "%00",
                "..",
                "a%2Fb",
                "99999999999999999999",
                "ü",
            ];
            while let Some(s) = path.find('{') {
                let e = path[s..].find('}').map(|e| s + e + 1).unwrap_or(path.len());
                let w = noise[(rng.next_u64() % noise.len() as u64) as usize];
                path.replace_range(s..e, w);
            }
            let method = methods[(rng.next_u64() % methods.len() as u64) as usize];
            let body = bodies[(rng.next_u64() % bodies.len() as u64) as usize];
            let ct = [
                "application/json",
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
            ][(rng.next_u64() % 4) as usize];
            let url = format!(
                "{}{}{path}?limit={}&status=%ff",
                mock.url(),
                doc.base_path(),
                ["-5", "abc", "1"][(rng.next_u64() % 3) as usize]
            );
            let status = rt.block_on(async {
                let mut b = client
                    .request(method.parse().unwrap(), &url)
                    .header("content-type", ct)
                    .body(body.to_vec());
                if rng.next_u64().is_multiple_of(2) {
                    b = b.header("authorization", "Bearer x");
                }
                b.send().await.map(|r| r.status().as_u16()).unwrap_or(0)
            });
            assert!(
                status != 0 && status < 500,
                "{spec}: {method} {url} ({ct}) → {status}"
            );
        }
    }
}

#[test]
fn resources_a_post_creates_are_there_afterwards() {
    let (rt, client) = client();
    let (mock, _) = serve("oai-petstore-expanded.swagger.json", true);
    let base = format!("{}/api/pets", mock.url());
    rt.block_on(async {
        let created: Value = client
            .post(&base)
            .json(&json!({"name": "rex", "tag": "dog"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["id"].as_i64().unwrap();
        assert_eq!(created["name"], "rex");
        let listed: Value = client
            .get(&base)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(listed, json!([created.clone()]));
        let got: Value = client
            .get(format!("{base}/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(got, created);
        let del = client.delete(format!("{base}/{id}")).send().await.unwrap();
        assert_eq!(del.status().as_u16(), 204);
        let gone = client.get(format!("{base}/{id}")).send().await.unwrap();
        assert_eq!(gone.status().as_u16(), 404);
        // Deterministic: the same request, the same made-up body.
        let (a, b) = (
            client
                .get(format!("{base}/5"))
                .send()
                .await
                .unwrap()
                .status(),
            client
                .get(format!("{base}/5"))
                .send()
                .await
                .unwrap()
                .status(),
        );
        assert_eq!(a, b);
    });
}

#[test]
fn security_prefer_and_media_types() {
    let (rt, client) = client();
    let (mock, _) = serve("constant-contact-v3-swagger.yaml", false);
    let url = format!("{}/v3/contact_lists", mock.url());
    rt.block_on(async {
        // The operation wants OAuth2: no token, 401.
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        let r = client.get(&url).bearer_auth("t").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        // `Prefer: code=…` picks another documented response.
        let r = client
            .get(&url)
            .bearer_auth("t")
            .header("prefer", "code=401")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
        // A body of a type the operation does not take: 415.
        let r = client
            .post(&url)
            .bearer_auth("t")
            .header("content-type", "text/plain")
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 415);
        // A required body missing: 400 naming it.
        let r = client
            .post(&url)
            .bearer_auth("t")
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        // A method the path does not have: 405 with Allow.
        let r = client.patch(&url).bearer_auth("t").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 405);
        assert!(r.headers().get("allow").is_some());
    });
}

#[test]
fn wrapped_resources_merge_deeply_and_list_bare() {
    let (rt, client) = client();
    let (mock, _) = serve("realworld-conduit.openapi-3.1.yaml", true);
    let base = format!("{}/api/articles", mock.url());
    rt.block_on(async {
        let body =
            json!({"article": {"title": "T", "description": "D", "body": "B", "tagList": ["x"]}});
        let r = client
            .post(&base)
            .header("authorization", "Token t")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let created: Value = r.json().await.unwrap();
        // The body went into the wrapped resource; fields the schema requires are still there.
        let article = &created["article"];
        assert_eq!(article["title"], "T");
        assert_eq!(article["tagList"], json!(["x"]));
        assert!(
            article["author"].is_object() && article["createdAt"].is_string(),
            "{created}"
        );
        let slug = article["slug"].as_str().unwrap().to_string();
        let got: Value = client
            .get(format!("{base}/{slug}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(got, created);
        // An update merges and keeps the slug the path names.
        let upd = json!({"article": {"title": "U", "slug": "other"}});
        let r = client
            .put(format!("{base}/{slug}"))
            .header("authorization", "Token t")
            .json(&upd)
            .send()
            .await
            .unwrap();
        let updated: Value = r.json().await.unwrap();
        assert_eq!(updated["article"]["title"], "U");
        assert_eq!(updated["article"]["slug"], slug.as_str());
        assert_eq!(updated["article"]["body"], "B");
        // The list holds the article bare, and the count beside it counts.
        let listed: Value = client
            .get(&base)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(listed["articles"], json!([updated["article"].clone()]));
        assert_eq!(listed["articlesCount"], 1);
        // Lists are paged as the operation's parameters say (`limit`, `offset`); the count
        // beside the list counts them all.
        for t in ["T2", "T3", "T4"] {
            let body = json!({"article": {"title": t, "description": "D", "body": "B"}});
            let r = client
                .post(&base)
                .header("authorization", "Token t")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 201);
        }
        let page = |q: &'static str| {
            let client = client.clone();
            let url = format!("{base}?{q}");
            async move {
                let v: Value = client.get(url).send().await.unwrap().json().await.unwrap();
                let titles: Vec<String> = v["articles"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["title"].as_str().unwrap().to_string())
                    .collect();
                (titles, v["articlesCount"].as_u64().unwrap())
            }
        };
        assert_eq!(page("limit=2").await, (vec!["U".into(), "T2".into()], 4));
        assert_eq!(
            page("limit=2&offset=2").await,
            (vec!["T3".into(), "T4".into()], 4)
        );
        assert_eq!(page("offset=3").await, (vec!["T4".into()], 4));
        assert_eq!(page("offset=9").await, (vec![], 4));
    });
}

/// Schemathesis (PyPI, installed by scripts/test into ./.venv), a contract fuzzer nobody here
/// wrote, finds no 5xx and no response its schema rejects on any of the three documents, its
/// stateful phase following the links it infers between operations. A fixed seed keeps a run
/// reproducible; `st replay` re-sends what it found.
#[test]
fn schemathesis_finds_nothing() {
    let st = tool(
        ".venv/bin/st",
        "schemathesis (PyPI, in ./.venv)",
        "python3 -m venv .venv && .venv/bin/pip install -r tests/servers/requirements.txt",
    );
    for (spec, base, examples) in [
        ("oai-petstore-expanded.swagger.json", "/api", "10"),
        ("realworld-conduit.openapi-3.1.yaml", "/api", "10"),
        ("constant-contact-v3-swagger.yaml", "/v3", "2"),
    ] {
        let (mock, _) = serve(spec, true);
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(&st)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .args(["run", fixture(spec).to_str().unwrap()])
            .args(["--url", &format!("{}{base}", mock.url())])
            .args(["--checks", "not_a_server_error,response_schema_conformance"])
            .args(["--max-examples", examples, "--seed", "1", "--no-color"])
            .args(["-H", "Authorization: Bearer t"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{spec}: schemathesis found problems:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("passed"), "{spec}: {text}");
    }
}
