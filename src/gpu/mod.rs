//! WebGPU backend (work in progress).
