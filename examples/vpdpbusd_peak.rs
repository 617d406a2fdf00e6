//! The floor under any int8 convolution built on `vpdpbusd` (AVX-512 VNNI) on
//! this CPU: the core's clock (a chain of dependent adds, one a cycle) and how
//! many `vpdpbusd` it issues per nanosecond on 512- and 256-bit vectors (twelve
//! independent accumulators, so latency never stalls it). A model's
//! multiply-accumulates divided by the better rate is the least time its
//! multiplies can take (docs/TFLITE.md, "Latency").
//!
//!   cargo run --release --example vpdpbusd_peak [ROUNDS]

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::asm;
    use std::arch::x86_64::*;
    use std::time::Instant;

    const ACCUMULATORS: usize = 12;

    /// Billions of `step`s per second, each of `ACCUMULATORS` independent chains
    /// taking one per loop turn. Inlined into its caller, whose target features
    /// the step's intrinsic needs.
    #[inline(always)]
    fn rate<V: Copy>(iterations: u64, zero: V, step: impl Fn(V) -> V) -> f64 {
        let mut acc = [zero; ACCUMULATORS];
        let start = Instant::now();
        for _ in 0..iterations {
            for r in acc.iter_mut() {
                *r = step(*r);
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        std::hint::black_box(acc);
        (iterations * ACCUMULATORS as u64) as f64 / seconds / 1e9
    }

    /// Billions of 512-bit `vpdpbusd` per second.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    fn rate_512(iterations: u64) -> f64 {
        let (a, b) = (_mm512_set1_epi8(3), _mm512_set1_epi8(5));
        rate(iterations, _mm512_setzero_si512(), |acc| _mm512_dpbusd_epi32(acc, a, b))
    }

    /// Billions of 256-bit `vpdpbusd` per second.
    #[target_feature(enable = "avx512f,avx512vl,avx512vnni")]
    fn rate_256(iterations: u64) -> f64 {
        let (a, b) = (_mm256_set1_epi8(3), _mm256_set1_epi8(5));
        rate(iterations, _mm256_setzero_si256(), |acc| _mm256_dpbusd_epi32(acc, a, b))
    }

    /// The clock in GHz: eight dependent adds per loop turn, one a cycle.
    fn clock_ghz(turns: u64) -> f64 {
        let start = Instant::now();
        let mut x = 0u64;
        // SAFETY: registers only, no memory, no stack.
        unsafe {
            asm!(
                "2:",
                "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                "dec {n}",
                "jnz 2b",
                x = inout(reg) x,
                n = inout(reg) turns => _,
                options(nomem, nostack),
            );
        }
        std::hint::black_box(x);
        (turns * 8) as f64 / start.elapsed().as_secs_f64() / 1e9
    }

    pub fn main(rounds: usize) {
        let features = ["avx512f", "avx512bw", "avx512vl", "avx512vnni"];
        if !(is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512vnni"))
        {
            println!("this CPU lacks one of {features:?}: no vpdpbusd to time");
            return;
        }
        println!("| round | clock GHz | vpdpbusd zmm /ns | per cycle | G int8 MAC/s | vpdpbusd ymm /ns | per cycle | G int8 MAC/s |");
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
        for round in 0..rounds {
            let ghz = clock_ghz(200_000_000);
            // SAFETY: the features each needs were detected above.
            let (zmm, ymm) = unsafe { (rate_512(20_000_000), rate_256(20_000_000)) };
            println!(
                "| {round} | {ghz:.2} | {zmm:.2} | {:.2} | {:.0} | {ymm:.2} | {:.2} | {:.0} |",
                zmm / ghz,
                zmm * 64.0,
                ymm / ghz,
                ymm * 32.0
            );
        }
    }
}

fn main() {
    let rounds = std::env::args().nth(1).and_then(|r| r.parse().ok()).unwrap_or(5);
    #[cfg(target_arch = "x86_64")]
    x86::main(rounds);
    #[cfg(not(target_arch = "x86_64"))]
    println!("vpdpbusd is an x86-64 instruction; nothing to time here ({rounds} rounds asked)");
}
