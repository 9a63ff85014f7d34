//! The server plugin: connections become entities, positions feed the proximity core, and each
//! client is told only what changed.
//!
//! Data path of one frame:
//! [`PreUpdate`] renet receive → [`MingleServerSystems::Receive`] (decode, update [`MinglePosition`],
//! answer refreshes, relay signals) → [`MingleServerSystems::Proximity`] (at `tick_hz`, one
//! tick: [`PairEntered`] / [`PairLeft`] messages) → [`PostUpdate`]
//! [`MingleServerSystems::Send`] (one `PeersChanged` per client) → renet send.
//!
//! The plugin does no I/O when added: the socket is bound by a [`Startup`] system (or handed
//! in with [`MingleServerPlugin::with_socket`]), and a failure is a [`MingleServerStatus`], not
//! a panic. It leaves the game's clocks alone (the tick paces itself; see [`ProximityClock`]).
//!
//! ```no_run
//! use std::time::Duration;
//! use bevy::app::ScheduleRunnerPlugin;
//! use bevy::prelude::*;
//! use mingle::server::MingleServerPlugin;
//!
//! App::new()
//!     .add_plugins(MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_millis(10))))
//!     .add_plugins(MingleServerPlugin::default())
//!     .run();
//! ```

mod admin;
mod baseline;
mod components;
mod config;
#[cfg(feature = "debug-window")]
mod debug_window;
mod ice;
mod intake;
mod memory;
mod messages;
mod metrics;
pub mod netcode_guard;
mod outbox;
pub mod renet_guard;
mod rules;
mod stats;
mod tick;
mod transport;
mod udp;

use std::net::UdpSocket;
use std::sync::Mutex;

use bevy::app::{App, Last, Plugin, PostUpdate, PreUpdate, Startup, Update};
use bevy::log::{debug, error};
use bevy::prelude::{IntoScheduleConfigs, Resource, SystemSet, World, resource_exists};
use bevy_renet::{RenetReceive, RenetSend, RenetServer, RenetServerPlugin};

pub use admin::{AdminError, MingleAdminPlugin};
pub use components::{
    ClientHealth, MinglePeer, MinglePosition, MingleSpace, NearbyPeers, PeerDirectory,
    ProximitySlot,
};
pub use config::{
    ConfigError, DEFAULT_CONFIG_TOML, MAX_CLIENTS_LIMIT, MingleServerConfig, NotifyMode,
};
#[cfg(feature = "debug-window")]
pub use debug_window::{
    DemoLayout, GROUP_PAIR_COLOR, MingleDebugWindowPlugin, PAIR_COLOR, space_color,
};
pub use ice::{IceRenewal, TurnSecret, ice_servers_message, is_turn_url, turn_rest_credential};
pub use memory::MemoryServerTransport;
pub use messages::{ConnectionReported, PairEntered, PairLeft};
pub use metrics::{
    COUNTERS, CounterSeries, HISTOGRAMS, IntroductionLedger, MetricsError, MingleMetricsPlugin,
    REPORT_TIMEOUT_SECS, install_prometheus,
};
pub use rules::{VoiceBlocks, VoiceGroups, VoiceRange, VoiceRulesConfig, VoiceRulesState};
pub use stats::ServerStats;
pub use tick::{MingleProximityPlugin, ProximityClock, ProximityIndex, ProximityTick};
pub use transport::{
    QUIET_TRANSPORT_LOGS, REJECTION_LOG_INTERVAL_SECS, SOCKET_BUFFER_BYTES, ServerAddress,
    bind_socket,
};
pub use udp::{
    ACK_PACE_SECS, KEEPALIVE_SECS, MAX_DATAGRAMS_PER_ADDRESS, MAX_DATAGRAMS_PER_UPDATE,
    ReceiveCounts, SHARD_CLIENTS, ServerTransport,
};

use crate::protocol::{PeerId, ServerToClient, encode_server};

/// What a game server needs: the plugins, their configs, the client components and messages.
pub mod prelude {
    pub use super::{
        MinglePeer, MinglePosition, MingleProximityPlugin, MingleServerConfig, MingleServerPlugin,
        MingleServerStatus, MingleServerSystems, MingleSpace, PairEntered, PairLeft, PeerDirectory,
    };
    pub use crate::protocol::{PeerId, Realm, SpaceId};
    pub use crate::proximity::DepartureCause;
}

/// The server's system sets, in the order they run within a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, SystemSet)]
pub enum MingleServerSystems {
    /// Decodes client messages, updates positions, answers refreshes, relays signals,
    /// disconnects idle or abusive clients. Runs in [`PreUpdate`], after [`RenetReceive`].
    Receive,
    /// One proximity tick when [`ProximityClock`] says it is due: writes [`PairEntered`] and
    /// [`PairLeft`] messages and updates every [`NearbyPeers`]. Runs in [`PreUpdate`], after
    /// `Receive`.
    Proximity,
    /// Sends each client at most one `PeersChanged`. Runs in [`PostUpdate`], before [`RenetSend`].
    Send,
}

