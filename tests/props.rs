//! Property-based tests: the YAML loader, the template engine, the JSONPath subset (against
//! serde_json_path as an oracle) and the mock's request handling hold for generated input.
//!
//! Each runs a bounded number of cases in `cargo test` (64 by default, a few seconds in all);
//! `POSTIE_PROPTEST_CASES=5000 cargo test --test integration props` runs more. proptest keeps
//! failing cases it shrank in `tests/props.proptest-regressions`; commit that file.

use std::path::Path;

use proptest::prelude::*;
use serde_json::{Value, json};

fn cases() -> u32 {
    std::env::var("POSTIE_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "tests/props.proptest-regressions",
            ),
        )),
        ..ProptestConfig::default()
    }
}

fn bundled() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("collections/constant_contact.yaml"),
    )
    .unwrap()
}

/// One edit of a text: delete a span, insert text, duplicate or drop a line.
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, String),
    DuplicateLine(usize),
    DropLine(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(a, n)| Edit::Delete(a, n)),
        (
            any::<usize>(),
            prop_oneof![
                Just(":".to_string()),
                Just("- ".to_string()),
                Just("\n  ".to_string()),
                Just("<<".to_string()),
                Just(">>".to_string()),
                Just("[".to_string()),
                Just("{".to_string()),
                Just("\"".to_string()),
                Just("&a *a".to_string()),
                Just("\t".to_string()),
                "[ -~]{0,12}",
            ]
        )
            .prop_map(|(a, s)| Edit::Insert(a, s)),
        any::<usize>().prop_map(Edit::DuplicateLine),
        any::<usize>().prop_map(Edit::DropLine),
    ]
}

fn apply(text: &str, e: &Edit) -> String {
    let boundary = |i: usize| {
        let mut i = i % (text.len() + 1);
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    match e {
        Edit::Delete(a, n) => {
            let a = boundary(*a);
            let b = boundary(a.saturating_add(*n).min(text.len()));
            format!("{}{}", &text[..a], &text[b.max(a)..])
        }
        Edit::Insert(a, s) => {
            let a = boundary(*a);
            format!("{}{s}{}", &text[..a], &text[a..])
        }
        Edit::DuplicateLine(i) | Edit::DropLine(i) => {
            let mut lines: Vec<&str> = text.lines().collect();
            if lines.is_empty() {
                return text.to_string();
            }
            let i = i % lines.len();
            if matches!(e, Edit::DuplicateLine(_)) {
                lines.insert(i, lines[i]);
            } else {
                lines.remove(i);
            }
            lines.join("\n")
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// Mutations of a real collection never panic the loader: each gives a collection, or an
    /// error that says what is wrong (and where, when the parser knows).
    #[test]
    fn mutated_collections_load_or_fail_with_a_located_error(edits in prop::collection::vec(edit(), 1..6)) {
        let mut text = bundled();
        for e in &edits {
            text = apply(&text, e);
        }
        match postie::collection::Collection::parse(Path::new("c.yaml"), text.clone()) {
            Ok(_) => {}
            Err(e) => {
                prop_assert!(!e.message.is_empty());
                let shown = e.to_string();
                prop_assert!(shown.starts_with("c.yaml"), "{}", shown);
                // An error shows a bounded excerpt, whatever the line's length.
                prop_assert!(shown.len() < 2_000 + e.message.len(), "{}", shown);
            }
        }
    }

    /// Any text through the template engine: rendered or refused, never a panic; analysis and
    /// rendering agree on what is undefined.
    #[test]
    fn templates_render_or_refuse(src in "[ -~]{0,60}", a in "[a-z]{1,6}") {
        let t = postie::template::Templates::new();
        let ctx = json!({"a": a, "n": 3, "list": [1, 2], "obj": {"k": "v"}});
        let rendered = t.render(&src, &ctx);
        let analysed = t.analyse(&src, false);
        if let (Err(e), Ok(_)) = (&analysed, &rendered) {
            prop_assert!(false, "analysis refused what rendering accepted: {}", e.message);
        }
    }
}

/// A JSON document of bounded size and depth.
fn document() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-50i64..50).prop_map(|n| json!(n)),
        "[a-c]{0,3}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-c]", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A path in the subset both implementations read: names, indexes (negative too), `*`, `..name`
/// and equality filters.
fn path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        "[a-c]".prop_map(|k| format!(".{k}")),
        "[a-c]".prop_map(|k| format!("['{k}']")),
        (-3i64..4).prop_map(|i| format!("[{i}]")),
        Just("[*]".to_string()),
        Just(".*".to_string()),
        "[a-c]".prop_map(|k| format!("..{k}")),
        ("[a-c]", -2i64..3).prop_map(|(k, n)| format!("[?(@.{k} == {n})]")),
        ("[a-c]", "[a-c]{0,2}").prop_map(|(k, v)| format!("[?(@.{k} == '{v}')]")),
    ];
    prop::collection::vec(segment, 1..3).prop_map(|s| format!("${}", s.concat()))
}

