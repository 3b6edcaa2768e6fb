//! A map that remembers which keys changed, so the journal can write exactly what a request did,
//! and keeps a running summary of its values ([`Tally`]), so a count is read, not walked.
//!
//! It behaves like an `IndexMap` (insertion order is the API's creation order), on an
//! [`OrderedMap`] whose growth never stalls a request. Every way to change a value — `insert`,
//! `remove`, `get_mut`, or writing through an item of `values_mut` — records the key.
//! [`Table::take_changes`] hands the changed keys' current values (or their absence) to the
//! journal and forgets them.
//!
//! The tally sees every change the same way: an inserted or removed value is counted in or out at
//! once; a value handed out to be changed in place is counted out when handed out, and counted in
//! again before the tally is next read or the changes are taken.

use std::cell::{Ref, RefCell};
use std::hash::Hash;

use indexmap::Equivalent;

use super::ordered::OrderedMap;
use serde::{Deserialize, Serialize};

/// A running summary of a table's values: `count(v, 1)` adds a value's share, `count(v, -1)`
/// takes it away again, so the summary always equals one built by counting every value.
pub trait Tally<V>: Default + PartialEq + std::fmt::Debug {
    /// Whether this tally counts anything (the empty one lets a table skip the bookkeeping).
    const COUNTS: bool = true;
    /// Adds (`sign` 1) or takes away (`sign` -1) one value's share.
    fn count(&mut self, v: &V, sign: isize);
    /// Whether the table keeps zones of [`Tally::latest`] for [`Table::iter_after`] (which needs
    /// [`Tally::COUNTS`]: a value changed in place is marked when it is counted in again).
    const ZONED: bool = false;
    /// A time none of a value's dates is after (with [`Tally::ZONED`]).
    fn latest(_: &V) -> i64 {
        i64::MAX
    }
}

/// No summary.
impl<V> Tally<V> for () {
    const COUNTS: bool = false;
    fn count(&mut self, _: &V, _: isize) {}
}

type KeySet<K> = RefCell<indexmap::IndexSet<K, Fast>>;

/// A tracked, ordered map with a tally `T` of its values.
#[derive(Debug, Clone)]
pub struct Table<K, V, T = ()> {
    map: OrderedMap<K, V, Fast>,
    touched: KeySet<K>,
    /// Keys whose values were handed out to be changed: their shares are out of the tally until
    /// [`Table::settle`] counts them in again.
    out: KeySet<K>,
    tally: RefCell<T>,
    /// The latest [`Tally::latest`] of the values in each zone of [`ZONE`] places, never lowered
    /// until the zones are built again: a walk for values after a time skips every zone whose
    /// latest is not after it.
    zones: RefCell<Vec<i64>>,
}

/// Places a zone covers: at 1,000,000 contacts, 15,625 zones in 125 KB.
const ZONE: usize = 64;

/// A fast hasher for keys the mock made itself (ids, tokens).
type Fast = foldhash::fast::RandomState;

impl<K, V, T: Default> Default for Table<K, V, T> {
    fn default() -> Self {
        Table {
            map: OrderedMap::default(),
            touched: RefCell::new(indexmap::IndexSet::default()),
            out: RefCell::new(indexmap::IndexSet::default()),
            tally: RefCell::new(T::default()),
            zones: RefCell::new(Vec::new()),
        }
    }
}

/// Raises the latest time of the zone holding `place` to `v`'s, when the table keeps zones.
fn mark<V, T: Tally<V>>(zones: &mut Vec<i64>, place: usize, v: &V) {
    if T::ZONED {
        let z = place / ZONE;
        if zones.len() <= z {
            zones.resize(z + 1, i64::MIN);
        }
        zones[z] = zones[z].max(T::latest(v));
    }
}

/// The most changed keys whose room a table keeps from one record to the next.
const KEEP_ROOM_FOR: usize = 1024;

