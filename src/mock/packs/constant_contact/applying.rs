//! Applying bulk activities a slice at a time.
//!
//! An activity's work (rows to import, contacts to move between lists, tag, delete or export)
//! is applied once its mock-clock completion time has passed, oldest first, one activity at a
//! time. Applied whole under the simulation's one lock, a membership change over a list of
//! 1,000,000 contacts held every request for 6.4 s; so the work goes in slices, each bounded by
//! a [`Budget`] of contacts looked at and changed. The server's background worker
//! ([`super::apply_slice`], run by `front.rs`) applies slices between requests until nothing is
//! due. Each request's clock tick first applies the due activities small enough to finish at
//! once ([`Budget::TICK`]), so the request after a small activity's completion time sees it
//! complete, as before.
//!
//! An activity reads `completed` only once all of it is applied; until then it is `processing`.
//! While it runs, requests see the contacts it has reached so far, and contacts changed by
//! requests meanwhile are taken as the walk reaches them.
//!
//! Where it has got to ([`Applying`]) is kept in memory only; the activity keeps its work until
//! its last slice. After a crash the activity starts over from its first row or contact, and
//! since every kind of work gives the same contacts when applied again at the same time (an
//! import updates the contacts its first pass created; a list is added once), the store ends as
//! it would have.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::activities::{Speed, Work};
use super::exports::Picker;
use super::store::{Contact, IdSet, Sim};
use super::tags::tagged;

/// How much one slice may do: contacts looked at, and contacts or rows changed. A slice holds
/// the simulation's lock, so this bounds how long it keeps a request waiting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// Contacts looked at.
    pub visits: usize,
    /// Contacts changed or rows imported (each is also a journaled value).
    pub changes: usize,
}

impl Budget {
    /// What a request's tick applies before its own work, only ever whole activities: the
    /// work of a small one (up to 1,024 rows, or a store of up to 1,024 contacts) completes in
    /// the request that follows its completion time.
    pub const TICK: Budget = Budget {
        visits: 1_024,
        changes: 1_024,
    };
    /// One slice of the background worker: with the journaling of what it changed, about a
    /// third of a millisecond and under about 1 ms (`cargo bench -- bulk`, docs/benchmarks.md).
    pub const SLICE: Budget = Budget {
        visits: 16_384,
        changes: 256,
    };

    fn spent(&self) -> bool {
        self.visits == 0 || self.changes == 0
    }

    fn visit(&mut self, changed: bool) {
        self.visits = self.visits.saturating_sub(1);
        if changed {
            self.changes = self.changes.saturating_sub(1);
        }
    }
}

/// The activity being applied and how far it has got (in memory only; see the module notes).
#[derive(Debug, Clone)]
pub struct Applying {
    id: Uuid,
    /// Its completion time: the contacts' `updated_at`.
    at: i64,
    /// The next import row, or the next contact place, to look at.
    next: usize,
    job: Job,
    errors: Vec<String>,
}

/// What an activity does, prepared once for its slices, with what it has counted so far.
#[derive(Debug, Clone)]
enum Job {
    Import {
        lists: Vec<Uuid>,
        first_row: usize,
        people: usize,
        refused: usize,
        correctable: usize,
    },
    Membership {
        add: bool,
        select: Select,
        targets: Vec<Uuid>,
        touched: usize,
    },
    Taggings {
        add: bool,
        select: Select,
        tags: Vec<String>,
        touched: usize,
    },
    ContactDelete {
        contact_ids: Vec<Uuid>,
        ids: IdSet,
        list_ids: Vec<Uuid>,
    },
    ListDelete {
        list_ids: Vec<Uuid>,
    },
    Export {
        picker: Picker,
        columns: Vec<String>,
        csv: String,
    },
    StripValues {
        ids: Vec<String>,
    },
    Untag {
        tag_ids: Vec<Uuid>,
        texts: Vec<String>,
        untagged: usize,
    },
    Nothing,
}

