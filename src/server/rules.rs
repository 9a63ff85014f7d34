//! Voice rules the game sets and the server enforces (#17): groups (parties, teams, radio
//! frequencies), blocks and voice range multipliers (whisper, shout).
//!
//! Who sets what:
//! - Embedded, the game puts components on the client entity (the one with [`MinglePeer`]):
//!   [`VoiceGroups`], [`VoiceBlocks`], [`VoiceRange`].
//! - Standalone, the game's backend uses the admin HTTP API of `mingle-server`
//!   ([`admin`](super::admin)) and puts initial groups in the connect token's user data
//!   ([`token_user_data`](crate::protocol::token_user_data)).
//! - A client may block a peer for its session ([`ClientToServer::Block`]) and, if the
//!   configuration allows, set its own voice range ([`ClientToServer::SetVoiceRange`]).
//!
//! Every source is kept apart in [`VoiceRulesState`] and their union is applied to the proximity
//! core as it changes; the core acts on it at its next tick. Groups, voice ranges and session
//! blocks last for the connection; blocks set through the admin API outlive it (they name ids).
//!
//! [`ClientToServer::Block`]: crate::protocol::ClientToServer::Block
//! [`ClientToServer::SetVoiceRange`]: crate::protocol::ClientToServer::SetVoiceRange

use std::collections::BTreeSet;
use std::net::SocketAddr;

use bevy::ecs::change_detection::DetectChanges;
use bevy::ecs::system::SystemParam;
use bevy::log::warn;
use bevy::prelude::{
    Added, Changed, Component, Entity, Or, Query, RemovedComponents, Res, ResMut, Resource,
};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::components::MinglePeer;
use super::tick::ProximityIndex;
use super::udp::ServerTransport;
use crate::kit::ordered;
use crate::protocol::{PeerId, Realm, RejectReason, token_groups};
use crate::proximity::{GroupId, MAX_VOICE_RANGE, Proximity, RuleError};
use crate::settings::{InvalidSetting, require};

/// The voice rules' settings (`[voice_rules]` in the configuration file).
#[derive(Debug, Clone, PartialEq, Resource, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VoiceRulesConfig {
    /// Most members of one group: a group of n is a mesh of n(n-1)/2 links. Joins beyond it
    /// are refused. Default: 16.
    pub max_group_size: u32,
    /// Smallest voice range multiplier (a whisper). Default: 0.5.
    pub min_voice_range: f32,
    /// Largest voice range multiplier (a shout), at most 4. Default: 2.0.
    pub max_voice_range: f32,
    /// Whether clients may set their own multiplier (within the bounds). The game's choice
    /// (component or admin API) wins over the client's. Default: true.
    pub clients_set_voice_range: bool,
    /// Most peers one client may block for its session. Default: 256.
    pub max_session_blocks: u32,
    /// Where `mingle-server` serves the admin HTTP API, e.g. `127.0.0.1:9465`. Off a loopback
    /// address it requires a bearer secret (`--admin-secret-file` or `MINGLE_ADMIN_SECRET`).
    /// Default: none (off).
    pub admin_addr: Option<SocketAddr>,
}

impl Default for VoiceRulesConfig {
    fn default() -> Self {
        VoiceRulesConfig {
            max_group_size: 16,
            min_voice_range: 0.5,
            max_voice_range: 2.0,
            clients_set_voice_range: true,
            max_session_blocks: 256,
            admin_addr: None,
        }
    }
}

impl VoiceRulesConfig {
    /// Checks the group size is at least 1 and `0 < min_voice_range <= 1 <= max_voice_range
    /// <= 4`.
    ///
    /// # Errors
    /// The first field out of range, named by its path in the config file.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        require(
            "voice_rules.max_group_size",
            self.max_group_size >= 1,
            "at least 1",
            self.max_group_size,
        )?;
        let (lo, hi) = (self.min_voice_range, self.max_voice_range);
        require(
            "voice_rules.min_voice_range",
            lo.is_finite() && lo > 0.0 && lo <= 1.0,
            "in (0, 1]",
            lo,
        )?;
        require(
            "voice_rules.max_voice_range",
            hi.is_finite() && (1.0..=MAX_VOICE_RANGE).contains(&hi),
            format_args!("in [1, {MAX_VOICE_RANGE}]"),
            hi,
        )
    }

    /// `voice` clamped to the bounds (a game's choice); `None` if not finite.
    fn clamp(&self, voice: f32) -> Option<f32> {
        voice
            .is_finite()
            .then(|| voice.clamp(self.min_voice_range, self.max_voice_range))
    }
}