/// Adds `key` to a set unless it is there; whether it was added.
fn add_key<K: Hash + Eq + Clone>(set: &KeySet<K>, key: &K) -> bool {
    let mut set = set.borrow_mut();
    !set.contains(key) && set.insert(key.clone())
}

/// Records `key` as changed and, the first time, takes its value's share out of the tally.
fn handed_out<K: Hash + Eq + Clone, V, T: Tally<V>>(
    key: &K,
    value: &V,
    touched: &KeySet<K>,
    out: &KeySet<K>,
    tally: &RefCell<T>,
) {
    add_key(touched, key);
    if T::COUNTS && add_key(out, key) {
        tally.borrow_mut().count(value, -1);
    }
}

impl<K: Hash + Eq + Clone, V, T: Tally<V>> Table<K, V, T> {
    fn touch(&self, k: &K) {
        add_key(&self.touched, k);
    }

    /// Counts in again the values handed out to be changed.
    fn settle(&self) {
        if !T::COUNTS {
            return;
        }
        let mut out = self.out.borrow_mut();
        if out.is_empty() {
            return;
        }
        let mut tally = self.tally.borrow_mut();
        let mut zones = self.zones.borrow_mut();
        for k in out.drain(..) {
            if let Some((place, _, v)) = self.map.get_full(&k) {
                tally.count(v, 1);
                mark::<V, T>(&mut zones, place, v);
            }
        }
    }

