//! `/v3/segments`: list (`sort_by=date|name`, `limit`), create (409 on a name in use), read,
//! replace, rename (`PATCH …/name`), delete; and the evaluation of a segment's criteria, so
//! `GET /v3/contacts?segment_id=`, exports and bulk tagging select its contacts.
//!
//! Criteria are the vendor's escaped-JSON string: `{"version": "1.0.0", "criteria": {"type":
//! "and", "group": [...]}}`, groups of `and`/`or` with leaves `{source, field, op, const_value,
//! param}`. Evaluated (the shapes are guessed from the vendor's description; docs/mock.md says
//! so): `list_membership` and `tags` leaves (`const_value` ids; ops `contains-any`,
//! `contains-all`, `not-contains-any`), `contact` leaves on core fields and custom fields
//! (`field: custom_field` with `param` the field id; ops `is`/`equals`, `is-not`, `contains`,
//! `not-contains`, `starts-with`, `ends-with`, `exists`, `not-exists`). `tracking` leaves
//! (opens, clicks) are stored but not simulated: evaluating them is a 400 naming the source.

use serde_json::{Value, json};

use super::store::{Contact, Segment, Sim, ts};
use crate::mock::http::{Member, Req, Resp, cc_error, json_object, validation};

fn segment_json(s: &Segment, with_criteria: bool) -> Value {
    let mut v = json!({
        "name": s.name,
        "segment_id": s.id,
        "created_at": ts(s.created_at),
        "edited_at": ts(s.edited_at),
    });
    if with_criteria {
        v["segment_criteria"] = json!(s.criteria);
    }
    v
}

/// `GET /v3/segments`.
pub fn list(sim: &Sim, req: &Req) -> Resp {
    let limit = match req.q("limit").map(str::parse::<usize>) {
        None => 1000,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        _ => return validation(&["limit does not have a valid value".into()]),
    };
    let mut all: Vec<&Segment> = sim.segments.values().collect();
    match req.q("sort_by").map(|s| s.trim_start_matches("sort_by=")) {
        None | Some("date") => all.sort_by_key(|s| std::cmp::Reverse(s.edited_at)),
        Some("name") => all.sort_by_key(|s| s.name.to_lowercase()),
        Some(_) => {
            return validation(&["sort_by does not have a valid value (date or name)".into()]);
        }
    }
    let page: Vec<Value> = all
        .into_iter()
        .take(limit)
        .map(|s| segment_json(s, false))
        .collect();
    Resp::json(200, &json!({"segments": page}))
}

fn not_found() -> Resp {
    cc_error(
        404,
        "segments.api.not_found",
        "Resource not found for the segment_id provided.",
    )
}

fn find(sim: &Sim, id: &str) -> Result<u64, Resp> {
    id.parse::<u64>()
        .ok()
        .filter(|i| sim.segments.contains_key(i))
        .ok_or_else(not_found)
}

fn name_of(body: &serde_json::Map<String, Value>, errors: &mut Vec<String>) -> String {
    match body.member("name") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= 255 => {
            s.trim().to_string()
        }
        None | Some(Value::Null) => {
            errors.push("name is missing".into());
            String::new()
        }
        _ => {
            errors.push("name does not have a valid value".into());
            String::new()
        }
    }
}

/// Checks a criteria string: escaped JSON with a version and a top-level `and` group.
pub fn check_criteria(text: &str) -> Result<Value, String> {
    if text.chars().count() > 20_000 {
        return Err("segment_criteria exceeds the maximum length of 20000".into());
    }
    let v: Value = serde_json::from_str(text)
        .map_err(|e| format!("segment_criteria is not valid escaped JSON: {e}"))?;
    let criteria = v
        .member("criteria")
        .ok_or("segment_criteria has no `criteria` object")?;
    if criteria.member("type").and_then(Value::as_str) != Some("and") {
        return Err("segment_criteria: the top-level group type must be `and`".into());
    }
    if !criteria.member("group").is_some_and(Value::is_array) {
        return Err("segment_criteria: the top-level group needs a `group` array".into());
    }
    Ok(v)
}

