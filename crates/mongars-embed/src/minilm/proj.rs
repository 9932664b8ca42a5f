//! The encoder's dense projections in one of four precisions: f32 or
//! half-precision weights packed for the block kernel (see
//! [`super::kernel`]), or in 8-bit blocks of 16 in the same panels, against
//! f32 activations; or weights and activations both in bfloat16. The half-precision
//! form's vectors stay within 0.99999 cosine of the f32 ones, the 8-bit
//! form's within 0.999 (checked by the tests on a fixed sentence set).

use super::kernel::{BLOCK, Packed};
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

/// How the projections' weights are held and multiplied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// 32-bit floats, as published.
    F32,
    /// Weights rounded to half precision (16-bit floats); activations and
    /// sums in f32. Vectors within 0.99999 cosine of f32's, and faster
    /// where a product is mostly reading weights (a short sentence).
    #[default]
    F16,
    /// 8-bit blocks for the weights; biases and activations in f32.
    Int8,
    /// Weights and the projections' activations rounded to bfloat16, their
    /// products summed in f32: twice the multiply-adds per instruction on
    /// processors with AVX-512 BF16, the same vectors (slowly) elsewhere.
    Bf16,
}

impl Precision {
    /// The fastest precision that keeps vectors within 0.9999 cosine of
    /// f32's on this processor: bfloat16 where it has AVX-512 BF16, else
    /// half precision.
    pub fn fastest() -> Self {
        if super::kernel::bfloat16_kernel() {
            Self::Bf16
        } else {
            Self::F16
        }
    }
}

/// A dense layer `x W^T + b` in the chosen precision.
pub struct Proj {
    weights: Packed,
    bias: Vec<f32>,
}

impl Proj {
    /// One layer whose `[out, in]` weight and bias are under `vb`.
    pub fn load(input: usize, output: usize, vb: VarBuilder, precision: Precision) -> Result<Self> {
        Self::stacked(input, &[(output, vb)], precision)
    }

    /// Several layers over the same input stacked into one, their outputs
    /// side by side in the order given (the query, key and value
    /// projections become one product).
    pub fn stacked(
        input: usize,
        parts: &[(usize, VarBuilder)],
        precision: Precision,
    ) -> Result<Self> {
        let mut w = Vec::new();
        let mut bias = Vec::new();
        for (output, vb) in parts {
            let weight: Tensor = vb.get((*output, input), "weight")?;
            w.extend(weight.flatten_all()?.to_vec1::<f32>()?);
            bias.extend(vb.get(*output, "bias")?.to_vec1::<f32>()?);
        }
        let out = bias.len();
        let weights = match precision {
            Precision::Int8 if input.is_multiple_of(BLOCK) => Packed::pack_int8(&w, out, input),
            Precision::F16 => Packed::pack_half(&w, out, input),
            Precision::Bf16 => Packed::pack_bf16(&w, out, input),
            // A width the block size does not divide stays exact.
            _ => Packed::pack(&w, out, input),
        };
        Ok(Self { weights, bias })
    }

    /// Output width.
    fn out(&self) -> usize {
        self.bias.len()
    }

    /// `x W^T + b` for `m` rows.
    #[cfg(test)]
    fn forward(&self, x: &[f32], m: usize) -> Vec<f32> {
        let mut dst = Vec::new();
        self.forward_into(x, m, &mut dst);
        dst
    }

    /// `x W^T + b` for `m` rows, into `dst` (resized to `[m, out]`; its
    /// allocation is reused when large enough).
    pub fn forward_into(&self, x: &[f32], m: usize, dst: &mut Vec<f32>) {
        dst.clear();
        dst.resize(m * self.out(), 0.0);
        self.weights.forward_into(x, m, &self.bias, dst);
    }

    #[cfg(test)]
    fn is_int8(&self) -> bool {
        self.weights.is_int8()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use std::collections::HashMap;

    fn layer(input: usize, output: usize, precision: Precision) -> (Proj, Tensor, Tensor) {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 0.05, (output, input), &dev).unwrap();
        let b = Tensor::randn(0f32, 0.05, output, &dev).unwrap();
        let tensors = HashMap::from([
            ("weight".to_string(), w.clone()),
            ("bias".into(), b.clone()),
        ]);
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &dev);
        (Proj::load(input, output, vb, precision).unwrap(), w, b)
    }

    fn exact(x: &Tensor, w: &Tensor, b: &Tensor) -> Vec<f32> {
        x.matmul(&w.t().unwrap())
            .unwrap()
            .broadcast_add(b)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    fn cosine(e: &[f32], g: &[f32]) -> f32 {
        let dot: f32 = e.iter().zip(g).map(|(a, b)| a * b).sum();
        let norm = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>().sqrt();
        dot / (norm(e) * norm(g))
    }

    #[test]
    fn eight_bit_products_stay_close_to_the_exact_ones() {
        let (q, w, b) = layer(384, 96, Precision::Int8);
        assert!(q.is_int8());
        let x = Tensor::randn(0f32, 1.0, (10, 384), &Device::Cpu).unwrap();
        let e = exact(&x, &w, &b);
        let g = q.forward(&x.flatten_all().unwrap().to_vec1().unwrap(), 10);
        assert_eq!(g.len(), e.len());
        assert!(cosine(&e, &g) > 0.9999, "cosine {}", cosine(&e, &g));
        assert!(e != g, "the 8-bit path must not be the exact one");
    }

    #[test]
    fn f32_products_match_candle_s() {
        let (p, w, b) = layer(384, 96, Precision::F32);
        assert!(!p.is_int8());
        let x = Tensor::randn(0f32, 1.0, (7, 384), &Device::Cpu).unwrap();
        let e = exact(&x, &w, &b);
        let g = p.forward(&x.flatten_all().unwrap().to_vec1().unwrap(), 7);
        for (u, v) in e.iter().zip(&g) {
            assert!((u - v).abs() < 1e-4, "{u} vs {v}");
        }
    }

    #[test]
    fn widths_the_block_does_not_divide_stay_exact() {
        let (q, _, _) = layer(40, 8, Precision::Int8);
        assert!(!q.is_int8());
        assert_eq!(q.out(), 8);
    }
}
