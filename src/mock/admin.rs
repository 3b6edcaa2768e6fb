//! `/__postie/`: the mock's admin area — clock, journal, reset, and whole-state export/import.

use serde_json::{Value, json};

use super::Shared;
use super::http::{Req, Resp};
use crate::mock::packs::constant_contact::store::ts;

/// Whether a request carries the admin token (compared in constant time).
pub fn authorized(req: &Req, token: &str) -> bool {
    let given = req
        .header("authorization")
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .unwrap_or("")
        .trim();
    let (a, b) = (given.as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The answer without the admin token.
pub fn unauthorized() -> Resp {
    Resp::json(
        401,
        &json!({"error": "the admin area needs its token: send Authorization: Bearer <token> (the one postie mock --admin-token printed or was given)"}),
    )
    .with("www-authenticate", "Bearer realm=\"postie admin\"")
    .route("admin.unauthorized")
}

fn bad(msg: &str) -> Resp {
    Resp::json(400, &json!({"error": msg}))
}

fn clock_json(shared: &Shared) -> Value {
    let now = shared.now_ms();
    json!({"now": ts(now), "unix": now.div_euclid(1000), "offset_seconds": shared.lock().clock_offset_ms / 1000})
}

/// Dispatches an admin request.
pub fn handle(shared: &Shared, req: &Req, rest: &[&str]) -> Resp {
    let m = req.method.as_str();
    let r = match (m, rest) {
        ("GET", []) => Resp::json(
            200,
            &json!({
                "clock": "GET|POST /__postie/clock  {\"advance\": \"24h\"} or {\"set\": \"2026-01-01T00:00:00Z\"}",
                "journal": "GET /__postie/journal?limit=N",
                "reset": "POST /__postie/reset",
                "state": "GET /__postie/state (export) · PUT|POST /__postie/state (import)",
                "clients": "GET /__postie/clients",
                "faults": "GET|POST|DELETE /__postie/faults  {\"route\": \"GET /v3/contacts\", \"status\": 503, \"times\": 2} (or a list, or \"GET /v3/contacts status=503 times=2\") · DELETE /__postie/faults/ID",
                "stubs": "GET /__postie/stubs (stubs, calls, scenario states) · POST /__postie/stubs/reset · POST /__postie/stubs/reload",
                "tokens": "POST /__postie/tokens  {\"expire_access_tokens\": true, \"revoke_refresh_tokens\": \"all\" | CLIENT_ID, \"rotate_signing_key\": true}",
            }),
        ),
        ("GET", ["faults"]) => Resp::json(200, &json!({"faults": shared.faults.list()})),
        ("POST", ["faults"]) => return add_faults(shared, req).route("admin.faults"),
        ("DELETE", ["faults"]) => Resp::json(200, &json!({"cleared": shared.faults.clear()})),
        ("DELETE", ["faults", id]) => match id.parse::<u64>() {
            Ok(n) if shared.faults.remove(n) => Resp::json(200, &json!({"removed": n})),
            _ => Resp::json(
                404,
                &json!({"error": format!("no fault {id}; GET /__postie/faults lists them")}),
            ),
        },
        ("POST", ["tokens"]) => return token_faults(shared, req),
        ("POST", ["contacts", id, "confirm_resubscribe"]) => {
            let now = shared.now_ms();
            if crate::mock::packs::constant_contact::contacts::confirm_resubscribe(
                &mut shared.lock(),
                id,
                now,
            ) {
                Resp::json(200, &json!({"resubscribed": id}))
            } else {
                Resp::json(
                    404,
                    &json!({"error": format!("contact {id} has no resubscribe email waiting (PUT /v3/contacts/resubscribe/{id} sends one)")}),
                )
            }
        }
        ("POST", ["account", "emails", id, "confirm"]) => {
            let now = shared.now_ms();
            match id.parse::<u64>() {
                Ok(n)
                    if crate::mock::packs::constant_contact::account::confirm_email(
                        &mut shared.lock(),
                        n,
                        now,
                    ) =>
                {
                    Resp::json(200, &json!({"confirmed": n}))
                }
                _ => Resp::json(
                    404,
                    &json!({"error": format!("no unconfirmed account email {id}; GET /v3/account/emails lists them")}),
                ),
            }
        }
        ("GET", ["stubs"]) => match &shared.cfg.stubs {
            Some(s) => Resp::json(200, &s.listing()),
            None => Resp::json(200, &json!({"stubs": [], "scenarios": {}})),
        },
        ("POST", ["stubs", "reset"]) => {
            if let Some(s) = &shared.cfg.stubs {
                s.reset();
            }
            Resp::json(200, &json!({"reset": true}))
        }
        ("POST", ["stubs", "reload"]) => match &shared.cfg.stubs {
            Some(s) => match s.reload(&shared.faults, true) {
                Ok(n) => Resp::json(200, &json!({"stubs": n})),
                Err(e) => bad(&e),
            },
            None => bad("no stub files are served (start the mock with --stubs FILE)"),
        },
        ("GET", ["clock"]) => Resp::json(200, &clock_json(shared)),
        ("POST", ["clock"]) => {
            let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
                return bad(
                    "expected JSON: {\"advance\": \"24h\"} or {\"set\": \"RFC 3339 time\"}",
                )
                .route("admin.clock");
            };
            if let Some(a) = body.get("advance").and_then(Value::as_str) {
                match crate::util::parse_duration(a) {
                    Ok(d) => {
                        if let Err(e) = shared.try_advance(d) {
                            return bad(&e).route("admin.clock");
                        }
                    }
                    Err(e) => return bad(&e).route("admin.clock"),
                }
            } else if let Some(s) = body.get("set").and_then(Value::as_str) {
                match time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                {
                    Ok(t) => shared.set_clock((t.unix_timestamp_nanos() / 1_000_000) as i64),
                    Err(e) => {
                        return bad(&format!("`{s}` is not an RFC 3339 time: {e}"))
                            .route("admin.clock");
                    }
                }
            } else {
                return bad("give `advance` (e.g. \"24h\") or `set` (RFC 3339)")
                    .route("admin.clock");
            }
            Resp::json(200, &clock_json(shared))
        }
        ("GET", ["journal"]) => {
            let limit = req.q("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
            let (total, entries) = shared.journal(limit);
            Resp::json(200, &json!({"total": total, "entries": entries}))
        }
        ("POST", ["reset"]) => {
            shared.reset();
            if let Some(s) = &shared.cfg.stubs {
                s.reset();
            }
            Resp::json(200, &json!({"reset": true}))
        }
        ("GET", ["state"]) => Resp::json(
            200,
            &serde_json::to_value(&*shared.lock()).unwrap_or_default(),
        ),
        ("PUT" | "POST", ["state"]) => match serde_json::from_slice(&req.body) {
            Ok(sim) => {
                shared.import(sim);
                Resp::json(200, &json!({"imported": true}))
            }
            Err(e) => bad(&format!("not a mock state export: {e}")),
        },
        ("GET", ["clients"]) => {
            let clients: Vec<Value> = shared
                .cfg
                .clients
                .iter()
                .map(|c| json!({"client_id": c.client_id, "public": c.public, "redirect_uris": c.redirect_uris, "refresh_tokens": format!("{:?}", c.refresh_tokens)}))
                .collect();
            Resp::json(200, &json!({"clients": clients}))
        }
        _ => Resp::json(
            404,
            &json!({"error": "unknown admin endpoint; GET /__postie/ lists them"}),
        ),
    };
    r.route("admin")
}

/// `POST /__postie/faults`: one fault, a list, or the compact text form as a JSON string.
fn add_faults(shared: &Shared, req: &Req) -> Resp {
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(_) => match std::str::from_utf8(&req.body) {
            // The compact form sent as text.
            Ok(t) if !t.trim().is_empty() => Value::String(t.trim().to_string()),
            _ => {
                return bad(
                    "expected a fault: {\"route\": \"GET /v3/contacts\", \"status\": 503}, a list of them, or \"GET /v3/contacts status=503\"",
                );
            }
        },
    };
    let items = match body {
        Value::Array(a) => a,
        v => vec![v],
    };
    let mut specs = Vec::new();
    for (i, v) in items.into_iter().enumerate() {
        let spec = match v {
            Value::String(t) => crate::mock::engine::faults::parse_compact(&t),
            v => serde_json::from_value(v).map_err(|e| e.to_string()),
        };
        match spec {
            Ok(s) => specs.push(s),
            Err(e) => return bad(&format!("fault {i}: {e}")),
        }
    }
    // All or nothing: check every one before adding any.
    let check = crate::mock::engine::faults::Faults::default();
    for (i, s) in specs.iter().enumerate() {
        if let Err(e) = check.add(s.clone()) {
            return bad(&format!("fault {i}: {e}"));
        }
    }
    let ids: Vec<u64> = specs
        .into_iter()
        .filter_map(|s| shared.faults.add(s).ok())
        .collect();
    Resp::json(201, &json!({"added": ids, "faults": shared.faults.list()}))
}

/// `POST /__postie/tokens`: the token faults of the authorization server.
fn token_faults(shared: &Shared, req: &Req) -> Resp {
    if !(shared.cfg.pack || shared.cfg.oauth) {
        return bad("no authorization server runs here (start with the pack or --oauth)")
            .route("admin.tokens");
    }
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&req.body) else {
        return bad("expected {\"expire_access_tokens\": true, \"revoke_refresh_tokens\": \"all\" | CLIENT_ID, \"rotate_signing_key\": true}")
            .route("admin.tokens");
    };
    if let Some(k) = body.keys().find(|k| {
        !matches!(
            k.as_str(),
            "expire_access_tokens" | "revoke_refresh_tokens" | "rotate_signing_key"
        )
    }) {
        return bad(&format!(
            "unknown `{k}`: give expire_access_tokens, revoke_refresh_tokens or rotate_signing_key"
        ))
        .route("admin.tokens");
    }
    let mut done = serde_json::Map::new();
    if body.get("rotate_signing_key") == Some(&Value::Bool(true)) {
        match shared.rotate_signing_key() {
            Ok(kid) => done.insert("signing_key".into(), json!(kid)),
            Err(e) => {
                return Resp::json(500, &json!({"error": e})).route("admin.tokens");
            }
        };
    }
    if body.get("expire_access_tokens") == Some(&Value::Bool(true)) {
        shared.expire_access_tokens();
        done.insert("access_tokens_expired".into(), json!(true));
    }
    match body.get("revoke_refresh_tokens") {
        None => {}
        Some(Value::String(c)) => {
            let client = (c != "all").then_some(c.as_str());
            done.insert(
                "refresh_tokens_revoked".into(),
                json!(shared.revoke_refresh_tokens(client)),
            );
        }
        Some(_) => {
            return bad("revoke_refresh_tokens: give \"all\" or a client_id").route("admin.tokens");
        }
    }
    if done.is_empty() {
        return bad("nothing to do: set one of expire_access_tokens, revoke_refresh_tokens, rotate_signing_key").route("admin.tokens");
    }
    Resp::json(200, &Value::Object(done)).route("fault.tokens")
}
