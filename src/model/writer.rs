//! Writing model files: tensors plus the graph JSON under the `tinycnn` metadata key.

use alloc::borrow::Cow;
use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

pub use safetensors::Dtype as TensorDtype;
use safetensors::View;

use super::graph::METADATA_KEY;
use super::params::{NodeParams, REQUANT_MULTIPLIER, REQUANT_SHIFT};
use super::Network;
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

/// Every tensor of a safetensors file, borrowed, to be written again.
pub fn tensors_of<'a>(file: &safetensors::SafeTensors<'a>) -> Vec<TensorData<'a>> {
    file.tensors()
        .into_iter()
        .map(|(name, view)| TensorData {
            name,
            dtype: view.dtype(),
            shape: view.shape().to_vec(),
            data: Cow::Borrowed(view.data()),
        })
        .collect()
}

/// A safetensors file holding `tensors` and `graph_json`.
pub fn write_model(graph_json: &str, tensors: &[TensorData<'_>]) -> Result<Vec<u8>> {
    let metadata = Some([(METADATA_KEY.to_string(), graph_json.to_string())].into_iter().collect());
    safetensors::serialize(tensors.iter().map(|t| (t.name.as_str(), t)), metadata)
        .map_err(|e| Error::NotSafetensors(e.to_string()))
}

/// The int8 model file `bytes` with each per-channel quantised conv and dense
/// layer's requantisation multipliers stored beside its scales
/// (`requant_multiplier`, `requant_shift`: FORMAT.md), so that a heap-free
/// load reads them in place rather than computing 5 bytes per output channel
/// into the caller's memory. They are what the scales give (every load checks
/// that); every other tensor and the metadata are kept as they are. A float
/// file gains nothing.
pub fn store_requant_multipliers(bytes: &[u8]) -> Result<Vec<u8>> {
    let network = Network::load(bytes)?;
    let not_safetensors = |e: safetensors::SafeTensorError| Error::NotSafetensors(e.to_string());
    let file = safetensors::SafeTensors::deserialize(bytes).map_err(not_safetensors)?;
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes).map_err(not_safetensors)?;
    let mut tensors: Vec<TensorData<'_>> = Vec::new();
    for (node, params) in network.graph().nodes.iter().zip(network.params()) {
        let channels = match params {
            NodeParams::Int8Conv { channels, .. } | NodeParams::Int8Dense { channels, .. } => channels,
            _ => continue,
        };
        // A per-tensor quantised layer's one multiplier costs the state 5 bytes: not
        // worth two more entries in the load's tensor index.
        if channels.windows(2).all(|w| w[0].multiplier == w[1].multiplier) {
            continue;
        }
        let mantissas: Vec<i32> = channels.iter().map(|c| c.multiplier.mantissa).collect();
        // Within −31..=30 (Multiplier::from_real): a signed byte.
        let shifts: Vec<i8> = channels.iter().map(|c| c.multiplier.shift as i8).collect();
        let name = |param: &str| format!("{}.{param}", node.name);
        tensors.push(TensorData::i32(name(REQUANT_MULTIPLIER), vec![channels.len()], &mantissas));
        tensors.push(TensorData::i8(name(REQUANT_SHIFT), vec![channels.len()], &shifts));
    }
    // Those the file already stores are replaced (the same values: the load checked them).
    let replaced: BTreeSet<String> = tensors.iter().map(|t| t.name.clone()).collect();
    tensors.extend(tensors_of(&file).into_iter().filter(|t| !replaced.contains(&t.name)));
    let out = safetensors::serialize(tensors.iter().map(|t| (t.name.as_str(), t)), header.metadata().clone())
        .map_err(not_safetensors)?;
    Network::load(out.as_slice())?; // what was written loads, its multipliers checked
    Ok(out)
}
