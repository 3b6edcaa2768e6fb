//! `postie mock --stubs`: stub files matched by method, path, query, headers and body, templated
//! answers, sequences, scenarios, delays, the faults a file declares, the no-match report, reloading
//! when the file changes; a collection's saved examples as stubs; stubs beside a served document.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const STUBS: &str = r#"
stubs:
  - name: rust posts
    request:
      method: GET
      path: /posts
      query: {tag: rust}
    response:
      json: [{id: 1, title: Ownership}]
  - name: one post
    request: {method: GET, path: "/posts/{id}"}
    response:
      headers: {X-Post: "<<path.id>>", X-Asked: "<<query.fields | default('all')>>"}
      json: {id: "<<path.id>>", title: "Post <<path.id>>", served_at: "<<now()>>", call: "<<call>>"}
  - name: create post
    request:
      method: POST
      path: /posts
      body:
        - {jsonpath: $.title, matches: "^\\S"}
        - {jsonpath: $.draft, absent: true}
    response:
      status: 201
      headers: {Location: "/posts/<<body.title | lower>>"}
      json: {id: "<<uuid()>>", title: "<<body.title>>", tags: "<<body.tags>>"}
  - name: token
    request:
      method: POST
      path: /oauth/token
      body: [{form: grant_type, equals: client_credentials}]
    response:
      json: {access_token: "tok-<<form.client_id>>", token_type: Bearer, expires_in: 3600}
  - name: export progress
    request: {method: GET, path: "/exports/{id}"}
    responses:
      - json: {state: pending}
      - json: {state: pending}
      - json: {state: done, id: "<<path.id>>"}
  - name: open cart
    scenario: cart
    state: Started
    request: {method: GET, path: /cart}
    response: {json: {state: open}}
  - name: checkout
    scenario: cart
    state: Started
    next_state: paid
    request: {method: POST, path: /cart/checkout}
    response: {status: 202}
  - name: paid cart
    scenario: cart
    state: paid
    request: {method: GET, path: /cart}
    response: {json: {state: paid}}
  - name: secure
    request:
      path: /secure
      headers: {X-Api-Key: {equals: k1}}
    response: {text: "hello <<headers['x-api-key']>>"}
  - name: slow
    request: {method: GET, path: /slow}
    response: {text: late, delay: 300ms}
  - name: broken template
    request: {method: GET, path: /broken}
    response: {json: {x: "<<query.missing>>"}}
  - name: anything under files
    priority: 9
    request: {path: "/files/*"}
    response: {json: {file: "<<path.rest>>"}}
  - name: first file wins by priority
    priority: 1
    request: {method: GET, path: /files/special.txt}
    response: {text: special}
  - name: flaky
    request: {method: GET, path: /flaky}
    response: {json: {ok: true}}
faults:
  - {route: GET /flaky, status: 503, times: 1, name: flaky once}
"#;

fn start(files: &[&Path]) -> postie::mock::MockServer {
    let mut cfg = postie::mock::MockConfig::bundled().unwrap();
    cfg.pack = false;
    let paths: Vec<std::path::PathBuf> = files.iter().map(|p| p.to_path_buf()).collect();
    cfg.stubs = Some(std::sync::Arc::new(
        postie::mock::engine::stubs::Stubs::load(&paths).unwrap(),
    ));
    postie::mock::MockServer::start(cfg).unwrap()
}

fn client() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::new()
}

