//! Storage whose growth never stops the world: an insertion-ordered map ([`OrderedMap`]) and the
//! sharded hash index it is built on ([`Sharded`]).
//!
//! A hash table grows by moving every entry into a table twice the size, in one call. At a million
//! contacts that took 85 ms for the contact map and 60 ms for the email index, inside the request
//! that crossed the growth point (docs/benchmarks.md). Here an index is 256 tables chosen by eight
//! bits of each hash, so one insert moves at most about 1/256 of the entries; and a map keeps its
//! entries in fixed-size chunks, so growing appends a chunk and copies nothing.

use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;
use indexmap::Equivalent;
use serde::{Deserialize, Serialize};

/// How many tables an index is split into, and the bits of a hash that choose one (bits 32–39:
/// inside a table only the low 32 bits are used, see [`spread`]).
const SHARDS: usize = 256;

fn shard_of(h: u64) -> usize {
    (h >> 32) as usize & (SHARDS - 1)
}

/// The hash a shard's table sees, from the low 32 bits of the full one: hashbrown takes its
/// bucket from the low bits and its tag from the top seven, so both must vary.
fn spread(lo: u32) -> u64 {
    (lo as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// `items` ordered by the shard their hash falls in, keeping their order within each (a counting
/// sort): inserting them in this order fills one shard's table at a time, while it is in the
/// cache.
pub fn in_shard_order<E: Copy + Default>(items: Vec<E>, hash: impl Fn(&E) -> u64) -> Vec<E> {
    let mut starts = vec![0usize; SHARDS + 1];
    for e in &items {
        starts[shard_of(hash(e)) + 1] += 1;
    }
    for i in 0..SHARDS {
        starts[i + 1] += starts[i];
    }
    let mut out = vec![E::default(); items.len()];
    for e in items {
        let s = &mut starts[shard_of(hash(&e))];
        out[*s] = e;
        *s += 1;
    }
    out
}

/// A hash table of `T` split into [`SHARDS`] tables by bits of each entry's 64-bit hash. Each
/// entry must give back the low 32 bits of its hash (`lo`) when a shard grows.
#[derive(Clone)]
pub struct Sharded<T> {
    shards: Box<[HashTable<T>]>,
    len: usize,
}

impl<T> Default for Sharded<T> {
    fn default() -> Self {
        Sharded {
            shards: (0..SHARDS).map(|_| HashTable::new()).collect(),
            len: 0,
        }
    }
}

impl<T> std::fmt::Debug for Sharded<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sharded").field("len", &self.len).finish()
    }
}

impl<T> Sharded<T> {
    /// Room for about `n` entries in all (a little more per shard than an even share); nothing
    /// for fewer than one per shard, which shards take as they come.
    pub fn reserve(&mut self, n: usize, lo: impl Fn(&T) -> u32) {
        let even = n / SHARDS;
        if even == 0 {
            return;
        }
        let each = even + even / 8 + 8;
        for s in self.shards.iter_mut() {
            s.reserve(each.saturating_sub(s.len()), |t| spread(lo(t)));
        }
    }

    /// The entry with hash `h` for which `eq` holds.
    pub fn find(&self, h: u64, eq: impl FnMut(&T) -> bool) -> Option<&T> {
        self.shards[shard_of(h)].find(spread(h as u32), eq)
    }

    /// The entry with hash `h` for which `eq` holds, or else `make()` added, in one probe; and
    /// whether it was added.
    pub fn find_or_insert(
        &mut self,
        h: u64,
        eq: impl FnMut(&T) -> bool,
        make: impl FnOnce() -> T,
        lo: impl Fn(&T) -> u32,
    ) -> (&mut T, bool) {
        use hashbrown::hash_table::Entry;
        match self.shards[shard_of(h)].entry(spread(h as u32), eq, |t| spread(lo(t))) {
            Entry::Occupied(e) => (e.into_mut(), false),
            Entry::Vacant(v) => {
                self.len += 1;
                (v.insert(make()).into_mut(), true)
            }
        }
    }