fn criteria_of(body: &serde_json::Map<String, Value>, errors: &mut Vec<String>) -> String {
    match body.member("segment_criteria") {
        Some(Value::String(s)) => {
            if let Err(e) = check_criteria(s) {
                errors.push(e);
            }
            s.clone()
        }
        None | Some(Value::Null) => {
            errors.push("segment_criteria is missing".into());
            String::new()
        }
        Some(_) => {
            errors.push("segment_criteria must be a string of escaped JSON".into());
            String::new()
        }
    }
}

fn in_use(sim: &Sim, name: &str, except: Option<u64>) -> bool {
    sim.segments
        .values()
        .any(|s| Some(s.id) != except && s.name.eq_ignore_ascii_case(name))
}

fn conflict(name: &str) -> Resp {
    cc_error(
        409,
        "segments.api.conflict",
        &format!("The segment name '{name}' is already in use."),
    )
}

/// `POST /v3/segments`.
pub fn create(sim: &mut Sim, req: &Req, now: i64) -> Resp {
    let body = match json_object(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut errors = Vec::new();
    let name = name_of(&body, &mut errors);
    let criteria = criteria_of(&body, &mut errors);
    if !errors.is_empty() {
        return validation(&errors);
    }
    if in_use(sim, &name, None) {
        return conflict(&name);
    }
    let id = sim.segments.values().map(|s| s.id).max().unwrap_or(0) + 1;
    let s = Segment {
        id,
        name,
        criteria,
        created_at: now,
        edited_at: now,
    };
    let out = segment_json(&s, true);
    sim.segments.insert(id, s);
    Resp::json(201, &out)
}

/// `GET /v3/segments/{id}`.
pub fn get(sim: &Sim, id: &str) -> Resp {
    match find(sim, id) {
        Ok(i) => Resp::json(200, &segment_json(&sim.segments[&i], true)),
        Err(r) => r,
    }
}

/// `PUT /v3/segments/{id}`: name and criteria replaced.
pub fn put(sim: &mut Sim, req: &Req, id: &str, now: i64) -> Resp {
    let id = match find(sim, id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let body = match json_object(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut errors = Vec::new();
    let name = name_of(&body, &mut errors);
    let criteria = criteria_of(&body, &mut errors);
    if !errors.is_empty() {
        return validation(&errors);
    }
    if in_use(sim, &name, Some(id)) {
        return conflict(&name);
    }
    let Some(s) = sim.segments.get_mut(&id) else {
        return not_found();
    };
    s.name = name;
    s.criteria = criteria;
    s.edited_at = now;
    Resp::json(200, &segment_json(s, true))
}

/// `PATCH /v3/segments/{id}/name`.
pub fn rename(sim: &mut Sim, req: &Req, id: &str, now: i64) -> Resp {
    let id = match find(sim, id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let body = match json_object(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut errors = Vec::new();
    let name = name_of(&body, &mut errors);
    if !errors.is_empty() {
        return validation(&errors);
    }
    if in_use(sim, &name, Some(id)) {
        return conflict(&name);
    }
    let Some(s) = sim.segments.get_mut(&id) else {
        return not_found();
    };
    s.name = name;
    s.edited_at = now;
    Resp::json(200, &segment_json(s, true))
}

/// `DELETE /v3/segments/{id}`: 204.
pub fn delete(sim: &mut Sim, id: &str) -> Resp {
    match find(sim, id) {
        Ok(i) => {
            sim.segments.remove(&i);
            Resp::empty(204)
        }
        Err(r) => r,
    }
}

/// A segment's criteria, ready to test contacts against; `Err` names what cannot be evaluated.
pub fn matcher(sim: &Sim, id: u64) -> Result<Value, String> {
    let s = sim
        .segments
        .get(&id)
        .ok_or_else(|| format!("segment_id {id} is not a segment in this account"))?;
    let v = check_criteria(&s.criteria)?;
    let criteria = v["criteria"].clone();
    evaluable(&criteria)?;
    Ok(criteria)
}

/// Refuses criteria the mock cannot evaluate, naming the source or operator.
fn evaluable(node: &Value) -> Result<(), String> {
    if let Some(group) = node.member("group").and_then(Value::as_array) {
        let t = node.member("type").and_then(Value::as_str).unwrap_or("and");
        if t != "and" && t != "or" {
            return Err(format!("segment_criteria: group type `{t}` is not and/or"));
        }
        return group.iter().try_for_each(evaluable);
    }
    let source = node.member("source").and_then(Value::as_str).unwrap_or("");
    let op = node.member("op").and_then(Value::as_str).unwrap_or("");
    let ops: &[&str] = match source {
        "list_membership" | "tags" => &["contains-any", "contains-all", "not-contains-any"],
        "contact" => &[
            "is",
            "equals",
            "eq",
            "is-not",
            "not-equals",
            "contains",
            "not-contains",
            "starts-with",
            "ends-with",
            "exists",
            "not-exists",
        ],
        other => {
            return Err(format!(
                "segment criteria from source `{other}` are not simulated by the postie mock (docs/mock.md)"
            ));
        }
    };
    if !ops.contains(&op) {
        return Err(format!(
            "segment criteria op `{op}` on source `{source}` is not simulated (one of {})",
            ops.join(", ")
        ));
    }
    Ok(())
}

/// Whether a contact meets criteria (checked by [`matcher`] first).
pub fn meets(c: &Contact, node: &Value) -> bool {
    if let Some(group) = node.member("group").and_then(Value::as_array) {
        return match node.member("type").and_then(Value::as_str) {
            Some("or") => group.iter().any(|n| meets(c, n)),
            _ => group.iter().all(|n| meets(c, n)),
        };
    }
    let text = |k: &str| {
        node.get(k)
            .map(crate::capture::value_text)
            .unwrap_or_default()
    };
    let op = text("op");
    let wanted: Vec<String> = text("const_value")
        .split(',')
        .map(|x| x.trim().to_ascii_lowercase())
        .filter(|x| !x.is_empty())
        .collect();
    let set_op = |have: Vec<String>| match op.as_str() {
        "contains-all" => wanted.iter().all(|w| have.contains(w)),
        "not-contains-any" => !wanted.iter().any(|w| have.contains(w)),
        _ => wanted.iter().any(|w| have.contains(w)),
    };
    match text("source").as_str() {
        "list_membership" => set_op(
            c.list_memberships
                .iter()
                .map(|l| l.to_string().to_ascii_lowercase())
                .collect(),
        ),
        "tags" => set_op(
            c.extras
                .as_ref()
                .map(|x| x.taggings.iter().map(|t| t.to_ascii_lowercase()).collect())
                .unwrap_or_default(),
        ),
        _ => {
            let field = text("field");
            let value: Option<String> = match field.as_str() {
                "email_address" | "email" => c.email.as_ref().map(|e| e.address.clone()),
                "first_name" => c.first_name.clone(),
                "last_name" => c.last_name.clone(),
                "job_title" => c.job_title.clone(),
                "company_name" => c.company_name.clone(),
                "birthday_month" => c.birthday_month.map(|m| m.to_string()),
                "birthday_day" => c.birthday_day.map(|d| d.to_string()),
                "anniversary" => c.anniversary.clone(),
                "permission_to_send" | "email_permission" => {
                    c.email.as_ref().map(|e| e.permission.as_str().to_string())
                }
                "custom_field" => {
                    let id = text("param").to_ascii_lowercase();
                    c.extras.as_ref().and_then(|x| {
                        x.custom_fields
                            .iter()
                            .find(|v| {
                                v.member("custom_field_id")
                                    .and_then(Value::as_str)
                                    .is_some_and(|i| i.eq_ignore_ascii_case(&id))
                            })
                            .and_then(|v| v.member("value").and_then(Value::as_str))
                            .map(String::from)
                    })
                }
                _ => None,
            };
            let v = value.map(|v| v.to_lowercase()).filter(|v| !v.is_empty());
            let want = text("const_value").to_lowercase();
            match (op.as_str(), v) {
                ("exists", v) => v.is_some(),
                ("not-exists", v) => v.is_none(),
                ("is-not" | "not-equals", v) => v.as_deref() != Some(want.as_str()),
                ("not-contains", v) => !v.is_some_and(|v| v.contains(&want)),
                (_, None) => false,
                ("contains", Some(v)) => v.contains(&want),
                ("starts-with", Some(v)) => v.starts_with(&want),
                ("ends-with", Some(v)) => v.ends_with(&want),
                (_, Some(v)) => v == want,
            }
        }
    }
}
