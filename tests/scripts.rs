//! Scripts in collections: `pm.test`s become assertions in the output and the reports, variables
//! scripts set reach later requests, Postman's scopes hold under `compat: newman`, and
//! `setNextRequest`, `--data`, `--folder` drive the run as Newman would.

use httpmock::Method::{GET, POST};
use httpmock::MockServer;
use serde_json::json;

use crate::common::Project;

fn server() -> MockServer {
    let server = MockServer::start();
    server.mock(|when, then| {
        when.method(POST).path("/login");
        then.status(200)
            .json_body(json!({"token": "tok-123456", "user": {"id": 42}}));
    });
    server.mock(|when, then| {
        when.method(GET)
            .path("/users/42")
            .header("authorization", "Bearer tok-123456");
        then.status(200).json_body(json!({"id": 42, "name": "ann"}));
    });
    server.mock(|when, then| {
        when.method(GET).path("/items");
        then.status(200).json_body(json!({"items": [1, 2, 3]}));
    });
    server
}

#[test]
fn tests_and_variables_flow_through_a_native_collection() {
    let server = server();
    let p = Project::new(&format!(
        r#"name: scripted
variables:
  base: {}
requests:
  login:
    method: POST
    url: <<base>>/login
    script:
      post: |
        pm.test("logged in", () => pm.response.to.have.status(200));
        pm.environment.set("session", pm.response.json().token);
        console.log("user", pm.response.json().user.id);
  me:
    url: <<base>>/users/42
    headers:
      Authorization: Bearer <<session>>
    script:
      pre: |
        pm.variables.set("started", Date.now());
      post: |
        pm.test("is ann", () => pm.expect(pm.response.json().name).to.eql("ann"));
        pm.test("is bob", () => pm.expect(pm.response.json().name).to.eql("bob"));
"#,
        server.base_url()
    ));
    let r = p.postie(&[
        "run",
        "c.yaml",
        "--report",
        "json=out/r.json",
        "--report",
        "junit=out/r.xml",
    ]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("✓ logged in"), "{}", r.stdout);
    assert!(r.stdout.contains("│ user 42"), "{}", r.stdout);
    assert!(r.stdout.contains("✗ is bob"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("test \"is bob\" failed: expected 'ann' to deeply equal 'bob'"),
        "{}",
        r.stdout
    );
    // The token a script set is a secret (named like one): masked everywhere.
    assert!(!r.all().contains("tok-123456"), "{}", r.all());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.path("out/r.json")).unwrap()).unwrap();
    let steps = &report["flows"][0]["steps"];
    assert_eq!(steps[0]["assertions"][0]["description"], "logged in");
    assert_eq!(steps[0]["console"][0]["text"], "user 42");
    assert_eq!(steps[1]["assertions"][1]["passed"], false);
    let junit = std::fs::read_to_string(p.path("out/r.xml")).unwrap();
    assert!(
        junit.contains("<testcase name=\"is bob\" classname=\"scripted.all.me\""),
        "{junit}"
    );
    assert!(!junit.contains("tok-123456"));
}

#[test]
fn script_errors_name_the_script_line_and_limits_hold() {
    let server = server();
    let p = Project::new(&format!(
        r#"name: broken
script_timeout: 300ms
variables:
  base: {}
requests:
  items:
    url: <<base>>/items
    script:
      post: |
        const d = pm.response.json();

        d.nothing.here();
  spin:
    url: <<base>>/items
    script:
      post: "while (true) {{}}"
"#,
        server.base_url()
    ));
    let r = p.postie(&["run", "c.yaml"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout
            .contains("request `items` script.post line 3: TypeError"),
        "{}",
        r.stdout
    );
    let r = p.postie(&["send", "c.yaml", "spin"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("ran longer than 300ms"), "{}", r.all());
}

#[test]
fn newman_scopes_next_request_data_and_folders() {
    let server = MockServer::start();
    let mut seen = server.mock(|when, then| {
        when.method(GET).path("/echo");
        then.status(200).json_body(json!({"ok": true}));
    });
    let p = Project::new(&format!(
        r#"name: newmanish
compat: newman
variables:
  base: {}
  token: from-collection
environments:
  dev:
    token: stale-env
folders:
  Second:
    script:
      pre: |
        pm.variables.set("folder_pre", pm.info.requestName);
requests:
  first:
    title: First one
    url: <<base>>/echo
    query:
      row: <<user>>
    script:
      post: |
        pm.globals.set("token", "global-new");
        pm.test("stale environment value shadows the global", () =>
          pm.expect(pm.variables.get("token")).to.equal("stale-env"));
        pm.test("data row", () => pm.expect(pm.iterationData.get("user")).to.equal(data.user));
        if (pm.info.iteration === 0 && !pm.globals.get("looped")) {{
          pm.globals.set("looped", "yes");
          pm.execution.setNextRequest("First one");
        }}
  second:
    folder: Second
    url: <<base>>/echo
    query:
      t: <<token>>
    script:
      post: |
        pm.test("folder script ran first", () => pm.expect(pm.variables.get("folder_pre")).to.equal("second"));
        pm.test("fails but the run goes on", () => pm.expect(1).to.equal(2));
  third:
    url: <<base>>/echo
    script:
      pre: |
        postman.setNextRequest(null);
  never:
    url: <<base>>/echo
"#,
        server.base_url()
    ));
    std::fs::write(p.path("rows.csv"), "user\nann\nbob\n").unwrap();
    let r = p.postie(&[
        "run", "c.yaml", "--env", "dev", "--data", "rows.csv", "--fresh",
    ]);
    // The failing test fails the run, but Newman's way every request still goes.
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("iteration 2/2"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("✓ stale environment value shadows the global"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("✓ data row"), "{}", r.stdout);
    assert!(
        r.stdout.contains("✓ folder script ran first"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("setNextRequest(null)"), "{}", r.stdout);
    // first ×2 (jump back) + second + third in iteration 1; first + second + third in 2.
    assert_eq!(seen.calls(), 7, "{}", r.stdout);
    assert!(!r.stdout.contains("never"), "{}", r.stdout);
    seen.delete();
    let seen = server.mock(|when, then| {
        when.method(GET).path("/echo");
        then.status(200).json_body(json!({"ok": true}));
    });
    let r = p.postie(&["run", "c.yaml", "--folder", "Second", "--var", "user=x"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(seen.calls(), 1, "{}", r.stdout);
    let r = p.postie(&["run", "c.yaml", "--folder", "Secnd"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("did you mean `Second`"), "{}", r.stderr);
}

#[test]
fn validate_finds_script_syntax_errors_at_their_line() {
    let p = Project::new(
        "name: v\nrequests:\n  a:\n    url: http://127.0.0.1:9/x?t=<<token>>\n    script:\n      post: |\n        pm.environment.set(\"token\", 1);\n        if (x {\n",
    );
    let r = p.postie(&["validate", "c.yaml"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("c.yaml:8:9: script line 2: SyntaxError"),
        "{}",
        r.stderr
    );
    // Nothing is sent from a collection whose script does not parse.
    let r = p.postie(&["send", "c.yaml", "a"]);
    assert_eq!(r.code, 2, "{}", r.all());
}
