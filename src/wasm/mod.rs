//! The JavaScript API (feature `wasm`): `Model`, `Ensemble`, `preprocess`,
//! `segment`, built with wasm-bindgen. See docs/JAVASCRIPT.md.
//!
//! - Every misuse throws a JS `Error` whose message names the call and the
//!   problem (`Model.predict: input has 100 values, the model takes 784`);
//!   nothing here panics. A blank image throws an `Error` named
//!   `EmptyImageError`, so a page can say "draw something".
//! - A `Model` allocates its arena, input and output buffers once, in the
//!   constructor; `predict` / `logits` / `predictBatch` copy the pixels into
//!   that buffer (no wasm heap allocation per call) and return a fresh JS
//!   `Float32Array` (JS heap). `wasmMemoryBytes()` lets a test check that the
//!   wasm memory does not grow.
//! - Pixel arguments are checked to be `Uint8Array`s (or `Uint8ClampedArray`s)
//!   instead of letting wasm-bindgen silently convert any array-like.

#[cfg(all(feature = "gpu", target_arch = "wasm32"))]
pub mod gpu;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use js_sys::{Array, ArrayBuffer, Float32Array, Int8Array, Object, Reflect, Uint8Array, Uint8ClampedArray};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::error::Error;
use crate::model::graph::{Dtype, Op};
use crate::preprocess;
use crate::spec::fixed_point::dequantize_channels_last;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** What `Model.info()` returns. */
export interface ModelInfo {
  /** Input shape [channels, height, width]; `predict` takes channels·height·width pixel bytes. */
  input: [number, number, number];
  /** Number of classes (length of the output). */
  classes: number;
  /** Parameters (weights and biases). */
  params: number;
  /** Multiply-accumulates per image. */
  macs: number;
  /** Bytes of the activation arena (allocated once, in the constructor). */
  arenaBytes: number;
  /** "float" or "int8". */
  dtype: "float" | "int8";
  /** The nodes in execution order. */
  nodes: NodeInfo[];
}

/** One node of `ModelInfo.nodes`. */
export interface NodeInfo {
  name: string;
  op: string;
  /** Output shape [channels, height, width]. */
  shape: [number, number, number];
  params: number;
  macs: number;
}

/** What `Model.firstConvFeatures()` returns: the first convolution's output. */
export interface FeatureMaps {
  /** Name of the conv2d node. */
  node: string;
  channels: number;
  height: number;
  width: number;
  /** channels × height × width values (C-H-W order), dequantised to f32 for int8 models. */
  data: Float32Array;
}
"#;

/// A JS `Error` with `context: message`.
fn js_error(context: &str, message: &str) -> JsValue {
    js_sys::Error::new(&format!("{context}: {message}")).into()
}

/// A tinycnn error as a JS `Error`; a blank image gets the name `EmptyImageError`.
fn tinycnn_error(context: &str, e: &Error) -> JsValue {
    let error = js_sys::Error::new(&format!("{context}: {e}"));
    if *e == Error::EmptyImage {
        error.set_name("EmptyImageError");
    }
    error.into()
}

/// What a JS value is, for error messages.
fn describe(value: &JsValue) -> String {
    if value.is_undefined() {
        return "undefined".to_string();
    }
    if value.is_null() {
        return "null".to_string();
    }
    if let Some(object) = value.dyn_ref::<Object>() {
        if let Some(name) = object.constructor().name().as_string() {
            if let Some(first) = name.chars().next() {
                // "a Uint16Array", "an Int8Array", "an Array".
                let article = if "AEIOaeio".contains(first) { "an" } else { "a" };
                return format!("{article} {name}");
            }
        }
        return "an object".to_string();
    }
    match value.js_typeof().as_string() {
        Some(t) => format!("a {t}"),
        None => "a value".to_string(),
    }
}

