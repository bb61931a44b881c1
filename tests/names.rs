//! Names mldeploy derives from several config names cannot collide: two projects whose names
//! differ only in where a dash falls (`a-b` + `c`, `a` + `b-c`) get different kubeconfig
//! contexts, Terraform state keys and ApplySets (parent name and id) — for (project, cluster)
//! and (project, environment) pairs alike.

use std::collections::BTreeMap;

use mldeploy::cluster::applyset::ApplySet;
use mldeploy::infra::{default_context, work_dir_rel};
use mldeploy::model::names::{StateDefaults, dns_label, secret_suffix};
use proptest::prelude::*;

/// A DNS-1123 label, biased towards short names with dashes so that dash placements collide
/// under a `-` separator.
fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-c]([a-c-]{0,4}[a-c])?",
        "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?",
    ]
    .prop_filter("a DNS label", |s| dns_label(s).is_ok())
}

/// Every derived name of a (project, cluster) pair, by kind.
fn derived(project: &str, cluster: &str) -> Vec<(&'static str, String)> {
    let s = StateDefaults::new(project, cluster);
    vec![
        ("context", default_context(project, cluster)),
        ("gcs prefix", s.gcs_prefix),
        ("s3 key", s.s3_key),
        ("azurerm key", s.azurerm_key),
        ("secret suffix", s.secret_suffix),
        ("work dir", work_dir_rel(project, cluster)),
        // The second name read as an environment: the ApplySet of (project, env) in one namespace.
        (
            "applyset parent",
            ApplySet::new(project, cluster, "shared").name,
        ),
        ("applyset id", ApplySet::new(project, cluster, "shared").id),
    ]
}

#[test]
fn the_dash_collision_of_the_issue_is_gone() {
    for (kind, name) in derived("a-b", "c") {
        let other = derived("a", "b-c")
            .into_iter()
            .find(|(k, _)| *k == kind)
            .expect("same kinds")
            .1;
        assert_ne!(name, other, "{kind}");
    }
    let s = StateDefaults::new("a-b", "c");
    assert_eq!(StateDefaults::legacy_secret_suffix("a-b", "c"), "a-b-c");
    assert_eq!(s.secret_suffix, "a-b.c.state");
    assert_eq!(default_context("a-b", "c"), "mldeploy.a-b.c");
    assert_eq!(ApplySet::new("a-b", "c", "shared").name, "mldeploy.a-b.c");
}

/// Pairs that a `-` separator would merge: `(x-y, z)` and `(x, y-z)`, plus unrelated ones.
fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    (
        label(),
        label(),
        label(),
        proptest::collection::vec((label(), label()), 0..8),
    )
        .prop_map(|(x, y, z, mut rest)| {
            for pair in [(format!("{x}-{y}"), z.clone()), (x, format!("{y}-{z}"))] {
                if dns_label(&pair.0).is_ok() && dns_label(&pair.1).is_ok() {
                    rest.push(pair);
                }
            }
            rest
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// No two distinct (project, cluster) or (project, environment) pairs map to the same name of
    /// any kind.
    #[test]
    fn distinct_pairs_never_share_a_name(pairs in pairs()) {
        let mut seen: BTreeMap<(&'static str, String), (String, String)> = BTreeMap::new();
        for (p, c) in &pairs {
            for (kind, name) in derived(p, c) {
                if let Some(prev) = seen.insert((kind, name.clone()), (p.clone(), c.clone())) {
                    prop_assert_eq!(&prev, &(p.clone(), c.clone()), "{} `{}` is shared", kind, name);
                }
            }
        }
    }

    /// The secret suffix fits its grammar (a label value, part of a Secret name, not ending in
    /// `-<number>`) whenever it fits in 63 characters.
    #[test]
    fn secret_suffixes_are_valid_when_short_enough(p in label(), c in label()) {
        let s = StateDefaults::new(&p, &c).secret_suffix;
        if s.len() <= 63 {
            prop_assert!(secret_suffix(&s).is_ok(), "{}", s);
        }
    }
}
