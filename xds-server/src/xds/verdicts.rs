//! Last-known-good. When a proxy rejects a resource version, the rest of its group is not sent
//! that version, and neither is a proxy that connects or restarts: they keep the last version a
//! proxy of the group accepted, until the operator changes the object (its new version goes out
//! normally).
//!
//! A group here is every proxy with the same [`Delivery`]: a resource's content depends only
//! on its object and on how proxies fetch what it refers to, and versions are content hashes,
//! so a rejected version is the same bytes wherever it would go. Keying by the whole selection
//! instead would lose the history whenever a listener or raw resource is added (a new
//! selection), and serve a resource nobody accepted in place of the one everybody ran.
//!
//! Streams report what their proxy accepted and rejected ([`Verdicts::record`]); the cache
//! applies the verdicts to each group's translation ([`Verdicts::apply`]). A new rejection
//! moves a generation every stream watches, so the whole group moves back at once.

#[cfg(test)]
mod tests;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use tokio::sync::watch;

use crate::translate::{Delivery, Encoded, HeldBack, Resources, Selection, blame};

/// Every group's verdicts. Shared by the cache and the streams.
#[derive(Debug)]
pub struct Verdicts {
    books: Mutex<HashMap<Delivery, Book>>,
    generation: watch::Sender<u64>,
    /// Rejections recorded and not yet forgotten, over every group: while none, applying is
    /// free (no lock), which is the common case on every stream at every change.
    rejections: AtomicUsize,
    /// Off: nothing is recorded or held back (`--last-known-good false`).
    enabled: AtomicBool,
}

/// One group's verdicts.
#[derive(Debug, Default)]
struct Book {
    /// By type URL, then name: the last version a proxy of the group accepted.
    accepted: BTreeMap<String, BTreeMap<String, Arc<Encoded>>>,
    /// By (type URL, name, version): the proxy that rejected it and its message.
    rejected: BTreeMap<Key, Rejection>,
    /// Applications by the translation they were made from (its address), kept so every
    /// stream of a selection shares one result.
    applied: HashMap<usize, (Weak<Resources>, Arc<Resources>)>,
}

type Key = (String, String, String);

#[derive(Debug, Clone)]
struct Rejection {
    node_id: String,
    message: String,
}

/// What a proxy said of the resources it was sent.
#[derive(Debug, Clone, Copy)]
pub enum Verdict<'a> {
    Accepted,
    Rejected { node_id: &'a str, message: &'a str },
}

impl Default for Verdicts {
    fn default() -> Self {
        Self {
            books: Mutex::new(HashMap::new()),
            generation: watch::channel(0).0,
            rejections: AtomicUsize::new(0),
            enabled: AtomicBool::new(true),
        }
    }
}

