//! Contact exports: `POST /v3/activities/contact_exports` queues a `contact_exports` activity;
//! when it completes on the mock clock, its CSV is at `GET /v3/contact_exports/{activity_id}`
//! (the activity's `_links.results`).
//!
//! Guessed (the reference is silent; docs/mock.md says so): the CSV's header names are the
//! API's field names (`email_address`, ...), custom fields are `cf:<name>` columns (as imports
//! name them), tags and lists are columns of names joined by `;`.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::activities::{self, Activity, Speed, Work, check_lists_exist, uuid_list};
use super::store::{Contact, IdSet, Permission, Sim, ts};
use crate::mock::http::{Member, Req, Resp, cc_error, json_object, validation};

/// The fields an export may carry, in column order (custom fields follow as `cf:<name>`).
pub const FIELDS: [&str; 18] = [
    "email_address",
    "email_permission",
    "first_name",
    "last_name",
    "job_title",
    "company_name",
    "birthday_month",
    "birthday_day",
    "anniversary",
    "email_optin_source",
    "email_optin_date",
    "email_optout_source",
    "email_optout_date",
    "email_optout_reason",
    "list_memberships",
    "tags",
    "created_at",
    "updated_at",
];

/// What to export, as the request said.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Selection {
    /// Specific contacts.
    pub contact_ids: Vec<Uuid>,
    /// Contacts in these lists.
    pub list_ids: Vec<Uuid>,
    /// Contacts with these tags.
    pub tag_ids: Vec<Uuid>,
    /// Only those who subscribed in the last 30 days.
    pub new_subscriber: bool,
    /// Only this status (a permission, `active`, `deleted`).
    pub status: Option<String>,
    /// Left out.
    pub exclude: Vec<Uuid>,
    /// Columns.
    pub fields: Vec<String>,
    /// A segment's criteria (checked when the export was asked for).
    #[serde(default)]
    pub segment: Option<Value>,
}

/// `POST /v3/activities/contact_exports`.
pub fn create(sim: &mut Sim, req: &Req, now: i64, s: &Speed) -> Resp {
    let body: Map<String, Value> = if req.body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match json_object(req) {
            Ok(b) => b,
            Err(r) => return r,
        }
    };
    let mut errors = Vec::new();
    let segment = match body.member("segment_id") {
        None | Some(Value::Null) => None,
        Some(v) => match v
            .as_u64()
            .ok_or_else(|| "segment_id does not have a valid value".to_string())
            .and_then(|id| super::segments::matcher(sim, id))
        {
            Ok(c) => Some(c),
            Err(e) => {
                errors.push(e);
                None
            }
        },
    };
    let sel = Selection {
        contact_ids: uuid_list(
            body.member("contact_ids"),
            "contact_ids",
            500,
            false,
            &mut errors,
        ),
        list_ids: uuid_list(body.member("list_ids"), "list_ids", 50, false, &mut errors),
        tag_ids: uuid_list(body.member("tag_ids"), "tag_ids", 50, false, &mut errors),
        new_subscriber: body
            .member("new_subscriber")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        status: body
            .member("status")
            .and_then(Value::as_str)
            .map(String::from),
        exclude: super::activities::exclusions(&body, &mut errors),
        fields: match body.member("fields") {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(a)) => a
                .iter()
                .map(|f| f.as_str().unwrap_or("").to_string())
                .collect(),
            Some(_) => {
                errors.push("fields does not have a valid value".into());
                vec![]
            }
        },
        segment,
    };
    let filters = [
        !sel.contact_ids.is_empty(),
        !sel.list_ids.is_empty(),
        !sel.tag_ids.is_empty(),
        sel.segment.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if filters > 1 {
        errors.push("contact_ids, list_ids, tag_ids and segment_id are mutually exclusive".into());
    }
    check_lists_exist(sim, &sel.list_ids, "list_ids", &mut errors);
    for f in &sel.fields {
        let known = FIELDS.contains(&f.as_str())
            || f.strip_prefix("cf:")
                .is_some_and(|n| sim.custom_fields.values().any(|c| c.name == n));
        if !known {
            errors.push(format!(
                "fields: `{f}` is not a contact field (one of {}, or cf:<custom field name>)",
                FIELDS.join(", ")
            ));
        }
    }
    let needs_email = sel
        .fields
        .iter()
        .any(|f| f.starts_with("email_opt") && !sel.fields.iter().any(|x| x == "email_address"));
    if needs_email {
        errors.push("fields: export email_address to export the opt-in and opt-out fields".into());
    }
    if let Some(st) = &sel.status
        && !["active", "deleted", "all"].contains(&st.as_str())
        && Permission::parse(st).is_none()
    {
        errors.push("status does not have a valid value".into());
    }
    if !errors.is_empty() {
        return validation(&errors);
    }
    let total = selected(sim, &sel, now).max(1) as u64;
    let a = Activity::new("contact_exports", now, total, Work::Export(Box::new(sel)));
    let body = activities::activity_json(&a, now, s);
    sim.activities.insert(a.id, a);
    Resp::json(201, &body)
}

