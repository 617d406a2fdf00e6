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
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let model = tinycnn::Model::load(std::fs::read("models/deepconvnet-int8.safetensors")?)?;
//! let mut gpu = tinycnn::gpu::GpuEngine::new_blocking(&model)?;
//! let pixels = vec![0u8; 64 * model.input_len()]; // 64 images
//! let logits = gpu.run_batch(&pixels)?; // 64 × 10
//! # Ok(()) }
//! ```

mod layout;

/// The wgpu this backend is built on (for `GpuOptions` and `AdapterInfo`).
pub use wgpu;

use std::borrow::Cow;
use std::collections::HashMap;
use std::format;
use std::future::Future;
use std::pin::Pin;
use std::string::{String, ToString};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::vec::Vec;

use wgpu::util::DeviceExt;

use crate::error::Error;
use crate::model::Network;
use crate::spec::fixed_point::dequantize_channels_last;
use layout::{pack_pixels, prepare, unpack_value, Kernel, Prepared, PARAM_INTS, PARAM_STRIDE};

/// WGSL source of the kernels, without the dot-product prelude the engine prepends.
pub const KERNELS_WGSL: &str = include_str!("kernels.wgsl");

/// Dot products with WGSL's `dot4I8Packed` (language feature packed_4x8_integer_dot_product).
const DOT4_PACKED: &str = "requires packed_4x8_integer_dot_product;
alias Operand = u32;
fn operand(word: u32) -> u32 {
    return word;
}
fn dot4(a: u32, b: u32) -> i32 {
    return dot4I8Packed(a, b);
}
";
/// Dot products in plain i32 arithmetic: words unpacked once, then dot().
const DOT4_PLAIN: &str = "alias Operand = vec4<i32>;
fn operand(word: u32) -> vec4<i32> {
    return lanes(word);
}
fn dot4(a: vec4<i32>, b: vec4<i32>) -> i32 {
    return dot(a, b);
}
";

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
    /// Builds the engine for an int8 `model` with default options.
    pub async fn new<B: AsRef<[u8]>>(model: &Network<B>) -> Result<GpuEngine, GpuError> {
        Self::with_options(model, GpuOptions::default()).await
    }

    /// Blocking [`GpuEngine::new`] (not on wasm32, where the browser must not block).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking<B: AsRef<[u8]>>(model: &Network<B>) -> Result<GpuEngine, GpuError> {
        pollster::block_on(Self::new(model))
    }

    /// Blocking [`GpuEngine::with_options`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_options_blocking<B: AsRef<[u8]>>(
        model: &Network<B>,
        options: GpuOptions,
    ) -> Result<GpuEngine, GpuError> {
        pollster::block_on(Self::with_options(model, options))
    }

    /// Builds the engine: picks an adapter, uploads weights, compiles the kernels.
    pub async fn with_options<B: AsRef<[u8]>>(model: &Network<B>, options: GpuOptions) -> Result<GpuEngine, GpuError> {
        let prepared = prepare(model)?;
        let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        if let Some(backends) = options.backends {
            descriptor.backends = backends;
        }
        let instance = wgpu::Instance::new(descriptor);
        let has_packed =
            instance.wgsl_language_features().contains(wgpu::WgslLanguageFeatures::Packed4x8IntegerDotProduct);
        let packed_dot = match options.dot_product {
            DotProduct::Auto => has_packed,
            DotProduct::Plain => false,
            DotProduct::Packed if has_packed => true,
            DotProduct::Packed => return Err(GpuError::PackedDotUnsupported),
        };
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: options.power_preference,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("tinycnn"),
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::Device(e.to_string()))?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&errors);
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| lock(&sink).push(e.to_string())));

        let binding_limit = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        let weight_bytes = (prepared.weights.len() * 4) as u64;
        if weight_bytes > binding_limit {
            return Err(GpuError::TooLarge { what: "packed weights", bytes: weight_bytes, limit: binding_limit });
        }
        let max_batch = [0, 1].map(|p| {
            let per_image = (prepared.plans[p].words * 4) as u64;
            (binding_limit / per_image).min(options.max_batch.max(1) as u64) as usize
        });
        if max_batch[1] == 0 {
            let bytes = (prepared.plans[1].words * 4) as u64;
            return Err(GpuError::TooLarge { what: "one image's activations", bytes, limit: binding_limit });
        }

        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let source = format!("{}{}", if packed_dot { DOT4_PACKED } else { DOT4_PLAIN }, KERNELS_WGSL);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("tinycnn kernels"),
            source: wgpu::ShaderSource::Wgsl(Cow::Owned(source)),
        });
        let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let uniform = |binding: u32, dynamic: bool| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: dynamic,
                min_binding_size: wgpu::BufferSize::new(if dynamic { PARAM_STRIDE } else { 16 }),
            },
            count: None,
        };
        let bind_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("tinycnn bindings"),
            entries: &[uniform(0, true), storage(1, false), storage(2, true), storage(3, true), uniform(4, false)],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("tinycnn pipeline layout"),
            bind_group_layouts: &[Some(&bind_layout)],
            immediate_size: 0,
        });
        let mut kernels: Vec<Kernel> = prepared.steps.iter().map(|s| s.kernel).collect();
        kernels.push(Kernel::FixedPointCheck);
        let mut pipelines = HashMap::new();
        for kernel in kernels {
            pipelines.entry(kernel).or_insert_with(|| {
                let constants = kernel.constants();
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(kernel.entry_point()),
                    layout: Some(&pipeline_layout),
                    module: &module,
                    entry_point: Some(kernel.entry_point()),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants: &constants,
                        ..Default::default()
                    },
                    cache: None,
                })
            });
        }

        let storage_init = |label: &str, contents: &[u8]| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage: wgpu::BufferUsages::STORAGE,
            })
        };
        let weights = storage_init("tinycnn weights", bytemuck::cast_slice(&prepared.weights));
        let channels = storage_init("tinycnn channels", bytemuck::cast_slice(&prepared.channels));
        let params = [0, 1].map(|p| {
            let mut blocks = std::vec![0i32; prepared.steps.len().max(1) * PARAM_INTS];
            for (s, step) in prepared.steps.iter().enumerate() {
                blocks[s * PARAM_INTS..][..PARAM_INTS]
                    .copy_from_slice(&step.params(&prepared.values, &prepared.plans[p]));
            }
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("tinycnn node parameters"),
                contents: bytemuck::cast_slice(&blocks),
                usage: wgpu::BufferUsages::UNIFORM,
            })
        });
        if let Some(e) = scope.pop().await {
            return Err(GpuError::Wgpu(e.to_string()));
        }

        Ok(GpuEngine {
            device,
            queue,
            adapter: adapter.get_info(),
            packed_dot,
            pipelines,
            bind_layout,
            weights,
            channels,
            params,
            input_len: model.input_len(),
            output_len: model.output_len(),
            prepared,
            max_batch,
            max_groups: limits.max_compute_workgroups_per_dimension.max(1),
            cache: HashMap::new(),
            upload: Vec::new(),
            errors,
        })
    }

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

    /// Logits of `pixels.len() / input_len()` images (C×H×W bytes each), `n × output_len()` values.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_batch(&mut self, pixels: &[u8]) -> Result<Vec<f32>, GpuError> {
        pollster::block_on(self.run_batch_async(pixels))
    }

    /// Like [`GpuEngine::run_batch`], into a caller's slice of `n × output_len()` values.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_batch_into(&mut self, pixels: &[u8], logits: &mut [f32]) -> Result<(), GpuError> {
        pollster::block_on(self.run_batch_into_async(pixels, logits))
    }

    /// Every int8 activation of every image (for equality tests against the CPU engine).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_batch_observed(&mut self, pixels: &[u8]) -> Result<Activations, GpuError> {
        pollster::block_on(self.run_batch_observed_async(pixels))
    }

    pub async fn run_batch_async(&mut self, pixels: &[u8]) -> Result<Vec<f32>, GpuError> {
        let mut logits = std::vec![0f32; self.images(pixels)? * self.output_len];
        self.run_batch_into_async(pixels, &mut logits).await?;
        Ok(logits)
    }

    pub async fn run_batch_into_async(&mut self, pixels: &[u8], logits: &mut [f32]) -> Result<(), GpuError> {
        let n = self.images(pixels)?;
        if logits.len() != n * self.output_len {
            return Err(Error::OutputLength { expected: n * self.output_len, found: logits.len() }.into());
        }
        let logits_layout = self.prepared.values[self.prepared.logits];
        let shape = logits_layout.shape;
        let (scale, zp) = (self.prepared.logits_scale, self.prepared.logits_zero_point);
        let mut start = 0;
        while start < n {
            let count = (n - start).min(self.max_batch[0]);
            let chunk = &pixels[start * self.input_len..][..count * self.input_len];
            let out = &mut logits[start * self.output_len..][..count * self.output_len];
            self.run_chunk(chunk, count, 0, |bytes| {
                for (image, dst) in bytes.chunks_exact(logits_layout.words * 4).zip(out.chunks_exact_mut(shape.len())) {
                    let image: &[i8] = bytemuck::cast_slice(image);
                    dequantize_channels_last(image, logits_layout.c4(), shape, scale, zp, dst);
                }
            })
            .await?;
            start += count;
        }
        Ok(())
    }

    pub async fn run_batch_observed_async(&mut self, pixels: &[u8]) -> Result<Activations, GpuError> {
        let n = self.images(pixels)?;
        let values = &self.prepared.values;
        let mut out: Vec<Vec<i8>> = values
            .iter()
            .zip(&self.prepared.computed)
            .map(|(l, &c)| Vec::with_capacity(if c { n * l.shape.len() } else { 0 }))
            .collect();
        let mut start = 0;
        while start < n {
            let count = (n - start).min(self.max_batch[1]);
            let chunk = &pixels[start * self.input_len..][..count * self.input_len];
            let (values, computed, plan) =
                (self.prepared.values.clone(), self.prepared.computed.clone(), self.prepared.plans[1].clone());
            self.run_chunk(chunk, count, 1, |bytes| {
                for (v, layout) in values.iter().enumerate().filter(|&(v, _)| computed[v]) {
                    let region = &bytes[4 * count * plan.offsets[v]..][..4 * count * layout.words];
                    for image in region.chunks_exact(layout.words * 4) {
                        unpack_value(layout, image, &mut out[v]);
                    }
                }
            })
            .await?;
            start += count;
        }
        let logits_layout = self.prepared.values[self.prepared.logits];
        let shape = logits_layout.shape;
        let (scale, zp) = (self.prepared.logits_scale, self.prepared.logits_zero_point);
        let mut logits = std::vec![0f32; n * self.output_len];
        for (image, dst) in
            out[self.prepared.logits].chunks_exact(shape.len()).zip(logits.chunks_exact_mut(shape.len()))
        {
            dequantize_channels_last(image, shape.c, shape, scale, zp, dst);
        }
        Ok(Activations { images: n, values: out, logits })
    }

    fn images(&self, pixels: &[u8]) -> Result<usize, GpuError> {
        if self.input_len == 0 || !pixels.len().is_multiple_of(self.input_len) {
            return Err(Error::InputLength { expected: self.input_len, found: pixels.len() }.into());
        }
        Ok(pixels.len() / self.input_len)
    }

    /// The buffers of chunk size `n` under plan `p`, created on first use.
    fn buffers(&mut self, n: usize, p: usize) -> &BatchBuffers {
        let GpuEngine { device, prepared, bind_layout, params, weights, channels, cache, .. } = self;
        cache.entry((n, p)).or_insert_with(|| {
            let plan = &prepared.plans[p];
            let arena_bytes = (n * plan.words * 4) as u64;
            let arena = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tinycnn arena"),
                size: arena_bytes,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let readback_bytes =
                if p == 0 { (n * prepared.values[prepared.logits].words * 4) as u64 } else { arena_bytes };
            let readback = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tinycnn readback"),
                size: readback_bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let batch = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("tinycnn batch"),
                contents: bytemuck::cast_slice(&[n as u32, 0, 0, 0]),
                usage: wgpu::BufferUsages::UNIFORM,
            });
            let bind_group = bind_group(device, bind_layout, &params[p], &arena, weights, channels, &batch);
            BatchBuffers { arena, readback, bind_group }
        })
    }

    /// Runs `n` images through the network under plan `p`, then hands the
    /// read-back bytes (plan 0: the logits value; plan 1: the whole arena) to `read`.
    async fn run_chunk(&mut self, pixels: &[u8], n: usize, p: usize, read: impl FnOnce(&[u8])) -> Result<(), GpuError> {
        let mut upload = core::mem::take(&mut self.upload);
        upload.clear();
        pack_pixels(&self.prepared.values[0], pixels, &mut upload);
        self.buffers(n, p);
        let (device, queue, prepared) = (&self.device, &self.queue, &self.prepared);
        let buffers = self.cache.get(&(n, p)).ok_or(GpuError::Wgpu("batch buffers vanished".into()))?;
        let plan = &prepared.plans[p];
        queue.write_buffer(&buffers.arena, (4 * n * plan.offsets[0]) as u64, &upload);
        self.upload = upload;

        let mut encoder =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("tinycnn batch") });
        {
            let mut pass = encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("tinycnn"), timestamp_writes: None });
            for (s, step) in prepared.steps.iter().enumerate() {
                let (x, y) = self.grid((n * step.invocations) as u64)?;
                pass.set_pipeline(self.pipeline(step.kernel)?);
                pass.set_bind_group(0, &buffers.bind_group, &[(s as u64 * PARAM_STRIDE) as u32]);
                pass.dispatch_workgroups(x, y, step.layers);
            }
        }
        let (source, size) = if p == 0 {
            let words = prepared.values[prepared.logits].words;
            ((4 * n * plan.offsets[prepared.logits]) as u64, (4 * n * words) as u64)
        } else {
            (0, buffers.readback.size())
        };
        encoder.copy_buffer_to_buffer(&buffers.arena, source, &buffers.readback, 0, size);
        queue.submit([encoder.finish()]);

        map_read(device, &buffers.readback, size, &self.errors).await?;
        {
            let view = buffers.readback.slice(..size).get_mapped_range().map_err(|e| GpuError::Wgpu(e.to_string()))?;
            read(&view);
        }
        buffers.readback.unmap();
        Ok(())
    }

    /// Test hook: runs the WGSL fixed-point primitives on `(x, y, s)` triples and
    /// returns, per triple, `[apply(x, Multiplier { mantissa: y, shift: s }),
    /// srdhm(x, y), rounding_divide_by_pot(x, s & 31), x.saturating_add(y),
    /// rounding_divide(x, max(y & 0xffffff, 1))]`.
    #[doc(hidden)]
    #[cfg(not(target_arch = "wasm32"))]
    pub fn check_fixed_point(&mut self, triples: &[[i32; 3]]) -> Result<Vec<[i32; 5]>, GpuError> {
        pollster::block_on(self.check_fixed_point_async(triples))
    }

    #[doc(hidden)]
    pub async fn check_fixed_point_async(&mut self, triples: &[[i32; 3]]) -> Result<Vec<[i32; 5]>, GpuError> {
        let n = triples.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let device = &self.device;
        let size = (n * 8 * 4) as u64;
        let arena = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("tinycnn fixed-point check"),
            contents: &[bytemuck::cast_slice::<[i32; 3], u8>(triples), &std::vec![0u8; n * 5 * 4]].concat(),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        });
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("tinycnn fixed-point readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let batch = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("tinycnn batch"),
            contents: bytemuck::cast_slice(&[n as u32, 0, 0, 0]),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let bind_group = self.bind_group(&self.params[0], &arena, &batch);
        let mut encoder =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("tinycnn check") });
        {
            let mut pass =
                encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
            pass.set_pipeline(self.pipeline(Kernel::FixedPointCheck)?);
            pass.set_bind_group(0, &bind_group, &[0]);
            let (x, y) = self.grid(n as u64)?;
            pass.dispatch_workgroups(x, y, 1);
        }
        encoder.copy_buffer_to_buffer(&arena, 0, &readback, 0, size);
        self.queue.submit([encoder.finish()]);
        map_read(device, &readback, size, &self.errors).await?;
        let results = {
            let view = readback.slice(..).get_mapped_range().map_err(|e| GpuError::Wgpu(e.to_string()))?;
            let words: &[i32] = bytemuck::cast_slice(&view[n * 3 * 4..]);
            words.chunks_exact(5).map(|r| [r[0], r[1], r[2], r[3], r[4]]).collect()
        };
        readback.unmap();
        Ok(results)
    }

    /// Workgroup grid (x, y) covering `invocations` one-word invocations.
    fn grid(&self, invocations: u64) -> Result<(u32, u32), GpuError> {
        let groups = invocations.div_ceil(u64::from(WORKGROUP)).max(1);
        let x = groups.min(u64::from(self.max_groups));
        let y = groups.div_ceil(x);
        if y > u64::from(self.max_groups) {
            return Err(GpuError::TooLarge {
                what: "one dispatch",
                bytes: invocations * 4,
                limit: u64::from(self.max_groups),
            });
        }
        Ok((x as u32, y as u32))
    }

    fn pipeline(&self, kernel: Kernel) -> Result<&wgpu::ComputePipeline, GpuError> {
        self.pipelines.get(&kernel).ok_or(GpuError::Wgpu(format!("no pipeline for {kernel:?}")))
    }

    fn bind_group(&self, params: &wgpu::Buffer, arena: &wgpu::Buffer, batch: &wgpu::Buffer) -> wgpu::BindGroup {
        bind_group(&self.device, &self.bind_layout, params, arena, &self.weights, &self.channels, batch)
    }
}