    /// The summary of the values as they are now.
    pub fn tally(&self) -> Ref<'_, T> {
        self.settle();
        // Debug builds (every test) check it against a count of every value, small tables only.
        if cfg!(debug_assertions) && T::COUNTS && self.map.len() <= 10_000 {
            let mut fresh = T::default();
            for (_, v) in self.map.iter() {
                fresh.count(v, 1);
            }
            assert_eq!(
                *self.tally.borrow(),
                fresh,
                "the tally drifted from its values"
            );
        }
        self.tally.borrow()
    }

    /// Puts `v` at `k` (or removes `k`), keeping the tally: the old value's share goes unless
    /// it was already out, the new one's comes in. Returns the old value.
    fn put(&mut self, k: K, v: Option<V>) -> Option<V> {
        let was_out = T::COUNTS && self.out.get_mut().swap_remove(&k);
        if T::COUNTS
            && let Some(new) = &v
        {
            self.tally.get_mut().count(new, 1);
        }
        let old = match v {
            Some(v) => {
                let (place, old) = self.map.insert_full(k, v);
                self.mark_at(place);
                old
            }
            None => {
                let end = self.map.end();
                let old = self.map.remove_full(&k).map(|(_, _, old)| old);
                if T::ZONED && self.map.end() != end {
                    // The holes were squeezed out and every place moved up.
                    self.rezone();
                }
                old
            }
        };
        if T::COUNTS
            && !was_out
            && let Some(old) = &old
        {
            self.tally.get_mut().count(old, -1);
        }
        old
    }

    /// Appends an entry at the end, counted and zoned but not indexed (a snapshot's entries,
    /// each key once; [`Table::index_loaded`] follows before the table is used). Not recorded.
    pub fn load_push(&mut self, k: K, v: V) {
        if T::COUNTS {
            self.tally.get_mut().count(&v, 1);
        }
        let place = self.map.push_unindexed(k, v);
        self.mark_at(place);
    }

    /// Raises the zone of the entry at `place` to its latest date (a zoned table only).
    fn mark_at(&mut self, place: usize) {
        if T::ZONED
            && let Some((_, v)) = self.map.get_index(place)
        {
            mark::<V, T>(self.zones.get_mut(), place, v);
        }
    }

    /// Indexes what [`Table::load_push`] appended from place `from` on; or a key that came twice
    /// (the table is then not whole, and is to be dropped).
    pub fn index_loaded(&mut self, from: usize) -> Result<(), K> {
        self.map.index_from(from).map_err(|place| {
            self.map
                .get_index(place)
                .map(|(k, _)| k.clone())
                .expect("the place holds an entry")
        })
    }

    /// Builds the zones again from the values (after the places moved).
    fn rezone(&mut self) {
        let zones = self.zones.get_mut();
        zones.clear();
        for (place, _, v) in self.map.iter_from(0) {
            mark::<V, T>(zones, place, v);
        }
    }

    /// Entries with their places from place `start` on, leaving out whole zones none of whose
    /// values is after `time` ([`Tally::latest`]): the values given may or may not be after it,
    /// every value left out is not. Without zones, every entry from `start`.
    pub fn iter_after(&self, start: usize, time: i64) -> impl Iterator<Item = (usize, &K, &V)> {
        const { assert!(!T::ZONED || T::COUNTS, "zones need the tally's bookkeeping") };
        self.settle();
        let zones = self.zones.borrow();
        // The runs of places to walk: zones after the time, neighbours joined.
        let mut runs: Vec<(usize, usize)> = Vec::new();
        let end = self.map.end();
        if !T::ZONED || time == i64::MIN {
            runs.push((start, end));
        } else {
            for (z, &latest) in zones.iter().enumerate().skip(start / ZONE) {
                if latest <= time {
                    continue;
                }
                let (from, to) = ((z * ZONE).max(start), ((z + 1) * ZONE).min(end));
                match runs.last_mut() {
                    Some(last) if last.1 == from => last.1 = to,
                    _ => runs.push((from, to)),
                }
            }
        }
        drop(zones);
        runs.into_iter().flat_map(move |(from, to)| {
            self.map
                .iter_from(from)
                .take_while(move |(place, _, _)| *place < to)
        })
    }

    /// The value of a key.
    pub fn get<Q: ?Sized + Hash + Equivalent<K>>(&self, k: &Q) -> Option<&V> {
        self.map.get(k)
    }

    /// The value of a key with its place (places are kept when others are removed).
    pub fn get_full<Q: ?Sized + Hash + Equivalent<K>>(&self, k: &Q) -> Option<(usize, &K, &V)> {
        self.map.get_full(k)
    }

    /// The value of a key, to change it (the key is recorded as changed).
    pub fn get_mut<Q: ?Sized + Hash + Equivalent<K>>(&mut self, k: &Q) -> Option<&mut V> {
        let (_, key, v) = self.map.get_full_mut(k)?;
        handed_out(key, v, &self.touched, &self.out, &self.tally);
        Some(v)
    }

    /// Inserts or replaces (recorded).
    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        self.touch(&k);
        self.put(k, Some(v))
    }

    /// Removes, keeping the order and places of the rest (recorded).
    pub fn remove<Q: ?Sized + Hash + Equivalent<K>>(&mut self, k: &Q) -> Option<V> {
        let key = self.map.get_full(k)?.1.clone();
        self.touch(&key);
        self.put(key, None)
    }

    /// The entry at a place in creation order (None: past the end or removed).
    pub fn get_index(&self, i: usize) -> Option<(&K, &V)> {
        self.map.get_index(i)
    }

    /// Room for `n` more entries.
    pub fn reserve(&mut self, n: usize) {
        self.map.reserve(n);
    }

    /// Whether the key is present.
    pub fn contains_key<Q: ?Sized + Hash + Equivalent<K>>(&self, k: &Q) -> bool {
        self.map.contains_key(k)
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// One past the last place.
    pub fn end(&self) -> usize {
        self.map.end()
    }

    /// Values in order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> {
        self.map.iter().map(|(_, v)| v)
    }

    /// Entries in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> {
        self.map.iter()
    }

    /// Entries with their places, from place `start` on (a paging cursor's place).
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = (usize, &K, &V)> {
        self.map.iter_from(start)
    }

    /// Values in order, each recorded as changed only when written to.
    pub fn values_mut(&mut self) -> impl Iterator<Item = Tracked<'_, K, V, T>> {
        let (touched, out, tally) = (&self.touched, &self.out, &self.tally);
        self.map.iter_mut().map(move |(k, v)| Tracked {
            key: k,
            value: v,
            touched,
            out,
            tally,
        })
    }

    /// Values with their places, from place `start` on, each recorded as changed only when
    /// written to (a bulk activity goes on from where its last slice stopped).
    pub fn values_mut_from(
        &mut self,
        start: usize,
    ) -> impl Iterator<Item = (usize, Tracked<'_, K, V, T>)> {
        let (touched, out, tally) = (&self.touched, &self.out, &self.tally);
        self.map.iter_mut_from(start).map(move |(place, k, v)| {
            (
                place,
                Tracked {
                    key: k,
                    value: v,
                    touched,
                    out,
                    tally,
                },
            )
        })
    }

    /// The changed keys with their values now (None: removed), in the order they first changed;
    /// forgets them.
    pub fn take_changes(&mut self) -> Vec<(K, Option<V>)>
    where
        V: Clone,
    {
        let mut out = Vec::new();
        self.drain_changes(|k, v| out.push((k.clone(), v.cloned())));
        out
    }

    /// Hands each changed key with its value now (None: removed) to `f`, in the order they
    /// first changed, without copying them; forgets them.
    pub fn drain_changes(&mut self, mut f: impl FnMut(&K, Option<&V>)) {
        // Most tables have nothing to hand over: a record of one contact asks all twenty.
        // (Nothing touched means nothing handed out to settle either.)
        if self.touched.borrow().is_empty() {
            return;
        }
        self.settle();
        let mut touched = self.touched.borrow_mut();
        for k in touched.iter() {
            f(k, self.map.get(k));
        }
        if touched.capacity() > KEEP_ROOM_FOR {
            // A record of a million changes must not keep its room for good.
            *touched = Default::default();
        } else {
            // The next request's changes need the room again (making it anew was 280
            // instructions of a `sign_up_form`).
            touched.clear();
        }
    }

    /// Whether anything changed since the last [`Table::take_changes`].
    pub fn has_changes(&self) -> bool {
        !self.touched.borrow().is_empty()
    }

    /// Forgets the recorded changes (after a whole snapshot).
    pub fn forget_changes(&mut self) {
        self.settle();
        self.touched.borrow_mut().clear();
    }

    /// Applies a change read back from the journal (not recorded again).
    /// Returns the value it replaced or removed.
    pub fn apply(&mut self, k: K, v: Option<V>) -> Option<V> {
        self.put(k, v)
    }
}

