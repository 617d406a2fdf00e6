//! Hostile `.tflite` files: each breaks one thing in a small valid model
//! (built here with the TFLite schema's generated builder) and must be refused
//! with a typed error that names what is wrong: never a panic, never a
//! silently different network. Also every prefix of a real model (truncation).

use tinycnn::internals::tflite::import;
use tinycnn::internals::tflite::schema_generated::tflite as fb;
use tinycnn::{Error, Model};

#[derive(Clone)]
struct TensorSpec {
    name: &'static str,
    shape: Vec<i32>,
    dtype: fb::TensorType,
    buffer: u32,
    scales: Vec<f32>,
    zero_points: Vec<i64>,
    dimension: i32,
}

#[derive(Clone)]
struct OpSpec {
    opcode_index: u32,
    inputs: Vec<i32>,
    outputs: Vec<i32>,
    stride: (i32, i32),
    padding: fb::Padding,
    activation: fb::ActivationFunctionType,
}

#[derive(Clone)]
struct Spec {
    codes: Vec<fb::BuiltinOperator>,
    tensors: Vec<TensorSpec>,
    buffers: Vec<Vec<u8>>,
    ops: Vec<OpSpec>,
    inputs: Vec<i32>,
    outputs: Vec<i32>,
    subgraphs: usize,
}

fn activation(name: &'static str, shape: Vec<i32>, scale: f32, zero_point: i64) -> TensorSpec {
    TensorSpec {
        name,
        shape,
        dtype: fb::TensorType::INT8,
        buffer: 0,
        scales: vec![scale],
        zero_points: vec![zero_point],
        dimension: 0,
    }
}

/// A 1×1 convolution, 2 → 3 channels on 4×4, per-channel weights, a bias, then a fused relu.
fn valid() -> Spec {
    let weights: Vec<u8> = [10i8, -20, 30, 40, -127, 127].iter().map(|&w| w as u8).collect();
    let bias: Vec<u8> = [100i32, -50, 7].iter().flat_map(|b| b.to_le_bytes()).collect();
    Spec {
        codes: vec![fb::BuiltinOperator::CONV_2D],
        tensors: vec![
            activation("x", vec![1, 4, 4, 2], 0.5, -3),
            TensorSpec {
                name: "w",
                shape: vec![3, 1, 1, 2],
                dtype: fb::TensorType::INT8,
                buffer: 1,
                scales: vec![0.01, 0.02, 0.03],
                zero_points: vec![0, 0, 0],
                dimension: 0,
            },
            TensorSpec {
                name: "b",
                shape: vec![3],
                dtype: fb::TensorType::INT32,
                buffer: 2,
                scales: vec![0.005, 0.01, 0.015],
                zero_points: vec![0, 0, 0],
                dimension: 0,
            },
            activation("y", vec![1, 4, 4, 3], 0.25, 5),
        ],
        buffers: vec![Vec::new(), weights, bias],
        ops: vec![OpSpec {
            opcode_index: 0,
            inputs: vec![0, 1, 2],
            outputs: vec![3],
            stride: (1, 1),
            padding: fb::Padding::VALID,
            activation: fb::ActivationFunctionType::RELU,
        }],
        inputs: vec![0],
        outputs: vec![3],
        subgraphs: 1,
    }
}

