//! Last-known-good rules: a rejected version is replaced by the group's last accepted one (or
//! left out), pinned on what the proxy's message names, per group, and forgotten once the
//! operator changes the object.

use std::sync::Arc;

use super::*;
use crate::{translate::Delivery, xds::fixtures::*};

fn group(listener: &str) -> Selection {
    Selection {
        listeners: vec![listener.to_string()],
        envoy_resources: vec![],
        delivery: Delivery::Ads,
        ..Selection::default()
    }
}

/// Resources for group `g` with clusters as `"name:tag ..."`.
fn clusters(g: &Selection, spec: &str) -> Arc<Resources> {
    let mut r = (*with_types(&[(CDS, spec)])).clone();
    r.group = g.clone();
    Arc::new(r)
}

fn items(r: &Resources) -> Vec<Arc<Encoded>> {
    r.of_type(CDS).unwrap().values().cloned().collect()
}

/// `"name:tag"` of each cluster, by name.
fn tags(r: &Resources) -> Vec<String> {
    r.of_type(CDS)
        .map(|all| {
            all.values()
                .map(|e| {
                    String::from_utf8(e.resource.value.clone())
                        .unwrap()
                        .replace('#', ":")
                })
                .collect()
        })
        .unwrap_or_default()
}

const NODE: &str = "proxy-1";

fn reject(v: &Verdicts, r: &Resources, message: &str) -> bool {
    let verdict = Verdict::Rejected {
        node_id: NODE,
        message,
    };
    v.record(&r.group, CDS, &items(r), verdict)
}

#[test]
fn a_rejected_version_is_replaced_by_the_last_accepted_one() {
    let v = Verdicts::default();
    let g = group("l");
    let good = clusters(&g, "a:1 b:1");
    v.record(&g, CDS, &items(&good), Verdict::Accepted);
    let generation = v.watch();

    let bad = clusters(&g, "a:2 b:1");
    assert!(reject(&v, &bad, "cluster a: bad"));
    assert!(generation.has_changed().unwrap(), "streams are woken");
    let out = v.apply(bad.clone());
    assert_eq!(
        tags(&out),
        ["a:1", "b:1"],
        "a held back at its accepted version"
    );
    assert_eq!(out.held_back.len(), 1);
    let held = &out.held_back[0];
    assert_eq!((held.name.as_str(), held.rejected_by.as_str()), ("a", NODE));
    assert_eq!(
        held.serving_version.as_deref(),
        Some(good.of_type(CDS).unwrap()["a"].version.as_str())
    );
    // Every stream of the group shares one result.
    assert!(Arc::ptr_eq(&out, &v.apply(bad.clone())));
    assert_eq!(v.held_back(), 1);
    // The same rejection again is nothing new.
    assert!(!reject(&v, &bad, "cluster a: bad"));

    // The operator fixes a: the new version goes out and the rejection is forgotten.
    let fixed = clusters(&g, "a:3 b:1");
    let out = v.apply(fixed.clone());
    assert!(Arc::ptr_eq(&out, &fixed));
    assert_eq!(v.held_back(), 0);
}

#[test]
fn a_rejection_is_pinned_on_what_the_message_names() {
    let v = Verdicts::default();
    let g = group("l");
    v.record(&g, CDS, &items(&clusters(&g, "a:1 b:1")), Verdict::Accepted);
    let bad = clusters(&g, "a:2 b:2");
    reject(&v, &bad, "Error adding/updating cluster(s) b: bad");
    assert_eq!(
        tags(&v.apply(bad.clone())),
        ["a:2", "b:1"],
        "only b was named"
    );

    // A message naming none of what changed blames all of it; "a" inside "ab" is not "a".
    let v = Verdicts::default();
    v.record(&g, CDS, &items(&clusters(&g, "a:1 b:1")), Verdict::Accepted);
    reject(&v, &bad, "something about cluster ab");
    assert_eq!(tags(&v.apply(bad)), ["a:1", "b:1"]);
}

#[test]
fn a_version_nobody_accepted_is_left_out_and_accepted_ones_are_not_blamed() {
    let v = Verdicts::default();
    let g = group("l");
    v.record(&g, CDS, &items(&clusters(&g, "a:1")), Verdict::Accepted);
    let bad = clusters(&g, "a:1 new:1");
    reject(&v, &bad, "bad");
    let out = v.apply(bad);
    assert_eq!(
        tags(&out),
        ["a:1"],
        "new is left out; a was accepted before, so not blamed"
    );
    assert_eq!(out.held_back[0].serving_version, None);
}

/// A group is every proxy fetching the same way: one that gets its assignments over separate
/// streams is sent other bytes, so not held back by an ADS proxy's rejection.
#[test]
fn verdicts_are_per_group() {
    let v = Verdicts::default();
    let g1 = group("one");
    let g2 = Selection {
        delivery: Delivery::Separate {
            delta: false,
            xds_cluster: "xds_cluster".into(),
        },
        ..group("one")
    };
    v.record(&g1, CDS, &items(&clusters(&g1, "a:1")), Verdict::Accepted);
    reject(&v, &clusters(&g1, "a:2"), "bad a");
    let other = clusters(&g2, "a:2");
    assert!(
        Arc::ptr_eq(&v.apply(other.clone()), &other),
        "group two is not held back"
    );
    // Groups without rejections are forgotten when no stream uses them; others stay.
    v.record(&g2, CDS, &items(&other), Verdict::Accepted);
    v.retain(|_| false);
    assert_eq!(v.books.lock().unwrap().len(), 1);
}

/// Adding a listener or a raw resource changes a proxy's selection, not its group: the
/// history of what the group accepted still applies.
#[test]
fn a_new_selection_keeps_the_groups_history() {
    let v = Verdicts::default();
    let before = group("one");
    v.record(
        &before,
        CDS,
        &items(&clusters(&before, "a:1")),
        Verdict::Accepted,
    );
    let after = Selection {
        envoy_resources: vec!["a".into()],
        ..group("one")
    };
    let bad = clusters(&after, "a:2");
    reject(&v, &bad, "bad a");
    assert_eq!(
        tags(&v.apply(bad)),
        ["a:1"],
        "the accepted version, not nothing"
    );
}

#[test]
fn an_acceptance_of_a_rejected_version_does_not_make_it_good() {
    let v = Verdicts::default();
    let g = group("l");
    v.record(&g, CDS, &items(&clusters(&g, "a:1")), Verdict::Accepted);
    let bad = clusters(&g, "a:2");
    reject(&v, &bad, "bad a");
    // A peer that got a:2 before the rejection acknowledges it late.
    v.record(&g, CDS, &items(&bad), Verdict::Accepted);
    assert_eq!(tags(&v.apply(bad)), ["a:1"]);
}

#[test]
fn turned_off_nothing_is_recorded_or_held_back() {
    let v = Verdicts::default();
    v.set_enabled(false);
    let g = group("l");
    v.record(&g, CDS, &items(&clusters(&g, "a:1")), Verdict::Accepted);
    let bad = clusters(&g, "a:2");
    assert!(!reject(&v, &bad, "bad a"));
    assert!(Arc::ptr_eq(&v.apply(bad.clone()), &bad));
}
