//! `/v3/contact_custom_fields`: list (cursor paging, `limit` 1–100), create (409 on a label or
//! name in use, at most 100 per account), read, update (the version counts), delete (the field's
//! values leave every contact).
//!
//! Guessed where the reference is silent (docs/mock.md says so): the conflict's error key, the
//! name derived from the label (letters, digits and `_`), and which types take what values.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::paging;
use super::store::{Contact, CustomField, Sim, custom_field_json, new_id};
use crate::mock::http::{Member, Req, Resp, cc_error, json_object, validation};

/// The types a custom field may have (`string` and `date`, and those added in 2025).
pub const TYPES: [&str; 9] = [
    "string",
    "date",
    "datetime",
    "currency",
    "text_area",
    "number",
    "boolean",
    "single_select",
    "multi_select",
];

/// How many custom fields an account may have.
pub const MAX_FIELDS: usize = 100;

/// `GET /v3/contact_custom_fields`.
pub fn list(sim: &Sim, req: &Req) -> Resp {
    let (query, start) = match paging::query_of(req) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let limit = match paging::limit(&query, 50, 100) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let page: Vec<Value> = sim
        .custom_fields
        .values()
        .skip(start)
        .take(limit)
        .map(custom_field_json)
        .collect();
    let mut body = json!({"custom_fields": page});
    if start + limit < sim.custom_fields.len() {
        body["_links"] = paging::next_link("/v3/contact_custom_fields", &query, start + limit);
    }
    Resp::json(200, &body)
}

struct Input {
    label: String,
    kind: String,
    choices: Vec<Value>,
}

fn input(body: &Map<String, Value>) -> Result<Input, Resp> {
    let mut errors = Vec::new();
    let label = match body.member("label") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= 50 => s.clone(),
        Some(Value::String(s)) if s.chars().count() > 50 => {
            errors.push("label exceeds the maximum length of 50".to_string());
            String::new()
        }
        None | Some(Value::Null) => {
            errors.push("label is missing".to_string());
            String::new()
        }
        Some(_) => {
            errors.push("label does not have a valid value".to_string());
            String::new()
        }
    };
    let kind = match body.member("type") {
        Some(Value::String(t)) if TYPES.contains(&t.as_str()) => t.clone(),
        None | Some(Value::Null) => {
            errors.push("type is missing".to_string());
            String::new()
        }
        Some(_) => {
            errors.push(format!(
                "type does not have a valid value (one of {})",
                TYPES.join(", ")
            ));
            String::new()
        }
    };
    let choices = match body.member("choices") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => {
            errors.push("choices does not have a valid value".to_string());
            Vec::new()
        }
    };
    if errors.is_empty() {
        Ok(Input {
            label,
            kind,
            choices,
        })
    } else {
        Err(validation(&errors))
    }
}

/// The name a label gives: letters and digits kept, everything else `_`, at most 50.
pub fn name_of(label: &str) -> String {
    label
        .trim()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '_' })
        .take(50)
        .collect()
}

fn in_use(sim: &Sim, label: &str, name: &str, except: Option<Uuid>) -> bool {
    sim.custom_fields.values().any(|f| {
        Some(f.id) != except
            && (f.label.eq_ignore_ascii_case(label) || f.name.eq_ignore_ascii_case(name))
    })
}

fn conflict(label: &str) -> Resp {
    cc_error(
        409,
        "contact_custom_fields.api.conflict",
        &format!("The custom field label '{label}' is already in use."),
    )
}

fn not_found() -> Resp {
    cc_error(
        404,
        "contact_custom_fields.api.not_found",
        "Resource not found for the custom_field_id provided.",
    )
}

fn find(sim: &Sim, id: &str) -> Result<Uuid, Resp> {
    Uuid::parse_str(id)
        .ok()
        .filter(|i| sim.custom_fields.contains_key(i))
        .ok_or_else(not_found)
}

