//! The JavaScript API (src/wasm.rs) inside a real JS engine: results equal the
//! Rust engine's bit for bit, and every misuse throws a JS `Error` with a clear
//! message (and leaves the model usable).
//!
//! Run by scripts/test-wasm, in Node and in headless Chromium:
//!
//! ```sh
//! CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
//!   cargo test --target wasm32-unknown-unknown --no-default-features --features wasm --test wasm
//! # browser: the same with WASM_BINDGEN_USE_BROWSER=1 CHROMEDRIVER=/usr/bin/chromedriver
//! ```
#![cfg(all(target_arch = "wasm32", feature = "wasm"))]

use js_sys::{Array, Float32Array, Object, Reflect, Uint8Array, Uint8ClampedArray};
use tinycnn::internals::wasm::{
    preprocess as js_preprocess, segment as js_segment, wasm_memory_bytes, WasmEnsemble, WasmModel,
};
use tinycnn::preprocess;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;

const TINY_FLOAT: &[u8] = include_bytes!("fixtures/tiny-float.safetensors");
const TINY_INPUTS: &[u8] = include_bytes!("fixtures/tiny-inputs.safetensors");

/// The 8 fixture digits (784 bytes each) and a few synthetic images.
fn images() -> Vec<Vec<u8>> {
    let file = safetensors::SafeTensors::deserialize(TINY_INPUTS).unwrap();
    let pixels = file.tensor("pixels").unwrap();
    let mut images: Vec<Vec<u8>> = pixels.data().chunks(784).map(<[u8]>::to_vec).collect();
    images.push(vec![0; 784]);
    images.push(vec![255; 784]);
    images.push((0..784).map(|i| (i * 37 % 256) as u8).collect());
    images
}

/// The tiny model quantised with the fixture digits: an int8 model to test with.
fn tiny_int8() -> Vec<u8> {
    let model = tinycnn::Model::load(TINY_FLOAT).unwrap();
    let images = images();
    tinycnn::quantize(&model, images.iter().map(Vec::as_slice)).unwrap()
}

fn js_model(bytes: &[u8]) -> WasmModel {
    WasmModel::new(Uint8Array::from(bytes).into()).unwrap()
}

