//! Reading a contact from a request body: validation against the vendor's limits, and writing
//! core fields (overwrite or partial) and sub-resources (replace or append) onto a contact.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::contacts::TEXT_FIELDS;
use super::store::{Contact, Email, Permission, Sim, Source, new_id};
use crate::mock::http::Member;

pub(super) fn str_field<'a>(
    body: &'a (impl Member + ?Sized),
    key: &str,
    max: usize,
    errors: &mut Vec<String>,
) -> Option<Option<&'a str>> {
    match body.member(key) {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) if s.chars().count() <= max => {
            Some(if s.is_empty() { None } else { Some(s.as_str()) })
        }
        Some(Value::String(_)) => {
            errors.push(format!("{key} exceeds the maximum length of {max}"));
            None
        }
        Some(_) => {
            errors.push(format!("{key} does not have a valid value"));
            None
        }
    }
}

/// A plausible email address (the vendor rejects obviously malformed ones): one `@` with text
/// before it, a domain with a dot inside it, no white space. Byte by byte: every `sign_up_form`
/// checks one, and searching it by `char` was 600 instructions.
pub fn valid_email(s: &str) -> bool {
    let Some(at) = s.bytes().position(|b| b == b'@') else {
        return false;
    };
    let (local, domain) = (&s.as_bytes()[..at], &s.as_bytes()[at + 1..]);
    // ASCII white space is 0x09–0x0D and the space; other text is asked of `char`.
    let space = if s.is_ascii() {
        s.bytes().any(|b| matches!(b, 0x09..=0x0D | b' '))
    } else {
        s.contains(char::is_whitespace)
    };
    !local.is_empty()
        && domain.contains(&b'.')
        && domain.first() != Some(&b'.')
        && domain.last() != Some(&b'.')
        && !space
        && !domain.contains(&b'@')
}

/// Normalises an anniversary in any accepted format to `YYYY-MM-DD`.
pub fn parse_anniversary(s: &str) -> Option<String> {
    if s.len() > 10 {
        return None;
    }
    let parts: Vec<&str> = s.split(['/', '-']).collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    let n: Vec<u32> = parts.iter().map(|p| p.parse().unwrap_or(0)).collect();
    let (y, m, d) = if parts[0].len() == 4 {
        (n[0], n[1], n[2])
    } else if parts[2].len() == 4 {
        (n[2], n[0], n[1])
    } else {
        return None;
    };
    ((1..=12).contains(&m) && (1..=31).contains(&d) && y >= 1000)
        .then(|| format!("{y:04}-{m:02}-{d:02}"))
}

/// The array at `key`, borrowed (a caller that keeps it copies it; most read it into
/// something else).
pub(super) fn check_array<'a>(
    body: &'a (impl Member + ?Sized),
    key: &str,
    max: usize,
    errors: &mut Vec<String>,
) -> Option<&'a [Value]> {
    match body.member(key) {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) if a.len() <= max => Some(a),
        Some(Value::Array(_)) => {
            errors.push(format!("{key} exceeds the maximum of {max} items"));
            None
        }
        Some(_) => {
            errors.push(format!("{key} does not have a valid value"));
            None
        }
    }
}

/// Validated sub-resources from a body (`None` = omitted).
#[derive(Debug, Default)]
pub(super) struct SubResources {
    pub(super) custom_fields: Option<Vec<Value>>,
    pub(super) phone_numbers: Option<Vec<Value>>,
    pub(super) street_addresses: Option<Vec<Value>>,
    pub(super) list_memberships: Option<Vec<Uuid>>,
    pub(super) taggings: Option<Vec<String>>,
    pub(super) notes: Option<Vec<Value>>,
    pub(super) sms_channel: Option<Value>,
}

