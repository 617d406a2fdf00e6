//! int8 quantisation: the fixed-point arithmetic every backend shares, and the
//! post-training quantiser that turns a float model into an int8 file.

pub mod calibrate;
pub mod fixed_point;
pub mod quantize;
