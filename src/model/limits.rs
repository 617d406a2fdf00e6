//! Hard limits on model files (docs/FORMAT.md § Limits). They are checked
//! before the allocation they guard, so a hostile file cannot make the loader
//! allocate more than a few times its own size.

/// safetensors JSON header.
pub const HEADER_BYTES: usize = 1 << 20;
/// The graph JSON inside the metadata.
pub const GRAPH_JSON_BYTES: usize = 256 << 10;
/// Tensors in one file.
pub const TENSORS: usize = 4096;
/// Nodes in one graph.
pub const NODES: usize = 512;
/// Bytes of one node name.
pub const NAME_BYTES: usize = 256;
/// Inputs of one add/concat.
pub const OP_INPUTS: usize = 8;
/// Any one dimension (channels, height, width).
pub const DIMENSION: usize = 1 << 16;
/// Kernel, stride and padding of a window.
pub const WINDOW: usize = 64;
/// Elements of one tensor or activation.
pub const ELEMENTS: usize = 16 << 20;
/// Products summed into one accumulator (I·KH·KW).
pub const TAPS: usize = 32 << 10;
/// |bias| the quantiser writes: within [`bias_magnitude`] for any layer.
pub const BIAS_MAGNITUDE: i32 = 1 << 30;

/// Largest |bias| of a layer summing `taps` products: with |w| ≤ 127 and
/// |x − zp| ≤ 255, bias plus every partial sum stays inside an i32 (the
/// SIMD kernels may wrap on the way, the result is still exact).
pub const fn bias_magnitude(taps: usize) -> u32 {
    let products = (taps as u64) * 127 * 255;
    (i32::MAX as u64).saturating_sub(products) as u32
}
/// The activation arena.
pub const ARENA_BYTES: usize = 64 << 20;
