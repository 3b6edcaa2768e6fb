//! The simulated account: contacts, lists, activities and the authorization server's grants.
//! One value, behind one lock, serialisable whole for `/__postie/state` export and import.

use std::collections::HashMap;

use super::table::Table;
use crate::mock::http::{JsonArray, JsonObject, Resp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

/// How a contact may be emailed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Opted in explicitly.
    Explicit,
    /// Implied (imported by the account).
    Implicit,
    /// Unknown.
    NotSet,
    /// Awaiting confirmed opt-in.
    PendingConfirmation,
    /// Temporarily held.
    TempHold,
    /// Opted out.
    Unsubscribed,
}

impl Permission {
    /// Parses the vendor's value.
    pub fn parse(s: &str) -> Option<Permission> {
        serde_json::from_value(Value::String(s.to_string())).ok()
    }
    /// The vendor's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Explicit => "explicit",
            Permission::Implicit => "implicit",
            Permission::NotSet => "not_set",
            Permission::PendingConfirmation => "pending_confirmation",
            Permission::TempHold => "temp_hold",
            Permission::Unsubscribed => "unsubscribed",
        }
    }

    /// How many there are.
    pub const COUNT: usize = 6;

    /// Its place among the [`Permission::COUNT`] (for counts kept per permission).
    pub fn index(self) -> usize {
        match self {
            Permission::Explicit => 0,
            Permission::Implicit => 1,
            Permission::NotSet => 2,
            Permission::PendingConfirmation => 3,
            Permission::TempHold => 4,
            Permission::Unsubscribed => 5,
        }
    }
}

/// A set of ids, hashed fast (the ids are the mock's own).
pub type IdSet = std::collections::HashSet<Uuid, foldhash::fast::RandomState>;

/// Who made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// The account owner.
    Account,
    /// The contact.
    Contact,
}

impl Source {
    /// Parses `Account` / `Contact`.
    pub fn parse(s: &str) -> Option<Source> {
        match s {
            "Account" => Some(Source::Account),
            "Contact" => Some(Source::Contact),
            _ => None,
        }
    }
    /// The vendor's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Account => "Account",
            Source::Contact => "Contact",
        }
    }
}

/// A contact's email channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Email {
    /// The address (unique per account, case-insensitively).
    pub address: String,
    /// Permission.
    pub permission: Permission,
    /// Created (ms of the mock clock).
    pub created_at: i64,
    /// Updated.
    pub updated_at: i64,
    /// Who opted in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_in_source: Option<Source>,
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_in_date: Option<i64>,
    /// Who opted out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_out_source: Option<Source>,
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_out_date: Option<i64>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_out_reason: Option<String>,
    /// When a resubscribe email was sent (once per opt-out; the contact confirms it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resubscribe_sent: Option<i64>,
}

impl Email {
    /// An address with its permission, created and updated at `now`, not yet opted in or out.
    pub fn new(address: impl Into<String>, permission: Permission, now: i64) -> Email {
        Email {
            address: address.into(),
            permission,
            created_at: now,
            updated_at: now,
            opt_in_source: None,
            opt_in_date: None,
            opt_out_source: None,
            opt_out_date: None,
            opt_out_reason: None,
            resubscribe_sent: None,
        }
    }
}

/// Sub-resources most contacts do not have, boxed to keep the common contact small.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Extras {
    /// `{custom_field_id, value}`.
    #[serde(default)]
    pub custom_fields: Vec<Value>,
    /// `{phone_number_id, phone_number, kind, ...}`.
    #[serde(default)]
    pub phone_numbers: Vec<Value>,
    /// `{street_address_id, kind, street, ...}`.
    #[serde(default)]
    pub street_addresses: Vec<Value>,
    /// Tag ids.
    #[serde(default)]
    pub taggings: Vec<String>,
    /// `{note_id, content, created_at}`.
    #[serde(default)]
    pub notes: Vec<Value>,
    /// SMS channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_channel: Option<Value>,
}

/// A contact.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Contact {
    /// Id.
    pub id: Uuid,
    /// Email channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    /// Core fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Core fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Core fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    /// Core fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    /// 1–12.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthday_month: Option<u8>,
    /// 1–31.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthday_day: Option<u8>,
    /// `YYYY-MM-DD` as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anniversary: Option<String>,
    /// Who created it.
    pub create_source: Source,
    /// Who last updated it.
    pub update_source: Source,
    /// Created (ms).
    pub created_at: i64,
    /// Updated (ms).
    pub updated_at: i64,
    /// Soft-deleted (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<i64>,
    /// Lists.
    #[serde(default)]
    pub list_memberships: Vec<Uuid>,
    /// Rare sub-resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extras: Option<Box<Extras>>,
}

impl Contact {
    /// A new, empty contact.
    pub fn new(id: Uuid, now: i64, source: Source) -> Contact {
        Contact {
            id,
            email: None,
            first_name: None,
            last_name: None,
            job_title: None,
            company_name: None,
            birthday_month: None,
            birthday_day: None,
            anniversary: None,
            create_source: source,
            update_source: source,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            list_memberships: Vec::new(),
            extras: None,
        }
    }

    /// Mutable extras, created on demand.
    pub fn extras_mut(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Default::default)
    }

    /// Whether the contact is active (not deleted, not unsubscribed).
    pub fn is_active(&self) -> bool {
        self.deleted_at.is_none()
            && self
                .email
                .as_ref()
                .is_none_or(|e| e.permission != Permission::Unsubscribed)
    }
}

/// Writes a contact as the journal and snapshots store it: its fields in declaration order, as
/// a JSON array (no names to write or to match when it is read: a third fewer bytes, and faster
/// to parse). The derived `Deserialize` reads it, and the older object form too. Written by
/// hand rather than through serde, with strings escaped by [`crate::mock::http::write_str`]:
/// serde's way was 2,800 of a `sign_up_form`'s 36,000 instructions. The contact is destructured
/// without `..`, so a field added to it and not written here is a compile error.
pub fn write_stored(c: &Contact, out: &mut Vec<u8>) {
    let Contact {
        id,
        email,
        first_name,
        last_name,
        job_title,
        company_name,
        birthday_month,
        birthday_day,
        anniversary,
        create_source,
        update_source,
        created_at,
        updated_at,
        deleted_at,
        list_memberships,
        extras,
    } = c;
    let mut a = JsonArray::open(out);
    a.uuid(id);
    match email {
        Some(e) => write_stored_email(e, a.element()),
        None => a.null(),
    }
    for text in [first_name, last_name, job_title, company_name] {
        a.opt_str(text.as_deref());
    }
    a.opt_int(*birthday_month);
    a.opt_int(*birthday_day);
    a.opt_str(anniversary.as_deref());
    a.plain(create_source.as_str());
    a.plain(update_source.as_str());
    a.int(*created_at);
    a.int(*updated_at);
    a.opt_int(*deleted_at);
    let mut lists = JsonArray::open(a.element());
    for l in list_memberships {
        lists.uuid(l);
    }
    lists.close();
    match extras {
        Some(x) => a.value(x),
        None => a.null(),
    }
    a.close();
}

