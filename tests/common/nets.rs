//! Random int8 models in memory, for the tests that compare backends: every
//! op, random shapes, quantisation and weights including the extremes.

use std::collections::HashMap;

use serde_json::{json, Value};
use tinycnn::format::{pixel_quantization, RawNode, Unary};
use tinycnn::format::{write_model, TensorData};
use tinycnn::Shape;

/// xorshift64*: deterministic, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }
    /// Uniform in lo..=hi.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
    pub fn usize(&mut self, lo: usize, hi: usize) -> usize {
        self.range(lo as i64, hi as i64) as usize
    }
    pub fn f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
    /// 2^u with u uniform in [lo, hi).
    pub fn pow2(&mut self, lo: f64, hi: f64) -> f32 {
        (lo + (hi - lo) * self.f64()).exp2() as f32
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u32() as u8).collect()
    }
}

// ---------------------------------------------------------------------------
// In-memory int8 models

pub struct Net {
    pub rng: Rng,
    pub input: Value,
    pub nodes: Vec<Value>,
    pub tensors: Vec<TensorData<'static>>,
    /// Shape, scale and zero point of every value by name.
    pub values: HashMap<String, (Shape, f32, i32)>,
    pub output: Option<String>,
}

impl Net {
    pub fn new(seed: u64, c: usize, h: usize, w: usize) -> Net {
        let mut rng = Rng::new(seed);
        let mean = rng.f64() as f32;
        let std = (0.1 + rng.f64()) as f32;
        let (scale, zero_point) = pixel_quantization(mean, std);
        let input = json!({"channels": c, "height": h, "width": w, "mean": mean, "std": std, "scale": scale, "zero_point": zero_point});
        let mut values = HashMap::new();
        values.insert("input".to_string(), (Shape::new(c, h, w), scale, zero_point));
        Net { rng, input, nodes: Vec::new(), tensors: Vec::new(), values, output: None }
    }

    pub fn info(&self, name: &str) -> (Shape, f32, i32) {
        self.values[name]
    }

    pub fn random_quant(&mut self) -> (f32, i32) {
        (self.rng.pow2(-8.0, 2.0), self.rng.range(-128, 127) as i32)
    }

    pub fn push(&mut self, mut node: Value, shape: Shape, (scale, zero_point): (f32, i32)) -> String {
        let name = format!("n{}", self.nodes.len());
        node["name"] = json!(name);
        node["scale"] = json!(scale);
        node["zero_point"] = json!(zero_point);
        self.nodes.push(node);
        self.values.insert(name.clone(), (shape, scale, zero_point));
        name
    }

    /// Weights, per-channel scales and biases of a conv/dense node with
    /// `taps` = kh·kw·in_c products per output; returns the output quantisation.
    pub fn weights(&mut self, name: &str, shape: Vec<usize>, in_scale: f32, taps: usize) -> (f32, i32) {
        let out_c = shape[0];
        let mut w: Vec<i8> = Vec::with_capacity(out_c * taps);
        for _ in 0..out_c {
            let style = self.rng.usize(0, 9);
            for _ in 0..taps {
                w.push(match style {
                    0 => 127,
                    1 => -127,
                    2 => 0,
                    _ => self.rng.range(-127, 127) as i8,
                });
            }
        }
        let scales: Vec<f32> = (0..out_c).map(|_| self.rng.pow2(-10.0, -3.0)).collect();
        let bias: Vec<i32> = (0..out_c)
            .map(|_| match self.rng.usize(0, 9) {
                0 => 1 << 30,
                1 => -(1 << 30),
                2 => 0,
                _ => {
                    let magnitude = self.rng.pow2(0.0, 22.0) as i32;
                    if self.rng.chance(0.5) {
                        magnitude
                    } else {
                        -magnitude
                    }
                }
            })
            .collect();
        // Output scale around the accumulator's typical size, sometimes far off
        // either way (saturation, multipliers above 1).
        let typical = in_scale * scales.iter().sum::<f32>() / out_c as f32 * (taps as f32).sqrt() * 60.0;
        let scale = typical * self.rng.pow2(-12.0, 4.0);
        let zero_point = self.rng.range(-128, 127) as i32;
        self.tensors.push(TensorData::i8(format!("{name}.weight"), shape, &w));
        self.tensors.push(TensorData::f32(format!("{name}.weight_scale"), vec![out_c], &scales));
        if self.rng.chance(0.85) {
            self.tensors.push(TensorData::i32(format!("{name}.bias"), vec![out_c], &bias));
        }
        (scale, zero_point)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        &mut self,
        input: &str,
        out_c: usize,
        kh: usize,
        kw: usize,
        stride: usize,
        padding: usize,
        relu: bool,
    ) -> String {
        self.general_conv(input, 1, 1, out_c, (kh, kw), stride, [padding; 4], relu)
    }

