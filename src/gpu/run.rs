//! Running batches: pixels up, one dispatch per node and chunk, results back
//! (logits dequantised, or every activation for the equality tests).

use std::format;
use std::string::ToString;
use std::vec::Vec;

use super::layout::{pack_int8, pack_pixels, unpack_value, Kernel, PARAM_STRIDE};
use super::readback::map_read;
use super::setup::{batch_uniform, bind_group, readback_buffer};
use super::{Activations, BatchBuffers, GpuEngine, GpuError, WORKGROUP};
use crate::error::Error;
use crate::model::graph::InputKind;
use crate::spec::fixed_point::dequantize_channels_last;

impl GpuEngine {
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
    /// `input` holds the model's input kind: pixels, or int8 values (H×W×C) as bytes.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_batch_observed(&mut self, input: &[u8]) -> Result<Activations, GpuError> {
        pollster::block_on(self.run_batch_observed_async(input))
    }

    /// The int8 outputs (`Graph::output`, H×W×C) of `input.len() / input_len()`
    /// quantised inputs (H×W×C each), as the CPU engine's `run_int8` gives them.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_int8_batch(&mut self, input: &[i8]) -> Result<Vec<i8>, GpuError> {
        pollster::block_on(self.run_int8_batch_async(input))
    }

    pub async fn run_int8_batch_async(&mut self, input: &[i8]) -> Result<Vec<i8>, GpuError> {
        let input: &[u8] = bytemuck::cast_slice(input);
        let n = self.images(input)?;
        let layout = self.prepared.values[self.prepared.output];
        let per_image = layout.shape.len();
        let mut outputs = Vec::with_capacity(n * per_image);
        let mut start = 0;
        while start < n {
            let count = (n - start).min(self.max_batch[0]);
            let chunk = &input[start * self.input_len..][..count * self.input_len];
            let value = self.prepared.output;
            self.run_chunk(chunk, true, count, 0, value, |bytes| {
                for image in bytes.chunks_exact(layout.words * 4) {
                    unpack_value(&layout, image, &mut outputs);
                }
            })
            .await?;
            start += count;
        }
        Ok(outputs)
    }

    pub async fn run_batch_async(&mut self, pixels: &[u8]) -> Result<Vec<f32>, GpuError> {
        let mut logits = std::vec![0f32; self.images(pixels)? * self.output_len];
        self.run_batch_into_async(pixels, &mut logits).await?;
        Ok(logits)
    }

    pub async fn run_batch_into_async(&mut self, pixels: &[u8], logits: &mut [f32]) -> Result<(), GpuError> {
        if self.prepared.input_kind != InputKind::Pixels {
            return Err(Error::WrongInput { expected: "int8 values (run_int8_batch)" }.into());
        }
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
            let value = self.prepared.logits;
            self.run_chunk(chunk, false, count, 0, value, |bytes| {
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

    pub async fn run_batch_observed_async(&mut self, input: &[u8]) -> Result<Activations, GpuError> {
        let n = self.images(input)?;
        let int8_input = self.prepared.input_kind == InputKind::Int8;
        let values = &self.prepared.values;
        let mut out: Vec<Vec<i8>> = values
            .iter()
            .zip(&self.prepared.computed)
            .map(|(l, &c)| Vec::with_capacity(if c { n * l.shape.len() } else { 0 }))
            .collect();
        let mut start = 0;
        while start < n {
            let count = (n - start).min(self.max_batch[1]);
            let chunk = &input[start * self.input_len..][..count * self.input_len];
            let (values, computed, plan) =
                (self.prepared.values.clone(), self.prepared.computed.clone(), self.prepared.plans[1].clone());
            self.run_chunk(chunk, int8_input, count, 1, 0, |bytes| {
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
            let read_words = prepared.values[prepared.logits].words.max(prepared.values[prepared.output].words);
            let readback_bytes = if p == 0 { (n * read_words * 4) as u64 } else { arena_bytes };
            let readback = readback_buffer(device, readback_bytes);
            let batch = batch_uniform(device, n);
            let bind_group = bind_group(device, bind_layout, &params[p], &arena, weights, channels, &batch);
            BatchBuffers { arena, readback, bind_group }
        })
    }

    /// Runs `n` inputs (pixels, or int8 values with `int8_input`) through the network
    /// under plan `p`, then hands the read-back bytes (plan 0: value `value`; plan 1:
    /// the whole arena) to `read`.
    async fn run_chunk(
        &mut self,
        input: &[u8],
        int8_input: bool,
        n: usize,
        p: usize,
        value: usize,
        read: impl FnOnce(&[u8]),
    ) -> Result<(), GpuError> {
        let mut upload = core::mem::take(&mut self.upload);
        upload.clear();
        if int8_input {
            pack_int8(&self.prepared.values[0], input, &mut upload);
        } else {
            pack_pixels(&self.prepared.values[0], input, &mut upload);
        }
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
            let words = prepared.values[value].words;
            ((4 * n * plan.offsets[value]) as u64, (4 * n * words) as u64)
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

    /// Workgroup grid (x, y) covering `invocations` one-word invocations.
    pub(super) fn grid(&self, invocations: u64) -> Result<(u32, u32), GpuError> {
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

    pub(super) fn pipeline(&self, kernel: Kernel) -> Result<&wgpu::ComputePipeline, GpuError> {
        self.pipelines.get(&kernel).ok_or(GpuError::Wgpu(format!("no pipeline for {kernel:?}")))
    }

    pub(super) fn bind_group(
        &self,
        params: &wgpu::Buffer,
        arena: &wgpu::Buffer,
        batch: &wgpu::Buffer,
    ) -> wgpu::BindGroup {
        bind_group(&self.device, &self.bind_layout, params, arena, &self.weights, &self.channels, batch)
    }
}
