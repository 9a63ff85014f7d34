//! Sends the local player's position: promptly when it moves, at least once a second when still.

use bevy::log::warn;
use bevy::math::Vec3;
use bevy::prelude::{Local, Query, Res, ResMut, Time, Transform, With};
use bevy::time::Real;
use bevy_renet::RenetClient;

use super::config::MingleClientConfig;
use super::state::{MingleClientStats, MingleLocal};
use super::transport::FlushNow;
use crate::protocol::{Channel, ClientToServer, SpaceId, encode_client};

/// What was last sent, and when.
#[derive(Debug, Default)]
pub(crate) struct LastSent {
    at_secs: Option<f64>,
    position: Vec3,
    space: SpaceId,
    warned_many: bool,
}

/// Sends a position update when the player moved (at most `position_hz`) or has been still for
/// `keepalive_secs`.
pub(crate) fn send_position(
    mut client: ResMut<RenetClient>,
    config: Res<MingleClientConfig>,
    time: Res<Time<Real>>,
    locals: Query<(&Transform, &MingleLocal), With<MingleLocal>>,
    mut stats: ResMut<MingleClientStats>,
    mut flush: ResMut<FlushNow>,
    mut last: Local<LastSent>,
) {
    let mut iter = locals.iter();
    let Some((transform, local)) = iter.next() else {
        return;
    };
    if iter.next().is_some() && !last.warned_many {
        warn!("mingle: several entities carry MingleLocal; only one player position is sent");
        last.warned_many = true;
    }
    let now = time.elapsed_secs_f64();
    let (position, space) = (transform.translation, local.space);
    let due = match last.at_secs {
        None => true,
        Some(at) => {
            let moved = position != last.position || space != last.space;
            (moved && now - at >= 1.0 / config.position_hz) || now - at >= config.keepalive_secs
        }
    };
    if !due {
        return;
    }
    let msg = ClientToServer::Position {
        space,
        position: position.to_array(),
    };
    client.send_message(Channel::Position, encode_client(&msg));
    stats.positions_sent += 1;
    flush.0 = true;
    last.at_secs = Some(now);
    last.position = position;
    last.space = space;
}