/// Adds the mingle server to an app: accepts renet clients on a UDP socket and runs proximity
/// introductions. Needs `MinimalPlugins` (or `DefaultPlugins`) for time.
///
/// Adding it does no I/O: a [`Startup`] system validates the configuration and binds the
/// socket; [`MingleServerStatus`] says whether the server is serving.
pub struct MingleServerPlugin {
    /// The configuration, inserted as a resource.
    pub config: MingleServerConfig,
    /// With a key, only netcode connect tokens signed with it are accepted (secure mode);
    /// without, any client may connect and choose its own id (unsecure, for loopback).
    pub private_key: Option<[u8; 32]>,
    /// The TURN shared secret for TURN URLs in `config.ice_servers`.
    pub turn_secret: Option<TurnSecret>,
    socket: Mutex<Option<UdpSocket>>,
    in_memory: bool,
}

impl Default for MingleServerPlugin {
    /// The embedded defaults ([`MingleServerConfig::default`]), unsecure.
    fn default() -> Self {
        MingleServerPlugin::new(MingleServerConfig::default())
    }
}

impl MingleServerPlugin {
    /// A plugin that binds `config.bind` at startup.
    pub fn new(config: MingleServerConfig) -> Self {
        MingleServerPlugin {
            config,
            private_key: None,
            turn_secret: None,
            socket: Mutex::new(None),
            in_memory: false,
        }
    }

    /// A plugin serving without a socket, through a [`MemoryServerTransport`] that
    /// [`crate::memory::exchange`] connects to client apps (deterministic tests and tools).
    pub fn in_memory(config: MingleServerConfig) -> Self {
        MingleServerPlugin {
            in_memory: true,
            ..MingleServerPlugin::new(config)
        }
    }

    /// A plugin serving on an already bound socket (its address wins over `config.bind`).
    pub fn with_socket(config: MingleServerConfig, socket: UdpSocket) -> Self {
        MingleServerPlugin {
            socket: Mutex::new(Some(socket)),
            ..MingleServerPlugin::new(config)
        }
    }

    /// Hand out TURN credentials signed with `secret` (coturn's `--static-auth-secret`).
    pub fn with_turn_secret(mut self, secret: TurnSecret) -> Self {
        self.turn_secret = Some(secret);
        self
    }

    /// Accept only connect tokens signed with `key` (see [`crate::auth`]).
    pub fn with_private_key(mut self, key: [u8; 32]) -> Self {
        self.private_key = Some(key);
        self
    }
}

/// Whether the server is serving: [`Starting`](MingleServerStatus::Starting) until the
/// [`Startup`] system ran, then [`Serving`](MingleServerStatus::Serving) or
/// [`Failed`](MingleServerStatus::Failed) (logged as an error too; the app keeps running,
/// without the server).
#[derive(Debug, Clone, PartialEq, Eq, Resource)]
pub enum MingleServerStatus {
    /// The plugin is added; the socket is not bound yet.
    Starting,
    /// Serving on this address.
    Serving(std::net::SocketAddr),
    /// Serving in memory ([`MingleServerPlugin::in_memory`]).
    InMemory,
    /// The server could not start: an invalid configuration or an unbindable socket.
    Failed(String),
}

/// What the startup system needs and `build` must not touch yet.
#[derive(Resource)]
struct PendingStart {
    private_key: Option<[u8; 32]>,
    socket: Option<UdpSocket>,
    in_memory: bool,
}

