//! Secrets bound to hosts: a secret goes only where the collection says it may — in `run`,
//! `send`, the REPL, `export curl` and across redirects.

use httpmock::prelude::*;

use crate::common::{Project, run_postie};

/// A collection whose API lives at `good` (a URL variable in the environment) and whose key
/// comes from the process environment; `steal` sends the key to `evil`.
fn project(good: &str, evil: &str, hosts: &str) -> Project {
    Project::new(&format!(
        r#"name: s
environments:
  prod:
    api: {good}
    api_key: {{value: "<<env.API_KEY>>", secret: true{hosts}}}
requests:
  ok:
    url: <<api>>/ok
    headers: {{X-Api-Key: "<<api_key>>"}}
  steal:
    url: {evil}/steal
    query: {{k: "<<api_key>>"}}
  steal_header:
    url: {evil}/steal
    headers: {{X-Api-Key: "<<api_key>>"}}
  plain:
    url: {evil}/plain
  hop:
    method: POST
    url: <<api>>/hop
    follow_redirects: true
    headers: {{X-Api-Key: "<<api_key>>", Authorization: "Bearer <<api_key>>"}}
  hop_body:
    method: POST
    url: <<api>>/hop
    follow_redirects: true
    json: {{key: "<<api_key>>"}}
flows:
  main:
    steps: [ok, steal]
"#
    ))
}

const KEY: (&str, &str) = ("API_KEY", "k-live-9f8e7d6c5b4a");

#[test]
fn a_secret_goes_only_to_the_hosts_of_the_collections_url_variables() {
    let good = MockServer::start();
    let evil = MockServer::start();
    let ok = good.mock(|when, then| {
        when.path("/ok").header("x-api-key", KEY.1);
        then.status(200);
    });
    let stolen = evil.mock(|when, then| {
        when.path("/steal");
        then.status(200);
    });
    let plain = evil.mock(|when, then| {
        when.path("/plain");
        then.status(200);
    });
    // Same machine, another host name: `localhost` is not the `127.0.0.1` the variables name.
    let evil_url = format!("http://localhost:{}", evil.port());
    let p = project(&good.base_url(), &evil_url, "");

    // run: the first step goes, the second is refused before sending, named, exit 2.
    let r = p.postie_env(&["run", "c.yaml", "-e", "prod"], &[KEY]);
    assert_eq!(r.code, 2, "{}", r.all());
    ok.assert_calls(1);
    stolen.assert_calls(0);
    let out = r.all();
    assert!(
        out.contains("would send secret `api_key` in the URL to localhost, but it is bound to 127.0.0.1 (the hosts of the collection's URL variables)"),
        "{out}"
    );
    assert!(
        out.contains("--allow-secret-host api_key=localhost"),
        "{out}"
    );
    assert!(!out.contains(KEY.1), "{out}");

    // send: the same, in a header; a request without the secret goes anywhere.
    let r = p.postie_env(&["send", "c.yaml", "steal_header", "-e", "prod"], &[KEY]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.all().contains("in header `X-Api-Key` to localhost"),
        "{}",
        r.all()
    );
    stolen.assert_calls(0);
    let r = p.postie_env(&["send", "c.yaml", "plain", "-e", "prod"], &[KEY]);
    assert_eq!(r.code, 0, "{}", r.all());
    plain.assert_calls(1);

    // The REPL refuses it too, and goes on.
    let r = run_postie(
        p.dir.path(),
        &["repl", "c.yaml", "-e", "prod"],
        &[KEY],
        Some("show steal\nsend steal\nsend ok\n"),
    );
    assert!(
        r.all().contains("would send secret `api_key`"),
        "{}",
        r.all()
    );
    // `show` still shows it (masked), and says what sending it would do.
    assert!(
        r.all()
            .contains("warning: `send` would refuse it: request `steal` would send secret"),
        "{}",
        r.all()
    );
    assert!(!r.all().contains(KEY.1), "{}", r.all());
    stolen.assert_calls(0);
    ok.assert_calls(2);

    // export curl --reveal will not write the line that would leak it.
    let r = p.postie_env(
        &["export", "curl", "c.yaml", "-e", "prod", "--reveal"],
        &[KEY],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr
            .contains("# steal: not exported: request `steal` would send secret"),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("/steal?k="), "{}", r.stdout);

    // --allow-secret-host lets that pair through, once and visibly.
    let r = p.postie_env(
        &[
            "send",
            "c.yaml",
            "steal",
            "-e",
            "prod",
            "--allow-secret-host",
            "api_key=localhost",
        ],
        &[KEY],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.all().contains(
            "secret `api_key` sent to localhost in the URL, allowed by --allow-secret-host"
        ),
        "{}",
        r.all()
    );
    stolen.assert_calls(1);
}

