//! The WebGPU backend (feature `gpu`): int8 models run as WGSL compute
//! shaders through `wgpu`, bit-identical to the scalar reference kernels
//! (every activation and the logits; `tests/gpu.rs` checks it).
//!
//! A [`GpuEngine`] is built once per model: it uploads the packed weights and
//! per-channel constants, compiles the kernels' pipelines, and then runs
//! batches of images ([`GpuEngine::run_batch`]). GPU buffers are created once
//! per batch size seen and reused; large batches are cut into chunks of at
//! most [`GpuOptions::max_batch`] images (one dispatch per node and chunk).
//!
//! Dot products use WGSL's `dot4I8Packed` when the implementation offers the
//! `packed_4x8_integer_dot_product` language feature, plain i32 arithmetic
//! otherwise ([`DotProduct`] forces either). Logits are dequantised on the
//! CPU from the int8 output, exactly as the integer engine does.
//!
//! No adapter (no GPU driver) is an error, [`GpuError::NoAdapter`], never a
//! panic: callers fall back to the CPU engine. On Linux without a GPU,
//! `mesa-vulkan-drivers` provides lavapipe, a software Vulkan device.
//!
//! Natively the blocking methods (`new_blocking`, `run_batch`, …) drive the
//! futures with `pollster`; in a browser (wasm32, wgpu's `webgpu` backend)
//! only the `async` ones exist.
//!
//! How the kernels see the data (kernels.wgsl, layout.rs): activations are
//! H×W×C int8 with C padded to a multiple of 4, packed 4 per u32; all values
//! of a chunk share one arena buffer laid out by the model's planner; weights
//! are OHWI rows padded the same way, with −in_zp·Σw folded into the bias so
//! that padding taps cost nothing. The 32×32→64-bit products of the
//! requantisation are built from 16-bit limbs (WGSL has no i64).
//!
//! By role: `layout.rs` (host-side preparation, pure Rust), `setup.rs`
//! (adapter, device, pipelines, uploads), `run.rs` (batches), `readback.rs`
//! (mapping a buffer back as a future), `check.rs` (the fixed-point test hook).
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let model = tinycnn::Model::load(std::fs::read("models/deepconvnet-int8.safetensors")?)?;
//! let mut gpu = tinycnn::gpu::GpuEngine::new_blocking(&model)?;
//! let pixels = vec![0u8; 64 * model.input_len()]; // 64 images
//! let logits = gpu.run_batch(&pixels)?; // 64 × 10
//! # Ok(()) }
//! ```

mod check;
mod layout;
mod readback;
mod run;
mod setup;

pub use wgpu;

use std::collections::HashMap;
use std::format;
use std::string::String;
use std::sync::{Arc, Mutex, MutexGuard};
use std::vec::Vec;

use crate::error::Error;
use layout::{Kernel, Prepared};

/// WGSL source of the kernels, without the dot-product prelude the engine prepends.
pub const KERNELS_WGSL: &str = include_str!("kernels.wgsl");

const WORKGROUP: u32 = 64;

/// How the kernels compute 4×int8 dot products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DotProduct {
    /// `dot4I8Packed` if the implementation has it, plain arithmetic otherwise.
    #[default]
    Auto,
    /// `dot4I8Packed` (WGSL `packed_4x8_integer_dot_product`); an error if unavailable.
    Packed,
    /// Plain i32 multiply-adds.
    Plain,
}

/// Options of [`GpuEngine::with_options`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuOptions {
    pub dot_product: DotProduct,
    /// Most images per dispatch; bigger batches run in chunks. Also capped by
    /// the adapter's largest storage binding.
    pub max_batch: usize,
    /// Prefer a low-power or a high-performance adapter.
    pub power_preference: wgpu::PowerPreference,
    /// Backends to try; `None`: every backend of this build, or the
    /// `WGPU_BACKEND` environment variable (e.g. `vulkan`) when set.
    pub backends: Option<wgpu::Backends>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            dot_product: DotProduct::Auto,
            max_batch: 1024,
            power_preference: wgpu::PowerPreference::HighPerformance,
            backends: None,
        }
    }
}

