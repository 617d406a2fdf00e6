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
use cortex_m_semihosting::debug::EXIT_SUCCESS;
use cortex_m_semihosting::heprintln;
use tinycnn::format::InputKind;
use tinycnn::{ArenaModel, KernelSet};

use tinycnn_firmware::host::{self, HostFile, Mode};
use tinycnn_firmware::{counter, exit, fail, memory};

static MODEL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/model.safetensors"));

/// The model's state, its arena and the I/O buffers (the MobileNet of MLPerf Tiny needs ~80 KB).
const MEMORY_BYTES: usize = 512 << 10;
static mut MEMORY: [MaybeUninit<u8>; MEMORY_BYTES] = [MaybeUninit::uninit(); MEMORY_BYTES];

/// `TINYCNN_KERNELS=reference` at build time runs the reference kernels (the oracle).
const KERNELS: Option<&str> = option_env!("TINYCNN_KERNELS");

#[entry]
fn main() -> ! {
    let stack = memory::StackPaint::paint();
    // Loaded first, from this small frame, as a firmware loads its model at
    // start-up: the load's stack peak is tinycnn's own, not under the command
    // line's buffer.
    let (model, rest) = load().unwrap_or_else(|e| fail(format_args!("model: {e}")));
    let load_stack = stack.peak();
    // The stack painted afresh for the runs (and the host I/O).
    let run_stack = memory::StackPaint::paint();
    let (input, output) = open_files();
    run(&model, rest, &input, &output, load_stack, &run_stack);
    exit(EXIT_SUCCESS)
}

/// Loads MODEL into MEMORY.
// Called once: tinycnn's error is returned as it is, to `main`, which prints it.
#[allow(clippy::result_large_err)]
#[inline(never)]
fn load() -> tinycnn::Result<(ArenaModel<'static>, &'static mut [u8])> {
    if MODEL.is_empty() {
        fail(format_args!("built without a model (TINYCNN_MODEL names one; scripts/mcu-run sets it)"));
    }
    let kernels = match KERNELS {
        Some("reference") => KernelSet::Reference,
        _ => KernelSet::best(),
    };
    // SAFETY: `load` is called once, from `main`, and nothing else names MEMORY: this is
    // the only reference to it.
    let memory = unsafe { &mut *core::ptr::addr_of_mut!(MEMORY) };
    ArenaModel::load(MODEL, memory, kernels)
}

/// INPUT and OUTPUT, named by the command line. Not inlined: the line's buffer
/// is off the stack before the inferences run.
#[inline(never)]
fn open_files() -> (HostFile, HostFile) {
    let mut line = [0u8; 512];
    let line = host::command_line(&mut line).unwrap_or_else(|e| fail(format_args!("command line: {e}")));
    let mut words = line.split(' ').filter(|w| !w.is_empty()).skip(1);
    let (Some(input_path), Some(output_path), None) = (words.next(), words.next(), words.next()) else {
        fail(format_args!("usage: firmware INPUT OUTPUT (got '{line}')"));
    };
    let open = |path, mode| HostFile::open(path, mode).unwrap_or_else(|e| fail(format_args!("{path}: {e}")));
    (open(input_path, Mode::Read), open(output_path, Mode::Write))
}

/// The first `n` bytes of `rest`, and what follows them; fails naming `what` where they do not fit.
fn take<'a>(rest: &'a mut [u8], n: usize, what: &str) -> (&'a mut [u8], &'a mut [u8]) {
    if n > rest.len() {
        fail(format_args!("{what} does not fit the {MEMORY_BYTES}-byte memory beside the model"));
    }
    rest.split_at_mut(n)
}

/// Runs the model on every input tensor of `input`, writing each output to `output`.
/// Not inlined: its frame is not under the load.
#[inline(never)]
fn run(
    model: &ArenaModel<'_>,
    rest: &mut [u8],
    input: &HostFile,
    output: &HostFile,
    load_stack: usize,
    run_stack: &memory::StackPaint,
) {
    let total = input.byte_len().unwrap_or_else(|e| fail(format_args!("INPUT: {e}")));
    let per_input = model.input_len();
    if total == 0 || !total.is_multiple_of(per_input) {
        fail(format_args!("INPUT: {total} bytes is not a whole number of {per_input}-byte inputs"));
    }

    let int8 = model.input_kind() == InputKind::Int8;
    let (arena, rest) = take(rest, model.arena_bytes(), "the arena");
    // Pixels are staged here and converted by `run`; int8 tensors go straight into the arena.
    let (pixels, rest) = take(rest, if int8 { 0 } else { per_input }, "the pixel buffer");
    let out_len = if int8 { model.int8_output_len() } else { 4 * model.output_len() };
    let (out, rest) = take(rest, out_len, "the output buffer");
    let skip = rest.as_ptr().align_offset(4);
    let (_, rest) = take(rest, skip, "the logits' alignment");
    // An int8 output is written as it is: no logits.
    let (logits, _) = take(rest, if int8 { 0 } else { 4 * model.output_len() }, "the logits");
    let logits: &mut [f32] =
        bytemuck::try_cast_slice_mut(logits).unwrap_or_else(|_| fail(format_args!("logits misaligned")));
    let io_bytes = pixels.len() + out.len() + logits.len() * 4;

    let clock = counter::Instructions::start();
    let mut per_inference = counter::Stats::default();
    for i in 0..total / per_input {
        let read = if int8 {
            let tensor = model.int8_input_mut(arena).unwrap_or_else(|e| fail(format_args!("{e}")));
            input.read_exact(bytemuck::cast_slice_mut(tensor))
        } else {
            input.read_exact(pixels)
        };
        read.unwrap_or_else(|e| fail(format_args!("INPUT: {e}")));
        let begin = clock.now();
        let result = if int8 {
            model.run_int8_in_place(arena, bytemuck::cast_slice_mut(out))
        } else {
            model.run(arena, pixels, logits)
        };
        per_inference.add(clock.now() - begin);
        result.unwrap_or_else(|e| fail(format_args!("input {i}: {e}")));
        if !int8 {
            for (bytes, v) in out.chunks_exact_mut(4).zip(logits.iter()) {
                bytes.copy_from_slice(&v.to_le_bytes());
            }
        }
        output.write_all(out).unwrap_or_else(|e| fail(format_args!("OUTPUT: {e}")));
    }
    report(model, total / per_input, io_bytes, load_stack, run_stack.peak(), &per_inference);
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