/// A contact's journal or snapshot entry: `["contacts", id, contact]`, the contact `null` when
/// it was removed.
fn write_contact_entry(id: &Uuid, c: Option<&Contact>, out: &mut Vec<u8>) {
    let mut a = JsonArray::open(out);
    a.plain("contacts");
    a.uuid(id);
    match c {
        Some(c) => write_stored(c, a.element()),
        None => a.null(),
    }
    a.close();
}

/// A contact's email channel as stored: positional, like [`write_stored`].
fn write_stored_email(e: &Email, out: &mut Vec<u8>) {
    let Email {
        address,
        permission,
        created_at,
        updated_at,
        opt_in_source,
        opt_in_date,
        opt_out_source,
        opt_out_date,
        opt_out_reason,
        resubscribe_sent,
    } = e;
    let mut a = JsonArray::open(out);
    a.str(address);
    a.plain(permission.as_str());
    a.int(*created_at);
    a.int(*updated_at);
    a.opt_str(opt_in_source.map(Source::as_str));
    a.opt_int(*opt_in_date);
    a.opt_str(opt_out_source.map(Source::as_str));
    a.opt_int(*opt_out_date);
    a.opt_str(opt_out_reason.as_deref());
    a.opt_int(*resubscribe_sent);
    a.close();
}

/// Which sub-resources a response includes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Include {
    /// custom_fields.
    pub custom_fields: bool,
    /// list_memberships.
    pub list_memberships: bool,
    /// phone_numbers.
    pub phone_numbers: bool,
    /// street_addresses.
    pub street_addresses: bool,
    /// taggings.
    pub taggings: bool,
    /// notes.
    pub notes: bool,
    /// sms_channel.
    pub sms_channel: bool,
}

impl Include {
    /// Everything (create/update responses).
    pub fn all() -> Include {
        Include {
            custom_fields: true,
            list_memberships: true,
            phone_numbers: true,
            street_addresses: true,
            taggings: true,
            notes: true,
            sms_channel: true,
        }
    }

    /// Parses `include=a,b`; an unknown name is a validation message.
    pub fn parse(s: Option<&str>) -> Result<Include, String> {
        let mut inc = Include::default();
        for part in s
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            match part {
                "custom_fields" => inc.custom_fields = true,
                "list_memberships" => inc.list_memberships = true,
                "phone_numbers" => inc.phone_numbers = true,
                "street_addresses" => inc.street_addresses = true,
                "taggings" => inc.taggings = true,
                "notes" => inc.notes = true,
                "sms_channel" => inc.sms_channel = true,
                _ => return Err("include does not have a valid value".into()),
            }
        }
        Ok(inc)
    }
}

/// ISO-8601 UTC date-time of a mock-clock millisecond.
pub fn ts(ms: i64) -> String {
    crate::util::rfc3339(ms.div_euclid(1000))
}

/// [`ts`] as a serialised value, formatted without allocating (a returned contact has several).
pub struct Ts(pub i64);

impl Serialize for Ts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match crate::util::Rfc3339::of(self.0.div_euclid(1000)) {
            Some(t) => t.serialize(s),
            None => s.serialize_str(&ts(self.0)),
        }
    }
}

/// ISO date of a mock-clock millisecond (`deleted_at` is a date).
pub fn date(ms: i64) -> String {
    ts(ms)[..10].to_string()
}

/// A contact as the API shows it, written straight to JSON: no intermediate map, member names
/// written as they are (the hot path of `GET /v3/contacts/{id}` and of every page of contacts).
pub struct ContactView<'a>(pub &'a Contact, pub Include);

impl ContactView<'_> {
    /// Writes the contact as a JSON object at the end of `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let (c, inc) = (self.0, self.1);
        let mut m = JsonObject::open(out);
        let mut id = Uuid::encode_buffer();
        m.plain("contact_id", c.id.hyphenated().encode_lower(&mut id));
        if let Some(e) = &c.email {
            write_email(e, m.key("email_address"));
        }
        for (k, v) in [
            ("first_name", &c.first_name),
            ("last_name", &c.last_name),
            ("job_title", &c.job_title),
            ("company_name", &c.company_name),
        ] {
            if let Some(v) = v {
                m.str(k, v);
            }
        }
        if let Some(v) = c.birthday_month {
            m.value("birthday_month", &v);
        }
        if let Some(v) = c.birthday_day {
            m.value("birthday_day", &v);
        }
        if let Some(v) = &c.anniversary {
            m.str("anniversary", v);
        }
        m.plain("create_source", c.create_source.as_str());
        m.plain("update_source", c.update_source.as_str());
        stamp(&mut m, "created_at", c.created_at);
        stamp(&mut m, "updated_at", c.updated_at);
        if let Some(d) = c.deleted_at {
            m.str("deleted_at", &date(d));
        }
        let empty = Extras::default();
        let x = c.extras.as_deref().unwrap_or(&empty);
        if inc.custom_fields {
            m.value("custom_fields", &x.custom_fields);
        }
        if inc.list_memberships {
            m.value("list_memberships", &c.list_memberships);
        }
        if inc.phone_numbers {
            m.value("phone_numbers", &x.phone_numbers);
        }
        if inc.street_addresses {
            m.value("street_addresses", &x.street_addresses);
        }
        if inc.taggings {
            m.value("taggings", &x.taggings);
        }
        if inc.notes {
            m.value("notes", &x.notes);
        }
        if inc.sms_channel
            && let Some(v) = &x.sms_channel
        {
            m.value("sms_channel", v);
        }
        m.close();
    }

    /// The contact alone as a response body.
    pub fn response(&self, status: u16) -> Resp {
        // Room for a contact at once.
        let mut body = Vec::with_capacity(1024);
        self.write(&mut body);
        Resp::json_bytes(status, body)
    }
}

/// A contact's email channel as the API shows it.
fn write_email(e: &Email, out: &mut Vec<u8>) {
    let mut m = JsonObject::open(out);
    m.str("address", &e.address);
    m.plain("permission_to_send", e.permission.as_str());
    stamp(&mut m, "created_at", e.created_at);
    stamp(&mut m, "updated_at", e.updated_at);
    if let Some(src) = e.opt_in_source {
        m.plain("opt_in_source", src.as_str());
    }
    if let Some(d) = e.opt_in_date {
        stamp(&mut m, "opt_in_date", d);
    }
    if let Some(src) = e.opt_out_source {
        m.plain("opt_out_source", src.as_str());
    }
    if let Some(d) = e.opt_out_date {
        stamp(&mut m, "opt_out_date", d);
    }
    if let Some(r) = &e.opt_out_reason {
        m.str("opt_out_reason", r);
    }
    let confirm = if e.permission == Permission::PendingConfirmation {
        "pending"
    } else {
        "off"
    };
    m.plain("confirm_status", confirm);
    m.close();
}