pub(super) fn check_subresources(
    sim: &Sim,
    body: &(impl Member + ?Sized),
    custom_max: usize,
    now: i64,
    by: Source,
    errors: &mut Vec<String>,
) -> SubResources {
    let mut s = SubResources::default();
    if let Some(cf) = check_array(body, "custom_fields", custom_max, errors) {
        for f in cf {
            let id_ok = f
                .member("custom_field_id")
                .and_then(Value::as_str)
                .is_some_and(|i| Uuid::parse_str(i).is_ok());
            let val_ok = f
                .member("value")
                .is_none_or(|v| v.as_str().is_some_and(|x| x.chars().count() <= 255));
            if !id_ok || !val_ok {
                errors.push("custom_fields does not have a valid value".into());
                break;
            }
        }
        super::custom_fields::check_values(sim, cf, errors);
        s.custom_fields = Some(cf.to_vec());
    }
    if let Some(ph) = check_array(body, "phone_numbers", 3, errors) {
        let mut out = Vec::new();
        for p in ph {
            let num = p
                .member("phone_number")
                .and_then(Value::as_str)
                .unwrap_or("");
            let kind = p.member("kind").and_then(Value::as_str).unwrap_or("other");
            if num.is_empty()
                || num.chars().count() > 25
                || !["home", "work", "mobile", "other"].contains(&kind)
            {
                errors.push("phone_numbers does not have a valid value".into());
                break;
            }
            // A phone sent back keeps its id, creation time and create source.
            let kept = |k: &str| p.member(k).and_then(Value::as_str).map(String::from);
            let id = kept("phone_number_id")
                .filter(|i| Uuid::parse_str(i).is_ok())
                .unwrap_or_else(|| new_id().to_string());
            let created = kept("created_at").unwrap_or_else(|| super::store::ts(now));
            let create_source = kept("create_source")
                .filter(|s| Source::parse(s).is_some())
                .unwrap_or_else(|| by.as_str().to_string());
            out.push(
                json!({"phone_number_id": id, "phone_number": num, "kind": kind,
                "created_at": created, "updated_at": super::store::ts(now),
                "create_source": create_source, "update_source": by.as_str()}),
            );
        }
        s.phone_numbers = Some(out);
    }
    if let Some(addrs) = check_array(body, "street_addresses", 3, errors) {
        let mut out = Vec::new();
        for a in addrs {
            let kind = a.member("kind").and_then(Value::as_str);
            let lens_ok = [
                ("street", 255),
                ("city", 50),
                ("state", 50),
                ("postal_code", 50),
                ("country", 50),
            ]
            .iter()
            .all(|(k, max)| {
                // A part may be left out or null: partial addresses are addresses.
                a.member(k).is_none_or(|v| {
                    v.is_null() || v.as_str().is_some_and(|x| x.chars().count() <= *max)
                })
            });
            match kind {
                Some(k) if ["home", "work", "other"].contains(&k) && lens_ok => {
                    let mut m = a.as_object().cloned().unwrap_or_default();
                    m.retain(|_, v| !v.is_null());
                    m.insert("street_address_id".into(), json!(new_id().to_string()));
                    m.insert("created_at".into(), json!(super::store::ts(now)));
                    m.insert("updated_at".into(), json!(super::store::ts(now)));
                    out.push(Value::Object(m));
                }
                None => {
                    errors.push("street_addresses.kind is missing".into());
                    break;
                }
                _ => {
                    errors.push("street_addresses does not have a valid value".into());
                    break;
                }
            }
        }
        s.street_addresses = Some(out);
    }
    if let Some(lists) = check_array(body, "list_memberships", 50, errors) {
        let mut ids = Vec::new();
        for l in lists {
            match l.as_str().and_then(|x| Uuid::parse_str(x).ok()) {
                Some(id) if sim.lists.get(&id).is_some_and(|l| l.deleted_at.is_none()) => {
                    if !ids.contains(&id) {
                        ids.push(id)
                    }
                }
                _ => {
                    errors.push(format!(
                        "list_memberships contains an id that is not a list in this account: {}",
                        l.as_str().unwrap_or("?")
                    ));
                    break;
                }
            }
        }
        s.list_memberships = Some(ids);
    }
    if let Some(tags) = check_array(body, "taggings", 50, errors) {
        let ids: Vec<String> = tags
            .iter()
            .filter_map(|t| t.as_str().map(String::from))
            .collect();
        super::tags::check_taggings(sim, &ids, errors);
        s.taggings = Some(ids);
    }
    if let Some(notes) = check_array(body, "notes", 150, errors) {
        let mut out = Vec::new();
        for n in notes {
            let content = n.member("content").and_then(Value::as_str).unwrap_or("");
            if content.chars().count() > 2000 {
                errors.push("notes.content exceeds the maximum length of 2000".into());
                break;
            }
            // A note sent back keeps its id and creation time.
            let id = n
                .member("note_id")
                .and_then(Value::as_str)
                .filter(|i| Uuid::parse_str(i).is_ok())
                .map(String::from)
                .unwrap_or_else(|| new_id().to_string());
            let created = n
                .member("created_at")
                .and_then(Value::as_str)
                .filter(|t| {
                    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                        .is_ok()
                })
                .map(String::from)
                .unwrap_or_else(|| super::store::ts(now));
            out.push(json!({"note_id": id, "content": content, "created_at": created}));
        }
        // Newest first, as the vendor lists them (RFC 3339 UTC text sorts by time).
        out.sort_by(|a, b| {
            b["created_at"]
                .as_str()
                .unwrap_or("")
                .cmp(a["created_at"].as_str().unwrap_or(""))
        });
        s.notes = Some(out);
    }
    match body.member("sms_channel") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => match sms_channel(m, now, by) {
            Ok(v) => s.sms_channel = Some(v),
            Err(e) => errors.push(e),
        },
        Some(_) => errors.push("sms_channel does not have a valid value".into()),
    }
    s
}