/// The groups this client is in (embedded API): each a group of its realm. The game writes it;
/// changes take effect at the next tick. A group at its size limit refuses the join (logged,
/// counted in `mingle_rule_refusals_total`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Component)]
pub struct VoiceGroups(pub Vec<GroupId>);

/// Peers this client blocks (embedded API), as long as the component says so.
#[derive(Debug, Clone, Default, PartialEq, Eq, Component)]
pub struct VoiceBlocks(pub Vec<PeerId>);

/// This client's voice range multiplier set by the game (embedded API): whisper 0.5, normal 1,
/// shout 2. Clamped to the configured bounds; wins over the client's own choice.
#[derive(Debug, Clone, Copy, PartialEq, Component)]
pub struct VoiceRange(pub f32);

/// Every source of voice rules, kept apart, and the union applied to the core.
#[derive(Debug, Default, Resource)]
pub struct VoiceRulesState {
    /// Connected peers' realms, by entity (to clean up after a despawn).
    connected: FxHashMap<Entity, (PeerId, Realm)>,
    realms: FxHashMap<PeerId, Realm>,
    /// Groups from the [`VoiceGroups`] component, as last applied.
    component_groups: FxHashMap<PeerId, Vec<GroupId>>,
    /// Groups from the connect token and the admin API.
    assigned_groups: FxHashMap<PeerId, BTreeSet<GroupId>>,
    /// Voice range from the admin API, the component, the client itself.
    admin_voice: FxHashMap<PeerId, f32>,
    component_voice: FxHashMap<PeerId, f32>,
    own_voice: FxHashMap<PeerId, f32>,
    /// Blocks by the client itself, this session: blocker → blocked.
    session_blocks: FxHashMap<PeerId, BTreeSet<PeerId>>,
    /// Blocks from the [`VoiceBlocks`] component, as last applied.
    component_blocks: FxHashMap<PeerId, Vec<PeerId>>,
    /// Blocks of the admin API: persistent, by id.
    admin_blocks: BTreeSet<(PeerId, PeerId)>,
    /// Sources holding each blocked pair.
    block_holds: FxHashMap<(PeerId, PeerId), u32>,
}

impl VoiceRulesState {
    /// The realm of connected `peer`.
    pub fn realm_of(&self, peer: PeerId) -> Option<Realm> {
        self.realms.get(&peer).copied()
    }

    /// Whether the game or the client put `a` and `b` out of each other's reach.
    pub fn is_blocked(&self, a: PeerId, b: PeerId) -> bool {
        self.block_holds.contains_key(&ordered(a, b))
    }