/// A selection's test of one contact, prepared once (ids in sets, tag ids as text, the
/// 30-day window fixed at `now`), so an export can go through the contacts a slice at a time.
#[derive(Debug, Clone)]
pub struct Picker {
    sel: Box<Selection>,
    contact_ids: IdSet,
    exclude: IdSet,
    tags: Vec<String>,
    since: i64,
}

impl Picker {
    /// The test of `sel` as it stands at `now`.
    pub fn new(sel: Box<Selection>, now: i64) -> Picker {
        Picker {
            contact_ids: sel.contact_ids.iter().copied().collect(),
            exclude: sel.exclude.iter().copied().collect(),
            tags: sel.tag_ids.iter().map(Uuid::to_string).collect(),
            since: now - 30 * 86_400_000,
            sel,
        }
    }

    /// Whether the selection takes this contact.
    pub fn picks(&self, c: &Contact) -> bool {
        let sel = &self.sel;
        let status_ok = match sel.status.as_deref() {
            None => c.deleted_at.is_none(),
            Some("all") => true,
            Some("deleted") => c.deleted_at.is_some(),
            Some("active") => c.is_active(),
            Some(p) => {
                c.deleted_at.is_none()
                    && c.email.as_ref().is_some_and(|e| e.permission.as_str() == p)
            }
        };
        status_ok
            && !self.exclude.contains(&c.id)
            && (self.contact_ids.is_empty() || self.contact_ids.contains(&c.id))
            && (sel.list_ids.is_empty()
                || c.list_memberships.iter().any(|l| sel.list_ids.contains(l)))
            && (self.tags.is_empty() || super::tags::tagged(c, &self.tags))
            && sel
                .segment
                .as_ref()
                .is_none_or(|s| super::segments::meets(c, s))
            && (!sel.new_subscriber
                || c.email
                    .as_ref()
                    .is_some_and(|e| e.opt_in_date.unwrap_or(e.created_at) >= self.since))
    }

    /// The CSV's columns: the fields asked for, else every field and then every custom field.
    pub fn columns(&self, sim: &Sim) -> Vec<String> {
        if self.sel.fields.is_empty() {
            FIELDS
                .iter()
                .map(|f| f.to_string())
                .chain(sim.custom_fields.values().map(|f| format!("cf:{}", f.name)))
                .collect()
        } else {
            self.sel.fields.clone()
        }
    }
}

/// How many contacts a selection picks now: kept for a status or one list alone, else walked.
fn selected(sim: &Sim, sel: &Selection, now: i64) -> usize {
    let plain = sel.contact_ids.is_empty()
        && sel.tag_ids.is_empty()
        && !sel.new_subscriber
        && sel.exclude.is_empty()
        && sel.segment.is_none();
    let kept = plain
        .then(|| {
            sim.contacts
                .tally()
                .matching(&sel.list_ids, sel.status.as_deref())
        })
        .flatten();
    kept.unwrap_or_else(|| {
        let picker = Picker::new(Box::new(sel.clone()), now);
        sim.contacts.values().filter(|c| picker.picks(c)).count()
    })
}

