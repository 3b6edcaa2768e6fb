//! A map that remembers which keys changed, so the journal can write exactly what a request did.
//!
//! It behaves like an `IndexMap` (insertion order is the API's creation order), on an
//! [`OrderedMap`] whose growth never stalls a request; every way to change a value — `insert`, `remove`, `get_mut`, or writing through an item of
//! `values_mut` — records the key. [`Table::take_changes`] hands the changed keys' current
//! values (or their absence) to the journal and forgets them.

use std::cell::RefCell;
use std::hash::Hash;

use indexmap::Equivalent;

use super::ordered::OrderedMap;
use serde::{Deserialize, Serialize};

/// A tracked, ordered map.
#[derive(Debug, Clone)]
pub struct Table<K, V> {
    map: OrderedMap<K, V, Fast>,
    touched: RefCell<indexmap::IndexSet<K, Fast>>,
}

/// A fast hasher for keys the mock made itself (ids, tokens).
type Fast = foldhash::fast::RandomState;

impl<K, V> Default for Table<K, V> {
    fn default() -> Self {
        Table {
            map: OrderedMap::default(),
            touched: RefCell::new(indexmap::IndexSet::default()),
        }
    }
}

impl<K: Hash + Eq + Clone, V> Table<K, V> {
    fn touch(&self, k: &K) {
        let mut t = self.touched.borrow_mut();
        if !t.contains(k) {
            t.insert(k.clone());
        }
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
        let mut t = self.touched.borrow_mut();
        if !t.contains(key) {
            t.insert(key.clone());
        }
        Some(v)
    }

    /// Inserts or replaces (recorded).
    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        self.touch(&k);
        self.map.insert(k, v)
    }

    /// Removes, keeping the order and places of the rest (recorded).
    pub fn remove<Q: ?Sized + Hash + Equivalent<K>>(&mut self, k: &Q) -> Option<V> {
        let (_, key, v) = self.map.remove_full(k)?;
        self.touch(&key);
        Some(v)
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
    pub fn values_mut(&mut self) -> impl Iterator<Item = Tracked<'_, K, V>> {
        let touched = &self.touched;
        self.map.iter_mut().map(move |(k, v)| Tracked {
            key: k,
            value: v,
            touched,
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
        let keys = std::mem::take(&mut *self.touched.borrow_mut());
        for k in &keys {
            f(k, self.map.get(k));
        }
    }

    /// Whether anything changed since the last [`Table::take_changes`].
    pub fn has_changes(&self) -> bool {
        !self.touched.borrow().is_empty()
    }

    /// Forgets the recorded changes (after a whole snapshot).
    pub fn forget_changes(&mut self) {
        self.touched.borrow_mut().clear();
    }

    /// Applies a change read back from the journal (not recorded again).
    /// Returns the value it replaced or removed.
    pub fn apply(&mut self, k: K, v: Option<V>) -> Option<V> {
        match v {
            Some(v) => self.map.insert(k, v),
            None => self.map.remove_full(&k).map(|(_, _, old)| old),
        }
    }
}

impl<K: Hash + Eq + Clone, V> std::ops::Index<&K> for Table<K, V> {
    type Output = V;
    fn index(&self, k: &K) -> &V {
        &self.map[k]
    }
}

/// An item of [`Table::values_mut`]: reading it records nothing, writing to it records its key.
pub struct Tracked<'a, K: Hash + Eq + Clone, V> {
    key: &'a K,
    value: &'a mut V,
    touched: &'a RefCell<indexmap::IndexSet<K, Fast>>,
}

impl<K: Hash + Eq + Clone, V> std::ops::Deref for Tracked<'_, K, V> {
    type Target = V;
    fn deref(&self) -> &V {
        self.value
    }
}

impl<K: Hash + Eq + Clone, V> std::ops::DerefMut for Tracked<'_, K, V> {
    fn deref_mut(&mut self) -> &mut V {
        let mut t = self.touched.borrow_mut();
        if !t.contains(self.key) {
            t.insert(self.key.clone());
        }
        self.value
    }
}

impl<K: Serialize, V: Serialize> Serialize for Table<K, V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.map.serialize(s)
    }
}

impl<'de, K, V> Deserialize<'de> for Table<K, V>
where
    K: Deserialize<'de> + Hash + Eq,
    V: Deserialize<'de>,
{
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Table {
            map: OrderedMap::<K, V, Fast>::deserialize(d)?,
            touched: RefCell::new(indexmap::IndexSet::default()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
