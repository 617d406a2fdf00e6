//! The f32 engine against logits computed by PyTorch (training/make_fixture.py):
//! one small network that uses every op, in F32, F16 and BF16 weights.

mod common;

use common::{fixture, Fixture};
use tinycnn::Model;

fn check(model_file: &str, logits_name: &str) {
    let model = Model::load(fixture(model_file)).unwrap();
    let fx = Fixture::load();
    let expected = fx.logits(logits_name);
    let classes = model.output_len();
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut logits = vec![0f32; classes];
    let mut worst = 0f32;
    for i in 0..fx.count {
        model.run(&mut arena, fx.image(i), &mut logits).unwrap();
        for (got, want) in logits.iter().zip(&expected[i * classes..][..classes]) {
            worst = worst.max((got - want).abs());
        }
    }
    assert!(worst <= 1e-4, "{model_file}: max |tinycnn − PyTorch| = {worst:e}");
}

#[test]
fn f32_weights_match_pytorch() {
    check("tiny-float.safetensors", "logits_f32");
}

#[test]
fn f16_weights_match_pytorch() {
    check("tiny-f16.safetensors", "logits_f16");
}

#[test]
fn bf16_weights_match_pytorch() {
    check("tiny-bf16.safetensors", "logits_bf16");
}

#[test]
fn the_fixture_exercises_every_op() {
    let model = Model::load(fixture("tiny-float.safetensors")).unwrap();
    let ops: std::collections::BTreeSet<&str> = model.graph().nodes.iter().map(|n| n.op.name()).collect();
    for op in [
        "conv2d",
        "dense",
        "maxpool2d",
        "avgpool2d",
        "global_avgpool",
        "batchnorm",
        "relu",
        "dropout",
        "flatten",
        "add",
        "concat",
        "softmax",
    ] {
        assert!(ops.contains(op), "fixture lacks {op}");
    }
}
