//! The fixed-timestep proximity system: moved clients in, introductions and departures out.

use bevy::app::{App, FixedUpdate, Plugin};
use bevy::log::warn;
use bevy::prelude::{
    Changed, IntoScheduleConfigs, Local, MessageWriter, Or, Query, Res, ResMut, Resource,
};

use super::MingleServerSystems;
use super::components::{
    MinglePeer, MinglePosition, MingleSpace, NearbyPeers, PeerDirectory, ProximitySlot,
};
use super::messages::{PairEntered, PairLeft};
use super::stats::ServerStats;
use crate::proximity::{DepartureCause, PairChange, Proximity, ProximityConfig, ProximityError};

/// The proximity concern alone, without any networking: the [`ProximityIndex`] resource, the
/// [`PairEntered`] / [`PairLeft`] messages and the tick in [`FixedUpdate`]
/// ([`MingleServerSystems::Proximity`]). [`MingleServerPlugin`](super::MingleServerPlugin)
/// adds it; add it alone to run proximity over entities your game spawns itself (each with
/// [`MinglePeer`], [`MinglePosition`], [`MingleSpace`], [`NearbyPeers`], registered in [`PeerDirectory`]).
#[derive(Debug, Clone, Default)]
pub struct MingleProximityPlugin {
    /// The distances in force.
    pub config: ProximityConfig,
}

impl Plugin for MingleProximityPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(ProximityIndex(Proximity::new(self.config.clone())))
            .init_resource::<PeerDirectory>()
            .init_resource::<ServerStats>()
            .add_message::<PairEntered>()
            .add_message::<PairLeft>()
            .add_message::<super::messages::ConnectionReported>()
            .configure_sets(FixedUpdate, MingleServerSystems::Proximity)
            .add_systems(
                FixedUpdate,
                (proximity_tick, super::stats::count_tick)
                    .chain()
                    .in_set(MingleServerSystems::Proximity),
            );
    }
}

/// The proximity core, as a resource. Read it for the server's complete view of who is near whom.
#[derive(Debug, Resource)]
pub struct ProximityIndex(pub(crate) Proximity);

impl ProximityIndex {
    /// The core.
    pub fn core(&self) -> &Proximity {
        &self.0
    }
}

type Moved<'w, 's> = Query<
    'w,
    's,
    (
        &'static MinglePeer,
        &'static MinglePosition,
        &'static MingleSpace,
        &'static mut ProximitySlot,
    ),
    Or<(Changed<MinglePosition>, Changed<MingleSpace>)>,
>;

/// Feeds clients whose position or space changed since the last tick to the core, runs one
/// tick, and mirrors the result into `NearbyPeers`s and messages.
fn proximity_tick(
    mut index: ResMut<ProximityIndex>,
    mut moved: Moved,
    directory: Res<PeerDirectory>,
    mut sets: Query<&mut NearbyPeers>,
    mut introductions: MessageWriter<PairEntered>,
    mut departures: MessageWriter<PairLeft>,
    mut stats: ResMut<ServerStats>,
    mut changes: Local<Vec<PairChange>>,
) {
    let started = std::time::Instant::now();
    let core = &mut index.0;
    for (peer, position, space, mut slot) in &mut moved {
        let pos = position.0.to_array();
        let by_handle = slot
            .0
            .map(|handle| core.set_position_of(handle, peer.realm, space.0, pos));
        let result = match by_handle {
            Some(Ok(())) => Ok(()),
            // First position, or a slot outliving its client in the core (a game that
            // re-used the entity): go by id, and keep the handle for next time.
            None | Some(Err(ProximityError::StaleHandle)) => core
                .set_position(peer.id, peer.realm, space.0, pos)
                .map(|handle| slot.0 = Some(handle)),
            Some(Err(err)) => Err(err),
        };
        if let Err(err) = result {
            // Positions are validated at decode; a game writing `MinglePosition` itself can still err.
            warn!("{}: position refused by the proximity core: {err}", peer.id);
        }
    }
    changes.clear();
    core.tick(&mut changes);
    stats.distance_checks = core.distance_checks();
    for change in changes.iter() {
        match *change {
            PairChange::Entered { a, b } => {
                for (me, other) in [(a, b), (b, a)] {
                    if let Some(mut set) = directory.get(me).and_then(|e| sets.get_mut(e).ok()) {
                        set.insert(other);
                    }
                }
                stats.introductions += 1;
                introductions.write(PairEntered { a, b });
            }
            PairChange::Left { a, b, cause } => {
                for (me, other) in [(a, b), (b, a)] {
                    if let Some(mut set) = directory.get(me).and_then(|e| sets.get_mut(e).ok()) {
                        set.remove(other);
                    }
                }
                match cause {
                    DepartureCause::Range => stats.departures_range += 1,
                    DepartureCause::Disconnect => stats.departures_disconnect += 1,
                    DepartureCause::SpaceChange => stats.departures_space_change += 1,
                    DepartureCause::Replaced => stats.departures_replaced += 1,
                }
                departures.write(PairLeft { a, b, cause });
            }
        }
    }
    stats.last_tick_secs = started.elapsed().as_secs_f64();
    metrics::histogram!("mingle_proximity_tick_seconds").record(stats.last_tick_secs);
}