/// A timestamp member ([`ts`]), formatted on the stack. A contact's are mostly a few seconds
/// (created, updated, opted in), and so are the answers that follow one another, so the last
/// eight seconds this thread formatted are kept, any second in any slot. Slots picked by a
/// second's low bits let two seconds that share them (a contact's created and updated, one time
/// in eight) push each other out on every GET, which formatted them all again (1,000
/// instructions a GET at 1,000,000 contacts).
fn stamp(m: &mut JsonObject<'_>, name: &'static str, ms: i64) {
    use crate::util::Rfc3339;
    use std::cell::Cell;
    struct Kept {
        // No second is i64::MIN: ms / 1000 is not.
        seconds: [Cell<i64>; 8],
        texts: [Cell<Rfc3339>; 8],
        // The slot the next second formatted replaces, in turn.
        next: Cell<usize>,
    }
    thread_local! {
        static KEPT: Kept = const {
            Kept {
                seconds: [const { Cell::new(i64::MIN) }; 8],
                texts: [const { Cell::new(Rfc3339::EPOCH) }; 8],
                next: Cell::new(0),
            }
        };
    }
    let second = ms.div_euclid(1000);
    let text = KEPT.with(|kept| {
        if let Some(i) = kept.seconds.iter().position(|s| s.get() == second) {
            return Some(kept.texts[i].get());
        }
        let t = Rfc3339::of(second)?;
        let i = kept.next.get();
        kept.seconds[i].set(second);
        kept.texts[i].set(t);
        kept.next.set((i + 1) % 8);
        Some(t)
    });
    match text {
        Some(t) => m.plain_bytes(name, t.as_bytes()),
        None => m.str(name, &ts(ms)),
    }
}

/// A contact list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContactList {
    /// Id.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Favourite.
    pub favorite: bool,
    /// Created (ms).
    pub created_at: i64,
    /// Updated (ms).
    pub updated_at: i64,
    /// Deleted (ms).
    pub deleted_at: Option<i64>,
}

impl ContactList {
    /// A list made at `now`, with no description, not a favourite.
    pub fn new(id: Uuid, name: impl Into<String>, now: i64) -> ContactList {
        ContactList {
            id,
            name: name.into(),
            description: None,
            favorite: false,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        }
    }
}

/// A contact custom field (`/contact_custom_fields`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomField {
    /// Id.
    pub id: Uuid,
    /// Label (≤50, unique).
    pub label: String,
    /// Name derived from the label (`Vehicle_make_and_model_year`).
    pub name: String,
    /// `string`, `date`, ...
    pub kind: String,
    /// Choices of a select field, as given.
    #[serde(default)]
    pub choices: Vec<Value>,
    /// Version (1, then +1 at each update).
    pub version: u32,
    /// Created (ms).
    pub created_at: i64,
    /// Updated (ms).
    pub updated_at: i64,
}

/// The custom field as the API shows it.
pub fn custom_field_json(f: &CustomField) -> Value {
    let mut v = json!({
        "custom_field_id": f.id.to_string(),
        "label": f.label,
        "name": f.name,
        "type": f.kind,
        "version": f.version,
        "created_at": ts(f.created_at),
        "updated_at": ts(f.updated_at),
    });
    if !f.choices.is_empty() {
        v["choices"] = Value::Array(f.choices.clone());
    }
    v
}

/// A contact tag (`/contact_tags`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tag {
    /// Id.
    pub id: Uuid,
    /// Name (≤255, unique).
    pub name: String,
    /// Where it came from, as given.
    pub tag_source: Option<String>,
    /// Created (ms).
    pub created_at: i64,
    /// Updated (ms).
    pub updated_at: i64,
}

/// The tag as the API shows it (`contacts_count` when asked for).
pub fn tag_json(t: &Tag, contacts_count: Option<usize>) -> Value {
    let mut v = json!({
        "tag_id": t.id.to_string(),
        "name": t.name,
        "created_at": ts(t.created_at),
        "updated_at": ts(t.updated_at),
    });
    if let Some(src) = &t.tag_source {
        v["tag_source"] = json!(src);
    }
    if let Some(n) = contacts_count {
        v["contacts_count"] = json!(n);
    }
    v
}

/// A segment (`/segments`): a name and the vendor's criteria (escaped JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Segment {
    /// Id (an integer, as the vendor's).
    pub id: u64,
    /// Name (unique).
    pub name: String,
    /// The criteria as given.
    pub criteria: String,
    /// Created (ms).
    pub created_at: i64,
    /// Edited (ms).
    pub edited_at: i64,
}

/// An email campaign.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Campaign {
    /// Id.
    pub id: Uuid,
    /// Name (unique among campaigns not removed).
    pub name: String,
    /// `Draft`, `Scheduled`, `Done`, `Removed`.
    pub status: String,
    /// Created (ms).
    pub created_at: i64,
    /// Updated (ms).
    pub updated_at: i64,
    /// Its `primary_email` activity.
    pub primary: Uuid,
    /// Its `permalink` activity.
    pub permalink: Uuid,
}

/// One send of a campaign activity.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SendRecord {
    /// 1, 2, ...
    pub send_id: u32,
    /// Lists sent to.
    pub contact_list_ids: Vec<Uuid>,
    /// Segments sent to.
    pub segment_ids: Vec<u64>,
    /// Contacts it went to.
    pub count: u64,
    /// When (ms).
    pub send_time: i64,
}

/// A campaign activity (`primary_email` or `permalink`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CampaignActivity {
    /// Id.
    pub id: Uuid,
    /// Its campaign.
    pub campaign_id: Uuid,
    /// `primary_email` or `permalink`.
    pub role: String,
    /// Recipients: lists...
    pub contact_list_ids: Vec<Uuid>,
    /// ...or a segment.
    pub segment_ids: Vec<u64>,
    /// 1–5 (5: custom code).
    pub format_type: u8,
    /// From.
    pub from_email: String,
    /// From name.
    pub from_name: String,
    /// Reply-to.
    pub reply_to_email: String,
    /// Subject.
    pub subject: String,
    /// HTML.
    pub html_content: String,
    /// Preheader.
    pub preheader: Option<String>,
    /// Sends so far.
    pub sends: Vec<SendRecord>,
}

/// The list as the API shows it.
pub fn list_json(l: &ContactList, membership_count: Option<usize>) -> Value {
    let mut v = json!({
        "list_id": l.id.to_string(),
        "name": l.name,
        "description": l.description.clone().unwrap_or_default(),
        "favorite": l.favorite,
        "created_at": ts(l.created_at),
        "updated_at": ts(l.updated_at),
    });
    if let Some(d) = l.deleted_at {
        v["deleted_at"] = json!(ts(d));
    }
    if let Some(n) = membership_count {
        v["membership_count"] = json!(n);
    }
    v
}

/// An authorization code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthCode {
    /// Client.
    pub client_id: String,
    /// Exact redirect URI used.
    pub redirect_uri: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// PKCE challenge.
    pub code_challenge: Option<String>,
    /// Expiry (ms).
    pub expires_at: i64,
    /// Already exchanged.
    pub used: bool,
}

/// A refresh token grant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshGrant {
    /// Client.
    pub client_id: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Last use or issue (ms), for the idle expiry.
    pub last_used: i64,
    /// Replaced by rotation or a newer token set.
    pub revoked: bool,
}

/// A device authorization.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceGrant {
    /// Client.
    pub client_id: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Code the user types.
    pub user_code: String,
    /// Expiry (ms).
    pub expires_at: i64,
    /// Poll interval (s).
    pub interval: u64,
    /// Last poll (ms).
    pub last_poll: Option<i64>,
    /// `pending`, `approved`, `denied`, `consumed`.
    pub status: String,
}

/// A consent page waiting for Allow/Deny.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingConsent {
    /// Client.
    pub client_id: String,
    /// Redirect URI.
    pub redirect_uri: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// State to echo.
    pub state: String,
    /// PKCE challenge.
    pub code_challenge: Option<String>,
    /// Expiry (ms).
    pub expires_at: i64,
}

