//! The client plugin for games: reports the local player's position, keeps the set of
//! introduced peers, and carries WebRTC signaling.
//!
//! Mark the player entity with [`MingleLocal`]; read [`PeerEntered`] / [`PeerLeft`] /
//! [`SignalReceived`] with a `MessageReader`; send with the [`MingleClient`] system parameter.
//! Connect with [`MingleClient::connect`]; the connection's state is [`MingleConnectionState`]
//! (and the run condition [`mingle_connected`]).
//!
//! ```no_run
//! use std::time::Duration;
//! use bevy::app::ScheduleRunnerPlugin;
//! use bevy::prelude::*;
//! use mingle::client::prelude::*;
//!
//! fn log_peers(mut entered: MessageReader<PeerEntered>) {
//!     for PeerEntered(peer) in entered.read() {
//!         info!("{peer} is within earshot");
//!     }
//! }
//!
//! App::new()
//!     .add_plugins(MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_millis(16))))
//!     .add_plugins(MingleClientPlugin::default())
//!     .add_systems(Startup, |mut commands: Commands| {
//!         commands.spawn(MingleLocal::default());
//!     })
//!     .add_systems(Update, log_peers)
//!     .run();
//! ```

mod api;
mod causes;
mod config;
mod connection;
#[cfg(feature = "webrtc")]
pub mod ice;
mod link;
mod memory;
mod messages;
mod position;
mod receive;
mod session;
mod state;
mod transport;
#[cfg(feature = "voice")]
pub mod voice;
#[cfg(feature = "webrtc")]
mod webrtc;

use bevy::app::{App, Last, Plugin, PostUpdate, PreUpdate};
use bevy::prelude::{IntoScheduleConfigs, Res, SystemCondition, SystemSet, resource_exists};
use bevy_renet::{RenetClient, RenetClientPlugin, RenetReceive, RenetSend, client_connected};

pub use api::{ClientError, MingleClient};
pub use causes::PeerCauses;
pub use config::MingleClientConfig;
pub use connection::{ConnectError, MingleConnectionChanged, MingleConnectionState, MingleServer};
pub use link::{IDLE_WRITE_SECS, NETCODE_TIMERS, ServerLink};
pub use memory::{MemoryLink, MemoryLinkState};
pub use messages::{MessageRejected, PeerEntered, PeerLeft, SignalReceived};
pub use session::{ClientSession, PositionPacing, SessionEvent};
pub use state::{MingleClientStats, MingleIceServers, MingleLocal, MingleWelcome, NearbyPeers};
#[cfg(feature = "webrtc")]
pub use webrtc::{InboundFilter, LinkAudio, OPUS_PT};
#[cfg(feature = "webrtc")]
pub use webrtc::{
    LinkClosed, LinkData, LinkFailed, LinkOpened, MingleWebRtcPlugin, SelectedPair, WebRtcConfig,
    WebRtcLinks,
};

/// What a game client needs: the plugin, its system parameter, messages, and the ids.
pub mod prelude {
    #[cfg(feature = "voice")]
    pub use super::voice::{
        MingleVoicePlugin, PeerPositions, Speaking, VoiceAudio, VoiceConfig, VoiceControls,
    };
    #[cfg(feature = "webrtc")]
    pub use super::{LinkClosed, LinkFailed, LinkOpened, MingleWebRtcPlugin, WebRtcConfig};
    pub use super::{
        MessageRejected, MingleClient, MingleClientConfig, MingleClientPlugin, MingleClientSystems,
        MingleConnectionChanged, MingleConnectionState, MingleLocal, MingleServer, MingleWelcome,
        NearbyPeers, PeerEntered, PeerLeft, SignalReceived, mingle_connected,
    };
    pub use crate::protocol::{ConnectionOutcome, PeerId, Realm, SpaceId};
}

/// The client's system sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, SystemSet)]
pub enum MingleClientSystems {
    /// Connects and disconnects as the game asked, and redials when due. Runs in
    /// [`PreUpdate`], before [`RenetReceive`].
    Connection,
    /// Applies server messages and writes [`PeerEntered`], [`PeerLeft`], [`SignalReceived`],
    /// [`MessageRejected`] and [`MingleConnectionChanged`]. Runs in [`PreUpdate`], after
    /// [`RenetReceive`]; read the messages in `Update`.
    Receive,
    /// Sends the [`MingleLocal`] position. Runs in [`PostUpdate`], before [`RenetSend`]
    /// (where packets are written: at once when a message is queued, else at most
    /// [`MingleClientConfig::send_hz`] times a second).
    Send,
}

