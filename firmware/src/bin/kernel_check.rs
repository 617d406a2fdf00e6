//! The fast int8 kernels against the reference kernels on the target itself
//! (Cortex-M DSP on thumbv7em: `smlad` in `dsp::rows`, `smlabb`/`smlatt` in
//! `dsp::depthwise`): random conv (ungrouped and depthwise) and dense shapes,
//! zero points, clamps and requantisation constants, as
//! tests/kernel_variants.rs does natively, plus the dense layer at the extremes
//! of the accumulator. The reference reads the plain requantisation form, the
//! fast kernels the compact form a loaded model keeps (`Requant::Compact`).
//! Prints the count and exits non-zero on the first mismatch.
//! Run by scripts/test-mcu on each emulated board.

#![no_std]
#![no_main]

// The checks build their random shapes on a heap of their own; the model
// firmware (src/main.rs) has none.
extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use core::mem::MaybeUninit;

use embedded_alloc::LlffHeap;

use cortex_m_rt::entry;
use cortex_m_semihosting::debug::{EXIT_FAILURE, EXIT_SUCCESS};
use cortex_m_semihosting::heprintln;
use tinycnn::internals::kernels::{conv, dense, dot};
use tinycnn::internals::spec::fixed_point::{ChannelRequant, Multiplier, OutputRange, Requant};
use tinycnn::internals::spec::{output_len_padded, Conv2dGeometry};
use tinycnn::Shape;
use tinycnn_firmware::exit;

const HEAP_BYTES: usize = 256 << 10;
static mut HEAP_MEMORY: [MaybeUninit<u8>; HEAP_BYTES] = [MaybeUninit::uninit(); HEAP_BYTES];

#[global_allocator]
static HEAP: LlffHeap = LlffHeap::empty();

/// xorshift64*, the generator of tests/kernel_variants.rs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn range(&mut self, lo: i32, hi: i32) -> i32 {
        lo + (self.next() % (hi - lo + 1) as u64) as i32
    }
    fn i8s(&mut self, n: usize, lo: i32, hi: i32) -> Vec<i8> {
        (0..n).map(|_| self.range(lo, hi) as i8).collect()
    }
    /// Multipliers in [2^-17, 2^-4) and, one channel in eight, in [0.5, 8): both requantisation paths.
    // Without a heap, tinycnn::Error holds its texts inline (error::InlineText).
    #[allow(clippy::result_large_err)]
    fn channels(&mut self, n: usize) -> Result<Vec<ChannelRequant>, tinycnn::Error> {
        (0..n)
            .map(|_| {
                let exponent = if self.below(8) == 0 { self.range(0, 3) } else { -self.range(4, 16) };
                let real = libm::exp2(f64::from(exponent) - self.below(1000) as f64 / 1000.0);
                Ok(ChannelRequant { bias: self.range(-50_000, 50_000), multiplier: Multiplier::from_real(real)? })
            })
            .collect()
    }
    fn output_range(&mut self) -> OutputRange {
        OutputRange::new(self.range(-128, 127), self.below(2) == 0)
    }
}

/// A convolution's geometry: `depthwise`, one input channel per group (2–40 of
/// them, depth multiplier 1–3, windows up to 7×7); else ungrouped.
fn geometry(rng: &mut Rng, depthwise: bool) -> Conv2dGeometry {
    loop {
        // Depthwise: half the layers in whole words of 4 channels (the DSP kernel's).
        let c = match (depthwise, rng.below(2)) {
            (true, 0) => 4 * (1 + rng.below(10)),
            (true, _) => 2 + rng.below(39),
            (false, _) => 1 + rng.below(40),
        };
        let (h, w) = (1 + rng.below(12), 1 + rng.below(12));
        let window = if depthwise { 7 } else { 5 };
        let (kh, kw) = (1 + rng.below(window), 1 + rng.below(window));
        let stride = 1 + rng.below(3);
        let [top, left, bottom, right] = [rng.below(3), rng.below(3), rng.below(3), rng.below(3)];
        let (Some(oh), Some(ow)) =
            (output_len_padded(h, kh, stride, top, bottom), output_len_padded(w, kw, stride, left, right))
        else {
            continue;
        };
        // Depth multiplier 1 (the DSP kernel's) in half the depthwise layers, else 1–3.
        let out_c = if depthwise { c * [1, 1, 1, 2, 3][rng.below(5)] } else { 1 + rng.below(40) };
        return Conv2dGeometry {
            input: Shape::new(c, h, w),
            output: Shape::new(out_c, oh, ow),
            kernel_h: kh,
            kernel_w: kw,
            stride,
            pad_top: top,
            pad_left: left,
            groups: if depthwise { c } else { 1 },
            dilation: 1,
        };
    }
}

