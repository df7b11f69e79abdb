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
