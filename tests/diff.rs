//! `postie diff`: real revisions of the bundled collection give the expected change lists;
//! each kind of change is named; secrets never shown; git's driver and `--git REV`.

use crate::common::{git, run_postie};

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/diff")
}

fn diff_revisions(old: &str, new: &str) -> crate::common::Run {
    let dir = fixtures();
    run_postie(
        &dir,
        &["diff", &format!("cc-{old}.yaml"), &format!("cc-{new}.yaml")],
        &[],
        None,
    )
}

#[test]
fn real_revisions_of_the_bundled_collection() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "141594f",
            "9eb91ff",
            "--- cc-141594f.yaml
+++ cc-9eb91ff.yaml
requests:
  + find_custom_field (GET <<api_url>>/v3/contact_custom_fields)
  + create_custom_field (POST <<api_url>>/v3/contact_custom_fields)
  + find_tag (GET <<api_url>>/v3/contact_tags)
  + create_tag (POST <<api_url>>/v3/contact_tags)
  + crm_sign_up (POST <<api_url>>/v3/contacts/sign_up_form)
  + tag_contacts (POST <<api_url>>/v3/activities/contacts_taggings_add)
  + poll_tagging (GET <<api_url>>/v3/activities/<<tagging_activity>>)
  + export_tagged (POST <<api_url>>/v3/activities/contact_exports)
  + poll_export (GET <<api_url>>/v3/activities/<<export_activity>>)
  + download_export (GET <<api_url>><<poll_export.body._links.results.href>>)
  + create_campaign (POST <<api_url>>/v3/emails)
  + schedule_campaign (POST <<api_url>>/v3/emails/activities/<<campaign_activity_id>>/schedules)
flows:
  + crm_sync: find_list, create_list, find_custom_field, create_custom_field, find_tag, create_tag, crm_sign_up, tag_contacts, poll_tagging, export_tagged, poll_export, download_export, create_campaign, schedule_campaign
",
        ),
        (
            "9eb91ff",
            "c3ee78b",
            "--- cc-9eb91ff.yaml
+++ cc-c3ee78b.yaml
variables:
  ~ scopes: contact_data offline_access → contact_data campaign_data offline_access
",
        ),
        (
            "c3ee78b",
            "813c821",
            "--- cc-c3ee78b.yaml
+++ cc-813c821.yaml
requests:
  + address_campaign (PUT <<api_url>>/v3/emails/activities/<<campaign_activity_id>>)
  + campaign_stats (GET <<api_url>>/v3/reports/stats/email_campaign_activities/<<campaign_activity_id>>)
  ~ create_campaign
      ~ note: A campaign (a draft). Its primary email activity gets the recipients and the sc…
flows:
  ~ crm_sync
      + step address_campaign (after create_campaign)
      + step campaign_stats (after schedule_campaign)
",
        ),
        (
            "813c821",
            "465c626",
            "--- cc-813c821.yaml
+++ cc-465c626.yaml
requests:
  ~ create_campaign
      ~ json $.name: CRM sync <<now('unix')>> → CRM sync <<now('date')>> <<nonce(8)>>
",
        ),
        (
            "465c626",
            "e41c5f3",
            "--- cc-465c626.yaml
+++ cc-e41c5f3.yaml
environments:
  ~ production
      + client_secret.hosts[0]: authz.constantcontact.com
",
        ),
        (
            "e41c5f3",
            "8d80338",
            "--- cc-e41c5f3.yaml
+++ cc-8d80338.yaml
  no change in meaning (formatting, comments or order only)
",
        ),
    ];
    for (old, new, expected) in cases {
        let r = diff_revisions(old, new);
        assert_eq!(r.stdout, *expected, "{old} → {new}\n{}", r.stderr);
        let differ = !expected.contains("no change in meaning");
        assert_eq!(r.code, i32::from(differ), "{old} → {new}: {}", r.stderr);
    }
}

const OLD: &str = r#"name: d
variables:
  api: https://api.example.com
  api_key: {value: "k-live-old-1234567890", secret: true}
environments:
  prod:
    api: https://prod.example.com
    token: t-old-value-123456
requests:
  list:
    url: <<api>>/v1/items?limit=10
    headers: {Accept: application/json}
  create:
    method: POST
    url: <<api>>/v1/items
    json: {name: a, tags: [x], owner: {id: 1}}
    capture: {item_id: $.id}
    assert: [{status: 201}]
    note: Creates one.
  old_name:
    url: <<api>>/v1/ping
  gone:
    url: <<api>>/v1/gone
flows:
  main:
    steps: [list, create, old_name]
  extra:
    steps: [gone]
"#;

const NEW: &str = r#"name: d
variables:
  api: https://api.example.com
  api_key: {value: "k-live-new-0987654321", secret: true, hosts: [api.example.com]}
  page: 2
environments:
  prod:
    api: https://prod2.example.com
    token: t-new-value-654321
  stage:
    api: https://stage.example.com
