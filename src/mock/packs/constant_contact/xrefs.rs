//! V2 → V3 id cross-references (`GET /contacts/contact_id_xrefs`,
//! `/contact_lists/list_id_xrefs`, `/emails/campaign_id_xrefs`), for integrations migrating
//! from the V2 API.
//!
//! The V2 id of a contact, list or campaign is its place in the account's creation order, from 1,
//! written with ten digits as the vendor's examples are (`0000000042`). The mock's tables keep
//! creation order and never remove contacts, lists or campaigns (they are marked deleted), so
//! the number never changes and names exactly one resource. (A guess at the numbering; the
//! vendor documents only that the V2 id is a string of digits — docs/mock.md.)

use serde_json::{Value, json};

use super::store::Sim;
use crate::mock::http::{Req, Resp, validation};

/// The V2 id of the resource at creation position `index` (0-based).
fn v2_id(index: usize) -> String {
    format!("{:010}", index + 1)
}

/// The ids asked for, parsed: digits, comma-separated, at most `max`; each as a 0-based place.
fn asked(req: &Req, param: &str, max: usize) -> Result<Vec<usize>, Resp> {
    let Some(raw) = req.q(param).filter(|v| !v.trim().is_empty()) else {
        return Err(validation(&[format!("{param} is required")]));
    };
    let ids: Vec<&str> = raw.split(',').map(str::trim).collect();
    if ids.len() > max {
        return Err(validation(&[format!(
            "{param} accepts at most {max} ids; {} were given",
            ids.len()
        )]));
    }
    let mut out = Vec::new();
    for id in ids {
        let n: u64 = match id.parse() {
            Ok(n) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => {
                return Err(validation(&[format!(
                    "{param} does not have a valid value: `{id}` is not a V2 id (digits)"
                )]));
            }
        };
        if n >= 1 {
            out.push((n - 1) as usize);
        }
    }
    Ok(out)
}

/// One cross-reference answer: the ids asked for in `param` (at most `max`), each that names a
/// row of `table` by its place turned into an entry by `entry`, sorted by V2 id without repeats.
fn xrefs<K, V, T>(
    req: &Req,
    param: &str,
    max: usize,
    table: &super::table::Table<K, V, T>,
    entry: impl Fn(String, &K, &V) -> Value,
) -> Resp
where
    K: std::hash::Hash + Eq + Clone,
    T: super::table::Tally<V>,
{
    let mut places = match asked(req, param, max) {
        Ok(ids) => ids,
        Err(r) => return r,
    };
    places.sort_unstable();
    places.dedup();
    let found: Vec<Value> = places
        .into_iter()
        .filter_map(|i| table.get_index(i).map(|(k, v)| entry(v2_id(i), k, v)))
        .collect();
    Resp::json(200, &json!({ "xrefs": found }))
}

/// `GET /contacts/contact_id_xrefs?sequence_ids=…` (at most 500).
pub fn contacts(sim: &Sim, req: &Req) -> Resp {
    xrefs(
        req,
        "sequence_ids",
        500,
        &sim.contacts,
        |seq, id, _| json!({"sequence_id": seq, "contact_id": id}),
    )
}

/// `GET /contact_lists/list_id_xrefs?sequence_ids=…` (at most 500).
pub fn lists(sim: &Sim, req: &Req) -> Resp {
    xrefs(
        req,
        "sequence_ids",
        500,
        &sim.lists,
        |seq, id, _| json!({"sequence_id": seq, "list_id": id}),
    )
}

/// `GET /emails/campaign_id_xrefs?v2_email_campaign_ids=…` (at most 50): the campaign and its
/// primary email activity.
pub fn campaigns(sim: &Sim, req: &Req) -> Resp {
    xrefs(
        req,
        "v2_email_campaign_ids",
        50,
        &sim.campaigns,
        |seq, id, c| json!({"v2_email_campaign_id": seq, "campaign_id": id, "campaign_activity_id": c.primary}),
    )
}
