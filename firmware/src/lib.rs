//! What the firmware binaries share: semihosting I/O, the measured flash and
//! stack, the instruction counter, failing with a message, the panic handler.
//!
//! Binaries: `tinycnn-firmware` (src/main.rs, a model in flash, run by
//! scripts/mcu-run) and `kernel-check` (src/bin/kernel_check.rs, the kernels
//! against the reference on random shapes, on the target itself).

#![no_std]

pub mod counter;
pub mod host;
pub mod memory;

use cortex_m_semihosting::debug::{self, EXIT_FAILURE};
use cortex_m_semihosting::heprintln;

/// Reports `status` to QEMU (semihosting SYS_EXIT, which does not return there).
pub fn exit(status: debug::ExitStatus) -> ! {
    debug::exit(status);
    // A real board would park here.
    loop {
        cortex_m::asm::wfi();
    }
}

/// Prints `what` and exits with a failure status. The message is formatted
/// straight to the host: no buffer, and nothing on the stack until it fails.
#[cold]
#[inline(never)]
pub fn fail(what: core::fmt::Arguments<'_>) -> ! {
    heprintln!("tinycnn-firmware: {}", what);
    exit(EXIT_FAILURE)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    heprintln!("tinycnn-firmware: panic: {}", info);
    exit(EXIT_FAILURE)
}
