//! `/v3/contacts`: list with filters and cursor paging, create, read, full update (PUT), soft
//! delete, and the `sign_up_form` upsert — with the vendor's validation limits and error shapes.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::contact_input::{
    apply_core, apply_subresources, check_core, check_subresources, source_field, valid_email,
};
use super::store::{Contact, ContactView, Include, Permission, Sim, Source, new_id};
use crate::mock::http::{
    JsonObject, Member, Req, Resp, cc_error, json_fields, json_object, validation,
};

/// Core text fields and their limits.
pub(super) const TEXT_FIELDS: [(&str, usize); 4] = [
    ("first_name", 50),
    ("last_name", 50),
    ("job_title", 50),
    ("company_name", 50),
];

/// `GET /v3/contacts/counts`: contacts (not deleted) by consent state; with
/// `include=new_subscriber`, also those who subscribed in the last 30 days of the mock clock.
pub fn counts(sim: &Sim, req: &Req, now: i64) -> Resp {
    let with_new = match req.q("include") {
        None => false,
        Some("new_subscriber") => true,
        Some(_) => return validation(&["include does not have a valid value".into()]),
    };
    // The totals are kept as contacts change; only the new subscribers of the last 30 days
    // (a window that moves with the clock) are found by walking the contacts.
    let t = sim.contacts.tally();
    let of = |p: Permission| t.permission[p.index()];
    let mut body = json!({
        "total": t.live,
        "explicit": of(Permission::Explicit),
        "implicit": of(Permission::Implicit),
        "pending": of(Permission::PendingConfirmation),
        "unsubscribed": of(Permission::Unsubscribed),
    });
    if with_new {
        let since = now - 30 * 86_400_000;
        let new = sim
            .contacts
            .iter_after(0, since.saturating_sub(1))
            .map(|(_, _, c)| c)
            .filter(|c| c.deleted_at.is_none())
            .filter_map(|c| c.email.as_ref())
            .filter(|e| {
                e.permission != Permission::Unsubscribed
                    && e.opt_in_date.unwrap_or(e.created_at) >= since
            })
            .count();
        body["new_subscriber"] = json!(new);
    }
    Resp::json(200, &body)
}