    /// Removes the entry with hash `h` for which `eq` holds.
    pub fn remove(&mut self, h: u64, eq: impl FnMut(&T) -> bool) -> Option<T> {
        let entry = self.shards[shard_of(h)]
            .find_entry(spread(h as u32), eq)
            .ok()?;
        self.len -= 1;
        Some(entry.remove().0)
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most entries any one shard holds (for tests of the spread).
    #[cfg(test)]
    fn fullest(&self) -> usize {
        self.shards.iter().map(HashTable::len).max().unwrap_or(0)
    }
}

/// Slots a chunk holds. The first chunk grows like a `Vec` up to this size, so a small map stays
/// small; later chunks are allocated whole. Tests use small chunks, so that their maps cross
/// many chunk boundaries.
const CHUNK: usize = if cfg!(test) { 64 } else { 4096 };

/// A hash map that keeps insertion order, like `IndexMap`, but whose growth copies nothing and
/// moves at most a shard of its index. A removed entry leaves a hole, so every other entry keeps
/// its place (a paging cursor or a place-based id stays valid); holes are squeezed out once they
/// outnumber the entries, which costs one pass and so at most one step per removal on average.
#[derive(Clone)]
pub struct OrderedMap<K, V, S = foldhash::fast::RandomState> {
    chunks: Vec<Vec<Option<(K, V)>>>,
    /// The low 32 bits of each key's hash, and its place.
    index: Sharded<(u32, u32)>,
    hasher: S,
    /// Entries, not counting holes.
    len: usize,
    /// Places used, holes included.
    end: usize,
}

impl<K, V, S: Default> Default for OrderedMap<K, V, S> {
    fn default() -> Self {
        OrderedMap {
            chunks: Vec::new(),
            index: Sharded::default(),
            hasher: S::default(),
            len: 0,
            end: 0,
        }
    }
}

impl<K: std::fmt::Debug, V: std::fmt::Debug, S> std::fmt::Debug for OrderedMap<K, V, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// The slot at a place, if the chunks reach it.
fn slot_in<K, V>(chunks: &[Vec<Option<(K, V)>>], place: usize) -> Option<&Option<(K, V)>> {
    chunks.get(place / CHUNK)?.get(place % CHUNK)
}

impl<K, V, S> OrderedMap<K, V, S> {
    fn slot(&self, place: usize) -> Option<&Option<(K, V)>> {
        slot_in(&self.chunks, place)
    }

    fn slot_mut(&mut self, place: usize) -> &mut Option<(K, V)> {
        &mut self.chunks[place / CHUNK][place % CHUNK]
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// One past the last place (places of removed entries count until they are squeezed out).
    pub fn end(&self) -> usize {
        self.end
    }

    /// The entry at a place (None: past the end, or removed).
    pub fn get_index(&self, place: usize) -> Option<(&K, &V)> {
        self.slot(place)?.as_ref().map(|(k, v)| (k, v))
    }

    /// Entries in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> {
        self.chunks
            .iter()
            .flatten()
            .filter_map(|s| s.as_ref().map(|(k, v)| (k, v)))
    }

    /// Entries in order with their places, from place `start` on (without walking the ones
    /// before it).
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = (usize, &K, &V)> {
        let first = start / CHUNK;
        self.chunks
            .iter()
            .enumerate()
            .skip(first)
            .flat_map(move |(c, chunk)| {
                let skip = if c == first { start % CHUNK } else { 0 };
                chunk
                    .iter()
                    .enumerate()
                    .skip(skip)
                    .filter_map(move |(i, s)| s.as_ref().map(|(k, v)| (c * CHUNK + i, k, v)))
            })
    }

    /// Entries in order with their places, from place `start` on, to change.
    pub fn iter_mut_from(&mut self, start: usize) -> impl Iterator<Item = (usize, &K, &mut V)> {
        let first = start / CHUNK;
        self.chunks
            .iter_mut()
            .enumerate()
            .skip(first)
            .flat_map(move |(c, chunk)| {
                let skip = if c == first { start % CHUNK } else { 0 };
                chunk
                    .iter_mut()
                    .enumerate()
                    .skip(skip)
                    .filter_map(move |(i, s)| s.as_mut().map(|(k, v)| (c * CHUNK + i, &*k, v)))
            })
    }

    /// Values in order, to change.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.chunks
            .iter_mut()
            .flatten()
            .filter_map(|s| s.as_mut().map(|(k, v)| (&*k, v)))
    }

