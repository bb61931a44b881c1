//! "Did you mean …?" — the closest valid name to a misspelt one.

/// Edit distance between two strings (Levenshtein, by characters).
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `got`, if it is close enough to be a plausible typo
/// (at most a third of the longer name differs, and at least one character matches).
pub fn closest<'a>(got: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = got.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, c)| {
            let longest = got.chars().count().max(c.chars().count());
            *d * 3 <= longest.max(3) && *d < longest
        })
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_names_only() {
        assert_eq!(
            closest("replica", ["replicas", "resources"]),
            Some("replicas")
        );
        assert_eq!(
            closest("seldon-v3", ["seldon", "seldon-v2", "kserve"]),
            Some("seldon-v2")
        );
        assert_eq!(closest("T4", ["t4", "l4"]), Some("t4"));
        assert_eq!(closest("banana", ["t4", "l4"]), None);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
