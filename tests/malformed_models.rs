//! The malformed-model corpus (tests/fixtures/malformed/, written by
//! scripts/gen-malformed): every file is refused with the specific typed error
//! its manifest entry names, and a message containing the manifest's text.
//! tests/node/malformed.test.mjs checks the same files through the JS API.

mod common;

use common::{fixture, repo};
use tinycnn::{Error, Model};

struct Case {
    file: String,
    error: String,
    message: String,
}

fn manifest() -> Vec<Case> {
    let path = repo().join("tests/fixtures/malformed/manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let entries: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    entries
        .iter()
        .map(|e| Case {
            file: e["file"].as_str().unwrap().to_string(),
            error: e["error"].as_str().unwrap().to_string(),
            message: e["message"].as_str().unwrap().to_string(),
        })
        .collect()
}

/// The variant's name, from its Debug form (`LimitExceeded { .. }`, `Cycle(..)`, `MissingGraph`).
fn variant(e: &Error) -> String {
    format!("{e:?}").chars().take_while(char::is_ascii_alphanumeric).collect()
}

#[test]
fn the_base_models_load() {
    for name in ["small-float.safetensors", "small-int8.safetensors"] {
        let model = Model::load(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut arena = vec![0u8; model.arena_bytes()];
        let mut out = vec![0f32; model.output_len()];
        model.predict(&mut arena, &[200u8; 36], &mut out).unwrap();
        assert!((out.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
}

#[test]
fn every_malformed_file_gives_its_typed_error() {
    let cases = manifest();
    assert!(cases.len() >= 30, "only {} malformed files", cases.len());
    let dir = repo().join("tests/fixtures/malformed");
    let on_disk = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "safetensors"))
        .count();
    assert_eq!(on_disk, cases.len(), "every file in {} has a manifest entry", dir.display());
    let mut failures = Vec::new();
    for case in &cases {
        let bytes = std::fs::read(dir.join(&case.file)).unwrap();
        match Model::load(&bytes[..]) {
            Ok(_) => failures.push(format!("{}: loaded", case.file)),
            Err(e) => {
                let (found, message) = (variant(&e), e.to_string());
                if found != case.error || !message.contains(&case.message) {
                    failures.push(format!(
                        "{}: expected {} containing {:?}, got {found}: {message}",
                        case.file, case.error, case.message
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} files:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
