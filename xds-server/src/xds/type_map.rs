//! Per-type state of one stream: a handful of types at most, so a vector searched in order.
//! A `BTreeMap` allocates a node of eleven entries for even one, which at 10,000 streams was
//! over a kilobyte each.

use xds_core::TypeUrl;

/// State by type URL, in insertion order.
#[derive(Debug)]
pub(crate) struct TypeMap<V>(Vec<(TypeUrl, V)>);

impl<V> Default for TypeMap<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<V: Default> TypeMap<V> {
    /// The state of `type_url`, made empty on first use.
    pub(crate) fn entry(&mut self, type_url: TypeUrl) -> &mut V {
        let i = match self.0.iter().position(|(t, _)| *t == type_url) {
            Some(i) => i,
            None => {
                self.0.push((type_url, V::default()));
                self.0.len() - 1
            }
        };
        &mut self.0[i].1
    }
}

impl<V> TypeMap<V> {
    pub(crate) fn get(&self, type_url: &TypeUrl) -> Option<&V> {
        self.0.iter().find(|(t, _)| t == type_url).map(|(_, v)| v)
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &TypeUrl> {
        self.0.iter().map(|(t, _)| t)
    }
}

impl<V> std::ops::Index<&TypeUrl> for TypeMap<V> {
    type Output = V;

    /// Panics for a type never used: callers index only types they have seen.
    fn index(&self, type_url: &TypeUrl) -> &V {
        self.get(type_url).expect("a type this stream uses")
    }
}

/// Subscribed resource names of one type, sorted, in one allocation (a `BTreeSet` node holds
/// room for eleven names even for the usual one or two).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct NameSet(Vec<String>);

impl NameSet {
    /// The distinct names of `names`, at most `cap` of them (the first in name order); true
    /// when there were more.
    pub(crate) fn capped<'a>(names: impl Iterator<Item = &'a String>, cap: usize) -> (Self, bool) {
        let mut all: Vec<String> = names.cloned().collect();
        all.sort_unstable();
        all.dedup();
        let over = all.len() > cap;
        all.truncate(cap);
        all.shrink_to_fit();
        (Self(all), over)
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.0.binary_search_by(|n| n.as_str().cmp(name)).is_ok()
    }

    /// Adds `name`; false when it was there already.
    pub(crate) fn insert(&mut self, name: String) -> bool {
        match self.0.binary_search(&name) {
            Ok(_) => false,
            Err(i) => {
                self.0.insert(i, name);
                true
            }
        }
    }

    pub(crate) fn remove(&mut self, name: &str) {
        if let Ok(i) = self.0.binary_search_by(|n| n.as_str().cmp(name)) {
            self.0.remove(i);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// In name order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &String> {
        self.0.iter()
    }
}

/// What a Delta proxy holds of one type, name → version, sorted, in one allocation.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Held(Vec<(String, String)>);

impl Held {
    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(n, _)| n.as_str().cmp(name))
    }

    pub(crate) fn get(&self, name: &str) -> Option<&String> {
        self.find(name).ok().map(|i| &self.0[i].1)
    }

    pub(crate) fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    pub(crate) fn insert(&mut self, name: String, version: String) {
        match self.find(&name) {
            Ok(i) => self.0[i].1 = version,
            Err(i) => self.0.insert(i, (name, version)),
        }
    }

    pub(crate) fn remove(&mut self, name: &str) {
        if let Ok(i) = self.find(name) {
            self.0.remove(i);
        }
    }

    pub(crate) fn extend(&mut self, entries: impl IntoIterator<Item = (String, String)>) {
        for (name, version) in entries {
            self.insert(name, version);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// In name order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(n, v)| (n, v))
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(n, _)| n)
    }
}
