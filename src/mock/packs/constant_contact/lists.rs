//! `/v3/contact_lists`: list, create (409 on a duplicate name), read, update, and delete — which
//! answers 202 with a `list_delete` activity, as the vendor's deletion is asynchronous.

use serde_json::{Value, json};
use uuid::Uuid;

use super::activities::{self, Activity, Work};
use super::store::{ContactList, Sim, list_json, new_id};
use crate::mock::http::{Member, Req, Resp, cc_error, json_object, validation};

fn membership_param(req: &Req) -> Result<Option<bool>, Resp> {
    match req.q("include_membership_count") {
        None => Ok(None),
        Some("all") => Ok(Some(false)),
        Some("active") => Ok(Some(true)),
        Some(_) => Err(validation(&[
            "include_membership_count does not have a valid value".into(),
        ])),
    }
}

/// `GET /v3/contact_lists`.
pub fn list(sim: &Sim, req: &Req) -> Resp {
    // The cursor is opaque, as the contacts' is: it carries the query and where to go on.
    let (query, start) = match super::paging::query_of(req) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let paged = Req {
        query: query.clone(),
        ..req.clone()
    };
    let counts = match membership_param(&paged) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let limit = match super::paging::limit(&query, 50, 1000) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let status = paged.q("status").unwrap_or("active");
    if !["all", "active", "deleted"].contains(&status) {
        return validation(&["status does not have a valid value".into()]);
    }
    let name = paged.q("name");
    let keep = |l: &ContactList| {
        let st = match status {
            "all" => true,
            "deleted" => l.deleted_at.is_some(),
            _ => l.deleted_at.is_none(),
        };
        st && name.is_none_or(|n| l.name == n)
    };
    let matching: Vec<&ContactList> = sim.lists.values().filter(|l| keep(l)).collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(limit)
        .map(|l| list_json(l, counts.map(|a| sim.membership_count(l.id, a))))
        .collect();
    let mut body = json!({"lists": page});
    if paged.q("include_count") == Some("true") {
        body["lists_count"] = json!(matching.len());
    }
    if start + limit < matching.len() {
        body["_links"] = super::paging::next_link("/v3/contact_lists", &query, start + limit);
    }
    Resp::json(200, &body)
}

struct ListInput {
    name: String,
    description: Option<String>,
    favorite: bool,
}

fn parse_input(req: &Req) -> Result<ListInput, Resp> {
    let body = json_object(req)?;
    let mut errors = Vec::new();
    let name = match body.member("name") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= 255 => s.clone(),
        Some(Value::String(s)) if s.chars().count() > 255 => {
            errors.push("name exceeds the maximum length of 255".into());
            String::new()
        }
        None | Some(Value::Null) => {
            errors.push("name is missing".to_string());
            String::new()
        }
        Some(_) => {
            errors.push("name does not have a valid value".into());
            String::new()
        }
    };
    let description = match body.member("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push("description does not have a valid value".into());
            None
        }
    };
    let favorite = match body.member("favorite") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.push("favorite does not have a valid value".into());
            false
        }
    };
    if errors.is_empty() {
        Ok(ListInput {
            name,
            description,
            favorite,
        })
    } else {
        Err(validation(&errors))
    }
}

fn name_taken(sim: &Sim, name: &str, except: Option<Uuid>) -> bool {
    sim.lists.values().any(|l| {
        l.deleted_at.is_none() && Some(l.id) != except && l.name.eq_ignore_ascii_case(name)
    })
}

fn duplicate(name: &str) -> Resp {
    cc_error(
        409,
        "contact_lists.api.conflict",
        &format!("The list name '{name}' is already in use."),
    )
}

/// `POST /v3/contact_lists`.
pub fn create(sim: &mut Sim, req: &Req, now: i64) -> Resp {
    let input = match parse_input(req) {
        Ok(i) => i,
        Err(r) => return r,
    };
    if name_taken(sim, &input.name, None) {
        return duplicate(&input.name);
    }
    if sim
        .lists
        .values()
        .filter(|l| l.deleted_at.is_none())
        .count()
        >= 1000
    {
        return validation(&["An account can have at most 1000 lists".into()]);
    }
    let id = new_id();
    let l = ContactList {
        description: input.description,
        favorite: input.favorite,
        ..ContactList::new(id, input.name, now)
    };
    let body = list_json(&l, None);
    sim.lists.insert(id, l);
    Resp::json(201, &body)
}

fn parse_id(id: &str) -> Result<Uuid, Resp> {
    Uuid::parse_str(id).map_err(|_| not_found())
}

fn not_found() -> Resp {
    cc_error(
        404,
        "contact_lists.api.not_found",
        "Resource not found for the list_id provided.",
    )
}

/// `GET /v3/contact_lists/{id}`.
pub fn get(sim: &Sim, req: &Req, id: &str) -> Resp {
    let counts = match membership_param(req) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match parse_id(id).map(|id| sim.lists.get(&id)) {
        Ok(Some(l)) => Resp::json(
            200,
            &list_json(l, counts.map(|a| sim.membership_count(l.id, a))),
        ),
        Ok(None) => not_found(),
        Err(r) => r,
    }
}

/// `PUT /v3/contact_lists/{id}`.
pub fn put(sim: &mut Sim, req: &Req, id: &str, now: i64) -> Resp {
    let id = match parse_id(id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    if sim.lists.get(&id).is_none_or(|l| l.deleted_at.is_some()) {
        return not_found();
    }
    let input = match parse_input(req) {
        Ok(i) => i,
        Err(r) => return r,
    };
    if name_taken(sim, &input.name, Some(id)) {
        return duplicate(&input.name);
    }
    let l = sim.lists.get_mut(&id).expect("checked");
    l.name = input.name;
    l.description = input.description;
    l.favorite = input.favorite;
    l.updated_at = now;
    Resp::json(200, &list_json(l, None))
}

/// `DELETE /v3/contact_lists/{id}`: 202, a `list_delete` activity, `Location` to poll.
pub fn delete(sim: &mut Sim, id: &str, now: i64, cfg: &activities::Speed) -> Resp {
    let id = match parse_id(id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    if sim.lists.get(&id).is_none_or(|l| l.deleted_at.is_some()) {
        return not_found();
    }
    let a = Activity::new(
        "list_delete",
        now,
        1,
        Work::ListDelete { list_ids: vec![id] },
    );
    let body = activities::activity_json(&a, now, cfg);
    let aid = a.id;
    sim.activities.insert(aid, a);
    Resp::json(202, &body).with("location", format!("/v3/activities/{aid}"))
}