fn u8s(bytes: &[u8]) -> JsValue {
    Uint8Array::from(bytes).into()
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// The message of a thrown JS `Error` (fails the test if it is not an `Error`).
fn message(thrown: JsValue) -> String {
    let error = thrown.dyn_into::<js_sys::Error>().expect("a JS Error");
    String::from(error.message())
}

fn get(object: &JsValue, key: &str) -> JsValue {
    Reflect::get(object, &key.into()).unwrap()
}

/// Native logits and probabilities of `bytes` on every image.
fn native(bytes: &[u8], images: &[Vec<u8>]) -> (Vec<f32>, Vec<f32>) {
    let model = tinycnn::Model::load(bytes.to_vec()).unwrap();
    let mut arena = vec![0u8; model.arena_bytes()];
    let (mut logits, mut probabilities) = (Vec::new(), Vec::new());
    for image in images {
        let mut out = vec![0f32; model.output_len()];
        model.run(&mut arena, image, &mut out).unwrap();
        logits.extend_from_slice(&out);
        model.predict(&mut arena, image, &mut out).unwrap();
        probabilities.extend_from_slice(&out);
    }
    (logits, probabilities)
}

fn check_same_as_native(bytes: &[u8]) {
    let images = images();
    let (logits, probabilities) = native(bytes, &images);
    let mut m = js_model(bytes);
    let classes = m.classes();
    for (i, image) in images.iter().enumerate() {
        let want = i * classes..(i + 1) * classes;
        assert_eq!(bits(&m.logits(&u8s(image)).unwrap().to_vec()), bits(&logits[want.clone()]), "logits of image {i}");
        assert_eq!(
            bits(&m.predict(&u8s(image)).unwrap().to_vec()),
            bits(&probabilities[want]),
            "probabilities of image {i}"
        );
    }
    let batch: Vec<u8> = images.concat();
    assert_eq!(bits(&m.logits_batch(&u8s(&batch)).unwrap().to_vec()), bits(&logits));
    assert_eq!(bits(&m.predict_batch(&u8s(&batch)).unwrap().to_vec()), bits(&probabilities));
    // Canvas data (Uint8ClampedArray) is accepted as pixels too.
    let clamped: JsValue = Uint8ClampedArray::from(&images[0][..]).into();
    assert_eq!(bits(&m.logits(&clamped).unwrap().to_vec()), bits(&logits[..classes]));
}

#[wasm_bindgen_test]
fn float_model_matches_the_rust_engine_bit_for_bit() {
    check_same_as_native(TINY_FLOAT);
}

#[wasm_bindgen_test]
fn int8_model_matches_the_rust_engine_bit_for_bit() {
    check_same_as_native(&tiny_int8());
}

#[wasm_bindgen_test]
fn info_describes_the_model() {
    let m = js_model(TINY_FLOAT);
    let native = tinycnn::Model::load(TINY_FLOAT).unwrap();
    let info = m.info();
    let input: Vec<f64> = Array::from(&get(&info, "input")).iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(input, [1.0, 28.0, 28.0]);
    assert_eq!(get(&info, "classes").as_f64(), Some(10.0));
    assert_eq!(get(&info, "params").as_f64(), Some(native.parameter_count() as f64));
    assert_eq!(get(&info, "macs").as_f64(), Some(native.macs() as f64));
    assert_eq!(get(&info, "arenaBytes").as_f64(), Some(native.arena_bytes() as f64));
    assert_eq!(get(&info, "dtype").as_string().as_deref(), Some("float"));
    let nodes = Array::from(&get(&info, "nodes"));
    assert_eq!(nodes.length() as usize, native.graph().nodes.len());
    let first = nodes.get(0);
    assert_eq!(get(&first, "name").as_string().as_deref(), Some("c1"));
    assert_eq!(get(&first, "op").as_string().as_deref(), Some("conv2d"));
    assert_eq!(get(&js_model(&tiny_int8()).info(), "dtype").as_string().as_deref(), Some("int8"));
}

#[wasm_bindgen_test]
fn first_conv_features_are_the_first_convs_output() {
    let image = &images()[0];
    // Float: the observer's C×H×W values as they are.
    let mut m = js_model(TINY_FLOAT);
    let native = tinycnn::Model::load(TINY_FLOAT).unwrap();
    let mut want = Vec::new();
    let mut arena = vec![0u8; native.arena_bytes()];
    let mut logits = vec![0f32; 10];
    native
        .run_float_observed(&mut arena, image, &mut logits, &mut |v, x| {
            if v == 1 {
                want = x.to_vec();
            }
        })
        .unwrap();
    let maps = m.first_conv_features(&u8s(image)).unwrap();
    assert_eq!(get(&maps, "node").as_string().as_deref(), Some("c1"));
    let (c, h, w) = (get(&maps, "channels"), get(&maps, "height"), get(&maps, "width"));
    assert_eq!((c.as_f64(), h.as_f64(), w.as_f64()), (Some(8.0), Some(14.0), Some(14.0)));
    let data = get(&maps, "data").dyn_into::<Float32Array>().unwrap().to_vec();
    assert_eq!(bits(&data), bits(&want));

    // int8: H×W×C integers → C×H×W, dequantised.
    let bytes = tiny_int8();
    let mut m = js_model(&bytes);
    let native = tinycnn::Model::load(bytes).unwrap();
    let q = native.quant(1).unwrap();
    let mut hwc = Vec::new();
    let mut arena = vec![0u8; native.arena_bytes()];
    native
        .run_int8_observed(&mut arena, image, &mut logits, &mut |v, x| {
            if v == 1 {
                hwc = x.to_vec();
            }
        })
        .unwrap();
    let s = native.shape(1);
    let data = get(&m.first_conv_features(&u8s(image)).unwrap(), "data").dyn_into::<Float32Array>().unwrap().to_vec();
    assert_eq!(data.len(), s.len());
    for c in 0..s.c {
        for p in 0..s.h * s.w {
            let want = (i32::from(hwc[p * s.c + c]) - q.zero_point) as f32 * q.scale;
            assert_eq!(data[c * s.h * s.w + p].to_bits(), want.to_bits(), "channel {c} pixel {p}");
        }
    }
    assert!(data.iter().any(|&v| v != 0.0));
}

#[wasm_bindgen_test]
fn ensembles_average_their_members() {
    let images = images();
    let (float, int8) = (js_model(TINY_FLOAT), js_model(&tiny_int8()));
    let models: JsValue = Array::of2(&float.into(), &int8.into()).into();
    let mut e = WasmEnsemble::new(models.clone()).unwrap();
    assert_eq!(e.size(), 2);
    let native = tinycnn::Ensemble::new(vec![
        tinycnn::Model::load(TINY_FLOAT.to_vec()).unwrap(),
        tinycnn::Model::load(tiny_int8()).unwrap(),
    ])
    .unwrap();
    let mut arena = vec![0u8; native.arena_bytes()];
    let mut want = Vec::new();
    for image in &images {
        let mut out = vec![0f32; 10];
        native.predict(&mut arena, image, &mut out).unwrap();
        assert_eq!(bits(&e.predict(&u8s(image)).unwrap().to_vec()), bits(&out));
        want.extend_from_slice(&out);
    }
    assert_eq!(bits(&e.predict_batch(&u8s(&images.concat())).unwrap().to_vec()), bits(&want));
    // The models were copied, not taken: they still work on their own.
    let float_again = Array::from(&models).get(0);
    let predict = get(&float_again, "predict").dyn_into::<js_sys::Function>().unwrap();
    assert!(predict.call1(&float_again, &u8s(&images[0])).unwrap().is_instance_of::<Float32Array>());
}

#[wasm_bindgen_test]
fn misuse_throws_errors_and_the_model_keeps_working() {
    let mut m = js_model(TINY_FLOAT);
    let good = u8s(&images()[0]);
    let want = bits(&m.predict(&good).unwrap().to_vec());
    let cases: Vec<(JsValue, &str)> = vec![
        (u8s(&[0; 100]), "Model.predict: input has 100 values, the model takes 784"),
        (Float32Array::new_with_length(784).into(), "must be a Uint8Array or Uint8ClampedArray, got a Float32Array"),
        (JsValue::from_str("pixels"), "got a string"),
        (JsValue::from_f64(784.0), "got a number"),
        (JsValue::NULL, "got null"),
        (JsValue::UNDEFINED, "got undefined"),
        (Array::new_with_length(784).into(), "got an Array"),
    ];
    for (bad, expected) in cases {
        let m_msg = message(m.predict(&bad).unwrap_err());
        assert!(m_msg.contains(expected), "{m_msg:?} should contain {expected:?}");
        assert_eq!(bits(&m.predict(&good).unwrap().to_vec()), want, "a valid predict after {expected:?}");
    }
    for bad_batch in [&[0u8; 0][..], &[0; 785], &[0; 100]] {
        let msg = message(m.predict_batch(&u8s(bad_batch)).unwrap_err());
        assert!(msg.contains("whole number (≥ 1) of 784-byte images"), "{msg}");
    }
    let msg = message(m.first_conv_features(&u8s(&[1, 2, 3])).unwrap_err());
    assert!(msg.contains("Model.firstConvFeatures: input has 3 values"), "{msg}");
    assert_eq!(bits(&m.predict(&good).unwrap().to_vec()), want);
}

#[wasm_bindgen_test]
fn malformed_models_throw_errors() {
    let cases: Vec<(JsValue, &str)> = vec![
        (u8s(&[]), "new Model: not a safetensors file"),
        (u8s(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), "new Model: not a safetensors file: header length 578437695752307201"),
        (u8s(&TINY_FLOAT[..500]), "new Model: not a safetensors file"),
        (u8s(TINY_INPUTS), "no \"tinycnn\" graph"),
        (
            JsValue::from_str("model.safetensors"),
            "the model bytes must be a Uint8Array or Uint8ClampedArray, got a string",
        ),
        (JsValue::UNDEFINED, "got undefined"),
    ];
    for (bytes, expected) in cases {
        let msg = message(WasmModel::new(bytes).err().expect("an error"));
        assert!(msg.contains(expected), "{msg:?} should contain {expected:?}");
    }
    // An ArrayBuffer works as well as a Uint8Array.
    let buffer: JsValue = Uint8Array::from(TINY_FLOAT).buffer().into();
    assert!(WasmModel::new(buffer).is_ok());
}

#[wasm_bindgen_test]
fn bad_ensembles_throw_errors() {
    let msg = |v: JsValue| message(WasmEnsemble::new(v).err().expect("an error"));
    assert!(msg(Array::new().into()).contains("needs at least one model"));
    assert!(msg(JsValue::from_str("x")).contains("expected an array of Models, got a string"));
    let m: JsValue = js_model(TINY_FLOAT).into();
    assert!(msg(Array::of2(&m, &Object::new()).into()).contains("element 1 is not a Model (it is an Object)"));
    assert!(msg(Array::of2(&m, &JsValue::from(3)).into()).contains("element 1 is not a Model"));
    // A model that reads 8×8 images cannot join one that reads 28×28.
    let small: JsValue = js_model(&dense_model(8, 10)).into();
    let text = msg(Array::of2(&m, &small).into());
    assert!(text.contains("ensemble member 1: its input shape differs from the first model's"), "{text}");
    let three_classes: JsValue = js_model(&dense_model(28, 3)).into();
    let text = msg(Array::of2(&m, &three_classes).into());
    assert!(text.contains("ensemble member 1: its class count differs"), "{text}");
}

/// A one-layer float model: `side`×`side` input, flatten, dense to `classes`.
fn dense_model(side: usize, classes: usize) -> Vec<u8> {
    use tinycnn::format::{write_model, TensorData};
    let graph = format!(
        r#"{{"format":1,"dtype":"float","input":{{"channels":1,"height":{side},"width":{side}}},
            "nodes":[{{"name":"flatten","op":"flatten","inputs":["input"]}},
                     {{"name":"fc","op":"dense","inputs":["flatten"]}}]}}"#
    );
    let weights: Vec<f32> = (0..classes * side * side).map(|i| (i % 7) as f32 * 0.01).collect();
    write_model(&graph, &[TensorData::f32("fc.weight".into(), vec![classes, side * side], &weights)]).unwrap()
}

