//! Synthetic series with known answers for the studies' tests.

/// `n` samples of Gaussian noise with standard deviation `sigma`, the same
/// for the same `seed` (xorshift and Box-Muller: no dependency, no flakes).
pub fn noise(n: usize, sigma: f64, seed: u64) -> Vec<f64> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut uniform = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u, v) = (uniform(), uniform());
            sigma * (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        })
        .collect()
}

/// `n` samples of a sine of `period` samples and `amplitude`.
pub fn sine(n: usize, period: f64, amplitude: f64) -> Vec<f64> {
    (0..n)
        .map(|i| amplitude * (2.0 * std::f64::consts::PI * i as f64 / period).sin())
        .collect()
}
