//! Every int8 op of the integer engine against a float simulation of the same
//! quantised op: dequantise the int8 inputs (and weights), compute in f32 with
//! the float kernels, quantise the result. The two may differ by rounding only:
//! at most one step of the output scale.
//!
//! The model is the PyTorch fixture (every op) quantised by tinycnn; the
//! activations are those the integer engine produced on the fixture's images.

mod common;

use common::{fixture, Fixture};
use safetensors::SafeTensors;
use tinycnn::format::Op;
use tinycnn::internals::kernels::{float as fk, Conv2dGeometry, Shape};
use tinycnn::quantize;
use tinycnn::Model;

fn f32s(st: &SafeTensors, name: &str) -> Vec<f32> {
    st.tensor(name).unwrap().data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

fn i32s(st: &SafeTensors, name: &str) -> Vec<i32> {
    st.tensor(name).unwrap().data().chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().unwrap())).collect()
}

/// H×W×C int8 → C×H×W real values.
fn dequantize(q: &[i8], shape: Shape, scale: f32, zero_point: i32) -> Vec<f32> {
    let mut out = vec![0f32; q.len()];
    for p in 0..shape.h * shape.w {
        for c in 0..shape.c {
            out[c * shape.h * shape.w + p] = (i32::from(q[p * shape.c + c]) - zero_point) as f32 * scale;
        }
    }
    out
}

#[test]
fn int8_ops_match_their_float_simulation() {
    let fx = Fixture::load();
    let float = Model::load(fixture("tiny-float.safetensors")).unwrap();
    let images: Vec<&[u8]> = (0..fx.count).map(|i| fx.image(i)).collect();
    let checked = check_against_float_simulation(&float, &images);
    for op in ["conv2d", "dense", "maxpool2d", "avgpool2d", "global_avgpool", "add", "concat", "flatten"] {
        assert!(checked.contains_key(op), "{op} was not checked: {checked:?}");
    }
}

/// Grouped, depthwise (with a depth multiplier) and dilated convolutions, from a float
/// model through the quantiser, against the float simulation.
#[test]
fn grouped_convolutions_match_their_float_simulation() {
    use common::nets::Rng;
    use tinycnn::format::{write_model, TensorData};

    let mut rng = Rng::new(11);
    let graph = serde_json::json!({
        "format": 1,
        "input": {"channels": 1, "height": 9, "width": 9, "mean": 0.5, "std": 0.25},
        "nodes": [
            {"name": "stem", "op": "conv2d", "inputs": ["input"], "padding": 1},
            {"name": "depthwise", "op": "conv2d", "inputs": ["stem"], "groups": 4, "padding": 1, "relu": true},
            {"name": "dilated", "op": "conv2d", "inputs": ["depthwise"], "dilation": 2, "padding": 2},
            {"name": "grouped", "op": "conv2d", "inputs": ["dilated"], "groups": 2, "stride": 2, "dilation": 2},
            // TFLite's SAME for a 3×3 window at stride 2 on 4×4: the one padding row and column go below and right.
            {"name": "same", "op": "conv2d", "inputs": ["grouped"], "stride": 2, "pads": [0, 0, 1, 1]},
            {"name": "flat", "op": "flatten", "inputs": ["same"]},
            {"name": "fc", "op": "dense", "inputs": ["flat"]},
        ],
    });
    let mut weights = |n: usize| -> Vec<f32> { (0..n).map(|_| (rng.f64() * 2.0 - 1.0) as f32).collect() };
    let tensors = [
        TensorData::f32("stem.weight".into(), vec![4, 1, 3, 3], &weights(36)),
        // depth multiplier 2: 8 outputs, 2 per input channel.
        TensorData::f32("depthwise.weight".into(), vec![8, 1, 3, 3], &weights(72)),
        TensorData::f32("depthwise.bias".into(), vec![8], &weights(8)),
        TensorData::f32("dilated.weight".into(), vec![8, 8, 3, 3], &weights(576)),
        // 9×9 → (9 − 3)/2 + 1 = 4 with the 2×2 kernel spread to 3×3.
        TensorData::f32("grouped.weight".into(), vec![6, 4, 2, 2], &weights(96)),
        // 3×3 at stride 2 on 4×4: SAME pads 1 in all, below and right: (4 + 1 − 3)/2 + 1 = 2.
        TensorData::f32("same.weight".into(), vec![5, 6, 3, 3], &weights(270)),
        TensorData::f32("fc.weight".into(), vec![3, 20], &weights(60)),
    ];
    let float = Model::load(write_model(&graph.to_string(), &tensors).unwrap()).unwrap();
    let images: Vec<Vec<u8>> = (0..24).map(|_| rng.bytes(81)).collect();
    let images: Vec<&[u8]> = images.iter().map(Vec::as_slice).collect();
    let checked = check_against_float_simulation(&float, &images);
    assert_eq!(checked.get("conv2d"), Some(&(5 * images.len())), "{checked:?}");
}