/// The contacts a membership or tagging activity takes.
#[derive(Debug, Clone)]
struct Select {
    contact_ids: IdSet,
    source_lists: Vec<Uuid>,
    source_tags: Vec<String>,
    all_active: bool,
    exclude: IdSet,
    segment: Option<Value>,
}

impl Select {
    fn picks(&self, c: &Contact) -> bool {
        c.deleted_at.is_none()
            && !self.exclude.contains(&c.id)
            && (self.contact_ids.contains(&c.id)
                || c.list_memberships
                    .iter()
                    .any(|l| self.source_lists.contains(l))
                || tagged(c, &self.source_tags)
                || (self.all_active && c.is_active())
                || self
                    .segment
                    .as_ref()
                    .is_some_and(|s| super::segments::meets(c, s)))
    }
}

fn live_lists(sim: &Sim, ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.into_iter()
        .filter(|l| sim.lists.get(l).is_some_and(|x| x.deleted_at.is_none()))
        .collect()
}

impl Applying {
    /// Prepares an activity's work; what takes effect at once (lists and fields marked
    /// deleted) is done here.
    fn start(sim: &mut Sim, id: Uuid, at: i64) -> Applying {
        // `id` is a due activity `next_due` found in the table.
        let work = match &sim.activities[&id].work {
            // The rows stay in the activity; each slice copies the ones it imports.
            Work::Import {
                list_ids,
                first_row,
                ..
            } => Work::Import {
                rows: Vec::new(),
                list_ids: list_ids.clone(),
                first_row: *first_row,
            },
            other => other.clone(),
        };
        let job = match work {
            Work::Import {
                list_ids,
                first_row,
                ..
            } => Job::Import {
                lists: live_lists(sim, list_ids),
                first_row,
                people: 0,
                refused: 0,
                correctable: 0,
            },
            Work::Membership {
                add,
                contact_ids,
                source_lists,
                all_active,
                targets,
                exclude,
            } => Job::Membership {
                add,
                select: Select {
                    contact_ids: contact_ids.into_iter().collect(),
                    source_lists,
                    source_tags: Vec::new(),
                    all_active,
                    exclude: exclude.into_iter().collect(),
                    segment: None,
                },
                targets: live_lists(sim, targets),
                touched: 0,
            },
            Work::Taggings {
                add,
                contact_ids,
                source_lists,
                source_tags,
                all_active,
                tag_ids,
                exclude,
                segment,
            } => Job::Taggings {
                add,
                select: Select {
                    contact_ids: contact_ids.into_iter().collect(),
                    source_lists,
                    source_tags: source_tags.iter().map(Uuid::to_string).collect(),
                    all_active,
                    exclude: exclude.into_iter().collect(),
                    segment,
                },
                tags: tag_ids
                    .iter()
                    .filter(|t| sim.tags.contains_key(*t))
                    .map(Uuid::to_string)
                    .collect(),
                touched: 0,
            },
            Work::ContactDelete {
                contact_ids,
                list_ids,
            } => Job::ContactDelete {
                ids: contact_ids.iter().copied().collect(),
                contact_ids,
                list_ids,
            },
            Work::ListDelete { list_ids } => {
                for id in &list_ids {
                    if let Some(l) = sim.lists.get_mut(id) {
                        l.deleted_at = Some(at);
                        l.updated_at = at;
                    }
                }
                Job::ListDelete { list_ids }
            }
            Work::Export(sel) => {
                let picker = Picker::new(sel, at);
                let columns = picker.columns(sim);
                let mut csv = String::new();
                super::exports::header(&mut csv, &columns);
                Job::Export {
                    picker,
                    columns,
                    csv,
                }
            }
            Work::CustomFieldsDelete { custom_field_ids } => {
                for id in &custom_field_ids {
                    sim.custom_fields.remove(id);
                }
                Job::StripValues {
                    ids: custom_field_ids.iter().map(Uuid::to_string).collect(),
                }
            }
            Work::TagsDelete { tag_ids } => Job::Untag {
                texts: tag_ids.iter().map(Uuid::to_string).collect(),
                tag_ids,
                untagged: 0,
            },
            Work::Done => Job::Nothing,
        };
        Applying {
            id,
            at,
            next: 0,
            job,
            errors: Vec::new(),
        }
    }

