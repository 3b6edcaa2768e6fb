//! `/v3/contact_tags`: list (cursor paging, `limit` 1–500, `include_count`), create (409 on a
//! name in use), read, rename, and delete — which answers 202 with a `contacts_tags_delete`
//! activity that untags every contact and removes the tag when it completes.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::activities::{self, Activity, Work};
use super::paging;
use super::store::{Contact, Sim, Tag, new_id, tag_json};
use crate::mock::http::{Member, Req, Resp, cc_error, json_object, validation};

fn include_count(v: Option<&str>) -> Result<bool, Resp> {
    match v {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(validation(&[
            "include_count does not have a valid value".into()
        ])),
    }
}

/// `GET /v3/contact_tags`.
pub fn list(sim: &Sim, req: &Req) -> Resp {
    let (query, start) = match paging::query_of(req) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (limit, counted) = match (
        paging::limit(&query, 50, 500),
        include_count(paging::get(&query, "include_count")),
    ) {
        (Ok(l), Ok(c)) => (l, c),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let page: Vec<Value> = sim
        .tags
        .values()
        .skip(start)
        .take(limit)
        .map(|t| tag_json(t, counted.then(|| sim.tagged_count(t.id))))
        .collect();
    let mut body = json!({"tags": page});
    if start + limit < sim.tags.len() {
        body["_links"] = paging::next_link("/v3/contact_tags", &query, start + limit);
    }
    Resp::json(200, &body)
}

fn name_of(body: &Map<String, Value>) -> Result<String, Resp> {
    match body.member("name") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= 255 => {
            Ok(s.trim().to_string())
        }
        Some(Value::String(s)) if s.chars().count() > 255 => Err(validation(&[
            "name exceeds the maximum length of 255".into(),
        ])),
        None | Some(Value::Null) => Err(validation(&["name is missing".into()])),
        Some(_) => Err(validation(&["name does not have a valid value".into()])),
    }
}

fn in_use(sim: &Sim, name: &str, except: Option<Uuid>) -> bool {
    sim.tags
        .values()
        .any(|t| Some(t.id) != except && t.name.eq_ignore_ascii_case(name))
}

fn conflict(name: &str) -> Resp {
    cc_error(
        409,
        "contact_tags.api.conflict",
        &format!("The tag name '{name}' is already in use."),
    )
}

fn not_found() -> Resp {
    cc_error(
        404,
        "contact_tags.api.not_found",
        "Resource not found for the tag_id provided.",
    )
}

fn find(sim: &Sim, id: &str) -> Result<Uuid, Resp> {
    Uuid::parse_str(id)
        .ok()
        .filter(|i| sim.tags.contains_key(i))
        .ok_or_else(not_found)
}

/// `POST /v3/contact_tags`.
pub fn create(sim: &mut Sim, req: &Req, now: i64) -> Resp {
    let body = match json_object(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let name = match name_of(&body) {
        Ok(n) => n,
        Err(r) => return r,
    };
    if in_use(sim, &name, None) {
        return conflict(&name);
    }
    let tag_source = match body.member("tag_source") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return validation(&["tag_source does not have a valid value".into()]),
    };
    let t = Tag {
        id: new_id(),
        name,
        tag_source,
        created_at: now,
        updated_at: now,
    };
    let out = tag_json(&t, None);
    sim.tags.insert(t.id, t);
    Resp::json(201, &out)
}

/// `GET /v3/contact_tags/{id}`.
pub fn get(sim: &Sim, req: &Req, id: &str) -> Resp {
    let counted = match include_count(req.q("include_count")) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match find(sim, id) {
        Ok(i) => Resp::json(
            200,
            &tag_json(&sim.tags[&i], counted.then(|| sim.tagged_count(i))),
        ),
        Err(r) => r,
    }
}

/// `PUT /v3/contact_tags/{id}`: renames.
pub fn put(sim: &mut Sim, req: &Req, id: &str, now: i64) -> Resp {
    let id = match find(sim, id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let body = match json_object(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let name = match name_of(&body) {
        Ok(n) => n,
        Err(r) => return r,
    };
    if in_use(sim, &name, Some(id)) {
        return conflict(&name);
    }
    let Some(t) = sim.tags.get_mut(&id) else {
        return not_found();
    };
    t.name = name;
    t.updated_at = now;
    Resp::json(200, &tag_json(t, None))
}

/// `DELETE /v3/contact_tags/{id}`: 202 and a `contacts_tags_delete` activity to poll.
pub fn delete(sim: &mut Sim, id: &str, now: i64, speed: &activities::Speed) -> Resp {
    let id = match find(sim, id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let a = Activity::new(
        "contacts_tags_delete",
        now,
        1,
        Work::TagsDelete { tag_ids: vec![id] },
    );
    let body = activities::activity_json(&a, now, speed);
    let aid = a.id;
    sim.activities.insert(aid, a);
    Resp::json(202, &body).with("location", format!("/v3/activities/{aid}"))
}

/// Whether a contact carries any of these tags (ids as text).
pub fn tagged(c: &Contact, ids: &[String]) -> bool {
    c.extras.as_ref().is_some_and(|x| {
        x.taggings
            .iter()
            .any(|g| ids.iter().any(|t| t.eq_ignore_ascii_case(g)))
    })
}

/// Takes these tags off a contact.
pub fn untag(c: &mut Contact, ids: &[String], now: i64) {
    if let Some(x) = c.extras.as_mut() {
        x.taggings
            .retain(|g| !ids.iter().any(|t| t.eq_ignore_ascii_case(g)));
    }
    c.updated_at = now;
}

/// Checks the tag ids a contact is given: each tag exists.
pub fn check_taggings(sim: &Sim, ids: &[String], errors: &mut Vec<String>) {
    for t in ids {
        let known = Uuid::parse_str(t)
            .ok()
            .is_some_and(|u| sim.tags.contains_key(&u));
        if !known {
            errors.push(format!(
                "taggings: tag {t} does not exist; create it with POST /v3/contact_tags"
            ));
        }
    }
}