proptest! {
    #![proptest_config(config())]

    /// postie's JSONPath selects what serde_json_path (RFC 9535) selects, as a multiset.
    #[test]
    fn jsonpath_agrees_with_the_reference(doc in document(), p in path()) {
        let ours = postie::capture::JsonPath::parse(&p)
            .unwrap_or_else(|e| panic!("postie refused {p}: {e}"));
        let oracle_path = serde_json_path::JsonPath::parse(&p.replace("[?(", "[?").replace(")]", "]"))
            .unwrap_or_else(|e| panic!("the oracle refused {p}: {e}"));
        let mut mine: Vec<String> = ours.select(&doc).iter().map(|v| v.to_string()).collect();
        let mut theirs: Vec<String> = oracle_path.query(&doc).all().iter().map(|v| v.to_string()).collect();
        mine.sort();
        theirs.sort();
        prop_assert_eq!(mine, theirs, "path {} on {}", p, doc);
    }
}

/// A request the mock may get: a method, a path near its routes or not, a query, a body.
fn request() -> impl Strategy<Value = (String, String, Vec<(String, String)>, Vec<u8>, bool)> {
    let method = prop_oneof![
        Just("GET"),
        Just("POST"),
        Just("PUT"),
        Just("PATCH"),
        Just("DELETE"),
        Just("OPTIONS"),
        Just("HEAD")
    ]
    .prop_map(String::from);
    let segment = prop_oneof![
        Just("v3"),
        Just("contacts"),
        Just("contact_lists"),
        Just("activities"),
        Just("contact_tags"),
        Just("contact_custom_fields"),
        Just("contact_exports"),
        Just("sign_up_form"),
        Just("contacts_json_import"),
        Just("counts"),
        Just("emails"),
        Just("schedules"),
        Just("segments"),
        Just("partner"),
        Just("webhooks"),
        Just("subscriptions"),
        Just("reports"),
        Just("stats"),
        Just("email_campaign_activities"),
        Just("tests"),
        Just("resubscribe"),
        Just("1"),
        Just("a"),
        Just("b"),
        Just("c"),
        Just("account"),
        Just("summary"),
        Just("oauth2"),
        Just("default"),
        Just("v1"),
        Just("token"),
        Just("authorize"),
        Just("__postie"),
        Just("journal"),
        Just("07936f78-662a-11eb-af0a-fa163e56c9b0"),
        Just("%00"),
        Just(".."),
    ]
    .prop_map(String::from);
    let path = prop::collection::vec(segment, 0..5).prop_map(|s| format!("/{}", s.join("/")));
    let query = prop::collection::vec(
        (
            prop_oneof![
                Just("limit"),
                Just("cursor"),
                Just("include"),
                Just("status"),
                Just("email"),
                Just("tags"),
                Just("include_count")
            ],
            "[ -~]{0,8}",
        )
            .prop_map(|(k, v)| (k.to_string(), v)),
        0..3,
    );
    let body = prop_oneof![
        Just(Vec::new()),
        document().prop_map(|d| d.to_string().into_bytes()),
        Just(br#"{"email_address": {"address": "p@example.com"}, "create_source": "Account", "list_memberships": [1]}"#.to_vec()),
        Just(br#"{"import_data": [{"email": "x"}], "list_ids": []}"#.to_vec()),
        prop::collection::vec(any::<u8>(), 0..40),
    ];
    (method, path, query, body, any::<bool>())
}

proptest! {
    #![proptest_config(config())]

    /// Whatever arrives, the mock answers with a status below 500 and never panics (a handler
    /// panic answers 500 `internal_error`, which this would catch).
    #[test]
    fn the_mock_never_answers_5xx((method, path, query, body, json_type) in request()) {
        let shared = mock().shared().clone();
        let mut headers = hyper::HeaderMap::new();
        headers.insert("authorization", format!("Bearer {}", token()).parse().unwrap());
        if json_type {
            headers.insert("content-type", "application/json".parse().unwrap());
        }
        let req = postie::mock::http::Req {
            method,
            path,
            query,
            headers,
            body: body.into(),
        };
        let resp = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| postie::mock::route(&shared, &req)));
        let resp = resp.unwrap_or_else(|_| panic!("panicked on {} {}", req.method, req.path));
        prop_assert!(resp.status < 500, "{} {} {:?} → {}: {}", req.method, req.path, req.query, resp.status, String::from_utf8_lossy(&resp.body));
    }
}

