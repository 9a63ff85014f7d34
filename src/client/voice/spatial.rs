//! Distance gain and stereo pan: where a peer's voice sits in the listener's ears.
//!
//! Gain is 1 inside `min_distance` and 0 from `range` on, falling between by one of three
//! models (those Vivox offers). The inverse and exponential curves are shifted and rescaled so
//! they reach exactly 0 at `range`: a voice has faded out before mingle drops the link at
//! `leave_range`. Pan is constant-power: left² + right² = gain², so the level a listener hears
//! does not depend on direction.

use bevy::math::Vec3;

/// How gain falls between `min_distance` and `range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Falloff {
    /// Straight line from 1 at `min_distance` to 0 at `range`.
    Linear,
    /// `min / (min + rolloff × (d − min))`, rescaled to reach 0 at `range` (like real speech:
    /// about −6 dB per doubling of distance with rolloff 1).
    #[default]
    Inverse,
    /// `(d / min)^(−rolloff)`, rescaled to reach 0 at `range`.
    Exponential,
}

/// The distance curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpatialConfig {
    /// Full volume up to this distance. Default: 2.0 world units.
    pub min_distance: f32,
    /// Silent from this distance on; keep it at or below the server's `range`. Default: 20.0.
    pub range: f32,
    /// The curve between. Default: [`Falloff::Inverse`].
    pub falloff: Falloff,
    /// Steepness of the inverse and exponential curves. Default: 1.0.
    pub rolloff: f32,
}

impl Default for SpatialConfig {
    fn default() -> Self {
        SpatialConfig {
            min_distance: 2.0,
            range: 20.0,
            falloff: Falloff::Inverse,
            rolloff: 1.0,
        }
    }
}

impl SpatialConfig {
    /// Gain (0..=1) of a voice `distance` away.
    pub fn gain(&self, distance: f32) -> f32 {
        let min = self.min_distance.max(1e-3);
        let range = self.range.max(min + 1e-3);
        if !distance.is_finite() || distance >= range {
            return 0.0;
        }
        if distance <= min {
            return 1.0;
        }
        let raw = |d: f32| match self.falloff {
            Falloff::Linear => 1.0 - (d - min) / (range - min),
            Falloff::Inverse => min / (min + self.rolloff.max(0.0) * (d - min)),
            Falloff::Exponential => (d / min).powf(-self.rolloff.max(0.0)),
        };
        let floor = raw(range);
        if floor >= 1.0 {
            // rolloff 0: flat until range.
            return 1.0;
        }
        ((raw(distance) - floor) / (1.0 - floor)).clamp(0.0, 1.0)
    }

    /// Left and right gains of a voice at `speaker` for a listener at `listener` whose right
    /// hand points along `right` (e.g. `GlobalTransform::right()`).
    pub fn gains(&self, listener: Vec3, right: Vec3, speaker: Vec3) -> (f32, f32) {
        let offset = speaker - listener;
        let gain = self.gain(offset.length());
        let (l, r) = pan(right, offset);
        (gain * l, gain * r)
    }
}

/// Constant-power pan of a sound at `offset` from a listener whose right hand points along
/// `right`: (1/√2, 1/√2) straight ahead, behind or on top, (1, 0) on the left.
pub fn pan(right: Vec3, offset: Vec3) -> (f32, f32) {
    let side = match (right.try_normalize(), offset.try_normalize()) {
        (Some(r), Some(o)) => r.dot(o).clamp(-1.0, 1.0),
        _ => 0.0,
    };
    let angle = (side + 1.0) * std::f32::consts::FRAC_PI_4;
    (angle.cos(), angle.sin())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(falloff: Falloff) -> SpatialConfig {
        SpatialConfig {
            falloff,
            ..SpatialConfig::default()
        }
    }

    #[test]
    fn every_model_is_full_inside_min_and_silent_from_range() {
        for f in [Falloff::Linear, Falloff::Inverse, Falloff::Exponential] {
            let c = config(f);
            assert_eq!(c.gain(0.0), 1.0, "{f:?}");
            assert_eq!(c.gain(2.0), 1.0, "{f:?}");
            assert_eq!(c.gain(20.0), 0.0, "{f:?}");
            assert_eq!(c.gain(30.0), 0.0, "{f:?}");
            assert_eq!(c.gain(f32::NAN), 0.0, "{f:?}");
            let mut last = 1.0;
            for d in 1..200 {
                let g = c.gain(d as f32 * 0.1);
                assert!(g <= last, "{f:?} falls monotonically at {d}");
                last = g;
            }
            assert!(c.gain(19.9) < 0.01, "{f:?} fades out continuously");
        }
    }

    #[test]
    fn models_have_their_shapes() {
        assert!((config(Falloff::Linear).gain(11.0) - 0.5).abs() < 1e-6);
        // Inverse: raw 2/11 = 0.1818, floor 0.1, (0.1818-0.1)/0.9.
        assert!((config(Falloff::Inverse).gain(11.0) - 0.0909).abs() < 1e-3);
        // Exponential with rolloff 1 equals inverse with rolloff 1 (min/d); rolloff 2 is steeper.
        let steep = SpatialConfig {
            rolloff: 2.0,
            ..config(Falloff::Exponential)
        };
        assert!(steep.gain(6.0) < config(Falloff::Exponential).gain(6.0));
    }

    #[test]
    fn pan_is_constant_power_and_follows_facing() {
        let right = Vec3::X;
        let (l, r) = pan(right, Vec3::new(-3.0, 0.0, 0.0));
        assert!((l - 1.0).abs() < 1e-6 && r.abs() < 1e-6, "left: {l} {r}");
        let (l, r) = pan(right, Vec3::new(0.0, 0.0, -5.0));
        assert!((l - r).abs() < 1e-6, "ahead is centred");
        for x in -10..=10 {
            let (l, r) = pan(right, Vec3::new(x as f32, 0.0, 1.0));
            assert!((l * l + r * r - 1.0).abs() < 1e-5);
        }
        // Turn the listener around: the same speaker is now on the right.
        let (l, r) = pan(-right, Vec3::new(-3.0, 0.0, 0.0));
        assert!(r > 0.99 && l < 0.01);
    }

    #[test]
    fn gains_combine_distance_and_pan() {
        let c = config(Falloff::Linear);
        let (l, r) = c.gains(Vec3::ZERO, Vec3::X, Vec3::new(-11.0, 0.0, 0.0));
        assert!((l - 0.5).abs() < 1e-5 && r.abs() < 1e-5);
        let (l, r) = c.gains(Vec3::ZERO, Vec3::X, Vec3::ZERO);
        assert!((l * l + r * r - 1.0).abs() < 1e-5, "on top of the listener");
    }
}
