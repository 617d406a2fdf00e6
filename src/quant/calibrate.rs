//! Calibration: the range of every activation of a float model over sample inputs.

use alloc::vec::Vec;

use crate::engine::Model;
use crate::error::{Error, Result};
use crate::model::graph::Dtype;

/// Running min/max of every value (0 = input, i + 1 = node i).
#[derive(Debug, Clone, PartialEq)]
pub struct Ranges {
    pub min: Vec<f32>,
    pub max: Vec<f32>,
    pub samples: usize,
}

impl Ranges {
    pub fn new(values: usize) -> Ranges {
        Ranges { min: alloc::vec![f32::INFINITY; values], max: alloc::vec![f32::NEG_INFINITY; values], samples: 0 }
    }

    fn observe(&mut self, value: usize, data: &[f32]) {
        for &x in data {
            self.min[value] = self.min[value].min(x);
            self.max[value] = self.max[value].max(x);
        }
    }
}

/// Runs the float model on each image and records every activation's range.
pub fn calibrate<'a, B: AsRef<[u8]>>(model: &Model<B>, images: impl IntoIterator<Item = &'a [u8]>) -> Result<Ranges> {
    if model.dtype() != Dtype::Float {
        return Err(Error::WrongDtype { expected: "float" });
    }
    let mut ranges = Ranges::new(model.graph().nodes.len() + 1);
    let mut arena = alloc::vec![0u8; model.arena_bytes()];
    let mut logits = alloc::vec![0f32; model.output_len()];
    for image in images {
        model.run_float_observed(&mut arena, image, &mut logits, &mut |v, data| ranges.observe(v, data))?;
        ranges.samples += 1;
    }
    if ranges.samples == 0 {
        return Err(Error::Data("calibration needs at least one image".into()));
    }
    Ok(ranges)
}
