//! Malformed model files are refused with the specific typed error, naming the
//! node or tensor at fault — never a panic.

mod common;

use std::borrow::Cow;

use common::{fixture, Fixture};
use safetensors::SafeTensors;
use tinycnn::format::{write_model, TensorData, TensorDtype};
use tinycnn::quantize;
use tinycnn::{Error, Model};

/// A model file taken apart: graph JSON (as serde_json::Value) and tensors.
struct Parts {
    graph: serde_json::Value,
    tensors: Vec<TensorData<'static>>,
}

impl Parts {
    fn of(bytes: &[u8]) -> Parts {
        let st = SafeTensors::deserialize(bytes).unwrap();
        let json = tinycnn::format::read_graph_json(bytes).unwrap();
        let tensors = st
            .iter()
            .map(|(name, t)| TensorData {
                name: name.to_string(),
                dtype: t.dtype(),
                shape: t.shape().to_vec(),
                data: Cow::Owned(t.data().to_vec()),
            })
            .collect();
        Parts { graph: serde_json::from_str(&json).unwrap(), tensors }
    }

    fn float() -> Parts {
        Parts::of(&fixture("tiny-float.safetensors"))
    }

    fn int8() -> Parts {
        let fx = Fixture::load();
        let model = Model::load(fixture("tiny-float.safetensors")).unwrap();
        Parts::of(&quantize(&model, (0..fx.count).map(|i| fx.image(i))).unwrap())
    }

    fn node(&mut self, name: &str) -> &mut serde_json::Value {
        let nodes = self.graph["nodes"].as_array_mut().unwrap();
        nodes.iter_mut().find(|n| n["name"] == name).unwrap()
    }

    fn tensor(&mut self, name: &str) -> &mut TensorData<'static> {
        self.tensors.iter_mut().find(|t| t.name == name).unwrap()
    }

    fn load(&self) -> Result<Model, Error> {
        Model::load(write_model(&self.graph.to_string(), &self.tensors).unwrap())
    }
}

fn err(result: Result<Model, Error>) -> Error {
    match result {
        Ok(_) => panic!("the malformed model loaded"),
        Err(e) => e,
    }
}

#[test]
fn both_fixtures_load() {
    Parts::float().load().unwrap();
    Parts::int8().load().unwrap();
}

#[test]
fn container_errors() {
    assert!(matches!(err(Model::load(vec![1u8; 5])), Error::NotSafetensors(_)));
    let mut past_end = 100u64.to_le_bytes().to_vec();
    past_end.extend_from_slice(b"{}");
    assert!(matches!(err(Model::load(past_end)), Error::NotSafetensors(_)));
    let huge = u64::MAX.to_le_bytes().to_vec();
    assert!(matches!(err(Model::load(huge)), Error::NotSafetensors(m) if m.contains("runs past the end")));
    let mut oversized = (2u64 << 20).to_le_bytes().to_vec();
    oversized.resize(3 << 20, b' ');
    assert!(matches!(err(Model::load(oversized)), Error::LimitExceeded { what: "safetensors header bytes", .. }));
    let mut truncated = fixture("tiny-float.safetensors");
    truncated.truncate(truncated.len() - 100);
    assert!(matches!(err(Model::load(truncated)), Error::NotSafetensors(_)));
    let no_graph = safetensors::serialize(Vec::<(&str, &TensorData)>::new(), None).unwrap();
    assert_eq!(err(Model::load(no_graph)), Error::MissingGraph);

    // Deep nesting anywhere in the header is refused at its first level, never
    // recursed into (which would overflow the stack: a crash, not an error).
    for (field, deep) in [("x", 400_000), ("shape", 400_000), ("dtype", 10)] {
        let header = format!(
            r#"{{"w":{{"dtype":"F32","shape":[1],"data_offsets":[0,4],"{field}":{}1{}}}}}"#,
            "[".repeat(deep),
            "]".repeat(deep)
        );
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header.as_bytes());
        file.extend_from_slice(&[0; 4]);
        assert!(matches!(err(Model::load(file)), Error::NotSafetensors(_)), "{field}");
    }
}

