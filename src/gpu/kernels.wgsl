// tinycnn int8 kernels for WebGPU: one entry point per op family, each
// bit-identical to the scalar reference in src/kernels/ (docs/FORMAT.md's
// integer spec, src/quant/fixed_point.rs's arithmetic).
//
// Layout. Every activation is H×W×C int8 with C padded to a multiple of 4
// ("C4"), packed 4 per u32 little-endian (channel 4j+k is byte k of word j).
// All activations of a batch of `batch.n` images live in one `arena` buffer:
// value v occupies words [n·off_v, n·(off_v + words_v)), image i at
// n·off_v + i·words_v. Each invocation computes whole output words (4
// channels of a pixel of an image; conv: a block of them), so no two
// invocations write the same word. Padding channels hold don't-care bytes; the
// weights of padding input channels are 0 and padding output channels are
// requantised from 0, so they never reach a real output.
//
// The host prepends the dot-product flavour: `Operand`, the form a packed
// word is multiplied in, `operand(word)` and `dot4(a, b)`. With the
// packed_4x8_integer_dot_product language feature: the word itself and WGSL's
// dot4I8Packed; otherwise the word unpacked once to vec4<i32> and dot().

struct Node {
    a: vec4<u32>, // out_off, out_words, in_off, in_words
    b: vec4<u32>, // in_h, in_w, in_cw (words per input pixel), in_c
    c: vec4<u32>, // out_h, out_w, out_cw, out_c
    d: vec4<u32>, // kernel_h, kernel_w, stride, padding (conv: the top; pools: every side)
    q: vec4<i32>, // in_zero_point, out_zero_point, out_min, out_max
    e: vec4<u32>, // weight word offset, channel offset, input count, window (pool divisor)
    m: vec4<i32>, // add: output multiplier mantissa, shift; conv: dilation, left padding, (grouped) input, output channels per group; softmax: input multiplier, left shift, diff_min
    g: vec4<u32>, // conv: invocations per image and channel-word group, pixel blocks per output row
    ins: array<vec4<u32>, 8>, // add/concat input k: off, words, cw, channels
    inq: array<vec4<i32>, 8>, // input k: zero_point, mantissa, shift, rescale (concat: 0 = plain copy)
    inx: array<vec4<u32>, 8>, // concat input k: first output channel
}