fn bind_group(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    params: &wgpu::Buffer,
    arena: &wgpu::Buffer,
    weights: &wgpu::Buffer,
    channels: &wgpu::Buffer,
    batch: &wgpu::Buffer,
) -> wgpu::BindGroup {
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("tinycnn bind group"),
        layout,
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: params,
                    offset: 0,
                    size: wgpu::BufferSize::new(PARAM_STRIDE),
                }),
            },
            wgpu::BindGroupEntry { binding: 1, resource: arena.as_entire_binding() },
            wgpu::BindGroupEntry { binding: 2, resource: weights.as_entire_binding() },
            wgpu::BindGroupEntry { binding: 3, resource: channels.as_entire_binding() },
            wgpu::BindGroupEntry { binding: 4, resource: batch.as_entire_binding() },
        ],
    })
}

/// Maps `buffer[..size]` for reading and waits for it; reports any error wgpu
/// raised meanwhile (validation, out of memory) instead of the data.
async fn map_read(
    device: &wgpu::Device,
    buffer: &wgpu::Buffer,
    size: u64,
    errors: &Mutex<Vec<String>>,
) -> Result<(), GpuError> {
    let slot = Arc::new(Mutex::new(MapSlot { result: None, waker: None }));
    let callback_slot = Arc::clone(&slot);
    buffer.slice(..size).map_async(wgpu::MapMode::Read, move |result| {
        let mut s = lock(&callback_slot);
        s.result = Some(result.map_err(|e| e.to_string()));
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    });
    // Native: runs the queue and the map callback. The browser does both on its own.
    device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Wgpu(e.to_string()))?;
    let mapped = MapFuture(slot).await;
    if let Some(e) = lock(errors).drain(..).next() {
        if mapped.is_ok() {
            buffer.unmap();
        }
        return Err(GpuError::Wgpu(e));
    }
    mapped.map_err(GpuError::Wgpu)
}

struct MapSlot {
    result: Option<Result<(), String>>,
    waker: Option<Waker>,
}

/// Resolves when a `map_async` callback has run.
struct MapFuture(Arc<Mutex<MapSlot>>);

impl Future for MapFuture {
    type Output = Result<(), String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = lock(&self.0);
        match s.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
