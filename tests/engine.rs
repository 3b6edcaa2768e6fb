//! The engine against httpmock servers: chaining, state, when/polling, exit codes, reports, secrets.

use httpmock::Method::{GET, POST, PUT};
use httpmock::MockServer;
use serde_json::json;

use crate::common::{Project, closed_port};

const SECRET: &str = "sup3r-s3cret-client-value";
const ACCESS: &str = "acc-TOKEN-0123456789";
const REFRESH: &str = "ref-TOKEN-9876543210";

fn chain_collection(base: &str) -> String {
    format!(
        r#"name: chain
variables:
  base: {base}
  client_id: app-1
  client_secret: {{value: "<<env.CC_CLIENT_SECRET>>", secret: true}}
  email: ada@example.com
requests:
  authorize:
    url: <<base>>/authorize
    query: {{client_id: "<<client_id>>", state: xyz}}
  token:
    method: POST
    url: <<base>>/token
    auth: {{basic: {{user: "<<client_id>>", password: "<<client_secret>>"}}}}
    form: {{grant_type: authorization_code, code: "<<code>>"}}
    assert:
      - status: 200
  find:
    url: <<base>>/contacts
    query: {{email: "<<email>>"}}
    auth: {{bearer: "<<access_token>>"}}
  update:
    method: PUT
    url: <<base>>/contacts/<<contact_id>>
    auth: {{bearer: "<<access_token>>"}}
    json: {{email: "<<email>>", source: "<<find.body.source>>", status_was: "<<find.status>>"}}
flows:
  main:
    steps: [authorize, token, find, update]
"#
    )
}

fn chain_mocks(server: &MockServer) -> Vec<httpmock::Mock<'_>> {
    let authorize = server.mock(|when, then| {
        when.method(GET)
            .path("/authorize")
            .query_param("client_id", "app-1");
        then.status(302).header(
            "location",
            "http://localhost:8910/cb?code=CODE-42&state=xyz",
        );
    });
    let token = server.mock(|when, then| {
        when.method(POST)
            .path("/token")
            .header("authorization", format!("Basic {}", base64_basic("app-1", SECRET)))
            .form_urlencoded_tuple("code", "CODE-42");
        then.status(200).json_body(json!({"access_token": ACCESS, "refresh_token": REFRESH, "token_type": "Bearer", "expires_in": 86400}));
    });
    let find = server.mock(|when, then| {
        when.method(GET)
            .path("/contacts")
            .query_param("email", "ada@example.com")
            .header("authorization", format!("Bearer {ACCESS}"));
        then.status(200)
            .json_body(json!({"contact_id": "c-77", "source": "lookup"}));
    });
    let update = server.mock(|when, then| {
        when.method(PUT)
            .path("/contacts/c-77")
            .header("authorization", format!("Bearer {ACCESS}"))
            .json_body(json!({"email": "ada@example.com", "source": "lookup", "status_was": 200}));
        then.status(200).json_body(json!({"ok": true}));
    });
    vec![authorize, token, find, update]
}

fn base64_basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
}