/// An `sms_channel` in the vendor's resource shape: `sms_channel_id`, `sms_address`,
/// `dial_code`, `country_code`, sources, and `sms_channel_consents` with their dates. The contact
/// still needs an email: SMS-only contacts are not simulated.
fn sms_channel(m: &Map<String, Value>, now: i64, by: Source) -> Result<Value, String> {
    const KNOWN: [&str; 8] = [
        "full_sms_address",
        "sms_channel_id",
        "sms_address",
        "dial_code",
        "country_code",
        "update_source",
        "create_source",
        "sms_channel_consents",
    ];
    if let Some(k) = m.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(format!("sms_channel.{k} is not a field of sms_channel"));
    }
    let text = |k: &str| m.member(k).and_then(Value::as_str).map(String::from);
    // The input shape gives `full_sms_address` (dial code and number); the resource splits it.
    let (dial, address) = match (text("full_sms_address"), text("sms_address")) {
        (Some(full), _) => {
            let digits: String = full.chars().filter(char::is_ascii_digit).collect();
            if !(7..=15).contains(&digits.len()) {
                return Err("sms_channel.full_sms_address does not have a valid value".into());
            }
            let split = digits.len().saturating_sub(10);
            let dial = if split == 0 {
                "1".to_string()
            } else {
                digits[..split].to_string()
            };
            (Some(dial), digits[split..].to_string())
        }
        (None, Some(a)) => (text("dial_code"), a),
        (None, None) => {
            return Err("sms_channel needs full_sms_address (or sms_address)".into());
        }
    };
    if address.chars().filter(char::is_ascii_digit).count() < 7 || address.len() > 25 {
        return Err("sms_channel.sms_address does not have a valid value".into());
    }
    let consents: Vec<Value> = match m.member("sms_channel_consents") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => a
            .iter()
            .map(|c| {
                let mut c = c.as_object().cloned().unwrap_or_default();
                c.entry("consent_type").or_insert(json!("promotional_sms"));
                c.entry("created_at")
                    .or_insert(json!(super::store::ts(now)));
                c.insert("updated_at".into(), json!(super::store::ts(now)));
                Value::Object(c)
            })
            .collect(),
        Some(_) => {
            return Err("sms_channel.sms_channel_consents does not have a valid value".into());
        }
    };
    Ok(json!({
        "sms_channel_id": text("sms_channel_id").unwrap_or_else(|| new_id().to_string()),
        "sms_address": address,
        "dial_code": dial.unwrap_or_else(|| "1".into()),
        "country_code": text("country_code").unwrap_or_else(|| "US".into()),
        "create_source": text("create_source").unwrap_or_else(|| by.as_str().to_string()),
        "update_source": by.as_str(),
        "sms_channel_consents": consents,
    }))
}

