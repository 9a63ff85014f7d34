//! The final check: every bot's peer set against a brute-force oracle over the bots' own
//! positions, with the server's hysteresis.

use std::collections::{BTreeMap, BTreeSet};

use super::bot::Bot;
use crate::protocol::{PeerId, Realm, SpaceId};
use crate::proximity::{ProximityConfig, VoiceRules, check_capped_with_rules};

/// Counts pairs that break the rules: within `range` but not introduced, beyond `leave_range`
/// but introduced, introduced on one side only, or introduced to an id that is not connected.
/// Between the two distances either state is right (it depends on history), if symmetric.
/// With a peer cap, every rule of the cap is checked instead of "within range means in".
/// Voice rules (`party`): a blocked pair is never introduced, a group pair always is, and the
/// distances of the others are times the larger voice range of the two.
pub(crate) fn mismatches(
    bots: &[Bot],
    config: &ProximityConfig,
    rules: &VoiceRules,
) -> (usize, Vec<String>) {
    let (range, leave) = (config.range, config.leave_range);
    let live: BTreeMap<PeerId, &Bot> = bots
        .iter()
        .filter(|b| b.is_connected() && b.welcomed() && b.sent.is_some())
        .map(|b| (b.id, b))
        .collect();
    let mut count = 0;
    let mut examples = Vec::new();
    let mut note = |count: &mut usize, text: String| {
        *count += 1;
        if examples.len() < 10 {
            examples.push(text);
        }
    };
    let all: Vec<&Bot> = live.values().copied().collect();
    for (n, a) in all.iter().enumerate() {
        for p in a.peers() {
            if !live.contains_key(p) {
                note(
                    &mut count,
                    format!("{} lists {p}, which is not connected", a.id),
                );
            }
        }
        let pa = a.sent.expect("filtered").0;
        if config.max_peers.is_some() {
            continue; // pairs are judged by the cap's rules below
        }
        for b in &all[n + 1..] {
            let pb = b.sent.expect("filtered").0;
            let d2 = (pa[0] - pb[0]).powi(2) + (pa[1] - pb[1]).powi(2) + (pa[2] - pb[2]).powi(2);
            let (ab, ba) = (a.peers().contains(&b.id), b.peers().contains(&a.id));
            let d = d2.sqrt();
            let blocked = rules.is_blocked(a.id, b.id);
            let grouped = !blocked && rules.share_group(a.id, b.id, Realm(0));
            let s = rules.scale(a.id, b.id);
            let (range_sq, leave_sq) = (range * range * s * s, leave * leave * s * s);
            if ab != ba {
                note(
                    &mut count,
                    format!(
                        "{} and {} disagree at distance {d:.2} ({ab} / {ba})",
                        a.id, b.id
                    ),
                );
            } else if blocked && ab {
                note(
                    &mut count,
                    format!("{} and {} introduced though blocked", a.id, b.id),
                );
            } else if grouped && !ab {
                note(
                    &mut count,
                    format!("{} and {} share a group but are not introduced", a.id, b.id),
                );
            } else if grouped || blocked {
            } else if d2 <= range_sq && !ab {
                note(
                    &mut count,
                    format!("{} and {} not introduced at distance {d:.2}", a.id, b.id),
                );
            } else if d2 > leave_sq && ab {
                note(
                    &mut count,
                    format!("{} and {} still introduced at distance {d:.2}", a.id, b.id),
                );
            }
        }
    }
    if config.max_peers.is_some() {
        let mut pairs = BTreeSet::new();
        for a in &all {
            for &p in a.peers() {
                if let Some(b) = live.get(&p) {
                    if !b.peers().contains(&a.id) {
                        note(
                            &mut count,
                            format!("{} lists {} but not the other way", a.id, p),
                        );
                    }
                    pairs.insert(if a.id < p { (a.id, p) } else { (p, a.id) });
                }
            }
        }
        let clients: Vec<_> = all
            .iter()
            .map(|b| (b.id, Realm(0), SpaceId(0), b.sent.expect("filtered").0))
            .collect();
        for violation in check_capped_with_rules(config, rules, &clients, &pairs) {
            note(&mut count, format!("{violation:?}"));
        }
    }
    (count, examples)
}
