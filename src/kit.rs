//! Small helpers the server, the load generator, the tests and the benches each wrote again:
//! pair ordering, squared distance, a seeded random number generator and world sizing.

use crate::protocol::PeerId;

/// The pair `(a, b)` with the smaller id first: one key per unordered pair.
#[inline]
pub fn ordered(a: PeerId, b: PeerId) -> (PeerId, PeerId) {
    if a < b { (a, b) } else { (b, a) }
}

/// Squared Euclidean distance: what every range comparison uses (no square root).
#[inline]
pub fn dist_sq(a: [f32; 3], b: [f32; 3]) -> f32 {
    let (dx, dy, dz) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    dx * dx + dy * dy + dz * dz
}

/// Side of a square world in which `clients` spread uniformly have about `neighbours` others
/// within `range` of each (`clients / side²` = `neighbours / (π range²)`).
pub fn world_side(clients: usize, neighbours: f64, range: f32) -> f32 {
    let density = neighbours / (std::f64::consts::PI * f64::from(range).powi(2));
    (clients as f64 / density).sqrt() as f32
}

/// SplitMix64: seeded, tiny, and good enough to scatter and walk clients reproducibly.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `[-1, 1)`.
    pub fn signed(&mut self) -> f32 {
        self.unit() * 2.0 - 1.0
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_agree_with_their_definitions() {
        assert_eq!(ordered(PeerId(9), PeerId(2)), (PeerId(2), PeerId(9)));
        assert_eq!(dist_sq([1.0, 2.0, 3.0], [4.0, 6.0, 3.0]), 25.0);
        // 5 neighbours within 20 units: 251.3 square units per client.
        let side = world_side(10_000, 5.0, 20.0);
        assert!((side * side / 10_000.0 - 251.3).abs() < 0.1, "{side}");
        let mut rng = SplitMix64::new(1);
        let draws: Vec<f32> = (0..1000).map(|_| rng.unit()).collect();
        assert!(draws.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = draws.iter().sum::<f32>() / 1000.0;
        assert!((mean - 0.5).abs() < 0.05, "{mean}");
    }
}
