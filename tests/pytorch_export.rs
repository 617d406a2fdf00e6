//! What `tinycnn_export` (python/) writes, run by tinycnn: four PyTorch
//! architectures that are not in models/ (python/tests/archs.py), exported
//! with random and with trained weights by python/tests/make_fixtures.py,
//! which also stored PyTorch's outputs (tests/fixtures/pytorch-export/).
//!
//! - the f32 engine within 1e-4 of PyTorch on random and MNIST images;
//! - after `quantize` (1,000 MNIST training digits), the int8 model's top-1
//!   agrees with PyTorch's on ≥ 99.5 % of the 10,000 test digits;
//! - every int8 backend equals the reference on those models.
//!
//! Needs data/mnist (scripts/fetch-mnist). `cargo test --test pytorch_export
//! -- --nocapture` prints the figures table of docs/PYTORCH.md.
//!
//! `TINYCNN_PYTORCH_DIGITS` (default all 10,000): the test digits the int8
//! models are compared on; the f32 engine takes the first tenth of them. Under
//! emulation (scripts/test-aarch64) fewer do: what the other architecture must
//! show is that its kernels compute the same bytes, which the backends'
//! comparison and the shipped models' 10,000 digits there show; the f32 engine
//! and the quantiser are the same portable code on every target.

mod common;

use common::backends::assert_every_backend_agrees;
use common::{argmax, mnist_test, repo};
use safetensors::SafeTensors;
use tinycnn::mnist::load_train;
use tinycnn::{quantize, Model};

const ARCHS: [&str; 4] = ["lenet5", "mobilenetv2", "catresnet", "functional"];

fn read(name: &str) -> Vec<u8> {
    let path = repo().join("tests/fixtures/pytorch-export").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (python/tests/make_fixtures.py writes it)", path.display()))
}

struct Outputs(Vec<u8>);

impl Outputs {
    fn tensor(&self, name: &str) -> Vec<u8> {
        let st = SafeTensors::deserialize(&self.0).unwrap();
        st.tensor(name).unwrap_or_else(|e| panic!("outputs.safetensors: {name}: {e}")).data().to_vec()
    }

    fn f32s(&self, name: &str) -> Vec<f32> {
        self.tensor(name).chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
    }
}

/// The module's own output: probabilities where it ends in softmax, else the scores.
fn float_outputs<B: AsRef<[u8]>>(model: &Model<B>, pixels: &[u8]) -> Vec<f32> {
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut out = vec![0f32; pixels.len() / model.input_len() * model.output_len()];
    for (image, o) in pixels.chunks_exact(model.input_len()).zip(out.chunks_exact_mut(model.output_len())) {
        if model.graph().softmax_output {
            model.predict(&mut arena, image, o).unwrap();
        } else {
            model.run(&mut arena, image, o).unwrap();
        }
    }
    out
}

fn max_abs_error(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn top1<B: AsRef<[u8]>>(model: &Model<B>, data: &tinycnn::mnist::Dataset) -> Vec<u8> {
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut logits = vec![0f32; model.output_len()];
    (0..data.len())
        .map(|i| {
            model.run(&mut arena, data.image(i), &mut logits).unwrap();
            argmax(&logits) as u8
        })
        .collect()
}

fn agreement(a: &[u8], b: &[u8]) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}

#[test]
fn float_engine_matches_pytorch_on_random_and_trained_weights() {
    let outputs = Outputs(read("outputs.safetensors"));
    let pixels = outputs.tensor("pixels");
    for arch in ARCHS {
        for variant in ["random", "trained"] {
            let stem = format!("{arch}-{variant}");
            let model = Model::load(read(&format!("{stem}.safetensors"))).unwrap_or_else(|e| panic!("{stem}: {e}"));
            let err = max_abs_error(&float_outputs(&model, &pixels), &outputs.f32s(&stem));
            assert!(err <= 1e-4, "{stem}: max |tinycnn − PyTorch| = {err:e}");
        }
    }
}

