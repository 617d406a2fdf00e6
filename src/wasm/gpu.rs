//! The WebGPU backend for JavaScript (features `wasm` + `gpu`, wasm32 only):
//! `GpuModel`, an int8 model running as compute shaders on the browser's
//! WebGPU ([`crate::gpu::GpuEngine`]), bit-identical to the CPU `Model`.
//!
//! Built as its own package (scripts/build-wasm → `pkg/gpu/`), so that the
//! CPU package does not carry wgpu. Every call is asynchronous:
//!
//! ```js
//! import init, { GpuModel } from './pkg/gpu/tinycnn.js';
//! await init();
//! const gpu = await GpuModel.create(bytes);          // rejects: no adapter, not int8, …
//! const logits = await gpu.logitsBatch(pixels);       // n × 784 bytes → n × 10 logits
//! const probabilities = await gpu.predict(pixels784); // softmax
//! gpu.adapterInfo();                                  // e.g. "google swiftshader (WebGPU, fallback (software) adapter)"
//! ```
//!
//! - Errors are JS `Error`s whose message names the call (`GpuModel.create: …`);
//!   nothing here panics.
//! - Calls may overlap: runs on one model are queued and execute one at a time
//!   (the engine's buffers are reused between runs). The pixels are copied when
//!   the call is made, so the caller may reuse its array at once.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use js_sys::{Float32Array, Promise, Reflect, Uint8Array, Uint8ClampedArray};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;

use super::js_error;
use crate::gpu::{wgpu, GpuEngine, GpuError};
use crate::model::graph::Dtype;

/// A JS `Error` with `context: message`.
/// A GPU error as a JS `Error`, worded for a browser.
fn gpu_error(context: &str, e: &GpuError) -> JsValue {
    match e {
        GpuError::NoAdapter(why) => js_error(
            context,
            &format!("no WebGPU adapter (navigator.gpu.requestAdapter() found none: {why}); use the CPU Model"),
        ),
        other => js_error(context, &other.to_string()),
    }
}

/// Copies a `Uint8Array` / `Uint8ClampedArray` argument into wasm memory.
fn bytes_of(context: &str, what: &str, value: &JsValue) -> Result<Vec<u8>, JsValue> {
    if let Some(a) = value.dyn_ref::<Uint8Array>() {
        return Ok(a.to_vec());
    }
    if let Some(a) = value.dyn_ref::<Uint8ClampedArray>() {
        return Ok(a.to_vec());
    }
    if let Some(b) = value.dyn_ref::<js_sys::ArrayBuffer>() {
        return Ok(Uint8Array::new(b).to_vec());
    }
    let kind = if value.is_undefined() {
        "undefined".to_string()
    } else if value.is_null() {
        "null".to_string()
    } else {
        value.js_typeof().as_string().unwrap_or_default()
    };
    Err(js_error(context, &format!("{what} must be a Uint8Array, got {kind}")))
}

/// Whether this global scope has `navigator.gpu` (a WebGPU implementation).
fn has_navigator_gpu() -> bool {
    let global = js_sys::global();
    Reflect::get(&global, &JsValue::from_str("navigator"))
        .ok()
        .filter(|n| n.is_object())
        .and_then(|n| Reflect::get(&n, &JsValue::from_str("gpu")).ok())
        .is_some_and(|g| g.is_object())
}

/// `vendor architecture description` of the browser's `GPUAdapterInfo` (wgpu only
/// passes on the description, which Chromium leaves empty); empty if unavailable.
async fn browser_adapter_label() -> String {
    let get = |target: &JsValue, key: &str| Reflect::get(target, &JsValue::from_str(key)).ok();
    let Some(gpu) = get(&js_sys::global(), "navigator").and_then(|n| get(&n, "gpu")) else {
        return String::new();
    };
    let Some(request) = get(&gpu, "requestAdapter").and_then(|f| f.dyn_into::<js_sys::Function>().ok()) else {
        return String::new();
    };
    let Ok(promise) = request.call0(&gpu).and_then(|p| p.dyn_into::<Promise>()) else {
        return String::new();
    };
    let Ok(adapter) = wasm_bindgen_futures::JsFuture::from(promise).await else {
        return String::new();
    };
    let Some(info) = get(&adapter, "info").filter(|i| i.is_object()) else {
        return String::new();
    };
    let parts: Vec<String> = ["vendor", "architecture", "description"]
        .iter()
        .filter_map(|k| get(&info, k).and_then(|v| v.as_string()))
        .filter(|v| !v.is_empty())
        .collect();
    parts.join(" ")
}

