//! Mixes every peer's mono frame into one stereo frame without clipping.
//!
//! Each peer is added with its left and right gain; the sum then passes a peak limiter: when
//! a frame would exceed [`LIMIT`], the whole frame is scaled down at once (no sample clips),
//! and the gain recovers by +0.8 dB a frame, so quiet frames after a loud one
//! do not pump.

use super::codec::FRAME_SAMPLES;

/// Largest absolute sample value the mixer outputs.
pub const LIMIT: f32 = 0.98;

/// Interleaved stereo mixer for one 20 ms frame.
#[derive(Debug, Clone)]
pub struct Mixer {
    frame: Vec<f32>,
    gain: f32,
}

impl Default for Mixer {
    fn default() -> Self {
        Mixer {
            frame: vec![0.0; FRAME_SAMPLES * 2],
            gain: 1.0,
        }
    }
}

impl Mixer {
    /// Starts a new frame of silence.
    pub fn clear(&mut self) {
        self.frame.fill(0.0);
    }

    /// Adds a mono frame ([`FRAME_SAMPLES`] long) at `left` and `right` gain.
    pub fn add(&mut self, mono: &[f32], left: f32, right: f32) {
        for (out, &s) in self.frame.chunks_exact_mut(2).zip(mono) {
            out[0] += s * left;
            out[1] += s * right;
        }
    }

    /// Limits the sum and returns it: [`FRAME_SAMPLES`] × 2 interleaved samples (left first).
    pub fn finish(&mut self) -> &[f32] {
        let peak = self.frame.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        // Recover towards unity: ×1.1 a frame is +0.8 dB per 20 ms.
        let mut gain = (self.gain * 1.1).min(1.0);
        if peak * gain > LIMIT {
            gain = LIMIT / peak;
        }
        self.gain = gain;
        if gain < 1.0 {
            for s in &mut self.frame {
                *s *= gain;
            }
        }
        &self.frame
    }

    /// The limiter's current gain (1.0 when idle).
    pub fn limiter_gain(&self) -> f32 {
        self.gain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_add_into_their_channels() {
        let mut m = Mixer::default();
        m.clear();
        m.add(&[0.1; FRAME_SAMPLES], 1.0, 0.0);
        m.add(&[0.2; FRAME_SAMPLES], 0.5, 0.5);
        let out = m.finish();
        assert!((out[0] - 0.2).abs() < 1e-6 && (out[1] - 0.1).abs() < 1e-6);
        assert_eq!(out.len(), FRAME_SAMPLES * 2);
        assert_eq!(m.limiter_gain(), 1.0);
    }

    #[test]
    fn sixteen_loud_peers_never_clip_and_the_limiter_recovers() {
        let mut m = Mixer::default();
        let loud: Vec<f32> = (0..FRAME_SAMPLES)
            .map(|i| (i as f32 * 0.05).sin() * 0.9)
            .collect();
        m.clear();
        for _ in 0..16 {
            m.add(&loud, 1.0, 1.0);
        }
        let peak = m.finish().iter().fold(0.0f32, |a, s| a.max(s.abs()));
        assert!(peak <= LIMIT + 1e-6, "peak {peak}");
        assert!(peak > 0.9, "the limiter scales, it does not mute");
        for _ in 0..40 {
            m.clear();
            m.add(&[0.01; FRAME_SAMPLES], 1.0, 1.0);
            m.finish();
        }
        assert_eq!(m.limiter_gain(), 1.0, "back to unity once quiet");
    }

    #[test]
    fn clear_starts_a_silent_frame() {
        let mut m = Mixer::default();
        m.add(&[0.5; FRAME_SAMPLES], 1.0, 1.0);
        m.clear();
        assert!(m.finish().iter().all(|&s| s == 0.0));
    }
}