/// The bytes of a `Uint8Array` / `Uint8ClampedArray` argument as a `Uint8Array` view (no copy).
fn byte_view(context: &str, what: &str, value: &JsValue) -> Result<Uint8Array, JsValue> {
    if let Some(a) = value.dyn_ref::<Uint8Array>() {
        return Ok(a.clone());
    }
    if let Some(a) = value.dyn_ref::<Uint8ClampedArray>() {
        return Ok(Uint8Array::new_with_byte_offset_and_length(&a.buffer(), a.byte_offset(), a.length()));
    }
    Err(js_error(context, &format!("{what} must be a Uint8Array or Uint8ClampedArray, got {}", describe(value))))
}

/// Copies `view[start..start + dst.len()]` into `dst` (wasm memory) without allocating.
fn copy_into(view: &Uint8Array, start: u32, dst: &mut [u8]) {
    let end = start + dst.len() as u32;
    view.subarray(start, end).copy_to(dst);
}

/// A JS number that must be a whole number in 1..=MAX_DIMENSION (an image side).
fn dimension(context: &str, what: &str, value: f64) -> Result<usize, JsValue> {
    let limit = preprocess::MAX_DIMENSION as f64;
    if !(value.is_finite() && value.fract() == 0.0 && (1.0..=limit).contains(&value)) {
        return Err(js_error(
            context,
            &format!("{what} must be a whole number from 1 to {}, got {value}", preprocess::MAX_DIMENSION),
        ));
    }
    Ok(value as usize)
}

fn set(object: &Object, key: &str, value: impl Into<JsValue>) {
    // Reflect.set on a plain object cannot fail.
    let _ = Reflect::set(object, &JsValue::from_str(key), &value.into());
}

fn shape_array(s: crate::Shape) -> Array {
    Array::of3(&(s.c as u32).into(), &(s.h as u32).into(), &(s.w as u32).into())
}

/// A tinycnn model loaded from a `.safetensors` file (float or int8).
#[wasm_bindgen(js_name = Model)]
pub struct WasmModel {
    model: crate::Model,
    arena: Vec<u8>,
    pixels: Vec<u8>,
    output: Vec<f32>,
    /// `runInt8`'s buffers: one input tensor, one int8 output (allocated once, with the arena).
    int8_input: Vec<i8>,
    int8_output: Vec<i8>,
}

/// Shares a model's weights with an `Ensemble` (hidden from TypeScript).
#[wasm_bindgen(skip_typescript)]
pub struct SharedModel {
    model: crate::Model,
}