/// Per-client rate windows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RateWindow {
    /// Current second (mock clock).
    pub second: i64,
    /// Requests in it.
    pub in_second: u32,
    /// Current UTC day.
    pub day: i64,
    /// Requests in it.
    pub in_day: u32,
}

/// The whole simulation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sim {
    /// Mock clock offset from real time (ms).
    pub clock_offset_ms: i64,
    /// Contacts in creation order.
    pub contacts: Table<Uuid, Box<Contact>, ContactCounts>,
    /// Email (any case) → contact.
    #[serde(skip)]
    pub by_email: EmailIndex,
    /// Lists in creation order.
    pub lists: Table<Uuid, ContactList>,
    /// Activities in creation order.
    pub activities: Table<Uuid, super::activities::Activity, super::activities::Unapplied>,
    /// Custom fields in creation order.
    #[serde(default)]
    pub custom_fields: Table<Uuid, CustomField>,
    /// Tags in creation order.
    #[serde(default)]
    pub tags: Table<Uuid, Tag>,
    /// Segments by id.
    #[serde(default)]
    pub segments: Table<u64, Segment>,
    /// The account: `summary`, `physical_address`, `email:NNNNNN` (as the API shows them).
    #[serde(default)]
    pub account: Table<String, Value>,
    /// Email campaigns.
    #[serde(default)]
    pub campaigns: Table<Uuid, Campaign>,
    /// Their activities.
    #[serde(default)]
    pub campaign_activities: Table<Uuid, CampaignActivity>,
    /// Partner webhook subscriptions: topic id → hook URI.
    #[serde(default)]
    pub webhooks: Table<u64, Value>,
    /// Campaign activity id → when it is scheduled to send (ms).
    #[serde(default)]
    pub schedules: Table<String, i64>,
    /// Authorization codes.
    pub codes: Table<String, AuthCode>,
    /// Refresh tokens.
    pub refresh_tokens: Table<String, RefreshGrant>,
    /// Device codes.
    pub device_codes: Table<String, DeviceGrant>,
    /// Consent pages awaiting a decision.
    pub consents: Table<String, PendingConsent>,
    /// Rate windows per client (not journaled: they describe the last second and day).
    pub rates: HashMap<String, RateWindow>,
    /// The clock offset when changes were last taken (a change of it is journaled too).
    #[serde(skip)]
    pub journaled_offset_ms: i64,
    /// The bulk activity being applied a slice at a time (in memory only: after a restart it
    /// starts over, see [`super::applying`]).
    #[serde(skip)]
    pub applying: Option<Box<super::applying::Applying>>,
}

/// Calls `$m!(field, "name")` for every journaled table of [`Sim`].
macro_rules! for_each_table {
    ($m:ident) => {
        $m!(contacts, "contacts");
        for_each_other_table!($m);
    };
}

/// Calls `$m!(field, "name")` for every journaled table but `contacts`.
macro_rules! for_each_other_table {
    ($m:ident) => {
        $m!(lists, "lists");
        $m!(activities, "activities");
        $m!(custom_fields, "custom_fields");
        $m!(tags, "tags");
        $m!(schedules, "schedules");
        $m!(segments, "segments");
        $m!(account, "account");
        $m!(webhooks, "webhooks");
        $m!(campaigns, "campaigns");
        $m!(campaign_activities, "campaign_activities");
        $m!(codes, "codes");
        $m!(refresh_tokens, "refresh_tokens");
        $m!(device_codes, "device_codes");
        $m!(consents, "consents");
    };
}

/// A snapshot being loaded ([`Sim::load_parsed`]): where the contacts appended unindexed begin,
/// and their addresses' hashes, to index at the end.
#[derive(Default)]
pub struct Loading {
    from: Option<usize>,
    emails: Vec<(u64, Uuid)>,
}

/// A change read back, typed by its table (transient: applied as soon as it is parsed). Values
/// of the rarer tables are boxed, so a contact's change stays small to move.
#[allow(non_camel_case_types, missing_docs)]
pub enum ParsedChange {
    /// With the hash of the contact's email address ([`email_hash`]), taken while it is at hand.
    contacts(Uuid, Option<Box<Contact>>, Option<u64>),
    lists(Uuid, Option<Box<ContactList>>),
    activities(Uuid, Option<Box<super::activities::Activity>>),
    custom_fields(Uuid, Option<Box<CustomField>>),
    tags(Uuid, Option<Box<Tag>>),
    schedules(String, Option<Box<i64>>),
    segments(u64, Option<Box<Segment>>),
    account(String, Option<Box<Value>>),
    webhooks(u64, Option<Box<Value>>),
    campaigns(Uuid, Option<Box<Campaign>>),
    campaign_activities(Uuid, Option<Box<CampaignActivity>>),
    codes(String, Option<Box<AuthCode>>),
    refresh_tokens(String, Option<Box<RefreshGrant>>),
    device_codes(String, Option<Box<DeviceGrant>>),
    consents(String, Option<Box<PendingConsent>>),
}

/// Reads `[table, key, value or null]` into the table's types.
struct ChangeVisitor;

impl<'de> Deserialize<'de> for ParsedChange {
    /// `[table, key, value or null]`, as [`Sim::parse_change`] reads it, inside a larger
    /// document (a journal record's list of changes).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ParsedChange, D::Error> {
        d.deserialize_seq(ChangeVisitor)
    }
}

/// The key and the value after a change's table name, and nothing after them.
fn key_value<'de, A, K, V>(seq: &mut A, visitor: &ChangeVisitor) -> Result<(K, V), A::Error>
where
    A: serde::de::SeqAccess<'de>,
    K: Deserialize<'de>,
    V: Deserialize<'de>,
{
    use serde::de::Error;
    let k = seq
        .next_element()?
        .ok_or_else(|| A::Error::invalid_length(1, visitor))?;
    let v = seq
        .next_element()?
        .ok_or_else(|| A::Error::invalid_length(2, visitor))?;
    if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
        return Err(A::Error::invalid_length(4, visitor));
    }
    Ok((k, v))
}

impl<'de> serde::de::Visitor<'de> for ChangeVisitor {
    type Value = ParsedChange;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("[table, key, value or null]")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ParsedChange, A::Error> {
        use serde::de::Error;
        let table: &str = seq
            .next_element()?
            .ok_or_else(|| A::Error::invalid_length(0, &self))?;
        macro_rules! parse {
            ($f:ident, $n:literal) => {
                if table == $n {
                    let (k, v) = key_value(&mut seq, &self)?;
                    return Ok(ParsedChange::$f(k, v));
                }
            };
        }
        if table == "contacts" {
            let (k, v): (Uuid, Option<Box<Contact>>) = key_value(&mut seq, &self)?;
            let hash = v
                .as_ref()
                .and_then(|c| c.email.as_ref())
                .map(|e| email_hash(&e.address));
            return Ok(ParsedChange::contacts(k, v, hash));
        }
        for_each_other_table!(parse);
        Err(A::Error::custom(format!("unknown table `{table}`")))
    }
}

