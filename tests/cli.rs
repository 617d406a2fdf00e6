//! The `tinycnn` command end to end: the built binary on the fixtures and on
//! small IDX files written here (the real MNIST files are not needed).
#![cfg(feature = "cli")]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use safetensors::SafeTensors;
use tinycnn::format::{tensors_of, write_model, TensorData};
use tinycnn::mnist::{encode_images, encode_labels};
use tinycnn::{Dtype, Model};

const BIN: &str = env!("CARGO_BIN_EXE_tinycnn");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A fresh, empty scratch directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-tests").join(test);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn tinycnn(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN).args(args).current_dir(dir).env_remove("RUST_BACKTRACE").output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn assert_success(out: &Output) -> String {
    assert!(out.status.success(), "exit {:?}\nstdout:\n{}\nstderr:\n{}", out.status, stdout(out), stderr(out));
    stdout(out)
}

/// A failure is exit status 1 and exactly one readable line on stderr.
#[track_caller]
fn assert_clean_failure(out: &Output) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "stdout:\n{}\nstderr:\n{err}", stdout(out));
    assert_eq!(err.lines().count(), 1, "not one line:\n{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err}");
    err
}

/// The value of a `key: value` line.
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}: ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("no '{key}:' line in\n{text}"))
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Deterministic pseudo-random bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 56) as u8
        })
        .collect()
}

/// Sparse "digit-like" images: mostly black with bright blobs.
fn images(n: usize, seed: u64) -> Vec<u8> {
    noise(n * 784, seed).into_iter().map(|b| if b > 200 { b } else { 0 }).collect()
}

fn labels(n: usize, seed: u64) -> Vec<u8> {
    noise(n, seed ^ 0xff).into_iter().map(|b| b % 10).collect()
}

/// Writes `n` test and `n` training images with labels into `dir` as IDX files.
fn write_mnist(dir: &Path, n: usize) -> (Vec<u8>, Vec<u8>) {
    let (test_images, test_labels) = (images(n, 1), labels(n, 1));
    fs::write(dir.join("t10k-images-idx3-ubyte"), encode_images(&test_images, 28, 28)).unwrap();
    fs::write(dir.join("t10k-labels-idx1-ubyte"), encode_labels(&test_labels)).unwrap();
    fs::write(dir.join("train-images-idx3-ubyte"), encode_images(&images(n, 2), 28, 28)).unwrap();
    fs::write(dir.join("train-labels-idx1-ubyte"), encode_labels(&labels(n, 2))).unwrap();
    (test_images, test_labels)
}

/// Predictions by the library itself (argmax of the logits, ties to the lowest index).
fn library_predictions(model: &Model, images: &[u8]) -> Vec<usize> {
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut logits = vec![0f32; model.output_len()];
    images
        .chunks_exact(784)
        .map(|image| {
            model.run(&mut arena, image, &mut logits).unwrap();
            let mut best = 0;
            for (i, &v) in logits.iter().enumerate() {
                if v > logits[best] {
                    best = i;
                }
            }
            best
        })
        .collect()
}

#[test]
fn inspect_lists_nodes_and_totals() {
    let dir = scratch("inspect");
    let path = fixture("tiny-float.safetensors");
    let text = assert_success(&tinycnn(&dir, &["inspect", path_str(&path)]));
    let model = Model::load(fs::read(&path).unwrap()).unwrap();
    assert_eq!(field(&text, "arena_bytes"), model.arena_bytes().to_string());
    assert_eq!(field(&text, "params"), model.parameter_count().to_string());
    assert_eq!(field(&text, "macs"), model.macs().to_string());
    assert_eq!(field(&text, "dtype"), "float");
    assert_eq!(field(&text, "file_bytes"), fs::metadata(&path).unwrap().len().to_string());
    for s in model.node_stats() {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(s.name.as_str()))
            .unwrap_or_else(|| panic!("no line for node {}", s.name));
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols, [s.name.as_str(), s.op, &s.output.to_string(), &s.params.to_string(), &s.macs.to_string()]);
    }
}

