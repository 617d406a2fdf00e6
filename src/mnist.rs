//! MNIST in its IDX files: `idx3` images (u8, N×rows×cols) and `idx1` labels.
//!
//! The format (big-endian): a magic `0x0000_08DD` (`08` = unsigned byte,
//! `DD` = number of dimensions), then one u32 per dimension, then the data.
//! Malformed files (bad magic, truncated or oversized data, labels that are not
//! digits, image and label counts that differ) are refused with [`Error::Data`].

use std::format;
use std::path::Path;
use std::string::String;
use std::vec::Vec;

use crate::error::{Error, Result};

/// Test-set images, as named by the original distribution.
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// Test-set labels.
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";
/// Training-set images.
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// Training-set labels.
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;
/// Most images one file may declare (the real sets have 60,000 and 10,000).
const MAX_ITEMS: usize = 1 << 24;
/// Largest side of one image.
const MAX_SIDE: usize = 1 << 12;

/// Images (row-major bytes, white ink on black) and their digit labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// `len() · rows · cols` pixel bytes, image after image.
    pub images: Vec<u8>,
    /// One label in 0..=9 per image.
    pub labels: Vec<u8>,
    pub rows: usize,
    pub cols: usize,
}

impl Dataset {
    /// Pairs parsed images with labels, checking that the counts agree.
    pub fn new(images: Images, labels: Vec<u8>) -> Result<Dataset> {
        if images.count != labels.len() {
            return Err(Error::Data(format!("{} images but {} labels", images.count, labels.len())));
        }
        Ok(Dataset { images: images.pixels, labels, rows: images.rows, cols: images.cols })
    }

    /// Parses an images file and a labels file held in memory.
    pub fn from_idx(images: &[u8], labels: &[u8]) -> Result<Dataset> {
        Dataset::new(parse_images(images)?, parse_labels(labels)?)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes of one image: rows · cols.
    pub fn image_len(&self) -> usize {
        self.rows * self.cols
    }

    /// Image `i` (rows × cols bytes). Panics if `i >= len()`, like slice indexing.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// Label of image `i`.
    pub fn label(&self, i: usize) -> u8 {
        self.labels[i]
    }

    /// Keeps the first `n` images (all of them if there are fewer).
    pub fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.labels.truncate(n);
            self.images.truncate(n * self.image_len());
        }
    }
}

/// The contents of an idx3 images file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    pub pixels: Vec<u8>,
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
}

fn be_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

fn check_magic(bytes: &[u8], expected: u32, what: &str) -> Result<()> {
    let Some(magic) = be_u32(bytes, 0) else {
        return Err(Error::Data(format!("{what} file is {} bytes, too short for an IDX header", bytes.len())));
    };
    if magic as u32 != expected {
        return Err(Error::Data(format!(
            "{what} file has magic 0x{magic:08x}, expected 0x{expected:08x} (is it gzipped or the wrong file?)"
        )));
    }
    Ok(())
}

fn check_data_len(what: &str, found: usize, expected: usize) -> Result<()> {
    if found < expected {
        return Err(Error::Data(format!(
            "{what} file is truncated: {found} data bytes, the header promises {expected}"
        )));
    }
    if found > expected {
        return Err(Error::Data(format!(
            "{what} file has {} bytes after the {expected} the header promises",
            found - expected
        )));
    }
    Ok(())
}

/// Parses an idx3-ubyte images file.
pub fn parse_images(bytes: &[u8]) -> Result<Images> {
    check_magic(bytes, IMAGES_MAGIC, "images")?;
    let (Some(count), Some(rows), Some(cols)) = (be_u32(bytes, 4), be_u32(bytes, 8), be_u32(bytes, 12)) else {
        return Err(Error::Data(format!("images file is {} bytes, too short for its 16-byte header", bytes.len())));
    };
    if count > MAX_ITEMS || rows == 0 || cols == 0 || rows > MAX_SIDE || cols > MAX_SIDE {
        return Err(Error::Data(format!("images file declares {count} images of {rows}x{cols}, out of range")));
    }
    let Some(expected) = count.checked_mul(rows * cols) else {
        return Err(Error::Data(format!("images file declares {count} images of {rows}x{cols}, out of range")));
    };
    let data = &bytes[16..];
    check_data_len("images", data.len(), expected)?;
    Ok(Images { pixels: data.to_vec(), count, rows, cols })
}

