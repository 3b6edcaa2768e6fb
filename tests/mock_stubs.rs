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

/// A header value made from the request that no header may carry (a line break decoded from the
/// path) is left out; the rest of the answer is sent as it is.
#[test]
fn a_header_a_request_made_unsendable_is_left_out_and_the_answer_kept() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blog.yaml");
    std::fs::write(&file, STUBS).unwrap();
    let mock = start(&[&file]);
    let r = client()
        .get(format!("{}/posts/x%0Ay", mock.url()))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("x-post").is_none(), "{:?}", r.headers());
    assert_eq!(r.headers().get("x-asked").unwrap(), "all");
    let body: Value = r.json().unwrap();
    assert_eq!(body["title"], "Post x\ny", "{body}");
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
    // The front's own errors are in the engine's shape too, not the vendor pack's.
    let r = c
        .post(format!("{u}/api/articles"))
        .header("content-type", "application/json")
        .body(vec![b' '; 33 * 1024 * 1024])
        .send()
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
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

/// The API the recording talks to: a real local server that issues random tokens, creates posts
/// with new ids, and echoes the bearer it was sent (so a leak would show in the recording).
const TARGET: &str = r#"
stubs:
  - request:
      method: POST
      path: /oauth/token
      headers: {authorization: {matches: "^Basic "}}
      body: [{form: grant_type, equals: password}]
    response:
      json: {access_token: "<<nonce(32)>>", refresh_token: "<<nonce(32)>>", token_type: Bearer, expires_in: 3600}
  - request:
      method: POST
      path: /posts
      headers: {authorization: {matches: "^Bearer ."}}
    response:
      status: 201
      json: {id: "<<random_int(100, 999)>>", title: "<<body.title>>", seen_with: "<<headers.authorization>>"}
  - request: {method: GET, path: "/posts/{id}", headers: {authorization: {present: true}}}
    response: {json: {id: "<<path.id | int>>", title: hello}}
  - request: {method: GET, path: "/posts/{id}/comments"}
    response: {status: 404, json: {error: no comments}}
"#;

const COLLECTION: &str = r#"
name: blog
variables:
  base_url: http://127.0.0.1:9
  client_secret: {value: "<<env.BLOG_SECRET>>", secret: true}
  user_password: {value: "<<env.BLOG_PASSWORD>>", secret: true}
requests:
  login:
    method: POST
    url: <<base_url>>/oauth/token
    auth: {basic: {user: blog-app, password: "<<client_secret>>"}}
    form: {grant_type: password, username: ann, password: "<<user_password>>"}
    assert:
      - status: 200
      - {jsonpath: $.access_token, exists: true}
  create_post:
    method: POST
    url: <<base_url>>/posts
    auth: {bearer: "<<access_token>>"}
    json: {title: Recorded}
    capture:
      post_id: $.id
    assert:
      - status: 201
      - {jsonpath: $.title, equals: Recorded}
  get_post:
    url: <<base_url>>/posts/<<post_id>>
    auth: {bearer: "<<access_token>>"}
    assert:
      - status: 200
      - {jsonpath: $.id, equals: "<<post_id>>"}
  comments:
    url: <<base_url>>/posts/<<post_id>>/comments
    assert:
      - status: 404
flows:
  main:
    steps: [login, create_post, get_post, comments]
"#;

#[test]
fn a_run_recorded_through_the_proxy_replays_with_the_same_results_and_no_credential_on_disk() {
    record_then_replay(true);
}

#[test]
fn a_run_recorded_by_run_record_replays_with_the_same_results_and_no_credential_on_disk() {
    record_then_replay(false);
}