/// `PUT /v3/contacts/resubscribe/{id}`: an unsubscribed contact is sent a confirmation email
/// (once per opt-out: 409 after) and added to the lists given; it stays unsubscribed until it
/// confirms (the mock's `POST /__postie/contacts/{id}/confirm_resubscribe` stands for that).
pub fn resubscribe(sim: &mut Sim, req: &Req, id: &str, now: i64) -> Resp {
    let id = match parse_id(id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let body = match json_object(req) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let Some(c) = sim.contacts.get(&id).filter(|c| c.deleted_at.is_none()) else {
        return not_found();
    };
    let mut errors = Vec::new();
    let lists: Vec<Uuid> = match body.member("list_ids") {
        Some(Value::Array(a)) if !a.is_empty() && a.len() <= 50 => a
            .iter()
            .filter_map(|v| v.as_str().and_then(|s| Uuid::parse_str(s).ok()))
            .filter(|l| sim.lists.get(l).is_some_and(|x| x.deleted_at.is_none()))
            .collect(),
        _ => {
            errors.push("list_ids does not have a valid value (1 to 50 list ids)".into());
            vec![]
        }
    };
    if errors.is_empty() && lists.len() != body["list_ids"].as_array().map_or(0, Vec::len) {
        errors.push("list_ids contains an id that is not a list in this account".into());
    }
    if !errors.is_empty() {
        return validation(&errors);
    }
    match &c.email {
        Some(e) if e.permission != Permission::Unsubscribed => {
            return validation(&["the contact is not unsubscribed".into()]);
        }
        Some(e) if e.resubscribe_sent.is_some() => {
            return cc_error(
                409,
                "contacts.api.conflict",
                "A resubscribe email was already sent to this contact",
            );
        }
        None => return validation(&["the contact has no email address".into()]),
        Some(_) => {}
    }
    let c = sim.contacts.get_mut(&id).expect("checked");
    for l in lists {
        if !c.list_memberships.contains(&l) && c.list_memberships.len() < 50 {
            c.list_memberships.push(l);
        }
    }
    if let Some(e) = c.email.as_mut() {
        e.resubscribe_sent = Some(now);
    }
    c.updated_at = now;
    Resp::empty(200)
}

/// The contact's confirmation of a resubscribe email: explicit again, opted in by the contact.
pub fn confirm_resubscribe(sim: &mut Sim, id: &str, now: i64) -> bool {
    let Ok(id) = Uuid::parse_str(id) else {
        return false;
    };
    let Some(c) = sim.contacts.get_mut(&id) else {
        return false;
    };
    let Some(e) = c.email.as_mut().filter(|e| e.resubscribe_sent.is_some()) else {
        return false;
    };
    e.permission = Permission::Explicit;
    e.opt_in_source = Some(Source::Contact);
    e.opt_in_date = Some(now);
    e.opt_out_source = None;
    e.opt_out_date = None;
    e.opt_out_reason = None;
    e.resubscribe_sent = None;
    e.updated_at = now;
    c.updated_at = now;
    true
}

/// `GET /v3/contacts/sms_engagement_history/{id}`: one record per SMS consent of the contact's
/// `sms_channel` (state `E` opted in, `O` opted out; source `A`ccount or `C`ontact); `[]` for a
/// contact without an SMS channel.
pub fn sms_engagement_history(sim: &Sim, id: &str) -> Resp {
    let id = match parse_id(id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let Some(c) = sim.contacts.get(&id) else {
        return not_found();
    };
    let Some(sms) = c.extras.as_ref().and_then(|x| x.sms_channel.as_ref()) else {
        return Resp::json(200, &json!([]));
    };
    let channel = sms["sms_channel_id"].as_str().unwrap_or("");
    let source = match sms["create_source"].as_str() {
        Some("Contact") => "C",
        _ => "A",
    };
    let records: Vec<Value> = sms["sms_channel_consents"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, consent)| {
            let out = consent["sms_consent_permission"].as_str() == Some("unsubscribed");
            let at = consent["updated_at"]
                .as_str()
                .or(consent["created_at"].as_str())
                .unwrap_or("");
            // A stable id per channel and consent, so reading twice gives the same records.
            let history = {
                use sha2::Digest as _;
                let d = sha2::Sha256::digest(format!("{channel}/{i}").as_bytes());
                let mut b = [0u8; 16];
                b.copy_from_slice(&d[..16]);
                b[6] = (b[6] & 0x0f) | 0x50;
                b[8] = (b[8] & 0x3f) | 0x80;
                Uuid::from_bytes(b)
            };
            json!({
                "contact_id": id.to_string(),
                "sms_channel_id": channel,
                "sms_channel_history_id": history.to_string(),
                "insert_time": consent["created_at"].as_str().unwrap_or(at),
                "history_details": {
                    "state": if out { "O" } else { "E" },
                    "source": source,
                    "consent_type": consent["consent_type"].as_str().unwrap_or("promotional_sms"),
                    "consent_action_time": at,
                    "consent_action_type": if out { "opt_out" } else { "opt_in" },
                    "consent_medium_type": "SY",
                    "source_sms_number": sms["sms_address"],
                },
            })
        })
        .collect();
    Resp::json(200, &Value::Array(records))
}

/// `GET /v3/contacts`.
pub fn list(sim: &Sim, req: &Req) -> Resp {
    // A cursor carries the original query, so following `_links.next.href` needs nothing else.
    let (query, start) = match req.q("cursor") {
        Some(c) => match super::paging::decode_cursor(c) {
            Some(x) => x,
            None => return validation(&["cursor does not have a valid value".into()]),
        },
        None => (req.query.clone(), 0),
    };
    let q = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let mut errors = Vec::new();
    let limit = match q("limit").map(str::parse::<usize>) {
        None => 50,
        Some(Ok(n)) if (1..=500).contains(&n) => n,
        _ => {
            errors.push("limit does not have a valid value".to_string());
            50
        }
    };
    let include = Include::parse(q("include")).unwrap_or_else(|e| {
        errors.push(e);
        Include::default()
    });
    let statuses: Vec<String> = q("status")
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    const VALID: [&str; 8] = [
        "all",
        "active",
        "deleted",
        "not_set",
        "pending_confirmation",
        "temp_hold",
        "unsubscribed",
        "explicit",
    ];
    if statuses
        .iter()
        .any(|s| !VALID.contains(&s.as_str()) && s != "implicit")
    {
        errors.push("status does not have a valid value".into());
    }
    let lists: Vec<Uuid> = match q("lists") {
        Some(l) => {
            let parsed: Result<Vec<Uuid>, _> =
                l.split(',').map(|x| Uuid::parse_str(x.trim())).collect();
            match parsed {
                Ok(v) if v.len() <= 25 => v,
                _ => {
                    errors.push("lists does not have a valid value".into());
                    vec![]
                }
            }
        }
        None => vec![],
    };
    let tags: Vec<String> = match q("tags") {
        Some(t) => {
            let ids: Vec<String> = t
                .split(',')
                .map(|x| x.trim().to_ascii_lowercase())
                .filter(|x| !x.is_empty())
                .collect();
            if ids.len() > 50 || ids.iter().any(|x| Uuid::parse_str(x).is_err()) {
                errors.push("tags does not have a valid value".into());
            }
            ids
        }
        None => vec![],
    };
    // A segment: combinable only with limit (and cursor/include/include_count), as the vendor's.
    let segment = match q("segment_id") {
        None => None,
        Some(v) => match v
            .parse::<u64>()
            .map_err(|_| "segment_id does not have a valid value".to_string())
            .and_then(|id| super::segments::matcher(sim, id))
        {
            Ok(criteria) => {
                let others = query.iter().any(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "segment_id" | "limit" | "include" | "include_count" | "cursor"
                    )
                });
                if others {
                    errors.push("segment_id can only be combined with limit".into());
                }
                Some(criteria)
            }
            Err(e) => {
                errors.push(e);
                None
            }
        },
    };
    // The channel a contact has: `email` (an email address) or `sms` (an sms_channel).
    let channel = q("channel_type").map(str::to_ascii_lowercase);
    if channel
        .as_deref()
        .is_some_and(|c| c != "email" && c != "sms")
    {
        errors.push("channel_type does not have a valid value (email or sms)".into());
    }
    // `sms_status`: the SMS consent permission (CSV: explicit, unsubscribed, not_set, pending_confirmation, all).
    let sms_statuses: Vec<String> = q("sms_status")
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_ascii_lowercase())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if sms_statuses.iter().any(|s| {
        ![
            "all",
            "explicit",
            "unsubscribed",
            "not_set",
            "pending_confirmation",
        ]
        .contains(&s.as_str())
    }) {
        errors.push("sms_status does not have a valid value".into());
    }
    let mut bounds = Vec::new();
    for key in [
        "updated_after",
        "updated_before",
        "created_after",
        "created_before",
        "optout_after",
        "optout_before",
    ] {
        if let Some(v) = q(key) {
            match time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339) {
                Ok(t) => bounds.push((key, (t.unix_timestamp_nanos() / 1_000_000) as i64)),
                Err(_) => errors.push(format!("{key} does not have a valid value")),
            }
        }
    }
    let include_count = match q("include_count") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            errors.push("include_count does not have a valid value".into());
            false
        }
    };
    if !errors.is_empty() {
        return validation(&errors);
    }
    let email = q("email").map(str::to_ascii_lowercase);
    let matches = |c: &Contact| -> bool {
        if let Some(e) = &email
            && c.email
                .as_ref()
                .is_none_or(|x| x.address.to_ascii_lowercase() != *e)
        {
            return false;
        }
        let status_ok = if statuses.is_empty() {
            c.deleted_at.is_none()
        } else {
            statuses.iter().any(|s| match s.as_str() {
                "all" => true,
                "deleted" => c.deleted_at.is_some(),
                "active" => c.is_active(),
                p => {
                    c.deleted_at.is_none()
                        && c.email.as_ref().is_some_and(|e| e.permission.as_str() == p)
                }
            })
        };
        if !status_ok {
            return false;
        }
        if !lists.is_empty() && !c.list_memberships.iter().any(|l| lists.contains(l)) {
            return false;
        }
        if let Some(criteria) = &segment
            && !super::segments::meets(c, criteria)
        {
            return false;
        }
        let sms = c.extras.as_ref().and_then(|x| x.sms_channel.as_ref());
        match channel.as_deref() {
            Some("email") if c.email.is_none() => return false,
            Some("sms") if sms.is_none() => return false,
            _ => {}
        }
        if !sms_statuses.is_empty() && !sms_statuses.iter().any(|s| s == "all") {
            let permission = sms
                .and_then(|v| v["sms_channel_consents"][0]["sms_consent_permission"].as_str())
                .unwrap_or("not_set")
                .to_ascii_lowercase();
            if sms.is_none() || !sms_statuses.contains(&permission) {
                return false;
            }
        }
        if !tags.is_empty()
            && !c.extras.as_ref().is_some_and(|x| {
                x.taggings
                    .iter()
                    .any(|g| tags.contains(&g.to_ascii_lowercase()))
            })
        {
            return false;
        }
        let opted_out = c.email.as_ref().and_then(|e| e.opt_out_date);
        bounds.iter().all(|(k, t)| match *k {
            "updated_after" => c.updated_at > *t,
            "updated_before" => c.updated_at < *t,
            "created_after" => c.created_at > *t,
            "optout_after" => opted_out.is_some_and(|o| o > *t),
            "optout_before" => opted_out.is_some_and(|o| o < *t),
            _ => c.created_at < *t,
        })
    };
    // A count by status alone, or of one list's members, is kept as contacts change; any
    // other filter walks the contacts.
    let plain = segment.is_none()
        && channel.is_none()
        && sms_statuses.is_empty()
        && tags.is_empty()
        && bounds.is_empty();
    let kept = || -> Option<usize> {
        let status = match statuses.as_slice() {
            [] => None,
            [one] => Some(one.as_str()),
            _ => return None,
        };
        sim.contacts.tally().matching(&lists, status)
    };
    let kept = if email.is_none() {
        plain.then(kept).flatten()
    } else {
        None
    };
    // From the first place on, the walk ends at the last contact the kept count says matches (at
    // 1,000,000 contacts, `status=unsubscribed` with none walked 22 ms under the lock).
    let last = if start == 0 { kept } else { None };
    let mut seen = 0;
    let mut shown = 0;
    // The page is written as it is walked: no value per contact.
    let mut body = Vec::with_capacity(64 + 512 * limit.min(500));
    let mut m = JsonObject::open(&mut body);
    let page = m.key("contacts");
    page.push(b'[');
    let mut next = None;
    // A filter on a date being after a time passes over the zones of contacts none of whose
    // dates is after it (`Table::iter_after`); the filters are all met, so the latest time counts.
    let after = bounds
        .iter()
        .filter(|(k, _)| k.ends_with("_after"))
        .map(|(_, t)| *t)
        .max()
        .unwrap_or(i64::MIN);
    // An email filter is a point lookup, not a scan.
    let candidates: Box<dyn Iterator<Item = (usize, &Contact)>> = match &email {
        Some(e) => Box::new(
            sim.find_email(e)
                .and_then(|id| sim.contacts.get_full(&id))
                .map(|(i, _, c)| (i, &**c))
                .into_iter()
                .filter(|(i, _)| *i >= start),
        ),
        None => Box::new(
            sim.contacts
                .iter_after(start, after)
                .map(|(i, _, c)| (i, &**c)),
        ),
    };
    for (i, c) in candidates {
        if last == Some(seen) {
            break;
        }
        if !matches(c) {
            continue;
        }
        seen += 1;
        if shown == limit {
            next = Some(i);
            break;
        }
        if shown > 0 {
            page.push(b',');
        }
        ContactView(c, include).write(page);
        shown += 1;
    }
    page.push(b']');
    if include_count {
        let count = match &email {
            Some(_) => shown,
            None => kept.unwrap_or_else(|| {
                sim.contacts
                    .iter_after(0, after)
                    .filter(|(_, _, c)| matches(c))
                    .count()
            }),
        };
        m.value("contacts_count", &count);
    }
    if let Some(n) = next {
        m.value("_links", &json!({"next": {"href": format!("/v3/contacts?cursor={}", super::paging::encode_cursor(&query, n))}}));
    }
    m.close();
    Resp::json_bytes(200, body)
}