    /// Any convolution: `groups` channel groups, taps `dilation` apart, padding
    /// [top, left, bottom, right].
    #[allow(clippy::too_many_arguments)]
    pub fn general_conv(
        &mut self,
        input: &str,
        groups: usize,
        dilation: usize,
        out_c: usize,
        (kh, kw): (usize, usize),
        stride: usize,
        [top, left, bottom, right]: [usize; 4],
        relu: bool,
    ) -> String {
        let (s, in_scale, _) = self.info(input);
        let name = format!("n{}", self.nodes.len());
        let group_c = s.c / groups;
        let q = self.weights(&name, vec![out_c, kh, kw, group_c], in_scale, kh * kw * group_c);
        let extent = |k: usize| (k - 1) * dilation + 1;
        let out = |len: usize, k: usize, before: usize, after: usize| (len + before + after - extent(k)) / stride + 1;
        let shape = Shape::new(out_c, out(s.h, kh, top, bottom), out(s.w, kw, left, right));
        let mut node = json!({"op": "conv2d", "inputs": [input], "stride": stride, "relu": relu});
        if [left, bottom, right] == [top; 3] {
            node["padding"] = json!(top);
        } else {
            node["pads"] = json!([top, left, bottom, right]);
        }
        if groups > 1 {
            node["groups"] = json!(groups);
        }
        if dilation > 1 {
            node["dilation"] = json!(dilation);
        }
        self.push(node, shape, q)
    }

    /// A random convolution that fits the input.
    pub fn random_conv(&mut self, input: &str, out_c: usize) -> String {
        let s = self.info(input).0;
        let padding = self.rng.usize(0, 2);
        let kh = self.rng.usize(1, (s.h + 2 * padding).min(4));
        let kw = self.rng.usize(1, (s.w + 2 * padding).min(4));
        let stride = self.rng.usize(1, 2);
        let relu = self.rng.chance(0.5);
        // Dilated: taps 2 or 3 apart, where the spread window still fits.
        let dilation = self.rng.usize(2, 3);
        let fits = |len: usize, k: usize| (k - 1) * dilation < len + 2 * padding;
        if self.rng.chance(0.25) && fits(s.h, kh) && fits(s.w, kw) && (kh > 1 || kw > 1) {
            let groups = if s.c > 1 && self.rng.chance(0.5) { s.c } else { 1 };
            return self.general_conv(input, groups, dilation, groups * out_c, (kh, kw), stride, [padding; 4], relu);
        }
        // Every side its own padding (TFLite's SAME: one more below and right when the total is odd).
        if self.rng.chance(0.25) {
            let sides = [0; 4].map(|_| self.rng.usize(0, 2));
            if kh <= s.h + sides[0] + sides[2] && kw <= s.w + sides[1] + sides[3] {
                let groups = if s.c > 1 && self.rng.chance(0.3) { s.c } else { 1 };
                return self.general_conv(input, groups, 1, groups * out_c, (kh, kw), stride, sides, relu);
            }
        }
        if s.c > 1 && self.rng.chance(0.3) {
            // Grouped: depthwise (one input channel per group) half the time, else any divisor.
            let divisors: Vec<usize> = (2..=s.c).filter(|g| s.c.is_multiple_of(*g)).collect();
            let groups = if self.rng.chance(0.5) { s.c } else { divisors[self.rng.usize(0, divisors.len() - 1)] };
            let multiplier = self.rng.usize(1, 3);
            return self.general_conv(input, groups, 1, groups * multiplier, (kh, kw), stride, [padding; 4], relu);
        }
        self.conv(input, out_c, kh, kw, stride, padding, relu)
    }

