//! tinycnn on a Cortex-M (QEMU's MPS2 boards), driven by `scripts/mcu-run`.
//!
//! The model is in flash (`TINYCNN_MODEL`, built in by build.rs) and its int8
//! weights are read in place. The command line (QEMU's `-semihosting-config
//! arg=…`) names INPUT and OUTPUT on the host: N input tensors back to back in
//! the model's input format (pixel bytes or raw int8) in, N outputs back to
//! back (f32 LE logits, or the raw int8 output) out, as `tinycnn run` does
//! natively. Any error is printed and the firmware exits non-zero.
//!
//! On stderr it reports what docs/EMBEDDED.md tabulates: arena, heap peak,
//! stack peak (by painting) and instructions per inference (SysTick under
//! `qemu -icount shift=0`, where one instruction takes one nanosecond).

#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;

use cortex_m_rt::entry;
use cortex_m_semihosting::debug::{EXIT_FAILURE, EXIT_SUCCESS};
use cortex_m_semihosting::heprintln;
use tinycnn::format::InputKind;
use tinycnn::{KernelSet, LoadOptions, Model};

use tinycnn_firmware::host::{self, HostFile, Mode};
use tinycnn_firmware::message::Message;
use tinycnn_firmware::{counter, exit, memory, msg};

static MODEL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/model.safetensors"));

/// `TINYCNN_KERNELS=reference` at build time runs the reference kernels (the oracle).
const KERNELS: Option<&str> = option_env!("TINYCNN_KERNELS");

#[entry]
fn main() -> ! {
    let stack = memory::StackPaint::paint();
    let status = match run(&stack) {
        Ok(()) => EXIT_SUCCESS,
        Err(message) => {
            heprintln!("tinycnn-firmware: {}", message.as_str());
            EXIT_FAILURE
        }
    };
    exit(status)
}

// Called once, from `main`: the large error is a message built without the heap.
#[allow(clippy::result_large_err)]
fn run(stack: &memory::StackPaint) -> Result<(), Message> {
    memory::init_heap();
    let mut line = [0u8; 512];
    let line = host::command_line(&mut line).map_err(|e| msg!("command line: {e}"))?;
    let mut words = line.split(' ').filter(|w| !w.is_empty()).skip(1);
    let (Some(input_path), Some(output_path), None) = (words.next(), words.next(), words.next()) else {
        return Err(msg!("usage: firmware INPUT OUTPUT (got '{line}')"));
    };
    let kernels = match KERNELS {
        Some("reference") => KernelSet::Reference,
        _ => KernelSet::best(),
    };
    if MODEL.is_empty() {
        return Err(msg!("built without a model (TINYCNN_MODEL names one; scripts/mcu-run sets it)"));
    }
    let model = Model::load_with(MODEL, LoadOptions { kernels }).map_err(|e| msg!("model: {e}"))?;
    let heap_after_load = memory::heap_peak();
    // The load's deepest stack use, then the stack painted afresh for the runs (and the host I/O).
    let load_stack = stack.peak();
    let run_stack = memory::StackPaint::paint();

    let input = HostFile::open(input_path, Mode::Read).map_err(|e| msg!("{input_path}: {e}"))?;
    let total = input.byte_len().map_err(|e| msg!("{input_path}: {e}"))?;
    let per_input = model.input_len();
    if total == 0 || total % per_input != 0 {
        return Err(msg!("{input_path}: {total} bytes is not a whole number of {per_input}-byte inputs"));
    }
    let output = HostFile::open(output_path, Mode::Write).map_err(|e| msg!("{output_path}: {e}"))?;

    let int8 = model.graph().input.kind == InputKind::Int8;
    let mut arena = vec![0u8; model.arena_bytes()];
    // Pixels are staged here and converted by `run`; int8 tensors go straight into the arena.
    let mut pixels = vec![0u8; if int8 { 0 } else { per_input }];
    let mut out = vec![0u8; if int8 { model.int8_output_len() } else { 4 * model.output_len() }];
    let mut logits = vec![0f32; model.output_len()];
    let clock = counter::Instructions::start();
    let mut per_inference = counter::Stats::default();
    for i in 0..total / per_input {
        let read = if int8 {
            let tensor = model.int8_input_mut(&mut arena).map_err(|e| msg!("{e}"))?;
            input.read_exact(bytemuck::cast_slice_mut(tensor))
        } else {
            input.read_exact(&mut pixels)
        };
        read.map_err(|e| msg!("{input_path}: {e}"))?;
        let begin = clock.now();
        let result = if int8 {
            model.run_int8_in_place(&mut arena, bytemuck::cast_slice_mut(&mut out))
        } else {
            model.run(&mut arena, &pixels, &mut logits)
        };
        per_inference.add(clock.now() - begin);
        result.map_err(|e| msg!("input {i}: {e}"))?;
        if !int8 {
            for (bytes, v) in out.chunks_exact_mut(4).zip(&logits) {
                bytes.copy_from_slice(&v.to_le_bytes());
            }
        }
        output.write_all(&out).map_err(|e| msg!("{output_path}: {e}"))?;
    }
    heprintln!(
        "tinycnn-firmware: inputs {} kernels {} flash_bytes {} model_bytes {} static_ram_bytes {} arena_bytes {} heap_peak {} heap_after_load {} stack_peak {} stack_peak_load {} stack_peak_run {} instructions {}",
        total / per_input,
        kernels.name(),
        memory::flash_bytes(),
        MODEL.len(),
        memory::static_ram_bytes(),
        model.arena_bytes(),
        memory::heap_peak(),
        heap_after_load,
        load_stack.max(run_stack.peak()),
        load_stack,
        run_stack.peak(),
        per_inference,
    );
    Ok(())
}
