//! Voice on every WebRTC link (cargo feature `voice`): Opus, jitter buffer, loss concealment,
//! distance gain and stereo pan, mixing, and audio I/O.
//!
//! Data path: microphone ([`AudioIo::capture`], 20 ms mono at 48 kHz) → [`VoiceEncoder`]
//! (Opus, FEC, DTX) → each open link's audio track (payload type 111) → the peer's
//! [`JitterBuffer`] → [`VoiceDecoder`] (packet, FEC copy, or concealment) → gain and pan from
//! the speaker's position relative to the listener's `GlobalTransform` ([`SpatialConfig`]) →
//! [`Mixer`] → [`AudioIo::play`] (stereo). Peers tell each other their positions on the data
//! channel (messages starting with [`POSITION_TAG`]), or the game fills [`PeerPositions`].
//!
//! The cores (`codec`, `jitter`, `spatial`, `mixer`) are sans-IO: time is passed in.
//!
//! ```no_run
//! use bevy::prelude::*;
//! use mingle::client::voice::{BufferAudio, MingleVoicePlugin, VoiceAudio};
//! use mingle::client::{MingleClientPlugin, MingleLocal, MingleServer, MingleWebRtcPlugin};
//! use mingle::protocol::PeerId;
//!
//! let server = MingleServer::unsecure("127.0.0.1:5000".parse().unwrap(), PeerId(1));
//! App::new()
//!     .add_plugins((
//!         MinimalPlugins.set(bevy::app::ScheduleRunnerPlugin::run_loop(
//!             std::time::Duration::from_millis(10),
//!         )),
//!         TransformPlugin,
//!     ))
//!     .add_plugins(MingleClientPlugin::default().connect_to(server))
//!     .add_plugins(MingleWebRtcPlugin::default())
//!     .add_plugins(MingleVoicePlugin::default())
//!     .insert_resource(VoiceAudio::new(BufferAudio::new()))
//!     .add_systems(Startup, |mut commands: Commands| {
//!         commands.spawn((MingleLocal::default(), Transform::default()));
//!     })
//!     .run();
//! ```

mod codec;
#[cfg(feature = "voice-devices")]
mod devices;
mod error;
mod io;
mod jitter;
mod mixer;
mod plugin;
mod spatial;

pub use codec::{
    DTX_PACKET_MAX, Decode, EncoderConfig, FRAME, FRAME_SAMPLES, MAX_PACKET, SAMPLE_RATE,
    VoiceDecoder, VoiceEncoder, rms,
};
#[cfg(feature = "voice-devices")]
pub use devices::DeviceAudio;
pub use error::VoiceError;
pub use io::{AudioIo, BufferAudio, read_wav_mono, write_wav};
pub use jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};
pub use mixer::{LIMIT, Mixer};
pub use plugin::{
    MingleVoicePlugin, POSITION_TAG, PeerPositions, PositionSource, Speaking, VoiceAudio,
    VoiceConfig, VoiceControls, VoiceStats,
};
pub use spatial::{Falloff, SpatialConfig, pan};