    pub fn dense(&mut self, input: &str, out_features: usize, relu: bool) -> String {
        let (s, in_scale, _) = self.info(input);
        let name = format!("n{}", self.nodes.len());
        let q = self.weights(&name, vec![out_features, s.c], in_scale, s.c);
        self.push(json!({"op": "dense", "inputs": [input], "relu": relu}), Shape::new(out_features, 1, 1), q)
    }

    pub fn pool(&mut self, op: &str, input: &str, kernel: usize, stride: usize, padding: usize) -> String {
        let (s, scale, zp) = self.info(input);
        let shape =
            Shape::new(s.c, (s.h + 2 * padding - kernel) / stride + 1, (s.w + 2 * padding - kernel) / stride + 1);
        let node = json!({"op": op, "inputs": [input], "kernel": kernel, "stride": stride, "padding": padding});
        self.push(node, shape, (scale, zp))
    }

    /// A random max or average pool that fits the input, if one does.
    pub fn random_pool(&mut self, input: &str) -> String {
        let s = self.info(input).0;
        let kernel = self.rng.usize(1, 3).min(s.h.min(s.w) + 2);
        let padding = self.rng.usize(0, kernel / 2);
        if s.h + 2 * padding < kernel || s.w + 2 * padding < kernel {
            return input.to_string();
        }
        let stride = self.rng.usize(1, kernel);
        let op = if self.rng.chance(0.5) { "maxpool2d" } else { "avgpool2d" };
        self.pool(op, input, kernel, stride, padding)
    }

    /// An op that keeps its input's quantisation.
    pub fn same_quant(&mut self, op: &str, input: &str, shape: Shape) -> String {
        let (_, scale, zp) = self.info(input);
        self.push(json!({"op": op, "inputs": [input]}), shape, (scale, zp))
    }

    /// An element-wise unary op, written by the graph vocabulary itself.
    pub fn unary(&mut self, input: &str, op: Unary) -> String {
        let (shape, scale, zp) = self.info(input);
        let mut raw = RawNode { op: op.name().into(), inputs: vec![input.into()], ..RawNode::default() };
        op.write_attributes(&mut raw);
        let q = if op.keeps_quantization() { (scale, zp) } else { self.random_quant() };
        self.push(serde_json::to_value(&raw).unwrap(), shape, q)
    }

    /// One of every unary op the vocabulary has, at random: a new one is tested with no test edited.
    pub fn random_unary(&mut self, input: &str) -> String {
        let op = Unary::EXAMPLES[self.rng.usize(0, Unary::EXAMPLES.len() - 1)];
        self.unary(input, op)
    }

    pub fn flatten(&mut self, input: &str) -> String {
        let s = self.info(input).0;
        self.same_quant("flatten", input, Shape::new(s.len(), 1, 1))
    }

    pub fn dropout(&mut self, input: &str) -> String {
        let s = self.info(input).0;
        let (_, scale, zp) = self.info(input);
        self.push(json!({"op": "dropout", "inputs": [input], "p": 0.5}), s, (scale, zp))
    }

    pub fn global_avgpool(&mut self, input: &str) -> String {
        let s = self.info(input).0;
        self.same_quant("global_avgpool", input, Shape::new(s.c, 1, 1))
    }

    pub fn add(&mut self, inputs: &[String], relu: bool) -> String {
        let s = self.info(&inputs[0]).0;
        let q = self.random_quant();
        self.push(json!({"op": "add", "inputs": inputs, "relu": relu}), s, q)
    }

