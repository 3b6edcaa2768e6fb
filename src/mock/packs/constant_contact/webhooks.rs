//! Partner webhooks (`/v3/partner/webhooks/subscriptions`): subscribe a callback URI to a billing
//! topic (1 tier upgrade, 2 tier downgrade, 3 account cancelled, 4 account disabled), read,
//! unsubscribe, and `POST …/{topic_id}/tests`, which really POSTs a sample notification to the
//! subscribed URI after answering (the outcome is in the journal, route `webhook.callback`).
//!
//! Partner credentials are the vendor's own; the mock takes its bearer token plus an `x-api-key`
//! that is one of its registered client ids. Guessed (docs/mock.md): the sample payload's shape.

use serde_json::{Value, json};

use super::store::{Sim, ts};
use crate::mock::Callback;
use crate::mock::config::MockConfig;
use crate::mock::http::{Member, Req, Resp, cc_error, json_object, validation};

const TOPICS: [(u64, &str, &str); 4] = [
    (
        1,
        "Billing Tier Upgrade",
        "Notifies you when a client account upgrades its billing tier.",
    ),
    (
        2,
        "Billing Tier Downgrade",
        "Notifies you when a client account downgrades its billing tier.",
    ),
    (
        3,
        "Account Cancelled",
        "Notifies you when a client account is cancelled.",
    ),
    (
        4,
        "Account Disabled",
        "Notifies you when a client account is disabled.",
    ),
];

/// The partner's API key must be one of the mock's applications.
pub fn check_api_key(cfg: &MockConfig, req: &Req) -> Option<Resp> {
    match req.header("x-api-key") {
        Some(k) if cfg.client(k).is_some() => None,
        Some(_) => Some(cc_error(
            401,
            "unauthorized",
            "The x-api-key is not a registered application's API key",
        )),
        None => Some(cc_error(
            401,
            "unauthorized",
            "Partner endpoints need your application's API key in x-api-key",
        )),
    }
}

fn topic(id: &str) -> Result<(u64, &'static str, &'static str), Resp> {
    id.parse::<u64>()
        .ok()
        .and_then(|n| TOPICS.iter().find(|(t, _, _)| *t == n).copied())
        .ok_or_else(|| {
            cc_error(
                404,
                "not_found",
                "topic_id is one of 1 (tier upgrade), 2 (tier downgrade), 3 (cancelled), 4 (disabled)",
            )
        })
}

fn view(t: (u64, &str, &str), hook: &str) -> Value {
    json!({"topic_id": t.0, "hook_uri": hook, "topic_name": t.1, "topic_description": t.2})
}

/// `GET …/subscriptions`.
pub fn list(sim: &Sim) -> Resp {
    let all: Vec<Value> = TOPICS
        .iter()
        .filter_map(|t| {
            sim.webhooks
                .get(&t.0)
                .and_then(Value::as_str)
                .map(|h| view(*t, h))
        })
        .collect();
    Resp::json(200, &Value::Array(all))
}

/// `GET …/subscriptions/{topic_id}`.
pub fn get(sim: &Sim, id: &str) -> Resp {
    match topic(id) {
        Ok(t) => match sim.webhooks.get(&t.0).and_then(Value::as_str) {
            Some(h) => Resp::json(200, &view(t, h)),
            None => cc_error(404, "not_found", "No subscription to this topic"),
        },
        Err(r) => r,
    }
}

/// `PUT …/subscriptions/{topic_id}` `{"hook_uri": "https://..."}`.
pub fn put(sim: &mut Sim, req: &Req, id: &str) -> Resp {
    let t = match topic(id) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let body = match json_object(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let hook = body
        .member("hook_uri")
        .and_then(Value::as_str)
        .unwrap_or("");
    let ok = url::Url::parse(hook)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
    if !ok {
        return validation(&["hook_uri must be an http(s) URL".into()]);
    }
    sim.webhooks.insert(t.0, json!(hook));
    Resp::json(200, &json!({"topic_id": t.0, "hook_uri": hook}))
}

/// `DELETE …/subscriptions/{topic_id}`: 204.
pub fn delete(sim: &mut Sim, id: &str) -> Resp {
    match topic(id) {
        Ok(t) if sim.webhooks.remove(&t.0).is_some() => Resp::empty(204),
        Ok(_) => cc_error(404, "not_found", "No subscription to this topic"),
        Err(r) => r,
    }
}

/// `POST …/subscriptions/{topic_id}/tests`: 201 now, and the sample notification to send after.
pub fn test(sim: &Sim, id: &str, now: i64) -> (Resp, Option<Callback>) {
    let t = match topic(id) {
        Ok(t) => t,
        Err(r) => return (r, None),
    };
    let Some(hook) = sim.webhooks.get(&t.0).and_then(Value::as_str) else {
        return (
            cc_error(
                404,
                "not_found",
                "No subscription to this topic: PUT one first",
            ),
            None,
        );
    };
    let callback = Callback {
        url: hook.to_string(),
        body: json!({
            "topic_id": t.0,
            "topic_name": t.1,
            "encoded_account_id": "a07e1postiemock",
            "event_time": ts(now),
            "test": true,
        }),
        what: format!("webhook test, topic {}", t.0),
    };
    (Resp::json(201, &view(t, hook)), Some(callback))
}