#[test]
fn graph_errors_name_the_node() {
    let mut p = Parts::float();
    p.graph = serde_json::json!("not a graph");
    assert!(matches!(err(p.load()), Error::GraphJson(_)));

    let mut p = Parts::float();
    p.node("c2")["op"] = "conv3d".into();
    assert_eq!(err(p.load()), Error::UnknownOp { node: "c2".into(), op: "conv3d".into() });

    let mut p = Parts::float();
    p.node("c2")["stride"] = 0.into();
    assert!(
        matches!(err(p.load()), Error::BadAttribute { node, attribute, .. } if node == "c2" && attribute == "stride")
    );

    for groups in [0, 1 << 20] {
        let mut p = Parts::float();
        p.node("c2")["groups"] = groups.into();
        assert!(
            matches!(err(p.load()), Error::BadAttribute { node, attribute, .. } if node == "c2" && attribute == "groups")
        );
    }
    let mut p = Parts::float();
    p.node("c2")["groups"] = 3.into(); // the weight's input channels × 3 is not the input's
    assert!(matches!(err(p.load()), Error::ShapeMismatch { node, reason } if node == "c2" && reason.contains("group")));

    let mut p = Parts::float();
    p.node("mp1")["dilation"] = 2.into(); // a conv2d attribute, not a pool's
    assert!(
        matches!(err(p.load()), Error::BadAttribute { node, attribute, .. } if node == "mp1" && attribute == "dilation")
    );

    let mut p = Parts::float();
    p.node("mp1")["ceil_mode"] = true.into();
    assert!(matches!(err(p.load()), Error::GraphJson(m) if m.contains("ceil_mode")));

    for pads in [serde_json::json!([1, 1, 1]), serde_json::json!([0, 0, 0, -1]), serde_json::json!([0, 0, 0, 1 << 20])]
    {
        let mut p = Parts::float();
        p.node("c2")["pads"] = pads;
        assert!(
            matches!(err(p.load()), Error::BadAttribute { node, attribute, .. } if node == "c2" && attribute == "pads")
        );
    }
    let mut p = Parts::float();
    p.node("c2")["padding"] = 1.into();
    p.node("c2")["pads"] = serde_json::json!([1, 1, 1, 1]);
    assert!(
        matches!(err(p.load()), Error::BadAttribute { node, attribute, .. } if node == "c2" && attribute == "pads")
    );
    let mut p = Parts::float();
    p.node("mp1")["pads"] = serde_json::json!([0, 0, 1, 1]); // pools pad every side alike
    assert!(
        matches!(err(p.load()), Error::BadAttribute { node, attribute, .. } if node == "mp1" && attribute == "pads")
    );

    let mut p = Parts::float();
    p.node("c2")["dilation"] = 0.into();
    assert!(
        matches!(err(p.load()), Error::BadAttribute { node, attribute, .. } if node == "c2" && attribute == "dilation")
    );

    let mut p = Parts::float();
    p.node("c2")["inputs"] = serde_json::json!(["nowhere"]);
    assert_eq!(err(p.load()), Error::DanglingInput { node: "c2".into(), input: "nowhere".into() });

    let mut p = Parts::float();
    p.node("c1")["inputs"] = serde_json::json!(["c3"]);
    assert!(matches!(err(p.load()), Error::Cycle(_)));

    let mut p = Parts::float();
    p.node("c3")["name"] = "c2".into();
    assert_eq!(err(p.load()), Error::DuplicateNode("c2".into()));

    let mut p = Parts::float();
    p.node("fc1")["inputs"] = serde_json::json!(["ap2"]);
    assert!(matches!(err(p.load()), Error::ShapeMismatch { node, .. } if node == "fc1"));

    let mut p = Parts::float();
    p.node("add1")["inputs"] = serde_json::json!(["c3", "input"]);
    assert!(matches!(err(p.load()), Error::ShapeMismatch { node, .. } if node == "add1"));

    let mut p = Parts::float();
    p.graph["format"] = 7.into();
    assert_eq!(err(p.load()), Error::UnsupportedFormat(7));
}