/// Connects a game to a mingle server. Needs `MinimalPlugins` or `DefaultPlugins` for time.
///
/// Adding it opens nothing: connect with [`MingleClient::connect`] (after a login screen), or
/// build it with [`MingleClientPlugin::connect_to`] to connect in the first frame.
#[derive(Default)]
pub struct MingleClientPlugin {
    /// The configuration, inserted as a resource.
    pub config: MingleClientConfig,
    /// A server to connect to in the first frame.
    pub connect: Option<MingleServer>,
}

impl MingleClientPlugin {
    /// A plugin with `config` that connects when told to ([`MingleClient::connect`]).
    pub fn new(config: MingleClientConfig) -> Self {
        MingleClientPlugin {
            config,
            connect: None,
        }
    }

    /// Connect to `server` in the first frame (for tools and tests; a game with a login
    /// screen calls [`MingleClient::connect`] instead).
    pub fn connect_to(mut self, server: MingleServer) -> Self {
        self.connect = Some(server);
        self
    }
}

impl Plugin for MingleClientPlugin {
    fn build(&self, app: &mut App) {
        if !app.is_plugin_added::<RenetClientPlugin>() {
            app.add_plugins(RenetClientPlugin);
        }
        let mut connection = connection::Connection::default();
        if let Some(server) = self.connect.clone() {
            connection.request(connection::Request::Connect(server));
        }
        let linked = resource_exists::<ServerLink>.and_then(resource_exists::<RenetClient>);
        app.insert_resource(self.config.clone())
            .insert_resource(connection)
            .insert_resource(MingleConnectionState::Disconnected)
            .insert_resource(position::PositionSource::Local)
            .init_resource::<ClientSession>()
            .init_resource::<NearbyPeers>()
            .init_resource::<PeerCauses>()
            .init_resource::<MingleIceServers>()
            .init_resource::<MingleClientStats>()
            .init_resource::<transport::FlushNow>()
            .add_message::<PeerEntered>()
            .add_message::<PeerLeft>()
            .add_message::<SignalReceived>()
            .add_message::<MessageRejected>()
            .add_message::<MingleConnectionChanged>()
            .configure_sets(
                PreUpdate,
                (
                    MingleClientSystems::Connection.before(RenetReceive),
                    MingleClientSystems::Receive.after(RenetReceive),
                ),
            )
            .configure_sets(
                PostUpdate,
                MingleClientSystems::Send
                    .before(RenetSend)
                    .run_if(client_connected),
            )
            .add_systems(
                PreUpdate,
                connection::drive_connection.in_set(MingleClientSystems::Connection),
            )
            .add_systems(
                PreUpdate,
                (
                    receive::receive.run_if(resource_exists::<RenetClient>),
                    connection::watch_connection,
                    receive::publish,
                )
                    .chain()
                    .in_set(MingleClientSystems::Receive),
            )
            .add_systems(
                PreUpdate,
                transport::receive_packets
                    .in_set(RenetReceive)
                    .after(RenetClientPlugin::update_system)
                    .run_if(linked.clone()),
            )
            .add_systems(
                PostUpdate,
                position::send_position.in_set(MingleClientSystems::Send),
            )
            .add_systems(
                PostUpdate,
                transport::send_packets.in_set(RenetSend).run_if(linked),
            )
            .add_systems(
                Last,
                transport::disconnect_on_exit.run_if(resource_exists::<ServerLink>),
            );
        memory::add_systems(app);
    }

    fn finish(&self, app: &mut App) {
        if !app.is_plugin_added::<bevy::time::TimePlugin>() {
            bevy::log::warn!(
                "MingleClientPlugin: no TimePlugin, so positions are never paced and the \
                 connection never times out: add MinimalPlugins or DefaultPlugins"
            );
        }
        // Known only once every plugin is added (the game may add DefaultPlugins after us).
        if app.is_plugin_added::<bevy::transform::TransformPlugin>() {
            app.insert_resource(position::PositionSource::Global);
        }
    }
}

/// Run condition: connected and welcomed by the server.
pub fn mingle_connected(state: Option<Res<MingleConnectionState>>) -> bool {
    state.is_some_and(|s| s.is_connected())
}
