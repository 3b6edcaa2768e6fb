//! Bulk activities: imports, list-membership changes and deletes, run as asynchronous jobs that
//! advance `initialized → processing → completed` with the mock clock and apply their rows to the
//! store when they complete ([`super::applying`], a slice at a time): the requests that make and
//! read them are here.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::store::{Sim, new_id, ts};
use crate::mock::http::{Member, Req, Resp, cc_error, json_object, validation};

/// Most contacts one import may carry.
pub const MAX_IMPORT_ROWS: usize = 40_000;
/// Payload beyond this is dropped, as the vendor does.
pub const MAX_IMPORT_BYTES: usize = 4 * 1024 * 1024;
/// Queued activities per account before 429.
pub const MAX_QUEUED: usize = 1000;

/// How fast activities progress (in mock-clock time).
#[derive(Debug, Clone, Copy)]
pub struct Speed {
    /// Rows processed per second.
    pub rows_per_second: u64,
    /// Time spent `initialized` before processing starts.
    pub start_delay_ms: i64,
}

/// What an activity does.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Work {
    /// Create or update contacts.
    Import {
        /// Rows (JSON objects, or CSV rows keyed by column).
        rows: Vec<Map<String, Value>>,
        /// Lists to add them to.
        list_ids: Vec<Uuid>,
        /// Row numbers for messages start here (2 for CSV: row 1 is the header).
        first_row: usize,
    },
    /// Add or remove list memberships.
    Membership {
        /// Add (true) or remove.
        add: bool,
        /// Source contact ids.
        contact_ids: Vec<Uuid>,
        /// Source lists.
        source_lists: Vec<Uuid>,
        /// All active contacts.
        all_active: bool,
        /// Target lists.
        targets: Vec<Uuid>,
        /// Excluded contacts.
        exclude: Vec<Uuid>,
    },
    /// Soft-delete contacts.
    ContactDelete {
        /// By id.
        contact_ids: Vec<Uuid>,
        /// By list.
        list_ids: Vec<Uuid>,
    },
    /// Delete lists.
    ListDelete {
        /// Lists.
        list_ids: Vec<Uuid>,
    },
    /// Export contacts as CSV.
    Export(Box<super::exports::Selection>),
    /// Add or remove tags.
    Taggings {
        /// Add (true) or remove.
        add: bool,
        /// Source contact ids.
        contact_ids: Vec<Uuid>,
        /// Source lists.
        source_lists: Vec<Uuid>,
        /// Source tags.
        source_tags: Vec<Uuid>,
        /// All active contacts.
        all_active: bool,
        /// The tags added or removed.
        tag_ids: Vec<Uuid>,
        /// Excluded contacts.
        exclude: Vec<Uuid>,
        /// A source segment's criteria.
        #[serde(default)]
        segment: Option<Value>,
    },
    /// Delete custom fields and their values.
    CustomFieldsDelete {
        /// Fields.
        custom_field_ids: Vec<Uuid>,
    },
    /// Untag every contact and delete the tags.
    TagsDelete {
        /// Tags.
        tag_ids: Vec<Uuid>,
    },
    /// Applied; rows released.
    Done,
}

/// An activity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Activity {
    /// Id.
    pub id: Uuid,
    /// `contacts_json_import`, `add_list_memberships`, ...
    pub kind: String,
    /// Created (ms).
    pub created_at: i64,
    /// Items to process.
    pub total: u64,
    /// The work.
    pub work: Work,
    /// Per-row errors.
    pub errors: Vec<String>,
    /// Counters filled in when applied.
    pub counts: Map<String, Value>,
    /// Applied to the store.
    pub applied: bool,
    /// Uploaded file name.
    pub source_file_name: Option<String>,
    /// What it produced (an export's CSV).
    #[serde(default)]
    pub result: Option<String>,
}

impl Activity {
    /// A new activity.
    pub fn new(kind: &str, now: i64, total: u64, work: Work) -> Activity {
        Activity {
            id: new_id(),
            kind: kind.into(),
            created_at: now,
            total,
            work,
            errors: vec![],
            counts: Map::new(),
            applied: false,
            source_file_name: None,
            result: None,
        }
    }

    fn started_at(&self, s: &Speed) -> i64 {
        self.created_at + s.start_delay_ms
    }

