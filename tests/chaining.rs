//! Chaining that cannot silently change a request, and strictness as promised (the json-server
//! blog a new user wrote: create a post, comment on it, fetch it, delete it).

use httpmock::Method::{DELETE, GET, POST};
use httpmock::MockServer;
use serde_json::json;

use crate::common::Project;

fn blog(base: &str) -> String {
    format!(
        r#"name: blog
variables:
  base: {base}
  title: Hello postie
requests:
  create_post:
    method: POST
    url: <<base>>/posts
    json: {{title: "<<title>>"}}
  create_comment:
    method: POST
    url: <<base>>/comments
    json: {{postId: "<<id>>", body: nice}}
  get_post:
    url: <<base>>/posts/<<id>>
    assert:
      - jsonpath: $.title
        equals: <<title>>
  delete_post:
    method: DELETE
    url: <<base>>/posts/<<create_post.body.id>>
flows:
  blog:
    steps: [create_post, create_comment, get_post, delete_post]
"#
    )
}

fn blog_server(server: &MockServer) {
    server.mock(|when, then| {
        when.method(POST).path("/posts");
        then.status(201)
            .json_body(json!({"id": "E5jBY5m", "title": "Hello postie"}));
    });
    server.mock(|when, then| {
        when.method(POST).path("/comments");
        then.status(201)
            .json_body(json!({"id": 1, "postId": "E5jBY5m", "body": "nice"}));
    });
    // The post the user meant, and the one a rebinding of `id` would fetch instead.
    server.mock(|when, then| {
        when.method(GET).path("/posts/E5jBY5m");
        then.status(200)
            .json_body(json!({"id": "E5jBY5m", "title": "Hello postie"}));
    });
    server.mock(|when, then| {
        when.method(GET).path("/posts/1");
        then.status(200)
            .json_body(json!({"id": "1", "title": "Someone else's post"}));
    });
    server.mock(|when, then| {
        when.method(DELETE).path("/posts/E5jBY5m");
        then.status(200).json_body(json!({}));
    });
}

#[test]
fn a_rebinding_is_shown_and_an_input_is_never_replaced() {
    let server = MockServer::start();
    blog_server(&server);
    let p = Project::new(&blog(&server.base_url()));
    let run = p.postie(&["run", "c.yaml"]);
    // `id` was rebound by the comment, and the step line says so.
    assert!(
        run.stdout.contains("id=1 (was E5jBY5m from create_post)"),
        "{}",
        run.stdout
    );
    // get_post fetched the comment's id: the assertion (a template: the declared title) caught it.
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stdout.contains(
            "assertion failed: $.title equals \"Hello postie\" (got \"Someone else's post\")"
        ),
        "{}",
        run.stdout
    );
    // The response's `title` did not replace the declared input.
    let vars = p.postie(&["vars", "c.yaml"]);
    assert!(
        vars.stdout.contains("title = Hello postie  (collection)"),
        "{}",
        vars.stdout
    );
    // validate warns about the generic name, naming the steps and the fix.
    let v = p.postie(&["validate", "c.yaml"]);
    assert_eq!(v.code, 0, "{}", v.all());
    assert!(
        v.stdout.contains("warning: ")
            && v.stdout
                .contains("`<<id>>` in `get_post` (flow `blog`) is a generic name")
            && v.stdout.contains("`<<create_post.body.id>>`"),
        "{}",
        v.stdout
    );
    // --strict makes the rebinding itself a failure, at the step that did it.
    let strict = p.postie(&["run", "c.yaml", "--strict", "--fresh"]);
    assert_eq!(strict.code, 1, "{}", strict.all());
    assert!(
        strict.stdout.contains("✗ create_comment")
            && strict
                .stdout
                .contains("automatic chaining replaced `id` set by `create_post`"),
        "{}",
        strict.stdout
    );
    // Written the way the warning suggests, the flow does what it says.
    let fixed = Project::new(
        &blog(&server.base_url()).replace("/posts/<<id>>", "/posts/<<create_post.body.id>>"),
    );
    let ok = fixed.postie(&["run", "c.yaml"]);
    assert_eq!(ok.code, 0, "{}", ok.all());
}

#[test]
fn a_variable_long_form_takes_only_its_keys() {
    let p = Project::new(
        "name: s\nvariables:\n  api_key: {value: \"k-9f8e\", secert: true}\nrequests:\n  a:\n    url: http://127.0.0.1:9/a\n    headers: {X-Api-Key: \"<<api_key>>\"}\n",
    );
    let v = p.postie(&["validate", "c.yaml"]);
    assert_eq!(v.code, 2, "{}", v.all());
    assert!(
        v.stderr.contains("c.yaml:3:")
            && v.stderr
                .contains("unknown `secert` (did you mean `secret`?)"),
        "{}",
        v.all()
    );
}

#[test]
fn a_mapping_written_into_a_header_stops_before_sending() {
    let server = MockServer::start();
    let any = server.mock(|_, then| {
        then.status(200);
    });
    let p = Project::new(&format!(
        "name: s\nvariables:\n  api: {{value: {{key: k-9f8e, region: eu}}, secret: true}}\nrequests:\n  a:\n    url: {}/a\n    headers: {{X-Api-Key: \"<<api>>\"}}\n  b:\n    url: {}/b\n    headers: {{X-Api-Key: \"<<api.key>>\"}}\n",
        server.base_url(),
        server.base_url()
    ));
    let run = p.postie(&["send", "c.yaml", "a"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr
            .contains("headers.X-Api-Key: invalid operation: a mapping (keys: key, region) was written into text"),
        "{}",
        run.all()
    );
    assert!(!run.all().contains("k-9f8e"), "{}", run.all());
    any.assert_calls(0);
    assert_eq!(p.postie(&["send", "c.yaml", "b"]).code, 0);
    any.assert_calls(1);
}
