//! `/v3/emails/activities/{campaign_activity_id}/schedules`: schedule a campaign activity
//! (`"0"` for now, a date, or a date-time, as the vendor documents), read the schedule, and
//! unschedule.
//!
//! Scheduling moves the campaign to `Scheduled`; the send happens on the mock clock
//! ([`super::campaigns::tick`]).

use serde_json::{Value, json};

use super::store::{Sim, ts};
use crate::mock::http::{Member, Req, Resp, json_object, validation};

fn when(v: Option<&Value>, now: i64) -> Option<i64> {
    let text = v?.as_str()?.trim();
    if text == "0" {
        return Some(now);
    }
    if let Ok(t) = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
    {
        return Some((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let date = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

/// `POST`: 201 and the schedule.
pub fn create(sim: &mut Sim, req: &Req, id: &str, now: i64) -> Resp {
    if !super::campaigns::known_activity(sim, id) {
        return crate::mock::http::cc_error(404, "not_found", "Campaign activity not found");
    }
    let body = match json_object(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(at) = when(body.member("scheduled_date"), now) else {
        return validation(&[
            "scheduled_date does not have a valid value (\"0\" for now, 2022-05-17, or 2022-05-17T16:37:59.091Z)".into(),
        ]);
    };
    if let Err(r) = super::campaigns::on_schedule(sim, id, now) {
        return r;
    }
    sim.schedules.insert(id.to_string(), at);
    Resp::json(201, &json!([{"scheduled_date": ts(at)}]))
}

/// `GET`: the schedule, or an empty list.
pub fn get(sim: &Sim, id: &str) -> Resp {
    let list: Vec<Value> = sim
        .schedules
        .get(id)
        .map(|at| json!({"scheduled_date": ts(*at)}))
        .into_iter()
        .collect();
    Resp::json(200, &Value::Array(list))
}

/// `DELETE`: unscheduled (204).
pub fn delete(sim: &mut Sim, id: &str, now: i64) -> Resp {
    sim.schedules.remove(id);
    super::campaigns::on_unschedule(sim, id, now);
    Resp::empty(204)
}