struct Batch {
    n: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> node: Node;
@group(0) @binding(1) var<storage, read_write> arena: array<u32>;
@group(0) @binding(2) var<storage, read> weights: array<u32>;
// Per output channel: (bias − in_zp·Σw, Q31 mantissa, shift, 0).
@group(0) @binding(3) var<storage, read> chans: array<vec4<i32>>;
@group(0) @binding(4) var<uniform> batch: Batch;

const WG: u32 = 64u;
const I32_MAX: i32 = 2147483647;
const I32_MIN: i32 = -2147483647 - 1;

// Signed byte k of a packed word.
fn lane(x: u32, k: u32) -> i32 {
    return bitcast<i32>(x << (24u - 8u * k)) >> 24u;
}

fn lanes(x: u32) -> vec4<i32> {
    return vec4<i32>(lane(x, 0u), lane(x, 1u), lane(x, 2u), lane(x, 3u));
}

fn pack4(v: vec4<i32>) -> u32 {
    let u = bitcast<vec4<u32>>(v) & vec4<u32>(0xffu);
    return u.x | (u.y << 8u) | (u.z << 16u) | (u.w << 24u);
}

// ---------------------------------------------------------------------------
// Fixed point (src/quant/fixed_point.rs). WGSL has no i64: the 32×32→64
// product is built from 16-bit limbs.

// Wrapping i32 addition that saturates instead (Rust's i32::saturating_add).
fn sat_add(a: i32, b: i32) -> i32 {
    let s = bitcast<i32>(bitcast<u32>(a) + bitcast<u32>(b));
    if (a >= 0 && b >= 0 && s < 0) {
        return I32_MAX;
    }
    if (a < 0 && b < 0 && s >= 0) {
        return I32_MIN;
    }
    return s;
}

// x·2^left clamped to the i32 range. left ≥ 31 saturates every x but 0 and −1
// exactly as left = 31 does, so it is clamped there.
fn sat_left_shift(x: i32, left_in: u32) -> i32 {
    let left = min(left_in, 31u);
    if (x > (I32_MAX >> left)) {
        return I32_MAX;
    }
    if (x < (I32_MIN >> left)) {
        return I32_MIN;
    }
    return x << left;
}

// Full 64-bit product of two u32: (low word, high word).
fn mul_wide(x: u32, y: u32) -> vec2<u32> {
    let xl = x & 0xffffu;
    let xh = x >> 16u;
    let yl = y & 0xffffu;
    let yh = y >> 16u;
    let ll = xl * yl;
    let lh = xl * yh;
    let hl = xh * yl;
    let hh = xh * yh;
    let mid = lh + hl;
    let mid_carry = select(0u, 0x10000u, mid < lh); // 2^32 of `mid` is 2^16 of the high word
    let lo = ll + (mid << 16u);
    let lo_carry = select(0u, 1u, lo < ll);
    let hi = hh + (mid >> 16u) + mid_carry + lo_carry;
    return vec2<u32>(lo, hi);
}

// gemmlowp's SaturatingRoundingDoublingHighMul: round(a·b / 2^31), ties away
// from zero. On magnitudes p = |a|·|b|: a·b ≥ 0 gives (p + 2^30) >> 31,
// a·b < 0 gives −((p + 2^30 − 1) >> 31) (Rust's (ab + nudge) / 2^31).
fn srdhm(a: i32, b: i32) -> i32 {
    if (a == I32_MIN && b == I32_MIN) {
        return I32_MAX;
    }
    let negative = (a < 0) != (b < 0);
    let ua = select(bitcast<u32>(a), 0u - bitcast<u32>(a), a < 0);
    let ub = select(bitcast<u32>(b), 0u - bitcast<u32>(b), b < 0);
    let p = mul_wide(ua, ub);
    let nudge = select(0x40000000u, 0x3fffffffu, negative);
    let lo = p.x + nudge;
    let hi = p.y + select(0u, 1u, lo < p.x);
    let q = (hi << 1u) | (lo >> 31u);
    return select(bitcast<i32>(q), bitcast<i32>(0u - q), negative);
}

// gemmlowp's RoundingDivideByPOT: x / 2^exponent, ties away from zero.
fn rdivpot(x: i32, exponent: u32) -> i32 {
    let e = min(exponent, 31u);
    let mask = (1u << e) - 1u;
    let remainder = bitcast<u32>(x) & mask;
    let threshold = (mask >> 1u) + select(0u, 1u, x < 0);
    return (x >> e) + select(0, 1, remainder > threshold);
}

// Multiplier::apply: x · mantissa · 2^(shift − 31), rounded.
fn apply(x: i32, mantissa: i32, shift: i32) -> i32 {
    let left = u32(max(shift, 0));
    let right = u32(max(-shift, 0));
    return rdivpot(srdhm(sat_left_shift(x, left), mantissa), right);
}

// fixed_point::requantize: scale, add the zero point (saturating), clamp.
fn requantize(acc: i32, ch: vec4<i32>) -> i32 {
    return clamp(sat_add(apply(acc, ch.y, ch.z), node.q.y), node.q.z, node.q.w);
}

// fixed_point::rounding_divide: x / n rounded half away from zero, n > 0.
fn rounding_divide(x: i32, n: u32) -> i32 {
    let magnitude = select(bitcast<u32>(x), 0u - bitcast<u32>(x), x < 0);
    let q = magnitude / n + select(0u, 1u, 2u * (magnitude % n) >= n);
    return select(bitcast<i32>(q), bitcast<i32>(0u - q), x < 0);
}

// ---------------------------------------------------------------------------
// Indexing

// Flat invocation index over a (x, y) grid of workgroups.
fn thread_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * WG;
}

fn in_base(img: u32) -> u32 {
    return batch.n * node.a.z + img * node.a.w;
}

fn out_index(img: u32, w: u32) -> u32 {
    return batch.n * node.a.x + img * node.a.y + w;
}

