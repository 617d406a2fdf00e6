//! `--backend gpu` for `eval` and `bench`: the WebGPU engine (src/gpu/),
//! falling back to the CPU engine when no adapter is found.

use std::io::Write;
use std::string::String;
use std::vec::Vec;

use super::CliResult;
use crate::Model;

/// Which engine runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The integer engine on this CPU (SIMD kernels where available).
    Cpu,
    /// The same integer network through wgpu (Vulkan, Metal, DX12); bit-identical to the CPU.
    Gpu,
}

/// Batch sizes `bench --backend gpu` reports.
#[cfg_attr(not(feature = "gpu"), allow(dead_code))] // used by the gpu build only
pub const BENCH_BATCHES: [usize; 3] = [1, 64, 1024];

#[cfg(feature = "gpu")]
mod enabled {
    use std::time::Instant;
    use std::{eprintln, format, vec};

    use super::*;
    use crate::cli::{argmax, message, CliError};
    use crate::gpu::{GpuEngine, GpuError};

    /// The engine, or None (with a note on stderr) when there is no adapter.
    fn engine(model: &Model) -> CliResult<Option<GpuEngine>> {
        match GpuEngine::new_blocking(model) {
            Ok(engine) => {
                eprintln!("gpu: {} ({:?})", engine.adapter_info().name, engine.adapter_info().backend);
                Ok(Some(engine))
            }
            Err(GpuError::NoAdapter(why)) => {
                eprintln!("gpu: no adapter ({why}); falling back to the CPU engine");
                Ok(None)
            }
            Err(e) => Err(CliError::Message(format!("gpu: {e}"))),
        }
    }

    /// Predicted class of every image and the seconds spent, or None without an adapter.
    pub fn predict_all(model: &Model, images: &[u8], count: usize) -> CliResult<Option<(Vec<u8>, f64)>> {
        let Some(mut gpu) = engine(model)? else { return Ok(None) };
        let classes = model.output_len();
        let mut logits = vec![0f32; count * classes];
        let start = Instant::now();
        gpu.run_batch_into(&images[..count * model.input_len()], &mut logits).map_err(message)?;
        let seconds = start.elapsed().as_secs_f64();
        let predictions = logits.chunks_exact(classes).map(|l| argmax(l) as u8).collect();
        Ok(Some((predictions, seconds)))
    }

    /// Images per second at each batch size, GPU beside the CPU engine (one thread).
    pub fn bench(model: &Model, inputs: &[u8], repeats: usize, out: &mut dyn Write) -> CliResult {
        let Some(mut gpu) = engine(model)? else {
            return Err(CliError::Message(String::from("gpu: no adapter, nothing to benchmark")));
        };
        let (len, classes) = (model.input_len(), model.output_len());
        let available = inputs.len() / len;
        let mut arena = vec![0u8; model.arena_bytes()];
        writeln!(out, "adapter: {} ({:?})", gpu.adapter_info().name, gpu.adapter_info().backend)?;
        writeln!(out, "packed_dot: {}", gpu.uses_packed_dot())?;
        for batch in BENCH_BATCHES {
            let pixels: Vec<u8> =
                (0..batch).flat_map(|i| inputs[(i % available) * len..][..len].iter().copied()).collect();
            let mut logits = vec![0f32; batch * classes];
            gpu.run_batch_into(&pixels, &mut logits).map_err(message)?; // warm-up: pipelines, buffers
            let gpu_rate = median_rate(repeats, batch, || gpu.run_batch_into(&pixels, &mut logits).map_err(message))?;
            let mut one = vec![0f32; classes];
            let cpu_rate = median_rate(repeats, batch, || {
                for image in pixels.chunks_exact(len) {
                    model.run(&mut arena, image, &mut one)?;
                }
                Ok(())
            })?;
            writeln!(
                out,
                "batch {batch}: gpu_images_per_s: {gpu_rate:.0}  cpu_images_per_s: {cpu_rate:.0}  gpu/cpu: {:.2}",
                gpu_rate / cpu_rate
            )?;
        }
        Ok(())
    }

    fn median_rate(repeats: usize, batch: usize, mut run: impl FnMut() -> CliResult) -> CliResult<f64> {
        let mut rates = Vec::with_capacity(repeats);
        for _ in 0..repeats.max(1) {
            let start = Instant::now();
            run()?;
            rates.push(batch as f64 / start.elapsed().as_secs_f64());
        }
        rates.sort_by(f64::total_cmp);
        Ok(rates[rates.len() / 2])
    }
}

#[cfg(feature = "gpu")]
pub use enabled::{bench, predict_all};

#[cfg(not(feature = "gpu"))]
mod disabled {
    use super::*;
    use crate::cli::CliError;

    fn not_built() -> CliError {
        CliError::Message(String::from(
            "this tinycnn was built without the gpu feature (cargo build --release --features cli,gpu)",
        ))
    }

    pub fn predict_all(_: &Model, _: &[u8], _: usize) -> CliResult<Option<(Vec<u8>, f64)>> {
        Err(not_built())
    }

    pub fn bench(_: &Model, _: &[u8], _: usize, _: &mut dyn Write) -> CliResult {
        Err(not_built())
    }
}

#[cfg(not(feature = "gpu"))]
pub use disabled::{bench, predict_all};
