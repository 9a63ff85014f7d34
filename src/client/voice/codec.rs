//! Opus encoder and decoder for one voice stream: 48 kHz mono, 20 ms frames.
//!
//! The encoder is set for speech on a lossy path: VoIP application, in-band FEC on (each packet
//! carries a low-rate copy of the previous frame), DTX on (a silent microphone sends a tiny
//! packet every 400 ms instead of one every 20 ms), a fixed bitrate (default 28 kbit/s).
//! Encoded packets of at most [`DTX_PACKET_MAX`] bytes carry no speech and are not sent.

use std::sync::Mutex;

use super::error::VoiceError;

/// libopus states are `Send` but not `Sync`; Bevy resources must be both. A `Mutex` makes
/// them `Sync`, and `get_mut` (we always hold `&mut self`) never locks.
fn inner<T>(m: &mut Mutex<T>) -> &mut T {
    m.get_mut().unwrap_or_else(|e| e.into_inner())
}

/// Samples a second of every voice stream.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples in one 20 ms mono frame.
pub const FRAME_SAMPLES: usize = 960;
/// Length of one frame.
pub const FRAME: std::time::Duration = std::time::Duration::from_millis(20);
/// Largest Opus packet mingle produces or accepts (bytes). A 20 ms frame at 510 kbit/s is 1,275.
pub const MAX_PACKET: usize = 1_275;
/// Packets this short carry no audio (DTX or an empty frame): the sender drops them.
pub const DTX_PACKET_MAX: usize = 2;

/// How the encoder is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncoderConfig {
    /// Target bitrate. Default: 28,000 bit/s.
    pub bitrate: u32,
    /// Loss rate the in-band FEC is sized for, in percent. Default: 10.
    pub expected_loss_percent: u8,
    /// Discontinuous transmission: send (almost) nothing while the microphone is silent.
    /// Default: true.
    pub dtx: bool,
    /// Encoder complexity, 0 (cheapest) to 10. Default: 5.
    pub complexity: u8,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        EncoderConfig {
            bitrate: 28_000,
            expected_loss_percent: 10,
            dtx: true,
            complexity: 5,
        }
    }
}

/// Encodes the local microphone, one 20 ms frame at a time.
pub struct VoiceEncoder {
    opus: Mutex<opus::Encoder>,
    packet: Vec<u8>,
}

impl std::fmt::Debug for VoiceEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceEncoder").finish_non_exhaustive()
    }
}

impl VoiceEncoder {
    /// An encoder set as `config` says.
    ///
    /// # Errors
    /// [`VoiceError::Opus`] if libopus refuses a setting (a bitrate out of 500..=512,000).
    pub fn new(config: EncoderConfig) -> Result<Self, VoiceError> {
        let mut opus =
            opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)?;
        opus.set_bitrate(opus::Bitrate::Bits(config.bitrate as i32))?;
        opus.set_inband_fec(true)?;
        opus.set_packet_loss_perc(i32::from(config.expected_loss_percent.min(100)))?;
        opus.set_dtx(config.dtx)?;
        opus.set_complexity(i32::from(config.complexity.min(10)))?;
        opus.set_signal(opus::Signal::Voice)?;
        Ok(VoiceEncoder {
            opus: Mutex::new(opus),
            packet: vec![0; MAX_PACKET],
        })
    }

    /// Encodes one frame of [`FRAME_SAMPLES`] samples in -1.0..=1.0. Returns the packet to
    /// send, or `None` while DTX has nothing worth sending.
    ///
    /// # Errors
    /// [`VoiceError::FrameLength`] if `frame` is not one frame long; [`VoiceError::Opus`] if
    /// libopus fails.
    pub fn encode(&mut self, frame: &[f32]) -> Result<Option<&[u8]>, VoiceError> {
        if frame.len() != FRAME_SAMPLES {
            return Err(VoiceError::FrameLength(frame.len()));
        }
        let n = inner(&mut self.opus).encode_float(frame, &mut self.packet)?;
        Ok((n > DTX_PACKET_MAX).then(|| &self.packet[..n]))
    }
}

/// How one frame of a peer's stream is to be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decode<'a> {
    /// The frame's own packet.
    Packet(&'a [u8]),
    /// The frame was lost; the next packet carries its FEC copy.
    Fec(&'a [u8]),
    /// The frame was lost and nothing covers it: conceal (Opus PLC).
    Conceal,
}

/// Decodes one peer's stream.
pub struct VoiceDecoder {
    opus: Mutex<opus::Decoder>,
}

impl std::fmt::Debug for VoiceDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceDecoder").finish_non_exhaustive()
    }
}

impl VoiceDecoder {
    /// A decoder for a 48 kHz mono stream.
    ///
    /// # Errors
    /// [`VoiceError::Opus`] if libopus cannot allocate one.
    pub fn new() -> Result<Self, VoiceError> {
        Ok(VoiceDecoder {
            opus: Mutex::new(opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono)?),
        })
    }

    /// Makes one frame into `out` ([`FRAME_SAMPLES`] long) from a packet, an FEC copy, or
    /// concealment. A packet libopus rejects (bytes from the network) is concealed instead.
    ///
    /// # Panics
    /// If `out` is not one frame long (a caller bug).
    pub fn decode(&mut self, how: Decode<'_>, out: &mut [f32]) {
        assert_eq!(out.len(), FRAME_SAMPLES, "decode writes one 20 ms frame");
        let opus = inner(&mut self.opus);
        let result = match how {
            Decode::Packet(p) if p.len() <= MAX_PACKET => opus.decode_float(p, out, false),
            Decode::Fec(p) if p.len() <= MAX_PACKET => opus.decode_float(p, out, true),
            _ => opus.decode_float(&[], out, false),
        };
        match result {
            Ok(FRAME_SAMPLES) => {}
            Ok(_) | Err(_) => {
                // A packet of another duration or a corrupt one: conceal, never trust it.
                if !matches!(opus.decode_float(&[], out, false), Ok(FRAME_SAMPLES)) {
                    out.fill(0.0);
                }
            }
        }
    }
}