impl<K: Hash + Eq + Clone, V, T> std::ops::Index<&K> for Table<K, V, T> {
    type Output = V;
    fn index(&self, k: &K) -> &V {
        &self.map[k]
    }
}

/// An item of [`Table::values_mut`]: reading it records nothing, writing to it records its key.
pub struct Tracked<'a, K: Hash + Eq + Clone, V, T: Tally<V>> {
    key: &'a K,
    value: &'a mut V,
    touched: &'a KeySet<K>,
    out: &'a KeySet<K>,
    tally: &'a RefCell<T>,
}

impl<K: Hash + Eq + Clone, V, T: Tally<V>> std::ops::Deref for Tracked<'_, K, V, T> {
    type Target = V;
    fn deref(&self) -> &V {
        self.value
    }
}

impl<K: Hash + Eq + Clone, V, T: Tally<V>> std::ops::DerefMut for Tracked<'_, K, V, T> {
    fn deref_mut(&mut self) -> &mut V {
        handed_out(self.key, self.value, self.touched, self.out, self.tally);
        self.value
    }
}

impl<K: Serialize, V: Serialize, T> Serialize for Table<K, V, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.map.serialize(s)
    }
}

impl<'de, K, V, T> Deserialize<'de> for Table<K, V, T>
where
    K: Deserialize<'de> + Hash + Eq,
    V: Deserialize<'de>,
    T: Tally<V>,
{
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = OrderedMap::<K, V, Fast>::deserialize(d)?;
        let mut tally = T::default();
        let mut zones = Vec::new();
        for (place, _, v) in map.iter_from(0) {
            tally.count(v, 1);
            mark::<V, T>(&mut zones, place, v);
        }
        Ok(Table {
            map,
            touched: RefCell::new(indexmap::IndexSet::default()),
            out: RefCell::new(indexmap::IndexSet::default()),
            tally: RefCell::new(tally),
            zones: RefCell::new(zones),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sums the values, and counts them.
    #[derive(Debug, Default, PartialEq)]
    struct Sum(i64, i64);

    impl Tally<i64> for Sum {
        fn count(&mut self, v: &i64, sign: isize) {
            self.0 += v * sign as i64;
            self.1 += sign as i64;
        }
    }

    #[test]
    fn the_tally_follows_every_way_of_changing_a_value() {
        let mut t: Table<u32, i64, Sum> = Table::default();
        for k in 0..10 {
            t.insert(k, i64::from(k));
        }
        assert_eq!(*t.tally(), Sum(45, 10));
        // Changed in place: counted out when handed out, in again when read.
        *t.get_mut(&1).unwrap() += 100;
        *t.get_mut(&1).unwrap() += 100;
        assert_eq!(*t.tally(), Sum(245, 10));
        // Handed out, then replaced or removed before being counted in again.
        *t.get_mut(&2).unwrap() = 7;
        t.insert(2, 1000);
        *t.get_mut(&3).unwrap() = 7;
        assert_eq!(t.remove(&3), Some(7));
        assert_eq!(*t.tally(), Sum(245 - 2 + 1000 - 3, 9));
        // Through values_mut: only the values written to move.
        for mut v in t.values_mut() {
            if *v % 2 == 0 {
                *v += 1;
            }
        }
        let sum: i64 = t.values().sum();
        assert_eq!(*t.tally(), Sum(sum, 9));
        // Taking the changes settles too; applying journal changes keeps it.
        *t.get_mut(&4).unwrap() = -4;
        let _ = t.take_changes();
        t.apply(4, None);
        t.apply(20, Some(20));
        t.apply(20, Some(21));
        let sum: i64 = t.values().sum();
        assert_eq!(*t.tally(), Sum(sum, 9));
        // A table read back from JSON counts what it holds.
        let back: Table<u32, i64, Sum> =
            serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(*back.tally(), Sum(sum, 9));
    }

    /// Keeps zones of the values themselves (a value is its own time).
    #[derive(Debug, Default, PartialEq)]
    struct Zoned;

    impl Tally<i64> for Zoned {
        const ZONED: bool = true;
        fn latest(v: &i64) -> i64 {
            *v
        }
        fn count(&mut self, _: &i64, _: isize) {}
    }

    /// A change made to a zoned table, in each of the ways a table can be changed.
    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, i64),
        Raise(u16, i64),
        Remove(u16),
        Journal(u16, Option<i64>),
        EveryOther(i64),
        Walk,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (0..300u16, 0..1000i64).prop_map(|(k, v)| Op::Insert(k, v)),
            3 => (0..300u16, 0..1000i64).prop_map(|(k, v)| Op::Raise(k, v)),
            3 => (0..300u16).prop_map(Op::Remove),
            1 => (0..300u16, proptest::option::of(0..1000i64)).prop_map(|(k, v)| Op::Journal(k, v)),
            1 => (0..1000i64).prop_map(Op::EveryOther),
            2 => Just(Op::Walk),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// A walk of the values after a time, from any place, passes over zones but never over a
        /// value after the time: after any mix of inserts, changes in place, removals (which
        /// squeeze the places when holes outnumber entries), journal changes and a reload.
        #[test]
        fn a_walk_after_a_time_finds_every_value_after_it(
            ops in proptest::collection::vec(op(), 1..1500),
            times in proptest::collection::vec(-1..1001i64, 4),
            start in 0..700usize,
        ) {
            let mut t: Table<u16, i64, Zoned> = Table::default();
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        t.insert(k, v);
                    }
                    Op::Raise(k, v) => {
                        if let Some(x) = t.get_mut(&k) {
                            *x = v;
                        }
                    }
                    Op::Remove(k) => {
                        t.remove(&k);
                    }
                    Op::Journal(k, v) => {
                        t.apply(k, v);
                    }
                    Op::Walk => {
                        // Settles what was handed out, as a request's walk does.
                        let _ = t.iter_after(0, 500).count();
                    }
                    Op::EveryOther(v) => {
                        for (i, mut x) in t.values_mut().enumerate() {
                            if i % 2 == 0 {
                                *x = v;
                            }
                        }
                    }
                }
            }
            let back: Table<u16, i64, Zoned> =
                serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
            for table in [&t, &back] {
                for &time in &times {
                    let walked: Vec<(usize, u16)> = table
                        .iter_after(start, time)
                        .filter(|(_, _, v)| **v > time)
                        .map(|(p, k, _)| (p, *k))
                        .collect();
                    let all: Vec<(usize, u16)> = table
                        .iter_from(start)
                        .filter(|(_, _, v)| **v > time)
                        .map(|(p, k, _)| (p, *k))
                        .collect();
                    proptest::prop_assert_eq!(walked, all);
                }
            }
        }
    }

    #[test]
    fn a_walk_after_a_time_passes_over_older_zones() {
        let mut t: Table<u32, i64, Zoned> = Table::default();
        for k in 0..(ZONE as u32 * 10) {
            t.insert(k, 1);
        }
        *t.get_mut(&(ZONE as u32 * 7 + 3)).unwrap() = 5;
        let after: Vec<usize> = t.iter_after(0, 1).map(|(p, _, _)| p).collect();
        assert_eq!(after, (ZONE * 7..ZONE * 8).collect::<Vec<_>>());
        assert_eq!(t.iter_after(0, 0).count(), ZONE * 10);
        assert_eq!(t.iter_after(ZONE * 7 + 5, 1).count(), ZONE - 5);
        // Removing most entries squeezes the places: the later ones move into earlier zones,
        // and the zones follow them.
        let last = ZONE as u32 * 10 - 1;
        *t.get_mut(&last).unwrap() = 9;
        assert_eq!(t.iter_after(0, 5).count(), ZONE, "the last zone alone");
        for k in 0..(ZONE as u32 * 9) {
            t.remove(&k);
        }
        assert!(t.end() < ZONE * 2, "squeezed to {}", t.end());
        let after: Vec<u32> = t
            .iter_after(0, 5)
            .filter(|(_, _, v)| **v > 5)
            .map(|(_, k, _)| *k)
            .collect();
        assert_eq!(after, [last]);
    }

    #[test]
    fn records_writes_not_reads() {
        let mut t: Table<u32, String> = Table::default();
        t.insert(1, "a".into());
        t.insert(2, "b".into());
        t.insert(3, "c".into());
        assert_eq!(t.take_changes().len(), 3);
        assert!(!t.has_changes());
        let _ = t.get(&1);
        for v in t.values_mut() {
            if v.as_str() == "b" {
                let mut v = v;
                v.push('!');
            }
        }
        assert!(t.remove(&3).is_some());
        assert_eq!(
            t.take_changes(),
            vec![(2, Some("b!".to_string())), (3, None)]
        );
        t.apply(4, Some("d".into()));
        assert!(!t.has_changes());
        assert_eq!(t.values().cloned().collect::<Vec<_>>(), ["a", "b!", "d"]);
    }
}
