//! The Constant Contact pack: the vendor's V3 API as a simulation — Contacts, Lists and Bulk
//! Activities with the vendor's semantics, limits and error shapes ([`contacts`], [`lists`],
//! [`activities`], the bulk ones applied a slice at a time by [`applying`]), kept in one store
//! ([`store`], [`table`]). Its bearer tokens come from the
//! mock's authorization server (`crate::mock::oauth`); it answers under `/v3`.
//!
//! The pack depends on the engine and the server's shared state, never the reverse: the front
//! routes `/v3/...` here ([`api`]) when the pack is on.

pub mod account;
pub mod activities;
pub mod applying;
pub mod campaigns;
pub mod contact_input;
pub mod contacts;
pub mod custom_fields;
pub mod exports;
pub mod lists;
pub mod ordered;
pub mod paging;
pub mod schedules;
pub mod segments;
pub mod store;
pub mod table;
pub mod tags;
pub mod webhooks;
pub mod xrefs;

use serde_json::{Value, json};

use crate::mock::config::MockConfig;
use crate::mock::http::{self, Member, Req, Resp};
use crate::mock::{Shared, real_ms};
use store::Sim;

/// A fresh simulation with the configured seed lists and contacts.
pub(crate) fn seeded(cfg: &MockConfig) -> Sim {
    let mut sim = Sim::default();
    let now = real_ms();
    for l in &cfg.seed_lists {
        let id = l
            .member("list_id")
            .and_then(Value::as_str)
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .unwrap_or_else(store::new_id);
        sim.lists.insert(
            id,
            store::ContactList {
                id,
                name: l
                    .member("name")
                    .and_then(Value::as_str)
                    .unwrap_or("Unnamed")
                    .to_string(),
                description: l
                    .member("description")
                    .and_then(Value::as_str)
                    .map(String::from),
                favorite: l
                    .member("favorite")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                created_at: now,
                updated_at: now,
                deleted_at: None,
            },
        );
    }
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    let id = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .unwrap_or_else(store::new_id)
    };
    for f in &cfg.seed_custom_fields {
        let label = text(f, "label").unwrap_or_else(|| "Field".into());
        let field = store::CustomField {
            id: id(f, "custom_field_id"),
            name: custom_fields::name_of(&label),
            label,
            kind: text(f, "type").unwrap_or_else(|| "string".into()),
            choices: Vec::new(),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        sim.custom_fields.insert(field.id, field);
    }
    for t in &cfg.seed_tags {
        let tag = store::Tag {
            id: id(t, "tag_id"),
            name: text(t, "name").unwrap_or_else(|| "Tag".into()),
            tag_source: text(t, "tag_source"),
            created_at: now,
            updated_at: now,
        };
        sim.tags.insert(tag.id, tag);
    }
    for c in &cfg.seed_contacts {
        let Some(row) = c.as_object() else { continue };
        let lists: Vec<uuid::Uuid> = row
            .member("list_names")
            .and_then(Value::as_array)
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| {
                        sim.lists
                            .values()
                            .find(|l| Some(l.name.as_str()) == n.as_str())
                            .map(|l| l.id)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let _ = contacts::import_row(&mut sim, row, &lists, now);
    }
    sim
}

/// One slice of the bulk activities due now (the server's background worker); whether more is
/// due.
pub(crate) fn apply_slice(shared: &Shared) -> bool {
    let now = shared.now_ms();
    let mut sim = shared.lock();
    applying::slice(&mut sim, now, &shared.cfg.speed)
}

pub(crate) fn cors(r: Resp) -> Resp {
    r.with("access-control-allow-origin", "*")
}

/// `/v3/...`: bearer token, scope, rate limit, then the resource.
pub(crate) fn api(shared: &Shared, req: &Req, rest: &[&str], now: i64) -> Resp {
    let m = req.method.as_str();
    if m == "OPTIONS" {
        return cors(Resp::empty(204))
            .with(
                "access-control-allow-headers",
                "Content-Type,X-Amz-Date,Authorization,X-Api-Key",
            )
            .with(
                "access-control-allow-methods",
                "GET,POST,PUT,DELETE,PATCH,OPTIONS",
            )
            .route("cors");
    }
    if rest == ["token_info"] && m == "POST" {
        return cors(token_info(shared, req, now)).route("token_info");
    }
    let claims = match shared.bearer(req, now) {
        Ok(c) => c,
        Err(r) => {
            let route = if r.route.is_empty() {
                "unauthorized"
            } else {
                r.route
            };
            return cors(r).route(route);
        }
    };
    let scope = required_scope(m, rest);
    if !scope.is_empty() && !claims.scp.iter().any(|s| s == scope) {
        return cors(http::forbidden_scope()).route("forbidden_scope");
    }
    let mut sim = shared.lock();
    if shared.cfg.rate_limit
        && let Some(r) = rate_limit(&shared.cfg, &mut sim, &claims.cid, now)
    {
        return cors(r).route("rate_limited");
    }
    if let ["partner", "webhooks", ..] = rest
        && let Some(r) = webhooks::check_api_key(&shared.cfg, req)
    {
        return cors(r).route("webhooks.unauthorized");
    }
    let speed = &shared.cfg.speed;
    applying::on_request(&mut sim, now, speed);
    campaigns::tick(&mut sim, now);
    let (resp, route): (Resp, &'static str) = match (m, rest) {
        ("GET", ["contacts"]) => (contacts::list(&sim, req), "contacts.list"),
        ("POST", ["contacts"]) => (contacts::create(&mut sim, req, now), "contacts.create"),
        ("POST", ["contacts", "sign_up_form"]) => (
            contacts::sign_up_form(&mut sim, req, now, shared.cfg.file.account.confirmed_opt_in),
            "contacts.sign_up_form",
        ),
        ("GET", ["contacts", "counts"]) => (contacts::counts(&sim, req, now), "contacts.counts"),
        ("GET", ["contacts", "contact_id_xrefs"]) => (xrefs::contacts(&sim, req), "contacts.xrefs"),
        ("GET", ["contact_lists", "list_id_xrefs"]) => (xrefs::lists(&sim, req), "lists.xrefs"),
        ("GET", ["emails", "campaign_id_xrefs"]) => (xrefs::campaigns(&sim, req), "emails.xrefs"),
        ("GET", ["contacts", "sms_engagement_history", id]) => (
            contacts::sms_engagement_history(&sim, id),
            "contacts.sms_engagement_history",
        ),
        ("PUT", ["contacts", "resubscribe", id]) => (
            contacts::resubscribe(&mut sim, req, id, now),
            "contacts.resubscribe",
        ),
        ("GET", ["contacts", id]) => (contacts::get(&sim, req, id), "contacts.get"),
        ("PUT", ["contacts", id]) => (contacts::put(&mut sim, req, id, now), "contacts.put"),
        ("DELETE", ["contacts", id]) => (contacts::delete(&mut sim, id, now), "contacts.delete"),
        ("GET", ["contact_lists"]) => (lists::list(&sim, req), "lists.list"),
        ("POST", ["contact_lists"]) => (lists::create(&mut sim, req, now), "lists.create"),
        ("GET", ["contact_lists", id]) => (lists::get(&sim, req, id), "lists.get"),
        ("PUT", ["contact_lists", id]) => (lists::put(&mut sim, req, id, now), "lists.put"),
        ("DELETE", ["contact_lists", id]) => {
            (lists::delete(&mut sim, id, now, speed), "lists.delete")
        }
        ("GET", ["contact_custom_fields"]) => {
            (custom_fields::list(&sim, req), "custom_fields.list")
        }
        ("POST", ["contact_custom_fields"]) => (
            custom_fields::create(&mut sim, req, now),
            "custom_fields.create",
        ),
        ("GET", ["contact_custom_fields", id]) => {
            (custom_fields::get(&sim, id), "custom_fields.get")
        }
        ("PUT", ["contact_custom_fields", id]) => (
            custom_fields::put(&mut sim, req, id, now),
            "custom_fields.put",
        ),
        ("DELETE", ["contact_custom_fields", id]) => (
            custom_fields::delete(&mut sim, id, now),
            "custom_fields.delete",
        ),
        ("GET", ["contact_tags"]) => (tags::list(&sim, req), "tags.list"),
        ("POST", ["contact_tags"]) => (tags::create(&mut sim, req, now), "tags.create"),
        ("GET", ["contact_tags", id]) => (tags::get(&sim, req, id), "tags.get"),
        ("PUT", ["contact_tags", id]) => (tags::put(&mut sim, req, id, now), "tags.put"),
        ("DELETE", ["contact_tags", id]) => (tags::delete(&mut sim, id, now, speed), "tags.delete"),
        ("POST", ["emails"]) => (campaigns::create(&mut sim, req, now), "emails.create"),
        ("GET", ["emails"]) => (campaigns::list(&sim, req), "emails.list"),
        ("GET", ["emails", id]) if *id != "campaign_id_xrefs" => {
            (campaigns::get(&sim, id), "emails.get")
        }
        ("PATCH", ["emails", id]) => (campaigns::rename(&mut sim, req, id, now), "emails.rename"),
        ("DELETE", ["emails", id]) => (campaigns::delete(&mut sim, id, now), "emails.delete"),
        ("GET", ["emails", "activities", id]) => {
            (campaigns::get_activity(&sim, id), "emails.activities.get")
        }
        ("PUT", ["emails", "activities", id]) => (
            campaigns::put_activity(&mut sim, req, id, now),
            "emails.activities.put",
        ),
        ("POST", ["emails", "activities", id, "tests"]) => (
            campaigns::test_send(&sim, req, id),
            "emails.activities.tests",
        ),
        ("GET", ["emails", "activities", id, "send_history"]) => (
            campaigns::send_history(&sim, id),
            "emails.activities.send_history",
        ),
        ("GET", ["reports", "stats", "email_campaign_activities", ids]) => {
            (campaigns::stats(&sim, ids, now), "reports.activity_stats")
        }
        ("POST", ["emails", "activities", id, "schedules"]) => (
            schedules::create(&mut sim, req, id, now),
            "emails.schedules.create",
        ),
        ("GET", ["emails", "activities", id, "schedules"]) => {
            (schedules::get(&sim, id), "emails.schedules.get")
        }
        ("DELETE", ["emails", "activities", id, "schedules"]) => (
            schedules::delete(&mut sim, id, now),
            "emails.schedules.delete",
        ),
        ("GET", ["account", "summary"]) => (
            account::get_summary(&sim, req, &shared.cfg.file.account.login),
            "account.summary.get",
        ),
        ("PUT", ["account", "summary"]) => (
            account::put_summary(&mut sim, req, &shared.cfg.file.account.login),
            "account.summary.put",
        ),
        ("GET", ["account", "summary", "physical_address"]) => {
            (account::get_address(&sim), "account.address.get")
        }
        ("POST", ["account", "summary", "physical_address"]) => {
            (account::post_address(&mut sim, req), "account.address.post")
        }
        ("PUT", ["account", "summary", "physical_address"]) => {
            (account::put_address(&mut sim, req), "account.address.put")
        }
        ("GET", ["account", "emails"]) => (
            account::list_emails(&sim, req, &shared.cfg.file.account.login),
            "account.emails.list",
        ),
        ("POST", ["account", "emails"]) => (
            account::add_email(&mut sim, req, &shared.cfg.file.account.login),
            "account.emails.add",
        ),
        ("GET", ["account", "user", "privileges"]) => {
            (account::privileges(&claims.scp), "account.privileges")
        }
        ("GET", ["partner", "webhooks", "subscriptions"]) => {
            (webhooks::list(&sim), "webhooks.list")
        }
        ("GET", ["partner", "webhooks", "subscriptions", id]) => {
            (webhooks::get(&sim, id), "webhooks.get")
        }
        ("PUT", ["partner", "webhooks", "subscriptions", id]) => {
            (webhooks::put(&mut sim, req, id), "webhooks.put")
        }
        ("DELETE", ["partner", "webhooks", "subscriptions", id]) => {
            (webhooks::delete(&mut sim, id), "webhooks.delete")
        }
        ("POST", ["partner", "webhooks", "subscriptions", id, "tests"]) => {
            let (r, callback) = webhooks::test(&sim, id, now);
            if let Some(cb) = callback {
                shared.send_later(cb);
            }
            (r, "webhooks.test")
        }
        ("GET", ["segments"]) => (segments::list(&sim, req), "segments.list"),
        ("POST", ["segments"]) => (segments::create(&mut sim, req, now), "segments.create"),
        ("GET", ["segments", id]) => (segments::get(&sim, id), "segments.get"),
        ("PUT", ["segments", id]) => (segments::put(&mut sim, req, id, now), "segments.put"),
        ("DELETE", ["segments", id]) => (segments::delete(&mut sim, id), "segments.delete"),
        ("PATCH", ["segments", id, "name"]) => {
            (segments::rename(&mut sim, req, id, now), "segments.rename")
        }
        ("POST", ["activities", "contacts_taggings_add"]) => (
            activities::taggings(&mut sim, req, now, speed, true),
            "activities.contacts_taggings_add",
        ),
        ("POST", ["activities", "contacts_taggings_remove"]) => (
            activities::taggings(&mut sim, req, now, speed, false),
            "activities.contacts_taggings_remove",
        ),
        ("POST", ["activities", "contacts_tags_delete"]) => (
            activities::tags_delete(&mut sim, req, now, speed),
            "activities.contacts_tags_delete",
        ),
        ("POST", ["activities", "custom_fields_delete"]) => (
            activities::custom_fields_delete(&mut sim, req, now, speed),
            "activities.custom_fields_delete",
        ),
        ("POST", ["activities", "list_delete"]) => (
            activities::list_delete(&mut sim, req, now, speed),
            "activities.list_delete",
        ),
        ("POST", ["activities", "contact_exports"]) => (
            exports::create(&mut sim, req, now, speed),
            "activities.contact_exports",
        ),
        ("GET", ["contact_exports", id]) => (exports::download(&sim, id), "contact_exports.get"),
        ("POST", ["activities", "contacts_json_import"]) => (
            activities::json_import(&mut sim, req, now, speed),
            "activities.json_import",
        ),
        ("POST", ["activities", "contacts_file_import"]) => (
            activities::file_import(&mut sim, req, now, speed),
            "activities.file_import",
        ),
        ("POST", ["activities", "add_list_memberships"]) => (
            activities::memberships(&mut sim, req, now, speed, true),
            "activities.add_list_memberships",
        ),
        ("POST", ["activities", "remove_list_memberships"]) => (
            activities::memberships(&mut sim, req, now, speed, false),
            "activities.remove_list_memberships",
        ),
        ("POST", ["activities", "contact_delete"]) => (
            activities::contact_delete(&mut sim, req, now, speed),
            "activities.contact_delete",
        ),
        ("GET", ["activities"]) => (activities::list(&sim, req, now, speed), "activities.list"),
        ("GET", ["activities", id]) => (activities::get(&sim, id, now, speed), "activities.get"),
        (
            _,
            [
                "contacts"
                | "contact_lists"
                | "activities"
                | "contact_custom_fields"
                | "contact_tags",
                ..,
            ],
        ) => (
            http::cc_error(
                405,
                "method_not_allowed",
                "Method not allowed for this resource",
            ),
            "method_not_allowed",
        ),
        _ => (
            http::cc_error(404, "not_found", "Resource not found"),
            "not_found",
        ),
    };
    cors(resp).route(route)
}

/// The scope a route needs (the vendor's `x-authorization-privileges`, by area).
fn required_scope(method: &str, rest: &[&str]) -> &'static str {
    match rest {
        // Any valid token may ask what it grants; partner routes check the partner's API key.
        ["account", "user", "privileges"] | ["partner", ..] => "",
        ["account", ..] if method == "GET" => "account_read",
        ["account", ..] => "account_update",
        ["emails", ..] | ["reports", ..] => "campaign_data",
        [
            "contacts"
            | "contact_lists"
            | "activities"
            | "contact_custom_fields"
            | "contact_tags"
            | "contact_exports"
            | "segments",
            ..,
        ] => "contact_data",
        // What the pack does not simulate, the vendor's contract guards with its own scopes.
        _ => "",
    }
}