/// Root mean square of `samples` (0.0 for none).
pub fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt() as f32
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A vowel-like test tone: harmonics of 140 Hz under a formant-ish envelope.
    pub(crate) fn vowel(n: usize, amp: f32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let t = i as f32 / SAMPLE_RATE as f32;
                let f0 = 140.0 * (1.0 + 0.05 * (2.0 * std::f32::consts::PI * 3.0 * t).sin());
                let mut s = 0.0;
                for h in 1..=12 {
                    let f = f0 * h as f32;
                    let w = 1.0 / (1.0 + ((f - 700.0) / 300.0).powi(2))
                        + 0.5 / (1.0 + ((f - 1200.0) / 300.0).powi(2));
                    s += w * (2.0 * std::f32::consts::PI * f * t).sin();
                }
                amp * s / 2.0
            })
            .collect()
    }

    fn correlation(a: &[f32], b: &[f32]) -> f32 {
        let dot: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum();
        let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum();
        let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum();
        (dot / (na * nb).sqrt()) as f32
    }

    /// Best normalized correlation over lags 0..max_lag of `out` behind `input`.
    pub(crate) fn best_lag(input: &[f32], out: &[f32], max_lag: usize) -> (usize, f32) {
        (0..max_lag)
            .map(|lag| {
                let n = input.len().min(out.len().saturating_sub(lag));
                (lag, correlation(&input[..n], &out[lag..lag + n]))
            })
            .fold((0, f32::MIN), |best, x| if x.1 > best.1 { x } else { best })
    }

    fn round_trip(loss_every: Option<usize>) -> (Vec<f32>, Vec<f32>, usize) {
        let input = vowel(FRAME_SAMPLES * 50, 0.3);
        let mut enc = VoiceEncoder::new(EncoderConfig::default()).unwrap();
        let mut dec = VoiceDecoder::new().unwrap();
        let packets: Vec<Vec<u8>> = input
            .chunks(FRAME_SAMPLES)
            .map(|f| enc.encode(f).unwrap().expect("speech is sent").to_vec())
            .collect();
        let bytes = packets.iter().map(Vec::len).sum::<usize>() / packets.len();
        let mut out = vec![0.0; input.len()];
        for (i, frame) in out.chunks_mut(FRAME_SAMPLES).enumerate() {
            let lost = loss_every.is_some_and(|k| i % k == 3);
            let how = match (lost, packets.get(i + 1)) {
                (false, _) => Decode::Packet(&packets[i]),
                (true, Some(next)) => Decode::Fec(next),
                (true, None) => Decode::Conceal,
            };
            dec.decode(how, frame);
        }
        (input, out, bytes)
    }

    #[test]
    fn speech_round_trips_at_the_configured_bitrate() {
        let (input, out, bytes) = round_trip(None);
        // 28 kbit/s is 70 bytes a frame; VBR wanders around it.
        assert!((40..=110).contains(&bytes), "{bytes} bytes a frame");
        let (lag, c) = best_lag(&input[4800..], &out[4800..], 960);
        assert!(c > 0.9, "correlation {c} at lag {lag}");
    }

    #[test]
    fn fec_covers_a_lost_frame() {
        let (input, out, _) = round_trip(Some(5));
        let (_, c) = best_lag(&input[4800..], &out[4800..], 960);
        assert!(
            c > 0.8,
            "correlation {c} with one frame in five recovered by FEC"
        );
    }

    #[test]
    fn silence_is_not_sent_under_dtx() {
        let mut enc = VoiceEncoder::new(EncoderConfig::default()).unwrap();
        let silence = vec![0.0; FRAME_SAMPLES];
        let sent: Vec<bool> = (0..100)
            .map(|_| enc.encode(&silence).unwrap().is_some())
            .collect();
        // DTX settles within its first frames, then sends one update every 400 ms.
        let late = sent[20..].iter().filter(|&&s| s).count();
        assert!(late <= 5, "{late} of 80 settled silent frames were sent");
    }

    #[test]
    fn garbage_packets_are_concealed() {
        let mut dec = VoiceDecoder::new().unwrap();
        let mut out = vec![1.0; FRAME_SAMPLES];
        dec.decode(Decode::Packet(&[0xff; 3]), &mut out);
        dec.decode(Decode::Packet(&[0u8; 2000]), &mut out);
        assert!(out.iter().all(|s| s.is_finite() && s.abs() <= 1.0));
    }

    #[test]
    fn wrong_frame_length_is_an_error() {
        let mut enc = VoiceEncoder::new(EncoderConfig::default()).unwrap();
        assert!(matches!(
            enc.encode(&[0.0; 10]),
            Err(VoiceError::FrameLength(10))
        ));
    }
}
