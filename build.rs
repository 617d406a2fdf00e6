//! `cfg(arm_dsp)`: the target has the Armv7E-M DSP extension (SMLAD, SXTB16), which
//! `kernels::dsp` uses. Rust has no stable `target_feature` cfg for it, so it is
//! read from the target name: Armv7E-M (Cortex-M4/M7) and Armv8-M Mainline (M33, M55).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(arm_dsp)");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumbv7em") || target.starts_with("thumbv8m.main") {
        println!("cargo::rustc-cfg=arm_dsp");
    }
    println!("cargo::rerun-if-changed=build.rs");
}