    /// Whether what is left of the work fits in the budget (the rows left to import, or the
    /// contacts left to look at).
    fn fits(&self, sim: &Sim, budget: &Budget) -> bool {
        match &self.job {
            Job::Import { .. } => match sim.activities.get(&self.id).map(|a| &a.work) {
                Some(Work::Import { rows, .. }) => {
                    rows.len().saturating_sub(self.next) <= budget.changes
                }
                _ => true,
            },
            Job::Nothing => true,
            _ => sim.contacts.end().saturating_sub(self.next) <= budget.visits.min(budget.changes),
        }
    }

    /// Applies what the budget allows; whether the work is all done.
    fn step(&mut self, sim: &mut Sim, budget: &mut Budget) -> bool {
        let at = self.at;
        let errors = &mut self.errors;
        match &mut self.job {
            Job::Import {
                lists,
                first_row,
                people,
                refused,
                correctable,
            } => {
                // The rows stay in the activity (a table never loses an activity while it is
                // applied: only a reset or a state import replace them, with this).
                let Some(Work::Import { rows, .. }) = sim.activities.get(&self.id).map(|a| &a.work)
                else {
                    return true;
                };
                let end = rows.len().min(self.next + budget.changes);
                let slice: Vec<Map<String, Value>> = rows[self.next.min(end)..end].to_vec();
                let total = rows.len();
                for (i, row) in slice.iter().enumerate() {
                    match super::contacts::import_row(sim, row, lists, at) {
                        Ok(done) => {
                            *people += 1;
                            *refused += usize::from(done.list_refused);
                        }
                        Err(e) => {
                            *correctable += usize::from(e.correctable);
                            errors.push(format!(
                                "Row {}: {}",
                                self.next + i + *first_row,
                                e.message
                            ));
                        }
                    }
                    budget.visit(true);
                }
                self.next = end;
                end >= total
            }
            Job::Membership {
                add,
                select,
                targets,
                touched,
            } => walk(
                sim,
                &mut self.next,
                budget,
                |c| {
                    let picked = select.picks(c);
                    *touched += usize::from(picked);
                    picked
                },
                |c| {
                    if *add {
                        for t in targets.iter() {
                            if !c.list_memberships.contains(t) {
                                if c.list_memberships.len() >= 50 {
                                    errors.push(format!("Contact {} is already on 50 lists", c.id));
                                    break;
                                }
                                c.list_memberships.push(*t);
                            }
                        }
                    } else {
                        c.list_memberships.retain(|l| !targets.contains(l));
                    }
                    c.updated_at = at;
                },
            ),
            Job::Taggings {
                add,
                select,
                tags,
                touched,
            } => walk(
                sim,
                &mut self.next,
                budget,
                |c| {
                    if !select.picks(c) {
                        return false;
                    }
                    *touched += 1;
                    if *add {
                        tags.iter().any(|t| !tagged(c, std::slice::from_ref(t)))
                    } else {
                        tagged(c, tags)
                    }
                },
                |c| {
                    let x = c.extras_mut();
                    if *add {
                        for t in tags.iter() {
                            if !x.taggings.iter().any(|g| g.eq_ignore_ascii_case(t)) {
                                x.taggings.push(t.clone());
                            }
                        }
                    } else {
                        x.taggings
                            .retain(|g| !tags.iter().any(|t| t.eq_ignore_ascii_case(g)));
                    }
                    c.updated_at = at;
                },
            ),
            Job::ContactDelete { ids, list_ids, .. } => walk(
                sim,
                &mut self.next,
                budget,
                |c| {
                    c.deleted_at.is_none()
                        && (ids.contains(&c.id)
                            || c.list_memberships.iter().any(|l| list_ids.contains(l)))
                },
                |c| {
                    c.deleted_at = Some(at);
                    c.updated_at = at;
                    c.list_memberships.clear();
                },
            ),
            Job::ListDelete { list_ids } => walk(
                sim,
                &mut self.next,
                budget,
                |c| c.list_memberships.iter().any(|l| list_ids.contains(l)),
                |c| c.list_memberships.retain(|l| !list_ids.contains(l)),
            ),
            Job::Export {
                picker,
                columns,
                csv,
            } => {
                let mut stopped = None;
                for (place, _, c) in sim.contacts.iter_from(self.next) {
                    if budget.spent() {
                        stopped = Some(place);
                        break;
                    }
                    let picked = picker.picks(c);
                    if picked {
                        super::exports::contact_row(csv, sim, c, columns);
                    }
                    budget.visit(picked);
                }
                match stopped {
                    Some(place) => {
                        self.next = place;
                        false
                    }
                    None => true,
                }
            }
            Job::StripValues { ids } => walk(
                sim,
                &mut self.next,
                budget,
                |c| super::custom_fields::holds_any(c, ids),
                |c| super::custom_fields::strip(c, ids, at),
            ),
            Job::Untag {
                texts, untagged, ..
            } => walk(
                sim,
                &mut self.next,
                budget,
                |c| super::tags::tagged(c, texts),
                |c| {
                    super::tags::untag(c, texts, at);
                    *untagged += 1;
                },
            ),
            Job::Nothing => true,
        }
    }

