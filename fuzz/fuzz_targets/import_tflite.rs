#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tinycnn_fuzz::import_tflite(data));
