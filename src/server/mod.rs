//! The server plugin: connections become entities, positions feed the proximity core, and each
//! client is told only what changed.
//!
//! Data path of one frame:
//! [`PreUpdate`] renet receive → [`MingleServerSystems::Receive`] (decode, update [`MinglePosition`],
//! answer refreshes, relay signals) → [`FixedUpdate`](bevy::app::FixedUpdate) [`MingleServerSystems::Proximity`] (one
//! tick: [`PairEntered`] / [`PairLeft`] messages) → [`PostUpdate`]
//! [`MingleServerSystems::Send`] (one `PeersChanged` per client) → renet send.
//!
//! ```no_run
//! use bevy::prelude::*;
//! use mingle::server::{MingleServerConfig, MingleServerPlugin};
//!
//! App::new()
//!     .add_plugins(MinimalPlugins)
//!     .add_plugins(MingleServerPlugin::new(MingleServerConfig::default()))
//!     .run();
//! ```

mod baseline;
mod components;
mod config;
#[cfg(feature = "debug-window")]
mod debug_window;
mod ice;
mod intake;
mod messages;
mod metrics;
pub mod netcode_guard;
mod outbox;
pub mod renet_guard;
mod stats;
mod tick;
mod transport;
mod udp;

use std::net::UdpSocket;
use std::sync::Mutex;

use bevy::app::{App, Last, Plugin, PostUpdate, PreUpdate, Startup, Update};
use bevy::prelude::{IntoScheduleConfigs, SystemSet, Time, resource_exists};
use bevy::time::Fixed;
use bevy_renet::{RenetReceive, RenetSend, RenetServer, RenetServerPlugin};

pub use components::{
    ClientHealth, MinglePeer, MinglePosition, MingleSpace, NearbyPeers, PeerDirectory,
    ProximitySlot,
};
pub use config::{
    ConfigError, DEFAULT_CONFIG_TOML, MAX_CLIENTS_LIMIT, MingleServerConfig, NotifyMode,
};
#[cfg(feature = "debug-window")]
pub use debug_window::{DemoLayout, MingleDebugWindowPlugin, PAIR_COLOR, space_color};
pub use ice::{IceRenewal, TurnSecret, ice_servers_message, is_turn_url, turn_rest_credential};
pub use messages::{ConnectionReported, PairEntered, PairLeft};
pub use metrics::{
    COUNTERS, CounterSeries, HISTOGRAMS, IntroductionLedger, MetricsError, MingleMetricsPlugin,
    REPORT_TIMEOUT_SECS, install_prometheus,
};
pub use stats::ServerStats;
pub use tick::{MingleProximityPlugin, ProximityIndex};
pub use transport::{
    QUIET_TRANSPORT_LOGS, REJECTION_LOG_INTERVAL_SECS, SOCKET_BUFFER_BYTES, ServerAddress,
    bind_socket,
};
pub use udp::{
    ACK_PACE_SECS, KEEPALIVE_SECS, MAX_DATAGRAMS_PER_ADDRESS, MAX_DATAGRAMS_PER_UPDATE,
    ReceiveCounts, SHARD_CLIENTS, ServerTransport,
};

use crate::protocol::{PeerId, ServerToClient, encode_server};

/// The server's system sets, in the order they run within a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, SystemSet)]
pub enum MingleServerSystems {
    /// Decodes client messages, updates positions, answers refreshes, relays signals,
    /// disconnects idle or abusive clients. Runs in [`PreUpdate`], after [`RenetReceive`].
    Receive,
    /// One proximity tick: writes [`PairEntered`] and [`PairLeft`] messages and updates every
    /// [`NearbyPeers`]. Runs in [`FixedUpdate`](bevy::app::FixedUpdate).
    Proximity,
    /// Sends each client at most one `PeersChanged`. Runs in [`PostUpdate`], before [`RenetSend`].
    Send,
}

