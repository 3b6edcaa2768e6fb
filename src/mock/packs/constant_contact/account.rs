//! `/v3/account/...`: the account summary (read, update), its physical address (read, create
//! once, replace), its email addresses (list with filters, add — unconfirmed until confirmed), and
//! the user's privileges, derived from the token's scopes.
//!
//! Guessed (docs/mock.md says so): the default account values, the privilege ids and which scope
//! grants which privilege; that a new account email stays `UNCONFIRMED` (the vendor mails a link;
//! the mock's admin area confirms: `POST /__postie/account/emails/{id}/confirm`).

use serde_json::{Map, Value, json};

use super::store::{Sim, ts};
use crate::mock::http::{Member, Req, Resp, cc_error, json_object, validation};

/// The summary before any update.
fn default_summary(login: &str) -> Value {
    json!({
        "contact_email": login,
        "contact_phone": "",
        "country_code": "US",
        "encoded_account_id": "a07e1postiemock",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "organization_name": "postie mock account",
        "organization_phone": "",
        "state_code": "MA",
        "time_zone_id": "US/Eastern",
        "website": "",
    })
}

fn default_address() -> Value {
    json!({
        "address_line1": "1 Main Street",
        "city": "Waltham",
        "state_code": "MA",
        "postal_code": "02451",
        "country_code": "US",
    })
}

fn summary(sim: &Sim, login: &str) -> Value {
    sim.account
        .get("summary")
        .cloned()
        .unwrap_or_else(|| default_summary(login))
}

fn address(sim: &Sim) -> Value {
    sim.account
        .get("physical_address")
        .cloned()
        .unwrap_or_else(default_address)
}

/// `GET /v3/account/summary` (`extra_fields=physical_address,company_logo`).
pub fn get_summary(sim: &Sim, req: &Req, login: &str) -> Resp {
    let mut v = summary(sim, login);
    v["encoded_partner_id"] = json!("");
    if let Some(extra) = req.q("extra_fields") {
        for f in extra.split(',').map(str::trim) {
            match f {
                "physical_address" => v["physical_address"] = address(sim),
                // No logo is simulated: the field is left out, not invented.
                "company_logo" => {}
                other => {
                    return validation(&[format!(
                        "extra_fields: `{other}` is not one of physical_address, company_logo"
                    )]);
                }
            }
        }
    }
    Resp::json(200, &v)
}

const SUMMARY_FIELDS: [(&str, usize); 10] = [
    ("contact_email", 80),
    ("contact_phone", 25),
    ("country_code", 2),
    ("first_name", 50),
    ("last_name", 50),
    ("organization_name", 100),
    ("organization_phone", 25),
    ("state_code", 2),
    ("time_zone_id", 50),
    ("website", 255),
];