    /// What the activity shows once applied: its errors, its counts and what it produced.
    fn finish(self, sim: &mut Sim) {
        let mut counts = Map::new();
        let mut errors = self.errors;
        let mut result = None;
        match self.job {
            Job::Import {
                people,
                refused,
                correctable,
                ..
            } => {
                counts.insert("person_count".into(), json!(people));
                counts.insert("cannot_add_to_list_count".into(), json!(refused));
                counts.insert("correctable_count".into(), json!(correctable));
            }
            Job::Membership {
                targets, touched, ..
            } => {
                counts.insert("list_count".into(), json!(targets.len()));
                counts.insert("contact_count".into(), json!(touched));
            }
            Job::Taggings { touched, .. } => {
                counts.insert("contact_count".into(), json!(touched));
            }
            Job::ContactDelete {
                contact_ids,
                list_ids,
                ..
            } => {
                for id in &contact_ids {
                    if !sim.contacts.contains_key(id) {
                        errors.push(format!("Contact {id} was not found"));
                    }
                }
                if !list_ids.is_empty() {
                    counts.insert("list_count".into(), json!(list_ids.len()));
                }
            }
            Job::Export { csv, .. } => result = Some(csv),
            Job::Untag {
                tag_ids, untagged, ..
            } => {
                for id in &tag_ids {
                    sim.tags.remove(id);
                }
                counts.insert("items_total_count".into(), json!(untagged));
            }
            Job::ListDelete { .. } | Job::StripValues { .. } | Job::Nothing => {}
        }
        if let Some(act) = sim.activities.get_mut(&self.id) {
            act.work = Work::Done;
            act.result = result;
            act.errors.extend(errors);
            act.counts = counts;
            act.applied = true;
        }
    }
}

/// Goes through the contacts from place `next` while the budget lasts, changing those `wants`
/// picks (only those are recorded as changed, and journaled); whether it reached the end.
fn walk(
    sim: &mut Sim,
    next: &mut usize,
    budget: &mut Budget,
    mut wants: impl FnMut(&Contact) -> bool,
    mut change: impl FnMut(&mut Contact),
) -> bool {
    for (place, mut c) in sim.contacts.values_mut_from(*next) {
        if budget.spent() {
            *next = place;
            return false;
        }
        let hit = wants(&c);
        if hit {
            change(&mut c);
        }
        budget.visit(hit);
    }
    true
}

/// The oldest due activity not applied yet (by creation order).
fn next_due(sim: &Sim, now: i64, s: &Speed) -> Option<(Uuid, i64)> {
    let unapplied = sim.activities.tally();
    unapplied
        .0
        .iter()
        .filter_map(|id| sim.activities.get_full(id))
        .filter(|(_, _, a)| a.completes_at(s) <= now)
        .min_by_key(|(place, _, _)| *place)
        .map(|(_, id, a)| (*id, a.completes_at(s)))
}