/// Parses an idx1-ubyte labels file; every label must be a digit 0..=9.
pub fn parse_labels(bytes: &[u8]) -> Result<Vec<u8>> {
    check_magic(bytes, LABELS_MAGIC, "labels")?;
    let Some(count) = be_u32(bytes, 4) else {
        return Err(Error::Data(format!("labels file is {} bytes, too short for its 8-byte header", bytes.len())));
    };
    if count > MAX_ITEMS {
        return Err(Error::Data(format!("labels file declares {count} labels, out of range")));
    }
    let data = &bytes[8..];
    check_data_len("labels", data.len(), count)?;
    if let Some(i) = data.iter().position(|&l| l > 9) {
        return Err(Error::Data(format!("label {} of item {i} is not a digit", data[i])));
    }
    Ok(data.to_vec())
}

/// Encodes images as an idx3-ubyte file (for tests and tools).
pub fn encode_images(pixels: &[u8], rows: usize, cols: usize) -> Vec<u8> {
    let count = pixels.len() / (rows * cols).max(1);
    let mut out = Vec::with_capacity(16 + pixels.len());
    for v in [IMAGES_MAGIC as usize, count, rows, cols] {
        out.extend_from_slice(&(v as u32).to_be_bytes());
    }
    out.extend_from_slice(&pixels[..count * rows * cols]);
    out
}

/// Encodes labels as an idx1-ubyte file.
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        let hint: String = if e.kind() == std::io::ErrorKind::NotFound {
            " (run scripts/fetch-mnist, or pass --data DIR)".into()
        } else {
            String::new()
        };
        Error::Data(format!("{}: {e}{hint}", path.display()))
    })
}

/// Loads an images file and a labels file; errors name the file at fault.
pub fn load_files(images: &Path, labels: &Path) -> Result<Dataset> {
    let in_file = |path: &Path, e: Error| match e {
        Error::Data(why) => Error::Data(format!("{}: {why}", path.display())),
        other => other,
    };
    let parsed_images = parse_images(&read(images)?).map_err(|e| in_file(images, e))?;
    let parsed_labels = parse_labels(&read(labels)?).map_err(|e| in_file(labels, e))?;
    Dataset::new(parsed_images, parsed_labels).map_err(|e| in_file(images, e))
}

/// The 10,000 test images of `dir` (`t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`).
pub fn load_test(dir: impl AsRef<Path>) -> Result<Dataset> {
    let dir = dir.as_ref();
    load_files(&dir.join(TEST_IMAGES), &dir.join(TEST_LABELS))
}

/// The 60,000 training images of `dir` (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`).
pub fn load_train(dir: impl AsRef<Path>) -> Result<Dataset> {
    let dir = dir.as_ref();
    load_files(&dir.join(TRAIN_IMAGES), &dir.join(TRAIN_LABELS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    #[test]
    fn round_trip() {
        let pixels: Vec<u8> = (0..3 * 4 * 5).map(|i| i as u8).collect();
        let d = Dataset::from_idx(&encode_images(&pixels, 4, 5), &encode_labels(&[1, 7, 9])).unwrap();
        assert_eq!((d.len(), d.rows, d.cols), (3, 4, 5));
        assert_eq!(d.image(1), &pixels[20..40]);
        assert_eq!(d.label(2), 9);
    }

    #[test]
    fn malformed_files_are_data_errors() {
        let images = encode_images(&[0; 2 * 28 * 28], 28, 28);
        let labels = encode_labels(&[3, 4]);
        // Truncated images, extra bytes, bad magic, short header, count mismatch, bad label.
        assert!(matches!(parse_images(&images[..images.len() - 1]), Err(Error::Data(_))));
        let mut extra = images.clone();
        extra.push(0);
        assert!(matches!(parse_images(&extra), Err(Error::Data(_))));
        assert!(matches!(parse_images(&labels), Err(Error::Data(_))));
        assert!(matches!(parse_labels(&images), Err(Error::Data(_))));
        assert!(matches!(parse_images(&images[..10]), Err(Error::Data(_))));
        assert!(matches!(parse_labels(&[]), Err(Error::Data(_))));
        assert!(matches!(Dataset::from_idx(&images, &encode_labels(&[1])), Err(Error::Data(_))));
        assert!(matches!(parse_labels(&encode_labels(&[1, 10])), Err(Error::Data(_))));
        // A huge declared count is refused before any allocation.
        let mut huge = vec![0, 0, 8, 3];
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        huge.extend_from_slice(&28u32.to_be_bytes());
        huge.extend_from_slice(&28u32.to_be_bytes());
        assert!(matches!(parse_images(&huge), Err(Error::Data(_))));
    }

    #[test]
    fn truncate_keeps_prefix() {
        let mut d = Dataset::from_idx(&encode_images(&[1, 2, 3, 4], 1, 1), &encode_labels(&[0, 1, 2, 3])).unwrap();
        d.truncate(2);
        assert_eq!((d.len(), d.images.len()), (2, 2));
        d.truncate(5);
        assert_eq!(d.len(), 2);
    }
}