impl Plugin for MingleServerPlugin {
    fn build(&self, app: &mut App) {
        let config = self.config.clone();
        if let Some(secret) = &self.turn_secret {
            app.insert_resource(secret.clone());
        }
        let socket = self.socket.lock().map(|mut s| s.take()).unwrap_or_default();
        if !app.is_plugin_added::<RenetServerPlugin>() {
            app.add_plugins(RenetServerPlugin);
        }
        app.add_plugins((
            MingleProximityPlugin {
                config: config.proximity.clone(),
                tick_hz: config.tick_hz,
            },
            MingleMetricsPlugin,
        ));
        let serving = resource_exists::<ServerTransport>;
        app.insert_resource(PendingStart {
            private_key: self.private_key,
            socket,
            in_memory: self.in_memory,
        })
        .insert_resource(MingleServerStatus::Starting)
        .insert_resource(config.voice_rules.clone())
        .insert_resource(config)
        .add_plugins(baseline::EveryUpdateBaseline)
        .configure_sets(
            PreUpdate,
            MingleServerSystems::Receive
                .after(RenetReceive)
                .run_if(resource_exists::<RenetServer>),
        )
        .configure_sets(
            PostUpdate,
            MingleServerSystems::Send
                .before(RenetSend)
                .run_if(resource_exists::<RenetServer>),
        )
        .add_observer(transport::on_server_event)
        .add_systems(
            Startup,
            (start_server, transport::warn_if_transport_logs_loud),
        )
        .add_systems(
            PreUpdate,
            transport::receive_packets
                .in_set(RenetReceive)
                .after(RenetServerPlugin::update_system)
                .before(RenetServerPlugin::emit_server_events_system)
                .run_if(serving),
        )
        .add_systems(
            PostUpdate,
            transport::send_packets.in_set(RenetSend).run_if(serving),
        )
        .add_systems(Last, transport::disconnect_on_exit.run_if(serving))
        .add_systems(
            PreUpdate,
            (intake::intake, intake::disconnect_idle)
                .chain()
                .in_set(MingleServerSystems::Receive),
        )
        .add_systems(
            PostUpdate,
            outbox::send_peer_changes.in_set(MingleServerSystems::Send),
        )
        .add_systems(Update, (stats::log_stats, transport::log_rejections))
        .add_systems(
            Update,
            ice::renew_credentials.run_if(resource_exists::<RenetServer>),
        );
        memory::add_systems(app);
    }

    fn finish(&self, app: &mut App) {
        warn_without_time(app);
    }
}

/// Warns once if the app has no clock: the proximity tick would never run.
fn warn_without_time(app: &App) {
    if !app.is_plugin_added::<bevy::time::TimePlugin>() {
        bevy::log::warn!(
            "MingleServerPlugin: no TimePlugin, so the proximity tick never runs: add \
             MinimalPlugins or DefaultPlugins"
        );
    }
}

/// Validates the configuration, binds the socket (unless one was handed in) and inserts the
/// transport; on failure, [`MingleServerStatus::Failed`].
fn start_server(world: &mut World) {
    let Some(pending) = world.remove_resource::<PendingStart>() else {
        return;
    };
    if pending.in_memory {
        return memory::start(world);
    }
    let config = world.resource::<MingleServerConfig>().clone();
    let turn_secret = world.contains_resource::<TurnSecret>();
    let status = match open_transport(&config, pending, turn_secret) {
        Ok((transport, addr)) => {
            world.insert_resource(RenetServer::new(crate::protocol::connection_config()));
            world.insert_resource(transport);
            world.insert_resource(ServerAddress(addr));
            debug!("mingle server bound to {addr}");
            MingleServerStatus::Serving(addr)
        }
        Err(err) => {
            error!("mingle server not started: {err}");
            MingleServerStatus::Failed(err)
        }
    };
    world.insert_resource(status);
}

/// The checks and the socket of [`start_server`].
fn open_transport(
    config: &MingleServerConfig,
    pending: PendingStart,
    has_turn_secret: bool,
) -> Result<(ServerTransport, std::net::SocketAddr), String> {
    config.validate().map_err(|err| err.to_string())?;
    if !has_turn_secret && config.ice_servers.iter().any(|u| is_turn_url(u)) {
        return Err("`ice_servers` has TURN URLs but no TURN secret was given \
                    (--turn-secret-file, MINGLE_TURN_SECRET, or MingleServerPlugin::with_turn_secret)"
            .to_owned());
    }
    let socket = match pending.socket {
        Some(socket) => socket,
        None => {
            bind_socket(config.bind).map_err(|e| format!("cannot bind UDP {}: {e}", config.bind))?
        }
    };
    let addr = socket
        .local_addr()
        .map_err(|e| format!("cannot read the socket's address: {e}"))?;
    let authentication = match pending.private_key {
        Some(private_key) => renetcode::ServerAuthentication::Secure { private_key },
        None => renetcode::ServerAuthentication::Unsecure,
    };
    let public_addr = config.public_addr.unwrap_or(addr);
    let transport = ServerTransport::new(socket, public_addr, config.max_clients, authentication)
        .map_err(|e| format!("cannot set up the UDP socket: {e}"))?;
    Ok((transport, addr))
}

/// Encodes and queues one message to one client on the message's channel.
fn send(out: &mut Outgoing, to: PeerId, msg: &ServerToClient) {
    out.server
        .send_message(to.0, msg.channel(), encode_server(msg));
    out.transport.mark_outbound(to.0);
}

/// The server's way out: renet, and the transport, which writes to a client only when told it
/// has something (see the packet budget in `udp.rs`).
#[derive(bevy::ecs::system::SystemParam)]
pub(crate) struct Outgoing<'w> {
    server: bevy::prelude::ResMut<'w, RenetServer>,
    transport: memory::Wire<'w>,
}
