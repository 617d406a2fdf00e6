//! The four MLPerf Tiny int8 models (models/mlperf-tiny/) and two of TFLM's own
//! example models (models/tflm-examples/), imported from their
//! `.tflite` files and run on every CPU kernel set, against TensorFlow Lite
//! Micro's reference interpreter: every output byte of 203 inputs (200 random,
//! all −128, all 127, all the zero point) equals the committed TFLM output
//! (tests/data/tflm/, made by `scripts/tflm_reference.py generate`; CI
//! regenerates it with TFLM and compares, `scripts/tflm-check`). The softmax's
//! input (the int8 logits, `.logits`) is compared too: random inputs saturate
//! a softmax. With `gpu`, the WebGPU engine too (both dot-product paths).

use std::mem::MaybeUninit;

use tinycnn::internals::tflite::import;
use tinycnn::{ArenaModel, KernelSet, LoadOptions, Model};

/// The inputs of tests/data/tflm/README.md: splitmix64 bytes per input index, then the edge cases.
pub fn inputs(len: usize, zero_point: i8) -> Vec<Vec<i8>> {
    let mut all: Vec<Vec<i8>> = (0..200u64)
        .map(|seed| {
            let mut state = seed;
            let mut bytes = Vec::with_capacity(len + 8);
            while bytes.len() < len {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
            }
            bytes.truncate(len);
            bytes.into_iter().map(|b| b as i8).collect()
        })
        .collect();
    all.extend([vec![-128; len], vec![127; len], vec![zero_point; len]]);
    all
}

const MODELS: [&str; 4] = ["pretrainedResnet_quant", "kws_ref_model", "vww_96_int8", "ad01_int8"];

fn check(stem: &str) {
    check_in("mlperf-tiny", stem);
}

fn check_in(dir: &str, stem: &str) {
    let tflite = std::fs::read(format!("models/{dir}/{stem}.tflite")).unwrap();
    let want = std::fs::read(format!("tests/data/tflm/{stem}.out")).unwrap();
    let want_logits = std::fs::read(format!("tests/data/tflm/{stem}.logits")).ok();
    let file = import(&tflite).unwrap_or_else(|e| panic!("{stem}: {e}")).file;
    for kernels in KernelSet::available() {
        let model = Model::load_with(&file[..], LoadOptions { kernels }).unwrap();
        let zero_point = model.graph().input.quant.unwrap().zero_point as i8;
        let out_len = model.int8_output_len();
        let inputs = inputs(model.input_len(), zero_point);
        assert_eq!(want.len(), inputs.len() * out_len, "{stem}: the TFLM file's size");
        let mut arena = vec![0u8; model.arena_bytes()];
        let mut got = vec![0i8; out_len];
        // The heap-free load of the same file, in memory of exactly the size it reports.
        let mut probe = vec![MaybeUninit::new(0u8); 4 * file.len() + (4 << 20)];
        let needed = ArenaModel::load(&file, &mut probe, kernels).unwrap().0.memory_bytes();
        let mut memory = vec![MaybeUninit::new(0u8); needed + 16]; // + the alignment of a buffer's start
        let (in_place, in_place_arena) = ArenaModel::load(&file, &mut memory, kernels).unwrap();
        let mut in_place_got = vec![0i8; out_len];
        let mut differing = 0;
        let mut first = None;
        let logits_value = model.graph().logits;
        let mut logits = Vec::new();
        for (i, (input, want)) in inputs.iter().zip(want.chunks_exact(out_len)).enumerate() {
            let mut observe = |v: usize, data: &[i8]| {
                if v == logits_value {
                    logits.extend(data.iter().map(|&b| b as u8));
                }
            };
            model.run_int8_values_observed(&mut arena, input, &mut got, &mut observe).unwrap();
            in_place.run_int8(in_place_arena, input, &mut in_place_got).unwrap();
            assert_eq!(in_place_got, got, "{stem} on {}: in place, input {i}", kernels.name());
            let bad = got.iter().zip(want).filter(|(g, w)| **g as u8 != **w).count();
            if bad > 0 && first.is_none() {
                first = Some((i, got.clone(), want.to_vec()));
            }
            differing += bad;
        }
        if let Some((i, got, want)) = first {
            panic!(
                "{stem} on {}: {differing} of {} output bytes differ from TFLM; first at input {i}: got {:?} want {:?}",
                kernels.name(),
                want.len() * inputs.len(),
                &got[..got.len().min(16)],
                &want.iter().map(|&b| b as i8).collect::<Vec<_>>()[..want.len().min(16)]
            );
        }
        if let Some(want_logits) = &want_logits {
            let differing = logits.iter().zip(want_logits).filter(|(g, w)| g != w).count();
            assert_eq!((logits.len(), differing), (want_logits.len(), 0), "{stem} on {}: logits", kernels.name());
        }
        eprintln!(
            "{stem} on {}: {} inputs, {} output bytes and {} logits bytes equal to TFLM",
            kernels.name(),
            inputs.len(),
            want.len(),
            want_logits.as_ref().map_or(0, Vec::len)
        );
    }
    #[cfg(feature = "gpu")]
    for dot_product in [tinycnn::gpu::DotProduct::Packed, tinycnn::gpu::DotProduct::Plain] {
        let network = tinycnn::Network::load(&file[..]).unwrap();
        let zero_point = network.graph().input.quant.unwrap().zero_point as i8;
        let batch: Vec<i8> = inputs(network.input_len(), zero_point).concat();
        let options = tinycnn::gpu::GpuOptions { dot_product, ..Default::default() };
        let mut gpu = tinycnn::gpu::GpuEngine::with_options_blocking(&network, options).unwrap();
        let got = gpu.run_int8_batch(&batch).unwrap();
        let differing = got.iter().zip(&want).filter(|(g, w)| **g as u8 != **w).count();
        assert_eq!((got.len(), differing), (want.len(), 0), "{stem} on webgpu ({dot_product:?}): bytes, differing");
        if let Some(want_logits) = &want_logits {
            let observed = gpu.run_batch_observed(bytemuck::cast_slice(&batch)).unwrap();
            let logits: Vec<u8> = observed.values[network.graph().logits].iter().map(|&b| b as u8).collect();
            assert!(&logits == want_logits, "{stem} on webgpu ({dot_product:?}): logits differ from TFLM");
        }
        eprintln!("{stem} on webgpu ({dot_product:?}): {} output bytes equal to TFLM", want.len());
    }
}

