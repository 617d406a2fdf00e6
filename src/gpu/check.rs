//! Test hook: the WGSL fixed-point primitives run on raw triples, so
//! `tests/gpu.rs` can compare them with `spec::fixed_point` directly.

use std::string::ToString;
use std::vec::Vec;

use wgpu::util::DeviceExt;

use super::layout::Kernel;
use super::readback::map_read;
use super::setup::{batch_uniform, readback_buffer};
use super::{GpuEngine, GpuError};

impl GpuEngine {
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
        let readback = readback_buffer(device, size);
        let batch = batch_uniform(device, n);
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
}