    /// When it completes.
    pub fn completes_at(&self, s: &Speed) -> i64 {
        let rate = s.rows_per_second.max(1);
        self.started_at(s) + ((self.total * 1000).div_ceil(rate)) as i64
    }

    /// Items processed by `now` on the mock clock; short of the last one until it is applied.
    fn processed(&self, now: i64, s: &Speed) -> u64 {
        if self.applied {
            return self.total;
        }
        let ran = (now - self.started_at(s)).max(0) as u64;
        (ran * s.rows_per_second / 1000).min(self.total.saturating_sub(1))
    }

    /// `initialized`, `processing` or `completed` (only once all of it is applied: a large
    /// activity may go on `processing` a little past its completion time while its last slices
    /// are applied, see [`super::applying`]).
    pub fn state(&self, now: i64, s: &Speed) -> &'static str {
        if self.applied {
            "completed"
        } else if now < self.started_at(s) {
            "initialized"
        } else {
            "processing"
        }
    }
}

/// The activity as the API shows it.
pub fn activity_json(a: &Activity, now: i64, s: &Speed) -> Value {
    let state = a.state(now, s);
    let done = a.processed(now, s);
    let percent = (done * 100).checked_div(a.total).unwrap_or(100);
    let mut status = Map::new();
    match a.kind.as_str() {
        "contacts_json_import" | "contacts_file_import" => {
            status.insert("items_total_count".into(), json!(a.total));
            status.insert("items_completed_count".into(), json!(done));
            status.insert(
                "person_count".into(),
                a.counts.member("person_count").cloned().unwrap_or(json!(0)),
            );
            status.insert("error_count".into(), json!(a.errors.len()));
            status.insert(
                "correctable_count".into(),
                a.counts
                    .member("correctable_count")
                    .cloned()
                    .unwrap_or(json!(0)),
            );
            status.insert(
                "cannot_add_to_list_count".into(),
                a.counts
                    .member("cannot_add_to_list_count")
                    .cloned()
                    .unwrap_or(json!(0)),
            );
        }
        "list_delete" => {
            status.insert("list_count".into(), json!(a.total));
        }
        _ => {
            status.insert("items_total_count".into(), json!(a.total));
            status.insert("items_completed_count".into(), json!(done));
            if let Some(n) = a.counts.member("list_count") {
                status.insert("list_count".into(), n.clone());
            }
        }
    }
    let mut v = json!({
        "activity_id": a.id.to_string(),
        "state": state,
        "created_at": ts(a.created_at),
        "updated_at": ts(if state == "completed" { a.completes_at(s) } else { now.max(a.created_at) }),
        "percent_done": percent,
        "activity_errors": a.errors,
        "status": status,
        "_links": {"self": {"href": format!("/v3/activities/{}", a.id)}},
    });
    if state != "initialized" {
        v["started_at"] = json!(ts(a.started_at(s)));
    }
    if state == "completed" {
        v["completed_at"] = json!(ts(a.completes_at(s)));
        if a.kind == "contact_exports" {
            v["_links"]["results"] = json!({"href": format!("/v3/contact_exports/{}", a.id)});
        }
    }
    if let Some(f) = &a.source_file_name {
        v["source_file_name"] = json!(f);
    }
    v
}

/// The activities not applied yet: a [`Tally`](super::table::Tally) of the activity table, so
/// the clock's tick, which runs before every request, looks at those and not at every activity
/// ever made (with 26,000 activities made, GET one contact fell from 104,500 to 11,800 req/s).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Unapplied(pub super::store::IdSet);

impl super::table::Tally<Activity> for Unapplied {
    fn count(&mut self, a: &Activity, sign: isize) {
        if a.applied {
            return;
        }
        if sign > 0 {
            self.0.insert(a.id);
        } else {
            self.0.remove(&a.id);
        }
    }
}

fn queue_full(sim: &Sim) -> Option<Resp> {
    (sim.activities.tally().0.len() >= MAX_QUEUED).then(|| {
        cc_error(
            429,
            "too_many_requests",
            "You exceeded 1,000 queued activities for this user account.",
        )
    })
}