    /// Concatenation; with `copy_from = Some(k)` the output takes input k's
    /// quantisation, so that input is copied rather than rescaled.
    pub fn concat(&mut self, inputs: &[String], copy_from: Option<usize>) -> String {
        let s = self.info(&inputs[0]).0;
        let c = inputs.iter().map(|i| self.info(i).0.c).sum();
        let q = match copy_from {
            Some(k) => {
                let (_, scale, zp) = self.info(&inputs[k]);
                (scale, zp)
            }
            None => self.random_quant(),
        };
        self.push(json!({"op": "concat", "inputs": inputs}), Shape::new(c, s.h, s.w), q)
    }

    /// Half the time TFLite's integer softmax (output 1/256, −128; a random beta), which
    /// every backend then computes as the int8 output; else the f32 softmax after the logits.
    pub fn softmax(&mut self, input: &str) -> String {
        let s = self.info(input).0;
        let name = if self.rng.chance(0.5) {
            let beta = [1.0, 0.5, 2.0, 0.3][self.rng.usize(0, 3)];
            self.push(json!({"op": "softmax", "inputs": [input], "beta": beta}), s, (1.0 / 256.0, -128))
        } else {
            self.same_quant("softmax", input, s)
        };
        self.output = Some(name.clone());
        name
    }

    /// The model file.
    pub fn build(self) -> Vec<u8> {
        let mut graph = json!({"format": 1, "dtype": "int8", "input": self.input, "nodes": self.nodes});
        if let Some(output) = self.output {
            graph["output"] = json!(output);
        }
        let bytes = write_model(&graph.to_string(), &self.tensors).unwrap();
        if let Err(e) = tinycnn::Network::load(&bytes[..]) {
            panic!("test model does not load: {e}\n{graph}");
        }
        bytes
    }
}

/// Random images plus an all-black and an all-white one.
pub fn images(rng: &mut Rng, input_len: usize, n: usize) -> Vec<u8> {
    let len = input_len;
    let mut pixels = rng.bytes(n * len);
    pixels.extend(std::iter::repeat_n(0u8, len));
    pixels.extend(std::iter::repeat_n(255u8, len));
    pixels
}

/// conv → [relu, clamp, …] → [pool] → conv → (flatten → dropout → dense → dense [→ softmax] | end).
pub fn chain(seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed ^ 0xc4a1);
    let (c, h, w) = (rng.usize(1, 6), rng.usize(3, 12), rng.usize(3, 12));
    let mut net = Net::new(seed, c, h, w);
    let c1 = net.rng.usize(1, 9);
    let mut x = net.random_conv("input", c1);
    if net.rng.chance(0.5) {
        x = net.random_unary(&x);
    }
    if net.rng.chance(0.7) {
        x = net.random_pool(&x);
    }
    let c2 = net.rng.usize(1, 9);
    x = net.random_conv(&x, c2);
    if net.rng.chance(0.25) {
        return net.build(); // logits are the conv's C×H×W output
    }
    x = net.flatten(&x);
    x = net.dropout(&x);
    let hidden = net.rng.usize(1, 12);
    let relu = net.rng.chance(0.5);
    x = net.dense(&x, hidden, relu);
    let classes = net.rng.usize(2, 10);
    x = net.dense(&x, classes, false);
    if net.rng.chance(0.5) {
        net.softmax(&x);
    }
    net.build()
}

/// stem conv → k parallel convs → add (2..=8 inputs) → relu, clamp, … → [avgpool] → gap → dense → softmax.
pub fn residual(seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed ^ 0xadd);
    let (c, h, w) = (rng.usize(1, 4), rng.usize(3, 9), rng.usize(3, 9));
    let mut net = Net::new(seed, c, h, w);
    let width = net.rng.usize(1, 10);
    let stem = net.conv("input", width, 3, 3, 1, 1, true);
    let mut branches = vec![stem.clone()];
    for _ in 0..net.rng.usize(1, 7) {
        let b = if net.rng.chance(0.5) {
            let relu = net.rng.chance(0.5);
            net.conv(&stem, width, 3, 3, 1, 1, relu)
        } else {
            net.conv(&stem, width, 1, 1, 1, 0, false)
        };
        branches.push(b);
    }
    let relu = net.rng.chance(0.5);
    let mut x = net.add(&branches, relu);
    x = net.random_unary(&x);
    if net.rng.chance(0.5) {
        x = net.random_pool(&x);
    }
    x = net.global_avgpool(&x);
    let classes = net.rng.usize(2, 10);
    x = net.dense(&x, classes, false);
    net.softmax(&x);
    net.build()
}

