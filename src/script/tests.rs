use super::*;
use serde_json::json;

fn input(event: &'static str, response: Option<ResponseView>) -> Input {
    let mut vars = Layers::default();
    vars.environment
        .insert("base".into(), json!("http://127.0.0.1:1"));
    vars.environment.insert("token".into(), json!("stale"));
    vars.globals.insert("token".into(), json!("global"));
    vars.collection.insert("n".into(), json!(3));
    Input {
        event,
        environment_name: Some("dev".into()),
        iteration: 0,
        iteration_count: 1,
        vars,
        request: Some(RequestView {
            id: "create_user".into(),
            name: "Create user".into(),
            method: "POST".into(),
            url: "http://127.0.0.1:1/users?x=1".into(),
            headers: vec![Header {
                key: "Content-Type".into(),
                value: "application/json".into(),
            }],
            body: Some("{\"a\":1}".into()),
            body_mode: Some("raw".into()),
        }),
        response,
    }
}

fn response(code: u16, body: &str) -> ResponseView {
    ResponseView {
        code,
        reason: if code == 200 { "OK" } else { "Not Found" }.into(),
        headers: vec![
            Header {
                key: "Content-Type".into(),
                value: "application/json; charset=utf-8".into(),
            },
            Header {
                key: "Set-Cookie".into(),
                value: "sid=abc; Path=/; HttpOnly".into(),
            },
        ],
        body: body.into(),
        response_time: 12,
        size: body.len(),
        cookies: vec![],
    }
}

fn run1(i: &Input, code: &str) -> Output {
    run(
        i,
        &[Source {
            label: "request `create_user` test script".into(),
            code,
        }],
        &Limits::default(),
    )
}