/// A list of ids in a body field (at most `max`; `required` refuses it missing or empty).
pub(super) fn uuid_list(
    v: Option<&Value>,
    field: &str,
    max: usize,
    required: bool,
    errors: &mut Vec<String>,
) -> Vec<Uuid> {
    match v {
        None | Some(Value::Null) => {
            if required {
                errors.push(format!("{field} is missing"));
            }
            vec![]
        }
        Some(Value::Array(a)) => {
            if a.len() > max {
                errors.push(format!("{field} exceeds the maximum of {max} items"));
                return vec![];
            }
            if required && a.is_empty() {
                errors.push(format!("{field} must contain at least one id"));
            }
            let ids: Option<Vec<Uuid>> = a
                .iter()
                .map(|x| x.as_str().and_then(|s| Uuid::parse_str(s).ok()))
                .collect();
            ids.unwrap_or_else(|| {
                errors.push(format!("{field} does not have a valid value"));
                vec![]
            })
        }
        Some(_) => {
            errors.push(format!("{field} does not have a valid value"));
            vec![]
        }
    }
}

pub(super) fn check_lists_exist(sim: &Sim, ids: &[Uuid], field: &str, errors: &mut Vec<String>) {
    for id in ids {
        if sim.lists.get(id).is_none_or(|l| l.deleted_at.is_some()) {
            errors.push(format!(
                "{field} contains an id that is not a list in this account: {id}"
            ));
            return;
        }
    }
}

fn created(sim: &mut Sim, a: Activity, now: i64, s: &Speed) -> Resp {
    let body = activity_json(&a, now, s);
    sim.activities.insert(a.id, a);
    Resp::json(201, &body)
}

/// `POST /v3/activities/contacts_json_import`.
pub fn json_import(sim: &mut Sim, req: &Req, now: i64, s: &Speed) -> Resp {
    if let Some(r) = queue_full(sim) {
        return r;
    }
    let body = match json_object(req) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mut errors = Vec::new();
    let list_ids = uuid_list(body.member("list_ids"), "list_ids", 50, true, &mut errors);
    check_lists_exist(sim, &list_ids, "list_ids", &mut errors);
    let rows = match body.member("import_data") {
        Some(Value::Array(a)) if a.is_empty() => {
            errors.push("import_data must contain at least one contact".into());
            vec![]
        }
        Some(Value::Array(a)) if a.len() > MAX_IMPORT_ROWS => {
            errors.push(format!(
                "import_data exceeds the maximum of {MAX_IMPORT_ROWS} contacts"
            ));
            vec![]
        }
        Some(Value::Array(a)) => {
            // Rows past 4 MB of payload are dropped without an error, as the vendor does.
            let mut size = 0usize;
            let mut rows = Vec::with_capacity(a.len());
            for row in a {
                size += serde_json::to_string(row).map(|s| s.len() + 1).unwrap_or(0);
                if size > MAX_IMPORT_BYTES {
                    break;
                }
                match row {
                    Value::Object(m) => rows.push(m.clone()),
                    _ => {
                        errors.push("import_data must contain objects".into());
                        break;
                    }
                }
            }
            rows
        }
        None | Some(Value::Null) => {
            errors.push("import_data is missing".into());
            vec![]
        }
        Some(_) => {
            errors.push("import_data does not have a valid value".into());
            vec![]
        }
    };
    if !errors.is_empty() {
        return validation(&errors);
    }
    let total = rows.len() as u64;
    created(
        sim,
        Activity::new(
            "contacts_json_import",
            now,
            total,
            Work::Import {
                rows,
                list_ids,
                first_row: 1,
            },
        ),
        now,
        s,
    )
}