/// stem conv → convolutions that keep the value's size (3×3, 5×5, 1×1,
/// depthwise, dilated, uneven padding) → add with the stem → [unary] → [2×2
/// stride 2 to four times the channels]: what a microcontroller's load runs
/// over its inputs (`Conv2dGeometry::in_place_rows`; the add in an input's
/// bytes). The last value is the logits: every byte of it is compared.
pub fn same_size_convs(seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed ^ 0x5a3e);
    let (c, h, w) = (rng.usize(1, 3), 2 * rng.usize(3, 6), 2 * rng.usize(2, 6));
    let mut net = Net::new(seed, c, h, w);
    let width = net.rng.usize(2, 6).max(c);
    let stem = net.conv("input", width, 3, 3, 1, 1, true);
    let mut x = stem.clone();
    for _ in 0..net.rng.usize(1, 5) {
        let relu = net.rng.chance(0.5);
        x = match net.rng.usize(0, 5) {
            0 => net.conv(&x, width, 3, 3, 1, 1, relu),
            1 => net.conv(&x, width, 1, 1, 1, 0, relu),
            2 => net.general_conv(&x, width, 1, width, (3, 3), 1, [1; 4], relu),
            3 => net.general_conv(&x, 1, 2, width, (3, 3), 1, [2; 4], relu),
            4 => net.general_conv(&x, 1, 1, width, (3, 2), 1, [2, 0, 0, 1], relu),
            _ => net.conv(&x, width, 5, 5, 1, 2, relu),
        };
    }
    let relu = net.rng.chance(0.5);
    let mut x = net.add(&[x, stem], relu);
    if net.rng.chance(0.5) {
        x = net.random_unary(&x);
    }
    if net.rng.chance(0.5) {
        net.general_conv(&x, 1, 1, 4 * width, (2, 2), 2, [0; 4], relu);
    }
    net.build()
}

/// stem → {1×1 conv, 3×3 conv, 3×3 maxpool, 3×3 avgpool, …} → concat → flatten → dense.
pub fn inception(seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed ^ 0xca7);
    let (c, h, w) = (rng.usize(1, 3), rng.usize(2, 8), rng.usize(2, 8));
    let mut net = Net::new(seed, c, h, w);
    let width = net.rng.usize(1, 7);
    let stem = net.conv("input", width, 3, 3, 1, 1, true);
    let mut branches = Vec::new();
    for _ in 0..net.rng.usize(2, 8) {
        let b = match net.rng.usize(0, 4) {
            0 => {
                let c = net.rng.usize(1, 6);
                net.conv(&stem, c, 1, 1, 1, 0, true)
            }
            1 => {
                let c = net.rng.usize(1, 6);
                net.conv(&stem, c, 3, 3, 1, 1, true)
            }
            2 => net.pool("maxpool2d", &stem, 3, 1, 1),
            3 => net.pool("avgpool2d", &stem, 3, 1, 1),
            _ => stem.clone(),
        };
        branches.push(b);
    }
    let copy_from = if net.rng.chance(0.5) { Some(net.rng.usize(0, branches.len() - 1)) } else { None };
    let mut x = net.concat(&branches, copy_from);
    if net.rng.chance(0.5) {
        x = net.global_avgpool(&x);
    } else {
        x = net.flatten(&x);
    }
    let classes = net.rng.usize(2, 10);
    let relu = net.rng.chance(0.3);
    x = net.dense(&x, classes, relu);
    net.softmax(&x);
    net.build()
}