fn build(spec: &Spec) -> Vec<u8> {
    let mut fbb = flatbuffers::FlatBufferBuilder::new();
    let tensors: Vec<_> = spec
        .tensors
        .iter()
        .map(|t| {
            let shape = Some(fbb.create_vector(&t.shape));
            let name = Some(fbb.create_string(t.name));
            let scale = Some(fbb.create_vector(&t.scales));
            let zero_point = Some(fbb.create_vector(&t.zero_points));
            let q = fb::QuantizationParametersArgs {
                scale,
                zero_point,
                quantized_dimension: t.dimension,
                ..Default::default()
            };
            let quantization = Some(fb::QuantizationParameters::create(&mut fbb, &q));
            let args =
                fb::TensorArgs { shape, type_: t.dtype, buffer: t.buffer, name, quantization, ..Default::default() };
            fb::Tensor::create(&mut fbb, &args)
        })
        .collect();
    let ops: Vec<_> = spec
        .ops
        .iter()
        .map(|op| {
            let options = fb::Conv2DOptionsArgs {
                padding: op.padding,
                stride_h: op.stride.0,
                stride_w: op.stride.1,
                fused_activation_function: op.activation,
                dilation_h_factor: 1,
                dilation_w_factor: 1,
            };
            let options = fb::Conv2DOptions::create(&mut fbb, &options).as_union_value();
            let args = fb::OperatorArgs {
                opcode_index: op.opcode_index,
                inputs: Some(fbb.create_vector(&op.inputs)),
                outputs: Some(fbb.create_vector(&op.outputs)),
                builtin_options_type: fb::BuiltinOptions::Conv2DOptions,
                builtin_options: Some(options),
                ..Default::default()
            };
            fb::Operator::create(&mut fbb, &args)
        })
        .collect();
    let tensors = fbb.create_vector(&tensors);
    let operators = fbb.create_vector(&ops);
    let inputs = fbb.create_vector(&spec.inputs);
    let outputs = fbb.create_vector(&spec.outputs);
    let subgraph_args = fb::SubGraphArgs {
        tensors: Some(tensors),
        inputs: Some(inputs),
        outputs: Some(outputs),
        operators: Some(operators),
        ..Default::default()
    };
    let subgraph = fb::SubGraph::create(&mut fbb, &subgraph_args);
    let subgraphs = fbb.create_vector(&vec![subgraph; spec.subgraphs]);
    let codes: Vec<_> = spec
        .codes
        .iter()
        .map(|&code| {
            let deprecated_builtin_code = code.0.min(127) as i8;
            let args =
                fb::OperatorCodeArgs { deprecated_builtin_code, builtin_code: code, version: 1, ..Default::default() };
            fb::OperatorCode::create(&mut fbb, &args)
        })
        .collect();
    let codes = fbb.create_vector(&codes);
    let buffers: Vec<_> = spec
        .buffers
        .iter()
        .map(|data| {
            let data = Some(fbb.create_vector(data));
            fb::Buffer::create(&mut fbb, &fb::BufferArgs { data })
        })
        .collect();
    let buffers = fbb.create_vector(&buffers);
    let args = fb::ModelArgs {
        version: 3,
        operator_codes: Some(codes),
        subgraphs: Some(subgraphs),
        buffers: Some(buffers),
        ..Default::default()
    };
    let model = fb::Model::create(&mut fbb, &args);
    fb::finish_model_buffer(&mut fbb, model);
    fbb.finished_data().to_vec()
}

/// The error `spec` gets, checked to be typed and non-internal.
fn refused(what: &str, spec: &Spec) -> Error {
    let bytes = build(spec);
    match import(&bytes) {
        Ok(_) => panic!("{what}: imported"),
        Err(Error::Internal(e)) => panic!("{what}: internal error {e}"),
        Err(e) => e,
    }
}

fn assert_refused(what: &str, spec: &Spec, expected: &[&str]) {
    let message = refused(what, spec).to_string();
    for part in expected {
        assert!(message.contains(part), "{what}: the error\n  {message}\ndoes not say '{part}'");
    }
}

#[test]
fn the_small_model_imports_and_computes_its_convolution() {
    let imported = import(&build(&valid())).unwrap();
    let model = Model::load(imported.file).unwrap();
    assert_eq!(imported.origins, vec![("conv_2d_0".to_string(), 0, "CONV_2D")]);
    let input: Vec<i8> = (0..32).map(|i| (i * 7 % 256 - 128) as i8).collect();
    let mut out = vec![0i8; 48];
    model.run_int8(&mut vec![0u8; model.arena_bytes()], &input, &mut out).unwrap();
    // out = relu(5 + (Σ (x + 3)·w·0.5·s_w + b·0.5·s_w) / 0.25), rounded: within one step of the real value.
    let (w, b, s) = ([[10.0, -20.0], [30.0, 40.0], [-127.0, 127.0]], [100.0, -50.0, 7.0], [0.01, 0.02, 0.03]);
    for p in 0..16 {
        for o in 0..3 {
            let acc: f64 = (0..2).map(|i| (f64::from(input[p * 2 + i]) + 3.0) * w[o][i]).sum::<f64>() + b[o];
            let real = (5.0 + acc * 0.5 * s[o] / 0.25).clamp(5.0, 127.0);
            let got = f64::from(out[p * 3 + o]);
            assert!((got - real).abs() <= 0.5 + 1e-9, "pixel {p} channel {o}: {got} vs {real}");
        }
    }
}