/// Adds the mingle server to an app: binds the UDP socket, accepts renet clients and runs
/// proximity introductions. Needs `MinimalPlugins` (or `DefaultPlugins`) for time.
pub struct MingleServerPlugin {
    /// The configuration, inserted as a resource.
    pub config: MingleServerConfig,
    /// With a key, only netcode connect tokens signed with it are accepted (secure mode);
    /// without, any client may connect and choose its own id (unsecure, for loopback).
    pub private_key: Option<[u8; 32]>,
    /// The TURN shared secret for TURN URLs in `config.ice_servers`.
    pub turn_secret: Option<TurnSecret>,
    socket: Mutex<Option<UdpSocket>>,
}

impl MingleServerPlugin {
    /// A plugin that binds `config.bind` when added.
    pub fn new(config: MingleServerConfig) -> Self {
        MingleServerPlugin {
            config,
            private_key: None,
            turn_secret: None,
            socket: Mutex::new(None),
        }
    }

    /// A plugin serving on an already bound socket (its address wins over `config.bind`).
    pub fn with_socket(config: MingleServerConfig, socket: UdpSocket) -> Self {
        MingleServerPlugin {
            config,
            private_key: None,
            turn_secret: None,
            socket: Mutex::new(Some(socket)),
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

impl Plugin for MingleServerPlugin {
    /// # Panics
    /// If the configuration is invalid or the socket cannot be bound: validate with
    /// [`MingleServerConfig::validate`] and bind with [`MingleServerPlugin::with_socket`] first
    /// to handle those as errors.
    fn build(&self, app: &mut App) {
        let config = self.config.clone();
        if let Err(err) = config.validate() {
            panic!("MingleServerPlugin: {err}");
        }
        if self.turn_secret.is_none() && config.ice_servers.iter().any(|u| is_turn_url(u)) {
            panic!(
                "MingleServerPlugin: `ice_servers` has TURN URLs but no TURN secret was given \
                 (--turn-secret-file, MINGLE_TURN_SECRET, or MingleServerPlugin::with_turn_secret)"
            );
        }
        if let Some(secret) = &self.turn_secret {
            app.insert_resource(secret.clone());
        }
        let socket = self
            .socket
            .lock()
            .map(|mut s| s.take())
            .unwrap_or_default()
            .map(Ok)
            .unwrap_or_else(|| bind_socket(config.bind))
            .unwrap_or_else(|e| panic!("MingleServerPlugin: cannot bind UDP {}: {e}", config.bind));
        let addr = socket.local_addr().unwrap_or_else(|e| {
            panic!("MingleServerPlugin: cannot read the socket's address: {e}")
        });
        let authentication = match self.private_key {
            Some(private_key) => renetcode::ServerAuthentication::Secure { private_key },
            None => renetcode::ServerAuthentication::Unsecure,
        };
        let public_addr = config.public_addr.unwrap_or(addr);
        let transport =
            ServerTransport::new(socket, public_addr, config.max_clients, authentication)
                .unwrap_or_else(|e| {
                    panic!("MingleServerPlugin: cannot set up the UDP socket: {e}")
                });
        let server = RenetServer::new(crate::protocol::connection_config());

        if !app.is_plugin_added::<RenetServerPlugin>() {
            app.add_plugins(RenetServerPlugin);
        }
        app.add_plugins((
            MingleProximityPlugin {
                config: config.proximity.clone(),
            },
            MingleMetricsPlugin,
        ));
        app.insert_resource(Time::<Fixed>::from_hz(config.tick_hz))
            .insert_resource(server)
            .insert_resource(transport)
            .insert_resource(ServerAddress(addr))
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
                PreUpdate,
                transport::receive_packets
                    .in_set(RenetReceive)
                    .after(RenetServerPlugin::update_system)
                    .before(RenetServerPlugin::emit_server_events_system),
            )
            .add_systems(PostUpdate, transport::send_packets.in_set(RenetSend))
            .add_systems(Last, transport::disconnect_on_exit)
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
            .add_systems(Startup, transport::warn_if_transport_logs_loud)
            .add_systems(Update, (stats::log_stats, transport::log_rejections))
            .add_systems(
                Update,
                ice::renew_credentials.run_if(resource_exists::<RenetServer>),
            );
    }
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
    transport: bevy::prelude::ResMut<'w, ServerTransport>,
}