#[test]
fn tests_expectations_and_variables() {
    let out = run1(
        &input(
            "test",
            Some(response(200, r#"{"id":7,"user":{"name":"ann"}}"#)),
        ),
        r#"
pm.test("status", function () { pm.response.to.have.status(200); });
pm.test("fails", () => { pm.expect(pm.response.code).to.be.oneOf([201, 202]); });
pm.test("json", () => {
  const d = pm.response.json();
  pm.expect(d).to.have.property('id', 7);
  pm.expect(d.user).to.eql({name: 'ann'});
  pm.response.to.be.ok;
  pm.response.to.be.json;
  pm.response.to.have.header('content-type');
  pm.response.to.have.jsonBody('user.name', 'ann');
});
pm.environment.set("user_id", pm.response.json().id);
pm.collectionVariables.set("seen", true);
pm.globals.unset("token");
tests["legacy ok"] = responseCode.code === 200;
tests["legacy bad"] = JSON.parse(responseBody).id === 8;
postman.setEnvironmentVariable("n", 5);
console.log("token is", pm.variables.get("token"), {a: 1});
pm.test("cookie", () => pm.expect(pm.cookies.get('sid')).to.equal('abc'));
pm.test("replaceIn", () => pm.expect(pm.variables.replaceIn('{{base}}/x/{{nope}}')).to.equal('http://127.0.0.1:1/x/{{nope}}'));
"#,
    );
    assert_eq!(out.errors, vec![], "{out:?}");
    let names: Vec<(&str, bool)> = out
        .tests
        .iter()
        .map(|t| (t.name.as_str(), t.passed))
        .collect();
    assert_eq!(
        names,
        vec![
            ("status", true),
            ("fails", false),
            ("json", true),
            ("cookie", true),
            ("replaceIn", true),
            ("legacy ok", true),
            ("legacy bad", false),
        ]
    );
    assert_eq!(
        out.tests[1].error.as_deref(),
        Some("expected 200 to be one of [ 201, 202 ]")
    );
    assert_eq!(
        out.ops,
        vec![
            VarOp {
                layer: "environment".into(),
                op: "set".into(),
                key: Some("user_id".into()),
                value: Some(json!(7))
            },
            VarOp {
                layer: "collection".into(),
                op: "set".into(),
                key: Some("seen".into()),
                value: Some(json!(true))
            },
            VarOp {
                layer: "globals".into(),
                op: "unset".into(),
                key: Some("token".into()),
                value: None
            },
            VarOp {
                layer: "environment".into(),
                op: "set".into(),
                key: Some("n".into()),
                value: Some(json!("5"))
            },
        ]
    );
    // The environment's stale value shadows the global, as in Postman.
    assert_eq!(out.console[0].text, "token is stale {\"a\":1}");
}

#[test]
fn status_messages_match_chai_postman() {
    let out = run1(
        &input("test", Some(response(404, "nope"))),
        "pm.test('s', () => pm.response.to.have.status(200));\npm.test('ok', () => pm.response.to.be.ok);\npm.test('j', () => pm.response.to.be.json);",
    );
    let errs: Vec<&str> = out
        .tests
        .iter()
        .filter_map(|t| t.error.as_deref())
        .collect();
    assert_eq!(
        errs[0],
        "expected response to have status code 200 but got 404"
    );
    assert_eq!(errs[1], "expected response code to be 200 but found 404");
    assert!(
        errs[2].starts_with("expected response body to be a valid json"),
        "{errs:?}"
    );
}

#[test]
fn errors_name_the_script_and_line() {
    let out = run1(
        &input("test", Some(response(200, "{}"))),
        "var a = 1;\n\nfoo.bar();\n",
    );
    assert_eq!(out.errors.len(), 1, "{out:?}");
    assert_eq!(out.errors[0].line(), Some(3));
    assert_eq!(
        out.errors[0].message,
        "request `create_user` test script line 3: ReferenceError: foo is not defined"
    );
    let out = run1(&input("test", None), "var a = ;\n");
    assert_eq!(out.errors.len(), 1, "{out:?}");
    assert!(
        out.errors[0].message.contains("line 1: SyntaxError"),
        "{:?}",
        out.errors
    );
}

#[test]
fn limits_stop_runaway_scripts_and_the_engine_recovers() {
    let limits = Limits {
        timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let src = |code| {
        [Source {
            label: "loop".into(),
            code,
        }]
    };
    let t = Instant::now();
    let out = run(&input("test", None), &src("while (true) {}"), &limits);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(
        out.errors[0].message.contains("ran longer than 200ms"),
        "{out:?}"
    );
    let generous = Limits {
        timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    let out = run(
        &input("test", None),
        &src("var a = []; while (true) { a.push('x'.repeat(1000) + a.length); }"),
        &generous,
    );
    assert!(out.errors[0].message.contains("memory"), "{out:?}");
    let out = run(
        &input("test", None),
        &src("pm.test('after', () => {});"),
        &limits,
    );
    assert_eq!(out.errors, vec![]);
    assert_eq!(out.tests.len(), 1);
}

#[test]
fn async_tests_timers_and_libraries() {
    let out = run1(
        &input("test", Some(response(200, "{}"))),
        r#"
pm.test("async", async () => { await null; pm.expect(1).to.equal(2); });
pm.test("done", (done) => { setTimeout(() => { pm.environment.set('later', 1); done(); }, 5); });
const hmac = CryptoJS.HmacSHA256("msg", "key").toString();
pm.test("hmac", () => pm.expect(hmac).to.equal("2d93cbc1be167bcb1637a4a23cbff01a7878f0c50ee833954ea5221bb1b8c628"));
pm.test("lodash", () => pm.expect(_.map([1, 2], x => x * 2)).to.eql([2, 4]));
pm.test("moment", () => pm.expect(moment.utc(0).year()).to.equal(1970));
pm.test("require", () => pm.expect(require('uuid').v4()).to.match(/^[0-9a-f-]{36}$/));
pm.test("btoa", () => pm.expect(atob(btoa('a:b'))).to.equal('a:b'));
"#,
    );
    assert_eq!(out.errors, vec![], "{out:?}");
    let failed: Vec<&str> = out
        .tests
        .iter()
        .filter(|t| !t.passed)
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(failed, vec!["async"], "{out:?}");
    assert!(out.ops.iter().any(|o| o.key.as_deref() == Some("later")));
}

#[test]
fn pre_request_scripts_change_headers_skip_and_next() {
    let out = run1(
        &input("prerequest", None),
        r#"
pm.request.headers.upsert({key: 'X-Sig', value: 'abc'});
pm.request.headers.remove('Content-Type');
pm.variables.set('local_only', 1);
pm.execution.setNextRequest(null);
pm.test("url", () => pm.expect(pm.request.url.getPath()).to.equal('/users'));
"#,
    );
    assert_eq!(out.errors, vec![], "{out:?}");
    assert_eq!(out.request_ops.len(), 2);
    assert_eq!(out.next, Some(Next { value: None }));
    assert!(out.tests[0].passed, "{out:?}");
    let out = run1(&input("prerequest", None), "pm.sendRequest('http://x');");
    assert!(out.errors[0].message.contains("pm.sendRequest"), "{out:?}");
}

#[test]
fn scripts_share_variables_but_not_their_locals() {
    let i = input("test", Some(response(200, "{}")));
    let out = run(
        &i,
        &[
            Source {
                label: "collection".into(),
                code: "var mine = 1; pm.environment.set('a', 'from first');",
            },
            Source {
                label: "request".into(),
                code: "pm.test('sees', () => pm.expect(pm.environment.get('a')).to.equal('from first'));\npm.test('own scope', () => pm.expect(typeof mine).to.equal('undefined'));",
            },
        ],
        &Limits::default(),
    );
    assert_eq!(out.errors, vec![], "{out:?}");
    assert!(out.tests.iter().all(|t| t.passed), "{out:?}");
    assert_eq!(out.tests[0].script, 1);
}