/// A fused activation is a node only where it changes an int8 value: RELU6 on an
/// output quantised on [0, 6] is none; on one quantised wider, a clamp node.
#[test]
fn fused_activations_that_change_nothing_are_no_node() {
    let nodes = |activation, scale: f32, zero_point| {
        let mut s = valid();
        s.ops[0].activation = activation;
        s.tensors[3].scales = vec![scale];
        s.tensors[3].zero_points = vec![zero_point];
        let model = Model::load(import(&build(&s)).unwrap().file).unwrap();
        model.graph().nodes.iter().map(|n| n.name.clone()).collect::<Vec<_>>()
    };
    let relu6 = fb::ActivationFunctionType::RELU6;
    assert_eq!(nodes(relu6, 6.0 / 255.0, -128), ["conv_2d_0"]);
    assert_eq!(nodes(relu6, 0.25, 5), ["conv_2d_0", "conv_2d_0_relu6"]);
    // RELU with the zero point at −128 changes nothing either; above it, the conv's `relu`.
    assert_eq!(nodes(fb::ActivationFunctionType::RELU, 0.25, -128), ["conv_2d_0"]);
}

/// `valid()` with a RESHAPE (opcode 1) of tensor `from` into a new tensor of `shape`,
/// before the conv (`from` = 0, the input: the conv then reads it) or after it (`from` = 3).
fn with_reshape(from: i32, shape: Vec<i32>) -> Spec {
    let mut s = valid();
    s.codes.push(fb::BuiltinOperator::RESHAPE);
    let quant = &s.tensors[from as usize];
    s.tensors.push(TensorSpec { name: "reshaped", shape, ..quant.clone() });
    let reshape = OpSpec { opcode_index: 1, inputs: vec![from, 4], outputs: vec![4], ..s.ops[0].clone() };
    if from == 0 {
        s.ops[0].inputs[0] = 4;
        s.ops.insert(0, reshape);
    } else {
        s.ops.push(reshape);
        s.outputs = vec![4];
    }
    s
}

/// A RESHAPE moves no byte (NHWC row-major, as tinycnn's int8 values): one of the
/// input that only it reads declares the input in its new shape, one that keeps
/// tinycnn's C×H×W shape is no node; both compute what the model without it does.
/// A reshape to another image shape, or to another element count, is refused.
#[test]
fn reshapes_that_move_no_byte() {
    let run = |spec: &Spec| {
        let model = Model::load(import(&build(spec)).unwrap().file).unwrap();
        let input: Vec<i8> = (0..32).map(|i| (i * 37 % 256 - 128) as i8).collect();
        let mut out = vec![0i8; 48];
        model.run_int8(&mut vec![0u8; model.arena_bytes()], &input, &mut out).unwrap();
        (model.input_shape(), model.graph().nodes.len(), out)
    };
    let (shape, nodes, want) = run(&valid());
    // [1, 32] → [1, 4, 4, 2]: the input becomes 2×4×4.
    let mut flat_input = with_reshape(0, vec![1, 4, 4, 2]);
    flat_input.tensors[0].shape = vec![1, 32];
    assert_eq!(run(&flat_input), (shape, nodes, want.clone()));
    // [1, 4, 4, 3] → the same shape: no node.
    assert_eq!(run(&with_reshape(3, vec![1, 4, 4, 3])), (shape, nodes, want));

    assert_refused(
        "another image shape",
        &with_reshape(3, vec![1, 16, 3]),
        &["operator 1 (RESHAPE)", "new_shape", "[1, 16, 3]"],
    );
    assert_refused(
        "another element count",
        &with_reshape(3, vec![1, 4, 4, 2]),
        &["operator 1 (RESHAPE)", "element count"],
    );
    let mut read_twice = with_reshape(0, vec![1, 4, 4, 2]);
    read_twice.tensors[0].shape = vec![1, 32];
    read_twice.ops[1].inputs[0] = 0; // the conv reads the flat input too
    assert_refused("an input read twice", &read_twice, &["operator 0 (RESHAPE)", "new_shape", "[1, 4, 4, 2]"]);
}