impl Sim {
    /// Whether anything changed since the last [`Sim::take_changes`].
    pub fn has_changes(&self) -> bool {
        let mut any = self.clock_offset_ms != self.journaled_offset_ms;
        macro_rules! check {
            ($f:ident, $n:literal) => {
                any |= self.$f.has_changes();
            };
        }
        for_each_table!(check);
        any
    }

    /// Writes what changed since the last call as journal entries (one JSON array a change,
    /// comma-separated) and the clock offset if it moved; forgets the changes.
    pub fn take_changes(&mut self, out: &mut Vec<u8>) -> Option<i64> {
        let mut first = true;
        let mut sep = |out: &mut Vec<u8>| {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
        };
        self.contacts.drain_changes(|k, v| {
            sep(out);
            write_contact_entry(k, v.map(|c| &**c), out);
        });
        macro_rules! take {
            ($f:ident, $n:literal) => {
                self.$f.drain_changes(|k, v| {
                    sep(out);
                    let _ = serde_json::to_writer(&mut *out, &($n, k, v));
                });
            };
        }
        for_each_other_table!(take);
        let clock =
            (self.clock_offset_ms != self.journaled_offset_ms).then_some(self.clock_offset_ms);
        self.journaled_offset_ms = self.clock_offset_ms;
        clock
    }

    /// How many entries [`Sim::write_entries`] writes.
    pub fn entry_count(&self) -> u64 {
        let mut n = 0u64;
        macro_rules! count {
            ($f:ident, $n:literal) => {
                n += self.$f.len() as u64;
            };
        }
        for_each_table!(count);
        n
    }

    /// Writes every entry as one snapshot line each (`[table, key, value]`).
    pub fn write_entries(&self, out: &mut dyn std::io::Write) -> std::io::Result<u64> {
        let mut n = 0u64;
        let mut line = Vec::with_capacity(512);
        for (k, v) in self.contacts.iter() {
            line.clear();
            write_contact_entry(k, Some(v), &mut line);
            line.push(b'\n');
            out.write_all(&line)?;
            n += 1;
        }
        macro_rules! dump {
            ($f:ident, $n:literal) => {
                for (k, v) in self.$f.iter() {
                    serde_json::to_writer(&mut *out, &($n, k, Some(v)))?;
                    out.write_all(b"\n")?;
                    n += 1;
                }
            };
        }
        for_each_other_table!(dump);
        Ok(n)
    }

    /// Applies one journaled or snapshot change (`[table, key, value or null]`).
    pub fn apply_change(&mut self, text: &str) -> Result<(), String> {
        let parsed = Sim::parse_change(text)?;
        self.apply_parsed(parsed);
        Ok(())
    }

    /// Parses a change without applying it (so many can be parsed on several threads), in one
    /// pass: the table's name says what its key and value are.
    pub fn parse_change(text: &str) -> Result<ParsedChange, String> {
        use serde::Deserializer as _;
        let mut de = serde_json::Deserializer::from_str(text);
        let change = (&mut de)
            .deserialize_seq(ChangeVisitor)
            .map_err(|e| e.to_string())?;
        de.end().map_err(|e| e.to_string())?;
        Ok(change)
    }

    /// Applies a parsed change.
    pub fn apply_parsed(&mut self, change: ParsedChange) {
        // Contacts keep the email index current as they are loaded: it is built while each
        // contact is fresh in the cache, not in a pass over a million of them afterwards.
        if let ParsedChange::contacts(id, v, hash) = change {
            let Sim {
                contacts, by_email, ..
            } = self;
            // One lookup: the contact it replaces comes back, and the index forgets that
            // contact's address (an entry is this id under that address's hash, whatever the
            // table holds now).
            if let Some(e) = contacts.apply(id, v).and_then(|old| old.email) {
                by_email.remove(&e.address, id);
            }
            if let Some(h) = hash {
                by_email.insert_hashed(contacts, h, id);
            }
            return;
        }
        macro_rules! apply {
            ($f:ident, $n:literal) => {
                if let ParsedChange::$f(k, v) = change {
                    self.$f.apply(k, v.map(|b| *b));
                    return;
                }
            };
        }
        for_each_other_table!(apply);
    }

    /// [`Sim::apply_parsed`] for a snapshot's entries. A snapshot holds each contact once, so
    /// contacts are appended without a lookup, and indexed with their addresses by
    /// [`Sim::finish_load`] a shard at a time. In place order, each insert had missed the cache
    /// twice (a fifth of a million-contact restart's time on one core).
    pub fn load_parsed(&mut self, change: ParsedChange, loading: &mut Loading) -> Result<(), Uuid> {
        if let ParsedChange::contacts(id, Some(v), hash) = change {
            loading.from.get_or_insert(self.contacts.end());
            self.contacts.load_push(id, v);
            if let Some(h) = hash {
                loading.emails.push((h, id));
            }
            return Ok(());
        }
        // A contact removed (no snapshot writes one): what came before is indexed first.
        if matches!(change, ParsedChange::contacts(..)) {
            self.finish_load(loading)?;
        }
        self.apply_parsed(change);
        Ok(())
    }

    /// Indexes the contacts [`Sim::load_parsed`] appended, then their addresses; an error is
    /// a contact that came twice (the simulation is then not whole).
    pub fn finish_load(&mut self, loading: &mut Loading) -> Result<(), Uuid> {
        if let Some(from) = loading.from.take() {
            self.contacts.index_loaded(from)?;
        }
        let emails = std::mem::take(&mut loading.emails);
        let Sim {
            contacts, by_email, ..
        } = self;
        for (h, id) in super::ordered::in_shard_order(emails, |&(h, _)| h) {
            by_email.insert_hashed(contacts, h, id);
        }
        Ok(())
    }

    /// Forgets recorded changes (the whole simulation was just written as a snapshot).
    pub fn forget_changes(&mut self) {
        macro_rules! forget {
            ($f:ident, $n:literal) => {
                self.$f.forget_changes();
            };
        }
        for_each_table!(forget);
        self.journaled_offset_ms = self.clock_offset_ms;
    }
}

impl Sim {
    /// Rebuilds derived indexes after loading.
    pub fn reindex(&mut self) {
        let mut index = EmailIndex::with_capacity(self.contacts.len());
        for c in self.contacts.values() {
            if let Some(e) = &c.email {
                index.insert(&self.contacts, &e.address, c.id);
            }
        }
        self.by_email = index;
    }

    /// The contact with this email (any status).
    pub fn find_email(&self, email: &str) -> Option<Uuid> {
        self.by_email.get(&self.contacts, email)
    }

    /// Sets a contact's email, keeping the index right (call after the contact has it).
    pub fn set_email_index(&mut self, id: Uuid, old: Option<&str>, new: Option<&str>) {
        if let Some(o) = old {
            self.by_email.remove(o, id);
        }
        if let Some(n) = new {
            self.by_email.insert(&self.contacts, n, id);
        }
    }

    /// Contacts (not deleted) tagged with a tag.
    pub fn tagged_count(&self, tag: Uuid) -> usize {
        let t = tag.to_string();
        self.contacts.tally().tags.get(&t).copied().unwrap_or(0)
    }

    /// Members of a list (not deleted; only active ones if asked).
    pub fn membership_count(&self, list: Uuid, active_only: bool) -> usize {
        let n = self
            .contacts
            .tally()
            .lists
            .get(&list)
            .copied()
            .unwrap_or((0, 0));
        if active_only { n.1 } else { n.0 }
    }
}