/// `PUT /v3/account/summary`: the fields given change; the rest stay.
pub fn put_summary(sim: &mut Sim, req: &Req, login: &str) -> Resp {
    let body = match json_object(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut errors = Vec::new();
    let mut v = summary(sim, login);
    for (k, val) in &body {
        if k == "encoded_account_id" {
            // Read-only: sent back as read, ignored.
            continue;
        }
        let Some((_, max)) = SUMMARY_FIELDS.iter().find(|(f, _)| f == k) else {
            errors.push(format!("{k} is not a field of the account summary"));
            continue;
        };
        match val {
            Value::String(s) if s.chars().count() <= *max => {
                if k == "contact_email" && !super::contact_input::valid_email(s) {
                    errors.push("contact_email does not have a valid value".into());
                }
                v[k.as_str()] = json!(s);
            }
            Value::String(_) => errors.push(format!("{k} exceeds the maximum length of {max}")),
            _ => errors.push(format!("{k} does not have a valid value")),
        }
    }
    if !errors.is_empty() {
        return validation(&errors);
    }
    sim.account.insert("summary".into(), v.clone());
    Resp::json(200, &v)
}

fn check_address(body: &Map<String, Value>) -> Result<Value, Resp> {
    let mut errors = Vec::new();
    let mut out = Map::new();
    for (k, max, required) in [
        ("address_line1", 80, true),
        ("address_line2", 80, false),
        ("address_line3", 80, false),
        ("city", 50, true),
        ("state_code", 2, false),
        ("state_name", 50, false),
        ("postal_code", 25, false),
        ("country_code", 2, true),
    ] {
        // An empty line is no line (the contract gives address lines a minimum length of 1).
        let given = body
            .get(k)
            .filter(|v| !v.is_null() && v.as_str() != Some(""));
        match given {
            None if required => errors.push(format!("{k} is missing")),
            None => {}
            Some(Value::String(s)) if s.chars().count() <= max => {
                out.insert(k.into(), json!(s));
            }
            Some(Value::String(_)) => {
                errors.push(format!("{k} exceeds the maximum length of {max}"))
            }
            Some(_) => errors.push(format!("{k} does not have a valid value")),
        }
    }
    // The vendor wants a state code for the US and Canada, a state name elsewhere.
    let country = out
        .member("country_code")
        .and_then(Value::as_str)
        .unwrap_or("");
    if matches!(country, "US" | "CA") && !out.contains_key("state_code") {
        errors.push("state_code is required for US and CA addresses".into());
    }
    if let Some(k) = body.keys().find(|k| {
        ![
            "address_line1",
            "address_line2",
            "address_line3",
            "city",
            "state_code",
            "state_name",
            "postal_code",
            "country_code",
        ]
        .contains(&k.as_str())
    }) {
        errors.push(format!("{k} is not a field of the physical address"));
    }
    if errors.is_empty() {
        Ok(Value::Object(out))
    } else {
        Err(validation(&errors))
    }
}

/// `GET /v3/account/summary/physical_address`.
pub fn get_address(sim: &Sim) -> Resp {
    Resp::json(200, &address(sim))
}

/// `POST /v3/account/summary/physical_address`: 201, or 409 when the account has one set.
pub fn post_address(sim: &mut Sim, req: &Req) -> Resp {
    if sim.account.contains_key("physical_address") {
        return cc_error(
            409,
            "account.api.conflict",
            "The account already has a physical address; update it with PUT",
        );
    }
    put_address_inner(sim, req, 201)
}

/// `PUT /v3/account/summary/physical_address`: replaced.
pub fn put_address(sim: &mut Sim, req: &Req) -> Resp {
    put_address_inner(sim, req, 200)
}

fn put_address_inner(sim: &mut Sim, req: &Req, status: u16) -> Resp {
    let body = match json_object(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match check_address(&body) {
        Ok(a) => {
            sim.account.insert("physical_address".into(), a.clone());
            Resp::json(status, &a)
        }
        Err(r) => r,
    }
}

fn emails(sim: &Sim, login: &str) -> Vec<Value> {
    let mut all = vec![json!({
        "email_address": login,
        "email_id": 1,
        "confirm_status": "CONFIRMED",
        "confirm_time": "2020-01-01T00:00:00Z",
        "confirm_source_type": "SITE_OWNER",
        "roles": ["CONTACT", "BILLING"],
        "pending_roles": [],
    })];
    all.extend(
        sim.account
            .iter()
            .filter(|(k, _)| k.starts_with("email:"))
            .map(|(_, v)| v.clone()),
    );
    all
}

/// `GET /v3/account/emails` (`confirm_status`, `role_code`, `email_address`).
pub fn list_emails(sim: &Sim, req: &Req, login: &str) -> Resp {
    let status = match req.q("confirm_status") {
        None => None,
        Some("CONFIRMED" | "C") => Some("CONFIRMED"),
        Some("UNCONFIRMED" | "U") => Some("UNCONFIRMED"),
        Some(_) => return validation(&["confirm_status does not have a valid value".into()]),
    };
    let role = match req.q("role_code") {
        None => None,
        Some("CONTACT" | "C") => Some("CONTACT"),
        Some("BILLING" | "B") => Some("BILLING"),
        Some("JOURNALING" | "J") => Some("JOURNALING"),
        Some("REPLY_TO" | "R") => Some("REPLY_TO"),
        Some("OTHER" | "O") => Some("OTHER"),
        Some(_) => return validation(&["role_code does not have a valid value".into()]),
    };
    let address = req.q("email_address").map(str::to_ascii_lowercase);
    let list: Vec<Value> = emails(sim, login)
        .into_iter()
        .filter(|e| status.is_none_or(|s| e["confirm_status"] == s))
        .filter(|e| {
            role.is_none_or(|r| {
                e["roles"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == r))
            })
        })
        .filter(|e| {
            address.as_deref().is_none_or(|a| {
                e["email_address"]
                    .as_str()
                    .is_some_and(|x| x.eq_ignore_ascii_case(a))
            })
        })
        .collect();
    Resp::json(200, &Value::Array(list))
}

/// `POST /v3/account/emails`: 201 `UNCONFIRMED`; 409 when the address is there.
pub fn add_email(sim: &mut Sim, req: &Req, login: &str) -> Resp {
    let body = match json_object(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(address) = body
        .member("email_address")
        .and_then(Value::as_str)
        .filter(|a| a.chars().count() <= 80 && super::contact_input::valid_email(a))
    else {
        return validation(&["email_address does not have a valid value".into()]);
    };
    let known = emails(sim, login);
    if known.iter().any(|e| {
        e["email_address"]
            .as_str()
            .is_some_and(|x| x.eq_ignore_ascii_case(address))
    }) {
        return cc_error(
            409,
            "account.api.conflict",
            &format!("{address} is already an email address of this account"),
        );
    }
    let id = known
        .iter()
        .filter_map(|e| e["email_id"].as_u64())
        .max()
        .unwrap_or(1)
        + 1;
    let entry = json!({
        "email_address": address,
        "email_id": id,
        "confirm_status": "UNCONFIRMED",
        "roles": [],
        "pending_roles": ["OTHER"],
    });
    sim.account.insert(format!("email:{id:06}"), entry);
    Resp::json(
        201,
        &json!({"email_address": address, "email_id": id, "confirm_status": "UNCONFIRMED"}),
    )
}

/// Confirms an account email (the mock's stand-in for the link the vendor mails).
pub fn confirm_email(sim: &mut Sim, id: u64, now: i64) -> bool {
    let key = format!("email:{id:06}");
    let Some(mut e) = sim.account.get(&key).cloned() else {
        return false;
    };
    e["confirm_status"] = json!("CONFIRMED");
    e["confirm_time"] = json!(ts(now));
    e["confirm_source_type"] = json!("SITE_OWNER");
    let pending = e["pending_roles"].take();
    e["roles"] = pending;
    e["pending_roles"] = json!([]);
    sim.account.insert(key, e);
    true
}

/// Privileges each scope grants: the vendor Swagger's `x-authorization-privileges` of the
/// operations each scope guards (the ids are guessed).
const PRIVILEGES: [(&str, u32, &str); 15] = [
    ("account_read", 1, "account:read"),
    ("account_update", 2, "account:update"),
    ("contact_data", 10, "contacts:read"),
    ("contact_data", 11, "contacts:write"),
    ("contact_data", 12, "contacts:lists:read"),
    ("contact_data", 13, "contacts:lists:write"),
    ("contact_data", 14, "ui:campaign:metrics"),
    ("campaign_data", 30, "campaign:read"),
    ("campaign_data", 31, "campaign:write"),
    ("campaign_data", 32, "campaign:send"),
    ("campaign_data", 33, "campaign:delete"),
    ("campaign_data", 34, "customer-journey:create"),
    ("campaign_data", 35, "customer-journey:read"),
    ("campaign_data", 36, "customer-journey:update"),
    ("campaign_data", 14, "ui:campaign:metrics"),
];

/// `GET /v3/account/user/privileges`: what the token's scopes grant.
pub fn privileges(scopes: &[String]) -> Resp {
    let mut seen = std::collections::HashSet::new();
    let list: Vec<Value> = PRIVILEGES
        .iter()
        .filter(|(s, _, _)| scopes.iter().any(|x| x == s))
        .filter(|(_, id, _)| seen.insert(*id))
        .map(|(_, id, name)| json!({"privilege_id": id, "privilege_name": name}))
        .collect();
    Resp::json(200, &Value::Array(list))
}