#[test]
fn not_a_flatbuffer() {
    for bytes in [&b""[..], b"TFL3", b"\x10\0\0\0TFL3\0\0\0\0\0\0\0\0", &[0xffu8; 64]] {
        let e = import(bytes).unwrap_err();
        assert!(matches!(e, Error::Tflite { .. }), "{e:?}");
    }
}

#[test]
fn every_truncation_of_a_real_model_is_refused() {
    let bytes = std::fs::read("models/mlperf-tiny/kws_ref_model.tflite").unwrap();
    for len in (0..bytes.len()).step_by(61).chain([bytes.len() - 1]) {
        let e = import(&bytes[..len]).unwrap_err();
        assert!(matches!(e, Error::Tflite { .. }), "prefix of {len} bytes: {e:?}");
    }
}

#[test]
fn indices_out_of_range() {
    let mut s = valid();
    s.ops[0].inputs[1] = 99;
    assert_refused("op input index", &s, &["operator 0 (CONV_2D)", "tensor index 99"]);
    let mut s = valid();
    s.ops[0].outputs[0] = -2;
    assert_refused("negative op output index", &s, &["operator 0", "tensor index -2"]);
    let mut s = valid();
    s.inputs = vec![7];
    assert_refused("subgraph input index", &s, &["subgraph inputs", "tensor index 7"]);
    let mut s = valid();
    s.tensors[1].buffer = 9;
    assert_refused("buffer index", &s, &["tensor 1 'w'", "buffer 9"]);
    let mut s = valid();
    s.ops[0].opcode_index = 3;
    assert_refused("opcode index", &s, &["operator 0", "opcode index 3"]);
}

#[test]
fn cycles_and_reads_before_writes() {
    let mut s = valid();
    s.ops[0].inputs[0] = 3; // the op reads its own output
    assert_refused("self loop", &s, &["operator 0", "read before any operator writes it"]);
    let mut s = valid();
    s.ops[0].inputs[0] = 1; // a constant as the activation
    assert_refused("constant activation", &s, &["operator 0", "constant"]);
}

#[test]
fn shapes_that_do_not_fit() {
    let mut s = valid();
    s.buffers[1].pop();
    assert_refused("short weight buffer", &s, &["tensor 1 'w'", "5 bytes"]);
    let mut s = valid();
    s.tensors[0].shape = vec![1, 100_000, 4, 2];
    assert_refused("absurd dimension", &s, &["tensor 0 'x'", "dimension 100000"]);
    let mut s = valid();
    s.tensors[0].shape = vec![1, 65_536, 65_536, 2];
    assert!(matches!(refused("huge tensor", &s), Error::LimitExceeded { .. }));
    let mut s = valid();
    s.tensors[0].shape = vec![1, 4, 4, 2, 1];
    assert_refused("rank 5", &s, &["rank 5"]);
    let mut s = valid();
    s.tensors[3].shape = vec![1, 4, 5, 3];
    assert_refused("output size", &s, &["operator 0", "TFLite's padding gives 4"]);
    let mut s = valid();
    s.tensors[0].shape = vec![1, 4, 4, 3]; // the filter takes 2 channels
    assert_refused("channel count", &s, &["operator 0"]);
}