/// The engine, lent to one run at a time.
struct Shared {
    engine: RefCell<Option<GpuEngine>>,
    waiters: RefCell<VecDeque<Waker>>,
}

/// Resolves to a [`Lease`] of the engine once no other run holds it.
struct Acquire(Rc<Shared>);

impl Future for Acquire {
    type Output = Lease;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Lease> {
        let taken = self.0.engine.borrow_mut().take();
        match taken {
            Some(engine) => Poll::Ready(Lease { shared: Rc::clone(&self.0), engine: Some(engine) }),
            None => {
                self.0.waiters.borrow_mut().push_back(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// The engine while a run uses it; given back (and the waiting runs woken) on drop.
struct Lease {
    shared: Rc<Shared>,
    engine: Option<GpuEngine>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(engine) = self.engine.take() {
            *self.shared.engine.borrow_mut() = Some(engine);
        }
        let waiters: Vec<Waker> = self.shared.waiters.borrow_mut().drain(..).collect();
        for w in waiters {
            w.wake();
        }
    }
}

/// An int8 model on the browser's WebGPU. See the module documentation.
#[wasm_bindgen(js_name = GpuModel)]
pub struct WasmGpuModel {
    shared: Rc<Shared>,
    adapter: String,
    packed_dot: bool,
    input_len: usize,
    output_len: usize,
}

#[wasm_bindgen(js_class = GpuModel)]
impl WasmGpuModel {
    /// Loads an int8 model (the bytes of a `.safetensors` file) onto a WebGPU
    /// device. Rejects with an `Error` when there is no WebGPU adapter, when the
    /// model is not int8, or when the file is not a valid model.
    pub async fn create(
        #[wasm_bindgen(unchecked_param_type = "Uint8Array | ArrayBuffer")] bytes: JsValue,
    ) -> Result<WasmGpuModel, JsValue> {
        const CONTEXT: &str = "GpuModel.create";
        let bytes = bytes_of(CONTEXT, "the model bytes", &bytes)?;
        // The GPU prepares its own layout: no CPU kernel packing is built.
        let model = crate::Network::load(bytes).map_err(|e| js_error(CONTEXT, &e.to_string()))?;
        if model.dtype() != Dtype::Int8 {
            return Err(js_error(
                CONTEXT,
                &format!("the WebGPU backend runs int8 models only, this one is {}", model.dtype().as_str()),
            ));
        }
        if !has_navigator_gpu() {
            return Err(js_error(CONTEXT, "no WebGPU in this browser (navigator.gpu is missing); use the CPU Model"));
        }
        let engine = GpuEngine::new(&model).await.map_err(|e| gpu_error(CONTEXT, &e))?;
        let info = engine.adapter_info();
        let mut name = info.name.clone();
        if name.is_empty() {
            name = browser_adapter_label().await;
        }
        if name.is_empty() {
            name = "unnamed adapter".to_string();
        }
        let kind = if info.device_type == wgpu::DeviceType::Cpu { ", fallback (software) adapter" } else { "" };
        let adapter = format!("{name} (WebGPU{kind})");
        Ok(WasmGpuModel {
            adapter,
            packed_dot: engine.uses_packed_dot(),
            input_len: engine.input_len(),
            output_len: engine.output_len(),
            shared: Rc::new(Shared { engine: RefCell::new(Some(engine)), waiters: RefCell::new(VecDeque::new()) }),
        })
    }

    /// Logits of n images: n × `inputLength` pixel bytes in (C-H-W, white ink
    /// on black), a promise of n × `classes` values out.
    #[wasm_bindgen(js_name = logitsBatch, unchecked_return_type = "Promise<Float32Array>")]
    pub fn logits_batch(&self, #[wasm_bindgen(unchecked_param_type = "Uint8Array")] pixels: &JsValue) -> Promise {
        self.run("GpuModel.logitsBatch", pixels, false, None)
    }

    /// Class probabilities (softmax of the logits) of n images: n × `inputLength`
    /// bytes in, a promise of n × `classes` values out.
    #[wasm_bindgen(js_name = predictBatch, unchecked_return_type = "Promise<Float32Array>")]
    pub fn predict_batch(&self, #[wasm_bindgen(unchecked_param_type = "Uint8Array")] pixels: &JsValue) -> Promise {
        self.run("GpuModel.predictBatch", pixels, true, None)
    }

    /// Class probabilities of one image (`inputLength` bytes).
    #[wasm_bindgen(unchecked_return_type = "Promise<Float32Array>")]
    pub fn predict(&self, #[wasm_bindgen(unchecked_param_type = "Uint8Array")] pixels: &JsValue) -> Promise {
        self.run("GpuModel.predict", pixels, true, Some(1))
    }

    /// Logits of one image (`inputLength` bytes).
    #[wasm_bindgen(unchecked_return_type = "Promise<Float32Array>")]
    pub fn logits(&self, #[wasm_bindgen(unchecked_param_type = "Uint8Array")] pixels: &JsValue) -> Promise {
        self.run("GpuModel.logits", pixels, false, Some(1))
    }

    /// The WebGPU adapter the model runs on, from the browser's `GPUAdapterInfo`,
    /// e.g. `"google swiftshader (WebGPU, fallback (software) adapter)"`.
    #[wasm_bindgen(js_name = adapterInfo)]
    pub fn adapter_info(&self) -> String {
        self.adapter.clone()
    }

    /// Whether the kernels use WGSL's `dot4I8Packed`.
    #[wasm_bindgen(getter, js_name = usesPackedDot)]
    pub fn uses_packed_dot(&self) -> bool {
        self.packed_dot
    }

    /// Pixel bytes one image has (784 for MNIST).
    #[wasm_bindgen(getter, js_name = inputLength)]
    pub fn input_length(&self) -> usize {
        self.input_len
    }

    /// Number of classes.
    #[wasm_bindgen(getter)]
    pub fn classes(&self) -> usize {
        self.output_len
    }
}

impl WasmGpuModel {
    /// Checks and copies the pixels now, runs them when the engine is free.
    fn run(&self, context: &'static str, pixels: &JsValue, probabilities: bool, images: Option<usize>) -> Promise {
        let checked = bytes_of(context, "the pixels", pixels).and_then(|bytes| {
            let image = self.input_len;
            let len = bytes.len();
            match images {
                Some(n) if len != n * image => {
                    Err(js_error(context, &format!("input has {len} values, the model takes {image}")))
                }
                None if len == 0 || image == 0 || len % image != 0 => Err(js_error(
                    context,
                    &format!("a batch must hold a whole number (≥ 1) of {image}-byte images, got {len} bytes"),
                )),
                _ => Ok(bytes),
            }
        });
        let pixels = match checked {
            Ok(p) => p,
            Err(e) => return Promise::reject(&e),
        };
        let shared = Rc::clone(&self.shared);
        let classes = self.output_len;
        future_to_promise(async move {
            let mut lease = Acquire(shared).await;
            let Some(engine) = lease.engine.as_mut() else {
                return Err(js_error(context, "the GPU engine is unavailable"));
            };
            let mut values = engine.run_batch_async(&pixels).await.map_err(|e| gpu_error(context, &e))?;
            drop(lease);
            if probabilities && classes > 0 {
                for row in values.chunks_mut(classes) {
                    crate::engine::softmax_in_place(row);
                }
            }
            Ok(Float32Array::from(&values[..]).into())
        })
    }
}
