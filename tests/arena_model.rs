//! `ArenaModel`: the heap-free load. The same file gives the same errors as
//! the allocating loader (the malformed-model corpus, byte for byte), the
//! memory it reports is enough and anything less is refused with a typed
//! error, and a float model is refused. (Its outputs: tests/backends.rs runs it
//! as a backend against the reference; tests/tflite_models.rs against TFLM;
//! tests/zero_alloc.rs counts its allocations: none, load included.)

mod common;

use std::mem::MaybeUninit;

use common::Fixture;
use common::{fixture, model_path, repo};
use tinycnn::format::{read_graph_json, store_requant_multipliers, tensors_of, write_model};
use tinycnn::{ArenaModel, Error, KernelSet, Model};

fn memory(len: usize) -> Vec<MaybeUninit<u8>> {
    vec![MaybeUninit::new(0); len]
}

#[test]
fn malformed_files_give_the_same_errors_in_place() {
    let dir = repo().join("tests/fixtures/malformed");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "safetensors") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let allocating = Model::load(&bytes[..]).expect_err("a malformed file loaded");
        let mut memory = memory(4 * bytes.len() + (1 << 20));
        let in_place = ArenaModel::load(&bytes, &mut memory, KernelSet::best()).map(|_| ()).unwrap_err();
        assert_eq!(in_place, allocating, "{}", path.display());
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} malformed files");
}

#[test]
fn the_memory_it_reports_is_enough_and_less_is_refused() {
    let file = std::fs::read(model_path("deepconvnet-int8.safetensors")).unwrap();
    let model = Model::load(&file[..]).unwrap();
    for kernels in KernelSet::available() {
        let mut ample = memory(8 << 20);
        let (probe, _) = ArenaModel::load(&file, &mut ample, kernels).unwrap();
        let needed = probe.memory_bytes();
        assert!(needed >= probe.state_bytes() + probe.arena_bytes(), "{}", kernels.name());
        // A microcontroller's sets run the DeepConvNet's 3×3 convolutions over
        // their inputs (the engine's `conv_in_place`): a smaller arena.
        if matches!(kernels, KernelSet::Reference | KernelSet::Portable) {
            assert!(probe.arena_bytes() < model.arena_bytes() * 3 / 4, "{}", kernels.name());
        } else {
            assert_eq!(probe.arena_bytes(), model.arena_bytes(), "{}", kernels.name());
        }
        // The state is the network's records and the prepared steps: the allocating
        // model keeps the same (packed weights included).
        assert!(probe.state_bytes() > 0);

        // + 16: a buffer's start may be unaligned, costing up to 15 bytes.
        let mut exact = memory(needed + 16);
        let (in_place, arena) = ArenaModel::load(&file, &mut exact, kernels).unwrap();
        assert!(arena.len() >= in_place.arena_bytes());
        let mut logits = [0f32; 10];
        in_place.run(arena, &[200u8; 784], &mut logits).unwrap();
        let mut want = [0f32; 10];
        model.run(&mut vec![0u8; model.arena_bytes()], &[200u8; 784], &mut want).unwrap();
        assert_eq!(logits, want, "{}", kernels.name());

        for short in [0, 1, 64, needed / 2, needed - 64] {
            let mut small = memory(short);
            match ArenaModel::load(&file, &mut small, kernels) {
                Err(Error::MemoryTooSmall { needed: asked, found }) => {
                    assert_eq!(found, short);
                    assert!(asked > short, "{}: {short} bytes, asked for {asked}", kernels.name());
                }
                other => panic!("{}: {short} bytes: {:?}", kernels.name(), other.map(|_| ())),
            }
        }
    }
}

#[test]
fn a_float_model_is_refused_in_place() {
    let bytes = fixture("tiny-float.safetensors");
    let mut memory = memory(1 << 20);
    let err = ArenaModel::load(&bytes, &mut memory, KernelSet::Reference).map(|_| ()).unwrap_err();
    assert_eq!(err, Error::WrongDtype { expected: "int8" });
}

#[test]
fn misuse_gives_typed_errors() {
    let file = std::fs::read(model_path("deepconvnet-int8.safetensors")).unwrap();
    let mut memory = memory(1 << 20);
    let (model, arena) = ArenaModel::load(&file, &mut memory, KernelSet::Portable).unwrap();
    let mut logits = [0f32; 10];
    assert!(matches!(model.run(arena, &[0u8; 3], &mut logits), Err(Error::InputLength { .. })));
    assert!(matches!(model.run(arena, &[0u8; 784], &mut [0f32; 3]), Err(Error::OutputLength { .. })));
    assert!(matches!(model.run(&mut arena[..10], &[0u8; 784], &mut logits), Err(Error::ArenaTooSmall { .. })));
    assert!(matches!(model.run_int8(arena, &[0i8; 784], &mut [0i8; 10]), Ok(())));
    model.predict(arena, &[0u8; 784], &mut logits).unwrap();
    assert!((logits.iter().sum::<f32>() - 1.0).abs() < 1e-5);
}

#[test]
fn multipliers_stored_in_the_file_leave_the_state_and_change_no_logit() {
    // The shipped file stores them (the quantiser wrote it); a copy without.
    let stored = std::fs::read(model_path("deepconvnet-int8.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&stored).unwrap();
    let is_requant = |name: &str| name.ends_with(".requant_multiplier") || name.ends_with(".requant_shift");
    let channels: usize =
        file.iter().filter(|(name, _)| name.ends_with(".requant_shift")).map(|(_, t)| t.shape()[0]).sum();
    assert!(channels >= 100, "the DeepConvNet's layers are quantised per channel: {channels} channels stored");
    let others: Vec<_> = tensors_of(&file).into_iter().filter(|t| !is_requant(&t.name)).collect();
    let computed = write_model(&read_graph_json(&stored).unwrap(), &others).unwrap();
    assert_eq!(store_requant_multipliers(&computed).unwrap(), stored, "stored as the quantiser stores them");
    assert_eq!(store_requant_multipliers(&stored).unwrap(), stored, "storing twice changes nothing");

    let fx = Fixture::load();
    for kernels in KernelSet::available() {
        let (mut memory_a, mut memory_b) = (memory(8 << 20), memory(8 << 20));
        let (a, arena_a) = ArenaModel::load(&computed, &mut memory_a, kernels).unwrap();
        let (b, arena_b) = ArenaModel::load(&stored, &mut memory_b, kernels).unwrap();
        if matches!(kernels, KernelSet::Reference | KernelSet::Portable) {
            // 4 bytes of mantissa and 1 of shift per channel, read from the file instead.
            assert!(a.state_bytes() >= b.state_bytes() + 5 * channels, "{}", kernels.name());
        }
        for i in 0..fx.count {
            let (mut want, mut got) = ([0f32; 10], [0f32; 10]);
            a.run(arena_a, fx.image(i), &mut want).unwrap();
            b.run(arena_b, fx.image(i), &mut got).unwrap();
            assert_eq!(got, want, "{} digit {i}", kernels.name());
        }
    }
}
