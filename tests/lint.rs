//! `postie lint`: every rule with a case it must flag and one it must not; output formats;
//! `--staged` in a real git repository; the bundled collection lints clean.

use crate::common::{git, run_postie};

fn lint_text(collection: &str, args: &[&str]) -> crate::common::Run {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.yaml"), collection).unwrap();
    let mut all = vec!["lint", "c.yaml"];
    all.extend_from_slice(args);
    run_postie(dir.path(), &all, &[], None)
}

const BASE: &str = "name: l\nvariables:\n  api: https://api.example.com\nrequests:\n  a:\n    url: <<api>>/a\nflows:\n  main: {steps: [a]}\n";

/// (rule, a collection that must be flagged on `line`, one that must not)
fn cases() -> Vec<(&'static str, String, usize, String)> {
    let with_header = |v: &str| {
        format!(
            "name: l\nvariables:\n  api: https://api.example.com\nrequests:\n  a:\n    url: <<api>>/a\n    headers: {{X-Note: \"{v}\"}}\nflows:\n  main: {{steps: [a]}}\n"
        )
    };
    vec![
        (
            "credential",
            with_header("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
            7,
            with_header("<<access_token>>"),
        ),
        (
            "credential",
            with_header("Bearer 9f8e7d6c5b4a3f2e1d0c"),
            7,
            with_header("Bearer <<access_token>>"),
        ),
        (
            "credential",
            with_header("Basic dXNlcjpzM2NyZXQtcGFzc3dvcmQ="),
            7,
            with_header("Basic <<b64(client_id)>>"),
        ),
        (
            "credential",
            with_header("sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
            7,
            with_header("sk_live_<<env.STRIPE_SUFFIX>>"),
        ),
        (
            "credential",
            format!("{BASE}# -----BEGIN RSA PRIVATE KEY-----\n"),
            9,
            format!("{BASE}# keys live in the vault, never here\n"),
        ),
        (
            "random-literal",
            "name: l\nvariables:\n  api: https://api.example.com\n  api_key: k-live-9f8e7d6c5b4a3f2e\nrequests:\n  a:\n    url: <<api>>/a\n    headers: {X-Api-Key: \"<<api_key>>\"}\nflows:\n  main: {steps: [a]}\n".into(),
            4,
            "name: l\nvariables:\n  api: https://api.example.com\n  api_key: your-api-key-here\nrequests:\n  a:\n    url: <<api>>/a\n    headers: {X-Api-Key: \"<<api_key>>\"}\nflows:\n  main: {steps: [a]}\n".into(),
        ),
        (
            "literal-secret",
            "name: l\nvariables:\n  api: https://api.example.com\n  pin: {value: '1234', secret: true}\nrequests:\n  a:\n    url: <<api>>/a?pin=<<pin>>\nflows:\n  main: {steps: [a]}\n".into(),
            4,
            "name: l\nvariables:\n  api: https://api.example.com\n  pin: {value: '<<env.PIN>>', secret: true}\nrequests:\n  a:\n    url: <<api>>/a?pin=<<pin>>\nflows:\n  main: {steps: [a]}\n".into(),
        ),
        (
            "unused-variable",
            BASE.replace("  api: https://api.example.com\n", "  api: https://api.example.com\n  spare: 1\n"),
            4,
            BASE.to_string(),
        ),
        (
            "no-flow",
            BASE.replace("requests:\n", "requests:\n  lonely:\n    url: <<api>>/l\n"),
            5,
            BASE.to_string(),
        ),
        (
            "response-first",
            "name: l\nvariables:\n  api: https://api.example.com\nrequests:\n  create:\n    method: POST\n    url: <<api>>/posts\n  get:\n    url: <<api>>/posts/<<post_id>>\nflows:\n  main: {steps: [get, create]}\n".into(),
            11,
            "name: l\nvariables:\n  api: https://api.example.com\nrequests:\n  create:\n    method: POST\n    url: <<api>>/posts\n  get:\n    url: <<api>>/posts/<<post_id>>\nflows:\n  main: {steps: [create, get]}\n".into(),
        ),
        (
            "put-body",
            "name: l\nvariables:\n  api: https://api.example.com\nrequests:\n  get:\n    url: <<api>>/c/1\n  put:\n    method: PUT\n    url: <<api>>/c/1\n    json: {email: a@example.com}\nflows:\n  main: {steps: [get, put]}\n".into(),
            10,
            "name: l\nvariables:\n  api: https://api.example.com\nrequests:\n  get:\n    url: <<api>>/c/1\n  put:\n    method: PUT\n    url: <<api>>/c/1\n    json: \"<<merge(get.body, {'email': 'a@example.com'})>>\"\nflows:\n  main: {steps: [get, put]}\n".into(),
        ),
        (
            "plain-http",
            BASE.replace("https://api.example.com", "http://api.example.com"),
            3,
            BASE.replace("https://api.example.com", "http://127.0.0.1:8911"),
        ),
    ]
}

#[test]
fn each_rule_flags_its_case_and_not_the_other() {
    for (rule, bad, line, good) in cases() {
        let r = lint_text(&bad, &[]);
        let tag = format!("[{rule}]");
        let hit = r
            .stdout
            .lines()
            .find(|l| l.ends_with(&tag))
            .unwrap_or_else(|| panic!("{rule} not flagged:\n{bad}\n{}", r.all()));
        assert!(
            hit.starts_with(&format!("c.yaml:{line}:")),
            "{rule}: wrong place: {hit}"
        );
        let error = hit.contains(": error: ");
        assert_eq!(r.code, if error { 1 } else { 0 }, "{rule}: {}", r.all());
        // The credential itself is never echoed back.
        assert!(!r.all().contains("9f8e7d6c5b4a"), "{}", r.all());
        let r = lint_text(&good, &[]);
        assert!(
            !r.stdout.contains(&tag),
            "{rule} flagged the good case:\n{good}\n{}",
            r.all()
        );
        // An allow comment on the line above silences it.
        let lines: Vec<&str> = bad.lines().collect();
        let mut allowed = lines[..line - 1].join("\n");
        let indent: String = lines[line - 1].chars().take_while(|c| *c == ' ').collect();
        allowed.push_str(&format!("\n{indent}# postie-lint: allow {rule}\n"));
        allowed.push_str(&lines[line - 1..].join("\n"));
        allowed.push('\n');
        let r = lint_text(&allowed, &[]);
        assert!(
            !r.stdout.contains(&tag),
            "{rule} not silenced:\n{allowed}\n{}",
            r.all()
        );
    }
}

#[test]
fn github_annotations_and_unparsable_files() {
    let (_, bad, _, _) = cases().remove(1);
    let r = lint_text(&bad, &["--format", "github"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout.starts_with("::error file=c.yaml,line=7,col="),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains(",title=postie lint: credential::a bearer credential is written in the file"),
        "{}",
        r.stdout
    );
    let r = lint_text("name: l\nrequests: [\n", &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stdout.starts_with("c.yaml:"), "{}", r.all());
}

#[test]
fn the_bundled_collection_lints_clean() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let r = run_postie(
        root,
        &["lint", "collections/constant_contact.yaml"],
        &[],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.stdout, "", "{}", r.all());
    assert!(r.stderr.contains("0 errors, 0 warnings"), "{}", r.stderr);
}

#[test]
fn staged_versions_and_unignored_state_in_a_git_repository() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q"]);
    std::fs::write(d.join("c.yaml"), BASE).unwrap();
    std::fs::write(d.join("other.yaml"), "not: a collection\n").unwrap();
    git(d, &["add", "c.yaml", "other.yaml"]);
    // The working copy gets a token after staging: --staged lints what would be committed.
    std::fs::write(
        d.join("c.yaml"),
        BASE.replace(
            "/a\n",
            "/a\n    headers: {Authorization: \"Bearer 9f8e7d6c5b4a3f2e1d0c\"}\n",
        ),
    )
    .unwrap();
    let r = run_postie(d, &["lint", "--staged"], &[], None);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("in 1 collection"), "{}", r.stderr);
    let r = run_postie(d, &["lint", "c.yaml"], &[], None);
    assert_eq!(r.code, 1, "{}", r.all());
    git(d, &["add", "c.yaml"]);
    let r = run_postie(d, &["lint", "--staged"], &[], None);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("c.yaml:7:"), "{}", r.stdout);
    // A hook framework passes every staged YAML file; the ones that are not collections are
    // left alone.
    let r = run_postie(d, &["lint", "--staged", "c.yaml", "other.yaml"], &[], None);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("in 1 collection"), "{}", r.stderr);
    // The shipped hook stops the commit.
    let hook = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pre-commit");
    std::fs::create_dir_all(d.join(".git/hooks")).unwrap();
    std::fs::copy(&hook, d.join(".git/hooks/pre-commit")).unwrap();
    let commit = || commit_through_the_hook(d);
    let refused = commit();
    assert!(
        !refused.status.success(),
        "the hook let a credential through"
    );
    // git shows a hook's output on its stderr.
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(said.contains("[credential]"), "{said}");
    std::fs::write(d.join("c.yaml"), BASE).unwrap();
    git(d, &["add", "c.yaml"]);
    let taken = commit();
    assert!(
        taken.status.success(),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );

    // `.env` beside the collection, not ignored: an error until .gitignore names it.
    std::fs::write(d.join(".env"), "API_KEY=x\n").unwrap();
    let r = run_postie(d, &["lint", "c.yaml"], &[], None);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("c.yaml: error: `.env` (secrets) next to the collection is not ignored by git; add `.env` to .gitignore [unignored]"), "{}", r.stdout);
    std::fs::write(d.join(".gitignore"), ".env\n").unwrap();
    let r = run_postie(d, &["lint", "c.yaml"], &[], None);
    assert_eq!(r.code, 0, "{}", r.all());
    // The state directory postie makes ignores itself; one someone committed does not.
    std::fs::create_dir(d.join(".postie")).unwrap();
    std::fs::write(d.join(".postie/c.state.json"), "{}").unwrap();
    git(d, &["add", "-f", ".postie/c.state.json"]);
    let r = run_postie(d, &["lint", "c.yaml"], &[], None);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout.contains("git rm -r --cached .postie"),
        "{}",
        r.stdout
    );
}

