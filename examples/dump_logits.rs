//! Writes a model's logits on the MNIST test images as raw little-endian f32
//! (count × classes), the native reference the npm package tests compare with.
//!
//! ```sh
//! cargo run --release --example dump_logits -- MODEL DATA_DIR COUNT OUT
//! cargo run --release --example dump_logits -- models/deepconvnet-int8.safetensors data/mnist 10000 /tmp/logits.f32
//! ```
//! DATA_DIR holds `t10k-images-idx3-ubyte` (scripts/fetch-mnist). Prints the
//! accuracy of the argmax against `t10k-labels-idx1-ubyte` when that file exists.

use std::process::ExitCode;

fn idx(path: &std::path::Path, magic: u32) -> Result<(Vec<usize>, Vec<u8>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e} (run scripts/fetch-mnist)", path.display()))?;
    let word = |i: usize| -> Option<u32> { Some(u32::from_be_bytes(bytes.get(i..i + 4)?.try_into().ok()?)) };
    if word(0) != Some(magic) {
        return Err(format!("{}: not an IDX file with magic {magic:#x}", path.display()));
    }
    let dims = (magic & 0xff) as usize;
    let shape: Vec<usize> =
        (0..dims).map(|d| word(4 + 4 * d).map(|v| v as usize)).collect::<Option<_>>().ok_or("truncated IDX header")?;
    let start = 4 + 4 * dims;
    let len: usize = shape.iter().product();
    let data = bytes.get(start..start + len).ok_or_else(|| format!("{}: truncated", path.display()))?;
    Ok((shape, data.to_vec()))
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, data, count, out] = &args[..] else {
        return Err("usage: dump_logits MODEL DATA_DIR COUNT OUT".into());
    };
    let model =
        tinycnn::Model::load(std::fs::read(model).map_err(|e| format!("{model}: {e}"))?).map_err(|e| e.to_string())?;
    let data = std::path::Path::new(data);
    let (shape, images) = idx(&data.join("t10k-images-idx3-ubyte"), 0x0803)?;
    let image_len = model.input_len();
    if shape[1..].iter().product::<usize>() != image_len {
        return Err(format!("the model takes {image_len} pixels, the images have {:?}", &shape[1..]));
    }
    let count: usize = count.parse().map_err(|_| format!("COUNT must be a number, got {count}"))?;
    let count = count.min(shape[0]);
    let classes = model.output_len();
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut logits = vec![0f32; classes];
    let mut bytes = Vec::with_capacity(count * classes * 4);
    let mut predictions = Vec::with_capacity(count);
    for image in images.chunks_exact(image_len).take(count) {
        model.run(&mut arena, image, &mut logits).map_err(|e| e.to_string())?;
        bytes.extend(logits.iter().flat_map(|v| v.to_le_bytes()));
        // First maximum, as JS's indexOf(Math.max(...)) finds it.
        let best = (0..classes).fold(0, |b, i| if logits[i] > logits[b] { i } else { b });
        predictions.push(best as u8);
    }
    std::fs::write(out, &bytes).map_err(|e| format!("{out}: {e}"))?;
    if let Ok((_, labels)) = idx(&data.join("t10k-labels-idx1-ubyte"), 0x0801) {
        let correct = predictions.iter().zip(&labels).filter(|(p, l)| p == l).count();
        println!("{count} images, {correct} correct ({:.2}%)", 100.0 * correct as f64 / count as f64);
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dump_logits: {e}");
            ExitCode::FAILURE
        }
    }
}