    /// Blocks set through the admin API, smaller id first.
    pub fn admin_blocks(&self) -> impl Iterator<Item = (PeerId, PeerId)> + '_ {
        self.admin_blocks.iter().copied()
    }

    /// Groups set through the admin API or the token for `peer`.
    pub fn assigned_groups(&self, peer: PeerId) -> impl Iterator<Item = GroupId> + '_ {
        self.assigned_groups
            .get(&peer)
            .into_iter()
            .flatten()
            .copied()
    }

    /// Peers `peer` blocked itself this session.
    pub fn session_blocks(&self, peer: PeerId) -> impl Iterator<Item = PeerId> + '_ {
        self.session_blocks
            .get(&peer)
            .into_iter()
            .flatten()
            .copied()
    }

    fn hold_block(&mut self, core: &mut Proximity, a: PeerId, b: PeerId) {
        let n = self.block_holds.entry(ordered(a, b)).or_insert(0);
        *n += 1;
        if *n == 1 {
            core.set_blocked(a, b, true);
        }
    }

    fn release_block(&mut self, core: &mut Proximity, a: PeerId, b: PeerId) {
        let key = ordered(a, b);
        if let Some(n) = self.block_holds.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.block_holds.remove(&key);
                core.set_blocked(a, b, false);
            }
        }
    }

    /// Whether `peer` is in `group` by some source.
    fn wants_group(&self, peer: PeerId, group: GroupId) -> bool {
        self.component_groups
            .get(&peer)
            .is_some_and(|g| g.contains(&group))
            || self
                .assigned_groups
                .get(&peer)
                .is_some_and(|g| g.contains(&group))
    }

    /// Puts connected `peer` into `group` of its realm (admin API, token). Takes effect at the
    /// next tick. Returns whether it joined (false: already in).
    ///
    /// # Errors
    /// [`RuleError::GroupFull`]; nothing changes.
    pub fn assign_group(
        &mut self,
        core: &mut Proximity,
        peer: PeerId,
        group: GroupId,
    ) -> Result<bool, RuleError> {
        let realm = self.realm_of(peer).unwrap_or_default();
        if self
            .assigned_groups
            .get(&peer)
            .is_some_and(|g| g.contains(&group))
        {
            return Ok(false);
        }
        let joined = core.join_group(peer, realm, group);
        count_join(&joined);
        joined?;
        self.assigned_groups.entry(peer).or_default().insert(group);
        Ok(true)
    }

    /// Takes `peer` out of `group` as the admin API or token put it there (a component may
    /// still hold it in). Returns whether it was assigned.
    pub fn unassign_group(&mut self, core: &mut Proximity, peer: PeerId, group: GroupId) -> bool {
        let Some(groups) = self.assigned_groups.get_mut(&peer) else {
            return false;
        };
        if !groups.remove(&group) {
            return false;
        }
        if groups.is_empty() {
            self.assigned_groups.remove(&peer);
        }
        if !self.wants_group(peer, group) {
            core.leave_group(peer, self.realm_of(peer).unwrap_or_default(), group);
        }
        true
    }

    /// Blocks the pair persistently (admin API). Returns whether it was new.
    pub fn admin_block(&mut self, core: &mut Proximity, a: PeerId, b: PeerId) -> bool {
        if a == b || !self.admin_blocks.insert(ordered(a, b)) {
            return false;
        }
        self.hold_block(core, a, b);
        true
    }

    /// Takes back an admin block. Returns whether there was one.
    pub fn admin_unblock(&mut self, core: &mut Proximity, a: PeerId, b: PeerId) -> bool {
        if !self.admin_blocks.remove(&ordered(a, b)) {
            return false;
        }
        self.release_block(core, a, b);
        true
    }

    /// Sets (or with `None` clears) the admin API's voice range for `peer`, clamped to the
    /// bounds.
    pub fn set_admin_voice(
        &mut self,
        core: &mut Proximity,
        config: &VoiceRulesConfig,
        peer: PeerId,
        voice: Option<f32>,
    ) {
        match voice.and_then(|v| config.clamp(v)) {
            Some(v) => self.admin_voice.insert(peer, v),
            None => self.admin_voice.remove(&peer),
        };
        self.apply_voice(core, config, peer);
    }

    /// The multiplier in force for `peer`: the admin API's, else the component's, else the
    /// client's own (if allowed), else 1.
    pub fn voice_of(&self, config: &VoiceRulesConfig, peer: PeerId) -> f32 {
        self.admin_voice
            .get(&peer)
            .or(self.component_voice.get(&peer))
            .or(self
                .own_voice
                .get(&peer)
                .filter(|_| config.clients_set_voice_range))
            .copied()
            .unwrap_or(1.0)
    }

    fn apply_voice(&mut self, core: &mut Proximity, config: &VoiceRulesConfig, peer: PeerId) {
        let voice = self.voice_of(config, peer);
        if core.set_voice_range(peer, voice).is_err() {
            warn!("{peer}: voice range {voice} refused by the core");
        }
    }

    /// A client's own block (or unblock), for its session.
    ///
    /// # Errors
    /// [`RejectReason::TooManyBlocks`] beyond `max_session_blocks`.
    pub fn session_block(
        &mut self,
        core: &mut Proximity,
        config: &VoiceRulesConfig,
        from: PeerId,
        peer: PeerId,
        blocked: bool,
    ) -> Result<(), RejectReason> {
        if from == peer {
            return Ok(());
        }
        let set = self.session_blocks.entry(from).or_default();
        if blocked {
            if set.len() >= config.max_session_blocks as usize && !set.contains(&peer) {
                return Err(RejectReason::TooManyBlocks);
            }
            if set.insert(peer) {
                self.hold_block(core, from, peer);
            }
        } else if set.remove(&peer) {
            if set.is_empty() {
                self.session_blocks.remove(&from);
            }
            self.release_block(core, from, peer);
        }
        Ok(())
    }

    /// A client's own voice range.
    ///
    /// # Errors
    /// [`RejectReason::VoiceRangeRefused`] if clients may not set it, or out of bounds.
    pub fn own_voice(
        &mut self,
        core: &mut Proximity,
        config: &VoiceRulesConfig,
        from: PeerId,
        multiplier: f32,
    ) -> Result<(), RejectReason> {
        if !config.clients_set_voice_range
            || !multiplier.is_finite()
            || multiplier < config.min_voice_range
            || multiplier > config.max_voice_range
        {
            return Err(RejectReason::VoiceRangeRefused);
        }
        self.own_voice.insert(from, multiplier);
        self.apply_voice(core, config, from);
        Ok(())
    }

    fn connect(&mut self, entity: Entity, peer: PeerId, realm: Realm) {
        self.connected.insert(entity, (peer, realm));
        self.realms.insert(peer, realm);
    }

    fn disconnect(&mut self, core: &mut Proximity, entity: Entity) {
        let Some((peer, _)) = self.connected.remove(&entity) else {
            return;
        };
        if self.realms.contains_key(&peer) && self.connected.values().any(|&(p, _)| p == peer) {
            return; // the id already belongs to a newer connection
        }
        self.realms.remove(&peer);
        self.component_groups.remove(&peer);
        self.assigned_groups.remove(&peer);
        core.leave_all_groups(peer);
        self.admin_voice.remove(&peer);
        self.component_voice.remove(&peer);
        self.own_voice.remove(&peer);
        let _ = core.set_voice_range(peer, 1.0);
        for other in self.session_blocks.remove(&peer).unwrap_or_default() {
            self.release_block(core, peer, other);
        }
        for other in self.component_blocks.remove(&peer).unwrap_or_default() {
            self.release_block(core, peer, other);
        }
    }

    fn set_component_groups(&mut self, core: &mut Proximity, peer: PeerId, groups: &[GroupId]) {
        let realm = self.realm_of(peer).unwrap_or_default();
        let old = self.component_groups.remove(&peer).unwrap_or_default();
        let mut kept = Vec::with_capacity(groups.len());
        for &g in groups {
            if kept.contains(&g) {
                continue;
            }
            let held = old.contains(&g)
                || self
                    .assigned_groups
                    .get(&peer)
                    .is_some_and(|a| a.contains(&g));
            if held {
                kept.push(g);
                continue;
            }
            let joined = core.join_group(peer, realm, g);
            count_join(&joined);
            match joined {
                Ok(_) => kept.push(g),
                Err(err) => warn!("{peer}: cannot join {g}: {err}"),
            }
        }
        self.component_groups.insert(peer, kept);
        for g in old {
            if !self.wants_group(peer, g) {
                core.leave_group(peer, realm, g);
            }
        }
    }

    fn set_component_blocks(&mut self, core: &mut Proximity, peer: PeerId, blocks: &[PeerId]) {
        let old = self.component_blocks.remove(&peer).unwrap_or_default();
        let mut new: Vec<PeerId> = blocks.iter().copied().filter(|&b| b != peer).collect();
        new.sort_unstable();
        new.dedup();
        for &b in &new {
            if old.binary_search(&b).is_err() {
                self.hold_block(core, peer, b);
            }
        }
        for &b in &old {
            if new.binary_search(&b).is_err() {
                self.release_block(core, peer, b);
            }
        }
        self.component_blocks.insert(peer, new);
    }
}

