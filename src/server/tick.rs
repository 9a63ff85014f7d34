//! The proximity tick, paced by its own clock: moved clients in, introductions and departures
//! out.
//!
//! The tick does not use `Time<Fixed>`: that clock belongs to the game (its physics), and a
//! game embedding the server keeps its own `FixedUpdate` rate. [`ProximityClock`] counts the
//! app's virtual time and runs the [`ProximityTick`] schedule at most once a frame.

use bevy::app::{App, Plugin, PreUpdate};
use bevy::ecs::schedule::{Schedule, ScheduleLabel};
use bevy::log::warn;
use bevy::prelude::{
    Changed, IntoScheduleConfigs, Local, MessageWriter, Or, Query, Res, ResMut, Resource, Time,
    World,
};
use bevy::time::Virtual;

use super::MingleServerSystems;
use super::components::{
    MinglePeer, MinglePosition, MingleSpace, NearbyPeers, PeerDirectory, ProximitySlot,
};
use super::messages::{PairEntered, PairLeft};
use super::stats::ServerStats;
use crate::proximity::{DepartureCause, PairChange, Proximity, ProximityConfig, ProximityError};

/// The proximity concern alone, without any networking: the [`ProximityIndex`] resource, the
/// [`PairEntered`] / [`PairLeft`] messages and the tick ([`ProximityTick`], run in
/// [`PreUpdate`] in [`MingleServerSystems::Proximity`] at `tick_hz`).
/// [`MingleServerPlugin`](super::MingleServerPlugin) adds it; add it alone to run proximity
/// over entities your game spawns itself: spawn each with [`MinglePeer`], [`MinglePosition`]
/// and [`MingleSpace`], despawn it when it goes.
#[derive(Debug, Clone)]
pub struct MingleProximityPlugin {
    /// The distances in force.
    pub config: ProximityConfig,
    /// Proximity ticks per second. Default: 20.
    pub tick_hz: f64,
}

impl Default for MingleProximityPlugin {
    fn default() -> Self {
        MingleProximityPlugin {
            config: ProximityConfig::default(),
            tick_hz: 20.0,
        }
    }
}

impl Plugin for MingleProximityPlugin {
    fn build(&self, app: &mut App) {
        let mut tick = Schedule::new(ProximityTick);
        tick.add_systems((proximity_tick, super::stats::count_tick).chain());
        app.insert_resource(ProximityIndex(Proximity::new(self.config.clone())))
            .insert_resource(ProximityClock::new(self.tick_hz))
            .init_resource::<PeerDirectory>()
            .init_resource::<ServerStats>()
            .add_message::<PairEntered>()
            .add_message::<PairLeft>()
            .add_message::<super::messages::ConnectionReported>()
            .add_schedule(tick)
            .init_resource::<super::rules::VoiceRulesState>()
            .init_resource::<super::rules::VoiceRulesConfig>()
            .add_systems(
                PreUpdate,
                super::rules::sync_voice_rules
                    .after(MingleServerSystems::Receive)
                    .before(MingleServerSystems::Proximity),
            )
            .configure_sets(
                PreUpdate,
                MingleServerSystems::Proximity.after(MingleServerSystems::Receive),
            )
            .add_systems(
                PreUpdate,
                run_proximity_tick.in_set(MingleServerSystems::Proximity),
            );
    }
}

/// The schedule of one proximity tick: positions to the core, one core tick, the result to
/// [`NearbyPeers`] and messages. Run by [`MingleProximityPlugin`] at its rate; benchmarks and
/// tools may run it directly with `world.run_schedule(ProximityTick)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ScheduleLabel)]
pub struct ProximityTick;

/// Fraction of a period by which a tick may come early: a frame that ends just short of the
/// period ticks now rather than a whole frame late (the debt is carried, so the average rate
/// stays `tick_hz`).
const EARLY_FRACTION: f64 = 0.1;

/// Paces [`ProximityTick`] on the app's virtual time (`Time<Virtual>`), apart from the game's
/// `Time<Fixed>`.
#[derive(Debug, Clone, Resource)]
pub struct ProximityClock {
    period: f64,
    /// Time elapsed and not yet ticked, seconds (negative after an early tick).
    owed: f64,
    ticks: u64,
}

impl ProximityClock {
    /// A clock ticking `hz` times a second.
    pub fn new(hz: f64) -> Self {
        ProximityClock {
            period: 1.0 / hz,
            owed: 0.0,
            ticks: 0,
        }
    }

    /// Ticks per second.
    pub fn hz(&self) -> f64 {
        1.0 / self.period
    }

    /// Ticks run so far.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// Advances by `dt` seconds; whether a tick is due. At most one tick per call: a second
    /// tick in the same frame would find no position changed, and a backlog (a stalled frame)
    /// is dropped rather than run in a burst.
    pub fn advance(&mut self, dt: f64) -> bool {
        self.owed += dt;
        if self.owed < self.period * (1.0 - EARLY_FRACTION) {
            return false;
        }
        self.owed = (self.owed - self.period).min(self.period);
        self.ticks += 1;
        true
    }
}

/// Runs [`ProximityTick`] when [`ProximityClock`] says it is due.
fn run_proximity_tick(world: &mut World) {
    let dt = world.resource::<Time<Virtual>>().delta_secs_f64();
    if world.resource_mut::<ProximityClock>().advance(dt) {
        world.run_schedule(ProximityTick);
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
            PairChange::Entered { a, b, cause } => {
                for (me, other) in [(a, b), (b, a)] {
                    if let Some(mut set) = directory.get(me).and_then(|e| sets.get_mut(e).ok()) {
                        set.insert(other);
                    }
                }
                stats.introductions += 1;
                metrics::counter!("mingle_introductions_by_cause_total", "cause" => cause.as_str())
                    .increment(1);
                introductions.write(PairEntered { a, b, cause });
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
                    // Voice rules (#17): counted by the metrics facade alone.
                    DepartureCause::Blocked | DepartureCause::GroupLeft => {}
                }
                metrics::counter!("mingle_departures_by_cause_total", "cause" => cause.as_str())
                    .increment(1);
                departures.write(PairLeft { a, b, cause });
            }
        }
    }
    stats.last_tick_secs = started.elapsed().as_secs_f64();
    metrics::histogram!("mingle_proximity_tick_seconds").record(stats.last_tick_secs);
}