#[test]
fn tensor_errors_name_the_tensor() {
    let mut p = Parts::float();
    p.tensors.retain(|t| t.name != "c2.weight");
    assert_eq!(err(p.load()), Error::MissingTensor("c2.weight".into()));

    let mut p = Parts::float();
    p.tensors.push(TensorData::f32("stray.weight".into(), vec![1], &[1.0]));
    assert_eq!(err(p.load()), Error::UnexpectedTensor("stray.weight".into()));

    let mut p = Parts::float();
    p.tensor("c2.bias").dtype = TensorDtype::I32;
    assert!(matches!(err(p.load()), Error::TensorDtype { tensor, .. } if tensor == "c2.bias"));

    let mut p = Parts::float();
    let t = p.tensor("c2.weight");
    t.shape = vec![8, 4, 3, 6]; // same byte count, wrong channel count
    assert!(matches!(err(p.load()), Error::ShapeMismatch { node, .. } if node == "c2"));

    let mut p = Parts::float();
    let t = p.tensor("fc2.weight");
    let mut data = t.data.to_vec();
    data[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    t.data = Cow::Owned(data);
    assert!(matches!(err(p.load()), Error::TensorValue { tensor, .. } if tensor == "fc2.weight"));
}

#[test]
fn bad_scales_are_refused() {
    for (value, label) in [(f32::NAN, "NaN"), (0.0, "zero"), (-0.5, "negative"), (f32::INFINITY, "infinite")] {
        let mut p = Parts::int8();
        let t = p.tensor("c2.weight_scale");
        let mut data = t.data.to_vec();
        data[..4].copy_from_slice(&value.to_le_bytes());
        t.data = Cow::Owned(data);
        assert!(
            matches!(err(p.load()), Error::BadQuantization { what, .. } if what.contains("c2.weight_scale")),
            "{label} weight scale"
        );
    }
    for value in [0.0, -1.0] {
        let mut p = Parts::int8();
        p.node("c3")["scale"] = value.into();
        assert!(matches!(err(p.load()), Error::BadQuantization { what, .. } if what.contains("c3")));
    }
    let mut p = Parts::int8();
    p.node("c3")["zero_point"] = 300.into();
    assert!(matches!(err(p.load()), Error::BadQuantization { .. }));
    // int8 weights are symmetric: −128 is not allowed.
    let mut p = Parts::int8();
    let t = p.tensor("c3.weight");
    let mut data = t.data.to_vec();
    data[0] = 0x80;
    t.data = Cow::Owned(data);
    assert!(matches!(err(p.load()), Error::TensorValue { tensor, .. } if tensor == "c3.weight"));
}

#[test]
fn stored_multipliers_must_be_what_the_scales_give() {
    let names = ["c2.requant_multiplier", "c2.requant_shift"];
    let p = Parts::int8();
    assert!(names.iter().all(|n| p.tensors.iter().any(|t| t.name == *n)), "the quantiser stores them");
    for name in names {
        // One element off by one.
        let mut p = Parts::int8();
        let t = p.tensor(name);
        let mut data = t.data.to_vec();
        let at = if name.ends_with("shift") { 1 } else { 4 };
        data[at] = data[at].wrapping_add(1);
        t.data = Cow::Owned(data);
        assert!(
            matches!(err(p.load()), Error::TensorValue { tensor, reason } if tensor == name && reason.contains("element 1")),
            "{name}"
        );
        // One without the other.
        let mut p = Parts::int8();
        p.tensors.retain(|t| t.name != name);
        assert_eq!(err(p.load()), Error::MissingTensor(name.into()));
        // The wrong dtype; the wrong shape.
        let mut p = Parts::int8();
        p.tensor(name).dtype = if name.ends_with("shift") { TensorDtype::U8 } else { TensorDtype::F32 };
        assert!(matches!(err(p.load()), Error::TensorDtype { tensor, .. } if tensor == name), "{name}");
        let mut p = Parts::int8();
        let t = p.tensor(name);
        t.shape = vec![1, t.shape[0]];
        assert!(matches!(err(p.load()), Error::TensorShape { tensor, .. } if tensor == name), "{name}");
    }
}

#[test]
fn absurd_sizes_hit_limits_before_allocating() {
    let mut p = Parts::float();
    p.graph["input"]["height"] = 4000.into();
    p.graph["input"]["width"] = 4000.into();
    assert!(matches!(err(p.load()), Error::LimitExceeded { .. } | Error::ShapeMismatch { .. }));

    // 2^48 elements: must be caught even where usize has 32 bits (wasm32).
    let mut p = Parts::float();
    for dim in ["channels", "height", "width"] {
        p.graph["input"][dim] = 65536.into();
    }
    assert!(matches!(err(p.load()), Error::LimitExceeded { what: "input elements", .. }));

    let mut p = Parts::float();
    p.graph["input"]["height"] = 1_000_000.into();
    assert!(matches!(err(p.load()), Error::BadAttribute { .. }));
}

#[test]
fn run_time_misuse_is_an_error() {
    let model = Parts::int8().load().unwrap();
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut out = vec![0f32; model.output_len()];
    let pixels = vec![0u8; model.input_len()];
    assert_eq!(model.run(&mut arena, &pixels[1..], &mut out), Err(Error::InputLength { expected: 784, found: 783 }));
    assert!(matches!(model.run(&mut arena, &pixels, &mut out[1..]), Err(Error::OutputLength { .. })));
    assert!(matches!(model.run(&mut arena[1..], &pixels, &mut out), Err(Error::ArenaTooSmall { .. })));
    model.run(&mut arena, &pixels, &mut out).unwrap();
}

/// Nodes may be listed in any order their inputs allow (the loader sorts
/// them): ResNet's graph listed backwards is the same network, with the same
/// logits, and one listed with its branches swapped too.
/// The graph's real numbers are read as text and parsed apart from the JSON
/// parse (src/model/reals.rs): any text of the same number, through any
/// spelling of its key, gives the same value; `null` is no value.
#[test]
fn real_numbers_are_read_from_their_text() {
    let mut p = Parts::int8();
    let scales = |model: &Model| -> Vec<Option<u32>> {
        model.network().graph().nodes.iter().map(|n| n.quant.map(|q| q.scale.to_bits())).collect()
    };
    let expected = scales(&p.load().unwrap());
    let c3 = p.node("c3")["scale"].as_f64().unwrap();
    let json = p.graph.to_string();
    let written = format!("\"scale\":{}", serde_json::to_string(&c3).unwrap());
    assert!(json.contains(&written), "{written} not in {json}");
    let load = |json: &str| Model::load(write_model(json, &p.tensors).unwrap());
    // More digits than an f64 holds (core's slow path), an exponent, and every `scale`
    // key spelt with an escape.
    for text in [format!("{c3:.60}"), format!("{c3:e}"), format!("{c3:E}")] {
        let json = json.replace(&written, &format!("\"scale\":{text}"));
        assert_eq!(scales(&load(&json).unwrap()), expected, "scale written {text}");
    }
    let escaped = json.replace("\"scale\":", "\"sc\\u0061le\":");
    assert_ne!(escaped, json);
    assert_eq!(scales(&load(&escaped).unwrap()), expected);

    let null = json.replace(&written, "\"scale\":null");
    assert!(
        matches!(err(load(&null)), Error::BadQuantization { what, reason } if what.contains("c3") && reason.contains("needs scale"))
    );
    for (text, message) in
        [("\"0.05\"", "`scale` must be a number"), ("0.0.5", "`0.0.5` is not a number"), ("1e", "`1e` is not a number")]
    {
        let json = json.replace(&written, &format!("\"scale\":{text}"));
        assert!(matches!(err(load(&json)), Error::GraphJson(m) if m.contains(message)), "scale written {text}");
    }
}

#[test]
fn nodes_listed_in_any_order_load_to_the_same_network() {
    let bytes = std::fs::read(common::model_path("resnet-int8.safetensors")).unwrap();
    let original = Model::load(bytes.clone()).unwrap();
    let fx = Fixture::load();
    let logits = |model: &Model| {
        let mut arena = vec![0u8; model.arena_bytes()];
        let mut all = Vec::new();
        for i in 0..fx.count.min(20) {
            let mut out = vec![0f32; model.output_len()];
            model.run(&mut arena, fx.image(i), &mut out).unwrap();
            all.extend(out.iter().map(|v| v.to_bits()));
        }
        all
    };
    let expected = logits(&original);
    let edges = |model: &Model| {
        let graph = model.network().graph();
        let mut edges: Vec<(String, String, Vec<String>)> = (graph.nodes.iter())
            .map(|n| {
                let inputs = n.inputs.iter().map(|&v| graph.value_name(v).to_string()).collect();
                (n.name.clone(), n.op.name().to_string(), inputs)
            })
            .collect();
        edges.sort();
        edges
    };

    let reversed = {
        let mut p = Parts::of(&bytes);
        p.graph["nodes"].as_array_mut().unwrap().reverse();
        p.load().unwrap()
    };
    // Backwards, the first ready node in listed order is always the last one
    // listed: a different order of the same graph.
    let names = |model: &Model| model.network().graph().nodes.iter().map(|n| n.name.clone()).collect::<Vec<_>>();
    assert_ne!(names(&reversed), names(&original));
    assert_eq!(edges(&reversed), edges(&original));
    assert_eq!(logits(&reversed), expected);

    let swapped = {
        let mut p = Parts::of(&bytes);
        let nodes = p.graph["nodes"].as_array_mut().unwrap();
        let at = |name: &str| nodes.iter().position(|n| n["name"] == name).unwrap();
        let (conv, down) = (at("res2_conv1"), at("res2_down"));
        nodes.swap(conv, down);
        p.load().unwrap()
    };
    assert_eq!(edges(&swapped), edges(&original));
    assert_eq!(logits(&swapped), expected);
}