fn count_join(result: &Result<bool, RuleError>) {
    if let Err(err) = result {
        let why = match err {
            RuleError::GroupFull { .. } => "group_full",
            RuleError::VoiceRangeOutOfBounds => "voice_range",
        };
        metrics::counter!("mingle_rule_refusals_total", "cause" => why).increment(1);
    }
}

/// What the intake needs to apply a client's own rule messages.
#[derive(SystemParam)]
pub(crate) struct RuleInputs<'w> {
    state: ResMut<'w, VoiceRulesState>,
    index: ResMut<'w, ProximityIndex>,
    config: Res<'w, VoiceRulesConfig>,
}

impl RuleInputs<'_> {
    /// [`ClientToServer::Block`](crate::protocol::ClientToServer::Block) from `from`.
    pub(crate) fn block(
        &mut self,
        from: PeerId,
        peer: PeerId,
        blocked: bool,
    ) -> Result<(), RejectReason> {
        self.state
            .session_block(&mut self.index.0, &self.config, from, peer, blocked)
    }

    /// [`ClientToServer::SetVoiceRange`](crate::protocol::ClientToServer::SetVoiceRange) from
    /// `from`.
    pub(crate) fn voice(&mut self, from: PeerId, multiplier: f32) -> Result<(), RejectReason> {
        self.state
            .own_voice(&mut self.index.0, &self.config, from, multiplier)
    }

    /// Whether a signal from `from` to `to` must be refused: the pair is blocked (an
    /// introduced pair blocked since the last tick included).
    pub(crate) fn signal_blocked(&self, from: PeerId, to: PeerId) -> bool {
        self.state.is_blocked(from, to)
    }
}

