//! The Bevy glue: links → jitter buffers → decoders → 3D mix → audio out, and microphone →
//! encoder → every open link, one 20 ms frame at a time on the app's real clock.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bevy::app::{App, Plugin, Update};
use bevy::log::warn;
use bevy::math::Vec3;
use bevy::prelude::{
    GlobalTransform, IntoScheduleConfigs, Message, MessageReader, MessageWriter, Query, Res,
    ResMut, Resource, Time, With, resource_exists,
};
use bevy::time::Real;

use super::codec::{Decode, EncoderConfig, FRAME, FRAME_SAMPLES, VoiceDecoder, VoiceEncoder, rms};
use super::io::AudioIo;
use super::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};
use super::mixer::Mixer;
use super::spatial::SpatialConfig;
use crate::client::{
    LinkAudio, LinkClosed, LinkData, LinkOpened, MingleLocal, MingleWelcome, WebRtcLinks,
};
use crate::protocol::PeerId;

/// The first bytes of a position message on a link's data channel (then x, y, z as f32 LE).
/// The voice plugin sends and consumes these; a game reading [`LinkData`] skips them.
pub const POSITION_TAG: [u8; 4] = *b"mgv\x01";

/// Where the voice plugin learns where peers stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PositionSource {
    /// Peers tell each other on the data channel, `position_hz` times a second (16 bytes):
    /// the server stays idle.
    #[default]
    Peers,
    /// The game fills [`PeerPositions`] from its own replication.
    Game,
}

/// Voice settings, inserted as a resource by [`MingleVoicePlugin`].
#[derive(Debug, Clone, Resource)]
pub struct VoiceConfig {
    /// The Opus encoder (bitrate, FEC, DTX).
    pub encoder: EncoderConfig,
    /// The per-peer jitter buffers.
    pub jitter: JitterConfig,
    /// Gain against distance.
    pub spatial: SpatialConfig,
    /// Where peer positions come from. Default: [`PositionSource::Peers`].
    pub positions: PositionSource,
    /// Position messages a second when `positions` is `Peers`. Default: 10.
    pub position_hz: f32,
    /// RMS (-1..1 scale) above which a frame counts as speech for [`Speaking`]. Default: 0.01
    /// (-40 dBFS).
    pub speaking_threshold: f32,
    /// Frames processed in one app update at most; if the app fell further behind, the
    /// frames between are skipped. Default: 25 (500 ms).
    pub max_catch_up: u32,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        VoiceConfig {
            encoder: EncoderConfig::default(),
            jitter: JitterConfig::default(),
            spatial: SpatialConfig::default(),
            positions: PositionSource::Peers,
            position_hz: 10.0,
            speaking_threshold: 0.01,
            max_catch_up: 25,
        }
    }
}

/// Where each peer's voice comes from, world units. Filled from the data channel, or by the
/// game (see [`PositionSource`]). A peer with no position yet is heard at full volume,
/// centred.
#[derive(Debug, Clone, Default, Resource)]
pub struct PeerPositions(pub HashMap<PeerId, Vec3>);

/// What the local player controls: microphone mute and each peer's volume.
#[derive(Debug, Clone, Default, Resource)]
pub struct VoiceControls {
    /// While true, the microphone is neither encoded nor sent.
    pub muted: bool,
    volumes: HashMap<PeerId, f32>,
}

impl VoiceControls {
    /// Sets `peer`'s volume (linear gain, 1.0 = as the distance curve says, 0.0 = muted).
    pub fn set_volume(&mut self, peer: PeerId, volume: f32) {
        self.volumes.insert(peer, volume.max(0.0));
    }

    /// `peer`'s volume. Default: 1.0.
    pub fn volume(&self, peer: PeerId) -> f32 {
        self.volumes.get(&peer).copied().unwrap_or(1.0)
    }
}

/// The audio input and output the voice plugin uses; insert it to start voice.
#[derive(Resource)]
pub struct VoiceAudio(pub Box<dyn AudioIo>);

impl VoiceAudio {
    /// Wraps an audio I/O.
    pub fn new(io: impl AudioIo) -> Self {
        VoiceAudio(Box::new(io))
    }
}

/// Someone is speaking (a peer, or the local player under its own id): written for every
/// app update in which one of their frames was above `speaking_threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
pub struct Speaking(pub PeerId);

/// Counters of the voice plugin.
#[derive(Debug, Clone, Default, Resource)]
pub struct VoiceStats {
    /// When the first frame's clock started (frame `k` is due at `started_at + (k+1) × 20 ms`).
    pub started_at: Option<Instant>,
    /// Frames processed (captured and played).
    pub frames: u64,
    /// Frames skipped because the app fell behind.
    pub frames_skipped: u64,
    /// Opus packets sent (to all peers together).
    pub packets_sent: u64,
    /// Opus bytes sent (to all peers together).
    pub bytes_sent: u64,
    /// Each peer's jitter buffer counters.
    pub peers: BTreeMap<PeerId, JitterStats>,
}