// ---------------------------------------------------------------------------
// conv2d (and dense: a 1×1 convolution of a 1×1 image). Out-of-image taps
// read the input zero point (real 0), whose products are cancelled by the
// −in_zp·Σw folded into the channel constant: acc = bias + Σ w·(x − zp) over
// the taps inside the image, as the reference computes it (mod 2^32).
//
// An invocation computes WORDS output words (4·WORDS channels) of PIX
// consecutive pixels of a row, so each input word loaded serves 4·WORDS
// channels and each weight word PIX pixels. The channel words come from the
// workgroup's z index: uniform across the workgroup, so weight loads are
// scalar (broadcast) loads. The pipeline sets PIX and WORDS.

override PIX: u32 = 1u;
override WORDS: u32 = 1u;
const MAX_PIX: u32 = 4u;
const MAX_WORDS: u32 = 2u;

@compute @workgroup_size(64)
fn conv(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    let idx = thread_index(gid, groups);
    let per_image = node.g.x;
    if (idx >= batch.n * per_image) {
        return;
    }
    let img = idx / per_image;
    let block = idx % per_image;
    let out_cw = node.c.z;
    let out_w = node.c.y;
    let word0 = wg.z * WORDS;
    let ox0 = (block % node.g.y) * PIX;
    let oy = block / node.g.y;
    let base = in_base(img);
    let in_h = i32(node.b.x);
    let in_w = i32(node.b.y);
    let in_cw = node.b.z;
    let kh = node.d.x;
    let kw = node.d.y;
    let stride = node.d.z;
    let pad_top = i32(node.d.w);
    let pad_left = node.m.y;
    let dilation = u32(node.m.x);
    let zero = operand((bitcast<u32>(node.q.x) & 0xffu) * 0x01010101u);
    let row = kh * kw * in_cw;
    let w0 = node.e.x + word0 * 4u * row;
    let ch = node.e.y + word0 * 4u;
    var acc: array<array<vec4<i32>, MAX_PIX>, MAX_WORDS>;
    for (var g = 0u; g < WORDS; g++) {
        let c = ch + 4u * g;
        let bias = vec4<i32>(chans[c].x, chans[c + 1u].x, chans[c + 2u].x, chans[c + 3u].x);
        for (var p = 0u; p < PIX; p++) {
            acc[g][p] = bias;
        }
    }
    for (var ky = 0u; ky < kh; ky++) {
        let iy = i32(oy * stride + ky * dilation) - pad_top;
        let row_inside = iy >= 0 && iy < in_h;
        for (var kx = 0u; kx < kw; kx++) {
            var src: array<u32, MAX_PIX>;
            var inside: array<bool, MAX_PIX>;
            for (var p = 0u; p < PIX; p++) {
                let ix = i32((ox0 + p) * stride + kx * dilation) - pad_left;
                inside[p] = row_inside && ix >= 0 && ix < in_w;
                src[p] = base + u32(iy * in_w + ix) * in_cw;
            }
            let t = w0 + (ky * kw + kx) * in_cw;
            for (var j = 0u; j < in_cw; j++) {
                var x: array<Operand, MAX_PIX>;
                for (var p = 0u; p < PIX; p++) {
                    x[p] = zero;
                    if (inside[p]) {
                        x[p] = operand(arena[src[p] + j]);
                    }
                }
                for (var g = 0u; g < WORDS; g++) {
                    let tg = t + 4u * g * row + j;
                    let w_0 = operand(weights[tg]);
                    let w_1 = operand(weights[tg + row]);
                    let w_2 = operand(weights[tg + 2u * row]);
                    let w_3 = operand(weights[tg + 3u * row]);
                    for (var p = 0u; p < PIX; p++) {
                        acc[g][p] += vec4<i32>(dot4(x[p], w_0), dot4(x[p], w_1), dot4(x[p], w_2), dot4(x[p], w_3));
                    }
                }
            }
        }
    }
    let out_base = batch.n * node.a.x + img * node.a.y + (oy * out_w + ox0) * out_cw + word0;
    for (var g = 0u; g < WORDS; g++) {
        let c = ch + 4u * g;
        let c0 = chans[c];
        let c1 = chans[c + 1u];
        let c2 = chans[c + 2u];
        let c3 = chans[c + 3u];
        for (var p = 0u; p < PIX; p++) {
            if (ox0 + p < out_w) {
                let a = acc[g][p];
                let res = vec4<i32>(requantize(a.x, c0), requantize(a.y, c1), requantize(a.z, c2), requantize(a.w, c3));
                arena[out_base + p * out_cw + g] = pack4(res);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Grouped convolution (groups > 1; depthwise when each group is one input
// channel): one output word (4 channels of a pixel) per invocation. Output
// channel o reads input channels [o / og · ig, +ig). The weights are the OHWI
// bytes as the file holds them (I = ig), 4 per word; the channel constants
// hold the raw bias, so acc = bias + Σ w·(x − zp) over the taps inside the
// image, as the reference computes it.

@compute @workgroup_size(64)
fn grouped_conv(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = thread_index(gid, groups);
    let out_words = node.a.y;
    if (idx >= batch.n * out_words) {
        return;
    }
    let img = idx / out_words;
    let w = idx % out_words;
    let out_cw = node.c.z;
    let pix = w / out_cw;
    let ox = pix % node.c.y;
    let oy = pix / node.c.y;
    let base = in_base(img);
    let ig = u32(node.m.z);
    let og = u32(node.m.w);
    let kh = node.d.x;
    let kw = node.d.y;
    let dilation = u32(node.m.x);
    var res = vec4<i32>(0);
    for (var k = 0u; k < 4u; k++) {
        let o = (w % out_cw) * 4u + k;
        if (o >= node.c.w) {
            continue;
        }
        let ch = chans[node.e.y + o];
        let first = (o / og) * ig;
        var acc = ch.x;
        for (var ky = 0u; ky < kh; ky++) {
            let iy = i32(oy * node.d.z + ky * dilation) - i32(node.d.w);
            if (iy < 0 || iy >= i32(node.b.x)) {
                continue;
            }
            for (var kx = 0u; kx < kw; kx++) {
                let ix = i32(ox * node.d.z + kx * dilation) - node.m.y;
                if (ix < 0 || ix >= i32(node.b.y)) {
                    continue;
                }
                let src = base + u32(iy * i32(node.b.y) + ix) * node.b.z;
                let t = ((o * kh + ky) * kw + kx) * ig;
                for (var i = 0u; i < ig; i++) {
                    let c = first + i;
                    let e = t + i;
                    let x = lane(arena[src + c / 4u], c % 4u);
                    acc += lane(weights[node.e.x + e / 4u], e % 4u) * (x - node.q.x);
                }
            }
        }
        res[k] = requantize(acc, ch);
    }
    arena[out_index(img, w)] = pack4(res);
}

// ---------------------------------------------------------------------------
// Pools (input and output share C4, so word j of a pixel maps to word j).

// One output word of a pool: which image, word and pixel it is, and where its input lives.
struct PoolSite {
    img: u32,
    w: u32,
    j: u32,
    cw: u32,
    ox: u32,
    oy: u32,
    base: u32,
}

fn pool_site(idx: u32) -> PoolSite {
    let out_words = node.a.y;
    let w = idx % out_words;
    let cw = node.c.z;
    let pix = w / cw;
    return PoolSite(idx / out_words, w, w % cw, cw, pix % node.c.y, pix / node.c.y, in_base(idx / out_words));
}

// The input word of tap (ky, kx) for `site`, or -1 when the tap lies in the padding.
fn pool_tap(site: PoolSite, ky: u32, kx: u32) -> i32 {
    let iy = i32(site.oy * node.d.z + ky) - i32(node.d.w);
    let ix = i32(site.ox * node.d.z + kx) - i32(node.d.w);
    if (iy < 0 || iy >= i32(node.b.x) || ix < 0 || ix >= i32(node.b.y)) {
        return -1;
    }
    return i32(site.base + u32(iy * i32(node.b.y) + ix) * site.cw + site.j);
}

@compute @workgroup_size(64)
fn maxpool(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = thread_index(gid, groups);
    if (idx >= batch.n * node.a.y) {
        return;
    }
    let site = pool_site(idx);
    var m = vec4<i32>(-128);
    for (var ky = 0u; ky < node.d.x; ky++) {
        for (var kx = 0u; kx < node.d.y; kx++) {
            let tap = pool_tap(site, ky, kx);
            if (tap >= 0) {
                m = max(m, lanes(arena[u32(tap)]));
            }
        }
    }
    arena[out_index(site.img, site.w)] = pack4(m);
}

// count_include_pad: Σ(x − zp) over the taps inside, plus zp per tap of the whole
// window (= Σx with padding at zp), divided by the window: TFLite's rounding.
@compute @workgroup_size(64)
fn avgpool(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = thread_index(gid, groups);
    if (idx >= batch.n * node.a.y) {
        return;
    }
    let site = pool_site(idx);
    let zp = node.q.x;
    var sum = vec4<i32>(0);
    for (var ky = 0u; ky < node.d.x; ky++) {
        for (var kx = 0u; kx < node.d.y; kx++) {
            let tap = pool_tap(site, ky, kx);
            if (tap >= 0) {
                sum += lanes(arena[u32(tap)]) - vec4<i32>(zp);
            }
        }
    }
    let window = node.e.w;
    var res: vec4<i32>;
    for (var k = 0u; k < 4u; k++) {
        res[k] = clamp(rounding_divide(sum[k] + i32(window) * zp, window), -128, 127);
    }
    arena[out_index(site.img, site.w)] = pack4(res);
}

@compute @workgroup_size(64)
fn global_avgpool(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = thread_index(gid, groups);
    let out_words = node.a.y;
    if (idx >= batch.n * out_words) {
        return;
    }
    let img = idx / out_words;
    let w = idx % out_words;
    let cw = node.b.z;
    let base = in_base(img);
    let pixels = node.b.x * node.b.y;
    var sum = vec4<i32>(0);
    for (var p = 0u; p < pixels; p++) {
        sum += lanes(arena[base + p * cw + w]);
    }
    var res: vec4<i32>;
    for (var k = 0u; k < 4u; k++) {
        res[k] = clamp(rounding_divide(sum[k], pixels), -128, 127);
    }
    arena[out_index(img, w)] = pack4(res);
}

// ---------------------------------------------------------------------------
// Element-wise ops and data movement.

// Element-wise unary ops (relu, clamp, …): entry x + 128 of the op's int8
// table, 4 entries per word, from word node.e.x of `weights`.
@compute @workgroup_size(64)
fn lookup(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = thread_index(gid, groups);
    let out_words = node.a.y;
    if (idx >= batch.n * out_words) {
        return;
    }
    let img = idx / out_words;
    let w = idx % out_words;
    let x = lanes(arena[in_base(img) + w]);
    var res: vec4<i32>;
    for (var k = 0u; k < 4u; k++) {
        let entry = u32(x[k] + 128);
        res[k] = lane(weights[node.e.x + entry / 4u], entry % 4u);
    }
    arena[out_index(img, w)] = pack4(res);
}

// flatten of an H×W×C value whose C is a multiple of 4 (or H = W = 1), dropout.
@compute @workgroup_size(64)
fn copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = thread_index(gid, groups);
    let out_words = node.a.y;
    if (idx >= batch.n * out_words) {
        return;
    }
    let img = idx / out_words;
    let w = idx % out_words;
    arena[out_index(img, w)] = arena[in_base(img) + w];
}

// flatten: drops the channel padding, H×W×C4 → (H·W·C) packed.
@compute @workgroup_size(64)
fn flatten(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = thread_index(gid, groups);
    let out_words = node.a.y;
    if (idx >= batch.n * out_words) {
        return;
    }
    let img = idx / out_words;
    let w = idx % out_words;
    let base = in_base(img);
    let in_c = node.b.w;
    let total = node.b.x * node.b.y * in_c;
    var res = vec4<i32>(0);
    for (var k = 0u; k < 4u; k++) {
        let e = w * 4u + k;
        if (e < total) {
            let c = e % in_c;
            res[k] = lane(arena[base + (e / in_c) * node.b.z + c / 4u], c % 4u);
        }
    }
    arena[out_index(img, w)] = pack4(res);
}

// TFLite's reference ADD: out = clamp(zp + M_out·Σ_k M_k·((x_k − zp_k) << 20)).
@compute @workgroup_size(64)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = thread_index(gid, groups);
    let out_words = node.a.y;
    if (idx >= batch.n * out_words) {
        return;
    }
    let img = idx / out_words;
    let w = idx % out_words;
    var sum = vec4<i32>(0);
    for (var i = 0u; i < node.e.z; i++) {
        let src_in = node.ins[i];
        let q = node.inq[i];
        let x = lanes(arena[batch.n * src_in.x + img * src_in.y + w]);
        for (var k = 0u; k < 4u; k++) {
            let shifted = (x[k] - q.x) << 20u;
            sum[k] = sat_add(sum[k], apply(shifted, q.y, q.z));
        }
    }
    var res: vec4<i32>;
    for (var k = 0u; k < 4u; k++) {
        let value = sat_add(apply(sum[k], node.m.x, node.m.y), node.q.y);
        res[k] = clamp(value, node.q.z, node.q.w);
    }
    arena[out_index(img, w)] = pack4(res);
}

// Channel concatenation; inputs with another scale or zero point are rescaled.
@compute @workgroup_size(64)
fn concat(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = thread_index(gid, groups);
    let out_words = node.a.y;
    if (idx >= batch.n * out_words) {
        return;
    }
    let img = idx / out_words;
    let w = idx % out_words;
    let out_cw = node.c.z;
    let pix = w / out_cw;
    let c_first = (w % out_cw) * 4u;
    var res = vec4<i32>(0);
    for (var k = 0u; k < 4u; k++) {
        let c = c_first + k;
        if (c >= node.c.w) {
            continue;
        }
        for (var i = 0u; i < node.e.z; i++) {
            let src_in = node.ins[i];
            let start = node.inx[i].x;
            if (c >= start && c < start + src_in.w) {
                let ic = c - start;
                var v = lane(arena[batch.n * src_in.x + img * src_in.y + pix * src_in.z + ic / 4u], ic % 4u);
                let q = node.inq[i];
                if (q.w != 0) {
                    v = clamp(sat_add(apply(v - q.x, q.y, q.z), node.q.y), -128, 127);
                }
                res[k] = v;
            }
        }
    }
    arena[out_index(img, w)] = pack4(res);
}

// ---------------------------------------------------------------------------
// Test hook (GpuEngine::check_fixed_point): the fixed-point primitives on
// `batch.n` (x, y, s) triples at the start of the arena; 5 results each after them.
@compute @workgroup_size(64)
fn fixed_point_check(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = thread_index(gid, groups);
    let n = batch.n;
    if (idx >= n) {
        return;
    }
    let x = bitcast<i32>(arena[3u * idx]);
    let y = bitcast<i32>(arena[3u * idx + 1u]);
    let s = bitcast<i32>(arena[3u * idx + 2u]);
    let o = 3u * n + 5u * idx;
    arena[o] = bitcast<u32>(apply(x, y, s));
    arena[o + 1u] = bitcast<u32>(srdhm(x, y));
    arena[o + 2u] = bitcast<u32>(rdivpot(x, bitcast<u32>(s) & 31u));
    arena[o + 3u] = bitcast<u32>(sat_add(x, y));
    arena[o + 4u] = bitcast<u32>(rounding_divide(x, max(bitcast<u32>(y) & 0xffffffu, 1u)));
}

// ---------------------------------------------------------------------------
// softmax: TFLite's integer softmax (src/kernels/softmax.rs, gemmlowp's fixed
// point), one invocation per pixel of an image over its in_c channels. The
// input differences are rescaled into Q5.26, exp'd into Q0.31, summed in
// Q12.19; the reciprocal of the sum scales each exp to the output (1/256, −128).

// gemmlowp's SaturatingRoundingMultiplyByPOT for a left shift e in 1..=30.
fn sat_mul_pot(x: i32, e: u32) -> i32 {
    let threshold = (1 << (31u - e)) - 1;
    if (x > threshold) {
        return I32_MAX;
    }
    if (x < -threshold) {
        return I32_MIN;
    }
    return x << e;
}

// exp on [−1/4, 0), Q0.31: gemmlowp's Taylor expansion around −1/8.
fn exp_quarter(a: i32) -> i32 {
    let x = a + (1 << 28);
    let x2 = srdhm(x, x);
    let x3 = srdhm(x2, x);
    let x4 = srdhm(x2, x2);
    let poly = rdivpot(srdhm(rdivpot(x4, 2u) + x3, 715827883) + x2, 1u);
    return 1895147668 + srdhm(1895147668, x + poly);
}

// exp of a Q5.26 value ≤ 0, Q0.31 (gemmlowp's exp_on_negative_values).
fn exp_negative(a: i32) -> i32 {
    let quarter = 1 << 24;
    let a_mod = (a & (quarter - 1)) - quarter;
    var result = exp_quarter(sat_mul_pot(a_mod, 5u));
    let remainder = a_mod - a;
    // exp(−2^k) in Q0.31 for k = −2..=4, in gemmlowp's order.
    var factors = array<i32, 7>(1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242);
    for (var k = 0u; k < 7u; k++) {
        if ((remainder & (1 << (24u + k))) != 0) {
            result = srdhm(result, factors[k]);
        }
    }
    return select(result, I32_MAX, a == 0);
}

// 1/(1 + a) for a ∈ [0, 1) in Q0.31: three Newton–Raphson steps in Q2.29.
// a ≥ 0 here (the loader keeps the sum of exps in range), so gemmlowp's
// RoundingHalfSum(a, 1) is (a + 2^31) / 2, exactly, in u32.
fn one_over_one_plus(a: i32) -> i32 {
    let half = bitcast<i32>((bitcast<u32>(a) + 0x80000000u) >> 1u);
    var x = 1515870810 + srdhm(half, -1010580540);
    for (var i = 0; i < 3; i++) {
        let one_minus = (1 << 29) - srdhm(half, x);
        x = x + sat_mul_pot(srdhm(x, one_minus), 2u);
    }
    return sat_mul_pot(x, 1u);
}

// exp(beta·scale·d) in Q0.31 of a difference d = x − max ≥ diff_min.
fn softmax_exp(d: i32) -> i32 {
    let rescaled = srdhm(d * bitcast<i32>(1u << u32(node.m.y)), node.m.x);
    return exp_negative(rescaled);
}

@compute @workgroup_size(64)
fn softmax(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = thread_index(gid, groups);
    let pixels = node.b.x * node.b.y;
    if (idx >= batch.n * pixels) {
        return;
    }
    let img = idx / pixels;
    let p = idx % pixels;
    let depth = node.b.w;
    let base = in_base(img) + p * node.b.z;
    let diff_min = node.m.z;
    var top = -128;
    for (var c = 0u; c < depth; c++) {
        top = max(top, lane(arena[base + c / 4u], c % 4u));
    }
    var sum = 0;
    for (var c = 0u; c < depth; c++) {
        let d = lane(arena[base + c / 4u], c % 4u) - top;
        if (d >= diff_min) {
            sum += rdivpot(softmax_exp(d), 12u);
        }
    }
    // TFLite's GetReciprocal: sum = 2^(12 − headroom) · (1 + shifted), shifted ∈ [0, 1).
    let headroom = countLeadingZeros(bitcast<u32>(sum));
    let bits_over_unit = 12 - i32(headroom);
    let shifted = bitcast<i32>((bitcast<u32>(sum) << headroom) - 0x80000000u);
    let scale = one_over_one_plus(shifted);
    let exponent = u32(clamp(bits_over_unit + 23, 0, 31));
    let out_cw = node.c.z;
    for (var w = 0u; w < out_cw; w++) {
        var res = vec4<i32>(-128);
        for (var k = 0u; k < 4u; k++) {
            let c = 4u * w + k;
            if (c < depth) {
                let d = lane(arena[base + w], k) - top;
                if (d >= diff_min) {
                    res[k] = clamp(rdivpot(srdhm(scale, softmax_exp(d)), exponent) - 128, -128, 127);
                }
            }
        }
        arena[out_index(img, p * out_cw + w)] = pack4(res);
    }
}