#[wasm_bindgen(js_class = Model)]
impl WasmModel {
    /// Loads a model from the bytes of a `.safetensors` file (`Uint8Array` or `ArrayBuffer`).
    /// Throws if the file is not a valid tinycnn model.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "Uint8Array | ArrayBuffer")] bytes: JsValue,
    ) -> Result<WasmModel, JsValue> {
        const CONTEXT: &str = "new Model";
        let bytes = if let Some(buffer) = bytes.dyn_ref::<ArrayBuffer>() {
            Uint8Array::new(buffer).to_vec()
        } else {
            byte_view(CONTEXT, "the model bytes", &bytes)?.to_vec()
        };
        let model = crate::Model::load(bytes).map_err(|e| tinycnn_error(CONTEXT, &e))?;
        Ok(WasmModel::from_model(model))
    }

    /// Class probabilities (softmax of the logits) of one image:
    /// `inputLength` pixel bytes, C-H-W, MNIST-style white ink (255) on black (0).
    pub fn predict(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] pixels: &JsValue,
    ) -> Result<Float32Array, JsValue> {
        self.run_one("Model.predict", pixels, true)
    }

    /// The logits (the classifier's output before softmax) of one image.
    pub fn logits(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] pixels: &JsValue,
    ) -> Result<Float32Array, JsValue> {
        self.run_one("Model.logits", pixels, false)
    }

    /// Class probabilities of n images: n × `inputLength` bytes in, n × `classes` values out.
    #[wasm_bindgen(js_name = predictBatch)]
    pub fn predict_batch(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] pixels: &JsValue,
    ) -> Result<Float32Array, JsValue> {
        self.run_batch("Model.predictBatch", pixels, true)
    }

    /// Logits of n images: n × `inputLength` bytes in, n × `classes` values out.
    #[wasm_bindgen(js_name = logitsBatch)]
    pub fn logits_batch(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] pixels: &JsValue,
    ) -> Result<Float32Array, JsValue> {
        self.run_batch("Model.logitsBatch", pixels, false)
    }

    /// The int8 outputs of n quantised inputs (an int8 model; a TFLite model's own
    /// tensors): n × `inputLength` values (H-W-C, the input's scale and zero point) in,
    /// n × `int8OutputLength` out (its integer softmax, or the logits).
    #[wasm_bindgen(js_name = runInt8)]
    pub fn run_int8(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Int8Array")] input: &JsValue,
    ) -> Result<Int8Array, JsValue> {
        const CONTEXT: &str = "Model.runInt8";
        let Some(view) = input.dyn_ref::<Int8Array>() else {
            return Err(js_error(CONTEXT, &format!("the input must be an Int8Array, got {}", describe(input))));
        };
        let (per_input, per_output) = (self.int8_input.len() as u32, self.int8_output.len() as u32);
        let n = batch_count(CONTEXT, view.length() as usize, per_input as usize)? as u32;
        let result = Int8Array::new_with_length(n * per_output);
        for i in 0..n {
            view.subarray(i * per_input, (i + 1) * per_input).copy_to(&mut self.int8_input);
            self.model
                .run_int8(&mut self.arena, &self.int8_input, &mut self.int8_output)
                .map_err(|e| tinycnn_error(CONTEXT, &e))?;
            result.subarray(i * per_output, (i + 1) * per_output).copy_from(&self.int8_output);
        }
        Ok(result)
    }

    /// int8 values `runInt8` gives per input.
    #[wasm_bindgen(getter, js_name = int8OutputLength)]
    pub fn int8_output_length(&self) -> usize {
        self.model.int8_output_len()
    }

    /// Pixel bytes one image has (channels × height × width; 784 for MNIST).
    #[wasm_bindgen(getter, js_name = inputLength)]
    pub fn input_length(&self) -> usize {
        self.model.input_len()
    }

    /// Number of classes.
    #[wasm_bindgen(getter)]
    pub fn classes(&self) -> usize {
        self.model.output_len()
    }

    /// Shapes, sizes and costs of the model and its nodes.
    #[wasm_bindgen(unchecked_return_type = "ModelInfo")]
    pub fn info(&self) -> JsValue {
        let m = &self.model;
        let info = Object::new();
        set(&info, "input", shape_array(m.input_shape()));
        set(&info, "classes", m.output_len() as u32);
        set(&info, "params", m.parameter_count() as f64);
        let stats = m.node_stats();
        set(&info, "macs", stats.iter().map(|s| s.macs).sum::<u64>() as f64);
        set(&info, "arenaBytes", m.arena_bytes() as f64);
        set(&info, "dtype", m.dtype().as_str());
        let nodes = Array::new();
        for s in stats {
            let node = Object::new();
            set(&node, "name", s.name.as_str());
            set(&node, "op", s.op);
            set(&node, "shape", shape_array(s.output));
            set(&node, "params", s.params as f64);
            set(&node, "macs", s.macs as f64);
            nodes.push(&node);
        }
        set(&info, "nodes", nodes);
        info.into()
    }

    /// The output of the model's first convolution for one image ("what the network sees"),
    /// C-H-W, as f32 (int8 activations dequantised).
    #[wasm_bindgen(js_name = firstConvFeatures, unchecked_return_type = "FeatureMaps")]
    pub fn first_conv_features(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] pixels: &JsValue,
    ) -> Result<JsValue, JsValue> {
        const CONTEXT: &str = "Model.firstConvFeatures";
        self.load_pixels(CONTEXT, pixels)?;
        let m = &self.model;
        let Some(node) = m.graph().nodes.iter().position(|n| matches!(n.op, Op::Conv2d { .. })) else {
            return Err(js_error(CONTEXT, "the model has no conv2d node"));
        };
        let value = node + 1;
        let shape = m.shape(value);
        let mut data = vec![0f32; shape.len()];
        let result = match m.dtype() {
            Dtype::Int8 => {
                let q = m.quant(value).ok_or_else(|| js_error(CONTEXT, "the conv2d node has no quantisation"))?;
                let mut observer = |v: usize, x: &[i8]| {
                    if v == value && x.len() == data.len() {
                        dequantize_channels_last(x, shape.c, shape, q.scale, q.zero_point, &mut data);
                    }
                };
                m.run_int8_observed(&mut self.arena, &self.pixels, &mut self.output, &mut observer)
            }
            Dtype::Float => {
                let mut observer = |v: usize, x: &[f32]| {
                    if v == value && x.len() == data.len() {
                        data.copy_from_slice(x);
                    }
                };
                m.run_float_observed(&mut self.arena, &self.pixels, &mut self.output, &mut observer)
            }
        };
        result.map_err(|e| tinycnn_error(CONTEXT, &e))?;
        let maps = Object::new();
        set(&maps, "node", m.graph().nodes[node].name.as_str());
        set(&maps, "channels", shape.c as u32);
        set(&maps, "height", shape.h as u32);
        set(&maps, "width", shape.w as u32);
        set(&maps, "data", Float32Array::from(&data[..]));
        Ok(maps.into())
    }

    /// A copy of this model's weights for an `Ensemble` (internal).
    #[wasm_bindgen(js_name = __tinycnnShare, skip_typescript)]
    pub fn share(&self) -> SharedModel {
        SharedModel { model: self.model.clone() }
    }
}