struct PeerStream {
    jitter: JitterBuffer,
    decoder: VoiceDecoder,
}

#[derive(Resource)]
struct VoiceState {
    encoder: VoiceEncoder,
    streams: BTreeMap<PeerId, PeerStream>,
    mixer: Mixer,
    mic: Vec<f32>,
    decoded: Vec<f32>,
    /// `Time<Real>` elapsed at the first frame's start.
    origin: Option<Duration>,
    frames_done: u64,
    last_position_sent: Option<Duration>,
}

/// Adds voice to every WebRTC link (feature `voice`). Needs [`MingleClientPlugin`],
/// [`MingleWebRtcPlugin`] and Bevy's `TransformPlugin` (in `DefaultPlugins`: the listener is
/// the [`MingleLocal`] entity's `GlobalTransform`); starts once the game inserts
/// [`VoiceAudio`]. Its systems run in `Update`.
///
/// [`MingleClientPlugin`]: crate::client::MingleClientPlugin
/// [`MingleWebRtcPlugin`]: crate::client::MingleWebRtcPlugin
#[derive(Default)]
pub struct MingleVoicePlugin {
    /// The configuration, inserted as a resource.
    pub config: VoiceConfig,
}

impl Plugin for MingleVoicePlugin {
    /// # Panics
    /// If libopus cannot create an encoder with `config.encoder` (a bitrate out of range).
    fn build(&self, app: &mut App) {
        if !app.is_plugin_added::<crate::client::MingleWebRtcPlugin>() {
            warn!("MingleVoicePlugin: add MingleWebRtcPlugin first; voice needs its links");
        }
        let encoder = VoiceEncoder::new(self.config.encoder)
            .unwrap_or_else(|e| panic!("MingleVoicePlugin: bad encoder config: {e}"));
        app.insert_resource(self.config.clone())
            .insert_resource(VoiceState {
                encoder,
                streams: BTreeMap::new(),
                mixer: Mixer::default(),
                mic: vec![0.0; FRAME_SAMPLES],
                decoded: vec![0.0; FRAME_SAMPLES],
                origin: None,
                frames_done: 0,
                last_position_sent: None,
            })
            .init_resource::<PeerPositions>()
            .init_resource::<VoiceControls>()
            .init_resource::<VoiceStats>()
            .add_message::<Speaking>()
            .add_systems(
                Update,
                (receive, send_position, run_frames)
                    .chain()
                    .run_if(resource_exists::<WebRtcLinks>),
            );
    }
}

/// Links open and close streams; audio goes into jitter buffers; positions into the map.
fn receive(
    mut state: ResMut<VoiceState>,
    config: Res<VoiceConfig>,
    time: Res<Time<Real>>,
    mut positions: ResMut<PeerPositions>,
    mut stats: ResMut<VoiceStats>,
    mut opened: MessageReader<LinkOpened>,
    mut closed: MessageReader<LinkClosed>,
    mut audio: MessageReader<LinkAudio>,
    mut data: MessageReader<LinkData>,
) {
    let now = time.elapsed();
    let open_stream = |state: &mut VoiceState, peer: PeerId| {
        if state.streams.contains_key(&peer) {
            return;
        }
        match VoiceDecoder::new() {
            Ok(decoder) => {
                state.streams.insert(
                    peer,
                    PeerStream {
                        jitter: JitterBuffer::new(config.jitter),
                        decoder,
                    },
                );
            }
            Err(e) => warn!("mingle voice: no decoder for {peer}: {e}"),
        }
    };
    for LinkOpened(peer) in opened.read() {
        open_stream(&mut state, *peer);
    }
    for LinkAudio {
        from,
        rtp_time,
        data,
    } in audio.read()
    {
        // Audio can beat this side's data channel to the finish: open the stream on it too.
        open_stream(&mut state, *from);
        if let Some(stream) = state.streams.get_mut(from) {
            stream
                .jitter
                .push(rtp_time / FRAME_SAMPLES as u64, data, now);
        }
    }
    if config.positions == PositionSource::Peers {
        for LinkData { from, data } in data.read() {
            if let Some(p) = decode_position(data) {
                positions.0.insert(*from, p);
            }
        }
    }
    for LinkClosed(peer) in closed.read() {
        state.streams.remove(peer);
        stats.peers.remove(peer);
        if config.positions == PositionSource::Peers {
            positions.0.remove(peer);
        }
    }
}

fn encode_position(p: Vec3) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&POSITION_TAG);
    for (i, v) in p.to_array().into_iter().enumerate() {
        out[4 + i * 4..8 + i * 4].copy_from_slice(&v.to_le_bytes());
    }
    out
}

/// A position message, if `data` is one with finite coordinates.
fn decode_position(data: &[u8]) -> Option<Vec3> {
    if data.len() != 16 || data[..4] != POSITION_TAG {
        return None;
    }
    let f = |i: usize| f32::from_le_bytes(data[4 + i * 4..8 + i * 4].try_into().ok()?).into();
    let v: [Option<f32>; 3] = [f(0), f(1), f(2)];
    let p = Vec3::new(v[0]?, v[1]?, v[2]?);
    p.is_finite().then_some(p)
}

