//! The `party` scenario's voice rules: parties of [`PARTY`] scattered over the world (their
//! group in each bot's connect-token user data), and, a quarter into the measured window, random
//! blocks and a few shouters sent by the bots themselves. The final check holds the server to
//! the same rules.

use super::Run;
use super::scenario::ScenarioKind;
use crate::protocol::{ClientToServer, PeerId, Realm, token_user_data};
use crate::proximity::{GroupId, VoiceRules};

/// Members of one party.
pub(crate) const PARTY: u64 = 4;

/// Share of bots that block one random other bot.
const BLOCKERS: f32 = 0.08;

/// Share of bots that shout (voice range 2).
const SHOUTERS: f32 = 0.05;

/// The party of bot `id` (ids start at 1).
pub(crate) fn party_of(id: PeerId) -> GroupId {
    GroupId((id.0 - 1) / PARTY + 1)
}

/// Connect-token user data of bot `id` in a run of `kind`.
pub(crate) fn user_data(kind: ScenarioKind, id: PeerId) -> [u8; 256] {
    match kind {
        ScenarioKind::Party => token_user_data(Realm(0), &[party_of(id)]),
        _ => Realm(0).to_user_data(),
    }
}

/// The rules the bots of a `party` run set; empty otherwise.
#[derive(Debug, Default)]
pub(crate) struct PartyRules {
    pub rules: VoiceRules,
    /// The blocks and shouts went out.
    sent: bool,
}

impl PartyRules {
    /// Bot `id` joined: its party, as the server read it from the token.
    pub fn joined(&mut self, run_kind: ScenarioKind, id: PeerId) {
        if run_kind == ScenarioKind::Party {
            self.rules
                .groups
                .entry(id)
                .or_default()
                .insert((Realm(0), party_of(id)));
        }
    }
}

/// At a quarter of the window: some bots block a random other bot, a few shout. Each rule is
/// also given to the latency tracker's core, so it expects what the server does.
pub(crate) fn set_rules_mid_run(run: &mut Run, phase: f64) {
    if run.args.scenario != ScenarioKind::Party || run.party.sent || phase < 0.25 {
        return;
    }
    run.party.sent = true;
    let n = run.bots.len();
    for k in 0..n {
        if !run.bots[k].is_connected() {
            continue;
        }
        let me = run.bots[k].id;
        if run.scenario.rng().unit() < BLOCKERS && n > 1 {
            let other = run.bots[(k + 1 + run.scenario.rng().below(n - 1)) % n].id;
            run.bots[k].send_control(&ClientToServer::Block {
                peer: other,
                blocked: true,
            });
            run.party
                .rules
                .blocks
                .insert(if me < other { (me, other) } else { (other, me) });
            if let Some(core) = run.latency.core.as_mut() {
                core.set_blocked(me, other, true);
            }
        }
        if run.scenario.rng().unit() < SHOUTERS {
            run.bots[k].send_control(&ClientToServer::SetVoiceRange { multiplier: 2.0 });
            run.party.rules.voice.insert(me, 2.0);
            if let Some(core) = run.latency.core.as_mut() {
                let _ = core.set_voice_range(me, 2.0);
            }
        }
    }
}

/// Gives bot `id`'s party to the latency tracker's core.
pub(crate) fn track(run: &mut Run, id: PeerId) {
    if run.args.scenario == ScenarioKind::Party
        && let Some(core) = run.latency.core.as_mut()
    {
        core.set_max_group_size(PARTY as usize);
        let _ = core.join_group(id, Realm(0), party_of(id));
    }
}
