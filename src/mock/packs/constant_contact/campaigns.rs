//! Email campaigns: create (a `primary_email` and a `permalink` activity), list, read, rename,
//! delete; campaign activities read and updated (content, `contact_list_ids`, `segment_ids`);
//! test sends; and sending on the mock clock — a scheduled activity is sent when its time comes
//! (`Draft` → `Scheduled` → `Done`), to the sendable contacts of its lists and segments, and its
//! send history and stats come from those sends.
//!
//! Nobody reads mock mail: stats count sends (and bounces: contacts who are no longer sendable by
//! the time of the send are not counted at all); opens, clicks, forwards, opt-outs stay 0, so the
//! numbers add up (`em_not_opened` = `em_sends`). docs/mock.md says so.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::store::{Campaign, CampaignActivity, Permission, SendRecord, Sim, new_id, ts};
use crate::mock::http::{Member, Req, Resp, cc_error, json_object, validation};

fn campaign_json(c: &Campaign) -> Value {
    json!({
        "campaign_id": c.id.to_string(),
        "name": c.name,
        "current_status": c.status,
        "type": "NEWSLETTER",
        "type_code": 10,
        "created_at": ts(c.created_at),
        "updated_at": ts(c.updated_at),
        "campaign_activities": [
            {"campaign_activity_id": c.primary.to_string(), "role": "primary_email"},
            {"campaign_activity_id": c.permalink.to_string(), "role": "permalink"},
        ],
    })
}

fn activity_json(a: &CampaignActivity, status: &str) -> Value {
    let mut v = json!({
        "campaign_activity_id": a.id.to_string(),
        "campaign_id": a.campaign_id.to_string(),
        "role": a.role,
        "contact_list_ids": a.contact_list_ids.iter().map(Uuid::to_string).collect::<Vec<_>>(),
        "segment_ids": a.segment_ids,
        "current_status": status,
        "format_type": a.format_type,
        "from_email": a.from_email,
        "from_name": a.from_name,
        "reply_to_email": a.reply_to_email,
        "subject": a.subject,
        "html_content": a.html_content,
    });
    if let Some(p) = &a.preheader {
        v["preheader"] = json!(p);
    }
    v
}

fn not_found(what: &str) -> Resp {
    cc_error(404, "not_found", &format!("{what} not found"))
}

/// The content fields of an activity, checked; `partial` keeps what the body leaves out.
fn content(
    body: &Map<String, Value>,
    into: &mut CampaignActivity,
    sim: &Sim,
    errors: &mut Vec<String>,
) {
    let mut text = |k: &str, max: usize, slot: &mut String| match body.get(k) {
        None => {
            if slot.is_empty() {
                errors.push(format!("{k} is missing"));
            }
        }
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= max => {
            *slot = s.clone();
        }
        Some(_) => errors.push(format!("{k} does not have a valid value")),
    };
    text("from_name", 100, &mut into.from_name);
    text("from_email", 80, &mut into.from_email);
    text("reply_to_email", 80, &mut into.reply_to_email);
    text("subject", 200, &mut into.subject);
    for k in ["from_email", "reply_to_email"] {
        if body.contains_key(k)
            && !super::contact_input::valid_email(body[k].as_str().unwrap_or(""))
        {
            errors.push(format!("{k} is not a valid email address"));
        }
    }
    match body.member("html_content") {
        None => {}
        Some(Value::String(h)) if h.chars().count() <= 150_000 => into.html_content = h.clone(),
        Some(_) => errors.push("html_content does not have a valid value".into()),
    }
    match body.member("format_type") {
        None => {}
        Some(v) if v.as_u64().is_some_and(|f| (1..=5).contains(&f)) => {
            into.format_type = v.as_u64().unwrap_or(5) as u8;
        }
        Some(_) => errors.push("format_type does not have a valid value (1 to 5)".into()),
    }
    match body.member("preheader") {
        None | Some(Value::Null) => {}
        Some(Value::String(p)) if p.chars().count() <= 250 => into.preheader = Some(p.clone()),
        Some(_) => errors.push("preheader does not have a valid value".into()),
    }
    match body.member("contact_list_ids") {
        None => {}
        Some(Value::Array(a)) if a.len() <= 50 => {
            let ids: Vec<Uuid> = a
                .iter()
                .filter_map(|v| v.as_str().and_then(|s| Uuid::parse_str(s).ok()))
                .collect();
            if ids.len() != a.len()
                || ids
                    .iter()
                    .any(|l| sim.lists.get(l).is_none_or(|x| x.deleted_at.is_some()))
            {
                errors.push(
                    "contact_list_ids contains an id that is not a list in this account".into(),
                );
            }
            into.contact_list_ids = ids;
        }
        Some(_) => errors.push("contact_list_ids does not have a valid value".into()),
    }
    match body.member("segment_ids") {
        None => {}
        Some(Value::Array(a)) if a.len() <= 1 => {
            let ids: Vec<u64> = a.iter().filter_map(Value::as_u64).collect();
            if ids.len() != a.len() || ids.iter().any(|s| !sim.segments.contains_key(s)) {
                errors.push(
                    "segment_ids contains an id that is not a segment in this account".into(),
                );
            }
            into.segment_ids = ids;
        }
        Some(_) => errors.push("segment_ids takes at most one segment id".into()),
    }
    if !into.contact_list_ids.is_empty() && !into.segment_ids.is_empty() {
        errors.push("send to contact_list_ids or segment_ids, not both".into());
    }
}