#[test]
fn flow_chains_tokens_ids_and_redirect_params_without_captures() {
    let server = MockServer::start();
    let mocks = chain_mocks(&server);
    let p = Project::new(&chain_collection(&server.base_url()));
    let run = p.postie_env(&["run", "c.yaml"], &[("CC_CLIENT_SECRET", SECRET)]);
    assert_eq!(run.code, 0, "{}", run.all());
    for m in &mocks {
        m.assert_calls(1);
    }
    assert!(
        run.stdout.contains("set code=CODE-42 state=xyz"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("access_token=(redacted)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("4 passed, 0 failed"), "{}", run.stdout);
}

#[test]
fn state_carries_between_invocations_and_vars_masks() {
    let server = MockServer::start();
    let mocks = chain_mocks(&server);
    let p = Project::new(&chain_collection(&server.base_url()));
    let env = [("CC_CLIENT_SECRET", SECRET)];
    assert_eq!(p.postie_env(&["send", "c.yaml", "authorize"], &env).code, 0);
    assert_eq!(p.postie_env(&["send", "c.yaml", "token"], &env).code, 0);
    // A separate process, tomorrow: the token is still there.
    let run = p.postie_env(&["send", "c.yaml", "find"], &env);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("\"contact_id\": \"c-77\""),
        "{}",
        run.stdout
    );
    mocks[2].assert_calls(1);
    let state = p.path(".postie/c.yaml.state.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(
        std::fs::read_to_string(p.path(".postie/.gitignore"))
            .unwrap()
            .contains('*')
    );
    let vars = p.postie_env(&["vars", "c.yaml"], &env);
    assert_eq!(vars.code, 0);
    assert!(
        vars.stdout.contains("contact_id = c-77  (from find)"),
        "{}",
        vars.stdout
    );
    assert!(
        vars.stdout.contains("access_token = (redacted)"),
        "{}",
        vars.stdout
    );
    for s in [SECRET, ACCESS, REFRESH] {
        assert!(
            !vars.all().contains(s),
            "{s} leaked in vars: {}",
            vars.all()
        );
    }
    // --fresh forgets it all: the token is undefined again and nothing is sent.
    let fresh = p.postie_env(&["send", "c.yaml", "find", "--fresh"], &env);
    assert_eq!(fresh.code, 2, "{}", fresh.all());
    assert!(
        fresh.stderr.contains("`<<access_token>>` is undefined"),
        "{}",
        fresh.stderr
    );
    mocks[2].assert_calls(1);
}

#[test]
fn undefined_variable_fails_before_anything_is_sent_and_names_its_producer() {
    let server = MockServer::start();
    let any = server.mock(|_, then| {
        then.status(200);
    });
    let p = Project::new(&chain_collection(&server.base_url()));
    // The flow's first step needs nothing; `find` alone needs a token nobody has yet.
    let run = p.postie_env(&["send", "c.yaml", "find"], &[("CC_CLIENT_SECRET", SECRET)]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr
            .contains("request `find`, auth.bearer: `<<access_token>>` is undefined"),
        "{}",
        run.stderr
    );
    // A missing environment variable is reported with where to set it, before sending.
    let run = p.postie(&["run", "c.yaml", "--from", "token"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.all().contains("CC_CLIENT_SECRET"), "{}", run.all());
    assert_eq!(any.calls(), 0);
}

#[test]
fn when_skips_and_runs_and_polling_counts_attempts() {
    let server = MockServer::start();
    let lookup = server.mock(|when, then| {
        when.method(GET).path("/lookup");
        then.status(200).json_body(json!({"contacts": []}));
    });
    let create = server.mock(|when, then| {
        when.method(POST).path("/create");
        then.status(201).json_body(json!({"activity_id": "a-1"}));
    });
    let update = server.mock(|when, then| {
        when.method(PUT).path("/update");
        then.status(200);
    });
    let poll = server.mock(|when, then| {
        when.method(GET).path("/activities/a-1");
        then.status(200).json_body(json!({"state": "processing"}));
    });
    let col = format!(
        r#"name: w
variables: {{base: "{}"}}
requests:
  lookup: {{url: "<<base>>/lookup"}}
  create: {{method: POST, url: "<<base>>/create"}}
  update: {{method: PUT, url: "<<base>>/update"}}
  poll: {{url: "<<base>>/activities/<<activity_id>>"}}
flows:
  main:
    steps:
      - lookup
      - request: create
        when: lookup.body.contacts | length == 0
      - request: update
        when: lookup.body.contacts | length > 0
      - request: poll
        until: poll.body.state == 'completed'
        interval: 10ms
        max_attempts: 3
"#,
        server.base_url()
    );
    let p = Project::new(&col);
    let run = p.postie(&["run", "c.yaml"]);
    assert_eq!(run.code, 1, "{}", run.all());
    lookup.assert_calls(1);
    create.assert_calls(1);
    update.assert_calls(0);
    poll.assert_calls(3);
    assert!(
        run.stdout
            .contains("- update skipped (when: lookup.body.contacts | length > 0 is false)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("until: `poll.body.state == 'completed'` still false after 3 attempts"),
        "{}",
        run.stdout
    );
}

#[test]
fn polling_stops_as_soon_as_the_condition_holds() {
    let server = MockServer::start();
    let poll = server.mock(|when, then| {
        when.method(GET).path("/a");
        then.status(200).json_body(json!({"state": "completed"}));
    });
    let col = format!(
        "name: p\nrequests:\n  poll: {{url: \"{}/a\"}}\nflows:\n  f:\n    steps:\n      - request: poll\n        until: poll.body.state == 'completed'\n        interval: 10ms\n        max_attempts: 5\n",
        server.base_url()
    );
    let run = Project::new(&col).postie(&["run", "c.yaml"]);
    assert_eq!(run.code, 0, "{}", run.all());
    poll.assert_calls(1);
}

#[test]
fn exit_codes() {
    let server = MockServer::start();
    server.mock(|when, then| {
        when.path("/ok");
        then.status(200).json_body(json!({"action": "created"}));
    });
    let col = |url: String, asserts: &str| {
        format!(
            "name: e\nrequests:\n  r:\n    url: \"{url}\"\n    assert:\n{asserts}\nflows:\n  f:\n    steps: [r]\n"
        )
    };
    let ok = Project::new(&col(
        format!("{}/ok", server.base_url()),
        "      - status: 200\n      - jsonpath: $.action\n        equals: created",
    ));
    assert_eq!(ok.postie(&["run", "c.yaml"]).code, 0);
    let failing = Project::new(&col(
        format!("{}/ok", server.base_url()),
        "      - jsonpath: $.action\n        equals: updated",
    ));
    let run = failing.postie(&["run", "c.yaml"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stdout
            .contains("assertion failed: $.action equals \"updated\" (got \"created\")"),
        "{}",
        run.stdout
    );
    let template = Project::new(&col(
        "http://127.0.0.1:1/<<nope>>".into(),
        "      - status: 200",
    ));
    let run = template.postie(&["run", "c.yaml"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let yaml = Project::new("name: x\nrequests:\n  r:\n    url: a\n    captrue: {}\n");
    let run = yaml.postie(&["validate", "c.yaml"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("c.yaml:5:5: requests.r: unknown field `captrue`"),
        "{}",
        run.stderr
    );
    let net = Project::new(&col(
        format!("http://127.0.0.1:{}/x", closed_port()),
        "      - status: 200",
    ));
    let run = net.postie(&["run", "c.yaml"]);
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(run.stdout.contains("could not connect"), "{}", run.stdout);
}

#[test]
fn reports_are_well_formed_and_secrets_never_leak() {
    let server = MockServer::start();
    let _mocks = chain_mocks(&server);
    let mut col = chain_collection(&server.base_url());
    // Make the last step fail so the failure text (which quotes the body) is in the reports too.
    col = col.replace("    json: {email:", "    assert:\n      - jsonpath: $.leak\n        equals: \"<<access_token>>\"\n    json: {email:");
    let p = Project::new(&col);
    let run = p.postie_env(
        &[
            "run",
            "c.yaml",
            "-v",
            "--report",
            "junit=out.xml",
            "--report",
            "json=out.json",
        ],
        &[("CC_CLIENT_SECRET", SECRET)],
    );
    assert_eq!(run.code, 1, "{}", run.all());
    let json_text = std::fs::read_to_string(p.path("out.json")).unwrap();
    let report: serde_json::Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(report["exit_code"], 1);
    assert_eq!(report["flows"][0]["steps"].as_array().unwrap().len(), 4);
    assert_eq!(
        report["flows"][0]["steps"][1]["set"]["access_token"],
        "(redacted)"
    );
    assert_eq!(
        report["flows"][0]["steps"][3]["failure"]["kind"],
        "assertion"
    );
    let xml = std::fs::read_to_string(p.path("out.xml")).unwrap();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut cases, mut failures) = (0, 0);
    loop {
        match reader.read_event().expect("well-formed JUnit XML") {
            quick_xml::events::Event::Eof => break,
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                let name = e.name();
                if name.as_ref() == "testcase" {
                    cases += 1;
                } else if name.as_ref() == "failure" {
                    failures += 1;
                }
            }
            _ => {}
        }
    }
    assert_eq!((cases, failures), (4, 1), "{xml}");
    let vars = p.postie_env(&["vars", "c.yaml"], &[("CC_CLIENT_SECRET", SECRET)]);
    let state_listing = vars.all();
    for secret in [SECRET, ACCESS, REFRESH, &base64_basic("app-1", SECRET)] {
        assert!(
            !run.stdout.contains(secret),
            "{secret} in stdout:\n{}",
            run.stdout
        );
        assert!(
            !run.stderr.contains(secret),
            "{secret} in stderr:\n{}",
            run.stderr
        );
        assert!(!json_text.contains(secret), "{secret} in JSON report");
        assert!(!xml.contains(secret), "{secret} in JUnit report");
        assert!(!state_listing.contains(secret), "{secret} in vars");
    }
    // ...while the state file (0600) does hold the token, so the next run can use it.
    assert!(
        std::fs::read_to_string(p.path(".postie/c.yaml.state.json"))
            .unwrap()
            .contains(ACCESS)
    );
}

#[test]
fn send_prints_headers_with_v_and_masks_authorization() {
    let server = MockServer::start();
    let _mocks = chain_mocks(&server);
    let p = Project::new(&chain_collection(&server.base_url()));
    let env = [("CC_CLIENT_SECRET", SECRET)];
    let run = p.postie_env(&["send", "c.yaml", "authorize", "-v"], &env);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.starts_with("HTTP 302 Found"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("location: http://localhost:8910/cb?code=CODE-42&state=xyz"),
        "{}",
        run.stdout
    );
    let run = p.postie_env(&["send", "c.yaml", "token"], &env);
    assert!(
        run.stdout.contains("\"access_token\": \"(redacted)\""),
        "{}",
        run.stdout
    );
}

#[test]
fn bundled_collection_validates() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = crate::common::run_postie(
        root,
        &["validate", "collections/constant_contact.yaml"],
        &[],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("ok — 32 requests"), "{}", run.stdout);
}

#[test]
fn the_documented_example_collection_validates() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/collections.md")).unwrap();
    let yaml = doc
        .split("```yaml\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let p = Project::new(yaml);
    let run = p.postie(&["validate", "c.yaml"]);
    assert_eq!(run.code, 0, "{}", run.all());
}

#[test]
fn a_typo_in_a_later_step_stops_the_flow_before_anything_is_sent() {
    let server = MockServer::start();
    let any = server.mock(|_, then| {
        then.status(200).json_body(json!({"ok": true}));
    });
    let col = format!(
        "name: t\nvariables:\n  base: \"{}\"\n  access_token: abc\nrequests:\n  first: {{url: \"<<base>>/a\"}}\n  second:\n    url: \"<<base>>/b\"\n    auth: {{bearer: \"<<acess_token>>\"}}\nflows:\n  f:\n    steps: [first, second]\n",
        server.base_url()
    );
    let run = Project::new(&col).postie(&["run", "c.yaml"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("`<<acess_token>>` is defined nowhere, set by no capture and used only here; did you mean `access_token`?"),
        "{}",
        run.stderr
    );
    // validate reports it too, and lists what responses are expected to provide.
    let p = Project::new(
        &col.replace("acess_token", "access_token")
            .replace("<<base>>/b", "<<base>>/b/<<item_id>>"),
    );
    let v = p.postie(&["validate", "c.yaml"]);
    assert_eq!(v.code, 0, "{}", v.all());
    assert!(
        v.stdout
            .contains("expected from responses: item_id (first used by second)"),
        "{}",
        v.stdout
    );
    assert_eq!(any.calls(), 0);
}

#[test]
fn missing_environment_choice_is_explained() {
    let col = "name: e\nenvironments:\n  staging: {base: 'http://127.0.0.1:1'}\n  live: {base: 'http://127.0.0.1:2'}\nrequests:\n  r: {url: '<<base>>/x'}\nflows:\n  f: {steps: [r]}\n";
    let p = Project::new(col);
    let run = p.postie(&["run", "c.yaml"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stdout.contains(
            "`<<base>>` is undefined — environments staging, live define it; choose one with --env"
        ),
        "{}",
        run.stdout
    );
    let run = p.postie(&["run", "c.yaml", "--env", "prod"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains(
            "environment `prod` is not defined in the collection (available: staging, live)"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn dot_env_beside_the_collection_supplies_secrets_and_the_process_env_wins() {
    let server = MockServer::start();
    let mocks = chain_mocks(&server);
    let p = Project::new(&chain_collection(&server.base_url()));
    std::fs::write(
        p.path(".env"),
        format!("# local secrets\nexport CC_CLIENT_SECRET=\"{SECRET}\"\n"),
    )
    .unwrap();
    assert_eq!(p.postie(&["send", "c.yaml", "authorize"]).code, 0);
    let run = p.postie(&["send", "c.yaml", "token"]);
    assert_eq!(run.code, 0, "{}", run.all());
    mocks[1].assert_calls(1);
    let run = p.postie_env(
        &["send", "c.yaml", "token"],
        &[("CC_CLIENT_SECRET", "from-the-process")],
    );
    assert_eq!(
        run.code,
        1,
        "the process environment wins, and that secret is wrong: {}",
        run.all()
    );
    assert!(!run.all().contains("from-the-process"));
}

#[test]
fn jwt_command_decodes_from_an_argument_or_stdin() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let token = format!(
        "{}.{}.sig",
        b64(r#"{"alg":"RS256","kid":"k"}"#),
        b64(r#"{"exp":4102444800,"scp":["contact_data"],"sub":"a@b.io"}"#)
    );
    let dir = tempfile::tempdir().unwrap();
    let run = crate::common::run_postie(dir.path(), &["jwt", &token], &[], None);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("exp: 2100-01-01T00:00:00Z (in ")
            && run.stdout.contains("scopes: contact_data"),
        "{}",
        run.stdout
    );
    let run = crate::common::run_postie(
        dir.path(),
        &["jwt", "-"],
        &[],
        Some(&format!("Bearer {token}\n")),
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("\"sub\": \"a@b.io\""), "{}", run.stdout);
    let run = crate::common::run_postie(dir.path(), &["jwt", "not-a-jwt"], &[], None);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("not a JWT"), "{}", run.stderr);
}
