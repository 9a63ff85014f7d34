//! The renet channel layout shared by both sides.

use std::time::Duration;

use renet::{ChannelConfig, ConnectionConfig, SendType};

/// A renet channel; the same ids are configured in both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Channel {
    /// Reliable, ordered: introductions, snapshots, refresh requests, reports, rejections.
    Control = 0,
    /// Unreliable: client positions, latest wins. The server sends nothing on it.
    Position = 1,
    /// Reliable, ordered, apart from `Control` so a 5 KB SDP never delays an introduction.
    Signal = 2,
}

impl Channel {
    /// Every channel, in priority order.
    pub const ALL: [Channel; 3] = [Channel::Control, Channel::Position, Channel::Signal];
}

impl From<Channel> for u8 {
    fn from(channel: Channel) -> u8 {
        channel as u8
    }
}

/// Bytes a reliable channel may hold unacknowledged per client before renet disconnects it.
pub const RELIABLE_MEMORY_BYTES: usize = 4 * 1024 * 1024;
/// Bytes the unreliable position channel may queue; newer positions are dropped past it.
const POSITION_MEMORY_BYTES: usize = 64 * 1024;

fn channels() -> Vec<ChannelConfig> {
    let reliable = |id: Channel| ChannelConfig {
        channel_id: id.into(),
        max_memory_usage_bytes: RELIABLE_MEMORY_BYTES,
        send_type: SendType::ReliableOrdered {
            resend_time: Duration::from_millis(200),
        },
    };
    vec![
        reliable(Channel::Control),
        ChannelConfig {
            channel_id: Channel::Position.into(),
            max_memory_usage_bytes: POSITION_MEMORY_BYTES,
            send_type: SendType::Unreliable,
        },
        reliable(Channel::Signal),
    ]
}

/// The renet connection configuration both server and client must use.
pub fn connection_config() -> ConnectionConfig {
    ConnectionConfig {
        available_bytes_per_tick: 60_000,
        server_channels_config: channels(),
        client_channels_config: channels(),
    }
}