static MOCK: std::sync::OnceLock<postie::mock::MockServer> = std::sync::OnceLock::new();
static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn mock() -> &'static postie::mock::MockServer {
    MOCK.get_or_init(|| {
        let mut cfg = postie::mock::MockConfig::bundled().unwrap();
        cfg.auto_approve = true;
        postie::mock::MockServer::start(cfg).unwrap()
    })
}

/// A real access token from the mock's authorization server, so requests reach the handlers.
fn token() -> &'static str {
    TOKEN.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let url = mock().url().to_string();
        let r = http
            .get(format!("{url}/oauth2/default/v1/authorize"))
            .query(&[
                ("client_id", "3f2b8f9e-5a1c-4c7e-9d2a-8b6e1f0c4d21"),
                ("redirect_uri", "http://localhost:8910/callback"),
                ("response_type", "code"),
                ("scope", "contact_data account_read campaign_data"),
                ("state", "s"),
            ])
            .send()
            .unwrap();
        let location = r.headers()["location"].to_str().unwrap().to_string();
        let code = url::Url::parse(&location)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        let t: Value = http
            .post(format!("{url}/oauth2/default/v1/token"))
            .basic_auth(
                "3f2b8f9e-5a1c-4c7e-9d2a-8b6e1f0c4d21",
                Some("mock-secret-Zk8xQ2vN7pLr4tYw"),
            )
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", "http://localhost:8910/callback"),
            ])
            .send()
            .unwrap()
            .json()
            .unwrap();
        t["access_token"].as_str().unwrap().to_string()
    })
}

/// The agreement above is not vacuous: generated paths select something in a good share of
/// generated documents.
#[test]
fn generated_paths_often_select_something() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut hits, n) = (0, 500);
    for _ in 0..n {
        let doc = document().new_tree(&mut runner).unwrap().current();
        let p = path().new_tree(&mut runner).unwrap().current();
        let ours = postie::capture::JsonPath::parse(&p).unwrap();
        if !ours.select(&doc).is_empty() {
            hits += 1;
        }
    }
    assert!(
        hits * 10 >= n,
        "only {hits} of {n} generated paths selected anything"
    );
}

fn fixture_text(rel: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/interop")
            .join(rel),
    )
    .unwrap()
}