requests:
  list:
    url: <<api>>/v2/items?limit=20&page=<<page>>
    headers: {Accept: text/csv, X-Trace: "1"}
    auth: {bearer: "<<token>>"}
  create:
    method: PUT
    url: <<api>>/v1/items
    json: {name: b, tags: [x, y], owner: {}}
    capture: {item_id: $.item.id}
    assert: [{status: 200}]
    note: Creates or replaces one.
  new_name:
    url: <<api>>/v1/ping
  added:
    url: <<api>>/v1/added
flows:
  main:
    steps: [create, list, new_name, added]
"#;

#[test]
fn every_kind_of_change_is_named_and_secrets_are_not_shown() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("old.yaml"), OLD).unwrap();
    std::fs::write(dir.path().join("new.yaml"), NEW).unwrap();
    let r = run_postie(dir.path(), &["diff", "old.yaml", "new.yaml"], &[], None);
    assert_eq!(r.code, 1, "{}", r.all());
    let out = r.stdout;
    for line in [
        "  - gone (GET <<api>>/v1/gone)",
        "  + added (GET <<api>>/v1/added)",
        "  ~ renamed old_name → new_name (same content)",
        "  ~ list",
        "      ~ url path: /v1/items → /v2/items",
        "      ~ url query limit: 10 → 20",
        "      + url query page: <<page>>",
        "      ~ header Accept: application/json → text/csv",
        "      + header X-Trace: 1",
        "      + auth.bearer: <<token>>",
        "      ~ method: POST → PUT",
        "      - assert {\"status\":201}",
        "      + assert {\"status\":200}",
        "      ~ note: Creates or replaces one.",
        "      ~ json $.name: a → b",
        "      + json $.tags[1]: y",
        "      - json $.owner.id: 1",
        "      ~ capture.item_id: $.id → $.item.id",
        "  - extra",
        "      ~ step old_name → new_name (the request was renamed)",
        "      + step added (after new_name)",
        "      ~ order: list, create, new_name → create, list, new_name",
        "  ~ api_key.value: ••• → •••",
        "  + api_key.hosts[0]: api.example.com",
        "  + page: 2",
        "  + stage\n      + api: https://stage.example.com",
        "      ~ api: https://prod.example.com → https://prod2.example.com",
        "      ~ token: ••• → •••",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
    for secret in ["k-live", "t-old", "t-new"] {
        assert!(!out.contains(secret), "{secret} shown:\n{out}");
    }
    assert_eq!(
        run_postie(dir.path(), &["diff", "old.yaml", "old.yaml"], &[], None).code,
        0
    );
    let r = run_postie(dir.path(), &["diff", "old.yaml", "nope.yaml"], &[], None);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("nope.yaml: no such file"), "{}", r.stderr);
    // Malformed YAML is located.
    std::fs::write(dir.path().join("bad.yaml"), "name: x\nrequests: [\n").unwrap();
    let r = run_postie(dir.path(), &["diff", "old.yaml", "bad.yaml"], &[], None);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("error: bad.yaml:3:1: "), "{}", r.stderr);
}

#[test]
fn as_a_git_diff_driver_and_against_a_revision() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q"]);
    std::fs::write(d.join("c.yaml"), OLD).unwrap();
    std::fs::write(d.join("notes.yaml"), "a: 1\n").unwrap();
    git(d, &["add", "."]);
    git(d, &["commit", "-qm", "one"]);
    std::fs::write(d.join("c.yaml"), NEW).unwrap();
    std::fs::write(d.join("notes.yaml"), "a: 2\n").unwrap();

    // --git REV: the working copy against the revision; every changed collection by default.
    let r = run_postie(d, &["diff", "--git", "HEAD"], &[], None);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout.starts_with("--- HEAD:c.yaml\n+++ c.yaml\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("~ renamed old_name → new_name"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("notes.yaml"), "{}", r.stdout);
    let r = run_postie(d, &["diff", "--git", "nosuchrev", "c.yaml"], &[], None);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("`nosuchrev` is not a revision"),
        "{}",
        r.stderr
    );

    // As git's external diff driver: `git diff` shows the meaning, and falls back to lines for
    // a YAML file that is not a collection.
    let bin = env!("CARGO_BIN_EXE_postie");
    std::fs::write(d.join(".gitattributes"), "*.yaml diff=postie\n").unwrap();
    git(
        d,
        &["config", "diff.postie.command", &format!("{bin} diff")],
    );
    let out = git(d, &["diff"]);
    assert!(
        out.contains("--- a/c.yaml\n+++ b/c.yaml\nrequests:\n"),
        "{out}"
    );
    assert!(
        out.contains("~ order: list, create, new_name → create, list, new_name"),
        "{out}"
    );
    assert!(out.contains("-a: 1\n+a: 2"), "{out}");
    assert!(!out.contains("k-live"), "{out}");
    // A new file (git passes /dev/null as the old one).
    std::fs::write(d.join("more.yaml"), NEW).unwrap();
    git(d, &["add", "more.yaml"]);
    let out = git(d, &["diff", "--cached"]);
    assert!(
        out.contains("+ list (GET <<api>>/v2/items?limit=20&page=<<page>>)"),
        "{out}"
    );
}