#[test]
fn resnet8_equals_tflm() {
    check(MODELS[0]);
}

#[test]
fn ds_cnn_equals_tflm() {
    check(MODELS[1]);
}

#[test]
fn mobilenet_vww_equals_tflm() {
    check(MODELS[2]);
}

#[test]
fn autoencoder_equals_tflm() {
    check(MODELS[3]);
}

/// TFLM's person detection example: its fused RELU6s change no int8 value and
/// become no node, nor does the RESHAPE of the 1×1×2 logits to [1, 2] (30 nodes:
/// 28 convolutions, the pool and the softmax); its arena is TFLM's head (55,296 bytes).
#[test]
fn tflm_person_detect_equals_tflm() {
    check_in("tflm-examples", "person_detect");
    let file = import(&std::fs::read("models/tflm-examples/person_detect.tflite").unwrap()).unwrap().file;
    assert_eq!(Model::load(&file[..]).unwrap().graph().nodes.len(), 30);
    let arena =
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string("tests/data/tflm/arena.json").unwrap())
            .unwrap()["person_detect"]["arena_bytes"]["head"]
            .as_u64()
            .unwrap();
    assert_eq!(Model::load(&file[..]).unwrap().arena_bytes() as u64, arena);
}

#[test]
fn tflm_hello_world_equals_tflm() {
    check_in("tflm-examples", "hello_world_int8");
}

/// TFLM's micro_speech example: its first op reshapes the [1, 1960] input to
/// [1, 49, 40, 1], which the import folds into the input's shape.
#[test]
fn tflm_micro_speech_equals_tflm() {
    check_in("tflm-examples", "micro_speech_quantized");
}

/// The input written into the arena (`int8_input_mut`, `run_int8_in_place`: what the
/// firmware does, one input buffer less) gives TFLM's bytes too, on every kernel set;
/// a float model and a short arena are typed errors.
#[test]
fn in_place_input_equals_tflm() {
    let stem = "pretrainedResnet_quant";
    let tflite = std::fs::read(format!("models/mlperf-tiny/{stem}.tflite")).unwrap();
    let want = std::fs::read(format!("tests/data/tflm/{stem}.out")).unwrap();
    let file = import(&tflite).unwrap().file;
    for kernels in KernelSet::available() {
        let model = Model::load_with(&file[..], LoadOptions { kernels }).unwrap();
        let zero_point = model.graph().input.quant.unwrap().zero_point as i8;
        let out_len = model.int8_output_len();
        let mut arena = vec![0u8; model.arena_bytes()];
        let mut got = vec![0i8; out_len];
        // Every fifth input, and the three edge cases: the arena's previous contents must not leak in.
        for (i, (input, want)) in
            inputs(model.input_len(), zero_point).iter().zip(want.chunks_exact(out_len)).enumerate()
        {
            if i % 5 != 0 && i < 200 {
                continue;
            }
            model.int8_input_mut(&mut arena).unwrap().copy_from_slice(input);
            model.run_int8_in_place(&mut arena, &mut got).unwrap();
            let got: Vec<u8> = got.iter().map(|&v| v as u8).collect();
            assert_eq!(got, want, "{stem}, {}: input {i}", kernels.name());
        }
        let short = model.arena_bytes() - 1;
        assert!(matches!(
            model.int8_input_mut(&mut arena[..short]),
            Err(tinycnn::Error::ArenaTooSmall { needed, found }) if needed == model.arena_bytes() && found == short
        ));
        assert!(matches!(
            model.run_int8_in_place(&mut arena, &mut got[..out_len - 1]),
            Err(tinycnn::Error::OutputLength { .. })
        ));
    }
    let float = Model::load(std::fs::read("models/deepconvnet-float.safetensors").unwrap()).unwrap();
    let mut arena = vec![0u8; float.arena_bytes()];
    assert!(matches!(float.int8_input_mut(&mut arena), Err(tinycnn::Error::WrongDtype { expected: "int8" })));
}