pub(super) fn apply_subresources(c: &mut Contact, s: SubResources, append: bool) {
    if let Some(l) = s.list_memberships {
        if append {
            for id in l {
                if !c.list_memberships.contains(&id) && c.list_memberships.len() < 50 {
                    c.list_memberships.push(id);
                }
            }
        } else {
            c.list_memberships = l;
        }
    }
    let any_extra = s.custom_fields.is_some()
        || s.phone_numbers.is_some()
        || s.street_addresses.is_some()
        || s.taggings.is_some()
        || s.notes.is_some()
        || s.sms_channel.is_some();
    if !any_extra {
        return;
    }
    let x = c.extras_mut();
    if let Some(cf) = s.custom_fields {
        if append {
            for f in cf {
                let id = f.member("custom_field_id").cloned();
                x.custom_fields
                    .retain(|e| e.member("custom_field_id") != id.as_ref());
                x.custom_fields.push(f);
            }
        } else {
            x.custom_fields = cf;
        }
    }
    if let Some(v) = s.phone_numbers {
        x.phone_numbers = v;
    }
    if let Some(v) = s.street_addresses {
        x.street_addresses = v;
    }
    if let Some(v) = s.taggings {
        x.taggings = v;
    }
    if let Some(v) = s.notes {
        x.notes = v;
    }
    if let Some(v) = s.sms_channel {
        x.sms_channel = Some(v);
    }
}

/// Validated core fields (`None` = omitted; `Some(None)` = null).
#[derive(Debug, Default)]
pub(super) struct Core<'a> {
    pub(super) email: Option<(String, Option<Permission>)>,
    pub(super) text: Vec<(&'static str, Option<Option<&'a str>>)>,
    pub(super) birthday: Option<(Option<u8>, Option<u8>)>,
    pub(super) anniversary: Option<Option<String>>,
}

pub(super) fn check_core<'a>(
    body: &'a (impl Member + ?Sized),
    email_max: usize,
    email_is_string: bool,
    errors: &mut Vec<String>,
) -> Core<'a> {
    let mut core = Core::default();
    match body.member("email_address") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if email_is_string => {
            if s.chars().count() > email_max {
                errors.push(format!(
                    "email_address exceeds the maximum length of {email_max}"
                ));
            } else if !valid_email(s) {
                errors.push("email_address does not have a valid value".into());
            } else {
                core.email = Some((s.clone(), None));
            }
        }
        Some(Value::Object(e)) if !email_is_string => {
            let addr = e.member("address").and_then(Value::as_str).unwrap_or("");
            let perm = match e.member("permission_to_send").and_then(Value::as_str) {
                Some(p) => match Permission::parse(p) {
                    Some(x) => Some(x),
                    None => {
                        errors.push(
                            "email_address.permission_to_send does not have a valid value".into(),
                        );
                        None
                    }
                },
                None => None,
            };
            if addr.is_empty() {
                errors.push("email_address.address is missing".into());
            } else if addr.chars().count() > email_max {
                errors.push(format!(
                    "email_address.address exceeds the maximum length of {email_max}"
                ));
            } else if !valid_email(addr) {
                errors.push("email_address.address does not have a valid value".into());
            } else {
                core.email = Some((addr.to_string(), perm));
            }
        }
        Some(_) => errors.push("email_address does not have a valid value".into()),
    }
    for (k, max) in TEXT_FIELDS {
        core.text.push((k, str_field(body, k, max, errors)));
    }
    let num = |k: &str, max: u64, errors: &mut Vec<String>| -> Option<Option<u8>> {
        match body.member(k) {
            None => None,
            Some(Value::Null) => Some(None),
            Some(v) => match v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            {
                Some(n) if (1..=max).contains(&n) => Some(Some(n as u8)),
                _ => {
                    errors.push(format!("{k} does not have a valid value"));
                    None
                }
            },
        }
    };
    let m = num("birthday_month", 12, errors);
    let d = num("birthday_day", 31, errors);
    match (m, d) {
        (None, None) => {}
        (Some(m), Some(d)) if m.is_some() == d.is_some() => core.birthday = Some((m, d)),
        _ => errors.push("birthday_month and birthday_day must be used together".into()),
    }
    match body.member("anniversary") {
        None => {}
        Some(Value::Null) => core.anniversary = Some(None),
        Some(Value::String(s)) if s.is_empty() => core.anniversary = Some(None),
        Some(Value::String(s)) => match parse_anniversary(s) {
            Some(a) => core.anniversary = Some(Some(a)),
            None => errors.push("anniversary does not have a valid value".into()),
        },
        Some(_) => errors.push("anniversary does not have a valid value".into()),
    }
    core
}

