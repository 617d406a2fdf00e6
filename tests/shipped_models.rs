//! The shipped models on the 10k MNIST test digits: each file's accuracy equals
//! the figure in models/MODEL_CARD.md to the image, and int8 agrees with float.
//! Needs data/mnist (scripts/fetch-mnist); fails with that hint when missing.

mod common;

use std::collections::BTreeMap;

use common::{argmax, mnist_test, model_path, repo};
use tinycnn::mnist::Dataset;
use tinycnn::{Ensemble, Model};

/// `file → correct` from the card's rows: "| `file` | … | 99.61% (9961/10000) | …".
fn card_counts() -> BTreeMap<String, usize> {
    let card = std::fs::read_to_string(repo().join("models/MODEL_CARD.md")).expect("models/MODEL_CARD.md");
    let mut counts = BTreeMap::new();
    for line in card.lines().filter(|l| l.starts_with("| `")) {
        let file = line.split('`').nth(1).unwrap().to_string();
        let Some(open) = line.find('(') else { continue };
        let Some(slash) = line[open..].find("/10000)") else { continue };
        let correct: usize = line[open + 1..open + slash].parse().unwrap();
        counts.insert(file, correct);
    }
    counts
}

/// Predicted class of every test image, on two threads.
fn predictions(
    run: impl Fn(&mut Vec<u8>, &[u8], &mut [f32]) + Sync,
    arena_bytes: usize,
    classes: usize,
    data: &Dataset,
) -> Vec<usize> {
    let n = data.len();
    let mut out = vec![0usize; n];
    let (a, b) = out.split_at_mut(n / 2);
    std::thread::scope(|s| {
        for (offset, part) in [(0, a), (n / 2, b)] {
            let run = &run;
            s.spawn(move || {
                let mut arena = vec![0u8; arena_bytes];
                let mut logits = vec![0f32; classes];
                for (i, p) in part.iter_mut().enumerate() {
                    run(&mut arena, data.image(offset + i), &mut logits);
                    *p = argmax(&logits);
                }
            });
        }
    });
    out
}

fn model_predictions(file: &str, data: &Dataset) -> Vec<usize> {
    let model = Model::load(std::fs::read(model_path(file)).unwrap()).unwrap();
    predictions(|arena, x, out| model.run(arena, x, out).unwrap(), model.arena_bytes(), model.output_len(), data)
}

fn correct(pred: &[usize], data: &Dataset) -> usize {
    pred.iter().zip(&data.labels).filter(|(p, l)| **p == usize::from(**l)).count()
}

#[test]
fn shipped_models_reproduce_the_model_card() {
    let data = mnist_test();
    let card = card_counts();
    let archs = ["deepconvnet", "resnet", "inception"];
    let mut int8_models = Vec::new();
    for arch in archs {
        let (float_file, int8_file) = (format!("{arch}-float.safetensors"), format!("{arch}-int8.safetensors"));
        let float = model_predictions(&float_file, &data);
        let int8 = model_predictions(&int8_file, &data);
        let (float_ok, int8_ok) = (correct(&float, &data), correct(&int8, &data));
        println!("{arch}: float {float_ok}/10000, int8 {int8_ok}/10000");
        assert_eq!(Some(&float_ok), card.get(&float_file), "{float_file} vs MODEL_CARD.md");
        assert_eq!(Some(&int8_ok), card.get(&int8_file), "{int8_file} vs MODEL_CARD.md");
        let agree = float.iter().zip(&int8).filter(|(a, b)| a == b).count();
        assert!(agree >= 9950, "{arch}: int8 and float agree on only {agree}/10000 digits");
        assert!(int8_ok >= 9950, "{arch}: int8 accuracy {int8_ok}/10000 below 99.5%");
        int8_models.push(Model::load(std::fs::read(model_path(&int8_file)).unwrap()).unwrap());
    }
    let ensemble = Ensemble::new(int8_models).unwrap();
    let pred = predictions(
        |arena, x, out| ensemble.predict(arena, x, out).unwrap(),
        ensemble.arena_bytes(),
        ensemble.output_len(),
        &data,
    );
    let ok = correct(&pred, &data);
    println!("ensemble (int8): {ok}/10000");
    assert_eq!(Some(&ok), card.get("ensemble-int8"), "ensemble vs MODEL_CARD.md");
}
