// Temporary measurement scratch (gpu engine only).
#[cfg(feature = "gpu")]
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
}
#[cfg(feature = "gpu")]
fn main() {
    use tinycnn::gpu::{DotProduct, GpuEngine, GpuOptions};
    let model = tinycnn::Model::load(std::fs::read("models/deepconvnet-int8.safetensors").unwrap()).unwrap();
    let digits = std::fs::read("data/mnist/t10k-images-idx3-ubyte").unwrap();
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(256);
    let pixels = &digits[16..16 + n * 784];
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut logits = vec![0f32; 10];
    let (t, c) = (std::time::Instant::now(), cpu_seconds());
    for image in pixels.chunks_exact(784) {
        model.run(&mut arena, image, &mut logits).unwrap();
    }
    println!("CPU engine: wall {:.0}/s cpu-time {:.0}/s", n as f64 / t.elapsed().as_secs_f64(), n as f64 / (cpu_seconds() - c));
    for dot in [DotProduct::Plain, DotProduct::Packed] {
        let mut gpu = GpuEngine::with_options_blocking(&model, GpuOptions { dot_product: dot, ..Default::default() }).unwrap();
        gpu.run_batch(pixels).unwrap();
        let (t, c) = (std::time::Instant::now(), cpu_seconds());
        for _ in 0..3 {
            gpu.run_batch(pixels).unwrap();
        }
        println!("{dot:?}: wall {:.0}/s cpu-time {:.0}/s", 3.0 * n as f64 / t.elapsed().as_secs_f64(), 3.0 * n as f64 / (cpu_seconds() - c));
    }
}
#[cfg(not(feature = "gpu"))]
fn main() {}