    /// Appends an entry at place `end` (the index is the caller's).
    fn push(&mut self, k: K, v: V) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => {
                if last.len() == last.capacity() {
                    // Only the first chunk grows: by doubling, up to CHUNK.
                    last.reserve_exact(last.len().max(4).min(CHUNK - last.len()));
                }
                last.push(Some((k, v)));
            }
            _ => {
                let mut chunk = Vec::with_capacity(if self.chunks.is_empty() { 4 } else { CHUNK });
                chunk.push(Some((k, v)));
                self.chunks.push(chunk);
            }
        }
        self.end += 1;
        self.len += 1;
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> OrderedMap<K, V, S> {
    fn hash<Q: ?Sized + Hash>(&self, k: &Q) -> u64 {
        self.hasher.hash_one(k)
    }

    fn place_of<Q: ?Sized + Hash + Equivalent<K>>(&self, k: &Q) -> Option<usize> {
        let h = self.hash(k);
        let lo = h as u32;
        self.index
            .find(h, |&(l, p)| {
                l == lo
                    && matches!(self.slot(p as usize), Some(Some((key, _))) if k.equivalent(key))
            })
            .map(|&(_, p)| p as usize)
    }

    /// Appends an entry at the end without indexing it, and returns its place: a bulk load, which
    /// [`OrderedMap::index_from`] finishes before the map is used in any other way.
    pub fn push_unindexed(&mut self, k: K, v: V) -> usize {
        let place = self.end;
        self.push(k, v);
        place
    }

    /// Indexes the entries from place `from` on (appended by [`OrderedMap::push_unindexed`]),
    /// one shard at a time: each shard's table stays in the cache while its entries go in,
    /// where entries in place order would land in a random shard each, a cache miss apiece.
    /// Stops at a place whose key was already indexed (a key twice) and returns it: the map is
    /// then not whole (entries are missing from the index) and is to be dropped.
    pub fn index_from(&mut self, from: usize) -> Result<(), usize> {
        let hashes: Vec<(u64, u32)> = (from..self.end)
            .filter_map(|p| {
                let (k, _) = self.slot(p)?.as_ref()?;
                Some((
                    self.hash(k),
                    u32::try_from(p).expect("fewer than 2^32 places"),
                ))
            })
            .collect();
        let by_shard = in_shard_order(hashes, |&(h, _)| h);
        let chunks = &self.chunks;
        let key = |p: u32| {
            slot_in(chunks, p as usize)
                .and_then(Option::as_ref)
                .map(|(k, _)| k)
        };
        for (h, p) in by_shard {
            let lo = h as u32;
            let (_, added) = self.index.find_or_insert(
                h,
                |&(l, q)| l == lo && key(q) == key(p),
                || (lo, p),
                |&(lo, _)| lo,
            );
            if !added {
                return Err(p as usize);
            }
        }
        Ok(())
    }

    /// Room for `n` more entries in the index (entries take room a chunk at a time as they come).
    pub fn reserve(&mut self, n: usize) {
        self.index.reserve(self.len + n, |&(lo, _)| lo);
        let chunks = (self.end + n).div_ceil(CHUNK);
        self.chunks
            .reserve(chunks.saturating_sub(self.chunks.len()));
    }

    /// The value of a key.
    pub fn get<Q: ?Sized + Hash + Equivalent<K>>(&self, k: &Q) -> Option<&V> {
        self.get_full(k).map(|(_, _, v)| v)
    }

    /// The entry of a key with its place.
    pub fn get_full<Q: ?Sized + Hash + Equivalent<K>>(&self, k: &Q) -> Option<(usize, &K, &V)> {
        let p = self.place_of(k)?;
        self.get_index(p).map(|(k, v)| (p, k, v))
    }

    /// The entry of a key with its place, to change the value.
    pub fn get_full_mut<Q: ?Sized + Hash + Equivalent<K>>(
        &mut self,
        k: &Q,
    ) -> Option<(usize, &K, &mut V)> {
        let p = self.place_of(k)?;
        let (k, v) = self.slot_mut(p).as_mut()?;
        Some((p, &*k, v))
    }

    /// Whether the key is present.
    pub fn contains_key<Q: ?Sized + Hash + Equivalent<K>>(&self, k: &Q) -> bool {
        self.place_of(k).is_some()
    }

    /// Inserts at the end, or replaces the value in place (returning the old one).
    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        self.insert_full(k, v).1
    }

    /// [`OrderedMap::insert`], also giving the entry's place.
    pub fn insert_full(&mut self, k: K, v: V) -> (usize, Option<V>) {
        let h = self.hash(&k);
        let lo = h as u32;
        let end = u32::try_from(self.end).expect("a table holds fewer than 2^32 entries");
        let chunks = &self.chunks;
        let (&mut (_, place), added) = self.index.find_or_insert(
            h,
            |&(l, p)| {
                l == lo && matches!(slot_in(chunks, p as usize), Some(Some((key, _))) if *key == k)
            },
            || (lo, end),
            |&(lo, _)| lo,
        );
        if added {
            self.push(k, v);
            return (place as usize, None);
        }
        let (_, old) = self
            .slot_mut(place as usize)
            .as_mut()
            .expect("indexed places hold entries");
        (place as usize, Some(std::mem::replace(old, v)))
    }

    /// Removes a key, leaving a hole so the others keep their places.
    pub fn remove_full<Q: ?Sized + Hash + Equivalent<K>>(
        &mut self,
        k: &Q,
    ) -> Option<(usize, K, V)> {
        let h = self.hash(k);
        let lo = h as u32;
        let chunks = &self.chunks;
        let (_, p) = self.index.remove(h, |&(l, p)| {
            l == lo
                && matches!(slot_in(chunks, p as usize), Some(Some((key, _))) if k.equivalent(key))
        })?;
        let p = p as usize;
        let (k, v) = self
            .slot_mut(p)
            .take()
            .expect("indexed places hold entries");
        self.len -= 1;
        if self.end - self.len > self.len.max(32) {
            self.squeeze();
        }
        Some((p, k, v))
    }

    /// Squeezes out the holes: every entry moves up, keeping its order, and the index is built
    /// again.
    fn squeeze(&mut self) {
        let chunks = std::mem::take(&mut self.chunks);
        let len = self.len;
        self.index = Sharded::default();
        self.index.reserve(len, |&(lo, _)| lo);
        self.len = 0;
        self.end = 0;
        for (k, v) in chunks.into_iter().flatten().flatten() {
            self.insert(k, v);
        }
        debug_assert_eq!(self.len, len);
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> std::ops::Index<&K> for OrderedMap<K, V, S> {
    type Output = V;
    fn index(&self, k: &K) -> &V {
        self.get(k).expect("key present")
    }
}

impl<K: Serialize, V: Serialize, S> Serialize for OrderedMap<K, V, S> {
    fn serialize<Z: serde::Serializer>(&self, s: Z) -> Result<Z::Ok, Z::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de, K, V, S> Deserialize<'de> for OrderedMap<K, V, S>
where
    K: Deserialize<'de> + Hash + Eq,
    V: Deserialize<'de>,
    S: BuildHasher + Default,
{
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<K, V, S>(std::marker::PhantomData<(K, V, S)>);
        impl<'de, K, V, S> serde::de::Visitor<'de> for Visit<K, V, S>
        where
            K: Deserialize<'de> + Hash + Eq,
            V: Deserialize<'de>,
            S: BuildHasher + Default,
        {
            type Value = OrderedMap<K, V, S>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                let mut m = OrderedMap::default();
                if let Some(n) = a.size_hint() {
                    m.reserve(n);
                }
                while let Some((k, v)) = a.next_entry()? {
                    m.insert(k, v);
                }
                Ok(m)
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Map = OrderedMap<u64, u64>;

    fn keys(m: &Map) -> Vec<u64> {
        m.iter().map(|(k, _)| *k).collect()
    }

    #[test]
    fn keeps_insertion_order_and_places_across_chunks_and_removals() {
        let mut m = Map::default();
        let n = (CHUNK * 3 + 17) as u64;
        for k in 0..n {
            assert_eq!(m.insert(k, k * 10), None);
        }
        assert_eq!(m.len(), n as usize);
        assert_eq!(m.insert(5, 55), Some(50), "a replace keeps the place");
        assert_eq!(m.get_full(&5), Some((5, &5, &55)));
        assert_eq!(keys(&m), (0..n).collect::<Vec<_>>());
        // A removal leaves a hole: the others keep their places.
        assert_eq!(m.remove_full(&3), Some((3, 3, 30)));
        assert_eq!(m.remove_full(&3), None);
        assert_eq!(m.get_index(3), None);
        assert_eq!(
            m.get_full(&(CHUNK as u64 + 1)).map(|e| e.0),
            Some(CHUNK + 1)
        );
        assert!(!m.contains_key(&3));
        assert_eq!(m.len(), n as usize - 1);
        // A key removed and added again goes to the end.
        m.insert(3, 33);
        assert_eq!(m.get_full(&3).map(|e| e.0), Some(n as usize));
        assert_eq!(*keys(&m).last().unwrap(), 3);
        // Iterating from a place, across a chunk boundary and past the hole.
        let from: Vec<usize> = m.iter_from(CHUNK - 2).take(4).map(|e| e.0).collect();
        assert_eq!(from, [CHUNK - 2, CHUNK - 1, CHUNK, CHUNK + 1]);
        let from: Vec<usize> = m.iter_from(2).take(2).map(|e| e.0).collect();
        assert_eq!(from, [2, 4]);
        assert_eq!(m.iter_from(n as usize + 1).count(), 0);
        for (_, v) in m.iter_mut() {
            *v += 1;
        }
        assert_eq!(m[&5], 56);
    }

    #[test]
    fn holes_are_squeezed_out_once_they_outnumber_the_entries() {
        let mut m = Map::default();
        for k in 0..1000 {
            m.insert(k, k);
        }
        let mut squeezes = 0;
        for k in (0..1000).filter(|k| k % 4 != 0) {
            let end = m.end;
            assert!(m.remove_full(&k).is_some());
            squeezes += usize::from(m.end < end);
            let holes = m.end - m.len();
            assert!(
                holes <= m.len().max(32),
                "{holes} holes for {} entries",
                m.len()
            );
        }
        assert!(squeezes >= 1);
        assert_eq!(m.len(), 250);
        assert_eq!(keys(&m), (0..1000).step_by(4).collect::<Vec<_>>());
        let places: Vec<usize> = m.iter().map(|(k, _)| m.get_full(k).unwrap().0).collect();
        assert!(
            places.windows(2).all(|w| w[0] < w[1]),
            "places follow order"
        );
        assert_eq!(m.iter_from(0).map(|e| e.0).collect::<Vec<_>>(), places);
        // A map emptied and filled again works.
        for k in (0..1000).step_by(4) {
            m.remove_full(&k);
        }
        assert!(m.is_empty());
        m.insert(7, 7);
        assert_eq!(keys(&m), [7]);
    }

    #[test]
    fn borrowed_keys_and_serde_round_trip_in_order() {
        let mut m: OrderedMap<String, u32> = OrderedMap::default();
        for (i, k) in ["b", "a", "c"].iter().enumerate() {
            m.insert(k.to_string(), i as u32);
        }
        m.remove_full("a");
        assert_eq!(m.get("c"), Some(&2));
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(text, r#"{"b":0,"c":2}"#);
        let back: OrderedMap<String, u32> = serde_json::from_str(&text).unwrap();
        assert_eq!(
            back.iter().collect::<Vec<_>>(),
            m.iter().collect::<Vec<_>>()
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Any sequence of inserts and removals leaves the map agreeing with an `IndexMap`: the
        /// same entries in the same order, each found at its place, and paging from a place
        /// yields the rest in order. Keys come from a range small enough that replaces, removals
        /// of absent keys, re-inserts and squeezes all happen, and large enough that places
        /// cross chunks.
        #[test]
        fn agrees_with_an_index_map(ops in proptest::collection::vec((0u8..3, 0u16..3000, 0u32..1000), 0..12000)) {
            let mut m: OrderedMap<u16, u32> = OrderedMap::default();
            let mut model: indexmap::IndexMap<u16, u32> = indexmap::IndexMap::new();
            for (op, k, v) in ops {
                if op < 2 {
                    proptest::prop_assert_eq!(m.insert(k, v), model.insert(k, v));
                } else {
                    let gone = m.remove_full(&k).map(|(_, k, v)| (k, v));
                    proptest::prop_assert_eq!(gone, model.shift_remove_entry(&k));
                }
            }
            proptest::prop_assert_eq!(m.len(), model.len());
            let all: Vec<(u16, u32)> = m.iter().map(|(k, v)| (*k, *v)).collect();
            let want: Vec<(u16, u32)> = model.iter().map(|(k, v)| (*k, *v)).collect();
            proptest::prop_assert_eq!(&all, &want);
            let places: Vec<usize> = m.iter_from(0).map(|e| e.0).collect();
            for (i, (k, v)) in model.iter().enumerate() {
                proptest::prop_assert_eq!(m.get_full(k), Some((places[i], k, v)));
                proptest::prop_assert_eq!(m.get_index(places[i]), Some((k, v)));
                if i % 97 == 0 {
                    let rest: Vec<u16> = m.iter_from(places[i]).map(|e| *e.1).collect();
                    let want: Vec<u16> = model.keys().skip(i).copied().collect();
                    proptest::prop_assert_eq!(rest, want);
                }
            }
            proptest::prop_assert!(!m.contains_key(&3000));
        }
    }

    #[test]
    fn growth_moves_one_shard_at_a_time() {
        // Each insert grows at most one shard; with random hashes the shards stay even, so the
        // biggest move is a small part of the whole.
        let mut m = Map::default();
        let n = 200_000u64;
        for k in 0..n {
            m.insert(k, k);
        }
        let fullest = m.index.fullest();
        assert!(
            fullest < (n as usize / SHARDS) * 2,
            "fullest shard {fullest} of {n}"
        );
        for k in (0..n).step_by(997) {
            assert_eq!(m.get(&k), Some(&k));
        }
        assert_eq!(m.get(&n), None);
    }
}
