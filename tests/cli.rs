//! The CLI and the REPL do what they say: exit codes, interruption, reports, terminal safety,
//! line parsing, answers, hints, and no mock data lost to parallel runs.

use std::time::Duration;

use httpmock::Method::{GET, PUT};
use httpmock::MockServer;
use serde_json::{Value, json};

use crate::common::{Project, project, run_postie};

/// A small collection against `base` with one flow of three steps, the second failing.
fn three_steps(base: &str) -> String {
    format!(
        r#"name: three
variables:
  base: {base}
requests:
  first:
    url: <<base>>/first
  second:
    url: <<base>>/second
    assert:
      - status: 200
  third:
    url: <<base>>/third
  missing:
    url: <<base>>/missing
  later:
    url: <<base>>/later/<<never_set>>
flows:
  main:
    steps: [first, second, third]
  half:
    steps: [first, later, third]
"#
    )
}

#[test]
fn steps_not_run_are_counted_in_the_summary_and_the_reports() {
    let server = MockServer::start();
    server.mock(|when, then| {
        when.path("/first");
        then.status(200).json_body(json!({"ok": true}));
    });
    server.mock(|when, then| {
        when.path("/second");
        then.status(500);
    });
    let p = Project::new(&three_steps(&server.base_url()));
    let run = p.postie(&[
        "run",
        "c.yaml",
        "--report",
        "junit=out/deep/r.xml",
        "--report",
        "json=out/r.json",
    ]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stdout
            .contains("1 passed, 1 failed, 0 skipped, 1 not run"),
        "{}",
        run.stdout
    );
    // The missing directories were created; the JUnit report counts all three steps.
    let junit = std::fs::read_to_string(p.path("out/deep/r.xml")).unwrap();
    assert!(junit.contains("tests=\"3\""), "{junit}");
    assert!(
        junit.contains("<testcase name=\"third\"")
            && junit.contains("not run: an earlier step failed"),
        "{junit}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(p.path("out/r.json")).unwrap()).unwrap();
    assert_eq!(report["summary"]["not_run"], 1);
    assert_eq!(report["flows"][0]["not_run"], json!(["third"]));
}

#[test]
fn report_paths_are_checked_before_anything_is_sent() {
    let server = MockServer::start();
    let any = server.mock(|_, then| {
        then.status(200);
    });
    let p = Project::new(&three_steps(&server.base_url()));
    std::fs::create_dir(p.path("adir")).unwrap();
    let run = p.postie(&["run", "c.yaml", "--report", "junit=adir"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("report path adir is a directory"),
        "{}",
        run.all()
    );
    any.assert_calls(0);
}

#[test]
fn exit_codes_say_what_happened() {
    let server = MockServer::start();
    server.mock(|when, then| {
        when.path("/first");
        then.status(200);
    });
    let p = Project::new(&three_steps(&server.base_url()));
    // A later step that cannot be rendered after earlier ones were sent: 4, not 2.
    let half = p.postie(&["run", "c.yaml", "--flow", "half"]);
    assert_eq!(half.code, 4, "{}", half.all());
    // --to before --from: nothing would run.
    let reversed = p.postie(&["run", "c.yaml", "--from", "third", "--to", "first"]);
    assert_eq!(reversed.code, 2, "{}", reversed.all());
    assert!(
        reversed
            .stderr
            .contains("`--to first` comes before `--from third`"),
        "{}",
        reversed.all()
    );
    // A 404 with no assertion passes, unless --fail-on-status.
    server.mock(|when, then| {
        when.path("/missing");
        then.status(404);
    });
    assert_eq!(p.postie(&["send", "c.yaml", "missing"]).code, 0);
    let strict = p.postie(&["send", "c.yaml", "missing", "--fail-on-status"]);
    assert_eq!(strict.code, 1, "{}", strict.all());
    assert!(
        strict.stderr.contains("HTTP 404 (--fail-on-status"),
        "{}",
        strict.all()
    );
    // The OAuth2 commands: nothing sent is 2.
    let cc = project();
    let no_env = run_postie(
        cc.path(),
        &[
            "auth",
            "login",
            "cc.yaml",
            "--env",
            "production",
            "--no-browser",
        ],
        &[],
        None,
    );
    assert_eq!(no_env.code, 2, "{}", no_env.all());
    assert!(
        no_env.stderr.contains("CC_REDIRECT_URI"),
        "the missing variable is named: {}",
        no_env.all()
    );
    let no_oauth = p.postie(&["auth", "login", "c.yaml"]);
    assert_eq!(no_oauth.code, 2, "{}", no_oauth.all());
    let no_refresh = run_postie(
        cc.path(),
        &["auth", "refresh", "cc.yaml", "--mock"],
        &[],
        None,
    );
    assert_eq!(no_refresh.code, 2, "{}", no_refresh.all());
    // A bad argument is a usage error, 2.
    assert_eq!(p.postie(&["run", "c.yaml", "--bogus"]).code, 2);
}

#[test]
fn ctrl_c_during_run_exits_130_and_lists_what_did_not_run() {
    let server = MockServer::start();
    server.mock(|when, then| {
        when.path("/first");
        then.status(200).delay(Duration::from_secs(20));
    });
    let p = Project::new(&three_steps(&server.base_url()));
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_postie"))
        .args(["run", "c.yaml", "--report", "json=r.json"])
        .current_dir(p.dir.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("0 passed, 0 failed, 0 skipped, 3 not run"),
        "{stdout}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(p.path("r.json")).unwrap()).unwrap();
    assert_eq!(report["exit_code"], 130);
    assert_eq!(report["flows"][0]["interrupted"], true);
}

#[test]
fn bodies_are_safe_for_the_terminal() {
    let server = MockServer::start();
    server.mock(|when, then| {
        when.path("/evil");
        then.status(200)
            .header("content-type", "text/plain")
            .body("hello\u{1b}[2J\u{1b}]0;pwned\u{7}\u{1b}]52;c;Zm9v\u{7}bye\r!");
    });
    let png: Vec<u8> = [
        &[0x89u8, b'P', b'N', b'G', 0, 0, 0, 13][..],
        &[7u8; 4000][..],
    ]
    .concat();
    server.mock(|when, then| {
        when.path("/png");
        then.status(200)
            .header("content-type", "image/png")
            .body(png.clone());
    });
    server.mock(|when, then| {
        when.path("/latin1");
        then.status(200)
            .header("content-type", "text/plain; charset=iso-8859-1")
            .body(b"caf\xe9");
    });
    let gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(br#"{"zipped": true}"#).unwrap();
        e.finish().unwrap()
    };
    server.mock(|when, then| {
        when.path("/gz");
        then.status(200)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(gz.clone());
    });
    let big = "x".repeat(300_000);
    server.mock(|when, then| {
        when.path("/big");
        then.status(200)
            .header("content-type", "text/plain")
            .body(big.clone());
    });
    let p = Project::new(&format!(
        "name: b\nrequests:\n  evil: {{url: '{0}/evil'}}\n  png: {{url: '{0}/png'}}\n  latin1: {{url: '{0}/latin1'}}\n  gz: {{url: '{0}/gz'}}\n  big: {{url: '{0}/big'}}\n",
        server.base_url()
    ));
    let evil = p.postie(&["send", "c.yaml", "evil"]);
    assert!(
        !evil.stdout.contains('\u{1b}') && !evil.stdout.contains('\u{7}'),
        "{:?}",
        evil.stdout
    );
    assert!(
        evil.stdout.contains("hello\\x1b[2J\\x1b]0;pwned\\x07"),
        "{}",
        evil.stdout
    );
    assert!(evil.stdout.contains("bye\\x0d!"), "{}", evil.stdout);
    let png_run = p.postie(&["send", "c.yaml", "png"]);
    assert!(
        png_run
            .stdout
            .contains("<binary, 3 KB, image/png — save it with"),
        "{}",
        png_run.stdout
    );
    let saved = p.postie(&["send", "c.yaml", "png", "--output", "img.png"]);
    assert_eq!(saved.code, 0, "{}", saved.all());
    assert_eq!(std::fs::read(p.path("img.png")).unwrap(), png);
    assert!(
        p.postie(&["send", "c.yaml", "latin1"])
            .stdout
            .contains("café")
    );
    assert!(
        p.postie(&["send", "c.yaml", "gz"])
            .stdout
            .contains("\"zipped\": true")
    );
    let big_run = p.postie(&["send", "c.yaml", "big"]);
    assert!(big_run.stdout.len() < 80_000, "{}", big_run.stdout.len());
    assert!(
        big_run
            .stdout
            .contains("more not shown (the body is 292 KB)"),
        "{}",
        &big_run.stdout[big_run.stdout.len() - 300..]
    );
    // The state keeps big bodies only up to a cap.
    let huge = "y".repeat(3 << 20);
    server.mock(|when, then| {
        when.path("/huge");
        then.status(200)
            .header("content-type", "text/plain")
            .body(huge.clone());
    });
    std::fs::write(
        p.path("c.yaml"),
        format!(
            "name: b\nrequests:\n  huge: {{url: '{}/huge'}}\n",
            server.base_url()
        ),
    )
    .unwrap();
    assert_eq!(p.postie(&["send", "c.yaml", "huge"]).code, 0);
    let state_text = std::fs::read_to_string(p.path(".postie/c.yaml.state.json")).unwrap();
    assert!(
        state_text.len() < 1 << 20,
        "state holds the 3 MB body: {} bytes",
        state_text.len()
    );
    let state: Value = serde_json::from_str(&state_text).unwrap();
    let kept = &state["envs"]["default"]["exchanges"]["huge"][0];
    assert!(kept["body"].is_null(), "{kept}");
    assert_eq!(kept["body_omitted"]["bytes"], 3 << 20);
}

#[test]
fn loading_is_strict_about_duplicates_names_urls_and_filters() {
    let base = "name: s\nrequests:\n  a:\n    url: http://127.0.0.1:9/a\n";
    let cases: &[(&str, &str)] = &[
        (
            "name: s\nrequests:\n  a:\n    url: http://127.0.0.1:9/a\n  a:\n    url: http://127.0.0.1:9/b\n",
            "c.yaml:5:3: requests: duplicate key `a`",
        ),
        (
            "name: s\nvariables:\n  a: 1\nrequests:\n  a:\n    url: http://127.0.0.1:9/a\n",
            "variable `a` has the name of request `a`",
        ),
        (
            &format!("{base}    capture:\n      a: $.x\n"),
            "capture `a` has the name of a request",
        ),
        (
            "name: s\nrequests:\n  a:\n    url: not a url\n",
            "`not a url` is not a URL",
        ),
        (
            "name: s\nrequests:\n  a:\n    url: ftp://127.0.0.1/x\n",
            "uses `ftp:`",
        ),
        (
            &format!("{base}    headers:\n      'X Bad': 1\n"),
            "`X Bad` is not a valid header name",
        ),
        (
            &format!("{base}    headers:\n      X-Id: <<x | base46>>\n"),
            "unknown filter `base46`",
        ),
        (
            &format!("{base}    headers:\n      X-Id: <<uuidd()>>\n"),
            "unknown function `uuidd`",
        ),
    ];
    for (text, expected) in cases {
        let p = Project::new(text);
        let v = p.postie(&["validate", "c.yaml"]);
        assert_eq!(v.code, 2, "{text}\n{}", v.all());
        assert!(
            v.stderr.contains(expected),
            "{text}\nexpected {expected}\n{}",
            v.all()
        );
        assert!(!v.stdout.contains("expected from responses"), "{}", v.all());
    }
}

#[test]
fn a_request_named_like_a_response_field_keeps_its_exchange() {
    let server = MockServer::start();
    server.mock(|when, then| {
        when.path("/ok");
        then.status(200).json_body(json!({"ok": true, "id": "A1"}));
    });
    server.mock(|when, then| {
        when.method(GET).path("/next").query_param("s", "200");
        then.status(200);
    });
    let p = Project::new(&format!(
        "name: n\nrequests:\n  ok: {{url: '{0}/ok'}}\n  next:\n    url: '{0}/next'\n    query: {{s: '<<ok.status>>'}}\nflows:\n  f:\n    steps: [ok, next]\n",
        server.base_url()
    ));
    let run = p.postie(&["run", "c.yaml"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("set id=A1") && !run.stdout.contains("ok=true"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_repl_parses_like_a_shell_and_checks_every_argument() {
    let dir = project();
    let script = r#"login
set obj {"a": 1, "b": "x y"}
set greeting hello there
set 9bad 1
set a.b 1
send find_list --bogus
quit now
send list_lists
get $.lists[?(@.name == 'VIP Customers')].list_id
jwt email
diff nosuch
mock clock 99999999999h
mock clock 1 h
mock clock 23h59m30s
vars
Y
"#;
    let run = run_postie(
        dir.path(),
        &["repl", "cc.yaml", "--mock"],
        &[],
        Some(script),
    );
    let out = run.all();
    assert!(out.contains(r#"obj = {"a":1,"b":"x y"}"#), "{out}");
    assert!(out.contains(r#"greeting = "hello there""#), "{out}");
    assert!(out.contains("`9bad` is not a variable name"), "{out}");
    assert!(out.contains("`a.b` is not a variable name"), "{out}");
    assert!(out.contains("`send` has no option `--bogus`"), "{out}");
    assert!(
        out.contains("`quit` takes no arguments; unexpected `now`"),
        "{out}"
    );
    assert!(
        out.contains("\"2b7d4e10-662a-11eb-af0a-fa163e56c9b0\""),
        "{out}"
    );
    assert!(out.contains("`email` is not a JWT"), "{out}");
    assert!(
        out.contains("request `nosuch` is not in the collection"),
        "{out}"
    );
    assert!(out.contains("longer than 100 years"), "{out}");
    assert!(out.contains("mock clock advanced 1h;"), "{out}");
    assert!(out.contains("mock clock advanced 23h59m30s;"), "{out}");
    assert!(
        out.contains("`Y` answers no question"),
        "a stray answer is reported: {out}"
    );
    assert_eq!(run.code, 1);
}

#[test]
fn guard_answers_any_case_and_continue_streams_each_step() {
    let dir = project();
    let mut text = std::fs::read_to_string(dir.path().join("cc.yaml")).unwrap();
    text.push_str(
        "  careless:\n    steps:\n      - find_contact\n      - request: create_list\n        when: 'false'\n      - update_contact_careless\n      - get_contact\n",
    );
    std::fs::write(dir.path().join("cc.yaml"), text).unwrap();
    for flow in ["login", "sign_up_form"] {
        let seed = run_postie(
            dir.path(),
            &["run", "cc.yaml", "--mock", "--flow", flow],
            &[],
            None,
        );
        assert_eq!(seed.code, 0, "{}", seed.all());
    }
    let script = "flow careless\ncontinue\nN\nwhere\nnext\nYes\nwhere\n";
    let run = run_postie(
        dir.path(),
        &["repl", "cc.yaml", "--mock"],
        &[],
        Some(script),
    );
    let out = run.all();
    let step = out.find("✓ find_contact").expect(&out);
    let question = out.find("send it anyway? [y/N] N").expect(&out);
    assert!(
        step < question,
        "the step that ran is shown before the question: {out}"
    );
    assert!(out.contains("- create_list  (when: false)"), "{out}");
    assert!(out.contains("→ update_contact_careless"), "{out}");
    assert!(out.contains("send it anyway? [y/N] Yes"), "{out}");
    assert!(
        out.contains("PUT guard: sent anyway (confirmed)") && !out.contains("sent anyway (--yes)"),
        "{out}"
    );
    assert!(out.contains("✓ update_contact_careless"), "{out}");
}

#[test]
fn a_new_session_sees_saved_responses_and_history_and_reset_forgets_tokens() {
    let dir = project();
    let first = run_postie(
        dir.path(),
        &["repl", "cc.yaml", "--mock"],
        &[],
        Some("login\nsend find_list\n"),
    );
    assert_eq!(first.code, 0, "{}", first.all());
    let second = run_postie(
        dir.path(),
        &["repl", "cc.yaml", "--mock"],
        &[],
        Some("last\nrefresh\nhistory\nshow create_list\nmock reset\nstatus\n"),
    );
    let out = second.all();
    assert!(
        out.contains("(saved response of `find_list`, from an earlier session)"),
        "{out}"
    );
    assert!(
        out.contains("refresh POST http://127.0.0.1:"),
        "history lists the refresh: {out}"
    );
    assert!(
        out.contains("Content-Type: application/json"),
        "show lists the implied content type: {out}"
    );
    assert!(
        out.contains("access token: none"),
        "after mock reset: {out}"
    );
}

#[test]
fn hints_name_the_command_to_run() {
    let dir = project();
    let prod = run_postie(
        dir.path(),
        &["send", "cc.yaml", "find_list", "--env", "production"],
        &[
            ("CC_CLIENT_ID", "x"),
            ("CC_CLIENT_SECRET", "y"),
            ("CC_REDIRECT_URI", "http://localhost:8910/cb"),
        ],
        None,
    );
    assert_eq!(prod.code, 2, "{}", prod.all());
    assert!(
        prod.stderr
            .contains("log in first: `postie auth login cc.yaml --env production`"),
        "{}",
        prod.all()
    );
    let mock_env = run_postie(
        dir.path(),
        &["send", "cc.yaml", "find_list", "--env", "mock"],
        &[],
        None,
    );
    assert!(
        mock_env.stderr.contains("pass --mock"),
        "{}",
        mock_env.all()
    );
    // A huge exp is out of range, not 1970.
    let b64 = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let token = format!(
        "{}.{}.sig",
        b64(r#"{"alg":"none"}"#),
        b64(r#"{"exp":999999999999999999}"#)
    );
    let jwt = run_postie(dir.path(), &["jwt", &token], &[], None);
    assert!(jwt.stdout.contains("out of range"), "{}", jwt.all());
    assert!(!jwt.stdout.contains("1970"), "{}", jwt.all());
}

#[test]
fn long_urls_are_shortened_in_step_lines_unless_verbose() {
    let server = MockServer::start();
    server.mock(|when, then| {
        when.path("/q");
        then.status(200);
    });
    let p = Project::new(&format!(
        "name: l\nrequests:\n  q:\n    url: '{}/q'\n    query: {{a: '{}', b: '{}', c: '{}'}}\nflows:\n  f:\n    steps: [q]\n",
        server.base_url(),
        "1".repeat(40),
        "2".repeat(40),
        "3".repeat(40)
    ));
    let short = p.postie(&["run", "c.yaml"]);
    assert!(
        short.stdout.contains("/q?…(3 parameters; -v shows them)"),
        "{}",
        short.stdout
    );
    let long = p.postie(&["run", "c.yaml", "-v"]);
    assert!(long.stdout.contains(&"3".repeat(40)), "{}", long.stdout);
}

#[test]
fn mock_state_with_a_bare_file_name_is_saved_and_locked() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_postie"))
            .args(["mock", "--port", "0", "--state", "ms.json"])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut child = start();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let url = first.trim().trim_start_matches("listening on ").to_string();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    use std::io::{Read, Write};
    let body = r#"{"advance": "2h"}"#;
    write!(
        s,
        "POST /__postie/clock HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    // A second mock on the same file refuses at once instead of overwriting the first's writes.
    let second = start().wait_with_output().unwrap();
    assert_eq!(second.status.code(), Some(3), "{second:?}");
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("ms.json is in use by another mock"),
        "{second:?}"
    );
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let done = child.wait_with_output().unwrap();
    assert!(done.status.success(), "{done:?}");
    assert!(
        !String::from_utf8_lossy(&done.stderr).contains("could not save"),
        "{done:?}"
    );
    let text = std::fs::read_to_string(dir.path().join("ms.json")).unwrap();
    let header: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert!(
        header["clock_offset_ms"].as_i64().unwrap() >= 7_200_000,
        "{header}"
    );
    // At a clean shutdown the journal is merged into the snapshot.
    assert!(!dir.path().join("ms.json.wal").exists());
    assert!(
        !dir.path().join(".gitignore").exists(),
        "a user's directory is left alone"
    );
}

#[test]
fn parallel_runs_with_the_in_process_mock_lose_no_write() {
    let dir = project();
    let mut text = std::fs::read_to_string(dir.path().join("cc.yaml")).unwrap();
    text.push_str(
        "  one_signup:\n    steps:\n      - authorize\n      - token\n      - find_list\n      - request: create_list\n        when: find_list.body.lists | length == 0\n      - sign_up\n",
    );
    std::fs::write(dir.path().join("cc.yaml"), text).unwrap();
    let children: Vec<_> = (0..6)
        .map(|i| {
            std::process::Command::new(env!("CARGO_BIN_EXE_postie"))
                .args([
                    "run",
                    "cc.yaml",
                    "--mock",
                    "--flow",
                    "one_signup",
                    "--var",
                    &format!("email=parallel{i}@example.com"),
                ])
                .current_dir(dir.path())
                .env("NO_COLOR", "1")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let data = std::fs::read_to_string(dir.path().join(".postie/mock.json")).unwrap();
    for i in 0..6 {
        assert!(
            data.contains(&format!("parallel{i}@example.com")),
            "contact {i} was acknowledged and lost"
        );
    }
}

#[test]
fn escape_sequences_in_a_body_never_reach_the_terminal() {
    use expectrl::{Expect, Session};
    let server = MockServer::start();
    server.mock(|when, then| {
        when.method(PUT).path("/evil");
        then.status(200)
            .header("content-type", "text/plain")
            .body("A\u{1b}]0;pwned\u{7}B");
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        format!(
            "name: pty\nrequests:\n  evil:\n    method: PUT\n    url: {}/evil\n",
            server.base_url()
        ),
    )
    .unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_postie"));
    cmd.args(["p.yaml"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("TERM", "xterm");
    let mut p = Session::spawn(cmd).unwrap();
    p.set_expect_timeout(Some(Duration::from_secs(10)));
    p.expect("pty [default] > ").unwrap();
    p.send_line("evil").unwrap();
    let seen = p.expect("B\r\n").unwrap();
    let text = String::from_utf8_lossy(seen.before()).into_owned();
    assert!(text.contains("A\\x1b]0;pwned\\x07"), "{text:?}");
    assert!(!text.contains("\u{1b}]0;"), "{text:?}");
    p.send_line("quit").unwrap();
}

#[test]
fn ctrl_c_cancels_a_waiting_login_and_a_guard_question_without_touching_the_next_command() {
    use expectrl::{ControlCode, Expect, Session};
    let server = MockServer::start();
    server.mock(|when, then| {
        when.method(GET).path("/things/t1");
        then.status(200)
            .json_body(json!({"thing_id": "t1", "name": "x", "note": "keep me"}));
    });
    let put = server.mock(|when, then| {
        when.method(PUT).path("/things/t1");
        then.status(200);
    });
    server.mock(|when, then| {
        when.method(GET).path("/fast");
        then.status(200).body("{\"ok\":true}");
    });
    let dir = tempfile::tempdir().unwrap();
    let col = format!(
        r#"name: pty
variables:
  base: {0}
  redirect_uri: http://127.0.0.1:0/callback
oauth2: {{authorize: authorize, token: token}}
requests:
  authorize:
    url: https://auth.example.invalid/authorize
    query: {{redirect_uri: "<<redirect_uri>>", state: "<<oauth_state>>"}}
  token:
    method: POST
    url: <<base>>/token
    form: {{code: "<<code>>"}}
  get_thing: {{url: "<<base>>/things/t1"}}
  put_thing:
    method: PUT
    url: <<base>>/things/t1
    json: {{name: x}}
  fast: {{url: "<<base>>/fast"}}
"#,
        server.base_url()
    );
    std::fs::write(dir.path().join("p.yaml"), col).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_postie"));
    cmd.args(["p.yaml"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("TERM", "xterm");
    let mut p = Session::spawn(cmd).unwrap();
    p.set_expect_timeout(Some(Duration::from_secs(10)));
    p.expect("pty [default] no token > ").unwrap();
    p.send_line("login --no-browser").unwrap();
    p.expect("open this URL in a browser").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    p.send(ControlCode::EndOfText).unwrap();
    p.expect("cancelled (Ctrl-C)").unwrap();
    p.expect("> ").unwrap();
    // The Ctrl-C was spent on the login: the next request is not cancelled.
    p.send_line("fast").unwrap();
    p.expect("HTTP 200 OK").unwrap();
    p.send_line("get_thing").unwrap();
    p.expect("HTTP 200 OK").unwrap();
    p.send_line("put_thing").unwrap();
    p.expect("send it anyway? [y/N] ").unwrap();
    p.send(ControlCode::EndOfText).unwrap();
    p.expect("not sent (PUT guard)").unwrap();
    p.send_line("fast").unwrap();
    p.expect("HTTP 200 OK").unwrap();
    // Flags complete too.
    p.send("send fast --y\t").unwrap();
    p.expect("--yes").unwrap();
    p.send("\r").unwrap();
    p.expect("HTTP 200 OK").unwrap();
    p.send_line("quit").unwrap();
    put.assert_calls(0);
}

#[test]
fn login_after_mock_stop_fails_at_once() {
    let dir = project();
    let run = run_postie(
        dir.path(),
        &["repl", "cc.yaml", "--mock"],
        &[],
        Some("mock stop\nlogin\n"),
    );
    assert!(
        run.stdout.contains("cannot reach the authorization server"),
        "{}",
        run.all()
    );
    assert!(
        !run.stdout.contains("open this URL"),
        "login must not wait for a browser on a dead URL: {}",
        run.all()
    );
}

#[test]
fn mock_fault_flags_are_checked_before_the_mock_starts() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, says) in [
        ("GET /v3/contacts stauts=503", "stauts"),
        ("/v3/contacts", "does nothing"),
        ("* delay=2s..1s", "low to high"),
        ("status=503", "start with the route"),
    ] {
        let r = crate::common::run_postie(
            dir.path(),
            &["mock", "--port", "0", "--fault", flag],
            &[],
            None,
        );
        assert_eq!(r.code, 2, "{flag}: {}", r.all());
        assert!(r.stderr.contains(says), "{flag}: {}", r.stderr);
        assert!(!r.stdout.contains("listening"), "{}", r.stdout);
    }
}

#[test]
fn deeply_nested_yaml_is_refused_at_once_where_it_nests() {
    // 100,000 nested `[` once took serde_yaml 40 s before its own depth limit; every YAML postie
    // reads is now refused in one pass, at the line and column where it passes 128 levels.
    let dir = tempfile::tempdir().unwrap();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    std::fs::write(
        dir.path().join("c.yaml"),
        format!("name: deep\nvariables:\n  x: {deep}\nrequests:\n  a: {{method: GET, url: http://127.0.0.1:9/}}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("s.yaml"),
        format!("stubs:\n  - request: {{path: /a}}\n    response: {{json: {deep}}}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("api.yaml"),
        format!("openapi: 3.0.0\ninfo: {{title: t, version: '1'}}\npaths: {deep}\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("mock.yaml"), format!("clients: {deep}\n")).unwrap();
    for (args, at) in [
        (vec!["validate", "c.yaml"], "c.yaml:3:"),
        (
            vec!["mock", "--port", "0", "--stubs", "s.yaml"],
            "s.yaml:3:",
        ),
        (vec!["import", "openapi", "api.yaml"], "api.yaml:3:"),
        (
            vec!["mock", "--port", "0", "--spec", "api.yaml"],
            "api.yaml:3:",
        ),
        (
            vec!["mock", "--port", "0", "--config", "mock.yaml"],
            "mock.yaml:1:",
        ),
    ] {
        let r = crate::common::run_postie(dir.path(), &args, &[], None);
        assert_eq!(r.code, 2, "{args:?}: {}", r.all());
        assert!(r.stderr.contains(at), "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("deeper than 128"),
            "{args:?}: {}",
            r.stderr
        );
        // The message is a line or two, not the 200 kB value.
        assert!(r.stderr.len() < 2_000, "{args:?}: {} bytes", r.stderr.len());
    }
}

#[test]
fn mock_admin_token_is_generated_printed_and_warned_about() {
    // A generated token is printed after the listening line and guards /__postie.
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_postie"));
    cmd.args(["mock", "--port", "0", "--admin-token"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    use std::io::BufRead;
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    out.read_line(&mut first).unwrap();
    out.read_line(&mut second).unwrap();
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    let token = second
        .trim()
        .strip_prefix("admin token ")
        .unwrap()
        .to_string();
    assert!(token.len() >= 32, "{second}");
    let get = |auth: Option<&str>| {
        let mut c = std::process::Command::new("curl");
        c.args(["-s", "-o", "/dev/null", "-w", "%{http_code}"]);
        if let Some(a) = auth {
            c.args(["-H", &format!("Authorization: Bearer {a}")]);
        }
        String::from_utf8(
            c.arg(format!("{url}/__postie/clock"))
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
    };
    assert_eq!(get(None), "401");
    assert_eq!(get(Some(&token)), "200");
    let _ = child.kill();
    let _ = child.wait();
    // Binding beyond loopback without a token is warned about (checked, then stopped at once by
    // an invalid fault, so nothing listens beyond loopback in the test).
    let r = crate::common::run_postie(
        dir.path(),
        &[
            "mock", "--host", "0.0.0.0", "--port", "0", "--fault", "bogus",
        ],
        &[],
        None,
    );
    assert!(r.stderr.contains("without --admin-token"), "{}", r.stderr);
}

#[test]
fn limits_on_size_requests_and_template_work_stop_at_once_and_say_how_to_raise_them() {
    let dir = tempfile::tempdir().unwrap();
    let srv = httpmock::MockServer::start();
    let hit = srv.mock(|when, then| {
        when.any_request();
        then.status(200);
    });
    std::fs::write(
        dir.path().join("c.yaml"),
        format!(
            "name: lim\nvariables:\n  base: {}\nrequests:\n  spin:\n    method: GET\n    url: \"<<base>>/<% for i in range(10000) %><% for j in range(10000) %><% endfor %><% endfor %>\"\n  big:\n    method: POST\n    url: \"<<base>>/big\"\n    text: \"<% for i in range(1000) %><< 'x' * 10000 >><% endfor %>\"\nflows:\n  spin: {{steps: [spin]}}\n  big: {{steps: [big]}}\n",
            srv.base_url()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| crate::common::run_postie(dir.path(), args, &[], None);
    // A loop that writes nothing still stops: the engine's step budget.
    let r = run(&[
        "run",
        "c.yaml",
        "-f",
        "spin",
        "--limit",
        "template-steps=100000",
    ]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.all().contains("more than 100000 engine steps"),
        "{}",
        r.all()
    );
    assert!(r.all().contains("--limit template-steps="), "{}", r.all());
    // 10 MB of output against a 1 MiB bound: refused while it is written.
    let r = run(&[
        "run",
        "c.yaml",
        "-f",
        "big",
        "--limit",
        "template-output=1MiB",
    ]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.all().contains("passed the 1 MiB limit"), "{}", r.all());
    hit.assert_calls(0);
    // The same request within a raised bound is sent.
    let r = run(&[
        "run",
        "c.yaml",
        "-f",
        "big",
        "--limit",
        "template-output=16MiB",
    ]);
    assert_eq!(r.code, 0, "{}", r.all());
    hit.assert_calls(1);
    // Requests over the count: located at the first one past it.
    let r = run(&["validate", "c.yaml", "--limit", "requests=1"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr
            .contains("c.yaml:8:3: the collection has 2 requests, over the limit of 1"),
        "{}",
        r.stderr
    );
    // A file over the size bound is not read.
    let r = run(&["validate", "c.yaml", "--limit", "collection-size=100"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("over the 100 bytes limit"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("--limit collection-size=1MiB"),
        "{}",
        r.stderr
    );
    // A misspelt limit is an argument error with a suggestion.
    let r = run(&["validate", "c.yaml", "--limit", "request=1"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("did you mean `requests`"), "{}", r.stderr);
    // Invalid UTF-8 is located.
    std::fs::write(
        dir.path().join("bad.yaml"),
        b"name: x\nvariables:\n  a: \"\xff\"\n",
    )
    .unwrap();
    let r = run(&["validate", "bad.yaml"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("bad.yaml:3:7: not UTF-8 text"),
        "{}",
        r.stderr
    );
}

#[test]
fn completions_for_each_shell_know_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let r = crate::common::run_postie(dir.path(), &["completions", shell], &[], None);
        assert_eq!(r.code, 0, "{shell}: {}", r.all());
        for cmd in ["run", "lint", "diff", "doc", "mock"] {
            assert!(r.stdout.contains(cmd), "{shell} lacks {cmd}");
        }
    }
    // bash loads it, and completes `postie li` to `lint`.
    let r = crate::common::run_postie(dir.path(), &["completions", "bash"], &[], None);
    std::fs::write(dir.path().join("postie.bash"), &r.stdout).unwrap();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg("source ./postie.bash && COMP_WORDS=(postie li) COMP_CWORD=1 && _postie postie li postie && echo \"${COMPREPLY[@]}\"")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("lint"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r = crate::common::run_postie(dir.path(), &["completions", "tcsh"], &[], None);
    assert_eq!(r.code, 2, "{}", r.all());
}

#[test]
fn color_and_progress_follow_the_flags_and_no_color() {
    let srv = httpmock::MockServer::start();
    srv.mock(|when, then| {
        when.any_request();
        then.status(200)
            .delay(std::time::Duration::from_millis(300));
    });
    let p = crate::common::Project::new(&format!(
        "name: c\nvariables:\n  api: {}\nrequests:\n  a: {{url: \"<<api>>/a\", assert: [{{status: 200}}]}}\n  b: {{url: \"<<api>>/b\"}}\nflows:\n  main: {{steps: [a, b]}}\n",
        srv.base_url()
    ));
    let esc = "\x1b[";
    // Pipes get neither colour nor a progress line by default (run_postie sets NO_COLOR=1).
    let r = p.postie(&["run", "c.yaml"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!r.all().contains(esc), "{:?}", r.all());
    // --color always wins over NO_COLOR; --color never wins over a terminal.
    let r = p.postie(&["run", "c.yaml", "--color", "always"]);
    assert!(r.stdout.contains("\x1b[32m"), "{:?}", r.stdout);
    let r = p.postie(&["validate", "c.yaml", "--color", "never"]);
    assert!(!r.all().contains(esc), "{:?}", r.all());
    // --progress always draws on stderr (steps done/total, the request in flight) and clears
    // it before each step line; stdout stays clean.
    let r = p.postie(&["run", "c.yaml", "--progress", "always"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("[0/2] a"), "{:?}", r.stderr);
    assert!(r.stderr.contains("[1/2] b"), "{:?}", r.stderr);
    assert!(r.stderr.ends_with("\r\x1b[2K"), "{:?}", r.stderr);
    assert!(!r.stdout.contains(esc), "{:?}", r.stdout);
    let r = p.postie_env(&["run", "c.yaml", "--progress", "auto"], &[("CI", "1")]);
    assert!(!r.stderr.contains(esc), "{:?}", r.stderr);
}

#[test]
fn a_closed_pipe_ends_output_quietly() {
    // A document far larger than a pipe's buffer, so the writer meets the closed pipe.
    let dir = tempfile::tempdir().unwrap();
    let mut c = String::from("name: big\nrequests:\n");
    for i in 0..3000 {
        c.push_str(&format!(
            "  r{i}: {{url: \"http://127.0.0.1:9/{i}\", note: \"request number {i}\"}}\n"
        ));
    }
    std::fs::write(dir.path().join("c.yaml"), c).unwrap();
    // `| head -c 1`: the reader goes away after one byte.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_postie"))
        .args(["doc", "c.yaml"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    use std::io::Read as _;
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // stdout is dropped (closed) here.
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(141), "{err}");
}