/// `POST /v3/contact_custom_fields`.
pub fn create(sim: &mut Sim, req: &Req, now: i64) -> Resp {
    let body = match json_object(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let i = match input(&body) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let name = name_of(&i.label);
    if in_use(sim, &i.label, &name, None) {
        return conflict(&i.label);
    }
    if sim.custom_fields.len() >= MAX_FIELDS {
        return validation(&[format!(
            "An account can have at most {MAX_FIELDS} custom fields"
        )]);
    }
    let f = CustomField {
        id: new_id(),
        label: i.label,
        name,
        kind: i.kind,
        choices: i.choices,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let out = custom_field_json(&f);
    sim.custom_fields.insert(f.id, f);
    Resp::json(201, &out)
}

/// `GET /v3/contact_custom_fields/{id}`.
pub fn get(sim: &Sim, id: &str) -> Resp {
    match find(sim, id) {
        Ok(i) => Resp::json(200, &custom_field_json(&sim.custom_fields[&i])),
        Err(r) => r,
    }
}

/// `PUT /v3/contact_custom_fields/{id}`: label and type replaced; the version counts.
pub fn put(sim: &mut Sim, req: &Req, id: &str, now: i64) -> Resp {
    let id = match find(sim, id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let body = match json_object(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let i = match input(&body) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let name = name_of(&i.label);
    if in_use(sim, &i.label, &name, Some(id)) {
        return conflict(&i.label);
    }
    let Some(f) = sim.custom_fields.get_mut(&id) else {
        return not_found();
    };
    f.label = i.label;
    f.name = name;
    f.kind = i.kind;
    f.choices = i.choices;
    f.version += 1;
    f.updated_at = now;
    Resp::json(200, &custom_field_json(f))
}

/// `DELETE /v3/contact_custom_fields/{id}`: 204; the field's values leave every contact.
pub fn delete(sim: &mut Sim, id: &str, now: i64) -> Resp {
    let id = match find(sim, id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    sim.custom_fields.remove(&id);
    strip_values(sim, &[id], now);
    Resp::empty(204)
}

/// Removes these fields' values from every contact that has one.
pub fn strip_values(sim: &mut Sim, ids: &[Uuid], now: i64) {
    let texts: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    for mut c in sim.contacts.values_mut() {
        // Only a contact that loses a value changes (and is journaled).
        if holds_any(&c, &texts) {
            strip(&mut c, &texts, now);
        }
    }
}

/// Whether a contact has a value for any of these fields (ids as text).
pub fn holds_any(c: &Contact, ids: &[String]) -> bool {
    c.extras
        .as_ref()
        .is_some_and(|x| x.custom_fields.iter().any(|v| holds(v, ids)))
}

/// Takes a contact's values for these fields away.
pub fn strip(c: &mut Contact, ids: &[String], now: i64) {
    if let Some(x) = c.extras.as_mut() {
        x.custom_fields.retain(|v| !holds(v, ids));
    }
    c.updated_at = now;
}

fn holds(v: &Value, ids: &[String]) -> bool {
    v.member("custom_field_id")
        .and_then(Value::as_str)
        .is_some_and(|i| ids.iter().any(|t| t.eq_ignore_ascii_case(i)))
}

/// Checks the custom field values a contact is given: each field exists, and a value fits its
/// type. Errors are the vendor's validation messages.
pub fn check_values(sim: &Sim, values: &[Value], errors: &mut Vec<String>) {
    for v in values {
        let Some(id) = v
            .member("custom_field_id")
            .and_then(Value::as_str)
            .and_then(|i| Uuid::parse_str(i).ok())
        else {
            continue;
        };
        let Some(f) = sim.custom_fields.get(&id) else {
            errors.push(format!(
                "custom_field_id {id} does not exist; create it with POST /v3/contact_custom_fields"
            ));
            continue;
        };
        let text = v.member("value").and_then(Value::as_str).unwrap_or("");
        let fits = match f.kind.as_str() {
            "date" => text.is_empty() || super::contact_input::parse_anniversary(text).is_some(),
            "number" | "currency" => text.is_empty() || text.trim().parse::<f64>().is_ok(),
            "boolean" => text.is_empty() || matches!(text, "true" | "false"),
            _ => true,
        };
        if !fits {
            errors.push(format!(
                "custom_fields value '{text}' is not a valid {} for {}",
                f.kind, f.name
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_come_from_labels() {
        assert_eq!(
            super::name_of("Vehicle make and model year"),
            "Vehicle_make_and_model_year"
        );
        assert_eq!(super::name_of(" Size (EU) "), "Size__EU_");
    }
}
