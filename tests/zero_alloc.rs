//! `run` and `Ensemble::predict` never touch the heap: a counting global
//! allocator watches 1000+ inferences of an int8 model, a float model and an ensemble.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::{fixture, model_path, Fixture};
use tinycnn::quantize;
use tinycnn::{ArenaModel, Ensemble, KernelSet, Model};

struct Counting;

thread_local! {
    // Only this thread's allocations count: the test harness has threads of its own.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn inference_makes_no_heap_allocation() {
    let fx = Fixture::load();
    let float = Model::load(fixture("tiny-float.safetensors")).unwrap();
    let images: Vec<&[u8]> = (0..fx.count).map(|i| fx.image(i)).collect();
    let int8 = Model::load(quantize(&float, images.iter().copied()).unwrap()).unwrap();
    let ensemble = Ensemble::new(vec![int8.clone(), int8.clone()]).unwrap();

    let mut arena = vec![0u8; ensemble.arena_bytes().max(float.arena_bytes())];
    let mut out = vec![0f32; int8.output_len()];

    let before = allocations();
    for i in 0..1000 {
        int8.run(&mut arena, fx.image(i % fx.count), &mut out).unwrap();
    }
    assert_eq!(allocations() - before, 0, "int8 run allocated");

    let before = allocations();
    for i in 0..1000 {
        float.predict(&mut arena, fx.image(i % fx.count), &mut out).unwrap();
    }
    assert_eq!(allocations() - before, 0, "float predict allocated");

    let before = allocations();
    for i in 0..1000 {
        ensemble.predict(&mut arena, fx.image(i % fx.count), &mut out).unwrap();
    }
    assert_eq!(allocations() - before, 0, "ensemble predict allocated");

    // int8 values in and out, the input passed or written into the arena (the firmware's way).
    let mut values = vec![0i8; int8.int8_output_len()];
    let input = vec![3i8; int8.input_len()];
    let before = allocations();
    for _ in 0..1000 {
        int8.run_int8(&mut arena, &input, &mut values).unwrap();
        int8.int8_input_mut(&mut arena).unwrap().copy_from_slice(&input);
        int8.run_int8_in_place(&mut arena, &mut values).unwrap();
    }
    assert_eq!(allocations() - before, 0, "int8 values in and out allocated");

    // Errors are allocation-free too.
    let before = allocations();
    for _ in 0..100 {
        assert!(int8.run(&mut arena, &[0u8; 3], &mut out).is_err());
        assert!(int8.run(&mut arena[..1], fx.image(0), &mut out).is_err());
    }
    assert_eq!(allocations() - before, 0, "error paths allocated");

    // The counter does count: a Vec allocates.
    let before = allocations();
    let v: Vec<u8> = Vec::with_capacity(std::hint::black_box(64));
    drop(v);
    assert_eq!(allocations() - before, 1);
}

/// The heap-free path: loading in place (validation, planning, preparation)
/// and running both allocate nothing, for the MNIST and an MLPerf Tiny model
/// on every kernel set.
#[test]
fn loading_in_place_makes_no_heap_allocation() {
    #[allow(unused_mut)] // without the importer, the MNIST model alone
    let mut files = vec![std::fs::read(model_path("resnet-int8.safetensors")).unwrap()];
    #[cfg(feature = "tflite")]
    files.push(
        tinycnn::internals::tflite::import(&std::fs::read(model_path("mlperf-tiny/kws_ref_model.tflite")).unwrap())
            .unwrap()
            .file,
    );
    let sets = KernelSet::available();
    let mut memory = vec![std::mem::MaybeUninit::new(0u8); 4 << 20];
    let mut logits = [0f32; 16];
    let mut output = [0i8; 16];
    let input = [5i8; 490];
    for file in &files {
        for &kernels in &sets {
            let before = allocations();
            let (model, arena) = ArenaModel::load(file, &mut memory, kernels).unwrap();
            let pixels = model.input_kind() == tinycnn::format::InputKind::Pixels;
            for i in 0..100u8 {
                if pixels {
                    model.run(arena, &[i; 784], &mut logits[..model.output_len()]).unwrap();
                } else {
                    model.run_int8(arena, &input[..model.input_len()], &mut output[..model.int8_output_len()]).unwrap();
                }
            }
            assert_eq!(allocations() - before, 0, "{} in place allocated", kernels.name());
        }
    }
}
