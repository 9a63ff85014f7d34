//! The client's renet wiring: netcode over one UDP socket, with paced sends.
//!
//! bevy_renet's `NetcodeClientPlugin` writes packets every frame, and renet answers every
//! packet with an ack packet, so a 60 fps game would send 60 packets a second to the server
//! forever. Here the [`ServerLink`] decides when to write (see its module).

use bevy::prelude::{AppExit, MessageReader, Res, ResMut, Resource, Time};
use bevy::time::Real;
use bevy_renet::RenetClient;

use super::config::MingleClientConfig;
use super::link::ServerLink;

/// Set when a message was queued this frame: the next send writes packets at once.
#[derive(Debug, Default, Resource)]
pub(crate) struct FlushNow(pub bool);

/// Reads the socket and advances netcode (runs in `RenetReceive`).
pub(crate) fn receive_packets(
    mut link: ResMut<ServerLink>,
    mut client: ResMut<RenetClient>,
    time: Res<Time<Real>>,
) {
    link.receive(time.delta(), &mut client, true);
}

/// Writes packets: at once when a message was queued, else as [`ServerLink::flush`] paces.
pub(crate) fn send_packets(
    mut link: ResMut<ServerLink>,
    mut client: ResMut<RenetClient>,
    mut flush: ResMut<FlushNow>,
    config: Res<MingleClientConfig>,
    time: Res<Time<Real>>,
) {
    link.flush(
        time.elapsed_secs_f64(),
        &mut client,
        config.send_hz,
        flush.0,
    );
    flush.0 = false;
}

/// Says goodbye to the server when the app exits, so peers are told at once.
pub(crate) fn disconnect_on_exit(exit: MessageReader<AppExit>, mut link: ResMut<ServerLink>) {
    if !exit.is_empty() {
        link.disconnect();
    }
}