/// `channels` as a loaded model keeps them (`Requant::Compact`): biases and
/// mantissas as little-endian bytes, the multipliers apart, one for all when
/// they are equal (as tests/kernel_variants.rs builds it).
struct Compact {
    channels: usize,
    bias: Vec<u8>,
    mantissas: Vec<u8>,
    shifts: Vec<u8>,
}

impl Compact {
    fn new(channels: &[ChannelRequant]) -> Compact {
        let uniform = channels.windows(2).all(|w| w[0].multiplier == w[1].multiplier);
        let kept = if uniform { &channels[..channels.len().min(1)] } else { channels };
        Compact {
            channels: channels.len(),
            bias: channels.iter().flat_map(|c| c.bias.to_le_bytes()).collect(),
            mantissas: kept.iter().flat_map(|c| c.multiplier.mantissa.to_le_bytes()).collect(),
            shifts: kept.iter().map(|c| c.multiplier.shift as i8 as u8).collect(),
        }
    }

    fn requant(&self) -> Requant<'_> {
        Requant::Compact { channels: self.channels, bias: &self.bias, mantissas: &self.mantissas, shifts: &self.shifts }
    }
}

const CASES: usize = 200;

fn check() -> Result<usize, &'static str> {
    let mut rng = Rng(0x5eed_c0de);
    let mut cases = 0;
    for case in 0..2 * CASES {
        let g = geometry(&mut rng, case >= CASES);
        let input = rng.i8s(g.input.len(), -128, 127);
        let weights = rng.i8s(g.output.c * g.kernel_h * g.kernel_w * (g.input.c / g.groups), -127, 127);
        let channels = rng.channels(g.output.c).map_err(|_| "a random multiplier out of range")?;
        let stored = Compact::new(&channels);
        let (plain, compact) = (Requant::from(&channels[..]), stored.requant());
        let (zp, range) = (rng.range(-128, 127), rng.output_range());
        let (mut want, mut got) = (vec![0i8; g.output.len()], vec![1i8; g.output.len()]);
        conv::conv2d_reference(&g, &input, zp, &weights, &plain, range, &mut want);
        conv::conv2d(&g, &input, zp, &weights, &compact, range, &mut got);
        if got != want {
            heprintln!("kernel-check: conv2d differs from the reference: {:?}", g);
            return Err("conv2d");
        }
        cases += 1;
    }
    for _ in 0..CASES {
        let (i, o) = (1 + rng.below(1100), 1 + rng.below(70));
        let input = rng.i8s(i, -128, 127);
        let weights = rng.i8s(i * o, -127, 127);
        let channels = rng.channels(o).map_err(|_| "a random multiplier out of range")?;
        let stored = Compact::new(&channels);
        let (plain, compact) = (Requant::from(&channels[..]), stored.requant());
        let (zp, range) = (rng.range(-128, 127), rng.output_range());
        let (mut want, mut got) = (vec![0i8; o], vec![1i8; o]);
        dense::dense_reference(&input, zp, &weights, &plain, range, &mut want);
        dense::dense(&input, zp, &weights, &compact, range, &mut got);
        if got != want {
            heprintln!("kernel-check: dense {} → {} differs from the reference", i, o);
            return Err("dense");
        }
        cases += 1;
    }
    // The accumulator's extremes: every product ±255·127 (x − zp = ±255) over the longest
    // patch a conv gathers, each sign.
    for (x, zp, w) in [(127i8, -128, 127i8), (-128, 127, 127), (127, -128, -127), (-128, 127, -127)] {
        for k in [dot::PATCH_MAX, dot::PATCH_MAX - 1, 5, 3] {
            let input = vec![x; k];
            let weights = vec![w; 6 * k];
            let channels =
                [ChannelRequant { bias: 0, multiplier: Multiplier::from_real(1e-7).map_err(|_| "1e-7")? }; 6];
            let stored = Compact::new(&channels);
            let (plain, compact) = (Requant::from(&channels[..]), stored.requant());
            let range = OutputRange::new(0, false);
            let (mut want, mut got) = (vec![0i8; 6], vec![1i8; 6]);
            dense::dense_reference(&input, zp, &weights, &plain, range, &mut want);
            dense::dense(&input, zp, &weights, &compact, range, &mut got);
            if got != want {
                heprintln!("kernel-check: dense at x − zp = {}, w = {}, {} taps differs", i32::from(x) - zp, w, k);
                return Err("dot extremes");
            }
            cases += 1;
        }
    }
    Ok(cases)
}

#[entry]
fn main() -> ! {
    // SAFETY: called once, before the first allocation; HEAP_MEMORY is used by nothing else.
    unsafe { HEAP.init(core::ptr::addr_of_mut!(HEAP_MEMORY) as usize, HEAP_BYTES) }
    match check() {
        Ok(cases) => {
            heprintln!("kernel-check: {} cases, every output equal to the reference", cases);
            exit(EXIT_SUCCESS)
        }
        Err(what) => {
            heprintln!("kernel-check: FAILED ({})", what);
            exit(EXIT_FAILURE)
        }
    }
}