#[test]
fn quantisation_that_does_not_fit() {
    let mut s = valid();
    s.tensors[1].scales.pop();
    s.tensors[1].zero_points.pop();
    assert_refused("two scales for three channels", &s, &["tensor 1 'w'", "2 scales"]);
    let mut s = valid();
    s.tensors[1].zero_points = vec![0, 0];
    assert_refused("zero points and scales differ in length", &s, &["tensor 1 'w'", "2 zero points"]);
    let mut s = valid();
    s.tensors[1].zero_points = vec![0, 1, 0];
    assert_refused("asymmetric weights", &s, &["operator 0 (CONV_2D) weight", "zero point 1"]);
    let mut s = valid();
    s.tensors[3].zero_points = vec![300];
    assert_refused("zero point out of int8", &s, &["zero point 300"]);
    let mut s = valid();
    s.tensors[3].scales = vec![f32::NAN];
    assert_refused("NaN scale", &s, &["tensor 3 'y'", "scale NaN"]);
    let mut s = valid();
    s.buffers[1][2] = 0x80;
    assert_refused("weight -128", &s, &["weight tensor 1", "-128"]);
}

#[test]
fn what_tinycnn_does_not_run_is_named() {
    let mut s = valid();
    s.codes = vec![fb::BuiltinOperator::CONCATENATION];
    assert_refused("unsupported op", &s, &["operator 0 (CONCATENATION)", "does not run this op", "CONV_2D"]);
    let mut s = valid();
    s.codes = vec![fb::BuiltinOperator(200)];
    assert_refused("unknown builtin", &s, &["operator 0", "does not run this op"]);
    let mut s = valid();
    s.ops[0].activation = fb::ActivationFunctionType::TANH;
    assert_refused("fused tanh", &s, &["operator 0 (CONV_2D)", "fused_activation_function = TANH"]);
    let mut s = valid();
    s.ops[0].stride = (1, 2);
    assert_refused("unequal strides", &s, &["operator 0 (CONV_2D)", "stride_h/stride_w = 1/2"]);
    let mut s = valid();
    for t in &mut s.tensors {
        t.dtype = fb::TensorType::FLOAT32;
    }
    s.buffers[1] = vec![0; 24];
    s.buffers[2] = vec![0; 12];
    assert_refused("a float model", &s, &["FLOAT32", "int8"]);
    let mut s = valid();
    s.subgraphs = 2;
    assert_refused("two subgraphs", &s, &["2 subgraphs"]);
    let mut s = valid();
    s.outputs = vec![3, 0];
    assert_refused("two outputs", &s, &["2 outputs"]);
}

/// Writes the valid model and one hostile variant per kind of fault as seeds of
/// the `import_tflite` fuzz target (fuzz/corpus/import_tflite/, committed;
/// tests/fuzz_corpus.rs replays them). `cargo test --features tflite --test
/// tflite_errors -- --ignored` rewrites them.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new("fuzz/corpus/import_tflite");
    std::fs::create_dir_all(dir).unwrap();
    let mut cases: Vec<(&str, Spec)> = vec![("valid", valid())];
    let mut case = |name: &'static str, edit: fn(&mut Spec)| {
        let mut s = valid();
        edit(&mut s);
        cases.push((name, s));
    };
    case("input-index", |s| s.ops[0].inputs[1] = 99);
    case("buffer-index", |s| s.tensors[1].buffer = 9);
    case("short-buffer", |s| s.buffers[1].truncate(5));
    case("self-loop", |s| s.ops[0].inputs[0] = 3);
    case("huge-shape", |s| s.tensors[0].shape = vec![1, 65_536, 65_536, 2]);
    case("scales", |s| s.tensors[1].scales.truncate(2));
    case("unknown-op", |s| s.codes = vec![fb::BuiltinOperator(200)]);
    case("same-padding", |s| s.ops[0].padding = fb::Padding::SAME);
    case("relu6", |s| s.ops[0].activation = fb::ActivationFunctionType::RELU6);
    for (name, spec) in &cases {
        std::fs::write(dir.join(format!("{name}.tflite")), build(spec)).unwrap();
    }
}
