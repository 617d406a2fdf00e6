//! The bottom layer: the integer spec (fixed-point requantisation, as TFLite
//! defines it) and the shapes and window geometry. Everything else builds on
//! these and they import nothing of the crate.

pub mod fixed_point;
mod shape;

pub use shape::{output_len, output_len_padded, Conv2dGeometry, Shape};