/// Imports a mutated file of one kind; never a panic: a collection (loaded back by postie's own
/// loader) or an error that names the file.
fn import_mutated(
    kind: &str,
    original: &str,
    edits: &[Edit],
) -> Result<(), proptest::test_runner::TestCaseError> {
    let mut text = original.to_string();
    for e in edits {
        text = apply(&text, e);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("in.{kind}"));
    std::fs::write(&file, &text).unwrap();
    let result = match kind {
        "sh" => postie::interop::curl::import_text(&text, "in", &file),
        "har" => postie::interop::har::import(&file, true),
        "json" => postie::interop::postman::import(&file, &[]),
        _ => postie::interop::openapi::import(&file),
    };
    match result {
        Ok(imported) => {
            // What an import writes (after `checked`, as `postie import` does) loads back.
            let yaml = imported.checked().yaml("in");
            let back = postie::collection::Collection::parse(&dir.path().join("out.yaml"), yaml);
            prop_assert!(
                back.is_ok(),
                "{kind}: the import wrote YAML postie cannot load: {:?}",
                back.err().map(|e| e.to_string())
            );
        }
        Err(e) => {
            let shown = e.to_string();
            prop_assert!(shown.contains("in."), "{kind}: {shown}");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Mutated curl lines, HAR files, Postman collections and OpenAPI documents import or fail
    /// naming the file; what they import loads back.
    #[test]
    fn mutated_imports_import_or_fail_named(edits in prop::collection::vec(edit(), 1..4), which in 0usize..4) {
        let (kind, original) = match which {
            0 => ("sh", fixture_text("curl/constant-contact.sh")),
            1 => ("har", fixture_text("har/devtools-api-session.har")),
            2 => ("json", fixture_text("postman/newman-echo-v2.postman_collection.json")),
            _ => ("yaml", fixture_text("openapi/realworld-conduit.openapi-3.1.yaml")),
        };
        import_mutated(kind, &original, &edits)?;
    }

    /// A capture takes what the path's first match is, as the reference selects it.
    #[test]
    fn captures_take_the_first_match(doc in document(), p in path()) {
        let ours = postie::capture::JsonPath::parse(&p).unwrap();
        let oracle = serde_json_path::JsonPath::parse(&p.replace("[?(", "[?").replace(")]", "]")).unwrap();
        let selected = oracle.query(&doc).all();
        let mine = ours.value(&doc);
        match selected.as_slice() {
            [] => prop_assert_eq!(mine, None),
            // One match: that value; several: postie's documented choice is the list of them,
            // or the first — either way the value comes from the selection.
            [one] => prop_assert_eq!(mine.as_ref(), Some(*one)),
            many => {
                let m = mine.expect("several matches give a value");
                prop_assert!(
                    many.contains(&&m) || m == Value::Array(many.iter().map(|v| (*v).clone()).collect()),
                    "{} on {}: {}", p, doc, m
                );
            }
        }
    }
}

/// A stub file of generated stubs (paths with parameters and wildcards, query and body
/// conditions, templated answers).
fn stub_file() -> impl Strategy<Value = String> {
    let seg = prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("{id}".to_string()),
        Just("c".to_string())
    ];
    let path = (prop::collection::vec(seg, 0..3), any::<bool>()).prop_map(|(s, rest)| {
        let mut p = format!("/{}", s.join("/"));
        if rest {
            p = format!("{}/*", p.trim_end_matches('/'));
        }
        p
    });
    let stub = (
        prop_oneof![Just("GET"), Just("POST"), Just("ANY")],
        path,
        0i64..10,
        prop::option::of("[a-c]{1,3}"),
        prop::option::of(prop_oneof![Just("$.x"), Just("$..y"), Just("$[0]")]),
        prop_oneof![
            Just(
                "{json: {id: \"<<path.id | default('none')>>\", q: \"<<query.q | default('')>>\"}}"
            ),
            Just("{text: \"<<call>>\"}"),
            Just("{status: 204}"),
        ],
    )
        .prop_map(|(m, p, prio, q, jp, answer)| {
            let mut s = format!(
                "  - priority: {prio}\n    request:\n      method: {m}\n      path: \"{p}\"\n"
            );
            if let Some(q) = q {
                s.push_str(&format!("      query: {{q: {q}}}\n"));
            }
            if let Some(jp) = jp {
                s.push_str(&format!(
                    "      body: [{{jsonpath: \"{jp}\", present: true}}]\n"
                ));
            }
            s.push_str(&format!("    response: {answer}\n"));
            s
        });
    prop::collection::vec(stub, 1..8).prop_map(|v| format!("stubs:\n{}", v.concat()))
}

proptest! {
    #![proptest_config(config())]

    /// Generated stub files load; any request gets an answer or a report of at most three
    /// nearest stubs, never a panic; a stub's answer never fails to render.
    #[test]
    fn stubs_answer_or_report(file in stub_file(), (method, path, query, body, json_type) in request()) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.yaml");
        std::fs::write(&p, &file).unwrap();
        let stubs = postie::mock::engine::stubs::Stubs::load(std::slice::from_ref(&p))
            .unwrap_or_else(|e| panic!("{e}\n{file}"));
        let mut headers = hyper::HeaderMap::new();
        if json_type {
            headers.insert("content-type", "application/json".parse().unwrap());
        }
        let req = postie::mock::http::Req {
            method,
            path: path.replace("/v3", ""),
            query,
            headers,
            body: body.into(),
        };
        match stubs.handle(&req, 0) {
            Ok(r) => prop_assert!(r.status < 500, "{} {}: {}\n{}", req.method, req.path, String::from_utf8_lossy(&r.body), file),
            Err(miss) => prop_assert!(miss.nearest.len() <= 3),
        }
    }
}