/// Tells every open link where the local player stands, `position_hz` times a second.
fn send_position(
    mut state: ResMut<VoiceState>,
    config: Res<VoiceConfig>,
    time: Res<Time<Real>>,
    mut links: ResMut<WebRtcLinks>,
    locals: Query<&GlobalTransform, With<MingleLocal>>,
) {
    if config.positions != PositionSource::Peers {
        return;
    }
    let now = time.elapsed();
    let period = Duration::from_secs_f32(1.0 / config.position_hz.max(0.1));
    if state.last_position_sent.is_some_and(|t| now < t + period) {
        return;
    }
    let Some(me) = locals.iter().next() else {
        return;
    };
    state.last_position_sent = Some(now);
    let msg = encode_position(me.translation());
    let peers: Vec<PeerId> = links.open_links().collect();
    for peer in peers {
        links.send(peer, &msg);
    }
}

/// Runs every frame that fell due since the last update: microphone → encoder → links, and
/// jitter buffers → decoders → 3D mix → output.
fn run_frames(
    mut state: ResMut<VoiceState>,
    config: Res<VoiceConfig>,
    controls: Res<VoiceControls>,
    positions: Res<PeerPositions>,
    time: Res<Time<Real>>,
    audio: Option<ResMut<VoiceAudio>>,
    mut links: ResMut<WebRtcLinks>,
    session: Option<Res<MingleWelcome>>,
    locals: Query<&GlobalTransform, With<MingleLocal>>,
    mut stats: ResMut<VoiceStats>,
    mut speaking: MessageWriter<Speaking>,
) {
    let Some(mut audio) = audio else { return };
    let now = time.elapsed();
    let state = &mut *state;
    let origin = *state.origin.get_or_insert_with(|| {
        stats.started_at = Some(Instant::now());
        now
    });
    let due = ((now - origin).as_nanos() / FRAME.as_nanos()) as u64;
    if due > state.frames_done + u64::from(config.max_catch_up) {
        let skip = due - state.frames_done - u64::from(config.max_catch_up);
        state.frames_done += skip;
        stats.frames_skipped += skip;
    }
    let (listener, right) = locals
        .iter()
        .next()
        .map_or((Vec3::ZERO, Vec3::X), |t| (t.translation(), *t.right()));
    let open: Vec<PeerId> = links.open_links().collect();
    let mut spoke_local = false;
    let mut spoke: Vec<PeerId> = Vec::new();
    while state.frames_done < due {
        let frame = state.frames_done;
        state.frames_done += 1;
        // Microphone → every open link.
        let has_mic = audio.0.capture(&mut state.mic);
        if has_mic && !controls.muted {
            spoke_local |= rms(&state.mic) > config.speaking_threshold;
        }
        // Nobody to hear it: do not spend the encoder.
        if has_mic && !controls.muted && !open.is_empty() {
            match state.encoder.encode(&state.mic) {
                Ok(Some(packet)) => {
                    for &peer in &open {
                        if links.send_audio(peer, frame * FRAME_SAMPLES as u64, packet) {
                            stats.packets_sent += 1;
                            stats.bytes_sent += packet.len() as u64;
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => warn!("mingle voice: encoding failed: {e}"),
            }
        }
        // Every peer → the mix.
        state.mixer.clear();
        for (&peer, stream) in &mut state.streams {
            let how = match stream.jitter.pop(now) {
                Playout::Packet(p) => Decode::Packet(p),
                Playout::Fec(p) => Decode::Fec(p),
                Playout::Conceal => Decode::Conceal,
                Playout::Silent => continue,
            };
            stream.decoder.decode(how, &mut state.decoded);
            if rms(&state.decoded) > config.speaking_threshold && !spoke.contains(&peer) {
                spoke.push(peer);
            }
            let volume = controls.volume(peer);
            let (l, r) = match positions.0.get(&peer) {
                Some(&at) => config.spatial.gains(listener, right, at),
                None => (
                    std::f32::consts::FRAC_1_SQRT_2,
                    std::f32::consts::FRAC_1_SQRT_2,
                ),
            };
            state.mixer.add(&state.decoded, l * volume, r * volume);
        }
        audio.0.play(state.mixer.finish());
        stats.frames += 1;
    }
    for (peer, stream) in &state.streams {
        stats.peers.insert(*peer, stream.jitter.stats());
    }
    if spoke_local && let Some(session) = session {
        speaking.write(Speaking(session.you));
    }
    for peer in spoke {
        speaking.write(Speaking(peer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_garbage_is_refused() {
        let p = Vec3::new(1.5, -2.0, 3.25);
        assert_eq!(decode_position(&encode_position(p)), Some(p));
        assert_eq!(decode_position(b"hello"), None);
        let mut nan = encode_position(p);
        nan[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
        assert_eq!(decode_position(&nan), None);
        let mut other = encode_position(p);
        other[0] = b'x';
        assert_eq!(decode_position(&other), None);
    }
}