/// Email address (compared without regard to ASCII case) → contact. It keeps only each
/// address's hash and the contact's id (24 bytes an entry; the address is read from the contact
/// when hashes match), so a lookup allocates nothing and growing it never rereads addresses. It is
/// [`Sharded`](super::ordered::Sharded): one insert grows at most 1/256 of it.
#[derive(Debug, Clone, Default)]
pub struct EmailIndex {
    table: super::ordered::Sharded<(u64, Uuid)>,
}

/// The hash of an email address without regard to ASCII case, lower-cased a piece at a time on
/// the stack. One seed per process, so threads loading a snapshot can hash for the index.
pub fn email_hash(email: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static SEED: std::sync::OnceLock<foldhash::fast::FixedState> = std::sync::OnceLock::new();
    let state = SEED.get_or_init(|| {
        foldhash::fast::FixedState::with_seed(uuid::Uuid::new_v4().as_u64_pair().0)
    });
    let mut h = state.build_hasher();
    let mut buf = [0u8; 64];
    for chunk in email.as_bytes().chunks(buf.len()) {
        let b = &mut buf[..chunk.len()];
        b.copy_from_slice(chunk);
        b.make_ascii_lowercase();
        h.write(b);
    }
    h.write_usize(email.len());
    h.finish()
}

type Contacts = Table<Uuid, Box<Contact>, ContactCounts>;

/// The contact counts the API answers (`include_count`, list membership counts, tag counts),
/// kept as contacts change (a [`Tally`](super::table::Tally) of the contact table), so a count
/// is read, not found by walking every contact under the lock: at a million contacts that walk
/// took 40–110 ms, and every write waited for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactCounts {
    /// Contacts not deleted.
    pub live: usize,
    /// Deleted contacts.
    pub deleted: usize,
    /// Active contacts ([`Contact::is_active`]).
    pub active: usize,
    /// Contacts not deleted, by their email's permission ([`Permission::index`]).
    pub permission: [usize; Permission::COUNT],
    /// Per list: members not deleted, and active members.
    pub lists: HashMap<Uuid, (usize, usize), foldhash::fast::RandomState>,
    /// Per tag (its id as lower-case text): contacts not deleted tagged with it.
    pub tags: HashMap<String, usize, foldhash::fast::RandomState>,
}

impl ContactCounts {
    /// How many contacts are on any of `lists` (none: every contact) with `status` (none: not
    /// deleted; `all`, `deleted`, `active` or a permission), when that is kept: by status alone,
    /// or one list's members (all or active). None: the contacts must be walked.
    pub fn matching(&self, lists: &[Uuid], status: Option<&str>) -> Option<usize> {
        match (lists, status) {
            ([], None) => Some(self.live),
            ([], Some("all")) => Some(self.live + self.deleted),
            ([], Some("deleted")) => Some(self.deleted),
            ([], Some("active")) => Some(self.active),
            ([], Some(p)) => Permission::parse(p).map(|p| self.permission[p.index()]),
            ([list], None) => Some(self.lists.get(list).map_or(0, |n| n.0)),
            ([list], Some("active")) => Some(self.lists.get(list).map_or(0, |n| n.1)),
            _ => None,
        }
    }
}

impl super::table::Tally<Box<Contact>> for ContactCounts {
    const ZONED: bool = true;
    /// The latest of the dates the API filters on "after" (`updated_after`, `created_after`,
    /// `optout_after`, a new subscriber's opt-in).
    fn latest(c: &Box<Contact>) -> i64 {
        let mut t = c.created_at.max(c.updated_at);
        if let Some(e) = &c.email {
            t = t.max(e.created_at).max(e.updated_at);
            t = t.max(e.opt_in_date.unwrap_or(i64::MIN));
            t = t.max(e.opt_out_date.unwrap_or(i64::MIN));
        }
        t
    }
    fn count(&mut self, c: &Box<Contact>, sign: isize) {
        fn add(n: &mut usize, sign: isize) {
            *n = n.wrapping_add_signed(sign);
        }
        /// Changes the count kept under `k`, forgetting it once it is back to nothing (so the
        /// tally equals a fresh count, which holds no zeros).
        fn bump<Q: std::hash::Hash + Eq, N: Default + PartialEq>(
            m: &mut HashMap<Q, N, foldhash::fast::RandomState>,
            k: Q,
            change: impl FnOnce(&mut N),
        ) {
            use std::collections::hash_map::Entry;
            let mut e = match m.entry(k) {
                Entry::Occupied(e) => e,
                Entry::Vacant(e) => e.insert_entry(N::default()),
            };
            change(e.get_mut());
            if *e.get() == N::default() {
                e.remove();
            }
        }
        if c.deleted_at.is_some() {
            add(&mut self.deleted, sign);
            return;
        }
        add(&mut self.live, sign);
        let active = c.is_active();
        if active {
            add(&mut self.active, sign);
        }
        if let Some(e) = &c.email {
            add(&mut self.permission[e.permission.index()], sign);
        }
        // A contact counts once per list and per tag, however often it names them.
        for (i, l) in c.list_memberships.iter().enumerate() {
            if c.list_memberships[..i].contains(l) {
                continue;
            }
            bump(&mut self.lists, *l, |n: &mut (usize, usize)| {
                add(&mut n.0, sign);
                if active {
                    add(&mut n.1, sign);
                }
            });
        }
        let tags = c.extras.iter().flat_map(|x| &x.taggings);
        for (i, t) in tags.clone().enumerate() {
            if tags.clone().take(i).any(|u| u.eq_ignore_ascii_case(t)) {
                continue;
            }
            bump(&mut self.tags, t.to_ascii_lowercase(), |n| add(n, sign));
        }
    }
}

impl EmailIndex {
    fn with_capacity(n: usize) -> EmailIndex {
        let mut index = EmailIndex::default();
        index.reserve(n);
        index
    }

    /// Room for about `n` addresses in all.
    pub fn reserve(&mut self, n: usize) {
        self.table.reserve(n, |&(h, _)| h as u32);
    }

    fn has(contacts: &Contacts, id: Uuid, email: &str) -> bool {
        contacts
            .get(&id)
            .and_then(|c| c.email.as_ref())
            .is_some_and(|e| e.address.eq_ignore_ascii_case(email))
    }

    /// The contact with this address.
    pub fn get(&self, contacts: &Contacts, email: &str) -> Option<Uuid> {
        let h = email_hash(email);
        self.table
            .find(h, |&(eh, id)| eh == h && Self::has(contacts, id, email))
            .map(|&(_, id)| id)
    }

    /// Points the address at `id` (which has it now), in place of any other contact.
    pub fn insert(&mut self, contacts: &Contacts, email: &str, id: Uuid) {
        self.insert_hashed(contacts, email_hash(email), id);
    }

    /// [`EmailIndex::insert`] with the address's [`email_hash`] (the address is read from the
    /// contact `id`, which has it now).
    pub fn insert_hashed(&mut self, contacts: &Contacts, h: u64, id: Uuid) {
        let same = |other: Uuid| {
            other == id || {
                let mine = contacts.get(&id).and_then(|c| c.email.as_ref());
                mine.is_some_and(|m| Self::has(contacts, other, &m.address))
            }
        };
        let (entry, _) = self.table.find_or_insert(
            h,
            |&(eh, other)| eh == h && same(other),
            || (h, id),
            |&(eh, _)| eh as u32,
        );
        entry.1 = id;
    }