/// Appends the CSV header of these columns.
pub fn header(out: &mut String, columns: &[String]) {
    row(out, columns.iter().map(String::as_str));
}

/// Appends one contact's CSV row.
pub fn contact_row(out: &mut String, sim: &Sim, c: &Contact, columns: &[String]) {
    let cells: Vec<String> = columns.iter().map(|col| cell(sim, c, col)).collect();
    row(out, cells.iter().map(String::as_str));
}

fn row<'a>(out: &mut String, cells: impl Iterator<Item = &'a str>) {
    let mut first = true;
    for c in cells {
        if !first {
            out.push(',');
        }
        first = false;
        if c.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&c.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(c);
        }
    }
    out.push_str("\r\n");
}

fn cell(sim: &Sim, c: &Contact, col: &str) -> String {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let e = c.email.as_ref();
    match col {
        "email_address" => e.map(|e| e.address.clone()).unwrap_or_default(),
        "email_permission" => e
            .map(|e| e.permission.as_str().to_string())
            .unwrap_or_default(),
        "first_name" => opt(&c.first_name),
        "last_name" => opt(&c.last_name),
        "job_title" => opt(&c.job_title),
        "company_name" => opt(&c.company_name),
        "birthday_month" => c.birthday_month.map(|m| m.to_string()).unwrap_or_default(),
        "birthday_day" => c.birthday_day.map(|d| d.to_string()).unwrap_or_default(),
        "anniversary" => opt(&c.anniversary),
        "email_optin_source" => e
            .and_then(|e| e.opt_in_source)
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        "email_optin_date" => e.and_then(|e| e.opt_in_date).map(ts).unwrap_or_default(),
        "email_optout_source" => e
            .and_then(|e| e.opt_out_source)
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        "email_optout_date" => e.and_then(|e| e.opt_out_date).map(ts).unwrap_or_default(),
        "email_optout_reason" => e.and_then(|e| e.opt_out_reason.clone()).unwrap_or_default(),
        "list_memberships" => c
            .list_memberships
            .iter()
            .filter_map(|l| sim.lists.get(l).map(|l| l.name.clone()))
            .collect::<Vec<_>>()
            .join(";"),
        "tags" => c
            .extras
            .as_ref()
            .map(|x| {
                x.taggings
                    .iter()
                    .filter_map(|t| {
                        Uuid::parse_str(t)
                            .ok()
                            .and_then(|u| sim.tags.get(&u).map(|t| t.name.clone()))
                    })
                    .collect::<Vec<_>>()
                    .join(";")
            })
            .unwrap_or_default(),
        "created_at" => ts(c.created_at),
        "updated_at" => ts(c.updated_at),
        other => {
            let Some(name) = other.strip_prefix("cf:") else {
                return String::new();
            };
            let Some(field) = sim.custom_fields.values().find(|f| f.name == name) else {
                return String::new();
            };
            let id = field.id.to_string();
            c.extras
                .as_ref()
                .and_then(|x| {
                    x.custom_fields.iter().find(|v| {
                        v.member("custom_field_id")
                            .and_then(Value::as_str)
                            .is_some_and(|i| i.eq_ignore_ascii_case(&id))
                    })
                })
                .and_then(|v| v.member("value").and_then(Value::as_str))
                .unwrap_or("")
                .to_string()
        }
    }
}

/// `GET /v3/contact_exports/{id}`: the CSV of a completed export.
pub fn download(sim: &Sim, id: &str) -> Resp {
    let a = Uuid::parse_str(id)
        .ok()
        .and_then(|u| sim.activities.get(&u))
        .filter(|a| a.kind == "contact_exports");
    match a {
        Some(a) if a.applied => {
            let text = a.result.clone().unwrap_or_default();
            let mut r = Resp::empty(200).with("content-type", "text/csv");
            r.body = bytes::Bytes::from(text);
            r.with(
                "content-disposition",
                format!("attachment; filename=\"contacts-{id}.csv\""),
            )
        }
        Some(_) => cc_error(
            404,
            "not_found",
            "The export has not completed yet; poll its activity until state is completed",
        ),
        None => cc_error(404, "not_found", "No contact export has this id"),
    }
}