/// `POST /v3/activities/contacts_file_import` (multipart: `file` CSV, `list_ids`).
pub fn file_import(sim: &mut Sim, req: &Req, now: i64, s: &Speed) -> Resp {
    if let Some(r) = queue_full(sim) {
        return r;
    }
    let ct = req.header("content-type").unwrap_or("");
    let Some(boundary) = ct
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .filter(|_| ct.to_ascii_lowercase().starts_with("multipart/form-data"))
    else {
        return cc_error(
            415,
            "unsupported_media_type",
            "Content-Type must be multipart/form-data",
        );
    };
    let parts = match parse_multipart(&req.body, boundary.trim_matches('"')) {
        Some(p) => p,
        None => return validation(&["The multipart body could not be parsed".into()]),
    };
    let mut errors = Vec::new();
    let file = parts.iter().find(|p| p.name == "file");
    let list_ids: Vec<Uuid> = match parts.iter().find(|p| p.name == "list_ids") {
        Some(p) => {
            let text = String::from_utf8_lossy(&p.data).to_string();
            let ids: Option<Vec<Uuid>> = text
                .split(',')
                .map(|x| Uuid::parse_str(x.trim()).ok())
                .collect();
            match ids {
                Some(v) if !v.is_empty() && v.len() <= 50 => v,
                _ => {
                    errors.push("list_ids does not have a valid value".into());
                    vec![]
                }
            }
        }
        None => {
            errors.push("list_ids is missing".into());
            vec![]
        }
    };
    check_lists_exist(sim, &list_ids, "list_ids", &mut errors);
    let Some(file) = file else {
        errors.push("file is missing".into());
        return validation(&errors);
    };
    let filename = file.filename.clone().unwrap_or_default();
    if !filename.to_ascii_lowercase().ends_with(".csv") {
        return cc_error(
            415,
            "unsupported_media_type",
            "The file must be a .csv file",
        );
    }
    let data = &file.data[..file.data.len().min(MAX_IMPORT_BYTES)];
    let text = String::from_utf8_lossy(data);
    let mut table = parse_csv(&text);
    table.truncate(MAX_IMPORT_ROWS);
    let Some(header) = table.first().cloned() else {
        errors.push("file is empty".into());
        return validation(&errors);
    };
    let header: Vec<String> = header
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    if !header.iter().any(|h| h == "email" || h == "sms_number") {
        errors.push("file must have an email or sms_number column".into());
    }
    if !errors.is_empty() {
        return validation(&errors);
    }
    let rows: Vec<Map<String, Value>> = table[1..]
        .iter()
        .filter(|r| r.iter().any(|c| !c.trim().is_empty()))
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.iter().map(|c| Value::String(c.clone())))
                .collect()
        })
        .collect();
    // The vendor counts the header line as an item of a CSV import.
    let total = rows.len() as u64 + 1;
    let mut a = Activity::new(
        "contacts_file_import",
        now,
        total,
        Work::Import {
            rows,
            list_ids,
            first_row: 2,
        },
    );
    a.source_file_name = Some(filename);
    created(sim, a, now, s)
}

/// The contacts a bulk activity's `source` picks: exactly one of `contact_ids` (≤500),
/// `list_ids` (≤50), `all_active_contacts`, and — where the activity takes them — `tag_ids` (≤50)
/// and `segment_id`.
#[derive(Debug, Default)]
struct ContactSource {
    contact_ids: Vec<Uuid>,
    list_ids: Vec<Uuid>,
    tag_ids: Vec<Uuid>,
    all_active: bool,
    /// A segment's criteria.
    segment: Option<Value>,
}

impl ContactSource {
    fn parse(
        sim: &Sim,
        source: Option<&Value>,
        tags_and_segments: bool,
        errors: &mut Vec<String>,
    ) -> ContactSource {
        let mut out = ContactSource::default();
        let Some(src) = source.and_then(Value::as_object) else {
            errors.push("source is missing".into());
            return out;
        };
        let kinds: &[&str] = if tags_and_segments {
            &[
                "contact_ids",
                "list_ids",
                "tag_ids",
                "segment_id",
                "all_active_contacts",
            ]
        } else {
            &["contact_ids", "list_ids", "all_active_contacts"]
        };
        if kinds.iter().filter(|k| src.contains_key(**k)).count() != 1 {
            errors.push(format!(
                "source must have exactly one of {}",
                kinds.join(", ")
            ));
        }
        if tags_and_segments && src.contains_key("new_subscriber") {
            errors.push(
                "source: new_subscriber is not simulated by the postie mock (docs/mock.md)".into(),
            );
        }
        out.contact_ids = uuid_list(
            src.member("contact_ids"),
            "source.contact_ids",
            500,
            false,
            errors,
        );
        out.list_ids = uuid_list(src.member("list_ids"), "source.list_ids", 50, false, errors);
        check_lists_exist(sim, &out.list_ids, "source.list_ids", errors);
        if tags_and_segments {
            out.tag_ids = uuid_list(src.member("tag_ids"), "source.tag_ids", 50, false, errors);
            check_tags_exist(sim, &out.tag_ids, "source.tag_ids", errors);
            if let Some(v) = src.member("segment_id") {
                match v
                    .as_u64()
                    .ok_or_else(|| "source.segment_id does not have a valid value".to_string())
                    .and_then(|id| super::segments::matcher(sim, id))
                {
                    Ok(c) => out.segment = Some(c),
                    Err(e) => errors.push(e),
                }
            }
        }
        out.all_active = src
            .member("all_active_contacts")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        out
    }
}

