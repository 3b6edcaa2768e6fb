//! The OAuth2 client against authorization servers it did not write: httpmock scripted as one
//! (opaque tokens with `expires_in`, awkward secrets, a dead refresh token), and the bundled mock
//! for what needs a real one (two collections in one folder, device-flow refresh, rotation seen by
//! a long-lived process).

use std::time::Duration;

use httpmock::Method::{GET, POST};
use httpmock::MockServer;
use serde_json::{Value, json};

use crate::common::{Project, mock_for, project, run_postie, runner_for};

/// A collection for an authorization server at `base` with opaque tokens; `extra` is appended
/// to the `oauth2:` block.
fn opaque_collection(base: &str, extra: &str) -> String {
    format!(
        r#"name: opaque
variables:
  base: {base}
  client_id: app-7
  client_secret: {{value: "<<env.APP_SECRET>>", secret: true}}
  redirect_uri: http://127.0.0.1:0/callback
  scope: read write
oauth2:
  authorize: authorize
  token: token
  refresh: refresh
{extra}
requests:
  authorize:
    url: <<base>>/authorize
    query: {{client_id: "<<client_id>>", redirect_uri: "<<redirect_uri>>", response_type: code, scope: "<<scope>>", state: "<<oauth_state>>"}}
  token:
    method: POST
    url: <<base>>/token
    auth: {{basic: {{user: "<<client_id>>", password: "<<client_secret>>"}}}}
    form: {{grant_type: authorization_code, code: "<<code>>", redirect_uri: "<<redirect_uri>>"}}
  refresh:
    method: POST
    url: <<base>>/token
    auth: {{basic: {{user: "<<client_id>>", password: "<<client_secret>>"}}}}
    form: {{grant_type: refresh_token, refresh_token: "<<refresh_token>>"}}
  me:
    url: <<base>>/me
    auth: {{bearer: "<<access_token>>"}}
  introspect:
    method: POST
    url: <<base>>/introspect
    json: {{token: "<<access_token>>"}}
"#
    )
}

