//! The client plugin for games: reports the local player's position, keeps the set of
//! introduced peers, and carries WebRTC signaling.
//!
//! Mark the player entity with [`MingleLocal`]; read [`PeerEntered`] / [`PeerLeft`] /
//! [`SignalReceived`] with a `MessageReader`; send with the [`MingleClient`] system parameter.
//! Connection status is offered as run conditions: [`mingle_connected`].
//!
//! ```no_run
//! use bevy::prelude::*;
//! use mingle::client::{MingleClientConfig, MingleClientPlugin, MingleLocal, PeerEntered};
//!
//! fn log_peers(mut entered: MessageReader<PeerEntered>) {
//!     for PeerEntered(peer) in entered.read() {
//!         info!("{peer} is within earshot");
//!     }
//! }
//!
//! App::new()
//!     .add_plugins(MinimalPlugins)
//!     .add_plugins(MingleClientPlugin::new(MingleClientConfig::default()))
//!     .add_systems(Startup, |mut commands: Commands| {
//!         commands.spawn((MingleLocal::default(), Transform::default()));
//!     })
//!     .add_systems(Update, log_peers)
//!     .run();
//! ```

mod api;
mod causes;
mod config;
#[cfg(feature = "webrtc")]
pub mod ice;
mod link;
mod messages;
mod position;
mod receive;
mod state;
mod transport;
#[cfg(feature = "voice")]
pub mod voice;
#[cfg(feature = "webrtc")]
mod webrtc;

use bevy::app::{App, Last, Plugin, PostUpdate, PreUpdate};
use bevy::prelude::{
    Commands, IntoScheduleConfigs, MessageWriter, Res, ResMut, SystemSet, resource_exists,
};
use bevy_renet::{
    RenetClient, RenetClientPlugin, RenetReceive, RenetSend, client_connected,
    client_just_disconnected,
};

pub use api::{ClientError, MingleClient};
pub use causes::PeerCauses;
pub use config::MingleClientConfig;
pub use link::{IDLE_WRITE_SECS, NETCODE_TIMERS, ServerLink};
pub use messages::{MessageRejected, PeerEntered, PeerLeft, SignalReceived};
pub use state::{MingleClientStats, MingleIceServers, MingleLocal, MingleSession, NearbyPeers};
#[cfg(feature = "webrtc")]
pub use webrtc::{InboundFilter, LinkAudio, OPUS_PT};
#[cfg(feature = "webrtc")]
pub use webrtc::{
    LinkClosed, LinkData, LinkFailed, LinkOpened, MingleWebRtcPlugin, SelectedPair, WebRtcConfig,
    WebRtcLinks,
};

use crate::protocol::connection_config;

/// The client's system sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, SystemSet)]
pub enum MingleClientSystems {
    /// Applies server messages and writes [`PeerEntered`], [`PeerLeft`], [`SignalReceived`] and
    /// [`MessageRejected`]. Runs in [`PreUpdate`], after [`RenetReceive`]; read the messages in
    /// `Update`.
    Receive,
    /// Sends the [`MingleLocal`] position. Runs in [`PostUpdate`], before [`RenetSend`]
    /// (where packets are written: at once when a message is queued, else at most
    /// [`MingleClientConfig::send_hz`] times a second).
    Send,
}

/// Connects a game to a mingle server. Needs `MinimalPlugins` or `DefaultPlugins` for time.
pub struct MingleClientPlugin {
    /// The configuration, inserted as a resource.
    pub config: MingleClientConfig,
}

impl MingleClientPlugin {
    /// A plugin that connects to `config.server` when added.
    pub fn new(config: MingleClientConfig) -> Self {
        MingleClientPlugin { config }
    }
}

impl Plugin for MingleClientPlugin {
    /// # Panics
    /// If `connect_token` is not a valid token, or no local UDP socket can be bound.
    fn build(&self, app: &mut App) {
        let transport = transport::connect(&self.config).unwrap_or_else(|e| {
            panic!("MingleClientPlugin: cannot connect (bad connect token, or no UDP socket): {e}")
        });
        if !app.is_plugin_added::<RenetClientPlugin>() {
            app.add_plugins(RenetClientPlugin);
        }
        app.insert_resource(RenetClient::new(connection_config()))
            .insert_resource(transport)
            .insert_resource(self.config.clone())
            .init_resource::<NearbyPeers>()
            .init_resource::<PeerCauses>()
            .init_resource::<MingleIceServers>()
            .init_resource::<MingleClientStats>()
            .init_resource::<transport::FlushNow>()
            .add_message::<PeerEntered>()
            .add_message::<PeerLeft>()
            .add_message::<SignalReceived>()
            .add_message::<MessageRejected>()
            .configure_sets(
                PreUpdate,
                MingleClientSystems::Receive
                    .after(RenetReceive)
                    .run_if(resource_exists::<RenetClient>),
            )
            .configure_sets(
                PostUpdate,
                MingleClientSystems::Send
                    .before(RenetSend)
                    .run_if(client_connected),
            )
            .add_systems(
                PreUpdate,
                (
                    forget_session.run_if(client_just_disconnected),
                    receive::receive,
                )
                    .chain()
                    .in_set(MingleClientSystems::Receive),
            )
            .add_systems(
                PreUpdate,
                transport::receive_packets
                    .in_set(RenetReceive)
                    .after(RenetClientPlugin::update_system)
                    .run_if(resource_exists::<ServerLink>),
            )
            .add_systems(
                PostUpdate,
                position::send_position.in_set(MingleClientSystems::Send),
            )
            .add_systems(
                PostUpdate,
                transport::send_packets
                    .in_set(RenetSend)
                    .run_if(resource_exists::<ServerLink>),
            )
            .add_systems(
                Last,
                transport::disconnect_on_exit.run_if(resource_exists::<ServerLink>),
            );
    }
}

/// Run condition: connected and welcomed by the server.
pub fn mingle_connected(
    client: Option<Res<RenetClient>>,
    session: Option<Res<MingleSession>>,
) -> bool {
    session.is_some() && client.is_some_and(|c| c.is_connected())
}

/// On disconnect every peer is gone: tell the game, and drop the session.
fn forget_session(
    mut commands: Commands,
    mut nearby: ResMut<NearbyPeers>,
    mut left: MessageWriter<PeerLeft>,
) {
    for peer in std::mem::take(&mut nearby.0) {
        left.write(PeerLeft(peer));
    }
    commands.remove_resource::<MingleSession>();
}