impl Verdicts {
    /// Turns last-known-good on or off (on by default).
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Release);
    }

    /// Moves whenever a new rejection changes what some group is sent; streams watch it.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Records what a proxy of `group` said of `items` (of `type_url`): the resources of the
    /// response it answered. A rejection is pinned on the resources the group had not
    /// accepted before, narrowed to those the proxy's message names when it names any
    /// (Envoy's messages name the resource). True when a new rejection was recorded.
    pub fn record(
        &self,
        group: &Selection,
        type_url: &str,
        items: &[Arc<Encoded>],
        verdict: Verdict<'_>,
    ) -> bool {
        if !self.enabled.load(Ordering::Acquire) {
            return false;
        }
        let mut books = self.books.lock().unwrap();
        match verdict {
            Verdict::Accepted => {
                // Usually the group accepted these already (another proxy did): then this
                // only reads.
                let known = books.get(&group.delivery).is_some_and(|b| {
                    b.accepted.get(type_url).is_some_and(|a| {
                        items
                            .iter()
                            .all(|e| a.get(&e.name).is_some_and(|x| x.version == e.version))
                    })
                });
                if known {
                    return false;
                }
                let book = books.entry(group.delivery.clone()).or_default();
                let accepted = book.accepted.entry(type_url.to_string()).or_default();
                for e in items {
                    let same = accepted
                        .get(&e.name)
                        .is_some_and(|a| a.version == e.version);
                    let key = (type_url.to_string(), e.name.clone(), e.version.clone());
                    if !same && !book.rejected.contains_key(&key) {
                        accepted.insert(e.name.clone(), e.clone());
                    }
                }
                false
            }
            Verdict::Rejected { node_id, message } => {
                let book = books.entry(group.delivery.clone()).or_default();
                let accepted = book.accepted.get(type_url);
                let suspects: Vec<&Arc<Encoded>> = items
                    .iter()
                    .filter(|e| {
                        accepted
                            .and_then(|a| a.get(&e.name))
                            .is_none_or(|a| a.version != e.version)
                    })
                    .collect();
                let named: Vec<&Arc<Encoded>> = suspects
                    .iter()
                    .copied()
                    .filter(|e| mentions(message, &e.name))
                    .collect();
                let culprits = if named.is_empty() { suspects } else { named };
                let mut new = false;
                for e in culprits {
                    let key = (type_url.to_string(), e.name.clone(), e.version.clone());
                    new |= book
                        .rejected
                        .insert(
                            key,
                            Rejection {
                                node_id: node_id.to_string(),
                                message: message.to_string(),
                            },
                        )
                        .is_none();
                }
                if new {
                    book.applied.clear();
                    let total = books.values().map(|b| b.rejected.len()).sum();
                    self.rejections.store(total, Ordering::Release);
                    drop(books);
                    self.generation.send_modify(|g| *g += 1);
                }
                new
            }
        }
    }

    /// `raw` (a group's translation) with every rejected version replaced by the last version
    /// a proxy of the group accepted, or left out when none did. Returns `raw` itself when
    /// nothing of it is held back. Rejections of versions the translation no longer holds are
    /// forgotten: the operator changed the object.
    pub fn apply(&self, raw: Arc<Resources>) -> Arc<Resources> {
        if self.rejections.load(Ordering::Acquire) == 0 {
            return raw;
        }
        let mut books = self.books.lock().unwrap();
        let Some(book) = books.get_mut(&raw.group.delivery) else {
            return raw;
        };
        if book.rejected.is_empty() {
            return raw;
        }
        let key = Arc::as_ptr(&raw) as usize;
        book.applied.retain(|_, (from, _)| from.strong_count() > 0);
        if let Some((_, out)) = book.applied.get(&key) {
            return out.clone();
        }
        let current = |(t, n, v): &Key| {
            raw.of_type(t)
                .and_then(|all| all.get(n))
                .is_some_and(|e| e.version == *v)
        };
        let has = |(t, n, _): &Key| raw.of_type(t).is_some_and(|all| all.contains_key(n));
        // Forget what this translation no longer holds at the rejected version: the operator
        // changed it (a resource this selection does not have at all may still matter to
        // another selection of the group).
        book.rejected.retain(|k, _| current(k) || !has(k));
        let total = books.values().map(|b| b.rejected.len()).sum();
        self.rejections.store(total, Ordering::Release);
        let book = books.get_mut(&raw.group.delivery).expect("looked up above");
        let held: Vec<(&Key, &Rejection)> =
            book.rejected.iter().filter(|(k, _)| current(k)).collect();
        if held.is_empty() {
            return raw;
        }
        let mut out = (*raw).clone();
        for ((t, name, version), why) in held {
            let fallback = book.accepted.get(t).and_then(|a| a.get(name));
            // The rejected version's objects, and which of them the rejection is about.
            let origins: Arc<[_]> = raw
                .of_type(t)
                .and_then(|all| all.get(name))
                .map(|rejected| blame(&rejected.origins, fallback.map(|g| &*g.origins)))
                .unwrap_or_default()
                .into();
            let all = out.by_type.entry(t.clone()).or_default();
            match fallback {
                Some(good) => all.insert(name.clone(), good.clone()),
                None => all.remove(name),
            };
            out.held_back.push(HeldBack {
                type_url: t.clone(),
                name: name.clone(),
                rejected_version: version.clone(),
                serving_version: fallback.map(|g| g.version.clone()),
                rejected_by: why.node_id.clone(),
                message: why.message.clone(),
                origins,
            });
        }
        let out = Arc::new(out);
        book.applied
            .insert(key, (Arc::downgrade(&raw), out.clone()));
        out
    }

    /// How many resource versions are held back, over every group (for `/metrics`).
    pub fn held_back(&self) -> usize {
        let books = self.books.lock().unwrap();
        books.values().map(|b| b.rejected.len()).sum()
    }

    /// Forgets the groups that hold no rejection and have no live selection (no stream uses
    /// them), so churn does not grow memory; groups with rejections stay, so a proxy that
    /// restarts still gets the last version its group accepted.
    pub fn retain(&self, live: impl Fn(&Delivery) -> bool) {
        let mut books = self.books.lock().unwrap();
        books.retain(|delivery, book| !book.rejected.is_empty() || live(delivery));
    }
}

/// Whether `message` names `name` as a word (not inside a longer name).
pub(crate) fn mentions(message: &str, name: &str) -> bool {
    let part = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    message.match_indices(name).any(|(at, _)| {
        let before = message[..at].chars().next_back();
        let after = message[at + name.len()..].chars().next();
        !name.is_empty() && !before.is_some_and(part) && !after.is_some_and(part)
    })
}
