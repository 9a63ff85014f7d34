//! Real voice through mingle (feature `voice`): two clients introduced by a mingle server over
//! UDP open a WebRTC link on 127.0.0.1; A's microphone plays a speech-like signal made here
//! (vowel-like harmonics with pauses), B's speakers are recorded. The recording must match
//! the signal (normalized cross-correlation at the best lag), arrive quickly, follow the
//! distance curve, sit on the correct side, fall silent when A walks out of range, and
//! survive 10 % packet loss. Positions come from peers or from the game, as configured.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bevy::prelude::*;
use common::Harness;
use mingle::client::voice::{
    BufferAudio, FRAME_SAMPLES, MingleVoicePlugin, SAMPLE_RATE, Speaking, VoiceAudio, VoiceConfig,
    VoiceControls, VoiceStats,
};
use mingle::client::voice::{POSITION_TAG, PeerPositions, PositionSource};
use mingle::client::{LinkData, MingleClientPlugin, MingleWebRtcPlugin, OPUS_PT, WebRtcLinks};
use mingle::protocol::PeerId;
use mingle::server::MingleServerConfig;

const RATE: f32 = SAMPLE_RATE as f32;

/// Speech-like test signal: four "syllables" of vowel-like harmonics (gliding pitch, two
/// formants, a smooth envelope) with pauses between them; about 2 s.
fn speech() -> Vec<f32> {
    let syllables = [
        (130.0, 700.0, 1100.0),
        (160.0, 400.0, 2000.0),
        (120.0, 600.0, 900.0),
        (150.0, 300.0, 2300.0),
    ];
    let mut out = Vec::new();
    for (k, &(f0, f1, f2)) in syllables.iter().enumerate() {
        let len = (0.30 + 0.05 * k as f32) * RATE;
        let mut phase = 0.0f32;
        for i in 0..len as usize {
            let t = i as f32 / len;
            let pitch = f0 * (1.0 + 0.15 * (t - 0.5));
            phase += 2.0 * std::f32::consts::PI * pitch / RATE;
            let env = (std::f32::consts::PI * t).sin().powf(0.5);
            let mut s = 0.0;
            for h in 1..=20 {
                let f = pitch * h as f32;
                let w = 1.0 / (1.0 + ((f - f1) / 120.0).powi(2))
                    + 0.6 / (1.0 + ((f - f2) / 200.0).powi(2))
                    + 0.05;
                s += w * (phase * h as f32).sin();
            }
            out.push(0.12 * env * s);
        }
        out.extend(std::iter::repeat_n(0.0, (0.15 * RATE) as usize));
    }
    out
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|s| s * s).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

fn correlation(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum();
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    (dot / (na * nb).sqrt()) as f32
}

/// What B heard of one utterance of A's.
#[derive(Debug)]
struct Heard {
    lag_ms: f32,
    correlation: f32,
    /// Level relative to the signal, dB (power of both channels).
    level_db: f32,
    /// RMS of the left and right channels over the utterance.
    left: f32,
    right: f32,
}

struct Voice {
    audio: BufferAudio,
}

fn with_voice(audio: BufferAudio) -> impl FnOnce(&mut App) {
    move |app: &mut App| {
        app.add_plugins(TransformPlugin)
            .add_plugins(MingleWebRtcPlugin::default())
            .add_plugins(MingleVoicePlugin::default())
            .insert_resource(VoiceAudio::new(audio))
            .init_resource::<Spoken>()
            .add_systems(Update, record_speaking);
    }
}

/// Who this client was told is speaking.
#[derive(Debug, Default, Resource)]
struct Spoken(Vec<PeerId>);

fn record_speaking(mut spoken: ResMut<Spoken>, mut speaking: MessageReader<Speaking>) {
    for Speaking(peer) in speaking.read() {
        if !spoken.0.contains(peer) {
            spoken.0.push(*peer);
        }
    }
}

fn take_spoken(h: &mut Harness, i: usize) -> Vec<PeerId> {
    std::mem::take(&mut h.client_mut(i).app.world_mut().resource_mut::<Spoken>().0)
}

fn controls(h: &mut Harness, i: usize) -> Mut<'_, VoiceControls> {
    h.client_mut(i)
        .app
        .world_mut()
        .resource_mut::<VoiceControls>()
}

fn step_for(h: &mut Harness, d: Duration) {
    h.step_until(d, |_| false);
}

