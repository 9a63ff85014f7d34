//! Voice benchmarks (feature `voice`): the receive path for one 20 ms output frame, and the
//! encoder. See BENCHMARKS.md for figures.
//!
//! `voice/mix/N`: N peers, each with a jitter buffer and an Opus decoder, fed real Opus packets
//! of a speech-like signal (28 kbit/s, FEC) with 10 % of them lost (so some frames come from
//! FEC and some are concealed); one iteration pushes each peer's packet, pops, decodes, gains
//! and pans it, mixes all of them and limits: everything a listener's client does per frame.
//! `voice/encode`: one 20 ms microphone frame through the Opus encoder.

use std::hint::black_box;
use std::time::Duration;

use bevy::math::Vec3;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mingle::client::voice::{
    Decode, EncoderConfig, FRAME, FRAME_SAMPLES, JitterBuffer, JitterConfig, Mixer, Playout,
    SAMPLE_RATE, SpatialConfig, VoiceDecoder, VoiceEncoder,
};

/// One second of a vowel-like signal: harmonics of a gliding pitch under two formants.
fn speech() -> Vec<f32> {
    let rate = SAMPLE_RATE as f32;
    let mut phase = 0.0f32;
    (0..SAMPLE_RATE as usize)
        .map(|i| {
            let t = i as f32 / rate;
            let pitch = 130.0 * (1.0 + 0.1 * (2.0 * std::f32::consts::PI * 1.5 * t).sin());
            phase += 2.0 * std::f32::consts::PI * pitch / rate;
            let mut s = 0.0;
            for h in 1..=16 {
                let f = pitch * h as f32;
                let w = 1.0 / (1.0 + ((f - 700.0) / 120.0).powi(2))
                    + 0.6 / (1.0 + ((f - 1800.0) / 200.0).powi(2))
                    + 0.05;
                s += w * (phase * h as f32).sin();
            }
            0.12 * s
        })
        .collect()
}

fn packets() -> Vec<Vec<u8>> {
    let mut enc = VoiceEncoder::new(EncoderConfig::default()).expect("default encoder");
    speech()
        .chunks(FRAME_SAMPLES)
        .map(|f| {
            enc.encode(f)
                .expect("encodes")
                .expect("speech is sent")
                .to_vec()
        })
        .collect()
}

struct Peer {
    jitter: JitterBuffer,
    decoder: VoiceDecoder,
    at: Vec3,
}

fn mix(c: &mut Criterion) {
    let packets = packets();
    let spatial = SpatialConfig::default();
    let mut group = c.benchmark_group("voice");
    for n in [1usize, 4, 16] {
        let mut peers: Vec<Peer> = (0..n)
            .map(|i| Peer {
                jitter: JitterBuffer::new(JitterConfig::default()),
                decoder: VoiceDecoder::new().expect("decoder"),
                at: Vec3::new((i as f32 * 1.3).sin() * 8.0, 0.0, (i as f32).cos() * 8.0),
            })
            .collect();
        let mut mixer = Mixer::default();
        let mut decoded = vec![0.0f32; FRAME_SAMPLES];
        let mut frame = 0u64;
        let mut stats = (0u64, 0u64, 0u64);
        group.bench_function(BenchmarkId::new("mix", n), |b| {
            b.iter(|| {
                let now = FRAME * frame as u32;
                mixer.clear();
                for (i, peer) in peers.iter_mut().enumerate() {
                    // 10 % loss, at a different phase for each peer.
                    if (frame + i as u64 * 3) % 10 != 7 {
                        let p = &packets[frame as usize % packets.len()];
                        peer.jitter.push(frame, p, now);
                    }
                    let how = match peer.jitter.pop(now + Duration::from_millis(1)) {
                        Playout::Packet(p) => Decode::Packet(p),
                        Playout::Fec(p) => Decode::Fec(p),
                        Playout::Conceal => Decode::Conceal,
                        Playout::Silent => continue,
                    };
                    peer.decoder.decode(how, &mut decoded);
                    let (l, r) = spatial.gains(Vec3::ZERO, Vec3::X, peer.at);
                    mixer.add(&decoded, l, r);
                }
                black_box(mixer.finish());
                frame += 1;
            })
        });
        for p in &peers {
            let s = p.jitter.stats();
            stats.0 += s.played;
            stats.1 += s.fec;
            stats.2 += s.concealed;
        }
        // The bench decoded real packets, recovered losses and concealed: it did its work.
        assert!(
            stats.0 > 0 && stats.1 > 0,
            "played {stats:?} (played, fec, concealed)"
        );
    }
    let speech = speech();
    let mut enc = VoiceEncoder::new(EncoderConfig::default()).expect("default encoder");
    let mut k = 0usize;
    let mut bytes = 0usize;
    group.bench_function("encode", |b| {
        b.iter(|| {
            let f = &speech[(k % 50) * FRAME_SAMPLES..(k % 50 + 1) * FRAME_SAMPLES];
            k += 1;
            bytes += enc
                .encode(black_box(f))
                .expect("encodes")
                .map_or(0, <[u8]>::len);
        })
    });
    assert!(bytes > 0, "the encoder produced packets");
    group.finish();
}

criterion_group!(benches, mix);
criterion_main!(benches);