/// Changes an email's permission as the vendor does: opting out records who (`by`), when, and
/// stays; a contact who unsubscribed themselves is not opted back in by the account (only
/// `PUT /contacts/resubscribe/{id}`, with the contact's consent, does that) — guessed to be kept
/// quietly, as the reference says only that it "cannot" be done.
fn set_permission(e: &mut super::store::Email, p: Permission, by: Source, now: i64) {
    if e.permission == p {
        return;
    }
    let opts_in = matches!(
        p,
        Permission::Explicit | Permission::Implicit | Permission::PendingConfirmation
    );
    if e.permission == Permission::Unsubscribed
        && e.opt_out_source == Some(Source::Contact)
        && by == Source::Account
        && opts_in
    {
        return;
    }
    if p == Permission::Unsubscribed {
        e.opt_out_source = Some(by);
        e.opt_out_date = Some(now);
        e.resubscribe_sent = None;
    } else if opts_in {
        e.opt_out_source = None;
        e.opt_out_date = None;
        e.opt_out_reason = None;
        e.opt_in_source.get_or_insert(by);
        e.opt_in_date = Some(now);
    }
    e.permission = p;
}

/// Writes core fields; `overwrite` nulls omitted ones (PUT semantics).
pub(super) fn apply_core(
    sim: &mut Sim,
    id: Uuid,
    core: Core,
    overwrite: bool,
    now: i64,
    new_permission: Permission,
    opt_in: Source,
) {
    let c = sim.contacts.get_mut(&id).expect("caller checked");
    let old_email = c.email.as_ref().map(|e| e.address.clone());
    match core.email {
        Some((addr, perm)) => match &mut c.email {
            Some(e) if e.address.eq_ignore_ascii_case(&addr) => {
                e.address = addr;
                if let Some(p) = perm {
                    set_permission(e, p, opt_in, now);
                }
                e.updated_at = now;
            }
            slot => {
                let permission = perm.unwrap_or(new_permission);
                let opted_in = matches!(
                    permission,
                    Permission::Explicit | Permission::Implicit | Permission::PendingConfirmation
                );
                *slot = Some(Email {
                    opt_in_source: opted_in.then_some(opt_in),
                    opt_in_date: opted_in.then_some(now),
                    ..Email::new(addr, permission, now)
                });
            }
        },
        None if overwrite => c.email = None,
        None => {}
    }
    for (k, v) in core.text {
        let slot = match k {
            "first_name" => &mut c.first_name,
            "last_name" => &mut c.last_name,
            "job_title" => &mut c.job_title,
            _ => &mut c.company_name,
        };
        match v {
            Some(v) => *slot = v.map(String::from),
            None if overwrite => *slot = None,
            None => {}
        }
    }
    match core.birthday {
        Some((m, d)) => {
            c.birthday_month = m;
            c.birthday_day = d;
        }
        None if overwrite => {
            c.birthday_month = None;
            c.birthday_day = None;
        }
        None => {}
    }
    match core.anniversary {
        Some(a) => c.anniversary = a,
        None if overwrite => c.anniversary = None,
        None => {}
    }
    c.updated_at = now;
    let new_email = c.email.as_ref().map(|e| e.address.clone());
    if old_email != new_email {
        sim.set_email_index(id, old_email.as_deref(), new_email.as_deref());
    }
}

pub(super) fn source_field(
    body: &(impl Member + ?Sized),
    key: &str,
    errors: &mut Vec<String>,
) -> Option<Source> {
    match body.member(key) {
        None | Some(Value::Null) => {
            errors.push(format!(
                "{key} is missing, {key} does not have a valid value"
            ));
            None
        }
        Some(v) => match v.as_str().and_then(Source::parse) {
            Some(s) => Some(s),
            None => {
                errors.push(format!("{key} does not have a valid value"));
                None
            }
        },
    }
}