fn stats(h: &Harness, i: usize) -> VoiceStats {
    h.client(i).app.world().resource::<VoiceStats>().clone()
}

fn is_open(h: &Harness, i: usize, peer: PeerId) -> bool {
    h.client(i)
        .app
        .world()
        .resource::<WebRtcLinks>()
        .is_open(peer)
}

/// Two voice clients: A (id 1) at `a_at`, B (id 2, the listener, facing -Z so +X is its
/// right) at the origin; returns once their link is open and positions have been exchanged.
fn pair(a_at: Vec3) -> (Harness, usize, usize, Voice, Voice) {
    // The harness server's clock advances one fixed timestep (15.6 ms) per step, and voice
    // steps every ~2 ms of real time: its idle timeout would fire long before a real one.
    let mut h = Harness::with_config(MingleServerConfig {
        idle_timeout_secs: 3600.0,
        ..MingleServerConfig::default()
    });
    let (va, vb) = (BufferAudio::new(), BufferAudio::new());
    let a = h.connect_customized(1, a_at, with_voice(va.clone()));
    let b = h.connect_customized(2, Vec3::ZERO, with_voice(vb.clone()));
    let open = h.step_until(Duration::from_secs(20), |h| {
        is_open(h, a, PeerId(2)) && is_open(h, b, PeerId(1))
    });
    assert!(open, "the link opened on both sides");
    step_for(&mut h, Duration::from_millis(400));
    (h, a, b, Voice { audio: va }, Voice { audio: vb })
}

/// One utterance of A's: the frame its first sample was captured in.
#[derive(Debug, Clone, Copy)]
struct Utterance {
    first_frame: u64,
}

/// A says `signal`; steps until B has had time to play all of it.
fn say(h: &mut Harness, va: &Voice, signal: &[f32]) -> Utterance {
    let first_frame = va.audio.push_mic(signal);
    let done = h.step_until(Duration::from_secs(20), |_| va.audio.mic_queued() == 0);
    assert!(done, "A's microphone was consumed");
    step_for(h, Duration::from_millis(400));
    Utterance { first_frame }
}

/// B's recording of an utterance, aligned on the two clocks and compared with the signal.
/// Runs after the stepping is over: a slow analysis between steps would stall the links.
fn heard(h: &Harness, a: usize, b: usize, vb: &Voice, u: Utterance, signal: &[f32]) -> Heard {
    let (sa, sb) = (stats(h, a), stats(h, b));
    assert_eq!(sa.frames_skipped + sb.frames_skipped, 0, "no frame skipped");
    let (a0, b0) = (sa.started_at.unwrap(), sb.started_at.unwrap());
    // Signal sample i is spoken at a0 + first_frame × 20 ms + i; B's output sample j is heard
    // when its frame is handed to the speakers, at b0 + 20 ms + j.
    let offset_s = a0.saturating_duration_since(b0).as_secs_f64()
        - b0.saturating_duration_since(a0).as_secs_f64();
    let j0 = (offset_s * f64::from(SAMPLE_RATE)) as i64
        + u.first_frame as i64 * FRAME_SAMPLES as i64
        - FRAME_SAMPLES as i64;
    assert!(j0 >= 0, "B was playing before A spoke");
    let played = vb.audio.played();
    let (left, right): (Vec<f32>, Vec<f32>) = played.chunks_exact(2).map(|f| (f[0], f[1])).unzip();
    let mono: Vec<f32> = left.iter().zip(&right).map(|(l, r)| l + r).collect();
    let max_lag = (0.3 * RATE) as usize;
    assert!(
        mono.len() >= j0 as usize + signal.len() + max_lag,
        "B played the whole utterance"
    );
    let (signal_ref, mono_ref) = (signal, &mono);
    let corr_at = |len: usize| {
        move |lag: usize| {
            let at = j0 as usize + lag;
            (
                lag,
                correlation(&signal_ref[..len], &mono_ref[at..at + len]),
            )
        }
    };
    let best = |best: (usize, f32), x: (usize, f32)| if x.1 > best.1 { x } else { best };
    // Search the lag on the first syllable (coarse, then fine), then correlate it all.
    let first = (0.5 * RATE) as usize;
    let coarse = (0..max_lag)
        .step_by(16)
        .map(corr_at(first))
        .fold((0, f32::MIN), best);
    let fine = (coarse.0.saturating_sub(16)..coarse.0 + 16)
        .map(corr_at(first))
        .fold(coarse, best);
    let (lag, c) = (fine.0.saturating_sub(2)..fine.0 + 3)
        .map(corr_at(signal.len()))
        .fold((0, f32::MIN), best);
    let at = j0 as usize + lag;
    let (l, r) = (&left[at..at + signal.len()], &right[at..at + signal.len()]);
    let power = (rms(l).powi(2) + rms(r).powi(2)).sqrt();
    Heard {
        lag_ms: lag as f32 / RATE * 1000.0,
        correlation: c,
        level_db: 20.0 * (power / rms(signal)).log10(),
        left: rms(l),
        right: rms(r),
    }
}

