//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use safetensors::SafeTensors;

pub mod backends;
pub mod nets;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = repo().join("tests/fixtures").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The PyTorch fixture: pixel images and the logits PyTorch computed for them.
pub struct Fixture {
    pub pixels: Vec<u8>,
    pub count: usize,
    pub image_len: usize,
    pub bytes: Vec<u8>,
}

impl Fixture {
    pub fn load() -> Fixture {
        let bytes = fixture("tiny-inputs.safetensors");
        let (count, image_len, pixels) = {
            let st = SafeTensors::deserialize(&bytes).unwrap();
            let p = st.tensor("pixels").unwrap();
            let shape = p.shape().to_vec();
            (shape[0], shape[1..].iter().product(), p.data().to_vec())
        };
        Fixture { pixels, count, image_len, bytes }
    }

    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * self.image_len..][..self.image_len]
    }

    pub fn logits(&self, name: &str) -> Vec<f32> {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        st.tensor(name).unwrap().data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
    }
}

/// The MNIST test set from data/mnist (scripts/fetch-mnist). Tests that need it
/// fail, with the command to run, when it is missing: skipping would hide a broken setup.
pub fn mnist_test() -> tinycnn::mnist::Dataset {
    let dir = repo().join("data/mnist");
    tinycnn::mnist::load_test(&dir).unwrap_or_else(|e| panic!("{}: {e} — run scripts/fetch-mnist first", dir.display()))
}

pub fn model_path(name: &str) -> PathBuf {
    repo().join("models").join(name)
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}

pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