/// `exclude.contact_ids` of a bulk request: up to 500 contacts left out of what the source picks.
pub fn exclusions(body: &serde_json::Map<String, Value>, errors: &mut Vec<String>) -> Vec<Uuid> {
    uuid_list(
        body.member("exclude").and_then(|e| e.member("contact_ids")),
        "exclude.contact_ids",
        500,
        false,
        errors,
    )
}

/// `POST /v3/activities/add_list_memberships` and `remove_list_memberships`.
pub fn memberships(sim: &mut Sim, req: &Req, now: i64, s: &Speed, add: bool) -> Resp {
    if let Some(r) = queue_full(sim) {
        return r;
    }
    let body = match json_object(req) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mut errors = Vec::new();
    let targets = uuid_list(body.member("list_ids"), "list_ids", 50, true, &mut errors);
    check_lists_exist(sim, &targets, "list_ids", &mut errors);
    let ContactSource {
        contact_ids,
        list_ids: source_lists,
        all_active,
        ..
    } = ContactSource::parse(sim, body.member("source"), false, &mut errors);
    let exclude = exclusions(&body, &mut errors);
    if !errors.is_empty() {
        return validation(&errors);
    }
    let total = if all_active {
        sim.contacts.tally().active
    } else if let [list] = source_lists[..] {
        // One list's members are counted as contacts change; several lists' union is walked.
        sim.contacts
            .tally()
            .lists
            .get(&list)
            .map_or(0, |&(members, _)| members)
    } else if !source_lists.is_empty() {
        sim.contacts
            .values()
            .filter(|c| {
                c.deleted_at.is_none()
                    && c.list_memberships.iter().any(|l| source_lists.contains(l))
            })
            .count()
    } else {
        contact_ids.len()
    } as u64;
    let kind = if add {
        "add_list_memberships"
    } else {
        "remove_list_memberships"
    };
    created(
        sim,
        Activity::new(
            kind,
            now,
            total,
            Work::Membership {
                add,
                contact_ids,
                source_lists,
                all_active,
                targets,
                exclude,
            },
        ),
        now,
        s,
    )
}

/// `POST /v3/activities/contacts_taggings_add` and `contacts_taggings_remove`: tags on the
/// contacts a source picks (`contact_ids`, `list_ids`, `tag_ids` or `all_active_contacts`).
pub fn taggings(sim: &mut Sim, req: &Req, now: i64, s: &Speed, add: bool) -> Resp {
    if let Some(r) = queue_full(sim) {
        return r;
    }
    let body = match json_object(req) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mut errors = Vec::new();
    let tag_ids = uuid_list(body.member("tag_ids"), "tag_ids", 50, true, &mut errors);
    check_tags_exist(sim, &tag_ids, "tag_ids", &mut errors);
    let ContactSource {
        contact_ids,
        list_ids: source_lists,
        tag_ids: source_tags,
        all_active,
        segment,
    } = ContactSource::parse(sim, body.member("source"), true, &mut errors);
    let exclude = exclusions(&body, &mut errors);
    if !errors.is_empty() {
        return validation(&errors);
    }
    let total =
        if all_active || segment.is_some() || !source_lists.is_empty() || !source_tags.is_empty() {
            sim.contacts.tally().live
        } else {
            contact_ids.len()
        }
        .max(1) as u64;
    let kind = if add {
        "contacts_taggings_add"
    } else {
        "contacts_taggings_remove"
    };
    created(
        sim,
        Activity::new(
            kind,
            now,
            total,
            Work::Taggings {
                add,
                contact_ids,
                source_lists,
                source_tags,
                all_active,
                tag_ids,
                exclude,
                segment,
            },
        ),
        now,
        s,
    )
}