/// A request's tick: applies the due activities that fit whole in [`Budget::TICK`], oldest
/// first, so a small activity is complete for the request that follows its completion time (as
/// the tests and a client that polls once expect). It stops at the first that does not fit,
/// which the background worker applies in slices.
pub fn on_request(sim: &mut Sim, now: i64, s: &Speed) {
    let mut budget = Budget::TICK;
    run(sim, now, s, &mut budget, true);
}

/// One slice of the background worker: applies what [`Budget::SLICE`] allows of the due
/// activities; whether more is due.
pub fn slice(sim: &mut Sim, now: i64, s: &Speed) -> bool {
    let mut budget = Budget::SLICE;
    run(sim, now, s, &mut budget, false)
}

/// Applies due activities oldest first while the budget lasts (with `whole`, only those that
/// fit in what is left of it); whether due work is left.
fn run(sim: &mut Sim, now: i64, s: &Speed, budget: &mut Budget, whole: bool) -> bool {
    loop {
        let mut job = match sim.applying.take() {
            Some(job) => job,
            None => match next_due(sim, now, s) {
                Some((id, at)) => Box::new(Applying::start(sim, id, at)),
                None => return false,
            },
        };
        if whole && !job.fits(sim, budget) {
            sim.applying = Some(job);
            return true;
        }
        if job.step(sim, budget) {
            job.finish(sim);
        } else {
            sim.applying = Some(job);
        }
        if budget.spent() {
            return sim.applying.is_some() || next_due(sim, now, s).is_some();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::packs::constant_contact::activities::Activity;
    use crate::mock::packs::constant_contact::exports::Selection;
    use crate::mock::packs::constant_contact::store::{ContactList, CustomField, Tag};
    use serde_json::json;

    const NOW: i64 = 10_000;
    const SPEED: Speed = Speed {
        rows_per_second: 1_000_000_000,
        start_delay_ms: 0,
    };
    /// More contacts than a slice may change, and than a request may look at.
    const N: usize = 2_000;

    struct World {
        sim: Sim,
        lists: [Uuid; 3],
        tag: Uuid,
        field: Uuid,
    }

    /// N contacts on list 0 (every third also on list 1), every other one tagged and given a
    /// custom field value.
    fn world() -> World {
        let mut sim = Sim::default();
        let lists = [0, 1, 2].map(|i| {
            let l = ContactList::new(Uuid::new_v4(), format!("list {i}"), 0);
            let id = l.id;
            sim.lists.insert(id, l);
            id
        });
        let tag = Tag {
            id: Uuid::new_v4(),
            name: "vip".into(),
            tag_source: None,
            created_at: 0,
            updated_at: 0,
        };
        let tag_id = tag.id;
        sim.tags.insert(tag.id, tag);
        let field = CustomField {
            id: Uuid::new_v4(),
            label: "Shoe size".into(),
            name: "shoe_size".into(),
            kind: "string".into(),
            choices: vec![],
            version: 1,
            created_at: 0,
            updated_at: 0,
        };
        let field_id = field.id;
        sim.custom_fields.insert(field.id, field);
        for i in 0..N {
            let mut row = Map::new();
            row.insert("email".into(), json!(format!("c{i}@slices.io")));
            let on: &[Uuid] = if i % 3 == 0 { &lists[..2] } else { &lists[..1] };
            super::super::contacts::import_row(&mut sim, &row, on, 0).unwrap();
        }
        let ids: Vec<Uuid> = sim.contacts.iter().map(|(id, _)| *id).collect();
        for id in ids.iter().step_by(2) {
            let x = sim.contacts.get_mut(id).unwrap().extras_mut();
            x.taggings.push(tag_id.to_string());
            x.custom_fields
                .push(json!({"custom_field_id": field_id.to_string(), "value": "42"}));
        }
        sim.forget_changes();
        World {
            sim,
            lists,
            tag: tag_id,
            field: field_id,
        }
    }

    /// Every kind of work, each over more than one slice.
    fn works(w: &World) -> Vec<Work> {
        let [all, third, none] = w.lists;
        let some: Vec<Uuid> = w
            .sim
            .contacts
            .iter()
            .map(|(id, _)| *id)
            .step_by(7)
            .collect();
        let rows = (0..N + 500)
            .map(|i| {
                // The first 500 rows update existing contacts; one row in 100 is refused.
                let email = if i % 100 == 99 {
                    "not an email".to_string()
                } else {
                    format!("c{}@slices.io", i as i64 - 500)
                };
                let mut row = Map::new();
                row.insert("email".into(), json!(email.replace("c-", "new")));
                row.insert("first_name".into(), json!(format!("F{i}")));
                row
            })
            .collect();
        vec![
            Work::Import {
                rows,
                list_ids: vec![none],
                first_row: 1,
            },
            Work::Membership {
                add: true,
                contact_ids: some.clone(),
                source_lists: vec![third],
                all_active: false,
                targets: vec![none],
                exclude: some[..3].to_vec(),
            },
            Work::Membership {
                add: false,
                contact_ids: vec![],
                source_lists: vec![],
                all_active: true,
                targets: vec![third],
                exclude: vec![],
            },
            Work::Taggings {
                add: true,
                contact_ids: vec![],
                source_lists: vec![third],
                source_tags: vec![],
                all_active: false,
                tag_ids: vec![w.tag],
                exclude: vec![],
                segment: None,
            },
            Work::Taggings {
                add: false,
                contact_ids: some.clone(),
                source_lists: vec![],
                source_tags: vec![w.tag],
                all_active: false,
                tag_ids: vec![w.tag],
                exclude: vec![],
                segment: None,
            },
            Work::ContactDelete {
                contact_ids: vec![some[0], Uuid::new_v4()],
                list_ids: vec![third],
            },
            Work::ListDelete {
                list_ids: vec![third],
            },
            Work::Export(Box::new(Selection {
                contact_ids: vec![],
                list_ids: vec![all],
                tag_ids: vec![w.tag],
                new_subscriber: false,
                status: None,
                exclude: some[..5].to_vec(),
                fields: vec![],
                segment: None,
            })),
            Work::CustomFieldsDelete {
                custom_field_ids: vec![w.field],
            },
            Work::TagsDelete {
                tag_ids: vec![w.tag],
            },
        ]
    }

    /// The whole simulation as JSON, with the contacts in order and without their ids (an
    /// import gives each new contact a fresh one).
    fn canonical(sim: &Sim) -> Value {
        let mut v = serde_json::to_value(sim).unwrap();
        let contacts: Vec<Value> = sim
            .contacts
            .values()
            .map(|c| {
                let mut j = serde_json::to_value(c).unwrap();
                j.as_object_mut().unwrap().remove("id");
                j
            })
            .collect();
        v["contacts"] = json!(contacts);
        v
    }

    fn with_activity(mut sim: Sim, work: Work) -> (Sim, Uuid) {
        let a = Activity::new("bulk", 0, N as u64, work);
        let id = a.id;
        sim.activities.insert(id, a);
        sim.forget_changes();
        (sim, id)
    }

    fn all_at_once(sim: &mut Sim) {
        let mut budget = Budget {
            visits: usize::MAX,
            changes: usize::MAX,
        };
        assert!(!run(sim, NOW, &SPEED, &mut budget, false));
    }

    /// Applies in background slices, forgetting where it had got to after `restart_after`
    /// slices (as a crash does); how many slices it took.
    fn in_slices(sim: &mut Sim, id: Uuid, restart_after: Option<usize>) -> usize {
        let mut n = 0;
        loop {
            let more = slice(sim, NOW, &SPEED);
            n += 1;
            // Each slice's changes are journaled as they are made.
            sim.forget_changes();
            if !more {
                return n;
            }
            assert!(
                !sim.activities[&id].applied,
                "applied before its last slice"
            );
            assert_eq!(sim.activities[&id].state(NOW, &SPEED), "processing");
            if restart_after == Some(n) {
                sim.applying = None;
            }
            assert!(n < 1_000, "no end");
        }
    }

    #[test]
    fn work_in_slices_ends_as_work_applied_at_once() {
        let w = world();
        for work in works(&w) {
            let kind = format!("{work:?}").chars().take(40).collect::<String>();
            let (whole, id) = with_activity(w.sim.clone(), work);
            let mut at_once = whole.clone();
            all_at_once(&mut at_once);
            let expected = canonical(&at_once);
            assert!(at_once.activities[&id].applied);
            let mut sliced = whole.clone();
            let n = in_slices(&mut sliced, id, None);
            assert!(n > 1, "{kind}: one slice");
            assert!(
                canonical(&sliced) == expected,
                "{kind}: sliced differs from at once"
            );
            // A restart forgets where the work had got to: it starts over and leaves the store
            // as it would have. Only the activity's counts may differ, where the work takes away
            // what picked a contact (untagging the contacts picked by that tag counts only
            // those it reaches after the restart).
            let mut restarted = whole.clone();
            in_slices(&mut restarted, id, Some(2));
            let without_counts = |mut v: Value| {
                v["activities"][id.to_string()]["counts"] = Value::Null;
                v
            };
            assert!(
                without_counts(canonical(&restarted)) == without_counts(expected.clone()),
                "{kind}: restarted differs from at once"
            );
            // And it did something.
            assert!(canonical(&whole) != expected, "{kind}: changed nothing");
        }
    }

    #[test]
    fn a_slice_changes_a_bounded_number_of_contacts() {
        let w = world();
        let [_, _, none] = w.lists;
        let (mut sim, _) = with_activity(
            w.sim,
            Work::Membership {
                add: true,
                contact_ids: vec![],
                source_lists: vec![],
                all_active: true,
                targets: vec![none],
                exclude: vec![],
            },
        );
        assert!(slice(&mut sim, NOW, &SPEED));
        let on = |sim: &Sim| {
            sim.contacts
                .values()
                .filter(|c| c.list_memberships.contains(&none))
                .count()
        };
        assert_eq!(on(&sim), Budget::SLICE.changes);
        assert_eq!(sim.take_changes(&mut Vec::new()), None);
        assert!(slice(&mut sim, NOW, &SPEED));
        assert_eq!(on(&sim), 2 * Budget::SLICE.changes);
    }

    #[test]
    fn a_request_applies_only_whole_activities_in_the_order_they_were_made() {
        let w = world();
        let [all, _, none] = w.lists;
        let (sim, big) = with_activity(
            w.sim,
            Work::Membership {
                add: true,
                contact_ids: vec![],
                source_lists: vec![all],
                all_active: false,
                targets: vec![none],
                exclude: vec![],
            },
        );
        let first = sim.contacts.iter().next().map(|(id, _)| *id).unwrap();
        let (mut sim, small) = with_activity(
            sim,
            Work::ContactDelete {
                contact_ids: vec![first],
                list_ids: vec![],
            },
        );
        // The big one does not fit a request, and the small one waits behind it.
        on_request(&mut sim, NOW, &SPEED);
        assert!(!sim.activities[&big].applied && !sim.activities[&small].applied);
        assert!(
            sim.contacts
                .values()
                .all(|c| !c.list_memberships.contains(&none))
        );
        while slice(&mut sim, NOW, &SPEED) && !sim.activities[&big].applied {}
        assert!(sim.activities[&big].applied);
        // Once the big one is done, a request applies the small one whole.
        on_request(&mut sim, NOW, &SPEED);
        assert!(sim.activities[&small].applied);
        assert!(sim.contacts[&first].deleted_at.is_some());
        // Not yet due: nothing happens.
        let (mut sim, later) = with_activity(
            sim,
            Work::ListDelete {
                list_ids: vec![all],
            },
        );
        on_request(&mut sim, -1, &SPEED);
        assert!(!slice(&mut sim, -1, &SPEED));
        assert!(!sim.activities[&later].applied);
    }
}