/// Quantises each trained model as `tinycnn quantize` does and checks it
/// against PyTorch on the MNIST test set; prints the figures.
#[test]
fn quantized_models_agree_with_pytorch_on_mnist() {
    let outputs = Outputs(read("outputs.safetensors"));
    let pixels = outputs.tensor("pixels");
    let mut test = mnist_test();
    let digits = std::env::var("TINYCNN_PYTORCH_DIGITS")
        .ok()
        .map(|v| v.parse::<usize>().expect("TINYCNN_PYTORCH_DIGITS: a count"));
    test.truncate(digits.unwrap_or(test.len()).clamp(10, test.len()));
    let train = load_train(repo().join("data/mnist")).expect("data/mnist: run scripts/fetch-mnist first");
    let labels: Vec<u8> = (0..test.len()).map(|i| test.label(i)).collect();
    let mut first_tenth = mnist_test();
    first_tenth.truncate(test.len() / 10);
    println!(
        "| architecture | float max abs error vs PyTorch (random / trained) | float top-1 = PyTorch ({} digits) | int8 top-1 = PyTorch ({} digits) | int8 accuracy | PyTorch accuracy | params | MACs | int8 arena (B) |",
        first_tenth.len(),
        test.len()
    );
    println!("|---|---|---|---|---|---|---:|---:|---:|");
    for arch in ARCHS {
        let random = Model::load(read(&format!("{arch}-random.safetensors"))).unwrap();
        let float = Model::load(read(&format!("{arch}-trained.safetensors"))).unwrap();
        let torch_top1 = outputs.tensor(&format!("{arch}-trained.top1"));
        let random_err = max_abs_error(&float_outputs(&random, &pixels), &outputs.f32s(&format!("{arch}-random")));
        let trained_err = max_abs_error(&float_outputs(&float, &pixels), &outputs.f32s(&format!("{arch}-trained")));

        // The f32 engine on the first tenth of the digits (it is the slow part): only a tie
        // broken the other way by an f32 rounding could differ.
        let float_agree = agreement(&top1(&float, &first_tenth), &torch_top1[..first_tenth.len()]);
        assert!(float_agree >= 0.999, "{arch}: float top-1 agrees with PyTorch on {float_agree}");

        let calibration = (0..1000).map(|k| train.image(k * train.len() / 1000));
        let int8_bytes = quantize(&float, calibration).unwrap_or_else(|e| panic!("{arch}: quantize: {e}"));
        let int8 = Model::load(int8_bytes.as_slice()).unwrap();
        let int8_top1 = top1(&int8, &test);
        let int8_agree = agreement(&int8_top1, &torch_top1[..test.len()]);
        println!(
            "| {arch} | {random_err:.1e} / {trained_err:.1e} | {:.2} % | {:.2} % | {:.2} % | {:.2} % | {} | {} | {} |",
            100.0 * float_agree,
            100.0 * int8_agree,
            100.0 * agreement(&int8_top1, &labels),
            100.0 * agreement(&torch_top1[..test.len()], &labels),
            float.parameter_count(),
            float.macs(),
            int8.arena_bytes()
        );
        assert!(
            int8_agree >= 0.995,
            "{arch}: int8 top-1 agrees with PyTorch on {:.2} % (goal ≥ 99.5 %)",
            100.0 * int8_agree
        );

        // The integer backends run it bit for bit (the 16 fixture images).
        assert_every_backend_agrees(&format!("{arch} int8"), &int8_bytes, &pixels);
    }
}

#[test]
fn exported_names_are_the_state_dict_names() {
    let model = Model::load(read("lenet5-trained.safetensors")).unwrap();
    let names: Vec<&str> = model.graph().nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names[0], "features.0");
    assert!(names.contains(&"classifier.5"), "{names:?}");
    // LeNet was trained on x = p/255: the file says so.
    assert_eq!((model.graph().input.mean, model.graph().input.std), (0.0, 1.0));
}