#[test]
fn the_bundled_collections_doc_is_current() {
    // docs/constant_contact.md is `postie doc`'s output, checked in: when the collection changes,
    // regenerate it with the command below.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let r = run_postie(
        root,
        &["doc", "collections/constant_contact.yaml"],
        &[],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let checked_in = std::fs::read_to_string(root.join("docs/constant_contact.md")).unwrap();
    assert!(
        r.stdout == checked_in,
        "docs/constant_contact.md is stale: run `postie doc collections/constant_contact.yaml -o docs/constant_contact.md`"
    );
    // It carries no secret, names every request and flow, and its links resolve.
    assert!(!checked_in.contains("mock-secret-Zk8xQ2vN7pLr4tYw"));
    let heads: std::collections::BTreeSet<String> = checked_in
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(|h| {
            h.to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    'a'..='z' | '0'..='9' | '-' | '_' => Some(c),
                    ' ' => Some('-'),
                    _ => None,
                })
                .collect()
        })
        .collect();
    let c = postie::collection::Collection::load(&root.join("collections/constant_contact.yaml"))
        .unwrap();
    for name in c.requests.keys() {
        assert!(heads.contains(&format!("request-{name}")), "{name}");
    }
    for name in c.flows.keys() {
        assert!(heads.contains(&format!("flow-{name}")), "{name}");
    }
    for link in checked_in.split("](#").skip(1) {
        let target = link.split(')').next().unwrap();
        let top = ["signing-in-oauth2", "flows", "requests", "variables"];
        assert!(
            heads.contains(target) || top.contains(&target),
            "dangling #{target}"
        );
    }
}

/// `git commit` with this build's postie first on PATH, so the installed hook runs it.
fn commit_through_the_hook(dir: &std::path::Path) -> std::process::Output {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_postie"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::process::Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-qm",
            "x",
        ])
        .current_dir(dir)
        .env("PATH", &path)
        .output()
        .unwrap()
}

#[test]
fn findings_never_echo_a_url_that_may_carry_a_credential() {
    // Findings go into CI logs (GitHub annotations): the plain-http warning names the host only.
    let r = lint_text(
        &BASE.replace(
            "https://api.example.com",
            "http://api.example.com/v1?key=k-live-9f8e7d6c5b4a3f2e",
        ),
        &["--format", "github"],
    );
    assert!(
        r.stdout.contains("plain http to api.example.com"),
        "{}",
        r.all()
    );
    assert!(!r.all().contains("9f8e7d6c5b4a"), "{}", r.all());
}