/// `POST /v3/activities/contacts_tags_delete`: up to 500 tags, untagged everywhere, then gone.
pub fn tags_delete(sim: &mut Sim, req: &Req, now: i64, s: &Speed) -> Resp {
    bulk_delete(sim, req, now, s, "tag_ids", 500, "contacts_tags_delete")
}

/// `POST /v3/activities/custom_fields_delete`: up to 100 custom fields and their values.
pub fn custom_fields_delete(sim: &mut Sim, req: &Req, now: i64, s: &Speed) -> Resp {
    bulk_delete(
        sim,
        req,
        now,
        s,
        "custom_field_ids",
        100,
        "custom_fields_delete",
    )
}

/// `POST /v3/activities/list_delete`: up to 100 lists.
pub fn list_delete(sim: &mut Sim, req: &Req, now: i64, s: &Speed) -> Resp {
    bulk_delete(sim, req, now, s, "list_ids", 100, "list_delete")
}

fn bulk_delete(
    sim: &mut Sim,
    req: &Req,
    now: i64,
    s: &Speed,
    field: &str,
    max: usize,
    kind: &str,
) -> Resp {
    if let Some(r) = queue_full(sim) {
        return r;
    }
    let body = match json_object(req) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mut errors = Vec::new();
    let ids = uuid_list(body.get(field), field, max, true, &mut errors);
    match field {
        "tag_ids" => check_tags_exist(sim, &ids, field, &mut errors),
        "list_ids" => check_lists_exist(sim, &ids, field, &mut errors),
        _ => {
            if let Some(id) = ids.iter().find(|i| !sim.custom_fields.contains_key(*i)) {
                errors.push(format!(
                    "{field} contains an id that is not a custom field in this account: {id}"
                ));
            }
        }
    }
    if !errors.is_empty() {
        return validation(&errors);
    }
    let total = ids.len() as u64;
    let work = match field {
        "tag_ids" => Work::TagsDelete { tag_ids: ids },
        "list_ids" => Work::ListDelete { list_ids: ids },
        _ => Work::CustomFieldsDelete {
            custom_field_ids: ids,
        },
    };
    created(sim, Activity::new(kind, now, total, work), now, s)
}

fn check_tags_exist(sim: &Sim, ids: &[Uuid], field: &str, errors: &mut Vec<String>) {
    if let Some(id) = ids.iter().find(|i| !sim.tags.contains_key(*i)) {
        errors.push(format!(
            "{field} contains an id that is not a tag in this account: {id}"
        ));
    }
}

/// `POST /v3/activities/contact_delete`.
pub fn contact_delete(sim: &mut Sim, req: &Req, now: i64, s: &Speed) -> Resp {
    if let Some(r) = queue_full(sim) {
        return r;
    }
    let body = match json_object(req) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mut errors = Vec::new();
    let contact_ids = uuid_list(
        body.member("contact_ids"),
        "contact_ids",
        500,
        false,
        &mut errors,
    );
    let list_ids = uuid_list(body.member("list_ids"), "list_ids", 50, false, &mut errors);
    if contact_ids.is_empty() == list_ids.is_empty() && errors.is_empty() {
        errors.push("give exactly one of contact_ids or list_ids".into());
    }
    if !errors.is_empty() {
        return validation(&errors);
    }
    let total = if contact_ids.is_empty() {
        sim.contacts
            .values()
            .filter(|c| {
                c.deleted_at.is_none() && c.list_memberships.iter().any(|l| list_ids.contains(l))
            })
            .count() as u64
    } else {
        contact_ids.len() as u64
    };
    created(
        sim,
        Activity::new(
            "contact_delete",
            now,
            total,
            Work::ContactDelete {
                contact_ids,
                list_ids,
            },
        ),
        now,
        s,
    )
}

