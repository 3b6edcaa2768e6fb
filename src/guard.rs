//! The PUT guard: Constant Contact's `PUT /contacts/{id}` nulls every core field the body omits.
//! Before a PUT goes out, compare its body with the last response held for the same resource and
//! say which fields would be removed or nulled.
//!
//! "The same resource" is found generically: the newest stored response containing a JSON object
//! whose `*_id`/`id` field equals the PUT URL's last path segment. Omitted arrays are not flagged —
//! the API leaves omitted sub-resources alone — nor are read-only fields (`*_at`, `*_id`, `_links`).

use serde_json::{Map, Value};

use crate::exchange::{Body, Rendered};
use crate::state::EnvState;

/// A warning describing what the PUT would null, or `None` when it is safe.
pub fn put_guard(r: &Rendered, state: &EnvState) -> Option<String> {
    if r.method != "PUT" {
        return None;
    }
    let Body::Json(Value::Object(body)) = &r.body else {
        return None;
    };
    let path = r.url.split(['?', '#']).next().unwrap_or(&r.url);
    let id = path.trim_end_matches('/').rsplit('/').next()?;
    if id.is_empty() {
        return None;
    }
    let (source, held) = newest_holding(state, id)?;
    let lost = would_null(&held, body);
    if lost.is_empty() {
        return None;
    }
    let mut msg = format!(
        "PUT guard: PUT {path} would null {} field{} the resource has now (as last seen in the response to `{source}`):",
        lost.len(),
        if lost.len() == 1 { "" } else { "s" }
    );
    let before = lines(&held, &lost);
    let after: String = lost.iter().map(|k| format!("{k}: null\n")).collect();
    for change in similar::TextDiff::from_lines(&before, &after).iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Delete => "-",
            similar::ChangeTag::Insert => "+",
            similar::ChangeTag::Equal => " ",
        };
        msg.push_str(&format!("\n  {sign} {}", change.value().trim_end()));
    }
    msg.push_str(
        "\nsend the whole resource back (e.g. merge(previous_response, changes)) to keep them",
    );
    Some(msg)
}

fn lines(held: &Map<String, Value>, keys: &[String]) -> String {
    keys.iter()
        .map(|k| {
            format!(
                "{k}: {}\n",
                held.get(k).map(|v| v.to_string()).unwrap_or_default()
            )
        })
        .collect()
}

/// Fields with a value in `held` that `body` omits or sets to null.
pub fn would_null(held: &Map<String, Value>, body: &Map<String, Value>) -> Vec<String> {
    held.iter()
        .filter(|(k, v)| {
            !(v.is_null()
                || v.is_array()
                || is_read_only(k)
                || matches!(v, Value::String(s) if s.is_empty()))
                && body.get(*k).is_none_or(Value::is_null)
        })
        .map(|(k, _)| k.clone())
        .collect()
}

fn is_read_only(k: &str) -> bool {
    k == "id"
        || k.ends_with("_id")
        || k.ends_with("_at")
        || k.starts_with('_')
        || k == "create_source"
        || k == "update_source"
}

fn newest_holding(state: &EnvState, id: &str) -> Option<(String, Map<String, Value>)> {
    let mut best: Option<(u64, String, Map<String, Value>)> = None;
    for (name, list) in state.exchanges() {
        for raw in list {
            let seq = crate::state::stored_seq(raw);
            if best.as_ref().is_some_and(|(s, _, _)| *s >= seq) || !raw.get().contains(id) {
                continue;
            }
            let Some(ex) = crate::state::parse_stored(raw) else {
                continue;
            };
            if let Some(obj) = ex.get("body").and_then(|b| find_object(b, id)) {
                best = Some((seq, name.clone(), obj.clone()));
            }
        }
    }
    best.map(|(_, n, o)| (n, o))
}

fn find_object<'a>(v: &'a Value, id: &str) -> Option<&'a Map<String, Value>> {
    match v {
        Value::Object(m) => {
            if m.iter()
                .any(|(k, x)| (k == "id" || k.ends_with("_id")) && x.as_str() == Some(id))
            {
                return Some(m);
            }
            m.values().find_map(|x| find_object(x, id))
        }
        Value::Array(a) => a.iter().find_map(|x| find_object(x, id)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn put(body: Value) -> Rendered {
        Rendered {
            name: "update".into(),
            method: "PUT".into(),
            url: "http://h/v3/contacts/c1?x=1".into(),
            headers: vec![],
            body: Body::Json(body),
            follow_redirects: false,
            timeout: Duration::from_secs(1),
        }
    }

    fn state() -> EnvState {
        let mut s = EnvState::default();
        s.record_exchange(
            "find",
            json!({"status": 200, "body": {"contacts": [{"contact_id": "c1", "first_name": "Ada", "job_title": "Eng", "last_name": null,
                "list_memberships": ["L1"], "created_at": "x", "email_address": {"address": "a@x.io"}}]}}),
            100,
        );
        s
    }

    #[test]
    fn fires_on_omitted_fields_only() {
        let w = put_guard(&put(json!({"email_address": {"address": "a@x.io"}, "first_name": "Ada", "update_source": "Account"})), &state()).unwrap();
        assert!(w.contains("would null 1 field"), "{w}");
        assert!(w.contains("- job_title: \"Eng\""), "{w}");
        assert!(w.contains("+ job_title: null"), "{w}");
        assert!(
            !w.contains("list_memberships") && !w.contains("created_at"),
            "{w}"
        );
        let full = json!({"email_address": {"address": "a@x.io"}, "first_name": "Ada", "job_title": "Eng", "update_source": "Account"});
        assert!(put_guard(&put(full), &state()).is_none());
        assert!(
            put_guard(&put(json!({})), &EnvState::default()).is_none(),
            "nothing held, nothing to compare"
        );
    }
}
