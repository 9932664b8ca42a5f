//! The encoder's dense projections in one of two precisions: plain f32, or
//! weights in 8-bit blocks of 32 (see [`super::int8`]) against f32
//! activations. The 8-bit form's vectors stay within 0.999 cosine of the f32
//! ones (checked by the tests on a fixed sentence set).

use super::int8::{BLOCK, Int8Matrix};
use candle_core::{Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

/// How the projections' weights are held and multiplied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// 32-bit floats, as published.
    #[default]
    F32,
    /// 8-bit blocks for the weights; biases and activations in f32.
    Int8,
}

/// A dense layer `x W^T + b` in the chosen precision.
pub enum Proj {
    F32(Linear),
    Int8 { weight: Int8Matrix, bias: Vec<f32> },
}

impl Proj {
    pub fn load(input: usize, output: usize, vb: VarBuilder, precision: Precision) -> Result<Self> {
        let weight = vb.get((output, input), "weight")?;
        let bias = vb.get(output, "bias")?;
        Ok(match precision {
            Precision::F32 => Self::F32(Linear::new(weight, Some(bias))),
            Precision::Int8 if input.is_multiple_of(BLOCK) => Self::Int8 {
                weight: Int8Matrix::quantize(&weight.flatten_all()?.to_vec1()?, output, input),
                bias: bias.to_vec1()?,
            },
            // A width the block size does not divide stays exact.
            Precision::Int8 => Self::F32(Linear::new(weight, Some(bias))),
        })
    }
}

impl Module for Proj {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::F32(l) => l.forward(x),
            Self::Int8 { weight, bias } => {
                let mut dims = x.dims().to_vec();
                let inp = dims.pop().unwrap_or(0);
                let m = x.elem_count() / inp.max(1);
                let rows = x.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
                dims.push(weight.out());
                Tensor::from_vec(weight.forward(&rows, m, bias), dims, x.device())
            }
        }
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

    #[test]
    fn eight_bit_products_stay_close_to_the_exact_ones() {
        let (q, w, b) = layer(384, 96, Precision::Int8);
        assert!(matches!(q, Proj::Int8 { .. }));
        let x = Tensor::randn(0f32, 1.0, (2, 5, 384), &Device::Cpu).unwrap();
        let exact = x
            .broadcast_matmul(&w.t().unwrap())
            .unwrap()
            .broadcast_add(&b)
            .unwrap();
        let got = q.forward(&x).unwrap();
        assert_eq!(got.dims(), exact.dims());
        let (e, g) = (
            exact.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            got.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        let dot: f32 = e.iter().zip(&g).map(|(a, b)| a * b).sum();
        let norm = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>().sqrt();
        let cosine = dot / (norm(&e) * norm(&g));
        assert!(cosine > 0.9999, "cosine {cosine}");
        assert!(e != g, "the 8-bit path must not be the exact one");
    }

    #[test]
    fn widths_the_block_does_not_divide_stay_exact() {
        let (q, _, _) = layer(40, 8, Precision::Int8);
        assert!(matches!(q, Proj::F32(_)));
        let (f, _, _) = layer(64, 8, Precision::F32);
        assert!(matches!(f, Proj::F32(_)));
    }
}