#[wasm_bindgen_test]
fn preprocess_and_segment_match_the_rust_functions() {
    let (w, h) = (90, 40);
    // Two bars on a transparent canvas, drawn in black.
    let mut rgba = vec![0u8; w * h * 4];
    for y in 5..35 {
        for x in (10..16).chain(60..75) {
            rgba[(y * w + x) * 4 + 3] = 255;
        }
    }
    let canvas: JsValue = Uint8ClampedArray::from(&rgba[..]).into();
    let one = js_preprocess(&canvas, w as f64, h as f64).unwrap().to_vec();
    assert_eq!(one, preprocess::preprocess_rgba(&rgba, w, h).unwrap());
    let digits = js_segment(&canvas, w as f64, h as f64).unwrap().to_vec();
    assert_eq!(digits, preprocess::segment_rgba(&rgba, w, h).unwrap().concat());
    assert_eq!(digits.len(), 2 * 784);

    let blank: JsValue = Uint8ClampedArray::new_with_length((w * h * 4) as u32).into();
    let thrown = js_preprocess(&blank, w as f64, h as f64).unwrap_err().dyn_into::<js_sys::Error>().unwrap();
    assert_eq!(String::from(thrown.name()), "EmptyImageError");
    assert!(String::from(thrown.message()).contains("no ink"));
    for (width, height, expected) in [
        (w as f64 + 1.0, h as f64, "has 14400 bytes"),
        (0.0, 1.0, "width must be a whole number from 1 to 4096, got 0"),
        (10.5, 1.0, "got 10.5"),
        (f64::NAN, 1.0, "got NaN"),
        (1.0, 1e9, "height must be a whole number"),
    ] {
        let msg = message(js_segment(&canvas, width, height).unwrap_err());
        assert!(msg.starts_with("segment: ") && msg.contains(expected), "{msg:?} should contain {expected:?}");
    }
    let msg = message(js_preprocess(&JsValue::from_str("x"), 1.0, 1.0).unwrap_err());
    assert!(msg.contains("the RGBA data must be a Uint8Array or Uint8ClampedArray"), "{msg}");
}

#[wasm_bindgen_test]
fn predictions_do_not_grow_wasm_memory() {
    let mut m = js_model(&tiny_int8());
    let image = u8s(&images()[0]);
    m.predict(&image).unwrap();
    let before = wasm_memory_bytes();
    assert!(before > 0.0);
    for _ in 0..1000 {
        m.predict(&image).unwrap();
    }
    assert_eq!(wasm_memory_bytes(), before);
}