fn basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    let enc = |s: &str| {
        url::form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// An awkward secret: characters that break Basic authentication unless form-encoded first.
const AWKWARD: &str = "p%:+é w/x";

#[test]
fn two_collections_in_one_folder_never_share_tokens() {
    let dir = project();
    std::fs::copy(dir.path().join("cc.yaml"), dir.path().join("other.yaml")).unwrap();
    let login = run_postie(
        dir.path(),
        &["auth", "login", "cc.yaml", "--mock"],
        &[],
        None,
    );
    assert_eq!(login.code, 0, "{}", login.all());
    let status = run_postie(
        dir.path(),
        &["auth", "status", "other.yaml", "--env", "mock"],
        &[],
        None,
    );
    assert!(
        status.stdout.contains("access token: none"),
        "the other collection sees no token: {}",
        status.all()
    );
    let send = run_postie(
        dir.path(),
        &["send", "other.yaml", "find_list", "--mock"],
        &[],
        None,
    );
    assert_eq!(send.code, 2, "nothing may be sent: {}", send.all());
    assert!(
        send.stderr.contains("`<<access_token>>` is undefined")
            && send.stderr.contains("log in first"),
        "{}",
        send.all()
    );
    // The first collection still has its login.
    let mine = run_postie(
        dir.path(),
        &["auth", "status", "cc.yaml", "--env", "mock"],
        &[],
        None,
    );
    assert!(
        mine.stdout.contains("access token (JWT): valid for"),
        "{}",
        mine.all()
    );
}

#[test]
fn opaque_tokens_refresh_early_from_expires_in_and_inputs_stay_inputs() {
    let server = MockServer::start();
    let token = server.mock(|when, then| {
        when.method(POST)
            .path("/token")
            .header("authorization", basic("app-7", AWKWARD))
            .form_urlencoded_tuple("grant_type", "authorization_code");
        // One second to live: within the 2 s minimum margin, so the next use refreshes first.
        then.status(200).json_body(json!({"access_token": "opaque-one", "refresh_token": "rt-one", "expires_in": 1, "token_type": "Bearer", "scope": "dummy"}));
    });
    let refresh = server.mock(|when, then| {
        when.method(POST)
            .path("/token")
            .header("authorization", basic("app-7", AWKWARD))
            .form_urlencoded_tuple("grant_type", "refresh_token")
            .form_urlencoded_tuple("refresh_token", "rt-one");
        then.status(200).json_body(json!({"access_token": "opaque-two", "refresh_token": "rt-two", "expires_in": 3600, "token_type": "Bearer", "scope": "dummy"}));
    });
    let me_old = server.mock(|when, then| {
        when.method(GET)
            .path("/me")
            .header("authorization", "Bearer opaque-one");
        then.status(401);
    });
    let me = server.mock(|when, then| {
        when.method(GET)
            .path("/me")
            .header("authorization", "Bearer opaque-two");
        then.status(200).json_body(json!({"id": "u1"}));
    });
    let p = Project::new(&opaque_collection(&server.base_url(), ""));
    let env = [("APP_SECRET", AWKWARD)];
    // The code arrives by hand here (as after a manual `send authorize`).
    let t = p.postie_env(&["send", "c.yaml", "token", "--var", "code=c-1"], &env);
    assert_eq!(t.code, 0, "{}", t.all());
    token.assert_calls(1);
    let run = p.postie_env(&["send", "c.yaml", "me"], &env);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stderr.contains("refreshed access token (expires in"),
        "an opaque token refreshes before it expires: {}",
        run.all()
    );
    refresh.assert_calls(1);
    me.assert_calls(1);
    me_old.assert_calls(0);
    // The response's `scope: dummy` did not replace the collection's input.
    let vars = p.postie_env(&["vars", "c.yaml"], &env);
    assert!(
        vars.stdout.contains("scope = read write  (collection)"),
        "{}",
        vars.stdout
    );
    let status = p.postie_env(&["auth", "status", "c.yaml"], &env);
    assert!(
        status
            .stdout
            .contains("access token (opaque): valid for 59m")
            || status
                .stdout
                .contains("access token (opaque): valid for 1h00m"),
        "{}",
        status.all()
    );
    assert!(
        status.stdout.contains("scopes dummy") && status.stdout.contains("basic authentication"),
        "{}",
        status.all()
    );
    for secret in [AWKWARD, "opaque-one", "opaque-two", "rt-one", "rt-two"] {
        for out in [&t, &run, &vars, &status] {
            assert!(
                !out.all().contains(secret),
                "{secret} leaked: {}",
                out.all()
            );
        }
    }
}

#[test]
fn a_dead_refresh_token_stops_the_request_and_says_log_in() {
    let server = MockServer::start();
    server.mock(|when, then| {
        when.method(POST)
            .path("/token")
            .form_urlencoded_tuple("grant_type", "authorization_code");
        then.status(200).json_body(
            json!({"access_token": "opaque-one", "refresh_token": "rt-revoked", "expires_in": 1}),
        );
    });
    let refresh = server.mock(|when, then| {
        when.method(POST)
            .path("/token")
            .form_urlencoded_tuple("grant_type", "refresh_token");
        then.status(400).json_body(json!({"error": "invalid_grant", "error_description": "The refresh token is invalid or expired."}));
    });
    let me = server.mock(|when, then| {
        when.method(GET).path("/me");
        then.status(401);
    });
    let p = Project::new(&opaque_collection(&server.base_url(), ""));
    let env = [("APP_SECRET", "s")];
    assert_eq!(
        p.postie_env(&["send", "c.yaml", "token", "--var", "code=c"], &env)
            .code,
        0
    );
    std::thread::sleep(Duration::from_millis(1100));
    let run = p.postie_env(&["send", "c.yaml", "me"], &env);
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(
        run.stderr
            .contains("the refresh token was rejected (token endpoint answered 400: invalid_grant")
            && run.stderr.contains("log in again: `postie auth login"),
        "{}",
        run.all()
    );
    me.assert_calls(0);
    refresh.assert_calls(1);
    // Marked dead: the next send does not spend it again, and still says what to do.
    let again = p.postie_env(&["send", "c.yaml", "me"], &env);
    assert_eq!(again.code, 3, "{}", again.all());
    assert!(again.stderr.contains("rejected earlier"), "{}", again.all());
    refresh.assert_calls(1);
    me.assert_calls(0);
    let status = p.postie_env(&["auth", "status", "c.yaml"], &env);
    assert!(
        status
            .stdout
            .contains("refresh token: rejected by the server"),
        "{}",
        status.all()
    );
    let refresh_cmd = p.postie_env(&["auth", "refresh", "c.yaml"], &env);
    assert_eq!(refresh_cmd.code, 2, "nothing sent: {}", refresh_cmd.all());
}

