//! Building a [`GpuEngine`]: adapter and device, the shader with its
//! dot-product prelude, pipelines, and the buffers uploaded once per model.

use std::borrow::Cow;
use std::collections::HashMap;
use std::format;
use std::string::ToString;
use std::sync::{Arc, Mutex};
use std::vec::Vec;

use wgpu::util::DeviceExt;

use super::layout::{prepare, Kernel, PARAM_INTS, PARAM_STRIDE};
use super::{lock, DotProduct, GpuEngine, GpuError, GpuOptions, KERNELS_WGSL};
use crate::model::Network;

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
}

pub(super) fn bind_group(
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

/// A buffer the CPU maps to read `size` bytes copied from the GPU.
pub(super) fn readback_buffer(device: &wgpu::Device, size: u64) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("tinycnn readback"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// The kernels' `batch` uniform: `n` images.
pub(super) fn batch_uniform(device: &wgpu::Device, n: usize) -> wgpu::Buffer {
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("tinycnn batch"),
        contents: bytemuck::cast_slice(&[n as u32, 0, 0, 0]),
        usage: wgpu::BufferUsages::UNIFORM,
    })
}