/// Quantises `float` on `images`, then checks every int8 node of the result on
/// those images against its float simulation; returns how often each op was checked.
fn check_against_float_simulation(float: &Model, images: &[&[u8]]) -> std::collections::BTreeMap<&'static str, usize> {
    let bytes = quantize(float, images.iter().copied()).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let model = Model::load(&bytes[..]).unwrap();
    let graph = model.graph();

    let mut arena = vec![0u8; model.arena_bytes()];
    let mut logits = vec![0f32; model.output_len()];
    let mut checked = std::collections::BTreeMap::<&'static str, usize>::new();
    for image in images {
        let mut acts: Vec<Vec<i8>> = vec![Vec::new(); graph.nodes.len() + 1];
        model.run_int8_observed(&mut arena, image, &mut logits, &mut |v, data| acts[v] = data.to_vec()).unwrap();

        for (i, node) in graph.nodes.iter().enumerate() {
            if matches!(node.op, Op::Softmax { .. }) {
                continue;
            }
            let out_shape = model.shape(i + 1);
            let q_out = model.quant(i + 1).unwrap();
            let real_in: Vec<Vec<f32>> = node
                .inputs
                .iter()
                .map(|&v| {
                    let q = model.quant(v).unwrap();
                    dequantize(&acts[v], model.shape(v), q.scale, q.zero_point)
                })
                .collect();
            let in_scale = model.quant(node.inputs[0]).unwrap().scale;
            let mut expected = vec![0f32; out_shape.len()];
            let name = |p: &str| format!("{}.{p}", node.name);
            let weights_real = || -> (Vec<f32>, Vec<f32>) {
                let w: Vec<i8> = st.tensor(&name("weight")).unwrap().data().iter().map(|&b| b as i8).collect();
                let s = f32s(&st, &name("weight_scale"));
                let b = i32s(&st, &name("bias"));
                let row = w.len() / s.len();
                let w = w.iter().enumerate().map(|(k, &q)| f32::from(q) * s[k / row]).collect();
                let b = b.iter().zip(&s).map(|(&b, &s)| b as f32 * in_scale * s).collect();
                (w, b)
            };
            match node.op {
                Op::Conv2d { relu, .. } => {
                    let g = model.geometry(i).unwrap();
                    let (w, b) = weights_real();
                    // OHWI → OIHW for the float kernel.
                    let (o, kh, kw, ic) = (out_shape.c, g.kernel_h, g.kernel_w, g.group_inputs());
                    let mut oihw = vec![0f32; w.len()];
                    for oc in 0..o {
                        for y in 0..kh {
                            for x in 0..kw {
                                for c in 0..ic {
                                    oihw[((oc * ic + c) * kh + y) * kw + x] = w[((oc * kh + y) * kw + x) * ic + c];
                                }
                            }
                        }
                    }
                    fk::conv2d(&g, &real_in[0], &oihw, &b, relu, &mut expected);
                }
                Op::Dense { relu } => {
                    let (w, b) = weights_real();
                    fk::dense(&real_in[0], &w, &b, relu, &mut expected);
                }
                Op::MaxPool2d(_) => fk::maxpool2d(&model.geometry(i).unwrap(), &real_in[0], &mut expected),
                Op::AvgPool2d(_) => fk::avgpool2d(&model.geometry(i).unwrap(), &real_in[0], &mut expected),
                Op::GlobalAvgPool => fk::global_avgpool(&real_in[0], out_shape.c, &mut expected),
                Op::Add { relu } => {
                    let refs: Vec<&[f32]> = real_in.iter().map(Vec::as_slice).collect();
                    fk::add(&refs, relu, &mut expected);
                }
                Op::Concat => {
                    let refs: Vec<&[f32]> = real_in.iter().map(Vec::as_slice).collect();
                    fk::concat(&refs, &mut expected);
                }
                Op::Unary(u) => fk::map(&real_in[0], |x| u.float(x), &mut expected),
                // Flatten copies the channels-last bytes: the int8 flat order is H-W-C
                // (the quantiser permuted the next dense layer's columns to match).
                Op::Flatten => {
                    let q = model.quant(node.inputs[0]).unwrap();
                    expected = dequantize(&acts[node.inputs[0]], out_shape, q.scale, q.zero_point);
                }
                Op::Dropout => expected.copy_from_slice(&real_in[0]),
                Op::BatchNorm { .. } | Op::Softmax { .. } => unreachable!("not in int8 graphs"),
            }
            // Quantise the float result and compare with the engine (both C×H×W).
            let got = dequantize(&acts[i + 1], out_shape, 1.0, 0);
            for (k, (&e, &g)) in expected.iter().zip(&got).enumerate() {
                let want = ((e / q_out.scale).round() as i32 + q_out.zero_point).clamp(-128, 127);
                assert!(
                    (want - g as i32).abs() <= 1,
                    "node {} ({}): element {k}: engine {g}, float simulation {want}",
                    node.name,
                    node.op.name()
                );
            }
            *checked.entry(node.op.name()).or_default() += 1;
        }
    }
    checked
}