impl WasmModel {
    fn from_model(model: crate::Model) -> WasmModel {
        let arena = vec![0u8; model.arena_bytes()];
        let pixels = vec![0u8; model.input_len()];
        let output = vec![0f32; model.output_len()];
        let (int8_input, int8_output) = (vec![0i8; model.input_len()], vec![0i8; model.int8_output_len()]);
        WasmModel { model, arena, pixels, output, int8_input, int8_output }
    }

    /// Copies one image into the pixel buffer, checking its type and length.
    fn load_pixels(&mut self, context: &str, pixels: &JsValue) -> Result<(), JsValue> {
        let view = byte_view(context, "the pixels", pixels)?;
        let len = view.length() as usize;
        if len != self.pixels.len() {
            let e = Error::InputLength { expected: self.pixels.len(), found: len };
            return Err(tinycnn_error(context, &e));
        }
        copy_into(&view, 0, &mut self.pixels);
        Ok(())
    }

    fn run(&mut self, probabilities: bool) -> crate::Result<()> {
        if probabilities {
            self.model.predict(&mut self.arena, &self.pixels, &mut self.output)
        } else {
            self.model.run(&mut self.arena, &self.pixels, &mut self.output)
        }
    }

    fn run_one(&mut self, context: &str, pixels: &JsValue, probabilities: bool) -> Result<Float32Array, JsValue> {
        self.load_pixels(context, pixels)?;
        self.run(probabilities).map_err(|e| tinycnn_error(context, &e))?;
        Ok(Float32Array::from(&self.output[..]))
    }

    fn run_batch(&mut self, context: &str, pixels: &JsValue, probabilities: bool) -> Result<Float32Array, JsValue> {
        let view = byte_view(context, "the pixels", pixels)?;
        let n = batch_count(context, view.length() as usize, self.pixels.len())?;
        let classes = self.output.len() as u32;
        let result = Float32Array::new_with_length(n as u32 * classes);
        for i in 0..n as u32 {
            copy_into(&view, i * self.pixels.len() as u32, &mut self.pixels);
            self.run(probabilities).map_err(|e| tinycnn_error(context, &e))?;
            result.subarray(i * classes, (i + 1) * classes).copy_from(&self.output);
        }
        Ok(result)
    }
}