fn move_a(h: &mut Harness, a: usize, to: Vec3) {
    h.move_to(a, to);
    // Positions travel peer to peer at 10 Hz.
    step_for(h, Duration::from_millis(400));
}

/// The tests run one at a time: each paces real-time audio, and two at once on a small
/// machine would measure the machine.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn voice_arrives_clean_in_time_at_the_right_level_and_side() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let signal = speech();
    let (mut h, a, b, va, vb) = pair(Vec3::new(-3.0, 0.0, 0.0));
    let curve = VoiceConfig::default().spatial;

    let distances = [3.0f32, 8.0, 14.0];
    let mut left_side = Vec::new();
    for d in distances {
        move_a(&mut h, a, Vec3::new(-d, 0.0, 0.0));
        left_side.push(say(&mut h, &va, &signal));
    }
    move_a(&mut h, a, Vec3::new(5.0, 0.0, 0.0));
    let right_side = say(&mut h, &va, &signal);
    assert!(
        take_spoken(&mut h, a).contains(&PeerId(1)),
        "A is told A speaks"
    );
    assert!(
        take_spoken(&mut h, b).contains(&PeerId(1)),
        "B is told A speaks"
    );
    // B turns A down to half (-6 dB); then A mutes itself: nothing is sent or said.
    controls(&mut h, b).set_volume(PeerId(1), 0.5);
    let half = say(&mut h, &va, &signal);
    controls(&mut h, b).set_volume(PeerId(1), 1.0);
    take_spoken(&mut h, a);
    take_spoken(&mut h, b);
    controls(&mut h, a).muted = true;
    let muted = say(&mut h, &va, &signal);
    controls(&mut h, a).muted = false;
    assert_eq!(take_spoken(&mut h, a), [], "a muted player is not speaking");
    assert!(
        !take_spoken(&mut h, b).contains(&PeerId(1)),
        "B hears no muted A"
    );
    // Between range (20) and leave_range (25): the link stays, the voice has faded out.
    move_a(&mut h, a, Vec3::new(-22.0, 0.0, 0.0));
    assert!(is_open(&h, b, PeerId(1)), "still linked inside leave_range");
    let faded = say(&mut h, &va, &signal);

    // Past leave_range the link closes and B hears nothing, though A keeps talking.
    h.move_to(a, Vec3::new(-40.0, 0.0, 0.0));
    let closed = h.step_until(Duration::from_secs(10), |h| !is_open(h, b, PeerId(1)));
    assert!(closed, "the link closed past leave_range");
    step_for(&mut h, Duration::from_millis(100));
    va.audio.push_mic(&signal);
    let before = vb.audio.played().len();
    step_for(&mut h, Duration::from_secs(1));
    let after = vb.audio.played();
    assert!(
        after.len() - before >= FRAME_SAMPLES * 2 * 25,
        "B kept playing"
    );
    let peak = after[before..].iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert_eq!(peak, 0.0, "B's output is silent once the link is closed");

    let mut levels = Vec::new();
    for (d, u) in distances.into_iter().zip(left_side) {
        let heard = heard(&h, a, b, &vb, u, &signal);
        let want = 20.0 * curve.gain(d).log10();
        println!("A {d} units to B's left: {heard:?}; the curve says {want:.2} dB");
        assert!(
            heard.correlation >= 0.8,
            "correlation {} at {d} units",
            heard.correlation
        );
        assert!(heard.lag_ms <= 100.0, "mouth to ear {} ms", heard.lag_ms);
        assert!(
            (heard.level_db - want).abs() <= 1.5,
            "level {:.2} dB at {d} units, curve says {want:.2} dB",
            heard.level_db
        );
        assert!(
            heard.left > 10.0 * heard.right,
            "A on B's left is heard in B's left ear: {heard:?}"
        );
        levels.push(heard.level_db);
    }
    assert!(levels[0] > levels[1] && levels[1] > levels[2]);
    let right = heard(&h, a, b, &vb, right_side, &signal);
    println!("A 5 units to B's right: {right:?}");
    assert!(right.right > 10.0 * right.left, "right side: {right:?}");
    let half = heard(&h, a, b, &vb, half, &signal);
    let want = 20.0 * curve.gain(5.0).log10() - 6.02;
    println!("A at half volume: {half:?}; want {want:.2} dB");
    assert!(
        (half.level_db - want).abs() <= 1.5,
        "per-peer volume: {half:?}"
    );
    let muted = heard(&h, a, b, &vb, muted, &signal);
    assert!(muted.level_db < -60.0, "muted A is silent: {muted:?}");
    let faded = heard(&h, a, b, &vb, faded, &signal);
    println!("A 22 units away (range 20, leave_range 25): {faded:?}");
    assert!(faded.level_db < -60.0, "faded out at 22 units: {faded:?}");
    let sent = stats(&h, a).packets_sent;
    assert!(sent > 300, "A sent {sent} packets");
}

