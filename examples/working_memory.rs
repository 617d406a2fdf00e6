//! Working memory of a loaded model, for docs/EMBEDDED figures beside TFLite Micro's
//! arena: the activation arena `run` needs, and the heap the loaded model holds
//! besides the file's own bytes (resolved nodes, requantisation constants, the plan,
//! and for a microkernel set its packed weights), measured by a counting allocator.
//!
//!   cargo run --release --example working_memory -- MODEL.safetensors...

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    println!("model  arena_bytes  held_reference  held_best ({})", tinycnn::KernelSet::best().name());
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).unwrap();
        let held = |kernels| {
            let before = LIVE.load(Ordering::Relaxed);
            let model = tinycnn::Model::load_with(&bytes[..], tinycnn::LoadOptions { kernels }).unwrap();
            let held = LIVE.load(Ordering::Relaxed) - before;
            (model.arena_bytes(), held)
        };
        let (arena, reference) = held(tinycnn::KernelSet::Reference);
        let (_, best) = held(tinycnn::KernelSet::best());
        println!("{path}  {arena}  {reference}  {best}");
    }
}