    /// Forgets the address if it points at `id`.
    pub fn remove(&mut self, email: &str, id: Uuid) {
        let h = email_hash(email);
        self.table.remove(h, |&(eh, other)| eh == h && other == id);
    }

    /// How many addresses.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

/// A v1 (time-based) UUID, as Constant Contact's ids are.
pub fn new_id() -> Uuid {
    Uuid::now_v1(&[0xfa, 0x16, 0x3e, 0x5c, 0x9b, 0x01])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_email(sim: &mut Sim, address: &str) -> Uuid {
        let id = new_id();
        let mut c = Contact::new(id, 0, Source::Account);
        c.email = Some(Email::new(address, Permission::Implicit, 0));
        sim.contacts.insert(id, Box::new(c));
        sim.set_email_index(id, None, Some(address));
        id
    }

    /// The seconds kept on a thread change nothing written: seconds repeated, seconds that share
    /// their low bits, more seconds than are kept, and seconds RFC 3339 cannot write.
    #[test]
    fn a_stamp_is_its_timestamp_whatever_was_stamped_before() {
        let base = 1_795_895_151_000; // 2026-11-28T19:45:51Z
        let mut seconds: Vec<i64> = (0..20).map(|i| base + i * 8_000).collect();
        seconds.extend((0..20).map(|i| base + (i % 3) * 8_000 + 999));
        seconds.extend((0..30).map(|i| base - i * 86_400_000 * 400));
        seconds.extend([i64::MIN, i64::MAX, -62_167_219_200_001, base, i64::MIN]);
        for ms in seconds {
            let mut out = Vec::new();
            let mut m = JsonObject::open(&mut out);
            stamp(&mut m, "at", ms);
            m.close();
            let v: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["at"], ts(ms), "{ms}");
        }
    }

