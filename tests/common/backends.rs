//! Every backend this build and machine can run, and the check that one
//! agrees with the reference bit for bit: each int8 activation and the logits.
//!
//! The list is built from `KernelSet::available()` (reference, portable, each
//! SIMD microkernel the CPU has), the heap-free `ArenaModel` (loaded in place
//! into caller memory) with the fastest set, and,
//! with the `gpu` feature, both WGSL dot product paths; a new kernel set or
//! ISA is picked up with no test edited.

use std::mem::MaybeUninit;

use tinycnn::{ArenaModel, KernelSet, LoadOptions, Model, Network};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Cpu(KernelSet),
    /// `ArenaModel`: the same kernels, the model's state in the caller's memory.
    Arena(KernelSet),
    #[cfg(feature = "gpu")]
    Gpu(tinycnn::gpu::DotProduct),
}

impl Backend {
    pub fn name(self) -> String {
        match self {
            Backend::Cpu(set) => set.name().to_string(),
            Backend::Arena(set) => format!("{} (in place)", set.name()),
            #[cfg(feature = "gpu")]
            Backend::Gpu(dot) => format!("webgpu ({dot:?})"),
        }
    }
}

/// Every backend but the reference, which the others are compared with.
pub fn all() -> Vec<Backend> {
    let cpu = KernelSet::available().into_iter().filter(|&s| s != KernelSet::Reference).map(Backend::Cpu);
    // The heap-free load runs the same engine over records in the caller's memory: one
    // SIMD set proves the two loads equal (tests/tflite_models.rs runs every set in place);
    // the portable set's load plans convolutions and adds over their inputs besides.
    let mut arena = vec![Backend::Arena(KernelSet::best()), Backend::Arena(KernelSet::Portable)];
    arena.dedup();
    let cpu = cpu.chain(arena);
    #[cfg(feature = "gpu")]
    let cpu = cpu.chain([tinycnn::gpu::DotProduct::Packed, tinycnn::gpu::DotProduct::Plain].map(Backend::Gpu));
    cpu.collect()
}

/// Every activation (value by value, images back to back) and the logits.
pub type Observed = (Vec<Vec<i8>>, Vec<f32>);

pub fn load(bytes: &[u8], kernels: KernelSet) -> Model<&[u8]> {
    Model::load_with(bytes, LoadOptions { kernels }).unwrap_or_else(|e| panic!("{}: {e}", kernels.name()))
}

/// Runs the CPU integer engine image by image, recording every activation.
pub fn cpu_observe<B: AsRef<[u8]>>(model: &Model<B>, pixels: &[u8]) -> Observed {
    let mut acts: Vec<Vec<i8>> = vec![Vec::new(); model.graph().nodes.len() + 1];
    let mut logits = vec![0f32; pixels.len() / model.input_len() * model.output_len()];
    let mut arena = vec![0u8; model.arena_bytes()];
    for (image, out) in pixels.chunks_exact(model.input_len()).zip(logits.chunks_exact_mut(model.output_len())) {
        model.run_int8_observed(&mut arena, image, out, &mut |v, data| acts[v].extend_from_slice(data)).unwrap();
    }
    (acts, logits)
}

/// Memory for an in-place load of `bytes`: ample (its exact need is `ArenaModel::memory_bytes`).
pub fn arena_memory(bytes: &[u8]) -> Vec<MaybeUninit<u8>> {
    vec![MaybeUninit::new(0); 4 * bytes.len() + (8 << 20)]
}

/// The heap-free model, image by image, recording every activation.
pub fn arena_observe(bytes: &[u8], kernels: KernelSet, pixels: &[u8]) -> Observed {
    let mut memory = arena_memory(bytes);
    let (model, arena) =
        ArenaModel::load(bytes, &mut memory, kernels).unwrap_or_else(|e| panic!("{} in place: {e}", kernels.name()));
    let values = Network::load(bytes).unwrap().graph().nodes.len() + 1;
    let mut acts: Vec<Vec<i8>> = vec![Vec::new(); values];
    let mut logits = vec![0f32; pixels.len() / model.input_len() * model.output_len()];
    for (image, out) in pixels.chunks_exact(model.input_len()).zip(logits.chunks_exact_mut(model.output_len())) {
        model.run_int8_observed(arena, image, out, &mut |v, data| acts[v].extend_from_slice(data)).unwrap();
    }
    (acts, logits)
}

pub fn observe(backend: Backend, bytes: &[u8], pixels: &[u8]) -> Observed {
    match backend {
        Backend::Cpu(set) => cpu_observe(&load(bytes, set), pixels),
        Backend::Arena(set) => arena_observe(bytes, set, pixels),
        #[cfg(feature = "gpu")]
        Backend::Gpu(dot) => {
            let network = Network::load(bytes).unwrap();
            let options = tinycnn::gpu::GpuOptions { dot_product: dot, ..Default::default() };
            let mut gpu = tinycnn::gpu::GpuEngine::with_options_blocking(&network, options).unwrap_or_else(|e| {
                panic!("{e}\nThe GPU tests need a WebGPU adapter: apt-get install mesa-vulkan-drivers libvulkan1")
            });
            let observed = gpu.run_batch_observed(pixels).unwrap();
            // The unobserved path too: same logits.
            let logits = gpu.run_batch(pixels).unwrap();
            assert_logits_equal(&format!("{} run_batch vs observed", backend.name()), &observed.logits, &logits);
            (observed.values, observed.logits)
        }
    }
}

pub fn first_difference<B: AsRef<[u8]>>(
    what: &str,
    network: &Network<B>,
    v: usize,
    want: &[i8],
    got: &[i8],
) -> Option<String> {
    if want == got {
        return None;
    }
    let name = network.graph().value_name(v);
    if want.len() != got.len() {
        return Some(format!("{what}: value '{name}' has {} bytes in the reference, {}", want.len(), got.len()));
    }
    let shape = network.shape(v);
    let k = want.iter().zip(got).position(|(a, b)| a != b).unwrap_or(0);
    let (image, at) = (k / shape.len(), k % shape.len());
    let differing = want.iter().zip(got).filter(|(a, b)| a != b).count();
    Some(format!(
        "{what}: value '{name}' ({shape}, {differing} bytes differ) first at image {image}, pixel {}, channel {}: reference {} got {}",
        at / shape.c,
        at % shape.c,
        want[k],
        got[k]
    ))
}

pub fn assert_logits_equal(what: &str, want: &[f32], got: &[f32]) {
    assert_eq!(want.len(), got.len(), "{what}: logit count");
    for (i, (a, b)) in want.iter().zip(got).enumerate() {
        assert!(a.to_bits() == b.to_bits(), "{what}: logit {i} differs: reference {a}, got {b}");
    }
}

/// Runs `pixels` through the reference and through every backend; panics at
/// the first activation byte or logit bit that differs.
pub fn assert_every_backend_agrees(what: &str, bytes: &[u8], pixels: &[u8]) {
    let network = Network::load(bytes).unwrap();
    let (want_acts, want_logits) = cpu_observe(&load(bytes, KernelSet::Reference), pixels);
    for backend in all() {
        let what = format!("{what} on {}", backend.name());
        let (acts, logits) = observe(backend, bytes, pixels);
        assert_eq!(acts.len(), want_acts.len(), "{what}: value count");
        for (v, (want, got)) in want_acts.iter().zip(&acts).enumerate() {
            if let Some(msg) = first_difference(&what, &network, v, want, got) {
                panic!("{msg}");
            }
        }
        assert_logits_equal(&what, &want_logits, &logits);
    }
}
