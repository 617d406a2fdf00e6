//! Writing model files: tensors plus the graph JSON under the `tinycnn` metadata key.

use alloc::borrow::Cow;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

pub use safetensors::Dtype as TensorDtype;
use safetensors::View;

use super::graph::METADATA_KEY;
use crate::error::{Error, Result};

/// One tensor to write.
#[derive(Debug, Clone)]
pub struct TensorData<'a> {
    pub name: String,
    pub dtype: TensorDtype,
    pub shape: Vec<usize>,
    pub data: Cow<'a, [u8]>,
}

impl TensorData<'static> {
    pub fn f32(name: String, shape: Vec<usize>, values: &[f32]) -> Self {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        TensorData { name, dtype: TensorDtype::F32, shape, data: Cow::Owned(data) }
    }

    pub fn i32(name: String, shape: Vec<usize>, values: &[i32]) -> Self {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        TensorData { name, dtype: TensorDtype::I32, shape, data: Cow::Owned(data) }
    }

    pub fn i8(name: String, shape: Vec<usize>, values: &[i8]) -> Self {
        let data = values.iter().map(|&v| v as u8).collect();
        TensorData { name, dtype: TensorDtype::I8, shape, data: Cow::Owned(data) }
    }
}

impl View for &TensorData<'_> {
    fn dtype(&self) -> TensorDtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// A safetensors file holding `tensors` and `graph_json`.
pub fn write_model(graph_json: &str, tensors: &[TensorData<'_>]) -> Result<Vec<u8>> {
    let metadata = Some([(METADATA_KEY.to_string(), graph_json.to_string())].into_iter().collect());
    safetensors::serialize(tensors.iter().map(|t| (t.name.as_str(), t)), metadata)
        .map_err(|e| Error::NotSafetensors(e.to_string()))
}