/// `POST /v3/emails`: 200 (as the vendor's) with the campaign and its two activities.
pub fn create(sim: &mut Sim, req: &Req, now: i64) -> Resp {
    let body = match json_object(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut errors = Vec::new();
    let name = match body.member("name") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= 80 => s.clone(),
        _ => {
            errors.push("name is missing or longer than 80".to_string());
            String::new()
        }
    };
    let inputs = body
        .member("email_campaign_activities")
        .and_then(Value::as_array)
        .filter(|a| a.len() == 1);
    let mut primary = CampaignActivity {
        id: new_id(),
        role: "primary_email".into(),
        format_type: 5,
        ..CampaignActivity::default()
    };
    match inputs.and_then(|a| a[0].as_object()) {
        Some(input) => content(input, &mut primary, sim, &mut errors),
        None => errors.push("email_campaign_activities must hold exactly one activity".into()),
    }
    if !errors.is_empty() {
        return validation(&errors);
    }
    if sim
        .campaigns
        .values()
        .any(|c| c.status != "Removed" && c.name.eq_ignore_ascii_case(&name))
    {
        return cc_error(
            409,
            "conflict",
            &format!("The campaign name '{name}' is already in use."),
        );
    }
    let id = new_id();
    primary.campaign_id = id;
    let permalink = CampaignActivity {
        id: new_id(),
        campaign_id: id,
        role: "permalink".into(),
        ..primary.clone()
    };
    let c = Campaign {
        id,
        name,
        status: "Draft".into(),
        created_at: now,
        updated_at: now,
        primary: primary.id,
        permalink: permalink.id,
    };
    let out = campaign_json(&c);
    sim.campaign_activities.insert(primary.id, primary);
    sim.campaign_activities.insert(permalink.id, permalink);
    sim.campaigns.insert(id, c);
    Resp::json(200, &out)
}

/// `GET /v3/emails` (`limit` 1–500, `before_date`, `after_date` on the update time).
pub fn list(sim: &Sim, req: &Req) -> Resp {
    let limit = match req.q("limit").map(str::parse::<usize>) {
        None => 50,
        Some(Ok(n)) if (1..=500).contains(&n) => n,
        _ => return validation(&["limit does not have a valid value".into()]),
    };
    let mut bounds = Vec::new();
    for k in ["before_date", "after_date"] {
        if let Some(v) = req.q(k) {
            match time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339) {
                Ok(t) => bounds.push((k, (t.unix_timestamp_nanos() / 1_000_000) as i64)),
                Err(_) => return validation(&[format!("{k} does not have a valid value")]),
            }
        }
    }
    let all: Vec<Value> = sim
        .campaigns
        .values()
        .filter(|c| c.status != "Removed")
        .filter(|c| {
            bounds.iter().all(|(k, t)| match *k {
                "before_date" => c.updated_at < *t,
                _ => c.updated_at > *t,
            })
        })
        .take(limit)
        .map(|c| {
            let mut v = campaign_json(c);
            if let Value::Object(m) = &mut v {
                m.remove("campaign_activities");
            }
            v
        })
        .collect();
    Resp::json(200, &json!({"campaigns": all}))
}

fn find(sim: &Sim, id: &str) -> Option<Uuid> {
    Uuid::parse_str(id)
        .ok()
        .filter(|u| sim.campaigns.contains_key(u))
}

/// `GET /v3/emails/{id}`.
pub fn get(sim: &Sim, id: &str) -> Resp {
    match find(sim, id) {
        Some(u) => Resp::json(200, &campaign_json(&sim.campaigns[&u])),
        None => not_found("Campaign"),
    }
}