#[test]
fn a_token_in_the_body_counts_for_the_early_refresh() {
    let server = MockServer::start();
    server.mock(|when, then| {
        when.method(POST)
            .path("/token")
            .form_urlencoded_tuple("grant_type", "authorization_code");
        then.status(200).json_body(
            json!({"access_token": "opaque-one", "refresh_token": "rt-1", "expires_in": 1}),
        );
    });
    let refresh = server.mock(|when, then| {
        when.method(POST)
            .path("/token")
            .form_urlencoded_tuple("grant_type", "refresh_token");
        then.status(200)
            .json_body(json!({"access_token": "opaque-two", "expires_in": 3600}));
    });
    let introspect = server.mock(|when, then| {
        when.method(POST)
            .path("/introspect")
            .json_body(json!({"token": "opaque-two"}));
        then.status(200).json_body(json!({"active": true}));
    });
    let p = Project::new(&opaque_collection(&server.base_url(), ""));
    let env = [("APP_SECRET", "s")];
    assert_eq!(
        p.postie_env(&["send", "c.yaml", "token", "--var", "code=c"], &env)
            .code,
        0
    );
    let run = p.postie_env(&["send", "c.yaml", "introspect"], &env);
    assert_eq!(run.code, 0, "{}", run.all());
    refresh.assert_calls(1);
    introspect.assert_calls(1);
}

#[test]
fn client_secret_post_and_validate_checks_the_oauth2_block() {
    let server = MockServer::start();
    let token = server.mock(|when, then| {
        when.method(POST)
            .path("/token")
            .form_urlencoded_tuple("client_id", "app-7")
            .form_urlencoded_tuple("client_secret", AWKWARD)
            .form_urlencoded_tuple("code", "c");
        then.status(200)
            .json_body(json!({"access_token": "opaque-one", "expires_in": 3600}));
    });
    // With `client_auth: post`, postie authenticates the client itself: the requests carry no
    // `auth:` of their own.
    let text = opaque_collection(&server.base_url(), "  client_auth: post\n").replace(
        "    auth: {basic: {user: \"<<client_id>>\", password: \"<<client_secret>>\"}}\n",
        "",
    );
    let p = Project::new(&text);
    let env = [("APP_SECRET", AWKWARD)];
    let run = p.postie_env(&["send", "c.yaml", "token", "--var", "code=c"], &env);
    assert_eq!(run.code, 0, "{}", run.all());
    token.assert_calls(1);
    // A request that still authenticates itself contradicts client_auth: located error.
    let both = Project::new(&opaque_collection(
        &server.base_url(),
        "  client_auth: post\n",
    ));
    let v = both.postie(&["validate", "c.yaml"]);
    assert_eq!(v.code, 2, "{}", v.all());
    assert!(
        v.stderr.contains("c.yaml:") && v.stderr.contains("authenticates the client itself"),
        "{}",
        v.all()
    );
    // The authorize request must carry the state the block names (unless PKCE is on).
    let nostate = Project::new(&opaque_collection(&server.base_url(), "  state: csrf\n"));
    let v = nostate.postie(&["validate", "c.yaml"]);
    assert_eq!(v.code, 2, "{}", v.all());
    assert!(
        v.stderr
            .contains("request `authorize` never uses `<<csrf>>`"),
        "{}",
        v.all()
    );
    let renamed = Project::new(
        &opaque_collection(&server.base_url(), "  state: csrf\n")
            .replace("state: \"<<oauth_state>>\"", "state: \"<<csrf>>\""),
    );
    let v = renamed.postie(&["validate", "c.yaml"]);
    assert_eq!(v.code, 0, "{}", v.all());
}

/// Starts `login` on a runner in the background; returns the authorize URL it printed, the
/// progress lines, and the task.
async fn start_login(
    mut runner: postie::runner::Runner,
) -> (
    url::Url,
    tokio::sync::mpsc::UnboundedReceiver<String>,
    tokio::task::JoinHandle<(
        Result<String, postie::auth::AuthError>,
        postie::runner::Runner,
    )>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let task = tokio::spawn(async move {
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
            break url::Url::parse(&format!("http{u}")).unwrap();
        }
    };
    (url, rx, task)
}

