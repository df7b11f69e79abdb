//! Provenance: the mesh objects each translated resource came from, so what a proxy says of a
//! resource (a NACK) can be shown on the objects that made it.
//!
//! Recorded once per group translation, on each [`Encoded`](super::Encoded) (shared by every
//! proxy of the group, never copied per stream). Where several objects make one resource (a
//! listener's route configuration: the listener and each route it includes; a service's
//! assignment: the service and its endpoints), each origin carries a hash of its own part, so
//! when a version is rejected and the group keeps an older one, the objects whose part changed
//! are told apart from those whose part the group still runs ([`blame`]).

use std::{fmt, sync::Arc};

use super::content_hash;
use crate::model::Kind;

/// A mesh object, by kind and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    pub kind: Kind,
    pub name: String,
}

impl ObjectRef {
    pub fn new(kind: Kind, name: &str) -> Self {
        Self {
            kind,
            name: name.to_string(),
        }
    }
}

impl fmt::Display for ObjectRef {
    /// `routes/web`, as the REST paths name it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.collection(), self.name)
    }
}

/// One object a resource came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub object: ObjectRef,
    /// A hash of this object's part of the resource, when several objects made it; `None`
    /// when it made all of it (then any change of the resource is a change of its part).
    pub part: Option<u64>,
}

/// A resource's origins, in a fixed order (the deciding object first).
pub type Origins = Arc<[Origin]>;

impl Origin {
    /// `kind/name` made the whole resource.
    pub fn whole(kind: Kind, name: &str) -> Self {
        Self {
            object: ObjectRef::new(kind, name),
            part: None,
        }
    }

    /// `kind/name` made the part of the resource whose stable bytes are `part`.
    pub fn part(kind: Kind, name: &str, part: &[u8]) -> Self {
        Self {
            object: ObjectRef::new(kind, name),
            part: Some(content_hash(part)),
        }
    }
}

/// The objects a rejected version came from, each with whether the rejection is theirs: the
/// object made the whole resource, or its part differs from the version the group runs
/// instead (`serving`), or the group runs no version at all. When no part differs (the same
/// parts, arranged otherwise), every object is to blame.
pub fn blame(rejected: &[Origin], serving: Option<&[Origin]>) -> Vec<(ObjectRef, bool)> {
    let changed = |o: &Origin| match (o.part, serving) {
        (Some(part), Some(serving)) => !serving
            .iter()
            .any(|s| s.object == o.object && s.part == Some(part)),
        _ => true,
    };
    let mut out: Vec<(ObjectRef, bool)> = rejected
        .iter()
        .map(|o| (o.object.clone(), changed(o)))
        .collect();
    if !out.iter().any(|(_, culprit)| *culprit) {
        for (_, culprit) in &mut out {
            *culprit = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blame_falls_on_changed_parts_whole_makers_and_everyone_without_a_fallback() {
        let listener = Origin::part(Kind::Listener, "ingress", b"frame");
        let good = Origin::part(Kind::Route, "good", b"vh-good");
        let bad_before = Origin::part(Kind::Route, "bad", b"vh-bad-1");
        let bad_now = Origin::part(Kind::Route, "bad", b"vh-bad-2");
        let rejected = [listener.clone(), good.clone(), bad_now];
        let serving = [listener.clone(), good.clone(), bad_before];
        let culprits = |b: Vec<(ObjectRef, bool)>| -> Vec<String> {
            b.into_iter()
                .filter(|(_, c)| *c)
                .map(|(o, _)| o.to_string())
                .collect()
        };
        assert_eq!(
            culprits(blame(&rejected, Some(&serving))),
            ["routes/bad"],
            "only the route whose virtual host changed"
        );
        // A route new in the rejected version is to blame too.
        let added = [
            listener.clone(),
            good.clone(),
            Origin::part(Kind::Route, "new", b"vh"),
        ];
        assert_eq!(
            culprits(blame(&added, Some(&[listener.clone(), good.clone()]))),
            ["routes/new"]
        );
        // Never accepted: every object that made it.
        assert_eq!(
            culprits(blame(&rejected, None)).len(),
            3,
            "no fallback, everyone"
        );
        // Whole makers are always to blame.
        let cluster = [Origin::whole(Kind::Service, "web")];
        assert_eq!(culprits(blame(&cluster, Some(&cluster))), ["services/web"]);
        // Same parts in another order: nobody in particular, so everyone.
        let reordered = [good.clone(), listener.clone()];
        assert_eq!(
            culprits(blame(&reordered, Some(&[listener, good]))).len(),
            2
        );
    }
}
