//! Trends of a bench's per-minute figures: the least-squares slope, its
//! standard error and a 95 % interval, so that "no upward trend" is a
//! statement the figures can make rather than an impression.

/// A least-squares line through the rows after warm-up.
pub struct Trend {
    /// Slope per unit of x.
    pub slope: f64,
    /// Mean of y.
    pub mean: f64,
    /// Standard error of the slope.
    pub error: f64,
    /// Two-sided 95 % quantile of Student's t for the rows' degrees of
    /// freedom (the normal's 1.96 with Cornish-Fisher's first two
    /// corrections: within 4 % at 3 degrees, 0.1 % from 20).
    pub t95: f64,
}

impl Trend {
    /// Whether the 95 % interval of the slope holds zero.
    pub fn holds_zero(&self) -> bool {
        (self.slope.abs()) <= self.t95 * self.error
    }

    /// "+12.3 KiB per minute (95 % -4.0 .. +28.6)" with `scale` per unit of x.
    pub fn describe(&self, scale: f64, unit: &str) -> String {
        let half = self.t95 * self.error * scale;
        let s = self.slope * scale;
        format!(
            "{s:+.3} {unit} per minute (95 % {:+.3} .. {:+.3})",
            s - half,
            s + half
        )
    }
}

/// Least-squares trend of `points`: slope, mean, and the slope's error.
pub fn slope(points: impl Iterator<Item = (f64, f64)>) -> Trend {
    let points: Vec<(f64, f64)> = points.collect();
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let df = n - 2.0;
    let residual: f64 = points
        .iter()
        .map(|p| (p.1 - my - b * (p.0 - mx)).powi(2))
        .sum();
    let error = if df > 0.0 && sxx > 0.0 {
        (residual / df / sxx).sqrt()
    } else {
        f64::INFINITY
    };
    let z: f64 = 1.959_964;
    let t95 = if df > 0.0 {
        z + (z.powi(3) + z) / (4.0 * df)
            + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * df * df)
    } else {
        f64::INFINITY
    };
    Trend {
        slope: b,
        mean: my,
        error,
        t95,
    }
}

#[cfg(test)]
mod tests {
    use super::slope;

    /// A fixed wobble of +-3 around the line, no trend of its own.
    fn wobble(i: usize) -> f64 {
        [3.0, -3.0, 1.0, -1.0, 2.0, -2.0][i % 6]
    }

    #[test]
    fn a_flat_series_with_noise_holds_zero() {
        let t = slope((0..24).map(|i| (i as f64, 100.0 + wobble(i))));
        assert!(t.slope.abs() < 0.2, "{}", t.slope);
        assert!(t.holds_zero());
        assert!((t.mean - 100.0).abs() < 0.5);
    }

    #[test]
    fn a_steady_rise_through_the_noise_does_not() {
        let t = slope((0..24).map(|i| (i as f64, 100.0 + 0.8 * i as f64 + wobble(i))));
        assert!((t.slope - 0.8).abs() < 0.1, "{}", t.slope);
        assert!(!t.holds_zero());
        let text = t.describe(60.0, "KiB");
        let low = 60.0 * (t.slope - t.t95 * t.error);
        assert!(
            text.starts_with(&format!(
                "{:+.3} KiB per minute (95 % {low:+.3} ..",
                60.0 * t.slope
            )),
            "{text}"
        );
        assert!(low > 0.0, "{text}");
    }

    #[test]
    fn the_quantile_follows_the_degrees_of_freedom() {
        let few = slope((0..5).map(|i| (i as f64, wobble(i))));
        let many = slope((0..200).map(|i| (i as f64, wobble(i))));
        // Student's t at 3 and 198 degrees of freedom: 3.18 and 1.97.
        assert!((few.t95 - 3.18).abs() < 0.15, "{}", few.t95);
        assert!((many.t95 - 1.97).abs() < 0.01, "{}", many.t95);
    }
}
