//! CI's share of the fuzzing: every committed fuzz input — the seed corpora
//! fuzz/corpus/<target>/ and the crash reproducers fuzz/regressions/<target>/ —
//! goes through the very function its cargo-fuzz target calls (fuzz/src/lib.rs,
//! included below), so a regression shows up in `cargo test` without a fuzzer.
//! Long fuzzing runs are `scripts/fuzz` (docs/RELIABILITY.md).

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod fuzz_logic;

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

fn replay(target: &str, run: fn(&[u8])) {
    let mut files = Vec::new();
    for dir in ["fuzz/corpus", "fuzz/regressions"] {
        let dir = common::repo().join(dir).join(target);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            files.extend(entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()));
        }
    }
    files.sort();
    assert!(!files.is_empty(), "no corpus for {target}");
    let mut failures = Vec::new();
    for path in &files {
        let data = std::fs::read(path).unwrap();
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failures.push(path.display().to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "{target}: {} of {} inputs failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn load_model_corpus() {
    replay("load_model", fuzz_logic::load_model);
}

#[cfg(feature = "tflite")]
#[test]
fn import_tflite_corpus() {
    replay("import_tflite", fuzz_logic::import_tflite);
}

#[test]
fn run_model_corpus() {
    replay("run_model", fuzz_logic::run_model);
}

#[test]
fn quant_scales_corpus() {
    replay("quant_scales", fuzz_logic::quant_scales);
}

#[test]
fn preprocess_corpus() {
    replay("preprocess", fuzz_logic::preprocess);
}

#[test]
fn kernels_corpus() {
    replay("kernels", fuzz_logic::kernels);
}
