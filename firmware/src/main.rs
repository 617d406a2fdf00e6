//! tinycnn on a Cortex-M (QEMU's MPS2 boards), driven by `scripts/mcu-run`.
//!
//! The model is in flash (`TINYCNN_MODEL`, built in by build.rs), loaded in
//! place with no heap at all: this binary links no allocator and no `alloc`
//! crate. Its int8 weights are read from flash, and everything else lives in
//! one static buffer (`MEMORY`): the model's state at its front, the
//! activation arena behind it, then the I/O buffers. The command line (QEMU's
//! `-semihosting-config arg=…`) names INPUT and OUTPUT on the host: N input
//! tensors back to back in the model's input format (pixel bytes or raw int8)
//! in, N outputs back to back (f32 LE logits, or the raw int8 output) out, as
//! `tinycnn run` does natively. Any error is printed and the firmware exits
//! non-zero.
//!
//! On stderr it reports what docs/EMBEDDED.md tabulates: the model's state and
//! arena, stack peak (by painting) and instructions per inference (SysTick
//! under `qemu -icount shift=0`, where one instruction takes one nanosecond).

#![no_std]
#![no_main]

use core::mem::MaybeUninit;

use cortex_m_rt::entry;
use cortex_m_semihosting::debug::{EXIT_FAILURE, EXIT_SUCCESS};
use cortex_m_semihosting::heprintln;
use tinycnn::format::InputKind;
use tinycnn::{ArenaModel, KernelSet};

use tinycnn_firmware::host::{self, HostFile, Mode};
use tinycnn_firmware::message::Message;
use tinycnn_firmware::{counter, exit, memory, msg};

static MODEL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/model.safetensors"));

/// The model's state, its arena and the I/O buffers (the MobileNet of MLPerf Tiny needs ~80 KB).
const MEMORY_BYTES: usize = 512 << 10;
static mut MEMORY: [MaybeUninit<u8>; MEMORY_BYTES] = [MaybeUninit::uninit(); MEMORY_BYTES];

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

/// The first `n` bytes of `rest`, and what follows them.
fn take(rest: &mut [u8], n: usize) -> Option<(&mut [u8], &mut [u8])> {
    (n <= rest.len()).then(|| rest.split_at_mut(n))
}

/// The I/O buffers did not fit behind the model.
#[cold]
fn no_room(what: &str) -> Message {
    msg!("{what} does not fit the {MEMORY_BYTES}-byte memory beside the model")
}

// Called once, from `main`: the large error is a message built without the heap.
#[allow(clippy::result_large_err)]
fn run(stack: &memory::StackPaint) -> Result<(), Message> {
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
    // SAFETY: `run` is called once, from `main`, and nothing else names MEMORY: this is
    // the only reference to it.
    let memory = unsafe { &mut *core::ptr::addr_of_mut!(MEMORY) };
    let (model, rest) = ArenaModel::load(MODEL, memory, kernels).map_err(|e| msg!("model: {e}"))?;
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

    let int8 = model.input_kind() == InputKind::Int8;
    let (arena, rest) = take(rest, model.arena_bytes()).ok_or_else(|| no_room("the arena"))?;
    // Pixels are staged here and converted by `run`; int8 tensors go straight into the arena.
    let (pixels, rest) = take(rest, if int8 { 0 } else { per_input }).ok_or_else(|| no_room("the pixel buffer"))?;
    let out_len = if int8 { model.int8_output_len() } else { 4 * model.output_len() };
    let (out, rest) = take(rest, out_len).ok_or_else(|| no_room("the output buffer"))?;
    let skip = rest.as_ptr().align_offset(4);
    let (_, rest) = take(rest, skip).ok_or_else(|| no_room("the logits' alignment"))?;
    let (logits, _) = take(rest, 4 * model.output_len()).ok_or_else(|| no_room("the logits"))?;
    let logits: &mut [f32] = bytemuck::try_cast_slice_mut(logits).map_err(|_| msg!("logits misaligned"))?;
    let io_bytes = pixels.len() + out.len() + logits.len() * 4;

    let clock = counter::Instructions::start();
    let mut per_inference = counter::Stats::default();
    for i in 0..total / per_input {
        let read = if int8 {
            let tensor = model.int8_input_mut(arena).map_err(|e| msg!("{e}"))?;
            input.read_exact(bytemuck::cast_slice_mut(tensor))
        } else {
            input.read_exact(pixels)
        };
        read.map_err(|e| msg!("{input_path}: {e}"))?;
        let begin = clock.now();
        let result = if int8 {
            model.run_int8_in_place(arena, bytemuck::cast_slice_mut(out))
        } else {
            model.run(arena, pixels, logits)
        };
        per_inference.add(clock.now() - begin);
        result.map_err(|e| msg!("input {i}: {e}"))?;
        if !int8 {
            for (bytes, v) in out.chunks_exact_mut(4).zip(logits.iter()) {
                bytes.copy_from_slice(&v.to_le_bytes());
            }
        }
        output.write_all(out).map_err(|e| msg!("{output_path}: {e}"))?;
    }
    report(&model, total / per_input, io_bytes, load_stack, run_stack.peak(), &per_inference);
    Ok(())
}

/// The measurements, on one line for scripts/mcu-figures. Not inlined: its
/// formatting's frame stays off the stack the inferences use.
#[inline(never)]
fn report(
    model: &ArenaModel<'_>,
    inputs: usize,
    io_bytes: usize,
    load_stack: usize,
    run_stack: usize,
    per_inference: &counter::Stats,
) {
    heprintln!(
        "tinycnn-firmware: inputs {} kernels {} flash_bytes {} model_bytes {} static_ram_bytes {} state_bytes {} arena_bytes {} memory_bytes {} io_bytes {} stack_peak {} stack_peak_load {} stack_peak_run {} instructions {}",
        inputs,
        model.kernels().name(),
        memory::flash_bytes(),
        MODEL.len(),
        memory::static_ram_bytes() - MEMORY_BYTES,
        model.state_bytes(),
        model.arena_bytes(),
        model.memory_bytes(),
        io_bytes,
        load_stack.max(run_stack),
        load_stack,
        run_stack,
        per_inference,
    );
}