/// Images in a batch of `len` bytes, `image` bytes each.
fn batch_count(context: &str, len: usize, image: usize) -> Result<usize, JsValue> {
    if len == 0 || image == 0 || !len.is_multiple_of(image) {
        return Err(js_error(
            context,
            &format!("a batch must hold a whole number (≥ 1) of {image}-byte images, got {len} bytes"),
        ));
    }
    Ok(len / image)
}

/// Models whose mean class probabilities are the prediction.
#[wasm_bindgen(js_name = Ensemble)]
pub struct WasmEnsemble {
    ensemble: crate::Ensemble,
    arena: Vec<u8>,
    pixels: Vec<u8>,
    output: Vec<f32>,
}

#[wasm_bindgen(js_class = Ensemble)]
impl WasmEnsemble {
    /// An ensemble of `Model`s that read the same input and give the same classes.
    /// The models are copied: they stay usable (and must still be `free()`d) on their own.
    #[wasm_bindgen(constructor)]
    pub fn new(#[wasm_bindgen(unchecked_param_type = "Model[]")] models: JsValue) -> Result<WasmEnsemble, JsValue> {
        const CONTEXT: &str = "new Ensemble";
        let Some(models) = models.dyn_ref::<Array>() else {
            return Err(js_error(CONTEXT, &format!("expected an array of Models, got {}", describe(&models))));
        };
        let mut members = Vec::with_capacity(models.length() as usize);
        let share_key = JsValue::from_str("__tinycnnShare");
        for (i, value) in models.iter().enumerate() {
            let not_a_model = || js_error(CONTEXT, &format!("element {i} is not a Model (it is {})", describe(&value)));
            if !value.is_object() {
                return Err(not_a_model());
            }
            let share = Reflect::get(&value, &share_key)
                .ok()
                .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
                .ok_or_else(not_a_model)?;
            let shared = share.call0(&value).map_err(|e| {
                let why = e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())).unwrap_or_default();
                js_error(CONTEXT, &format!("element {i} cannot be used (was it freed?): {why}"))
            })?;
            let shared = <SharedModel as wasm_bindgen::convert::TryFromJsValue>::try_from_js_value(shared)
                .map_err(|_| not_a_model())?;
            members.push(shared.model);
        }
        let ensemble = crate::Ensemble::new(members).map_err(|e| tinycnn_error(CONTEXT, &e))?;
        let arena = vec![0u8; ensemble.arena_bytes()];
        let pixels = vec![0u8; ensemble.input_len()];
        let output = vec![0f32; ensemble.output_len()];
        Ok(WasmEnsemble { ensemble, arena, pixels, output })
    }

    /// Mean class probabilities of the members for one image.
    pub fn predict(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] pixels: &JsValue,
    ) -> Result<Float32Array, JsValue> {
        const CONTEXT: &str = "Ensemble.predict";
        let view = byte_view(CONTEXT, "the pixels", pixels)?;
        let len = view.length() as usize;
        if len != self.pixels.len() {
            return Err(tinycnn_error(CONTEXT, &Error::InputLength { expected: self.pixels.len(), found: len }));
        }
        copy_into(&view, 0, &mut self.pixels);
        self.ensemble
            .predict(&mut self.arena, &self.pixels, &mut self.output)
            .map_err(|e| tinycnn_error(CONTEXT, &e))?;
        Ok(Float32Array::from(&self.output[..]))
    }

    /// Mean class probabilities of n images: n × `inputLength` bytes in, n × `classes` values out.
    #[wasm_bindgen(js_name = predictBatch)]
    pub fn predict_batch(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] pixels: &JsValue,
    ) -> Result<Float32Array, JsValue> {
        const CONTEXT: &str = "Ensemble.predictBatch";
        let view = byte_view(CONTEXT, "the pixels", pixels)?;
        let n = batch_count(CONTEXT, view.length() as usize, self.pixels.len())?;
        let classes = self.output.len() as u32;
        let result = Float32Array::new_with_length(n as u32 * classes);
        for i in 0..n as u32 {
            copy_into(&view, i * self.pixels.len() as u32, &mut self.pixels);
            self.ensemble
                .predict(&mut self.arena, &self.pixels, &mut self.output)
                .map_err(|e| tinycnn_error(CONTEXT, &e))?;
            result.subarray(i * classes, (i + 1) * classes).copy_from(&self.output);
        }
        Ok(result)
    }

    /// Number of member models.
    #[wasm_bindgen(getter)]
    pub fn size(&self) -> usize {
        self.ensemble.members().len()
    }

    /// Pixel bytes one image has.
    #[wasm_bindgen(getter, js_name = inputLength)]
    pub fn input_length(&self) -> usize {
        self.ensemble.input_len()
    }

    /// Number of classes.
    #[wasm_bindgen(getter)]
    pub fn classes(&self) -> usize {
        self.ensemble.output_len()
    }
}