fn get(c: &reqwest::blocking::Client, url: &str) -> (u16, Value) {
    let r = c.get(url).send().unwrap();
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[test]
fn stubs_match_answer_in_sequence_and_follow_scenarios() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blog.yaml");
    std::fs::write(&file, STUBS).unwrap();
    let mock = start(&[&file]);
    let u = mock.url().to_string();
    let c = client();

    // Query conditions: the stub with `tag: rust` answers only that query.
    assert_eq!(
        get(&c, &format!("{u}/posts?tag=rust")),
        (200, json!([{"id": 1, "title": "Ownership"}]))
    );
    let (status, report) = get(&c, &format!("{u}/posts?tag=go"));
    assert_eq!(status, 404, "{report}");
    assert_eq!(report["nearest"][0]["stub"], "`rust posts`", "{report}");
    assert_eq!(
        report["nearest"][0]["failed"], "query `tag`: expected `rust`, got `go`",
        "{report}"
    );

    // Path parameters, query and headers in templates; the mock clock in now().
    let r = c.get(format!("{u}/posts/42?fields=title")).send().unwrap();
    assert_eq!(r.headers()["x-post"], "42");
    assert_eq!(r.headers()["x-asked"], "title");
    let body: Value = r.json().unwrap();
    assert_eq!(body["id"], "42");
    assert_eq!(body["title"], "Post 42");
    let served = body["served_at"].as_str().unwrap();
    assert!(served.ends_with('Z') && served.len() >= 20, "{served}");
    c.post(format!("{u}/__postie/clock"))
        .json(&json!({"set": "2031-02-03T04:05:06Z"}))
        .send()
        .unwrap();
    let (_, body) = get(&c, &format!("{u}/posts/7"));
    assert!(
        body["served_at"]
            .as_str()
            .unwrap()
            .starts_with("2031-02-03T04:05"),
        "{body}"
    );
    assert_eq!(body["call"], 2, "the stub's second call: {body}");

    // JSON body conditions; the body in the answer (a list spliced whole).
    let r = c
        .post(format!("{u}/posts"))
        .json(&json!({"title": "Borrowing", "tags": ["a", "b"]}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["location"], "/posts/borrowing");
    let body: Value = r.json().unwrap();
    assert_eq!(body["title"], "Borrowing");
    assert_eq!(body["tags"], json!(["a", "b"]));
    assert_eq!(body["id"].as_str().unwrap().len(), 36);
    let r = c
        .post(format!("{u}/posts"))
        .json(&json!({"title": "Draft", "draft": true}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    let report: Value = r.json().unwrap();
    assert_eq!(report["nearest"][0]["stub"], "`create post`", "{report}");
    assert!(
        report["nearest"][0]["failed"]
            .as_str()
            .unwrap()
            .contains("$.draft: expected none"),
        "{report}"
    );

    // Form bodies.
    let r = c
        .post(format!("{u}/oauth/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", "app7")])
        .send()
        .unwrap();
    assert_eq!(r.json::<Value>().unwrap()["access_token"], "tok-app7");

    // A sequence: pending, pending, done, then done again.
    let states: Vec<Value> = (0..4)
        .map(|_| get(&c, &format!("{u}/exports/e1")).1["state"].clone())
        .collect();
    assert_eq!(
        states,
        [
            json!("pending"),
            json!("pending"),
            json!("done"),
            json!("done")
        ]
    );

    // A scenario: open until the checkout, paid after it.
    assert_eq!(get(&c, &format!("{u}/cart")).1["state"], "open");
    assert_eq!(
        c.post(format!("{u}/cart/checkout"))
            .send()
            .unwrap()
            .status(),
        202
    );
    assert_eq!(get(&c, &format!("{u}/cart")).1["state"], "paid");
    let (status, report) = get(&c, &format!("{u}/cart/checkout"));
    assert_eq!(status, 404, "GET is not the checkout's method: {report}");
    // The admin area lists the scenario state and resets it.
    let listing: Value = c
        .get(format!("{u}/__postie/stubs"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(listing["scenarios"]["cart"], "paid", "{listing}");
    c.post(format!("{u}/__postie/stubs/reset")).send().unwrap();
    assert_eq!(get(&c, &format!("{u}/cart")).1["state"], "open");

    // Header conditions, any method.
    let r = c
        .delete(format!("{u}/secure"))
        .header("X-Api-Key", "k1")
        .send()
        .unwrap();
    assert_eq!(r.text().unwrap(), "hello k1");
    let (status, report) = get(&c, &format!("{u}/secure"));
    assert_eq!(status, 404);
    assert_eq!(
        report["nearest"][0]["failed"], "header `x-api-key`: expected `k1`, got nothing",
        "{report}"
    );

    // Priority, then file order; `*` takes the rest of the path.
    assert_eq!(
        get(&c, &format!("{u}/files/special.txt")).1,
        json!("special")
    );
    assert_eq!(
        get(&c, &format!("{u}/files/a/b.txt")).1,
        json!({"file": "a/b.txt"})
    );

    // A delay is waited before the answer.
    let t = Instant::now();
    assert_eq!(get(&c, &format!("{u}/slow")).1, json!("late"));
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );

    // A template that cannot render names the stub.
    let (status, body) = get(&c, &format!("{u}/broken"));
    assert_eq!(status, 500);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("`broken template`"),
        "{body}"
    );

    // The file's faults are in force: the first call fails, the next answers.
    assert_eq!(get(&c, &format!("{u}/flaky")).0, 503);
    assert_eq!(get(&c, &format!("{u}/flaky")), (200, json!({"ok": true})));

    // The journal says which stub answered, and why nothing did.
    let journal: Value = c
        .get(format!("{u}/__postie/journal?limit=100"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let notes: Vec<String> = journal["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["note"].as_str().map(String::from))
        .collect();
    assert!(notes.iter().any(|n| n == "stub `rust posts`"), "{notes:?}");
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("no stub matched; nearest: `rust posts`: query `tag`")),
        "{notes:?}"
    );
}

#[test]
fn stub_files_reload_when_they_change_and_keep_working_when_broken() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.yaml");
    let one = |text: &str| {
        format!(
            "stubs:\n  - request: {{method: GET, path: /hello}}\n    response: {{text: {text}}}\n"
        )
    };
    std::fs::write(&file, one("first")).unwrap();
    let mock = start(&[&file]);
    let u = mock.url().to_string();
    let c = client();
    assert_eq!(get(&c, &format!("{u}/hello")).1, json!("first"));
    // The files are looked at once a second at most.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&file, one("second")).unwrap();
    assert_eq!(get(&c, &format!("{u}/hello")).1, json!("second"));
    // A file that no longer reads leaves the stubs as they were.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&file, "stubs:\n  - request: {method: GET\n").unwrap();
    assert_eq!(get(&c, &format!("{u}/hello")).1, json!("second"));
    // And the admin area says why.
    let r = c.post(format!("{u}/__postie/stubs/reload")).send().unwrap();
    assert_eq!(r.status(), 400);
    let why = r.text().unwrap();
    assert!(why.contains("s.yaml:3:1"), "{why}");
}

#[test]
fn a_collections_saved_examples_answer_as_stubs() {
    // A real Postman collection, imported; its saved examples become the mock's answers.
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/interop/postman/newman-echo-v2.postman_collection.json");
    let out = dir.path().join("echo.yaml");
    let r = crate::common::run_postie(
        dir.path(),
        &[
            "import",
            "postman",
            src.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert!(r.code <= 1, "{}", r.all());
    let mock = start(&[&out]);
    let u = mock.url().to_string();
    let c = client();
    // `Basic Auth` saved a 401 first and a 200 second: the first answers by default, either
    // when asked for by name or status, as Postman's mock servers do.
    let r = c.get(format!("{u}/basic-auth")).send().unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"Users\"");
    assert_eq!(r.text().unwrap(), "Unauthorized");
    let r = c
        .get(format!("{u}/basic-auth"))
        .header("x-mock-response-code", "200")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap(), json!({"authenticated": true}));
    let r = c
        .get(format!("{u}/basic-auth"))
        .header("x-mock-response-name", "200")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        get(&c, &format!("{u}/digest-auth")).1,
        json!({"authenticated": true})
    );
}

#[test]
fn stubs_answer_first_and_a_served_document_answers_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let stubs = dir.path().join("tags.yaml");
    std::fs::write(
        &stubs,
        "stubs:\n  - request: {method: GET, path: /api/tags}\n    response: {json: {tags: [stubbed]}}\n",
    )
    .unwrap();
    let spec = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/interop/openapi/realworld-conduit.openapi-3.1.yaml");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_postie"));
    cmd.args(["mock", "--port", "0", "--stubs"])
        .arg(&stubs)
        .arg("--spec")
        .arg(&spec)
        .current_dir(dir.path());
    let server = crate::common::start_server(cmd);
    let c = client();
    let u = &server.url;
    assert_eq!(
        get(&c, &format!("{u}/api/tags")),
        (200, json!({"tags": ["stubbed"]}))
    );
    let (status, body) = get(&c, &format!("{u}/api/articles"));
    assert_eq!(status, 200, "{body}");
    assert!(body.get("articles").is_some(), "{body}");
    // Not the pack: nothing of Constant Contact is served.
    assert_eq!(get(&c, &format!("{u}/v3/contacts")).0, 404);
}

