//! The partition keys of MATCH_RECOGNIZE: a slot per key, found by the key's encoded
//! PARTITION BY values (Arrow's row format) through a hash table of slot numbers.
//!
//! The per-batch bookkeeping (the keys a batch touched, the WITHIN deadlines) names a key
//! by its slot, a `u32`, instead of copying its bytes into every set it passes through;
//! the bytes are stored once, in the slot.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::error::{EngineError, Result};

/// A key's number while it is in the table; a forgotten key's number is given to a new key.
pub type Slot = u32;

/// A slot: empty, or a key's encoded bytes and its state.
type Entry<S> = Option<(Box<[u8]>, S)>;

/// Keys and their states `S`.
pub struct KeyTable<S> {
    hasher: DefaultHashBuilder,
    table: HashTable<Slot>,
    slots: Vec<Entry<S>>,
    /// Slots of forgotten keys, for new keys.
    free: Vec<Slot>,
}

impl<S> Default for KeyTable<S> {
    fn default() -> Self {
        KeyTable { hasher: DefaultHashBuilder::default(), table: HashTable::new(), slots: Vec::new(), free: Vec::new() }
    }
}

impl<S> KeyTable<S> {
    /// Keys in the table.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// The slot of `key`, creating it with `new()` if absent.
    ///
    /// Errors: more than `u32::MAX` keys at once.
    pub fn slot_or_insert(&mut self, key: &[u8], new: impl FnOnce() -> S) -> Result<Slot> {
        let hash = self.hasher.hash_one(key);
        let slots = &self.slots;
        if let Some(&slot) = self.table.find(hash, |&s| key_of(slots, s) == Some(key)) {
            return Ok(slot);
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                let slot =
                    Slot::try_from(self.slots.len()).map_err(|_| EngineError::Internal("more than 4 billion partition keys".into()))?;
                self.slots.push(None);
                slot
            }
        };
        if let Some(entry) = self.slots.get_mut(slot as usize) {
            *entry = Some((key.into(), new()));
        }
        let (hasher, slots) = (&self.hasher, &self.slots);
        self.table.insert_unique(hash, slot, |&s| hasher.hash_one(key_of(slots, s).unwrap_or_default()));
        Ok(slot)
    }

    /// The state of the key in `slot`.
    pub fn get(&self, slot: Slot) -> Option<&S> {
        self.slots.get(slot as usize)?.as_ref().map(|(_, s)| s)
    }

    /// The state of the key in `slot`.
    pub fn get_mut(&mut self, slot: Slot) -> Option<&mut S> {
        self.slots.get_mut(slot as usize)?.as_mut().map(|(_, s)| s)
    }

    /// Forgets the key in `slot`.
    pub fn remove(&mut self, slot: Slot) {
        let Some((key, _)) = self.slots.get_mut(slot as usize).and_then(Option::take) else { return };
        let hash = self.hasher.hash_one(&*key);
        if let Ok(entry) = self.table.find_entry(hash, |&s| s == slot) {
            entry.remove();
        }
        self.free.push(slot);
    }

    /// Every key with its slot and state, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (Slot, &[u8], &S)> {
        self.slots.iter().enumerate().filter_map(|(i, e)| e.as_ref().map(|(k, s)| (i as Slot, &**k, s)))
    }

    /// Every key's state.
    pub fn states_mut(&mut self) -> impl Iterator<Item = &mut S> {
        self.slots.iter_mut().filter_map(|e| e.as_mut().map(|(_, s)| s))
    }

    /// Gives memory back once three quarters of the table are empty (all of it when no
    /// key is left): the table otherwise keeps the room of its largest moment.
    pub fn shrink(&mut self) {
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        let n = self.slots.len();
        self.free.retain(|&s| (s as usize) < n);
        let len = self.len();
        if len == 0 || self.table.capacity() > 4 * len.max(64) {
            let (hasher, slots) = (&self.hasher, &self.slots);
            self.table.shrink_to(2 * len, |&s| hasher.hash_one(key_of(slots, s).unwrap_or_default()));
        }
        if n == 0 || self.slots.capacity() > 4 * n.max(64) {
            self.slots.shrink_to(2 * n);
            self.free.shrink_to(self.free.len());
        }
    }

    /// Bytes the table itself holds: its hash slots, the key slots (a state's inline
    /// size each) and the free list; not what states hold on the heap.
    pub fn table_bytes(&self) -> usize {
        self.table.capacity() * 8 / 7 * (std::mem::size_of::<Slot>() + 1)
            + self.slots.capacity() * std::mem::size_of::<Entry<S>>()
            + self.free.capacity() * std::mem::size_of::<Slot>()
    }
}

fn key_of<S>(slots: &[Entry<S>], slot: Slot) -> Option<&[u8]> {
    slots.get(slot as usize)?.as_ref().map(|(k, _)| &**k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_their_slot_and_forgotten_slots_are_reused() -> Result<()> {
        let mut t: KeyTable<i32> = KeyTable::default();
        let a = t.slot_or_insert(b"a", || 1)?;
        let b = t.slot_or_insert(b"b", || 2)?;
        assert_eq!((a, b), (0, 1));
        assert_eq!(t.slot_or_insert(b"a", || 9)?, a);
        assert_eq!(t.get(a), Some(&1));
        t.remove(a);
        assert_eq!((t.len(), t.get(a)), (1, None));
        let c = t.slot_or_insert(b"c", || 3)?;
        assert_eq!(c, a);
        assert_eq!(t.slot_or_insert(b"b", || 9)?, b);
        let all: Vec<(Slot, Vec<u8>, i32)> = t.iter().map(|(s, k, v)| (s, k.to_vec(), *v)).collect();
        assert_eq!(all, [(0, b"c".to_vec(), 3), (1, b"b".to_vec(), 2)]);
        Ok(())
    }

    #[test]
    fn an_emptied_table_gives_its_memory_back() -> Result<()> {
        let mut t: KeyTable<u64> = KeyTable::default();
        for i in 0..10_000u32 {
            t.slot_or_insert(&i.to_le_bytes(), || 0)?;
        }
        for s in 0..10_000 {
            t.remove(s);
        }
        t.shrink();
        assert_eq!((t.len(), t.table_bytes()), (0, 0));
        assert_eq!(t.slot_or_insert(b"x", || 7)?, 0);
        Ok(())
    }
}