/// What can go wrong on the GPU path.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum GpuError {
    /// No WebGPU / Vulkan / Metal / DX12 adapter: fall back to the CPU engine.
    NoAdapter(String),
    /// The adapter refused to create a device.
    Device(String),
    /// `DotProduct::Packed` was asked for but the implementation lacks it.
    PackedDotUnsupported,
    /// A buffer would exceed the device's limits.
    TooLarge { what: &'static str, bytes: u64, limit: u64 },
    /// A model or input error (wrong dtype, input length, …).
    Model(Error),
    /// An error reported by wgpu (validation, out of memory, lost device, mapping).
    Wgpu(String),
}

impl core::fmt::Display for GpuError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GpuError::NoAdapter(why) => write!(
                f,
                "no GPU adapter found ({why}); install a GPU driver, or `mesa-vulkan-drivers libvulkan1` \
                 (Debian/Ubuntu) for the software Vulkan device lavapipe, or use the CPU engine"
            ),
            GpuError::Device(why) => write!(f, "the GPU adapter refused a device: {why}"),
            GpuError::PackedDotUnsupported => {
                write!(f, "this WebGPU implementation lacks the WGSL packed_4x8_integer_dot_product feature")
            }
            GpuError::TooLarge { what, bytes, limit } => {
                write!(f, "{what} needs {bytes} bytes, over the device limit of {limit}")
            }
            GpuError::Model(e) => write!(f, "{e}"),
            GpuError::Wgpu(why) => write!(f, "wgpu: {why}"),
        }
    }
}

impl std::error::Error for GpuError {}

impl From<Error> for GpuError {
    fn from(e: Error) -> Self {
        GpuError::Model(e)
    }
}

/// For callers that report everything as [`crate::Error`]: model errors come
/// back as they were, GPU errors as `Error::Data("gpu: …")`.
impl From<GpuError> for Error {
    fn from(e: GpuError) -> Self {
        match e {
            GpuError::Model(e) => e,
            other => Error::Data(format!("gpu: {other}")),
        }
    }
}

/// Every int8 activation of a batch, as the CPU engine's observer sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct Activations {
    /// Images in the batch.
    pub images: usize,
    /// `values[v]`: value v (0 = input, i + 1 = node i) of every image, each
    /// H×W×C int8, images one after another; empty for values the engines
    /// do not compute (a softmax output).
    pub values: Vec<Vec<i8>>,
    /// The dequantised logits, `images × output_len`.
    pub logits: Vec<f32>,
}

/// GPU buffers for one batch size (and plan).
struct BatchBuffers {
    arena: wgpu::Buffer,
    readback: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
}

/// An int8 model on the GPU. See the module documentation.
pub struct GpuEngine {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter: wgpu::AdapterInfo,
    packed_dot: bool,
    pipelines: HashMap<Kernel, wgpu::ComputePipeline>,
    bind_layout: wgpu::BindGroupLayout,
    weights: wgpu::Buffer,
    channels: wgpu::Buffer,
    /// Parameter blocks for plan 0 (run) and plan 1 (observe).
    params: [wgpu::Buffer; 2],
    prepared: Prepared,
    input_len: usize,
    output_len: usize,
    max_batch: [usize; 2],
    max_groups: u32,
    cache: HashMap<(usize, usize), BatchBuffers>,
    upload: Vec<u8>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl core::fmt::Debug for GpuEngine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GpuEngine")
            .field("adapter", &self.adapter.name)
            .field("backend", &self.adapter.backend)
            .field("packed_dot", &self.packed_dot)
            .field("max_batch", &self.max_batch[0])
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl GpuEngine {
    /// The adapter the engine runs on (name, backend, driver).
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.adapter
    }

    /// Whether the kernels use `dot4I8Packed` (else plain i32 arithmetic).
    pub fn uses_packed_dot(&self) -> bool {
        self.packed_dot
    }

    /// Pixel bytes per image.
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    /// Logits per image.
    pub fn output_len(&self) -> usize {
        self.output_len
    }

    /// Most images per dispatch (bigger batches are chunked).
    pub fn max_batch(&self) -> usize {
        self.max_batch[0]
    }

    /// Sets of GPU buffers held (one per chunk size and mode seen).
    pub fn cached_buffer_sets(&self) -> usize {
        self.cache.len()
    }

    /// Frees the per-batch-size buffers (weights and pipelines stay); the
    /// next run creates what it needs again.
    pub fn release_buffers(&mut self) {
        self.cache.clear();
    }
}
