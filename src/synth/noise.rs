//! Seeded noise, so a scenario always gives the same fixture (splitmix64:
//! small, fast, and good enough for jitter).

#[derive(Debug, Clone)]
pub struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Noise {
        Noise(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-12);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// A count with mean `mean`: Poisson-like spread, never negative.
    pub fn count(&mut self, mean: f64) -> f64 {
        if mean <= 0.0 {
            return 0.0;
        }
        if mean < 20.0 {
            // Knuth's method: exact for the small counts where it matters
            // (a quiet pod's errors).
            let limit = (-mean).exp();
            let (mut k, mut prod) = (0.0, self.uniform());
            while prod > limit {
                k += 1.0;
                prod *= self.uniform();
            }
            return k;
        }
        (mean + mean.sqrt() * self.normal()).round().max(0.0)
    }

    /// Lowercase letters and digits, as Kubernetes names its pods.
    pub fn token(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..len)
            .map(|_| CHARS[(self.next_u64() % CHARS.len() as u64) as usize] as char)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_noise() {
        let (mut a, mut b) = (Noise::new(7), Noise::new(7));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Noise::new(7).next_u64(), Noise::new(8).next_u64());
    }

    #[test]
    fn counts_and_normals_have_the_asked_for_mean() {
        let mut n = Noise::new(1);
        let mean = |f: &mut dyn FnMut() -> f64| (0..20_000).map(|_| f()).sum::<f64>() / 20_000.0;
        assert!((mean(&mut || n.count(3.0)) - 3.0).abs() < 0.1);
        assert!((mean(&mut || n.count(500.0)) - 500.0).abs() < 1.0);
        assert!(mean(&mut || n.normal()).abs() < 0.05);
    }
}