/// Records the collection's run against a real local server (through `postie record`, or with
/// `run --record`), stops the server, and runs the collection again against the replay.
fn record_then_replay(by_proxy: bool) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("target.yaml"), TARGET).unwrap();
    std::fs::write(dir.path().join("blog.yaml"), COLLECTION).unwrap();
    let env = [
        ("BLOG_SECRET", "blog-s3cret-Qx81"),
        ("BLOG_PASSWORD", "ann-pa55-Zk2"),
    ];
    let target = start(&[&dir.path().join("target.yaml")]);

    let run = |base: &str, report: &str, extra: &[&str]| {
        let base = format!("base_url={base}");
        let report = format!("json={report}");
        let mut args = vec![
            "run",
            "blog.yaml",
            "--flow",
            "main",
            "--fresh",
            "--var",
            &base,
            "--report",
            &report,
        ];
        args.extend_from_slice(extra);
        crate::common::run_postie(dir.path(), &args, &env, None)
    };
    let first = if by_proxy {
        // Record: the collection runs through the proxy.
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_postie"));
        cmd.args([
            "record",
            "--port",
            "0",
            "--target",
            target.url(),
            "-o",
            "rec.yaml",
        ])
        .current_dir(dir.path());
        let proxy = crate::common::start_server(cmd);
        let r = run(&proxy.url, "first.json", &[]);
        // The file is written as exchanges arrive (within a fraction of a second)...
        let file = dir.path().join("rec.yaml");
        let has_all = || {
            std::fs::read_to_string(&file)
                .unwrap_or_default()
                .contains(": 4 exchanges.")
        };
        let t = Instant::now();
        while !has_all() && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            has_all(),
            "{}",
            std::fs::read_to_string(&file).unwrap_or_default()
        );
        // ...and finished cleanly on SIGTERM.
        let stopped = std::process::Command::new("kill")
            .args(["-TERM", &proxy.pid().to_string()])
            .status()
            .unwrap();
        assert!(stopped.success());
        std::thread::sleep(Duration::from_millis(300));
        assert!(has_all());
        r
    } else {
        run(target.url(), "first.json", &["--record", "rec.yaml"])
    };
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    drop(target);

    let recorded = std::fs::read_to_string(dir.path().join("rec.yaml")).unwrap();
    // Every credential that crossed the wire is off disk: the client secret and the password
    // (sent in Basic auth and a form), and every token the target issued (from the run's state).
    let mut secrets = vec![
        "blog-s3cret-Qx81".to_string(),
        "ann-pa55-Zk2".to_string(),
        base64_of("blog-app:blog-s3cret-Qx81"),
    ];
    let state = std::fs::read_to_string(dir.path().join(".postie/blog.yaml.state.json"))
        .unwrap_or_default();
    for key in ["access_token", "refresh_token"] {
        for m in state.match_indices(&format!("\"{key}\":\"")) {
            let rest = &state[m.0 + key.len() + 4..];
            let token = &rest[..rest.find('"').unwrap()];
            if token.len() >= 16 {
                secrets.push(token.to_string());
            }
        }
    }
    assert!(secrets.len() >= 4, "tokens from the state: {state}");
    for s in &secrets {
        assert!(
            !recorded.contains(s.as_str()),
            "{s} is on disk:\n{recorded}"
        );
    }
    assert!(recorded.contains("REDACTED"), "{recorded}");

    // Replay: the target is gone; the recording answers, with fresh tokens.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_postie"));
    cmd.args(["mock", "--port", "0", "--stubs", "rec.yaml"])
        .current_dir(dir.path());
    let replay = crate::common::start_server(cmd);
    let second = run(&replay.url, "second.json", &[]);
    assert_eq!(second.code, 0, "{}\n{recorded}", second.all());
    // Per step: the request, its status, and each assertion's description and outcome.
    type Step = (String, u64, Vec<(String, bool)>);
    let statuses = |report: &str| -> Vec<Step> {
        let text = std::fs::read_to_string(dir.path().join(report)).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        v["flows"][0]["steps"]
            .as_array()
            .unwrap_or_else(|| panic!("{text}"))
            .iter()
            .map(|s| {
                let asserts = s["assertions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| {
                        let d = a["description"].as_str().unwrap_or("").to_string();
                        // The post id differs between the runs; the check does not.
                        let d = d.split(" equals ").next().unwrap_or("").to_string();
                        (d, a["passed"].as_bool().unwrap_or(false))
                    })
                    .collect();
                (
                    s["request"].as_str().unwrap_or("").to_string(),
                    s["status"].as_u64().unwrap_or(0),
                    asserts,
                )
            })
            .collect()
    };
    assert_eq!(statuses("first.json"), statuses("second.json"));
    assert_eq!(statuses("second.json").len(), 4, "{}", second.all());
}

fn base64_of(s: &str) -> String {
    use std::io::Write as _;
    let mut out = Vec::new();
    let _ = write!(out, "{s}");
    let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for chunk in out.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                text.push(table[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                text.push('=');
            }
        }
    }
    text
}

/// The stub file docs/mock.md shows is one a user copies: it must load, and answer as it says.
#[test]
fn the_stub_file_in_the_docs_loads_and_answers_as_it_says() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/mock.md")).unwrap();
    let section = &doc[doc.find("## Stub files").expect("the section")..];
    let block = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("the section's first yaml block");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blog.yaml");
    std::fs::write(&path, block).unwrap();
    let server = start(&[&path]);
    let c = client();
    let r = c
        .get(format!("{}/posts/7?fields=title", server.url()))
        .header("accept", "application/json")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-post"], "7");
    let body: Value = r.json().unwrap();
    assert_eq!(body["id"], "7");
    let post = |body: Value| {
        let r = c
            .post(format!("{}/posts", server.url()))
            .json(&body)
            .send()
            .unwrap();
        (
            r.status().as_u16(),
            r.json::<Value>().unwrap_or(Value::Null),
        )
    };
    let (status, created) = post(json!({"title": "hello world"}));
    assert_eq!((status, &created["title"]), (201, &json!("hello world")));
    assert_eq!(post(json!({"title": "hello", "draft": true})).0, 404);
    assert_eq!(post(json!({"title": " hello"})).0, 404);
    let token: Value = c
        .post(format!("{}/oauth/token", server.url()))
        .form(&[("grant_type", "client_credentials"), ("client_id", "app")])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(token["access_token"], "tok-app");
    let (_, first) = get(&c, &format!("{}/exports/9", server.url()));
    let (_, second) = get(&c, &format!("{}/exports/9", server.url()));
    assert_eq!(
        (first, second),
        (json!({"state": "pending"}), json!({"state": "done"}))
    );
}