fn param(u: &url::Url, k: &str) -> String {
    u.query_pairs()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

fn runner_on(p: &Project) -> postie::runner::Runner {
    let c = postie::collection::Collection::load(&p.path("c.yaml")).unwrap();
    postie::runner::Runner::new(
        c,
        postie::runner::RunOptions {
            vars: vec![("client_secret".into(), "s".into())],
            ..Default::default()
        },
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_listener_ignores_probes_uses_an_ephemeral_port_and_tells_the_truth() {
    let server = MockServer::start_async().await;
    let token = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/token")
                .form_urlencoded_tuple("code", "code-1");
            then.status(200)
                .json_body(json!({"access_token": "opaque-one", "expires_in": 60}));
        })
        .await;
    let p = Project::new(&opaque_collection(&server.base_url(), ""));
    let (url, _rx, task) = start_login(runner_on(&p)).await;
    // `redirect_uri: http://127.0.0.1:0/callback` became a real port, sent in the authorize URL.
    let redirect = url::Url::parse(&param(&url, "redirect_uri")).unwrap();
    assert_ne!(redirect.port(), Some(0), "{redirect}");
    let state = param(&url, "state");
    let http = reqwest::Client::new();
    let addr = format!("127.0.0.1:{}", redirect.port().unwrap());
    // A browser preconnect (open, say nothing, close) and a favicon request change nothing.
    drop(std::net::TcpStream::connect(&addr).unwrap());
    let fav = http
        .get(format!("http://{addr}/favicon.ico"))
        .send()
        .await
        .unwrap();
    assert_eq!(fav.status(), 404);
    let page = http
        .get(format!("{redirect}?code=code-1&state={state}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<h1>Logged in</h1>"));
    let (out, runner) = task.await.unwrap();
    assert!(
        out.as_ref().is_ok_and(|m| m.starts_with("logged in")),
        "{out:?}"
    );
    token.assert_calls_async(1).await;
    // The one-time values are gone: nothing of the login stays in scope.
    for one_time in ["oauth_state", "code"] {
        assert!(
            runner.scope().origin(one_time) != Some(postie::scope::Origin::Engine),
            "{one_time}"
        );
    }
    assert!(runner.env_state().vars().get("code").is_none());

    // A denial gets an honest page and an error, not "Logged in".
    let (url, _rx, task) = start_login(runner_on(&p)).await;
    let redirect = param(&url, "redirect_uri");
    let state = param(&url, "state");
    let page = http
        .get(format!(
            "{redirect}?error=access_denied&error_description=no+thanks&state={state}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 400);
    let text = page.text().await.unwrap();
    assert!(
        text.contains("Login failed")
            && text.contains("access_denied")
            && !text.contains("Logged in"),
        "{text}"
    );
    let (out, _) = task.await.unwrap();
    assert!(
        out.as_ref()
            .is_err_and(|e| e.message.contains("authorization refused: access_denied")),
        "{out:?}"
    );
    // A forged redirect with another state is refused before any code is exchanged.
    let (url, _rx, task) = start_login(runner_on(&p)).await;
    let redirect = param(&url, "redirect_uri");
    let page = http
        .get(format!("{redirect}?code=stolen&state=not-ours"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 400);
    let (out, _) = task.await.unwrap();
    assert!(
        out.as_ref()
            .is_err_and(|e| e.message.contains("possible CSRF")),
        "{out:?}"
    );
    token.assert_calls_async(1).await;
}

#[test]
fn device_flow_tokens_refresh_as_the_public_client() {
    let dir = project();
    let login = run_postie(
        dir.path(),
        &["auth", "login", "cc.yaml", "--mock", "--device"],
        &[],
        None,
    );
    assert_eq!(login.code, 0, "{}", login.all());
    assert!(!login.stderr.contains("(or )"), "{}", login.all());
    // The collection's refresh request authenticates as the confidential client with Basic; the
    // grant belongs to the public client, so the engine refreshes as that one.
    let refresh = run_postie(
        dir.path(),
        &["auth", "refresh", "cc.yaml", "--mock"],
        &[],
        None,
    );
    assert_eq!(refresh.code, 0, "{}", refresh.all());
    assert!(
        refresh
            .stdout
            .contains("refreshed access token (requested)"),
        "{}",
        refresh.all()
    );
    let status = run_postie(
        dir.path(),
        &["auth", "status", "cc.yaml", "--env", "mock"],
        &[],
        None,
    );
    assert!(
        status
            .stdout
            .contains("to client 9c4e2d1a-7b3f-4e8a-a6c5-2f1d0e9b8a76 (none authentication)"),
        "{}",
        status.all()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_lived_process_never_writes_back_a_token_another_rotated() {
    let dir = project();
    let mock = mock_for(&dir);
    let mut repl = runner_for(&dir, &mock, false);
    postie::auth::login(&mut repl, true, &mut |_: &str| {})
        .await
        .unwrap();
    repl.save().unwrap();
    let mine = repl.value("access_token").unwrap();
    // Another process (say `postie auth refresh` in another shell) rotates the tokens.
    let mut other = runner_for(&dir, &mock, false);
    postie::auth::refresh(&mut other, "requested")
        .await
        .unwrap();
    other.save().unwrap();
    let rotated = other.value("refresh_token").unwrap();
    // The long-lived one sends a request and saves: the rotated token survives on disk, and it
    // uses the other process's access token from then on.
    let r = repl.send("find_list").await;
    assert!(r.ok(), "{:?}", r.failure);
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("another postie process stored")),
        "{:?}",
        r.notes
    );
    repl.save().unwrap();
    let disk: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(".postie/cc.yaml.state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        disk["envs"]["mock"]["vars"]["refresh_token"]["value"],
        rotated
    );
    assert_eq!(repl.value("refresh_token").unwrap(), rotated);
    assert_ne!(repl.value("access_token").unwrap(), mine);
    // And its next refresh spends the current refresh token, not the revoked one.
    postie::auth::refresh(&mut repl, "requested").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn every_token_seen_stays_masked_after_rotation() {
    let dir = project();
    let mock = mock_for(&dir);
    let mut r = runner_for(&dir, &mock, false);
    postie::auth::login(&mut r, true, &mut |_: &str| {})
        .await
        .unwrap();
    let first = r.value("access_token").unwrap();
    r.set_var("mine", first.clone(), false);
    postie::auth::refresh(&mut r, "requested").await.unwrap();
    r.save().unwrap();
    // A new process: the rotated-out token is remembered and masked wherever it appears.
    let fresh = runner_for(&dir, &mock, false);
    let vars = postie::session::vars_text(&fresh);
    assert!(vars.contains("mine = (redacted)  (set)"), "{vars}");
    assert!(!vars.contains(first.as_str().unwrap()), "{vars}");
}

#[test]
fn fresh_ignores_saved_state_of_this_run_only_and_clear_deletes_it() {
    let dir = project();
    let keep = run_postie(
        dir.path(),
        &["repl", "cc.yaml", "--env", "production"],
        &[],
        Some("set note keep-me\n"),
    );
    assert_eq!(keep.code, 0, "{}", keep.all());
    let fresh = run_postie(
        dir.path(),
        &["run", "cc.yaml", "--mock", "--fresh", "--flow", "login"],
        &[],
        None,
    );
    assert_eq!(fresh.code, 0, "{}", fresh.all());
    let vars = run_postie(
        dir.path(),
        &["vars", "cc.yaml", "--env", "production"],
        &[],
        None,
    );
    assert!(
        vars.stdout.contains("note = keep-me  (set)"),
        "--fresh did not delete production's state: {}",
        vars.all()
    );
    let clear = run_postie(
        dir.path(),
        &["state", "clear", "cc.yaml", "--env", "production"],
        &[],
        None,
    );
    assert_eq!(clear.code, 0, "{}", clear.all());
    let vars = run_postie(
        dir.path(),
        &["vars", "cc.yaml", "--env", "production"],
        &[],
        None,
    );
    assert!(!vars.stdout.contains("keep-me"), "{}", vars.all());
    let mock_env = run_postie(
        dir.path(),
        &["auth", "status", "cc.yaml", "--env", "mock"],
        &[],
        None,
    );
    assert!(
        mock_env.stdout.contains("valid for"),
        "clearing production left mock alone: {}",
        mock_env.all()
    );
}