/// `GET /v3/activities` (the past 10 days, newest first).
pub fn list(sim: &Sim, req: &Req, now: i64, s: &Speed) -> Resp {
    // Paged past `limit` (default 50) by the same opaque cursor as contacts and lists.
    let (query, start) = match super::paging::query_of(req) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let limit = match super::paging::limit(&query, 50, 500) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let state = super::paging::get(&query, "state");
    if state.is_some_and(|st| {
        ![
            "initialized",
            "processing",
            "completed",
            "cancelled",
            "failed",
            "timed_out",
        ]
        .contains(&st)
    }) {
        return validation(&["state does not have a valid value".into()]);
    }
    let since = now - 10 * 86_400_000;
    let mut matching = sim
        .activities
        .values()
        .rev()
        .filter(|a| a.created_at >= since && state.is_none_or(|st| a.state(now, s) == st))
        .skip(start);
    let items: Vec<Value> = matching
        .by_ref()
        .take(limit)
        .map(|a| activity_json(a, now, s))
        .collect();
    let mut body = json!({"activities": items});
    if matching.next().is_some() {
        body["_links"] = super::paging::next_link("/v3/activities", &query, start + limit);
    }
    Resp::json(200, &body)
}

/// `GET /v3/activities/{id}`.
pub fn get(sim: &Sim, id: &str, now: i64, s: &Speed) -> Resp {
    match Uuid::parse_str(id)
        .ok()
        .and_then(|id| sim.activities.get(&id))
    {
        Some(a) => Resp::json(200, &activity_json(a, now, s)),
        None => cc_error(
            404,
            "activities.api.not_found",
            "Resource not found for the activity_id provided",
        ),
    }
}

/// One multipart part.
pub struct Part {
    /// Form field name.
    pub name: String,
    /// File name, for file parts.
    pub filename: Option<String>,
    /// Content.
    pub data: Vec<u8>,
}

/// Parses `multipart/form-data`.
pub fn parse_multipart(body: &[u8], boundary: &str) -> Option<Vec<Part>> {
    let delim = format!("--{boundary}");
    let d = delim.as_bytes();
    let mut parts = Vec::new();
    let mut pos = find(body, d, 0)? + d.len();
    loop {
        if body[pos..].starts_with(b"--") {
            return Some(parts);
        }
        pos += if body[pos..].starts_with(b"\r\n") {
            2
        } else {
            0
        };
        let head_end = find(body, b"\r\n\r\n", pos)?;
        let head = String::from_utf8_lossy(&body[pos..head_end]).to_string();
        let next = find(body, d, head_end + 4)?;
        let mut data_end = next;
        if body[..data_end].ends_with(b"\r\n") {
            data_end -= 2;
        }
        let disp = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))?
            .to_string();
        let attr = |k: &str| {
            disp.split(';')
                .map(str::trim)
                .find_map(|p| p.strip_prefix(&format!("{k}=")))
                .map(|v| v.trim_matches('"').to_string())
        };
        parts.push(Part {
            name: attr("name")?,
            filename: attr("filename"),
            data: body[head_end + 4..data_end].to_vec(),
        });
        pos = next + d.len();
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Parses CSV (quotes, doubled quotes, CRLF).
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_multipart() {
        let t = parse_csv("email,first_name\r\n\"a@x.io\",\"Ann, \"\"A\"\"\"\nb@x.io,Bob\n");
        assert_eq!(
            t,
            vec![
                vec!["email", "first_name"],
                vec!["a@x.io", "Ann, \"A\""],
                vec!["b@x.io", "Bob"]
            ]
        );
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"list_ids\"\r\n\r\nL1\r\n--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.csv\"\r\nContent-Type: text/csv\r\n\r\nemail\na@x.io\n\r\n--XX--\r\n";
        let parts = parse_multipart(body, "XX").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].data, b"L1");
        assert_eq!(parts[1].filename.as_deref(), Some("c.csv"));
        assert_eq!(parts[1].data, b"email\na@x.io\n");
    }

    #[test]
    fn progress_follows_the_clock() {
        let s = Speed {
            rows_per_second: 1000,
            start_delay_ms: 100,
        };
        let a = Activity::new("contacts_json_import", 0, 2000, Work::Done);
        assert_eq!(a.state(50, &s), "initialized");
        assert_eq!(a.state(1100, &s), "processing");
        assert_eq!(activity_json(&a, 1100, &s)["percent_done"], 50);
        // Past its completion time it goes on processing until it is applied.
        assert_eq!(a.state(2100, &s), "processing");
        assert_eq!(activity_json(&a, 2100, &s)["percent_done"], 99);
        let a = Activity { applied: true, ..a };
        assert_eq!(a.state(2100, &s), "completed");
        assert_eq!(activity_json(&a, 2100, &s)["percent_done"], 100);
    }
}
