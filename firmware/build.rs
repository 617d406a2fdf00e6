//! Puts memory.x where the linker finds it and the model named by
//! TINYCNN_MODEL where `include_bytes!` finds it (scripts/mcu-run sets it).

use std::path::PathBuf;
use std::{env, fs};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");

    // Without it the model is empty and the firmware says so (kernel-check needs none).
    println!("cargo:rerun-if-env-changed=TINYCNN_MODEL");
    let target = out.join("model.safetensors");
    match env::var("TINYCNN_MODEL") {
        Ok(model) => {
            fs::copy(&model, &target).unwrap_or_else(|e| panic!("TINYCNN_MODEL={model}: {e}"));
            println!("cargo:rerun-if-changed={model}");
        }
        Err(_) => fs::write(&target, b"").expect("write an empty model"),
    }
}
