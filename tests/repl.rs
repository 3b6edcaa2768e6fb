//! The REPL and the OAuth2 client engine: a scripted walk through the documented sequence, the
//! refresh single-flight, a pseudo-terminal session, and a real browser clicking Allow.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::common::{mock_for, project, run_postie, runner_for};

#[test]
fn scripted_repl_walks_the_documented_sequence() {
    let dir = project();
    let script = "\
help flow
login
show token --curl
show refresh --curl
vars
env
flow documented
next
next
next
next
next
next
next
next
next
next
next
next
where
jwt
set api_password do-not-write-me-anywhere
mock clock 25h
send find_contact
diff find_contact --ignore-volatile
send update_contact_careless
n
get $.contacts[0].first_name
last
send update_contact_careless --yes
history
mock journal
status
quit
";
    let run = run_postie(
        dir.path(),
        &["repl", "cc.yaml", "--mock", "--fresh"],
        &[],
        Some(script),
    );
    let out = run.all();
    // Every line is echoed after a prompt showing collection, environment and token lifetime.
    assert!(out.contains("cc [mock] no token > login"), "{out}");
    assert!(
        out.contains("logged in; access token valid for 24h00m, refresh token stored")
            || out.contains("logged in; access token valid for 23h59m, refresh token stored"),
        "{out}"
    );
    assert!(
        out.contains("cc [mock] token 24h00m > flow documented")
            || out.contains("cc [mock] token 23h59m > flow documented"),
        "{out}"
    );
    // show --curl renders the request with its credentials masked.
    assert!(
        out.contains("curl -X POST 'http://127.0.0.1:")
            && out.contains("-H 'Authorization: Basic (redacted)'"),
        "{out}"
    );
    // The authorization code was used once and forgotten; the hint says so.
    assert!(
        out.contains("`<<code>>` is undefined — it is a one-time value of a login"),
        "{out}"
    );
    assert!(
        out.contains("client_secret = (redacted)  (environment mock)")
            && out.contains("access_token = (redacted)  (from token)")
            && out.contains("mock_url = http://127.0.0.1:")
            && out.contains("(--mock)"),
        "{out}"
    );
    assert!(
        out.contains("environment: mock (available: production, mock)"),
        "{out}"
    );
    // The steps ran in order, with their notes shown before they go.
    for step in [
        "authorize",
        "token",
        "find_list",
        "create_list",
        "sign_up",
        "find_contact",
        "update_contact",
        "import_contacts",
        "poll_import",
        "list_members",
        "refresh",
    ] {
        assert!(
            out.contains(&format!("✓ {step} ")),
            "{step} did not pass:\n{out}"
        );
    }
    assert!(out.contains("- create_contact skipped"), "{out}");
    assert!(
        out.contains("Way 3. A bulk import"),
        "the note is shown before the step: {out}"
    );
    assert!(
        out.contains("set activity_id=") && out.contains("state=completed"),
        "{out}"
    );
    assert!(out.contains("flow documented finished"), "{out}");
    // jwt decodes the access token.
    assert!(
        out.contains("\"kid\":\"postie-mock-rs256-1\"")
            && out.contains("scopes: contact_data campaign_data offline_access"),
        "{out}"
    );
    // After the clock moves past expiry, the next request refreshes first — visibly.
    assert!(
        out.contains("refreshed access token (expired 1h00m ago)"),
        "{out}"
    );
    // diff compares the last two responses of find_contact structurally.
    assert!(
        out.contains("--- find_contact (previous)") && out.contains("+++ find_contact (latest)"),
        "{out}"
    );
    // The PUT guard fires, shows what would be nulled, and the script's `n` keeps it from going out.
    assert!(
        out.contains("PUT guard: PUT")
            && out.contains("- first_name: \"Ada\"")
            && out.contains("+ first_name: null"),
        "{out}"
    );
    assert!(
        out.contains("send it anyway? [y/N] n") && out.contains("error: not sent (PUT guard)"),
        "{out}"
    );
    assert!(out.contains("sent anyway (--yes)"), "{out}");
    assert!(
        out.contains("content-type: application/json"),
        "`last` shows headers: {out}"
    );
    assert_eq!(
        out.matches("error:").count(),
        2,
        "only `show token` (its code is spent) and the refused PUT failed:\n{out}"
    );
    assert_eq!(
        run.code, 1,
        "a failed command makes the script exit non-zero"
    );
    // Secrets never reach the transcript or the history file.
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(".postie/cc.yaml.state.json")).unwrap(),
    )
    .unwrap();
    let access = state["envs"]["mock"]["vars"]["access_token"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    let refresh = state["envs"]["mock"]["vars"]["refresh_token"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    let history = std::fs::read_to_string(dir.path().join(".postie/cc.yaml.history")).unwrap();
    for secret in [
        access.as_str(),
        refresh.as_str(),
        "do-not-write-me-anywhere",
        "mock-secret-Zk8xQ2vN7pLr4tYw",
    ] {
        assert!(!out.contains(secret), "{secret} in the transcript");
        assert!(!history.contains(secret), "{secret} in the history");
    }
    assert!(history.contains("set api_password (redacted)"), "{history}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(".postie/cc.yaml.history"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_requests_with_an_expired_token_refresh_once_and_rotate() {
    let dir = project();
    let mock = mock_for(&dir);
    let mut runner = runner_for(&dir, &mock, true);
    let mut quiet = |_: &str| {};
    postie::auth::login(&mut runner, true, &mut quiet)
        .await
        .unwrap();
    let first = runner.send("find_list").await;
    assert!(first.ok(), "{:?}", first.failure);
    let old_refresh = runner
        .value("refresh_token")
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    let tokens_before = mock
        .shared()
        .journal(1000)
        .1
        .iter()
        .filter(|e| e.route == "token")
        .count();
    mock.shared().advance(Duration::from_secs(25 * 3600));
    runner.clock_offset = mock.shared().now_ms() / 1000 - postie::util::unix_now();
    let shared = Arc::new(tokio::sync::Mutex::new(runner));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = shared.clone();
        tasks.push(tokio::spawn(async move {
            postie::runner::send_shared(&s, "find_contact").await
        }));
    }
    let mut refreshed = 0;
    for t in tasks {
        let r = t.await.unwrap();
        assert!(r.ok(), "{:?} {:?}", r.failure, r.notes);
        assert_eq!(r.exchange.as_ref().unwrap().status, 200);
        refreshed += r
            .notes
            .iter()
            .filter(|n| n.starts_with("refreshed access token (expired"))
            .count();
    }
    assert_eq!(refreshed, 1, "exactly one refresh, and it says so");
    let tokens_after = mock
        .shared()
        .journal(1000)
        .1
        .iter()
        .filter(|e| e.route == "token")
        .count();
    assert_eq!(
        tokens_after - tokens_before,
        1,
        "one token request reached the server"
    );
    // The old refresh token is dead; the state file holds the new one.
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/oauth2/default/v1/token", mock.url()))
        .basic_auth(
            "3f2b8f9e-5a1c-4c7e-9d2a-8b6e1f0c4d21",
            Some("mock-secret-Zk8xQ2vN7pLr4tYw"),
        )
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", old_refresh.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(".postie/cc.yaml.state.json")).unwrap(),
    )
    .unwrap();
    let stored = state["envs"]["mock"]["vars"]["refresh_token"]["value"]
        .as_str()
        .unwrap();
    assert_ne!(stored, old_refresh);
    assert_eq!(
        stored,
        shared
            .lock()
            .await
            .value("refresh_token")
            .unwrap()
            .as_str()
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_401_triggers_one_refresh_and_one_replay() {
    let dir = project();
    let mock = mock_for(&dir);
    let mut runner = runner_for(&dir, &mock, true);
    postie::auth::login(&mut runner, true, &mut |_: &str| {})
        .await
        .unwrap();
    // The client does not know the server's clock moved: it finds out from the 401.
    mock.shared().advance(Duration::from_secs(25 * 3600));
    let r = runner.send("find_list").await;
    assert!(r.ok(), "{:?}", r.failure);
    assert_eq!(
        r.notes,
        vec!["refreshed access token (rejected with 401)".to_string()]
    );
    let statuses: Vec<u16> = mock
        .shared()
        .journal(1000)
        .1
        .iter()
        .filter(|e| e.path == "/v3/contact_lists")
        .map(|e| e.status)
        .collect();
    assert_eq!(statuses, vec![401, 200]);
}

#[test]
fn device_login_against_the_mock() {
    let dir = project();
    let run = run_postie(
        dir.path(),
        &["auth", "login", "cc.yaml", "--mock", "--device", "--fresh"],
        &[],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("logged in with the device flow"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr.contains("/activate and enter the code"),
        "{}",
        run.all()
    );
    let status = run_postie(
        dir.path(),
        &["auth", "status", "cc.yaml", "--env", "mock"],
        &[],
        None,
    );
    assert!(
        status.stdout.contains("refresh token: stored"),
        "{}",
        status.all()
    );
}

#[test]
fn login_refuses_a_non_loopback_redirect() {
    let dir = project();
    let run = run_postie(
        dir.path(),
        &[
            "auth",
            "login",
            "cc.yaml",
            "--mock",
            "--var",
            "redirect_uri=https://example.com/cb",
            "--no-browser",
        ],
        &[],
        None,
    );
    assert_eq!(run.code, 2, "nothing was sent: {}", run.all());
    assert!(
        run.stderr.contains("only listens on loopback"),
        "{}",
        run.all()
    );
}

#[test]
fn pty_prompt_completion_and_ctrl_c_cancels_a_slow_request() {
    use expectrl::{ControlCode, Expect, Session};
    let server = httpmock::MockServer::start();
    server.mock(|when, then| {
        when.path("/slow");
        then.status(200).delay(Duration::from_secs(20));
    });
    server.mock(|when, then| {
        when.path("/fast");
        then.status(200).body("{\"ok\":true}");
    });
    let dir = tempfile::tempdir().unwrap();
    let col = format!(
        "name: pty\nrequests:\n  slowpoke:\n    url: {0}/slow\n  fast_one:\n    url: {0}/fast\nflows:\n  f:\n    steps: [fast_one]\n",
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
    p.expect("pty [default] > ").unwrap();
    // Tab completes a request name after `send`, and a command at the start of a line.
    p.send("send slo\t").unwrap();
    p.expect("send slowpoke").unwrap();
    p.send("\r").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    p.send(ControlCode::EndOfText).unwrap();
    p.expect("cancelled (Ctrl-C)").unwrap();
    p.expect("pty [default] > ").unwrap();
    p.send("fas\t").unwrap();
    p.expect("fast_one").unwrap();
    p.send("\r").unwrap();
    p.expect("HTTP 200 OK").unwrap();
    p.send_line("quit").unwrap();
    for _ in 0..50 {
        if !p.get_process().is_alive().unwrap_or(false) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the REPL did not exit after quit");
}

/// A real browser logs in: headless Chromium (Debian's `chromium` + `chromium-driver`, which
/// `.ci/run` installs) opens the URL `login` prints and clicks Allow on the mock's consent page.
#[tokio::test(flavor = "multi_thread")]
async fn browser_clicks_allow_and_login_finishes() {
    let dir = project();
    // A client registered for this test, redirecting to a free loopback port.
    let port = crate::common::closed_port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let mut cfg = postie::mock::MockConfig::bundled().unwrap();
    cfg.add_client_spec(&format!("browser-app:browser-secret:{redirect}"))
        .unwrap();
    cfg.auto_approve = false;
    let mock = postie::mock::MockServer::start(cfg).unwrap();
    let collection = postie::collection::Collection::load(&dir.path().join("cc.yaml")).unwrap();
    let vars = vec![
        ("mock_url".to_string(), mock.url().to_string()),
        ("client_id".into(), "browser-app".into()),
        ("client_secret".into(), "browser-secret".into()),
        ("redirect_uri".into(), redirect.clone()),
    ];
    let mut runner = postie::runner::Runner::new(
        collection,
        postie::runner::RunOptions {
            env: Some("mock".into()),
            vars,
            mock_url: None,
            fresh: true,
            state_dir: None,
            ..Default::default()
        },
    )
    .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let login = tokio::spawn(async move {
        let mut say = move |s: &str| {
            let _ = tx.send(s.to_string());
        };
        let out = postie::auth::login(&mut runner, true, &mut say).await;
        (out, runner)
    });
    let url = loop {
        let line = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        if let Some(u) = line.lines().find_map(|l| l.trim().strip_prefix("http")) {
            break format!("http{u}");
        }
    };
    let browser = crate::common::browser::Browser::start().await;
    let result = click_allow(&browser, &url).await;
    browser.close().await;
    result.unwrap();
    let (out, runner) = tokio::time::timeout(Duration::from_secs(20), login)
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.as_ref().is_ok_and(|m| m.starts_with("logged in")),
        "{out:?}"
    );
    let token = runner
        .value("access_token")
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    let claims = postie::jwt::claims(&token).unwrap();
    assert_eq!(claims["cid"], "browser-app");
}

/// Opens the authorize URL, clicks `#allow`, waits for the callback page.
async fn click_allow(b: &crate::common::browser::Browser, url: &str) -> Result<(), String> {
    b.goto(url).await;
    let allow = b.find("#allow").await.ok_or("no Allow button")?;
    b.click(&allow).await;
    for _ in 0..200 {
        if b.source().await.contains("<h1>Logged in</h1>") {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("the browser never reached the callback page".to_string())
}

#[test]
fn run_refuses_a_nulling_put_unless_yes() {
    let dir = project();
    let mut text = std::fs::read_to_string(dir.path().join("cc.yaml")).unwrap();
    text.push_str("  careless:\n    steps: [find_contact, update_contact_careless]\n");
    std::fs::write(dir.path().join("cc.yaml"), text).unwrap();
    let login = run_postie(
        dir.path(),
        &["run", "cc.yaml", "--mock", "--flow", "login"],
        &[],
        None,
    );
    assert_eq!(login.code, 0, "{}", login.all());
    let seed = run_postie(
        dir.path(),
        &["run", "cc.yaml", "--mock", "--flow", "sign_up_form"],
        &[],
        None,
    );
    assert_eq!(seed.code, 0, "{}", seed.all());
    // Headless, the guard protects as `send` does: not sent, and the advice is runnable.
    let refused = run_postie(
        dir.path(),
        &["run", "cc.yaml", "--mock", "--flow", "careless"],
        &[],
        None,
    );
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(
        refused.stdout.contains("not sent: pass --yes")
            && refused.stdout.contains("- job_title: \"Mathematician\""),
        "{}",
        refused.stdout
    );
    let sent = run_postie(
        dir.path(),
        &["run", "cc.yaml", "--mock", "--flow", "careless", "--yes"],
        &[],
        None,
    );
    assert_eq!(sent.code, 0, "{}", sent.all());
    assert!(
        sent.stdout.contains("PUT guard: PUT") && sent.stdout.contains("sent anyway (--yes)"),
        "{}",
        sent.stdout
    );
    // It was sent: the contact lost its job title, as Constant Contact would do.
    let after = run_postie(
        dir.path(),
        &["send", "cc.yaml", "find_contact", "--mock"],
        &[],
        None,
    );
    assert!(!after.stdout.contains("Mathematician"), "{}", after.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_process_adopts_tokens_another_refreshed_instead_of_spending_a_rotated_one() {
    let dir = project();
    let mock = mock_for(&dir);
    let mut a = runner_for(&dir, &mock, false);
    postie::auth::login(&mut a, true, &mut |_: &str| {})
        .await
        .unwrap();
    // B starts now, with the same tokens on disk.
    let mut b = runner_for(&dir, &mock, false);
    let note = postie::auth::refresh(&mut a, "requested").await.unwrap();
    assert!(note.starts_with("refreshed access token"), "{note}");
    let rotated = a.value("refresh_token").unwrap().clone();
    let note = postie::auth::refresh(&mut b, "requested").await.unwrap();
    assert_eq!(
        note,
        "adopted the access token another postie process refreshed"
    );
    assert_eq!(b.value("refresh_token").unwrap(), rotated);
    let refreshes = mock
        .shared()
        .journal(100)
        .1
        .iter()
        .filter(|e| e.route == "token")
        .count();
    assert_eq!(
        refreshes, 2,
        "the login's exchange and one refresh; B sent none"
    );
    assert!(b.send("find_list").await.ok());
}

#[test]
fn pkce_login_for_a_public_client() {
    let dir = tempfile::tempdir().unwrap();
    let col = r#"name: pkce
variables:
  client_id: 9c4e2d1a-7b3f-4e8a-a6c5-2f1d0e9b8a76
  redirect_uri: http://localhost:8910/callback
environments:
  mock: {base: "<<mock_url>>"}
oauth2:
  authorize: authorize
  token: token
  refresh: refresh
  pkce: true
requests:
  authorize:
    url: <<base>>/oauth2/default/v1/authorize
    query: {client_id: "<<client_id>>", redirect_uri: "<<redirect_uri>>", response_type: code, scope: contact_data offline_access,
            state: "<<oauth_state>>", code_challenge: "<<code_challenge>>", code_challenge_method: S256}
  token:
    method: POST
    url: <<base>>/oauth2/default/v1/token
    form: {grant_type: authorization_code, code: "<<code>>", redirect_uri: "<<redirect_uri>>", client_id: "<<client_id>>", code_verifier: "<<code_verifier>>"}
  refresh:
    method: POST
    url: <<base>>/oauth2/default/v1/token
    form: {grant_type: refresh_token, refresh_token: "<<refresh_token>>", client_id: "<<client_id>>"}
  lists:
    url: <<base>>/v3/contact_lists
    auth: {bearer: "<<access_token>>"}
"#;
    std::fs::write(dir.path().join("p.yaml"), col).unwrap();
    let script = "login\nsend lists\nrefresh\nstatus\n";
    let run = run_postie(dir.path(), &["repl", "p.yaml", "--mock"], &[], Some(script));
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("logged in; access token valid for"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("✓ lists  GET"), "{}", run.stdout);
    assert!(
        run.stdout.contains("refreshed access token (requested)"),
        "{}",
        run.stdout
    );
    let state = std::fs::read_to_string(dir.path().join(".postie/p.yaml.state.json")).unwrap();
    // RFC 7636 §7.1 and RFC 6749 §10.12: the verifier, challenge, state and code are used once
    // and never saved, so a later `send authorize` cannot reuse them.
    let saved: Value = serde_json::from_str(&state).unwrap();
    let vars = saved["envs"]["mock"]["vars"].as_object().unwrap();
    for one_time in [
        "code_verifier",
        "code_challenge",
        "oauth_state",
        "code",
        "state",
    ] {
        assert!(
            !vars.contains_key(one_time),
            "{one_time} was saved: {state}"
        );
    }
    assert!(!state.contains("code_verifier"), "{state}");
    assert_eq!(
        saved["envs"]["mock"]["grant"]["client_auth"], "none",
        "the grant records the public client: {state}"
    );
}

#[test]
fn pasted_curl_becomes_a_request_and_save_keeps_the_file_s_comments() {
    let dir = project();
    let mock = mock_for(&dir);
    let original = std::fs::read_to_string(dir.path().join("cc.yaml")).unwrap();
    // A curl line as the vendor's docs write it, pasted over three lines, sent at once, saved.
    let script = format!(
        "login --no-browser\nimport curl\ncurl -X POST '{url}/v3/contact_lists' \\\n  -H 'Authorization: Bearer {{access_token}}' -H 'X-Api-Key: k-12345678' \\\n  -H 'Content-Type: application/json' -d '{{\"name\":\"pasted list\"}}'\n\nsend post_contact_lists\nsave\n",
        url = mock.url()
    );
    let run = run_postie(
        dir.path(),
        &[
            "cc.yaml",
            "--env",
            "mock",
            "--var",
            &format!("mock_url={}", mock.url()),
        ],
        &[],
        Some(&script),
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("added request `post_contact_lists`"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("HTTP 201"), "{}", run.stdout);
    assert!(run.stdout.contains("saved 1 request(s)"), "{}", run.stdout);
    assert!(
        !run.all().contains("k-12345678"),
        "the pasted key is masked:\n{}",
        run.all()
    );
    let saved = std::fs::read_to_string(dir.path().join("cc.yaml")).unwrap();
    // Everything that was there is still there, comments included; the request comes last in
    // `requests:`, its key in .env.
    let kept: Vec<&str> = original.lines().collect();
    let now: Vec<&str> = saved.lines().collect();
    let mut it = now.iter();
    for l in &kept {
        assert!(it.any(|n| n == l), "line `{l}` lost or moved");
    }
    assert!(
        saved.contains("  post_contact_lists:\n    method: POST\n"),
        "{saved}"
    );
    assert!(
        saved.contains("Authorization: Bearer <<access_token>>"),
        "{saved}"
    );
    assert!(!saved.contains("k-12345678"), "{saved}");
    assert!(
        std::fs::read_to_string(dir.path().join(".env"))
            .unwrap()
            .contains("k-12345678")
    );
    let v = run_postie(dir.path(), &["validate", "cc.yaml"], &[], None);
    assert_eq!(v.code, 0, "{}", v.all());
}

#[test]
fn repl_injects_faults_and_token_faults_into_its_mock() {
    let dir = project();
    let script = "\
login
mock fault add GET /v3/contact_lists status=503 times=1
mock fault add /v3/* delay=1ms
mock fault list
send find_list
send find_list
mock fault clear 1
mock fault list
mock fault add GET /v3/* stauts=1
mock fault clear
mock tokens expire
send find_list
refresh
send find_list
mock tokens rotate
mock journal
quit
";
    let run = run_postie(
        dir.path(),
        &["repl", "cc.yaml", "--mock", "--fresh"],
        &[],
        Some(script),
    );
    let out = run.all();
    assert!(out.contains("fault 1 added"), "{out}");
    assert!(
        out.contains("status 503") && out.contains("times=1"),
        "{out}"
    );
    // The first find_list met the fault, the second went through.
    let statuses: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("find_list") && (l.contains(" 503") || l.contains(" 200")))
        .collect();
    assert!(
        statuses.len() >= 2 && statuses[0].contains("503") && statuses[1].contains("200"),
        "{out}"
    );
    assert!(out.contains("fault 1 removed"), "{out}");
    assert!(out.contains("stauts"), "{out}");
    assert!(out.contains("1 faults cleared"), "{out}");
    assert!(
        out.contains("every access token issued so far now fails"),
        "{out}"
    );
    assert!(out.contains(" 401"), "{out}");
    assert!(out.contains("signing key rotated to"), "{out}");
    assert!(out.contains("fault: #1 status 503"), "{out}");
    assert!(out.contains("fault.tokens_expired"), "{out}");
}