fn parse_id(s: &str) -> Result<Uuid, Resp> {
    Uuid::parse_str(s).map_err(|_| {
        cc_error(
            404,
            "contacts.api.not_found",
            "contact_id is in an invalid format.",
        )
    })
}

fn not_found() -> Resp {
    cc_error(
        404,
        "contacts.api.not_found",
        "Resource not found for the contact_id provided.",
    )
}

/// `GET /v3/contacts/{id}`.
pub fn get(sim: &Sim, req: &Req, id: &str) -> Resp {
    let id = match parse_id(id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let include = match Include::parse(req.q("include")) {
        Ok(i) => i,
        Err(e) => return validation(&[e]),
    };
    match sim.contacts.get(&id) {
        Some(c) => ContactView(c, include).response(200),
        None => not_found(),
    }
}

fn conflict(id: Uuid) -> Resp {
    cc_error(
        409,
        "contacts.api.conflict",
        &format!("Email already exists for contact {id}"),
    )
}

/// `POST /v3/contacts`.
pub fn create(sim: &mut Sim, req: &Req, now: i64) -> Resp {
    let body = match json_fields(req) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mut errors = Vec::new();
    let source = source_field(&body, "create_source", &mut errors);
    let core = check_core(&body, 80, false, &mut errors);
    let by = source.unwrap_or(Source::Account);
    let subs = check_subresources(sim, &body, 25, now, by, &mut errors);
    let has_identity = core.email.is_some()
        || core
            .text
            .iter()
            .any(|(k, v)| (*k == "first_name" || *k == "last_name") && matches!(v, Some(Some(_))))
        || subs.sms_channel.is_some();
    if errors.is_empty() && !has_identity {
        errors.push(
            "At least one of first_name, last_name, email_address or sms_channel is required"
                .into(),
        );
    }
    if !errors.is_empty() {
        return validation(&errors);
    }
    if let Some((addr, _)) = &core.email
        && let Some(existing) = sim.find_email(addr)
    {
        return conflict(existing);
    }
    let source = source.unwrap_or(Source::Account);
    let id = new_id();
    sim.contacts
        .insert(id, Box::new(Contact::new(id, now, source)));
    apply_core(
        sim,
        id,
        core,
        true,
        now,
        Permission::Implicit,
        Source::Account,
    );
    let c = sim.contacts.get_mut(&id).expect("just inserted");
    apply_subresources(c, subs, false);
    ContactView(c, Include::all()).response(201)
}

/// `PUT /v3/contacts/{id}`: core fields overwritten (omitted become null), omitted sub-resources
/// kept, a deleted contact revived.
pub fn put(sim: &mut Sim, req: &Req, id: &str, now: i64) -> Resp {
    let id = match parse_id(id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let body = match json_fields(req) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if !sim.contacts.contains_key(&id) {
        return not_found();
    }
    let mut errors = Vec::new();
    let source = source_field(&body, "update_source", &mut errors);
    let core = check_core(&body, 80, false, &mut errors);
    let by = source.unwrap_or(Source::Account);
    let subs = check_subresources(sim, &body, 25, now, by, &mut errors);
    if !errors.is_empty() {
        return validation(&errors);
    }
    if let Some((addr, _)) = &core.email
        && let Some(other) = sim.find_email(addr).filter(|o| *o != id)
    {
        return conflict(other);
    }
    apply_core(
        sim,
        id,
        core,
        true,
        now,
        Permission::Implicit,
        source.unwrap_or(Source::Account),
    );
    let c = sim.contacts.get_mut(&id).expect("checked above");
    c.update_source = source.unwrap_or(Source::Account);
    c.deleted_at = None;
    apply_subresources(c, subs, false);
    ContactView(c, Include::all()).response(200)
}

/// `DELETE /v3/contacts/{id}`: soft delete; list memberships are stripped.
pub fn delete(sim: &mut Sim, id: &str, now: i64) -> Resp {
    let id = match parse_id(id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    match sim.contacts.get_mut(&id) {
        Some(c) if c.deleted_at.is_none() => {
            c.deleted_at = Some(now);
            c.updated_at = now;
            c.list_memberships.clear();
            Resp::empty(204)
        }
        _ => not_found(),
    }
}

/// `POST /v3/contacts/sign_up_form`: upsert by email — 201 created or 200 updated, partial update,
/// lists appended, a deleted contact revived.
pub fn sign_up_form(sim: &mut Sim, req: &Req, now: i64, confirmed_opt_in: bool) -> Resp {
    let body = match json_fields(req) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mut errors = Vec::new();
    match body.member("list_memberships") {
        Some(Value::Array(a)) if !a.is_empty() => {}
        Some(Value::Array(_)) => {
            errors.push("list_memberships must contain at least one list".into())
        }
        None | Some(Value::Null) => errors.push("list_memberships is missing".into()),
        Some(_) => errors.push("list_memberships does not have a valid value".into()),
    }
    let core = check_core(&body, 50, true, &mut errors);
    let mut subs = check_subresources(sim, &body, 50, now, Source::Contact, &mut errors);
    // The form takes one phone number and one street address, as plain fields.
    if let Some(p) = body.member("phone_number").and_then(Value::as_str) {
        if p.chars().count() > 25 {
            errors.push("phone_number exceeds the maximum length of 25".into());
        } else {
            subs.phone_numbers = Some(vec![
                json!({"phone_number_id": new_id().to_string(), "phone_number": p, "kind": "other",
                "created_at": super::store::ts(now), "updated_at": super::store::ts(now)}),
            ]);
        }
    }
    if let Some(a) = body.member("street_address") {
        if a.member("kind").and_then(Value::as_str).is_none() {
            errors.push("street_address.kind is missing".into());
        } else {
            let mut m = a.as_object().cloned().unwrap_or_default();
            m.insert("street_address_id".into(), json!(new_id().to_string()));
            subs.street_addresses = Some(vec![Value::Object(m)]);
        }
    }
    if core.email.is_none() && subs.sms_channel.is_none() && errors.is_empty() {
        errors.push("email_address is missing".into());
    }
    if !errors.is_empty() {
        return validation(&errors);
    }
    let existing = core.email.as_ref().and_then(|(a, _)| sim.find_email(a));
    let (id, status, action) = match existing {
        Some(id) => (id, 200, "updated"),
        None => {
            let id = new_id();
            sim.contacts
                .insert(id, Box::new(Contact::new(id, now, Source::Contact)));
            (id, 201, "created")
        }
    };
    let new_permission = if confirmed_opt_in {
        Permission::PendingConfirmation
    } else {
        Permission::Explicit
    };
    apply_core(sim, id, core, false, now, new_permission, Source::Contact);
    let c = sim.contacts.get_mut(&id).expect("present");
    if status == 200 {
        // Existing contacts (even unsubscribed ones) become explicit.
        if let Some(e) = &mut c.email
            && e.permission != Permission::Explicit
        {
            e.permission = Permission::Explicit;
            e.opt_in_source = Some(Source::Contact);
            e.opt_in_date = Some(now);
            e.opt_out_date = None;
            e.opt_out_source = None;
            e.opt_out_reason = None;
        }
        c.update_source = Source::Contact;
        c.deleted_at = None;
    }
    apply_subresources(c, subs, true);
    // Written directly: a two-member object built as a `Value` cost two hashed inserts and a
    // serialisation, 2,000 instructions a request.
    let mut body = Vec::with_capacity(72);
    let mut m = JsonObject::open(&mut body);
    m.plain(
        "contact_id",
        id.hyphenated().encode_lower(&mut Uuid::encode_buffer()),
    );
    m.plain("action", action);
    m.close();
    Resp::json_bytes(status, body)
}

/// Creates or updates a contact from a bulk-import row (keys as in `JsonImportContact` or the CSV
/// columns). New contacts are implicit, opted in by the Account; existing ones change only the
/// supplied fields. Returns an error message for a bad row.
/// What importing one row did.
#[derive(Debug, Default)]
pub struct Imported {
    /// A new contact.
    pub created: bool,
    /// The contact unsubscribed themselves: it was updated but not added to the lists.
    pub list_refused: bool,
}

/// Why a row did not import.
#[derive(Debug)]
pub struct RowError {
    /// The vendor's message.
    pub message: String,
    /// One the account can correct (an invalid email), counted as `correctable_count`.
    pub correctable: bool,
}

impl RowError {
    fn new(message: impl Into<String>) -> RowError {
        RowError {
            message: message.into(),
            correctable: false,
        }
    }
}

/// The columns an import row may have (besides `cf:<custom field name>`).
const IMPORT_KEYS: [&str; 33] = [
    "email",
    "email_address",
    "sms_number",
    "sms_consent_date",
    "first_name",
    "last_name",
    "job_title",
    "company_name",
    "birthday_month",
    "birthday_day",
    "anniversary",
    "phone",
    "home_phone",
    "work_phone",
    "mobile_phone",
    "other_phone",
    "street",
    "street2",
    "city",
    "state",
    "zip",
    "country",
    "home_street",
    "home_street2",
    "home_city",
    "home_state",
    "home_zip",
    "home_country",
    "work_street",
    "work_city",
    "other_street",
    "other_city",
    // The seed files' list names.
    "list_names",
];

fn known_import_key(k: &str) -> bool {
    if IMPORT_KEYS.contains(&k) {
        return true;
    }
    ["home_", "work_", "other_"].iter().any(|p| {
        k.strip_prefix(p).is_some_and(|rest| {
            ["street", "street2", "city", "state", "zip", "country"].contains(&rest)
        })
    })
}

/// Imports one row (JSON import, CSV import, seeds).
pub fn import_row(
    sim: &mut Sim,
    row: &Map<String, Value>,
    lists: &[Uuid],
    now: i64,
) -> Result<Imported, RowError> {
    let get = |k: &str| {
        row.get(k)
            .map(|v| match v {
                Value::String(s) => s.trim().to_string(),
                other => other.to_string(),
            })
            .filter(|s| !s.is_empty())
    };
    // A column the vendor does not know is an error of the row, never dropped silently.
    if let Some(k) = row
        .keys()
        .find(|k| !k.starts_with("cf:") && !known_import_key(k))
    {
        return Err(RowError::new(format!("`{k}` is not an import field")));
    }
    let email = get("email").or_else(|| get("email_address"));
    let sms = get("sms_number");
    let Some(email) = email else {
        return match sms {
            Some(_) => Err(RowError::new(
                "SMS-only contacts are not simulated; give an email",
            )),
            None => Err(RowError::new("email is missing")),
        };
    };
    if email.chars().count() > 50 || !valid_email(&email) {
        return Err(RowError {
            message: format!("email `{email}` is not valid"),
            correctable: true,
        });
    }
    let mut body = Map::new();
    body.insert("email_address".into(), json!(email));
    for (k, max) in TEXT_FIELDS {
        if let Some(v) = get(k) {
            if v.chars().count() > max {
                return Err(RowError::new(format!(
                    "{k} exceeds the maximum length of {max}"
                )));
            }
            body.insert(k.into(), json!(v));
        }
    }
    for k in ["birthday_month", "birthday_day", "anniversary"] {
        if let Some(v) = get(k) {
            body.insert(k.into(), json!(v));
        }
    }
    let mut phones = Vec::new();
    for (k, kind) in [
        ("phone", "other"),
        ("home_phone", "home"),
        ("work_phone", "work"),
        ("mobile_phone", "mobile"),
        ("other_phone", "other"),
    ] {
        if let Some(v) = get(k) {
            phones.push(json!({"phone_number": v, "kind": kind}));
        }
    }
    let mut addrs = Vec::new();
    for (prefix, kind) in [
        ("", "home"),
        ("home_", "home"),
        ("work_", "work"),
        ("other_", "other"),
    ] {
        let f = |n: &str| get(&format!("{prefix}{n}"));
        if ["street", "street2", "city", "state", "zip", "country"]
            .iter()
            .any(|n| f(n).is_some())
        {
            let street = match (f("street"), f("street2")) {
                (Some(a), Some(b)) => Some(format!("{a} {b}")),
                (a, b) => a.or(b),
            };
            // Only the parts the row has: a partial address (street and city) is an address.
            let mut a = Map::new();
            a.insert("kind".into(), json!(kind));
            for (k, v) in [
                ("street", street),
                ("city", f("city")),
                ("state", f("state")),
                ("postal_code", f("zip")),
                ("country", f("country")),
            ] {
                if let Some(v) = v {
                    a.insert(k.into(), json!(v));
                }
            }
            addrs.push(Value::Object(a));
        }
    }
    if phones.len() > 3 || addrs.len() > 3 {
        return Err(RowError::new("at most 3 phone numbers and 3 addresses"));
    }
    // `cf:<name>` columns: values for custom fields that must already exist.
    let mut custom = Vec::new();
    for (k, v) in row {
        let Some(name) = k.strip_prefix("cf:") else {
            continue;
        };
        let Some(field) = sim
            .custom_fields
            .values()
            .find(|f| f.name.eq_ignore_ascii_case(name) || f.label.eq_ignore_ascii_case(name))
        else {
            return Err(RowError::new(format!(
                "custom field `{name}` does not exist; create it first"
            )));
        };
        let text = match v {
            Value::String(s) => s.trim().to_string(),
            other => other.to_string(),
        };
        if text.chars().count() > 255 {
            return Err(RowError::new(format!(
                "{k} exceeds the maximum length of 255"
            )));
        }
        if !text.is_empty() {
            custom.push(json!({"custom_field_id": field.id.to_string(), "value": text}));
        }
    }
    if !custom.is_empty() {
        body.insert("custom_fields".into(), json!(custom));
    }
    if !phones.is_empty() {
        body.insert("phone_numbers".into(), json!(phones));
    }
    if !addrs.is_empty() {
        body.insert("street_addresses".into(), json!(addrs));
    }
    let mut errors = Vec::new();
    let core = check_core(&body, 50, true, &mut errors);
    let mut subs = check_subresources(sim, &body, 25, now, Source::Account, &mut errors);
    if !errors.is_empty() {
        return Err(RowError::new(errors.join(", ")));
    }
    // A contact who unsubscribed themselves is not put back on lists by the account.
    let refused = sim
        .find_email(&email)
        .and_then(|id| sim.contacts.get(&id))
        .and_then(|c| c.email.as_ref())
        .is_some_and(|e| {
            e.permission == Permission::Unsubscribed && e.opt_out_source == Some(Source::Contact)
        });
    subs.list_memberships = (!refused).then(|| lists.to_vec());
    let (id, created) = match sim.find_email(&email) {
        Some(id) => (id, false),
        None => {
            let id = new_id();
            sim.contacts
                .insert(id, Box::new(Contact::new(id, now, Source::Account)));
            (id, true)
        }
    };
    apply_core(
        sim,
        id,
        core,
        false,
        now,
        Permission::Implicit,
        Source::Account,
    );
    let c = sim.contacts.get_mut(&id).expect("present");
    c.deleted_at = None;
    apply_subresources(c, subs, true);
    Ok(Imported {
        created,
        list_refused: refused && !lists.is_empty(),
    })
}

#[cfg(test)]
mod tests {
    use crate::mock::packs::constant_contact::contact_input::{parse_anniversary, valid_email};

    #[test]
    fn anniversaries_and_emails() {
        assert_eq!(
            parse_anniversary("11/15/2006").as_deref(),
            Some("2006-11-15")
        );
        assert_eq!(parse_anniversary("2006-1-5").as_deref(), Some("2006-01-05"));
        assert_eq!(parse_anniversary("13/15/2006"), None);
        assert!(valid_email("a@b.io") && !valid_email("a@b") && !valid_email("a b@c.io"));
        for good in ["a.b+c@d.e.io", "é@ü.io", "a@b.c"] {
            assert!(valid_email(good), "{good}");
        }
        for bad in [
            "",
            "@b.io",
            "a@",
            "a@.io",
            "a@b.",
            "a@b@c.io",
            "ab.io",
            "a@b.io\u{b}",
            "\ta@b.io",
            "a@b.io\r",
            "a\u{a0}@b.io",
            "a@b\u{2003}.io",
            "a@b.io\u{85}",
        ] {
            assert!(!valid_email(bad), "{bad:?}");
        }
    }
}