type RuleComponents<'w, 's> = Query<
    'w,
    's,
    (
        &'static MinglePeer,
        Option<&'static VoiceGroups>,
        Option<&'static VoiceBlocks>,
        Option<&'static VoiceRange>,
    ),
    Or<(
        Changed<VoiceGroups>,
        Changed<VoiceBlocks>,
        Changed<VoiceRange>,
        Added<MinglePeer>,
    )>,
>;

/// Applies connects, disconnects and the rule components to the core (every frame, before the
/// tick: a change takes effect at the next tick).
#[allow(clippy::too_many_arguments)]
pub(crate) fn sync_voice_rules(
    mut state: ResMut<VoiceRulesState>,
    mut index: ResMut<ProximityIndex>,
    config: Res<VoiceRulesConfig>,
    transport: Option<Res<ServerTransport>>,
    added: Query<(Entity, &MinglePeer), Added<MinglePeer>>,
    mut removed: RemovedComponents<MinglePeer>,
    mut removed_groups: RemovedComponents<VoiceGroups>,
    mut removed_blocks: RemovedComponents<VoiceBlocks>,
    mut removed_range: RemovedComponents<VoiceRange>,
    changed: RuleComponents,
) {
    let state = &mut *state;
    let core = &mut index.0;
    if config.is_changed() {
        core.set_max_group_size(config.max_group_size as usize);
    }
    for entity in removed.read() {
        state.disconnect(core, entity);
    }
    for (entity, peer) in &added {
        state.connect(entity, peer.id, peer.realm);
        let groups = transport
            .as_ref()
            .and_then(|t| t.user_data(peer.id.0))
            .map(|data| token_groups(&data))
            .unwrap_or_default();
        for g in groups {
            if let Err(err) = state.assign_group(core, peer.id, g) {
                warn!("{}: token group {g} refused: {err}", peer.id);
            }
        }
    }
    for (peer, groups, blocks, range) in &changed {
        let id = peer.id;
        if let Some(groups) = groups {
            state.set_component_groups(core, id, &groups.0);
        }
        if let Some(blocks) = blocks {
            state.set_component_blocks(core, id, &blocks.0);
        }
        if let Some(range) = range {
            match config.clamp(range.0) {
                Some(v) => state.component_voice.insert(id, v),
                None => state.component_voice.remove(&id),
            };
            state.apply_voice(core, &config, id);
        }
    }
    // Components taken off an entity that is still connected.
    let peer_of = |state: &VoiceRulesState, e: Entity| state.connected.get(&e).map(|p| p.0);
    for entity in removed_groups.read() {
        if let Some(peer) = peer_of(state, entity) {
            state.set_component_groups(core, peer, &[]);
        }
    }
    for entity in removed_blocks.read() {
        if let Some(peer) = peer_of(state, entity) {
            state.set_component_blocks(core, peer, &[]);
        }
    }
    for entity in removed_range.read() {
        if let Some(peer) = peer_of(state, entity)
            && state.component_voice.remove(&peer).is_some()
        {
            state.apply_voice(core, &config, peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proximity::ProximityConfig;

    #[test]
    fn a_pair_stays_blocked_while_any_source_holds_it() {
        let mut core = Proximity::new(ProximityConfig::default());
        let mut state = VoiceRulesState::default();
        let config = VoiceRulesConfig::default();
        let (a, b) = (PeerId(1), PeerId(2));
        state.set_component_blocks(&mut core, a, &[b, b]);
        state.session_block(&mut core, &config, b, a, true).unwrap();
        assert!(state.admin_block(&mut core, b, a));
        state.set_component_blocks(&mut core, a, &[]);
        state
            .session_block(&mut core, &config, b, a, false)
            .unwrap();
        assert!(core.is_blocked(a, b), "the admin block still holds it");
        assert!(state.admin_unblock(&mut core, a, b));
        assert!(!core.is_blocked(a, b) && !state.is_blocked(a, b));
    }

    #[test]
    fn a_group_stays_while_the_component_or_the_admin_holds_it() {
        let mut core = Proximity::new(ProximityConfig::default());
        let mut state = VoiceRulesState::default();
        let p = PeerId(5);
        state.connect(Entity::from_raw_u32(3).unwrap(), p, Realm(2));
        state.set_component_groups(&mut core, p, &[GroupId(1)]);
        assert_eq!(state.assign_group(&mut core, p, GroupId(1)), Ok(true));
        state.set_component_groups(&mut core, p, &[]);
        assert_eq!(core.group_len(Realm(2), GroupId(1)), 1, "assigned still");
        assert!(state.unassign_group(&mut core, p, GroupId(1)));
        assert_eq!(core.group_len(Realm(2), GroupId(1)), 0);
    }

    #[test]
    fn the_voice_range_follows_admin_then_component_then_client() {
        let mut core = Proximity::new(ProximityConfig::default());
        let mut state = VoiceRulesState::default();
        let config = VoiceRulesConfig::default();
        let p = PeerId(9);
        assert_eq!(
            state.own_voice(&mut core, &config, p, 3.0),
            Err(RejectReason::VoiceRangeRefused)
        );
        state.own_voice(&mut core, &config, p, 0.5).unwrap();
        assert_eq!(core.voice_range(p), 0.5);
        state.component_voice.insert(p, 2.0);
        state.apply_voice(&mut core, &config, p);
        assert_eq!(core.voice_range(p), 2.0);
        state.set_admin_voice(&mut core, &config, p, Some(9.0));
        assert_eq!(core.voice_range(p), 2.0, "clamped to the bound");
        state.set_admin_voice(&mut core, &config, p, Some(1.0));
        assert_eq!(core.voice_range(p), 1.0);
        let closed = VoiceRulesConfig {
            clients_set_voice_range: false,
            ..config
        };
        assert!(state.own_voice(&mut core, &closed, p, 1.0).is_err());
    }
}