    #[test]
    fn a_contact_is_written_as_the_api_shows_it() {
        let id = Uuid::parse_str("3f2b8f9e-5a1c-11f1-8b25-fa163e5c9b01").unwrap();
        let list = Uuid::parse_str("07936f78-662a-11eb-af0a-fa163e56c9b0").unwrap();
        let second = 1_795_895_151_000; // 2026-11-28T19:45:51Z
        let mut c = Contact::new(id, second, Source::Contact);
        c.email = Some(Email {
            address: "ann@example.com".into(),
            permission: Permission::Unsubscribed,
            created_at: second,
            updated_at: second + 1_999,
            opt_in_source: Some(Source::Contact),
            opt_in_date: Some(second),
            opt_out_source: Some(Source::Account),
            opt_out_date: Some(second + 60_000),
            opt_out_reason: Some("said \"no\"\n\u{1}é".into()),
            resubscribe_sent: Some(second),
        });
        c.first_name = Some("Ann \\ \"A\"".into());
        c.last_name = Some("Ünal".into());
        c.job_title = Some("<b>".into());
        c.birthday_month = Some(12);
        c.birthday_day = Some(3);
        c.anniversary = Some("2020-01-02".into());
        c.deleted_at = Some(second);
        c.list_memberships = vec![list];
        c.extras = Some(Box::new(Extras {
            custom_fields: vec![json!({"custom_field_id": "f", "value": "v"})],
            taggings: vec!["t".into()],
            sms_channel: Some(json!({"sms_address": "+15555550100"})),
            ..Extras::default()
        }));
        let written = |inc: Include| {
            let mut out = b"[".to_vec();
            ContactView(&c, inc).write(&mut out);
            String::from_utf8(out).unwrap()
        };
        // Written by hand: the members in the API's order, escaped as JSON escapes them.
        let email = concat!(
            r#"{"address":"ann@example.com","permission_to_send":"unsubscribed","#,
            r#""created_at":"2026-11-28T19:45:51Z","updated_at":"2026-11-28T19:45:52Z","#,
            r#""opt_in_source":"Contact","opt_in_date":"2026-11-28T19:45:51Z","#,
            r#""opt_out_source":"Account","opt_out_date":"2026-11-28T19:46:51Z","#,
            r#""opt_out_reason":"said \"no\"\n\u0001é","confirm_status":"off"}"#
        );
        let core = format!(
            concat!(
                r#"[{{"contact_id":"3f2b8f9e-5a1c-11f1-8b25-fa163e5c9b01","email_address":{}"#,
                r#","first_name":"Ann \\ \"A\"","last_name":"Ünal","job_title":"<b>","#,
                r#""birthday_month":12,"birthday_day":3,"anniversary":"2020-01-02","#,
                r#""create_source":"Contact","update_source":"Contact","#,
                r#""created_at":"2026-11-28T19:45:51Z","updated_at":"2026-11-28T19:45:51Z","#,
                r#""deleted_at":"2026-11-28""#
            ),
            email
        );
        assert_eq!(written(Include::default()), format!("{core}}}"));
        let all = concat!(
            r#","custom_fields":[{"custom_field_id":"f","value":"v"}],"#,
            r#""list_memberships":["07936f78-662a-11eb-af0a-fa163e56c9b0"],"#,
            r#""phone_numbers":[],"street_addresses":[],"taggings":["t"],"notes":[],"#,
            r#""sms_channel":{"sms_address":"+15555550100"}}"#
        );
        assert_eq!(written(Include::all()), format!("{core}{all}"));
        // A bare contact: only what it has, and valid JSON.
        let bare = Contact::new(id, -1, Source::Account);
        let mut out = Vec::new();
        ContactView(&bare, Include::default()).write(&mut out);
        let v: Value = serde_json::from_slice(&out).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "contact_id",
                "create_source",
                "update_source",
                "created_at",
                "updated_at"
            ]
        );
        assert_eq!(v["created_at"], "1969-12-31T23:59:59Z");
        // The seconds formatted on this thread are kept between contacts: the first contact
        // again reads as it did, and so does a contact of another second on another thread.
        assert_eq!(written(Include::default()), format!("{core}}}"));
        let other = std::thread::spawn(move || {
            let mut out = Vec::new();
            ContactView(&bare, Include::default()).write(&mut out);
            serde_json::from_slice::<Value>(&out).unwrap()["updated_at"].clone()
        });
        assert_eq!(other.join().unwrap(), "1969-12-31T23:59:59Z");
        // Seconds kept in the same slot (eight apart) push each other out and still read right,
        // written twice over.
        let mut eight = Contact::new(id, second, Source::Contact);
        eight.updated_at = second + 8_000;
        for _ in 0..2 {
            let mut out = Vec::new();
            ContactView(&eight, Include::default()).write(&mut out);
            let v: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(
                (v["created_at"].as_str(), v["updated_at"].as_str()),
                (Some("2026-11-28T19:45:51Z"), Some("2026-11-28T19:45:59Z"))
            );
        }
    }

    #[test]
    fn the_email_index_ignores_case_follows_changes_and_survives_a_rebuild() {
        let mut sim = Sim::default();
        let a = with_email(&mut sim, "Ann@Example.com");
        let long = format!("{}@example.com", "B".repeat(150));
        let b = with_email(&mut sim, &long);
        assert_eq!(sim.find_email("ann@example.COM"), Some(a));
        assert_eq!(sim.find_email(&long.to_lowercase()), Some(b));
        assert_eq!(sim.find_email("ann@example.org"), None);
        // A changed address: the old one is gone, the new one found.
        sim.contacts
            .get_mut(&a)
            .unwrap()
            .email
            .as_mut()
            .unwrap()
            .address = "ann@new.io".into();
        sim.set_email_index(a, Some("Ann@Example.com"), Some("ann@new.io"));
        assert_eq!(sim.find_email("ANN@EXAMPLE.COM"), None);
        assert_eq!(sim.find_email("Ann@New.io"), Some(a));
        // Removing an address that points elsewhere leaves it.
        sim.set_email_index(b, Some("ann@new.io"), None);
        assert_eq!(sim.find_email("ann@new.io"), Some(a));
        assert_eq!(sim.by_email.len(), 2);
        sim.reindex();
        assert_eq!(sim.by_email.len(), 2);
        assert_eq!(
            (sim.find_email("ANN@new.io"), sim.find_email(&long)),
            (Some(a), Some(b))
        );
    }

    #[test]
    fn a_contact_is_stored_by_position_and_read_back_whole_in_either_form() {
        let mut sim = Sim::default();
        let id = with_email(&mut sim, "full@example.com");
        {
            let c = sim.contacts.get_mut(&id).unwrap();
            let e = c.email.as_mut().unwrap();
            (e.opt_in_source, e.opt_in_date) = (Some(Source::Contact), Some(5));
            (e.opt_out_source, e.opt_out_date) = (Some(Source::Account), Some(6));
            (e.opt_out_reason, e.resubscribe_sent) = (Some("why".into()), Some(7));
            c.first_name = Some("F".into());
            c.last_name = Some("L".into());
            c.job_title = Some("J".into());
            c.company_name = Some("C".into());
            (c.birthday_month, c.birthday_day) = (Some(2), Some(29));
            c.anniversary = Some("2020-01-01".into());
            c.deleted_at = Some(9);
            c.list_memberships = vec![new_id()];
            c.extras_mut().notes = vec![json!({"note_id": "n", "content": "hi"})];
            c.extras_mut().taggings = vec!["t".into()];
        }
        let mut out = Vec::new();
        sim.take_changes(&mut out);
        let line = String::from_utf8(out).unwrap();
        assert!(
            line.contains(r#"["full@example.com","implicit",0,0,"Contact",5,"Account",6,"why",7]"#),
            "{line}"
        );
        let whole = |s: &Sim| serde_json::to_value(&s.contacts[&id]).unwrap();
        let mut back = Sim::default();
        back.apply_change(&line).unwrap();
        assert_eq!(whole(&back), whole(&sim));
        assert_eq!(back.find_email("FULL@example.com"), Some(id));
        // The older object form still reads.
        let object = serde_json::to_string(&("contacts", id, Some(&sim.contacts[&id]))).unwrap();
        let mut old = Sim::default();
        old.apply_change(&object).unwrap();
        assert_eq!(whole(&old), whole(&sim));
    }

    /// The hand-written record is, byte for byte, what serde_json writes for the same fields
    /// as a tuple (the form it replaced): strings that need escaping, strings that do not, and
    /// every field absent.
    #[test]
    fn a_stored_contact_is_the_bytes_serde_writes_for_its_fields() {
        // The derived Serialize names the fields; a record is their values in declaration order.
        let positional = |v: &Value, names: &[&str]| {
            Value::Array(
                names
                    .iter()
                    .map(|n| v.get(n).cloned().unwrap_or_default())
                    .collect(),
            )
        };
        let reference = |c: &Contact| {
            let mut v = serde_json::to_value(c).unwrap();
            if let Some(e) = v.get("email") {
                v["email"] = positional(
                    e,
                    &[
                        "address",
                        "permission",
                        "created_at",
                        "updated_at",
                        "opt_in_source",
                        "opt_in_date",
                        "opt_out_source",
                        "opt_out_date",
                        "opt_out_reason",
                        "resubscribe_sent",
                    ],
                );
            }
            let fields = positional(
                &v,
                &[
                    "id",
                    "email",
                    "first_name",
                    "last_name",
                    "job_title",
                    "company_name",
                    "birthday_month",
                    "birthday_day",
                    "anniversary",
                    "create_source",
                    "update_source",
                    "created_at",
                    "updated_at",
                    "deleted_at",
                    "list_memberships",
                    "extras",
                ],
            );
            serde_json::to_string(&json!(["contacts", c.id, fields])).unwrap()
        };
        let id = Uuid::parse_str("3f2b8f9e-5a1c-11f1-8b25-fa163e5c9b01").unwrap();
        let bare = Contact::new(id, -1, Source::Account);
        let mut full = Contact::new(id, 1_795_895_151_000, Source::Contact);
        let odd = "q\"\\\n\t\u{1}\u{1f} é\u{7f}\u{2028}😀";
        full.email = Some(Email {
            opt_in_source: Some(Source::Contact),
            opt_in_date: Some(i64::MIN),
            opt_out_source: Some(Source::Account),
            opt_out_date: Some(i64::MAX),
            opt_out_reason: Some(odd.into()),
            resubscribe_sent: Some(0),
            ..Email::new("ann@example.com", Permission::PendingConfirmation, 5)
        });
        full.first_name = Some(odd.into());
        full.last_name = Some(String::new());
        full.job_title =
            Some("a plain title, long enough to be checked in more than one pass".into());
        full.company_name = Some("\\".into());
        (full.birthday_month, full.birthday_day) = (Some(12), Some(31));
        full.anniversary = Some("2020-01-02".into());
        full.deleted_at = Some(7);
        full.update_source = Source::Account;
        full.list_memberships = vec![id, Uuid::nil()];
        full.extras_mut().notes = vec![json!({"note_id": "n", "content": odd})];
        for c in [&bare, &full] {
            let mut out = Vec::new();
            write_contact_entry(&id, Some(c), &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), reference(c));
        }
        let mut out = Vec::new();
        write_contact_entry(&id, None, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(&("contacts", id, None::<()>)).unwrap()
        );
    }

    #[test]
    fn a_change_parses_in_one_pass_and_names_what_is_wrong() {
        let mut sim = Sim::default();
        let id = with_email(&mut sim, "x@y.io");
        let mut out = Vec::new();
        sim.take_changes(&mut out);
        let line = String::from_utf8(out).unwrap();
        let mut other = Sim::default();
        other.apply_change(&line).unwrap();
        assert_eq!(
            other.contacts[&id].email.as_ref().unwrap().address,
            "x@y.io"
        );
        other
            .apply_change(&format!(r#"["contacts","{id}",null]"#))
            .unwrap();
        assert!(other.contacts.is_empty());
        for (bad, says) in [
            (r#"["nope","k",null]"#, "unknown table `nope`"),
            (r#"["lists","not-a-uuid",null]"#, "UUID"),
            (r#"["lists"]"#, "invalid length 1"),
            (
                r#"["tags","00e4429c-3beb-11eb-9f34-fa163e56c9b9",null,1]"#,
                "invalid length 4",
            ),
            (
                r#"["tags","00e4429c-3beb-11eb-9f34-fa163e56c9b9",null] x"#,
                "trailing",
            ),
        ] {
            let err = Sim::parse_change(bad).err().unwrap_or_default();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
