//! The final check: every bot's peer set against a brute-force oracle over the bots' own
//! positions, with the server's hysteresis.

use std::collections::BTreeMap;

use super::bot::Bot;
use crate::protocol::PeerId;

/// Counts pairs that break the rules: within `range` but not introduced, beyond `leave_range`
/// but introduced, introduced on one side only, or introduced to an id that is not connected.
/// Between the two distances either state is right (it depends on history), if symmetric.
pub(crate) fn mismatches(bots: &[Bot], range: f32, leave: f32) -> (usize, Vec<String>) {
    let live: BTreeMap<PeerId, &Bot> = bots
        .iter()
        .filter(|b| b.is_connected() && b.welcomed && b.sent.is_some())
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
        for p in &a.peers {
            if !live.contains_key(p) {
                note(
                    &mut count,
                    format!("{} lists {p}, which is not connected", a.id),
                );
            }
        }
        let pa = a.sent.expect("filtered").0;
        for b in &all[n + 1..] {
            let pb = b.sent.expect("filtered").0;
            let d2 = (pa[0] - pb[0]).powi(2) + (pa[1] - pb[1]).powi(2) + (pa[2] - pb[2]).powi(2);
            let (ab, ba) = (a.peers.contains(&b.id), b.peers.contains(&a.id));
            let d = d2.sqrt();
            if ab != ba {
                note(
                    &mut count,
                    format!(
                        "{} and {} disagree at distance {d:.2} ({ab} / {ba})",
                        a.id, b.id
                    ),
                );
            } else if d2 <= range * range && !ab {
                note(
                    &mut count,
                    format!("{} and {} not introduced at distance {d:.2}", a.id, b.id),
                );
            } else if d2 > leave * leave && ab {
                note(
                    &mut count,
                    format!("{} and {} still introduced at distance {d:.2}", a.id, b.id),
                );
            }
        }
    }
    (count, examples)
}
