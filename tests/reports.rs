//! The HTML report: self-contained, secrets masked, failures first — opened in headless Chromium.

use crate::common::{project, run_postie};

#[tokio::test(flavor = "multi_thread")]
async fn the_html_report_opens_in_a_browser_with_its_summary_and_no_secret() {
    let dir = project();
    let mut text = std::fs::read_to_string(dir.path().join("cc.yaml")).unwrap();
    // A flow that fails at its second step, so the report has a failure to put first.
    text.push_str("  broken:\n    steps: [login_check, teapot, sign_up]\n");
    text = text.replace(
        "requests:\n",
        "requests:\n  login_check:\n    url: <<api_url>>/v3/contact_lists\n    auth: {bearer: \"<<access_token>>\"}\n    assert: [{status: 200}]\n  teapot:\n    url: <<api_url>>/v3/contact_lists\n    auth: {bearer: \"<<access_token>>\"}\n    assert: [{status: 418}]\n",
    );
    std::fs::write(dir.path().join("cc.yaml"), &text).unwrap();
    let run = |flow: &str, report: &str| {
        run_postie(
            dir.path(),
            &[
                "run",
                "cc.yaml",
                "--mock",
                "--flow",
                flow,
                "--report",
                &format!("html={report}"),
            ],
            &[],
            None,
        )
    };
    let r = run("documented", "out/ok.html");
    assert_eq!(r.code, 0, "{}", r.all());
    let r = run("broken", "out/broken.html");
    assert_eq!(r.code, 1, "{}", r.all());

    let ok = std::fs::read_to_string(dir.path().join("out/ok.html")).unwrap();
    let broken = std::fs::read_to_string(dir.path().join("out/broken.html")).unwrap();
    // Self-contained: nothing is fetched (no scripts, no external links or styles).
    for page in [&ok, &broken] {
        for fetch in ["<script", "src=", "href=\"http", "@import", "url("] {
            assert!(!page.contains(fetch), "{fetch} in the report");
        }
    }
    // No secret reaches it: the client secret, the tokens the run received.
    let state = std::fs::read_to_string(dir.path().join(".postie/cc.yaml.state.json")).unwrap();
    // Every string under an `access_token` or `refresh_token` key, however deep.
    fn collect(v: &serde_json::Value, under: bool, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    collect(x, under || k == "access_token" || k == "refresh_token", out);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| collect(x, under, out)),
            serde_json::Value::String(t) if under && t.len() > 20 => out.push(t.clone()),
            _ => {}
        }
    }
    let mut tokens = Vec::new();
    collect(&serde_json::from_str(&state).unwrap(), false, &mut tokens);
    assert!(
        !tokens.is_empty(),
        "no token found in the state to look for"
    );
    for secret in tokens
        .iter()
        .map(String::as_str)
        .chain(["mock-secret-Zk8xQ2vN7pLr4tYw"])
    {
        assert!(!ok.contains(secret), "a secret is in the report");
        assert!(!broken.contains(secret), "a secret is in the report");
    }
    // Bodies are there, pretty-printed, in collapsible sections.
    assert!(ok.contains("<details class=\"part\"><summary>Response</summary><pre>HTTP 201"));
    assert!(
        ok.contains("&quot;action&quot;: &quot;created&quot;")
            || ok.contains("&quot;action&quot;: &quot;updated&quot;")
    );
    // Failures first, the failing step open, the steps after it listed as not run.
    let (f, t) = (
        broken.find("id=\"failures\"").unwrap(),
        broken.find("id=\"timeline\"").unwrap(),
    );
    assert!(f < t);
    assert!(broken.contains("<details class=\"step fail\" id=\"s-0-1\" open>"));
    assert!(broken.contains("not run (an earlier step failed): sign_up"));

    let browser = crate::common::browser::Browser::start().await;
    let url = format!("file://{}", dir.path().join("out/ok.html").display());
    browser.goto(&url).await;
    let summary = browser.find("#summary").await.expect("the summary");
    let seen = browser.text(&summary).await;
    assert!(
        seen.contains("11 passed") && seen.contains("0 failed") && seen.contains("1 skipped"),
        "{seen}"
    );
    assert!(seen.contains("environment mock"), "{seen}");
    browser
        .goto(&format!(
            "file://{}",
            dir.path().join("out/broken.html").display()
        ))
        .await;
    let failures = browser.find("#failures").await.expect("the failures");
    let seen = browser.text(&failures).await;
    assert!(seen.contains("broken / teapot"), "{seen}");
    let png = browser.screenshot().await;
    browser.close().await;
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    // Kept as an artifact of the test run.
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("html-report.png"), &png).unwrap();
}
