//! Sends the local player's position: promptly when it moves, at least once a second when still.

use bevy::log::warn;
use bevy::prelude::{GlobalTransform, Local, Query, Res, ResMut, Resource, Time, Transform};
use bevy::time::Real;
use bevy_renet::RenetClient;

use super::config::MingleClientConfig;
use super::session::ClientSession;
use super::state::MingleLocal;
use super::transport::FlushNow;
use crate::protocol::{Channel, encode_client};

/// Seconds connected without a [`MingleLocal`] entity before the plugin warns.
const NO_PLAYER_WARN_SECS: f64 = 2.0;

/// Which transform holds the player's world position: [`GlobalTransform`] when the app has
/// `TransformPlugin` (`DefaultPlugins`) to propagate it, else the local [`Transform`]
/// (`MinimalPlugins`; right for an unparented player only). Chosen when the app is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Resource)]
pub(crate) enum PositionSource {
    Global,
    Local,
}

/// What the position system warned about already (once each).
#[derive(Debug, Default)]
pub(crate) struct Warned {
    many: bool,
    none_since: Option<f64>,
    none: bool,
}

/// Sends a position update when the session says one is due. The position is the player
/// entity's [`GlobalTransform`], so a player parented to a vehicle reports where it is in
/// the world.
pub(crate) fn send_position(
    mut client: ResMut<RenetClient>,
    mut session: ResMut<ClientSession>,
    config: Res<MingleClientConfig>,
    time: Res<Time<Real>>,
    source: Res<PositionSource>,
    locals: Query<(&GlobalTransform, &Transform, &MingleLocal)>,
    mut flush: ResMut<FlushNow>,
    mut warned: Local<Warned>,
) {
    let now = time.elapsed_secs_f64();
    let mut iter = locals.iter();
    let Some((global, transform, local)) = iter.next() else {
        let since = *warned.none_since.get_or_insert(now);
        if !warned.none && now - since >= NO_PLAYER_WARN_SECS {
            warn!(
                "mingle: connected, but no entity has MingleLocal (and a Transform): spawn the \
                 player with MingleLocal so its position is sent and peers are introduced"
            );
            warned.none = true;
        }
        return;
    };
    warned.none_since = None;
    if iter.next().is_some() && !warned.many {
        warn!("mingle: several entities carry MingleLocal; only one player position is sent");
        warned.many = true;
    }
    let position = match *source {
        PositionSource::Global => global.translation(),
        PositionSource::Local => transform.translation,
    }
    .to_array();
    if let Some(msg) = session.position_update(now, position, local.space, config.pacing()) {
        client.send_message(Channel::Position, encode_client(&msg));
        flush.0 = true;
    }
}