/// `POST /v3/token_info`: the scopes of a valid (unexpired) access token.
pub(crate) fn token_info(shared: &Shared, req: &Req, now: i64) -> Resp {
    let token = match http::json_body(req) {
        Ok(v) => v.member("token").and_then(Value::as_str).map(String::from),
        Err(r) => return r,
    };
    let Some(token) = token else {
        return http::validation(&["token is missing".into()]);
    };
    match shared.keys().verify(&token, &shared.cfg) {
        Some(c) if c.exp * 1000 > now && shared.faulted(&c).is_none() => {
            Resp::json(200, &json!({"scopes": c.scp}))
        }
        _ => http::unauthorized(),
    }
}

fn rate_limit(cfg: &MockConfig, sim: &mut Sim, client: &str, now: i64) -> Option<Resp> {
    let w = sim.rates.entry(client.to_string()).or_default();
    let second = now.div_euclid(1000);
    let day = now.div_euclid(86_400_000);
    if w.second != second {
        w.second = second;
        w.in_second = 0;
    }
    if w.day != day {
        w.day = day;
        w.in_day = 0;
    }
    if w.in_day >= cfg.file.rate_limit.per_day {
        return Some(Resp::json(
            429,
            &json!({"error_key": "quota_exceeded", "error_message": "Limit Exceeded"}),
        ));
    }
    if w.in_second >= cfg.file.rate_limit.per_second {
        return Some(Resp::json(
            429,
            &json!({"error_key": "throttled", "error_message": "Too Many Requests"}),
        ));
    }
    w.in_second += 1;
    w.in_day += 1;
    None
}
