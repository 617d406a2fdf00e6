//! The post-training quantiser: turns a float model into an int8 file. It sits
//! above the model and the engines (it runs the float engine to calibrate);
//! the fixed-point arithmetic it targets is `spec::fixed_point`.

pub mod calibrate;
pub mod quantize;