#[test]
fn voice_survives_ten_percent_packet_loss() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let signal = speech();
    let (mut h, a, b, va, vb) = pair(Vec3::new(-3.0, 0.0, 0.0));
    // Drop 10 % of the RTP packets carrying Opus (PT 111) that reach B, at random (seeded).
    let dropped = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(AtomicU64::new(0));
    let (d, s) = (dropped.clone(), seen.clone());
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    h.client_mut(b)
        .app
        .world_mut()
        .resource_mut::<WebRtcLinks>()
        .set_inbound_filter(Some(Box::new(move |_, bytes: &[u8]| {
            let rtp = bytes.len() > 12 && bytes[0] >> 6 == 2 && bytes[1] & 0x7f == OPUS_PT;
            if !rtp {
                return true;
            }
            s.fetch_add(1, Ordering::Relaxed);
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let keep = !rng.is_multiple_of(10);
            if !keep {
                d.fetch_add(1, Ordering::Relaxed);
            }
            keep
        })));
    let said = [say(&mut h, &va, &signal), say(&mut h, &va, &signal)];
    let (dropped, seen) = (
        dropped.load(Ordering::Relaxed),
        seen.load(Ordering::Relaxed),
    );
    let mut total = 0.0;
    for u in said {
        let heard = heard(&h, a, b, &vb, u, &signal);
        println!("with 10 % loss: {heard:?}");
        assert!(
            heard.correlation >= 0.6,
            "correlation {}",
            heard.correlation
        );
        total += heard.correlation;
    }
    println!(
        "dropped {dropped} of {seen} RTP packets; mean correlation {}",
        total / 2.0
    );
    assert!(
        seen > 100 && dropped * 100 >= seen * 6,
        "about 10 % were dropped: {dropped} of {seen}"
    );
    let jitter = stats(&h, b).peers[&PeerId(1)];
    println!("B's jitter buffer for A: {jitter:?}");
    assert!(
        jitter.fec + jitter.concealed >= dropped / 2,
        "losses were repaired: {jitter:?}"
    );
}

/// A client app with voice whose positions come from `source`; no server is needed.
fn lone_voice_app(source: PositionSource) -> App {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, TransformPlugin))
        // Never connected: the voice plugin's pipeline is all this app needs.
        .add_plugins(MingleClientPlugin::default())
        .add_plugins(MingleWebRtcPlugin::default())
        .add_plugins(MingleVoicePlugin {
            config: VoiceConfig {
                positions: source,
                ..VoiceConfig::default()
            },
        });
    app
}

#[test]
fn positions_come_from_peers_or_from_the_game_as_configured() {
    let mut tagged = POSITION_TAG.to_vec();
    for v in [1.0f32, 2.0, 3.0] {
        tagged.extend_from_slice(&v.to_le_bytes());
    }
    let from = PeerId(7);
    for (source, want) in [
        (PositionSource::Peers, Some(Vec3::new(1.0, 2.0, 3.0))),
        (PositionSource::Game, None),
    ] {
        let mut app = lone_voice_app(source);
        app.world_mut().write_message(LinkData {
            from,
            data: tagged.clone(),
        });
        app.update();
        let positions = app.world().resource::<PeerPositions>();
        assert_eq!(positions.0.get(&from).copied(), want, "{source:?}");
    }
}