#[test]
fn a_broken_stub_file_is_refused_where_it_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    for (text, says) in [
        (
            "stubs:\n  - request: {path: /a}\n    response: {status: 200}\n    respones: []\n",
            "s.yaml:",
        ),
        (
            "stubs:\n  - request: {path: a}\n    response: {}\n",
            "start with `/`",
        ),
        ("stubs:\n  - request: {path: /a}\n", "give `response`"),
        (
            "stubs:\n  - request: {path: /a, query: {x: {equals: 1, matches: b}}}\n    response: {}\n",
            "exactly one of",
        ),
        (
            "stubs:\n  - request: {path: /a}\n    response: {json: {x: \"<<oops(>>\"}}\n",
            "template",
        ),
        (
            "stubs:\n  - request: {path: /a}\n    response: {delay: soon}\n",
            "delay",
        ),
        (
            "stubs: []\nfaults:\n  - {route: GET /a, stauts: 503}\n",
            "stauts",
        ),
    ] {
        std::fs::write(dir.path().join("s.yaml"), text).unwrap();
        let r = crate::common::run_postie(
            dir.path(),
            &["mock", "--port", "0", "--stubs", "s.yaml"],
            &[],
            None,
        );
        assert_eq!(r.code, 2, "{text}: {}", r.all());
        assert!(r.stderr.contains(says), "{text}: {}", r.stderr);
        assert!(!r.stdout.contains("listening"), "{}", r.stdout);
    }
    // The unknown key is located.
    std::fs::write(
        dir.path().join("s.yaml"),
        "stubs:\n  - request: {path: /a}\n    response: {status: 200}\n    respones: []\n",
    )
    .unwrap();
    let r = crate::common::run_postie(
        dir.path(),
        &["mock", "--port", "0", "--stubs", "s.yaml"],
        &[],
        None,
    );
    assert!(r.stderr.contains("s.yaml:4:5"), "{}", r.stderr);
}