#[test]
fn hosts_bind_a_secret_to_exactly_those_hosts() {
    let good = MockServer::start();
    let other = MockServer::start();
    let ok = good.mock(|when, then| {
        when.path("/ok");
        then.status(200);
    });
    let stolen = other.mock(|when, then| {
        when.path("/steal");
        then.status(200);
    });
    // Both on 127.0.0.1: `hosts:` with a port tells them apart.
    let p = project(
        &good.base_url(),
        &other.base_url(),
        &format!(", hosts: [\"127.0.0.1:{}\"]", good.port()),
    );
    let r = p.postie_env(&["run", "c.yaml", "-e", "prod"], &[KEY]);
    assert_eq!(r.code, 2, "{}", r.all());
    ok.assert_calls(1);
    stolen.assert_calls(0);
    assert!(
        r.all().contains(&format!(
            "bound to 127.0.0.1:{} (its `hosts:`)",
            good.port()
        )),
        "{}",
        r.all()
    );
}

#[test]
fn redirects_to_another_host_never_carry_a_secret() {
    let good = MockServer::start();
    let evil = MockServer::start();
    let evil_url = format!("http://localhost:{}", evil.port());
    good.mock(|when, then| {
        when.path("/hop");
        then.status(307)
            .header("location", format!("{evil_url}/landed"));
    });
    // Headers that carry the secret (and Authorization) are dropped at the host change.
    let clean = evil.mock(|when, then| {
        when.path("/landed")
            .header_missing("x-api-key")
            .header_missing("authorization");
        then.status(200);
    });
    let p = project(&good.base_url(), &evil_url, "");
    let r = p.postie_env(&["send", "c.yaml", "hop", "-e", "prod"], &[KEY]);
    assert_eq!(r.code, 0, "{}", r.all());
    clean.assert_calls(1);
    // A 307 resends the body: with the secret in it, the redirect is not followed.
    let r = p.postie_env(&["send", "c.yaml", "hop_body", "-e", "prod"], &[KEY]);
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(
        r.all().contains(
            "not following the 307 redirect to localhost: the body it would resend carries a secret"
        ),
        "{}",
        r.all()
    );
    clean.assert_calls(1);
}

#[test]
fn hosts_are_checked_when_the_collection_loads() {
    for (var, says) in [
        (
            "{value: x, hosts: [a.test]}",
            "lists `hosts:` but is not `secret: true`",
        ),
        (
            "{value: x, secret: true, hosts: [\"https://a.test/x\"]}",
            "is a URL; `hosts:` takes host names (`a.test`)",
        ),
        (
            "{value: x, secret: true, hosts: []}",
            "has an empty `hosts:`",
        ),
        (
            "{value: x, secret: true, host: [a.test]}",
            "unknown `host` (did you mean `hosts`?)",
        ),
    ] {
        let p = Project::new(&format!(
            "name: s\nvariables:\n  k: {var}\nrequests:\n  a: {{url: http://127.0.0.1:9/}}\n"
        ));
        let r = p.postie(&["validate", "c.yaml"]);
        assert_eq!(r.code, 2, "{var}: {}", r.all());
        assert!(r.stderr.contains(says), "{var}: {}", r.stderr);
        assert!(r.stderr.contains("c.yaml:3:"), "{var}: {}", r.stderr);
    }
}
