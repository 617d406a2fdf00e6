//! Built-in architectures as graph JSON, for `tinycnn import --arch NAME`:
//! a PyTorch `state_dict` of one of these networks plus the graph here make a
//! complete model file.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use super::graph::{RawGraph, RawInput, RawNode, FORMAT_VERSION};

/// Names `by_name` knows.
pub const NAMES: &[&str] = &["deepconvnet"];

/// The graph of a built-in architecture, if `name` is one.
pub fn by_name(name: &str) -> Option<RawGraph> {
    match name {
        "deepconvnet" => Some(deepconvnet()),
        _ => None,
    }
}

fn node(name: &str, op: &str, input: &str) -> RawNode {
    RawNode { name: name.to_string(), op: op.to_string(), inputs: vec![input.to_string()], ..RawNode::default() }
}

fn conv(name: &str, input: &str, padding: i64) -> RawNode {
    RawNode { stride: Some(1), padding: Some(padding), relu: Some(true), ..node(name, "conv2d", input) }
}

fn maxpool(name: &str, input: &str) -> RawNode {
    RawNode { kernel: Some(2), ..node(name, "maxpool2d", input) }
}

/// DeepConvNet of "Deep Learning from Scratch" (ch. 8), as trained by
/// `training/`: six 3×3 convolutions with ReLU (the fourth padded by 2 as in
/// the book, so 14×14 → 16×16), three 2×2 max pools, fc1 (ReLU), dropout,
/// fc2 (the classes), softmax. Channel and unit counts come from the weights
/// (the book's: 16, 16, 32, 32, 64, 64 channels, 50 hidden units, 10 classes).
/// Inputs are normalised with MNIST's mean 0.1307 and std 0.3081.
///
/// The PyTorch `state_dict` names are `conv1.weight` … `conv6.bias`,
/// `fc1.weight`, `fc1.bias`, `fc2.weight`, `fc2.bias`.
pub fn deepconvnet() -> RawGraph {
    let nodes: Vec<RawNode> = vec![
        conv("conv1", "input", 1),
        conv("conv2", "conv1", 1),
        maxpool("pool1", "conv2"),
        conv("conv3", "pool1", 1),
        conv("conv4", "conv3", 2),
        maxpool("pool2", "conv4"),
        conv("conv5", "pool2", 1),
        conv("conv6", "conv5", 1),
        maxpool("pool3", "conv6"),
        node("flatten", "flatten", "pool3"),
        RawNode { relu: Some(true), ..node("fc1", "dense", "flatten") },
        RawNode { p: Some(0.5), ..node("dropout1", "dropout", "fc1") },
        node("fc2", "dense", "dropout1"),
        node("softmax", "softmax", "fc2"),
    ];
    RawGraph {
        format: FORMAT_VERSION,
        dtype: Some(String::from("float")),
        input: RawInput {
            channels: 1,
            height: 28,
            width: 28,
            dtype: None,
            mean: Some(0.1307),
            std: Some(0.3081),
            scale: None,
            zero_point: None,
        },
        nodes,
        output: Some(String::from("softmax")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::graph::Graph;

    #[test]
    fn deepconvnet_matches_the_training_fixture() {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/deepconvnet-graph.json")).unwrap();
        let ours: serde_json::Value = serde_json::from_str(&deepconvnet().to_json()).unwrap();
        assert_eq!(ours, fixture);
    }

    #[test]
    fn every_builtin_is_a_valid_graph() {
        for name in NAMES {
            let raw = by_name(name).unwrap();
            Graph::from_raw(&raw).unwrap();
        }
        assert!(by_name("nope").is_none());
    }
}