/// `PATCH /v3/emails/{id}`: renames.
pub fn rename(sim: &mut Sim, req: &Req, id: &str, now: i64) -> Resp {
    let Some(u) = find(sim, id) else {
        return not_found("Campaign");
    };
    let body = match json_object(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(name) = body
        .member("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty() && n.chars().count() <= 80)
    else {
        return validation(&["name is missing or longer than 80".into()]);
    };
    if sim
        .campaigns
        .values()
        .any(|c| c.id != u && c.status != "Removed" && c.name.eq_ignore_ascii_case(name))
    {
        return cc_error(
            409,
            "conflict",
            &format!("The campaign name '{name}' is already in use."),
        );
    }
    let c = sim.campaigns.get_mut(&u).expect("found");
    c.name = name.to_string();
    c.updated_at = now;
    Resp::json(200, &campaign_json(c))
}

/// `DELETE /v3/emails/{id}`: 204; the campaign is `Removed` (and unscheduled).
pub fn delete(sim: &mut Sim, id: &str, now: i64) -> Resp {
    let Some(u) = find(sim, id) else {
        return not_found("Campaign");
    };
    let c = sim.campaigns.get_mut(&u).expect("found");
    c.status = "Removed".into();
    c.updated_at = now;
    let primary = c.primary.to_string();
    sim.schedules.remove(&primary);
    Resp::empty(204)
}

fn activity_status(sim: &Sim, a: &CampaignActivity) -> String {
    sim.campaigns
        .get(&a.campaign_id)
        .map(|c| c.status.clone())
        .unwrap_or_else(|| "Draft".into())
}

/// `GET /v3/emails/activities/{id}`.
pub fn get_activity(sim: &Sim, id: &str) -> Resp {
    match Uuid::parse_str(id)
        .ok()
        .and_then(|u| sim.campaign_activities.get(&u))
    {
        Some(a) => Resp::json(200, &activity_json(a, &activity_status(sim, a))),
        None => not_found("Campaign activity"),
    }
}

/// Whether an activity id is one of the pack's (else the contract answers for it).
pub fn known_activity(sim: &Sim, id: &str) -> bool {
    Uuid::parse_str(id)
        .ok()
        .is_some_and(|u| sim.campaign_activities.contains_key(&u))
}

/// `PUT /v3/emails/activities/{id}`: content and recipients; only while the campaign is a draft.
pub fn put_activity(sim: &mut Sim, req: &Req, id: &str, now: i64) -> Resp {
    let Some(u) = Uuid::parse_str(id)
        .ok()
        .filter(|u| sim.campaign_activities.contains_key(u))
    else {
        return not_found("Campaign activity");
    };
    let body = match json_object(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut a = sim.campaign_activities[&u].clone();
    let status = activity_status(sim, &a);
    if status != "Draft" {
        return validation(&[format!(
            "the campaign is {status}: only a Draft can be changed (unschedule it first)"
        )]);
    }
    let mut errors = Vec::new();
    content(&body, &mut a, sim, &mut errors);
    if !errors.is_empty() {
        return validation(&errors);
    }
    let out = activity_json(&a, &status);
    let campaign = a.campaign_id;
    sim.campaign_activities.insert(u, a);
    if let Some(c) = sim.campaigns.get_mut(&campaign) {
        c.updated_at = now;
    }
    Resp::json(200, &out)
}

/// Called when an activity is scheduled: its campaign is `Scheduled`, if it has recipients.
pub fn on_schedule(sim: &mut Sim, id: &str, now: i64) -> Result<(), Resp> {
    let Some(a) = Uuid::parse_str(id)
        .ok()
        .and_then(|u| sim.campaign_activities.get(&u))
    else {
        return Ok(());
    };
    if a.role != "primary_email" {
        return Err(validation(&[
            "only the primary_email activity is scheduled".into(),
        ]));
    }
    if a.contact_list_ids.is_empty() && a.segment_ids.is_empty() {
        return Err(validation(&[
            "the activity has no contact_list_ids or segment_ids to send to".into(),
        ]));
    }
    let campaign = a.campaign_id;
    match sim.campaigns.get_mut(&campaign) {
        Some(c) if c.status == "Draft" || c.status == "Scheduled" => {
            c.status = "Scheduled".into();
            c.updated_at = now;
            Ok(())
        }
        Some(c) => Err(validation(&[format!(
            "the campaign is {}: it cannot be scheduled",
            c.status
        )])),
        None => Ok(()),
    }
}

/// Called when an activity is unscheduled: its campaign is a `Draft` again.
pub fn on_unschedule(sim: &mut Sim, id: &str, now: i64) {
    let campaign = Uuid::parse_str(id)
        .ok()
        .and_then(|u| sim.campaign_activities.get(&u))
        .map(|a| a.campaign_id);
    if let Some(c) = campaign.and_then(|c| sim.campaigns.get_mut(&c))
        && c.status == "Scheduled"
    {
        c.status = "Draft".into();
        c.updated_at = now;
    }
}

/// Sends every scheduled activity whose time has come.
pub fn tick(sim: &mut Sim, now: i64) {
    let due: Vec<(String, i64)> = sim
        .schedules
        .iter()
        .filter(|(_, at)| **at <= now)
        .map(|(k, at)| (k.clone(), *at))
        .collect();
    for (id, at) in due {
        let Some(u) = Uuid::parse_str(&id)
            .ok()
            .filter(|u| sim.campaign_activities.contains_key(u))
        else {
            continue;
        };
        let a = sim.campaign_activities[&u].clone();
        if sim
            .campaigns
            .get(&a.campaign_id)
            .is_none_or(|c| c.status != "Scheduled")
        {
            continue;
        }
        let segment = a
            .segment_ids
            .first()
            .and_then(|s| super::segments::matcher(sim, *s).ok());
        let count = sim
            .contacts
            .values()
            .filter(|c| {
                c.deleted_at.is_none()
                    && c.email.as_ref().is_some_and(|e| {
                        matches!(e.permission, Permission::Explicit | Permission::Implicit)
                    })
                    && (c
                        .list_memberships
                        .iter()
                        .any(|l| a.contact_list_ids.contains(l))
                        || segment
                            .as_ref()
                            .is_some_and(|s| super::segments::meets(c, s)))
            })
            .count() as u64;
        let mut sent = a.clone();
        sent.sends.push(SendRecord {
            send_id: a.sends.len() as u32 + 1,
            contact_list_ids: a.contact_list_ids.clone(),
            segment_ids: a.segment_ids.clone(),
            count,
            send_time: at,
        });
        sim.campaign_activities.insert(u, sent);
        sim.schedules.remove(&id);
        if let Some(c) = sim.campaigns.get_mut(&a.campaign_id) {
            c.status = "Done".into();
            c.updated_at = at;
        }
    }
}

/// `POST /v3/emails/activities/{id}/tests`: 204 (1–5 addresses).
pub fn test_send(sim: &Sim, req: &Req, id: &str) -> Resp {
    if !known_activity(sim, id) {
        return not_found("Campaign activity");
    }
    let body = match json_object(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let ok = body
        .member("email_addresses")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            (1..=5).contains(&a.len())
                && a.iter()
                    .all(|e| e.as_str().is_some_and(super::contact_input::valid_email))
        });
    if !ok {
        return validation(&["email_addresses must hold 1 to 5 email addresses".into()]);
    }
    Resp::empty(204).note("test send (nothing is mailed)")
}

/// `GET /v3/emails/activities/{id}/send_history`.
pub fn send_history(sim: &Sim, id: &str) -> Resp {
    let Some(a) = Uuid::parse_str(id)
        .ok()
        .and_then(|u| sim.campaign_activities.get(&u))
    else {
        return not_found("Campaign activity");
    };
    let list: Vec<Value> = a
        .sends
        .iter()
        .map(|s| {
            json!({
                "send_id": s.send_id,
                "contact_list_ids": s.contact_list_ids.iter().map(Uuid::to_string).collect::<Vec<_>>(),
                "segment_ids": s.segment_ids,
                "count": s.count,
                "send_time": ts(s.send_time),
                "reason_code": 0,
            })
        })
        .collect();
    Resp::json(200, &Value::Array(list))
}

/// `GET /v3/reports/stats/email_campaign_activities/{ids}`: stats from the sends.
pub fn stats(sim: &Sim, ids: &str, now: i64) -> Resp {
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for id in ids
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .take(10)
    {
        match Uuid::parse_str(id)
            .ok()
            .and_then(|u| sim.campaign_activities.get(&u))
        {
            Some(a) => {
                let sends: u64 = a.sends.iter().map(|s| s.count).sum();
                results.push(json!({
                    "campaign_id": a.campaign_id.to_string(),
                    "campaign_activity_id": a.id.to_string(),
                    "stats": {
                        "em_sends": sends, "em_bounces": 0, "em_opens": 0, "em_opens_all": 0,
                        "em_clicks": 0, "em_clicks_all": 0, "em_forwards": 0, "em_optouts": 0,
                        "em_abuse": 0, "em_not_opened": sends,
                    },
                    "last_refresh_time": ts(now),
                }));
            }
            None => errors.push(json!({
                "message": format!("campaign activity {id} was not found"),
                "campaign_activity_id": id,
            })),
        }
    }
    Resp::json(200, &json!({"results": results, "errors": errors}))
}
