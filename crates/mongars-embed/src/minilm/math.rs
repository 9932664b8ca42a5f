//! The encoder's element-wise steps on plain rows: layer normalisation,
//! GELU (the exact, erf-based form BERT was trained with), a numerically
//! stable softmax, and mean pooling to a unit vector.

/// Normalise each `gamma.len()`-wide row of `x` in place, then scale and
/// shift it.
pub fn layer_norm(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let width = gamma.len();
    for row in x.chunks_exact_mut(width) {
        let mean = row.iter().sum::<f32>() / width as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / width as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

/// `x * Φ(x)` in place, with Φ the standard normal distribution function.
pub fn gelu(x: &mut [f32]) {
    for v in x {
        *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// The error function to within a few units in the last place of an f32: a
/// rational function of odd and even polynomials on [-4, 4], outside which
/// erf is ±1 in single precision. Branch-free, so that slices of it
/// vectorise.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let z = x * x;
    let p = -2.726_142_3e-10_f32;
    let p = p * z + 2.770_681_4e-8;
    let p = p * z - 2.101_024e-6;
    let p = p * z - 5.692_506_4e-5;
    let p = p * z - 7.349_906_3e-4;
    let p = p * z - 2.954_6e-3;
    let p = p * z - 1.609_603_3e-2;
    let q = -1.456_607_2e-5_f32;
    let q = q * z - 2.133_740_6e-4;
    let q = q * z - 1.682_827e-3;
    let q = q * z - 7.373_329e-3;
    let q = q * z - 1.426_473_9e-2;
    x * p / q
}

/// Softmax of `row` in place.
pub fn softmax(row: &mut [f32]) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v));
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// The mean of `rows` (each `width` wide), scaled to unit length.
pub fn mean_unit(rows: &[f32], width: usize) -> Vec<f32> {
    let n = (rows.len() / width).max(1);
    let mut mean = vec![0f32; width];
    for row in rows.chunks_exact(width) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    for m in &mut mean {
        *m /= n as f32;
    }
    let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    for m in &mut mean {
        *m /= norm;
    }
    mean
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::cpu::erf::erf_f64;

    #[test]
    fn erf_is_within_a_few_ulp_of_the_reference() {
        let mut worst = 0f64;
        for i in -80_000..=80_000 {
            let x = i as f32 / 10_000.0;
            let err = (erf(x) as f64 - erf_f64(x as f64)).abs();
            worst = worst.max(err);
        }
        assert!(worst < 1e-6, "largest error {worst}");
        assert_eq!(erf(0.0), 0.0);
        assert!((erf(9.0) - 1.0).abs() < 1e-6 && (erf(-9.0) + 1.0).abs() < 1e-6);
    }

    #[test]
    fn gelu_matches_its_definition() {
        let mut xs = vec![-3.0f32, -1.0, -0.1, 0.0, 0.5, 2.0, 6.0];
        let want: Vec<f64> = xs
            .iter()
            .map(|&x| 0.5 * x as f64 * (1.0 + erf_f64(x as f64 / 2f64.sqrt())))
            .collect();
        gelu(&mut xs);
        for (g, w) in xs.iter().zip(want) {
            assert!((*g as f64 - w).abs() < 1e-6, "{g} vs {w}");
        }
    }

    #[test]
    fn layer_norm_gives_zero_mean_and_unit_variance_before_the_affine_part() {
        let mut x = vec![1.0f32, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 10.0];
        layer_norm(&mut x, &[1.0; 4], &[0.0; 4], 1e-12);
        let first = &x[..4];
        assert!(first.iter().sum::<f32>().abs() < 1e-5);
        let var = first.iter().map(|v| v * v).sum::<f32>() / 4.0;
        assert!((var - 1.0).abs() < 1e-4);
        assert!(
            x[4..].iter().all(|v| *v == 0.0),
            "a constant row is all zero"
        );
    }

    #[test]
    fn softmax_sums_to_one_and_survives_large_scores() {
        let mut row = vec![1000.0f32, 1001.0, -1e9];
        softmax(&mut row);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(row[1] > row[0] && row[2] == 0.0);
    }

    #[test]
    fn pooling_gives_a_unit_vector_of_the_mean() {
        let v = mean_unit(&[3.0, 0.0, 1.0, 0.0], 2);
        assert!((v[0] - 1.0).abs() < 1e-6 && v[1] == 0.0);
    }
}