/// An exchange built by hand: a status, one header, a JSON body.
fn exchange(status: u16, header: (String, String), doc: &Value) -> postie::exchange::Exchange {
    let body = doc.to_string();
    postie::exchange::Exchange {
        request: postie::exchange::Rendered {
            name: "r".into(),
            method: "GET".into(),
            url: "http://127.0.0.1:9/r".into(),
            headers: vec![],
            body: postie::exchange::Body::None,
            follow_redirects: false,
            timeout: std::time::Duration::from_secs(1),
        },
        status,
        headers: vec![header],
        raw: body.clone().into(),
        body,
        binary: false,
        json: Some(doc.clone()),
        elapsed: std::time::Duration::from_millis(3),
    }
}

/// Every integer written as a float (`3` → `3.0`), as a user may write an expected number.
fn floats(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.is_i64() => json!(n.as_i64().unwrap() as f64),
        Value::Array(a) => Value::Array(a.iter().map(floats).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), floats(v))).collect()),
        other => other.clone(),
    }
}

/// An assertion as a collection writes it (through YAML, as `postie run` reads it).
fn assertion(yaml: Value) -> postie::collection::AssertSpec {
    let text = serde_yaml::to_string(&yaml).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

proptest! {
    #![proptest_config(config())]

    /// Assertions agree with what the reference selects: `exists` holds exactly when something
    /// is selected; `equals` the selected value holds (however its numbers are written) and
    /// `equals` anything else fails showing what was found; `matches` its escaped text holds;
    /// `status` and `header` (any case) hold for what was received and fail otherwise.
    #[test]
    fn assertions_hold_on_what_is_selected(
        doc in document(),
        p in path(),
        status in 100u16..600,
        other in 100u16..600,
        hname in "[a-z][a-z-]{0,8}",
        hval in "[!-~]([ -~]{0,10}[!-~])?",
        as_float in any::<bool>(),
    ) {
        let ex = exchange(status, (hname.clone(), hval.clone()), &doc);
        let oracle = serde_json_path::JsonPath::parse(&p.replace("[?(", "[?").replace(")]", "]")).unwrap();
        let selected = oracle.query(&doc).all();
        let check = |spec: Value| postie::assert::check(&assertion(spec), &ex);

        let r = check(json!({"jsonpath": p, "exists": true}));
        prop_assert_eq!(r.passed, !selected.is_empty(), "{} on {}: {:?}", p, doc, r);
        let r = check(json!({"jsonpath": p, "exists": false}));
        prop_assert_eq!(r.passed, selected.is_empty(), "{} on {}: {:?}", p, doc, r);
        if let [one] = selected.as_slice() {
            let expected = if as_float { floats(one) } else { (*one).clone() };
            let r = check(json!({"jsonpath": p, "equals": expected}));
            prop_assert!(r.passed, "{} on {} equals {}: {:?}", p, doc, expected, r);
            let r = check(json!({"jsonpath": p, "equals": {"not": one}}));
            prop_assert!(!r.passed, "{} on {}: {:?}", p, doc, r);
            prop_assert_eq!(r.actual.clone(), Some(one.to_string()));
            let text = postie::capture::value_text(one);
            let r = check(json!({"jsonpath": p, "matches": format!("^{}$", regex::escape(&text))}));
            prop_assert!(r.passed, "{} on {} matches {}: {:?}", p, doc, text, r);
        }
        if selected.is_empty() {
            let r = check(json!({"jsonpath": p, "equals": null}));
            prop_assert!(!r.passed, "nothing selected is not null: {} on {}", p, doc);
            prop_assert_eq!(r.actual.as_deref(), Some("nothing"));
        }
        let holds = |spec: Value| check(spec).passed;
        prop_assert!(holds(json!({"status": status})), "status {}", status);
        prop_assert_eq!(holds(json!({"status": [other]})), other == status);
        prop_assert!(holds(json!({"status": [other, status]})), "status {}", status);
        let upper = hname.to_uppercase();
        prop_assert!(holds(json!({"header": upper, "equals": hval})), "{}: {}", hname, hval);
        prop_assert!(holds(json!({"header": hname, "matches": regex::escape(&hval)})), "{}", hval);
        prop_assert!(!holds(json!({"header": format!("{hname}-x"), "exists": true})), "{}", hname);
        prop_assert!(!holds(json!({"header": hname, "equals": format!("{hval}!")})), "{}", hval);
    }
}
