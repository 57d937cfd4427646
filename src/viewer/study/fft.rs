//! A radix-2 fast Fourier transform, enough for autocorrelation of a
//! series of up to a few million points (O(n log n) instead of O(n²)).

/// A complex number as (re, im).
pub type Complex = (f64, f64);

/// Transforms `data` in place (length a power of two); `inverse` runs the
/// inverse transform, scaled by 1/n so that inverse(forward(x)) = x.
pub fn fft(data: &mut [Complex], inverse: bool) {
    let n = data.len();
    if n <= 1 {
        return;
    }
    debug_assert!(n.is_power_of_two(), "fft length {n} is not a power of two");
    // Bit-reversal permutation.
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            data.swap(i, j);
        }
    }
    let sign = if inverse { 1.0 } else { -1.0 };
    let mut len = 2;
    while len <= n {
        let angle = sign * 2.0 * std::f64::consts::PI / len as f64;
        let (w_re, w_im) = (angle.cos(), angle.sin());
        for start in (0..n).step_by(len) {
            let (mut cur_re, mut cur_im) = (1.0, 0.0);
            for k in 0..len / 2 {
                let (a_re, a_im) = data[start + k];
                let (b_re, b_im) = data[start + k + len / 2];
                let (t_re, t_im) = (b_re * cur_re - b_im * cur_im, b_re * cur_im + b_im * cur_re);
                data[start + k] = (a_re + t_re, a_im + t_im);
                data[start + k + len / 2] = (a_re - t_re, a_im - t_im);
                (cur_re, cur_im) = (cur_re * w_re - cur_im * w_im, cur_re * w_im + cur_im * w_re);
            }
        }
        len <<= 1;
    }
    if inverse {
        let scale = 1.0 / n as f64;
        for v in data.iter_mut() {
            *v = (v.0 * scale, v.1 * scale);
        }
    }
}

/// Autocorrelation of `x` (mean already removed) for lags `0..x.len()`,
/// normalised so lag 0 is 1: `r[k] = sum(x[i] * x[i+k]) / sum(x[i]²)` (the
/// biased estimate, which weighs long lags down by `1 - k/n`). All zeros for
/// a series without variance.
pub fn autocorrelation(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    if n == 0 {
        return Vec::new();
    }
    let size = (2 * n).next_power_of_two();
    let mut data: Vec<Complex> = x.iter().map(|&v| (v, 0.0)).collect();
    data.resize(size, (0.0, 0.0));
    fft(&mut data, false);
    for v in data.iter_mut() {
        *v = (v.0 * v.0 + v.1 * v.1, 0.0);
    }
    fft(&mut data, true);
    let zero = data[0].0;
    if zero <= 0.0 || !zero.is_finite() {
        return vec![0.0; n];
    }
    data[..n].iter().map(|v| v.0 / zero).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_direct_fourier_transform_and_inverts() {
        let x: Vec<Complex> = (0..16)
            .map(|i| (((i * 37) % 11) as f64 - 5.0, ((i * 13) % 7) as f64))
            .collect();
        let mut y = x.clone();
        fft(&mut y, false);
        for (k, got) in y.iter().enumerate() {
            let mut want = (0.0, 0.0);
            for (i, v) in x.iter().enumerate() {
                let a = -2.0 * std::f64::consts::PI * (i * k) as f64 / 16.0;
                want.0 += v.0 * a.cos() - v.1 * a.sin();
                want.1 += v.0 * a.sin() + v.1 * a.cos();
            }
            assert!(
                (got.0 - want.0).abs() < 1e-9 && (got.1 - want.1).abs() < 1e-9,
                "{k}"
            );
        }
        fft(&mut y, true);
        for (a, b) in x.iter().zip(&y) {
            assert!((a.0 - b.0).abs() < 1e-12 && (a.1 - b.1).abs() < 1e-12);
        }
    }

    #[test]
    fn autocorrelation_matches_the_direct_sum() {
        let x: Vec<f64> = (0..50).map(|i| ((i * 7) % 13) as f64 - 6.0).collect();
        let r = autocorrelation(&x);
        let zero: f64 = x.iter().map(|v| v * v).sum();
        for k in [0, 1, 5, 49] {
            let direct: f64 = (0..50 - k).map(|i| x[i] * x[i + k]).sum::<f64>() / zero;
            assert!(
                (r[k] - direct).abs() < 1e-9,
                "lag {k}: {} vs {direct}",
                r[k]
            );
        }
        assert_eq!(autocorrelation(&[0.0; 8]), vec![0.0; 8]);
    }
}