#[test]
fn geometry_type_is_reachable() {
    // The kernels' geometry, for backends and tools built on the internals.
    let g = Conv2dGeometry {
        input: Shape::new(1, 4, 4),
        output: Shape::new(1, 2, 2),
        kernel_h: 2,
        kernel_w: 2,
        stride: 2,
        pad_top: 0,
        pad_left: 0,
        groups: 1,
        dilation: 1,
    };
    assert_eq!((g.rows(1), g.cols(1)), ((0, 2), (0, 2)));
}

/// Every unary op of the vocabulary, in a float model the quantiser turns into
/// int8: it keeps its input's quantisation, and its int8 output is its float
/// meaning on the dequantised input, to within one step (the bounds' rounding).
#[test]
fn unary_ops_quantise_and_follow_their_float_meaning() {
    use common::nets::Rng;
    use tinycnn::format::{write_model, TensorData};
    use tinycnn::format::{RawNode, Unary};

    let mut rng = Rng::new(7);
    let images: Vec<Vec<u8>> = (0..16).map(|_| rng.bytes(36)).collect();
    let mut checked = 0;
    for &op in Unary::EXAMPLES {
        let mut unary =
            RawNode { name: "act".into(), op: op.name().into(), inputs: vec!["conv".into()], ..RawNode::default() };
        op.write_attributes(&mut unary);
        let graph = serde_json::json!({
            "format": 1,
            "input": {"channels": 1, "height": 6, "width": 6, "mean": 0.5, "std": 0.25},
            "nodes": [
                {"name": "conv", "op": "conv2d", "inputs": ["input"]},
                unary,
                {"name": "flat", "op": "flatten", "inputs": ["act"]},
                {"name": "fc", "op": "dense", "inputs": ["flat"]},
            ],
        });
        let mut weights = |n: usize| -> Vec<f32> { (0..n).map(|_| (rng.f64() * 2.0 - 1.0) as f32).collect() };
        let tensors = [
            TensorData::f32("conv.weight".into(), vec![2, 1, 3, 3], &weights(18)),
            TensorData::f32("conv.bias".into(), vec![2], &weights(2)),
            TensorData::f32("fc.weight".into(), vec![3, 32], &weights(96)),
        ];
        let float = Model::load(write_model(&graph.to_string(), &tensors).unwrap()).unwrap();
        let bytes = quantize(&float, images.iter().map(Vec::as_slice)).unwrap();
        let model = Model::load(&bytes[..]).unwrap();
        let Some(at) = model.graph().nodes.iter().position(|n| n.op == Op::Unary(op)) else {
            assert_eq!(op, Unary::Relu, "only a relu may be fused into the conv before it");
            continue;
        };
        let (q_in, q_out) = (model.quant(at).unwrap(), model.quant(at + 1).unwrap());
        assert_eq!(q_in, q_out, "{op:?} keeps its input's quantisation");
        let mut arena = vec![0u8; model.arena_bytes()];
        let mut logits = vec![0f32; model.output_len()];
        for image in &images {
            let mut acts: Vec<Vec<i8>> = vec![Vec::new(); model.graph().nodes.len() + 1];
            model.run_int8_observed(&mut arena, image, &mut logits, &mut |v, d| acts[v] = d.to_vec()).unwrap();
            for (&x, &y) in acts[at].iter().zip(&acts[at + 1]) {
                let real = op.float((i32::from(x) - q_in.zero_point) as f32 * q_in.scale);
                let want = ((real / q_out.scale).round() as i32 + q_out.zero_point).clamp(-128, 127);
                assert!((want - i32::from(y)).abs() <= 1, "{op:?}: {x} → {y}, float meaning {want}");
            }
        }
        checked += 1;
    }
    assert!(checked > 0, "no unary op survived quantisation");
}
