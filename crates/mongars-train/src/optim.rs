//! AdamW with decoupled weight decay, its moments kept where a checkpoint
//! can read and restore them (candle's optimiser keeps them private), and
//! the learning-rate schedule: linear warm-up, then a cosine down to a
//! tenth of the peak.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

/// The optimiser's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamWOptions {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWOptions {
    fn default() -> Self {
        Self {
            lr: 2e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// AdamW over a fixed list of variables.
pub struct AdamW {
    pub options: AdamWOptions,
    vars: Vec<Var>,
    /// First and second moments, one pair per variable.
    pub moments: Vec<(Tensor, Tensor)>,
    /// Updates done.
    pub t: u64,
}

impl AdamW {
    pub fn new(vars: Vec<Var>, options: AdamWOptions) -> crate::Result<Self> {
        let moments = vars
            .iter()
            .map(|v| Ok((v.zeros_like()?, v.zeros_like()?)))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            options,
            vars,
            moments,
            t: 0,
        })
    }

    /// One update at learning rate `lr` from `grads` (variables without a
    /// gradient are left alone).
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> crate::Result<()> {
        self.t += 1;
        let o = &self.options;
        let t = self.t as i32;
        let (c1, c2) = (1.0 - o.beta1.powi(t), 1.0 - o.beta2.powi(t));
        for (var, (m, v)) in self.vars.iter().zip(self.moments.iter_mut()) {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            *m = ((&*m * o.beta1)? + (g * (1.0 - o.beta1))?)?;
            *v = ((&*v * o.beta2)? + (g.sqr()? * (1.0 - o.beta2))?)?;
            let update = ((&*m / c1)? / ((&*v / c2)?.sqrt()? + o.eps)?)?;
            let decayed = (var.as_tensor() * (1.0 - lr * o.weight_decay))?;
            var.set(&(decayed - (update * lr)?)?)?;
        }
        Ok(())
    }
}

/// The learning rate at `step` (0-based) of `total`: linear warm-up over
/// `warmup` steps to `peak`, then a cosine down to `peak / 10`.
pub fn learning_rate(step: usize, total: usize, warmup: usize, peak: f64) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let done = ((step - warmup) as f64 / span).min(1.0);
    let floor = peak / 10.0;
    floor + (peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * done).cos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn the_schedule_warms_up_then_decays_to_a_tenth() {
        assert!((learning_rate(0, 100, 10, 1.0) - 0.1).abs() < 1e-12);
        assert!((learning_rate(9, 100, 10, 1.0) - 1.0).abs() < 1e-12);
        assert!((learning_rate(10, 100, 10, 1.0) - 1.0).abs() < 1e-12);
        assert!((learning_rate(100, 100, 10, 1.0) - 0.1).abs() < 1e-12);
        let mid = learning_rate(55, 100, 10, 1.0);
        assert!((mid - 0.55).abs() < 1e-9, "{mid}");
    }

    #[test]
    fn adamw_minimises_a_quadratic() {
        let x = Var::from_tensor(&Tensor::new(&[3f32, -2.0], &Device::Cpu).unwrap()).unwrap();
        let mut opt = AdamW::new(
            vec![x.clone()],
            AdamWOptions {
                lr: 0.1,
                weight_decay: 0.0,
                ..Default::default()
            },
        )
        .unwrap();
        for _ in 0..300 {
            let loss = x.as_tensor().sqr().unwrap().sum_all().unwrap();
            opt.step(&loss.backward().unwrap(), 0.1).unwrap();
        }
        let v = x.as_tensor().to_vec1::<f32>().unwrap();
        assert!(v.iter().all(|a| a.abs() < 0.05), "{v:?}");
    }
}