/// Copies an RGBA argument into wasm memory.
fn rgba_bytes(context: &str, rgba: &JsValue, width: f64, height: f64) -> Result<(Vec<u8>, usize, usize), JsValue> {
    let view = byte_view(context, "the RGBA data", rgba)?;
    let width = dimension(context, "width", width)?;
    let height = dimension(context, "height", height)?;
    Ok((view.to_vec(), width, height))
}

/// One MNIST-style digit (784 bytes, 28×28, white on black) from RGBA pixels
/// (a canvas `ImageData.data`, `width × height × 4` bytes). Works for dark ink on
/// light paper, light strokes on a dark canvas and strokes on a transparent canvas.
/// Throws an `EmptyImageError` if there is no ink.
#[wasm_bindgen]
pub fn preprocess(
    #[wasm_bindgen(unchecked_param_type = "Uint8ClampedArray | Uint8Array")] rgba: &JsValue,
    width: f64,
    height: f64,
) -> Result<Uint8Array, JsValue> {
    const CONTEXT: &str = "preprocess";
    let (bytes, w, h) = rgba_bytes(CONTEXT, rgba, width, height)?;
    let digit = preprocess::preprocess_rgba(&bytes, w, h).map_err(|e| tinycnn_error(CONTEXT, &e))?;
    Ok(Uint8Array::from(&digit[..]))
}

/// The digits of a row of handwriting, left to right: n × 784 bytes side by side
/// (n = length / 784, at most 32). Throws an `EmptyImageError` if there is no ink.
#[wasm_bindgen]
pub fn segment(
    #[wasm_bindgen(unchecked_param_type = "Uint8ClampedArray | Uint8Array")] rgba: &JsValue,
    width: f64,
    height: f64,
) -> Result<Uint8Array, JsValue> {
    const CONTEXT: &str = "segment";
    let (bytes, w, h) = rgba_bytes(CONTEXT, rgba, width, height)?;
    let digits = preprocess::segment_rgba(&bytes, w, h).map_err(|e| tinycnn_error(CONTEXT, &e))?;
    Ok(Uint8Array::from(digits.as_flattened()))
}

/// Bytes of the module's linear memory right now (it only ever grows).
#[wasm_bindgen(js_name = wasmMemoryBytes)]
pub fn wasm_memory_bytes() -> f64 {
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .ok()
        .and_then(|m| m.buffer().dyn_into::<ArrayBuffer>().ok())
        .map_or(0.0, |b| f64::from(b.byte_length()))
}

/// The tinycnn version (Cargo.toml).
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