#[test]
fn eval_json_matches_the_library() {
    let dir = scratch("eval-json");
    let (test_images, test_labels) = write_mnist(&dir, 50);
    let path = fixture("tiny-float.safetensors");
    let out = tinycnn(&dir, &["eval", path_str(&path), "--data", ".", "--limit", "37", "--json", "--threads", "2"]);
    let text = assert_success(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(stderr(&out).is_empty(), "no progress bar with --json: {}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();

    let model = Model::load(fs::read(&path).unwrap()).unwrap();
    let predictions = library_predictions(&model, &test_images[..37 * 784]);
    let mut confusion = [[0u64; 10]; 10];
    for (p, &l) in predictions.iter().zip(&test_labels) {
        confusion[usize::from(l)][*p] += 1;
    }
    let correct: u64 = (0..10).map(|d| confusion[d][d]).sum();

    assert_eq!(report["total"], 37);
    assert_eq!(report["correct"], correct);
    let accuracy = report["accuracy"].as_f64().unwrap();
    assert!((accuracy - correct as f64 / 37.0).abs() < 1e-12);
    assert_eq!(report["confusion"], serde_json::json!(confusion));
    assert!(report["mean_us"].as_f64().unwrap() > 0.0);
    assert_eq!(report["model"], path_str(&path));
    assert_eq!(report["ensemble"], false);
}

#[test]
fn eval_text_report() {
    let dir = scratch("eval-text");
    write_mnist(&dir, 20);
    let path = fixture("tiny-float.safetensors");
    let text = assert_success(&tinycnn(&dir, &["eval", path_str(&path), "--data", "."]));
    let accuracy = field(&text, "accuracy");
    let (value, counts) = accuracy.split_once(' ').unwrap();
    let (correct, total) = counts.trim_matches(|c| c == '(' || c == ')').split_once('/').unwrap();
    let (correct, total): (u64, u64) = (correct.parse().unwrap(), total.parse().unwrap());
    assert_eq!(total, 20);
    assert_eq!(value, format!("{:.4}", correct as f64 / total as f64));
    assert_eq!(value.len(), 6, "0.XXXX");
    // Ten rows of ten counts, adding up to the total; the diagonal is the correct count.
    let rows: Vec<Vec<u64>> = text
        .lines()
        .skip_while(|l| !l.starts_with("confusion"))
        .skip(2)
        .take(10)
        .map(|l| l.split_whitespace().skip(1).map(|c| c.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 10);
    assert!(rows.iter().all(|r| r.len() == 10));
    assert_eq!(rows.iter().flatten().sum::<u64>(), total);
    assert_eq!((0..10).map(|d| rows[d][d]).sum::<u64>(), correct);
    assert!(field(&text, "mean_us").parse::<f64>().unwrap() > 0.0);
}

#[test]
fn eval_several_models_and_an_ensemble() {
    let dir = scratch("eval-ensemble");
    write_mnist(&dir, 16);
    let (a, b) = (fixture("tiny-float.safetensors"), fixture("tiny-f16.safetensors"));
    // Without --ensemble: one report per model.
    let text = assert_success(&tinycnn(&dir, &["eval", path_str(&a), path_str(&b), "--data", ".", "--json"]));
    let reports: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[1]["model"], path_str(&b));
    // `eval --ensemble A B`: one report for the ensemble.
    let text =
        assert_success(&tinycnn(&dir, &["eval", "--ensemble", path_str(&a), path_str(&b), "--data", ".", "--json"]));
    let report: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(report["ensemble"], true);
    assert_eq!(report["members"], serde_json::json!([path_str(&a), path_str(&b)]));
    assert_eq!(report["total"], 16);
}

#[test]
fn quantize_writes_a_loadable_int8_model() {
    let dir = scratch("quantize");
    let (test_images, _) = write_mnist(&dir, 40);
    let float = fixture("tiny-float.safetensors");
    let args = ["quantize", path_str(&float), "-o", "q.safetensors", "--calib-data", ".", "--calib", "25"];
    let text = assert_success(&tinycnn(&dir, &args));
    assert!(text.contains("calibration: 25 training images"), "{text}");
    assert_eq!(field(&text, "dtype"), "int8");
    let bytes = fs::read(dir.join("q.safetensors")).unwrap();
    let int8 = Model::load(bytes.clone()).unwrap();
    assert_eq!(int8.dtype(), Dtype::Int8);
    assert_eq!(field(&text, "arena_bytes"), int8.arena_bytes().to_string());

    // Deterministic: the same command writes the same bytes; a seed picks other images.
    assert_success(&tinycnn(
        &dir,
        &["quantize", path_str(&float), "-o", "q2.safetensors", "--calib-data", ".", "--calib", "25"],
    ));
    assert_eq!(fs::read(dir.join("q2.safetensors")).unwrap(), bytes);
    let seeded =
        ["quantize", path_str(&float), "-o", "q3.safetensors", "--calib-data", ".", "--calib", "25", "--seed", "3"];
    assert!(assert_success(&tinycnn(&dir, &seeded)).contains("seed 3"));
    Model::load(fs::read(dir.join("q3.safetensors")).unwrap()).unwrap();

    // The int8 file runs: inspect and eval read it, and eval agrees with the library.
    assert_eq!(field(&assert_success(&tinycnn(&dir, &["inspect", "q.safetensors"])), "dtype"), "int8");
    let text = assert_success(&tinycnn(&dir, &["eval", "q.safetensors", "--data", ".", "--json"]));
    let report: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(report["total"], 40);
    let predictions = library_predictions(&int8, &test_images);
    let labels = labels(40, 1);
    let correct = predictions.iter().zip(&labels).filter(|(p, l)| **p == usize::from(**l)).count();
    assert_eq!(report["correct"], correct);

    // Quantising an int8 model is refused.
    let err = assert_clean_failure(&tinycnn(
        &dir,
        &["quantize", "q.safetensors", "-o", "qq.safetensors", "--calib-data", "."],
    ));
    assert!(err.contains("already int8"), "{err}");
}

/// `--arch` takes the normalisation from the state dict's `"mean"`/`"std"` metadata when the
/// flags are absent; a value that is not a number is an error naming it.
#[test]
fn import_arch_reads_the_normalisation_from_metadata() {
    let dir = scratch("import-metadata");
    let bytes = fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/deepconvnet-float.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let tensors = tensors_of(&st);
    let with = |mean: &str| {
        let info =
            std::collections::HashMap::from([("mean".to_string(), mean.to_string()), ("std".into(), "0.5".into())]);
        safetensors::serialize(tensors.iter().map(|t| (t.name.as_str(), t)), Some(info)).unwrap()
    };
    fs::write(dir.join("sd.safetensors"), with("0.25")).unwrap();
    assert_success(&tinycnn(&dir, &["import", "sd.safetensors", "--arch", "deepconvnet", "-o", "m.safetensors"]));
    let model = Model::load(fs::read(dir.join("m.safetensors")).unwrap()).unwrap();
    assert_eq!((model.graph().input.mean, model.graph().input.std), (0.25, 0.5));
    fs::write(dir.join("bad.safetensors"), with("a quarter")).unwrap();
    let err = assert_clean_failure(&tinycnn(&dir, &["import", "bad.safetensors", "--arch", "deepconvnet", "-o", "x"]));
    assert!(err.contains("metadata \"mean\" is 'a quarter'"), "{err}");
}

/// tiny-float's tensors without any metadata, as `safetensors.torch.save_file` writes a state dict.
fn plain_state_dict(dir: &Path) -> (PathBuf, PathBuf) {
    let bytes = fs::read(fixture("tiny-float.safetensors")).unwrap();
    let (_, metadata) = SafeTensors::read_metadata(&bytes).unwrap();
    let graph = metadata.metadata().as_ref().unwrap()["tinycnn"].clone();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let tensors = tensors_of(&st);
    let plain = safetensors::serialize(tensors.iter().map(|t| (t.name.as_str(), t)), None).unwrap();
    assert!(Model::load(&plain[..]).is_err(), "no graph yet");
    let (weights, graph_path) = (dir.join("weights.safetensors"), dir.join("graph.json"));
    fs::write(&weights, plain).unwrap();
    fs::write(&graph_path, graph).unwrap();
    (weights, graph_path)
}

#[test]
fn import_attaches_a_graph_to_a_state_dict() {
    let dir = scratch("import");
    let (weights, graph) = plain_state_dict(&dir);
    let text = assert_success(&tinycnn(
        &dir,
        &["import", path_str(&weights), "--graph", path_str(&graph), "-o", "model.safetensors"],
    ));
    assert!(text.contains("arena_bytes: "), "{text}");
    let imported = Model::load(fs::read(dir.join("model.safetensors")).unwrap()).unwrap();
    let original = Model::load(fs::read(fixture("tiny-float.safetensors")).unwrap()).unwrap();
    let pixels = images(4, 9);
    assert_eq!(library_predictions(&imported, &pixels), library_predictions(&original, &pixels));
    assert_eq!(imported.graph(), original.graph());

    // A graph that does not fit the weights: an error naming a tensor, and no file written.
    let out = tinycnn(
        &dir,
        &[
            "import",
            path_str(&weights),
            "--arch",
            "deepconvnet",
            "--mean",
            "0",
            "--std",
            "1",
            "-o",
            "wrong.safetensors",
        ],
    );
    let err = assert_clean_failure(&out);
    assert!(err.contains("tensor '"), "{err}");
    // --arch never guesses the normalisation; one of --mean/--std alone is a usage error.
    let err = assert_clean_failure(&tinycnn(&dir, &["import", path_str(&weights), "--arch", "deepconvnet", "-o", "x"]));
    assert!(err.contains("--mean M --std S") && err.contains("metadata"), "{err}");
    let out = tinycnn(&dir, &["import", path_str(&weights), "--arch", "deepconvnet", "--mean", "0.5", "-o", "x"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(stderr(&out).contains("--std <S>"), "{}", stderr(&out));
    // --graph: the flags override the graph's normalisation.
    assert_success(&tinycnn(
        &dir,
        &[
            "import",
            path_str(&weights),
            "--graph",
            path_str(&graph),
            "--mean",
            "-0.5",
            "--std",
            "2",
            "-o",
            "n.safetensors",
        ],
    ));
    let renormalised = Model::load(fs::read(dir.join("n.safetensors")).unwrap()).unwrap();
    assert_eq!((renormalised.graph().input.mean, renormalised.graph().input.std), (-0.5, 2.0));
    let text = assert_success(&tinycnn(&dir, &["inspect", "n.safetensors"]));
    assert!(text.contains("(mean -0.5, std 2)"), "{text}");
    assert!(!dir.join("wrong.safetensors").exists());
    // Unknown architecture; neither --arch nor --graph (a usage error, exit 2).
    let err = assert_clean_failure(&tinycnn(&dir, &["import", path_str(&weights), "--arch", "lenet", "-o", "x"]));
    assert!(err.contains("deepconvnet"), "{err}");
    let err = assert_clean_failure(&tinycnn(&dir, &["import", path_str(&weights), "-o", "x"]));
    assert!(err.contains("--arch NAME or --graph FILE"), "{err}");
}

/// An int8 state dict (the shipped DeepConvNet without its stored multipliers and
/// graph) imported with its graph: the multipliers are stored again, as `quantize`
/// wrote them.
#[test]
fn import_of_an_int8_state_dict_stores_its_multipliers() {
    let dir = scratch("import-int8");
    let shipped = fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/deepconvnet-int8.safetensors")).unwrap();
    let (_, metadata) = SafeTensors::read_metadata(&shipped).unwrap();
    let graph = metadata.metadata().as_ref().unwrap()["tinycnn"].clone();
    let st = SafeTensors::deserialize(&shipped).unwrap();
    let stored = |name: &str| name.ends_with(".requant_multiplier") || name.ends_with(".requant_shift");
    let tensors: Vec<_> = tensors_of(&st).into_iter().filter(|t| !stored(&t.name)).collect();
    assert!(tensors.len() < st.len(), "the shipped model stores multipliers");
    let plain = safetensors::serialize(tensors.iter().map(|t| (t.name.as_str(), t)), None).unwrap();
    fs::write(dir.join("weights.safetensors"), plain).unwrap();
    fs::write(dir.join("graph.json"), graph).unwrap();
    assert_success(&tinycnn(&dir, &["import", "weights.safetensors", "--graph", "graph.json", "-o", "m.safetensors"]));

    let imported = fs::read(dir.join("m.safetensors")).unwrap();
    let names = |bytes: &[u8]| {
        let mut names: Vec<String> =
            SafeTensors::deserialize(bytes).unwrap().names().into_iter().map(String::from).collect();
        names.sort();
        names
    };
    assert_eq!(names(&imported), names(&shipped));
    let logits = |model: &Model| {
        let (mut arena, mut logits) = (vec![0u8; model.arena_bytes()], vec![0f32; model.output_len()]);
        model.run(&mut arena, &images(1, 9), &mut logits).unwrap();
        logits.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
    };
    assert_eq!(logits(&Model::load(imported).unwrap()), logits(&Model::load(shipped).unwrap()));
}

/// `import` of a .tflite file, then `run` on raw tensors: TFLM's bytes (the first
/// inputs of tests/data/tflm/); and `run` of a pixel model: its logits as f32.
#[test]
fn import_tflite_then_run_raw_tensors() {
    let dir = scratch("import-tflite");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tflite = root.join("models/mlperf-tiny/kws_ref_model.tflite");
    let text = assert_success(&tinycnn(&dir, &["import", path_str(&tflite), "-o", "kws.safetensors"]));
    assert!(text.contains("depthwise_conv_2d_1  conv2d"), "{text}");
    assert!(text.contains("output: 12 int8 values from 'softmax_12'"), "{text}");
    assert_eq!(field(&text, "arena_bytes"), "16000");

    // The all −128 and all 127 inputs of the TFLM reference (inputs 200 and 201).
    let want = fs::read(root.join("tests/data/tflm/kws_ref_model.out")).unwrap();
    let mut input = vec![0x80u8; 490];
    input.extend([0x7fu8; 490]);
    fs::write(dir.join("in.bin"), &input).unwrap();
    assert_success(&tinycnn(&dir, &["run", "kws.safetensors", "in.bin", "-o", "out.bin"]));
    assert_eq!(fs::read(dir.join("out.bin")).unwrap(), want[200 * 12..202 * 12]);

    // Pixels in, f32 logits out, as the library's `run` gives them.
    let pixels = images(3, 5);
    fs::write(dir.join("digits.bin"), &pixels).unwrap();
    let model_path = root.join("models/deepconvnet-int8.safetensors");
    assert_success(&tinycnn(&dir, &["run", path_str(&model_path), "digits.bin", "-o", "logits.bin"]));
    let model = Model::load(fs::read(&model_path).unwrap()).unwrap();
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut want = Vec::new();
    for image in pixels.chunks_exact(784) {
        let mut logits = [0f32; 10];
        model.run(&mut arena, image, &mut logits).unwrap();
        want.extend(logits.iter().flat_map(|v| v.to_le_bytes()));
    }
    assert_eq!(fs::read(dir.join("logits.bin")).unwrap(), want);

    // An input that is not whole tensors: one line naming the sizes, nothing written.
    fs::write(dir.join("short.bin"), [0u8; 100]).unwrap();
    let err = assert_clean_failure(&tinycnn(&dir, &["run", "kws.safetensors", "short.bin", "-o", "none.bin"]));
    assert!(err.contains("100 bytes is not a whole number of 490-byte inputs"), "{err}");
    assert!(!dir.join("none.bin").exists());
    // A .tflite with a graph given too.
    let err = assert_clean_failure(&tinycnn(&dir, &["import", path_str(&tflite), "--arch", "deepconvnet", "-o", "x"]));
    assert!(err.contains("brings its own graph"), "{err}");
}

#[test]
fn predict_reads_image_files() {
    let dir = scratch("predict");
    // A dark "1" on light paper, off centre, as a phone photo would give.
    let png = image::GrayImage::from_fn(60, 90, |x, y| {
        let ink = (28..34).contains(&x) && (15..75).contains(&y);
        image::Luma([if ink { 20 } else { 235 }])
    });
    png.save(dir.join("one.png")).unwrap();
    // And an MNIST-style 28x28 PGM used as is.
    let raw = image::GrayImage::from_fn(28, 28, |x, y| {
        image::Luma([if (13..15).contains(&x) && (4..24).contains(&y) { 255 } else { 0 }])
    });
    raw.save(dir.join("raw.pgm")).unwrap();
    let model = fixture("tiny-float.safetensors");
    for args in [vec!["predict", path_str(&model), "one.png"], vec!["predict", path_str(&model), "--raw", "raw.pgm"]] {
        let text = assert_success(&tinycnn(&dir, &args));
        let digit: usize = field(&text, "digit").parse().unwrap();
        let probabilities: Vec<f32> = field(&text, "probabilities").split(' ').map(|p| p.parse().unwrap()).collect();
        assert_eq!(probabilities.len(), 10);
        assert!((probabilities.iter().sum::<f32>() - 1.0).abs() < 0.01);
        assert!(probabilities.iter().all(|&p| p <= probabilities[digit]));
    }
    // A blank image has no digit; a file that is no image cannot be decoded.
    image::GrayImage::from_pixel(40, 40, image::Luma([255])).save(dir.join("blank.png")).unwrap();
    assert_clean_failure(&tinycnn(&dir, &["predict", path_str(&model), "blank.png"]));
    fs::write(dir.join("junk.png"), noise(10, 3)).unwrap();
    assert!(assert_clean_failure(&tinycnn(&dir, &["predict", path_str(&model), "junk.png"])).contains("junk.png"));
}

#[test]
fn bench_reports_latency() {
    let dir = scratch("bench");
    let model = fixture("tiny-float.safetensors");
    let text = assert_success(&tinycnn(&dir, &["bench", path_str(&model), "--iters", "50", "--warmup", "5"]));
    let median: f64 = field(&text, "median_us").parse().unwrap();
    let p90: f64 = field(&text, "p90_us").parse().unwrap();
    let mean: f64 = field(&text, "mean_us").parse().unwrap();
    assert!(median > 0.0 && median <= p90 && mean > 0.0, "{text}");
    assert_eq!(field(&text, "input"), "pseudo-random pixels");
    assert_eq!(field(&text, "iters"), "50");
    assert!(!field(&text, "kernel").is_empty(), "{text}");
}

#[test]
fn bench_splits_the_time_by_layer() {
    let dir = scratch("bench-layers");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/deepconvnet-int8.safetensors");
    let text =
        assert_success(&tinycnn(&dir, &["bench", path_str(&model), "--iters", "20", "--warmup", "2", "--layers"]));
    let layers: Vec<&str> = text.lines().skip_while(|l| !l.starts_with("layers")).skip(1).collect();
    // One line per computed value: the input, then every node but the softmax.
    let names: Vec<&str> = layers.iter().filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(names.first(), Some(&"input"), "{text}");
    for node in ["conv1", "conv6", "pool3", "fc1", "fc2"] {
        assert!(names.contains(&node), "{node} missing:\n{text}");
    }
    assert!(!names.contains(&"softmax"), "{text}");
    let shares: f64 =
        layers.iter().filter_map(|l| l.split_whitespace().last()?.strip_suffix('%')?.parse::<f64>().ok()).sum();
    assert!((shares - 100.0).abs() < 1.0, "shares sum to {shares}:\n{text}");
}

#[test]
fn bad_inputs_give_one_line_errors() {
    let dir = scratch("errors");
    write_mnist(&dir, 5);
    fs::write(dir.join("bad.safetensors"), noise(10, 7)).unwrap();
    let model = fixture("tiny-float.safetensors");

    let err = assert_clean_failure(&tinycnn(&dir, &["inspect", "missing.safetensors"]));
    assert!(err.contains("missing.safetensors"), "{err}");
    let err = assert_clean_failure(&tinycnn(&dir, &["inspect", "bad.safetensors"]));
    assert!(err.contains("bad.safetensors") && err.contains("safetensors"), "{err}");
    for command in ["eval", "bench"] {
        assert_clean_failure(&tinycnn(&dir, &[command, "bad.safetensors", "--data", "."]));
    }
    assert_clean_failure(&tinycnn(&dir, &["predict", "bad.safetensors", "x.png"]));
    assert_clean_failure(&tinycnn(&dir, &["quantize", "bad.safetensors", "-o", "q.safetensors"]));
    assert_clean_failure(&tinycnn(
        &dir,
        &["import", "bad.safetensors", "--arch", "deepconvnet", "--mean", "0", "--std", "1", "-o", "m.safetensors"],
    ));

    // Missing or malformed data.
    let err = assert_clean_failure(&tinycnn(&dir, &["eval", path_str(&model), "--data", "nowhere"]));
    assert!(err.contains("t10k-images-idx3-ubyte"), "{err}");
    let images = fs::read(dir.join("t10k-images-idx3-ubyte")).unwrap();
    fs::write(dir.join("t10k-images-idx3-ubyte"), &images[..images.len() - 100]).unwrap();
    let err = assert_clean_failure(&tinycnn(&dir, &["eval", path_str(&model), "--data", "."]));
    assert!(err.contains("truncated"), "{err}");
    fs::write(dir.join("t10k-images-idx3-ubyte"), noise(64, 1)).unwrap();
    let err = assert_clean_failure(&tinycnn(&dir, &["eval", path_str(&model), "--data", "."]));
    assert!(err.contains("magic"), "{err}");

    // A model that does not read 28x28 digits: a clear error, not a crash.
    let graph = r#"{"format":1,"input":{"channels":1,"height":8,"width":8},
        "nodes":[{"name":"flat","op":"flatten","inputs":["input"]},{"name":"fc","op":"dense","inputs":["flat"]}]}"#;
    let small = write_model(graph, &[TensorData::f32("fc.weight".into(), vec![10, 64], &[0.01; 640])]).unwrap();
    fs::write(dir.join("small.safetensors"), small).unwrap();
    write_mnist(&dir, 5);
    let err = assert_clean_failure(&tinycnn(&dir, &["eval", "small.safetensors", "--data", "."]));
    assert!(err.contains("1x8x8"), "{err}");
    // ...though it can be inspected and benchmarked.
    assert_success(&tinycnn(&dir, &["inspect", "small.safetensors"]));
    assert_success(&tinycnn(&dir, &["bench", "small.safetensors", "--iters", "3", "--data", "."]));

    // Usage errors are clap's: exit status 2.
    assert_eq!(tinycnn(&dir, &["eval"]).status.code(), Some(2));
    assert_eq!(tinycnn(&dir, &["bench", path_str(&model), "--iters", "0"]).status.code(), Some(2));
}

#[cfg(feature = "gpu")]
#[test]
fn eval_and_bench_on_the_gpu_backend() {
    let dir = scratch("gpu");
    write_mnist(&dir, 60);
    let float = fixture("tiny-float.safetensors");
    assert_success(&tinycnn(&dir, &["quantize", path_str(&float), "-o", "q.safetensors", "--calib-data", "."]));
    let cpu = assert_success(&tinycnn(&dir, &["eval", "q.safetensors", "--data", ".", "--json"]));
    let out = tinycnn(&dir, &["eval", "q.safetensors", "--data", ".", "--json", "--backend", "gpu"]);
    let gpu = assert_success(&out);
    assert!(!stderr(&out).contains("falling back"), "no GPU adapter: install mesa-vulkan-drivers\n{}", stderr(&out));
    let (cpu, gpu): (serde_json::Value, serde_json::Value) =
        (serde_json::from_str(cpu.trim()).unwrap(), serde_json::from_str(gpu.trim()).unwrap());
    // Bit-identical engines: the same predictions, so the same confusion matrix.
    assert_eq!(gpu["confusion"], cpu["confusion"]);
    assert_eq!(gpu["total"], 60);

    let text = assert_success(&tinycnn(&dir, &["bench", "q.safetensors", "--backend", "gpu", "--repeats", "1"]));
    for batch in [1, 64, 1024] {
        assert!(text.contains(&format!("batch {batch}: gpu_images_per_s: ")), "{text}");
    }
    let err = assert_clean_failure(&tinycnn(
        &dir,
        &["eval", "q.safetensors", "q.safetensors", "--ensemble", "--data", ".", "--backend", "gpu"],
    ));
    assert!(err.contains("single models"), "{err}");
}
