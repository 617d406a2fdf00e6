//! Shared by the criterion benches: a timing loop that survives a shared machine.
//!
//! Criterion's estimate is a mean over samples of many calls, so every time the
//! OS gives the core to another process the sample grows (on the project's
//! 2-core machine, with builds and a fuzzer beside, a 340 µs inference averaged
//! 510 µs). `iter_median` times calls in small chunks (≥ ~10 µs each) and hands
//! criterion `iters ×` the *median* chunk time per call: preempted chunks fall
//! out, and criterion's statistics (confidence intervals, change vs the last
//! run) then apply to that robust figure. `TINYCNN_BENCH_MEAN=1` restores
//! criterion's plain mean (`Bencher::iter`).

use std::time::{Duration, Instant};

use criterion::Bencher;

pub fn iter_median<F: FnMut()>(b: &mut Bencher, mut f: F) {
    if std::env::var_os("TINYCNN_BENCH_MEAN").is_some() {
        b.iter(f);
        return;
    }
    // Calls per chunk: enough for ~10 µs, so the timer's cost stays small.
    let start = Instant::now();
    f();
    let one = start.elapsed().max(Duration::from_nanos(1));
    let chunk = (10_000 / one.as_nanos()).clamp(1, 1000) as u64;
    let mut per_call: Vec<f64> = Vec::new();
    b.iter_custom(|iters| {
        per_call.clear();
        let mut done = 0;
        while done < iters {
            let n = chunk.min(iters - done);
            let start = Instant::now();
            for _ in 0..n {
                f();
            }
            per_call.push(start.elapsed().as_secs_f64() / n as f64);
            done += n;
        }
        per_call.sort_by(f64::total_cmp);
        Duration::from_secs_f64(per_call[per_call.len() / 2] * iters as f64)
    });
}
