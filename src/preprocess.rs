//! Turning a drawing or a photo into MNIST-style 28×28 digits.
//!
//! MNIST digits are white ink (255) on black (0): each digit was scaled to fit
//! a 20×20 box keeping its aspect ratio, anti-aliased, and placed in the
//! 28×28 field so that its centre of mass sits at the centre. This module
//! does the same to an arbitrary image:
//!
//! 1. **Luminance** of each pixel (ITU-R BT.601 weights), with alpha
//!    composited over the background: on a canvas whose border is transparent
//!    the transparent pixels *are* the background, whatever the stroke colour.
//! 2. **Background level**: the median luminance of the image border.
//! 3. **Ink** = |luminance − background|, so black on white (paper, photos) and
//!    white on black (MNIST-like canvases) give the same digit.
//! 4. **Noise**: ink below a threshold (a fraction of the strongest ink, at
//!    least [`INK_THRESHOLD`]) is dropped, and so are blobs (8-connected
//!    components) much smaller than the largest one.
//! 5. **Crop** to the ink's bounding box, **scale** it into 20×20 keeping the
//!    aspect ratio with exact area averaging (integer arithmetic), stretch the
//!    result so its strongest pixel is 255, and **place** it in 28×28 with
//!    its centre of mass at the centre (clamped so nothing is cut off).
//!
//! [`segment_rgba`] / [`segment_gray`] split a row of digits into its digits:
//! connected components of ink, merged when they overlap horizontally (the two
//! strokes of a 4 or 5 drawn separately, a broken stroke), ordered left to right.
//! A component too wide for one digit (digits written so close that they
//! touch) is cut into as many digits as its width holds, each cut along the
//! top-to-bottom path that crosses the least ink near where it is expected.
//!
//! An image without ink is an error ([`Error::EmptyImage`]); a web page can
//! treat it as "draw something".
//! Everything here is deterministic integer arithmetic: the same image gives
//! the same bytes on every platform.

use alloc::vec;
use alloc::vec::Vec;

use crate::error::{Error, Result};

/// Side of the output image (MNIST).
pub const SIDE: usize = 28;
/// Side of the box the digit is scaled into (MNIST).
pub const BOX: usize = 20;
/// Pixels of one output digit.
pub const DIGIT_LEN: usize = SIDE * SIDE;
/// Largest accepted width or height.
pub const MAX_DIMENSION: usize = 4096;
/// Most digits [`segment_rgba`] returns.
pub const MAX_DIGITS: usize = 32;
/// Ink (|luminance − background|, 0–255) below this is never ink.
pub const INK_THRESHOLD: u8 = 32;

/// Ink below this fraction (in 1/256) of the strongest ink is background noise.
const RELATIVE_THRESHOLD: u32 = 77; // ≈ 30 %
/// Blobs with fewer pixels than 1/NOISE_BLOB of the largest blob are specks.
const NOISE_BLOB: usize = 40;
/// Two blobs belong to one digit when their column ranges overlap by at least
/// this fraction (in 1/256) of the narrower one's width.
const MERGE_OVERLAP: usize = 128; // 50 %
/// Digits (after merging) whose ink is below 1/NOISE_DIGIT of the strongest digit's are dropped.
const NOISE_DIGIT: u64 = 20;
/// More separate blobs than this: the image is noise, not digits.
const MAX_BLOBS: usize = 1 << 16;
/// A group wider than this (in 1/256 of its height) may be touching digits.
/// Some single digits are wider (MNIST has 2s and 7s up to 20×12): the cut's
/// ink limit, MAX_CUT_INK, keeps most of those whole.
const SPLIT_ASPECT: usize = 307; // 1.2 (tests/touching_digits.rs measures the trade-off)
/// The width (in 1/256 of its height) of one digit in a group that is split,
/// which says how many digits the group holds.
const DIGIT_ASPECT: usize = 166; // 0.65
/// A group is only split when it is at least this tall (in 1/256) next to the
/// tallest group: a dash beside digits is wide but is not digits.
const SPLIT_MIN_HEIGHT: usize = 154; // 60 %
/// A cut may cross at most this much ink (in pixels of full ink, in 1/256 of
/// the stroke width): more, and it goes through a digit's strokes.
const MAX_CUT_INK: usize = 320; // 1.25 strokes

/// One MNIST-style digit from an RGBA image (`width × height × 4` bytes, row-major,
/// as a canvas `ImageData` holds it).
pub fn preprocess_rgba(rgba: &[u8], width: usize, height: usize) -> Result<[u8; DIGIT_LEN]> {
    check_len(rgba.len(), width, height, 4, "RGBA")?;
    digit(Ink::from_rgba(rgba, width, height)?)
}

/// One MNIST-style digit from a grayscale image (`width × height` bytes, row-major).
pub fn preprocess_gray(gray: &[u8], width: usize, height: usize) -> Result<[u8; DIGIT_LEN]> {
    check_len(gray.len(), width, height, 1, "grayscale")?;
    digit(Ink::from_gray(gray, width, height)?)
}

/// The digits of an RGBA image, left to right, each MNIST-style (at most [`MAX_DIGITS`]).
pub fn segment_rgba(rgba: &[u8], width: usize, height: usize) -> Result<Vec<[u8; DIGIT_LEN]>> {
    check_len(rgba.len(), width, height, 4, "RGBA")?;
    digits(Ink::from_rgba(rgba, width, height)?)
}

/// The digits of a grayscale image, left to right, each MNIST-style (at most [`MAX_DIGITS`]).
pub fn segment_gray(gray: &[u8], width: usize, height: usize) -> Result<Vec<[u8; DIGIT_LEN]>> {
    check_len(gray.len(), width, height, 1, "grayscale")?;
    digits(Ink::from_gray(gray, width, height)?)
}

fn check_len(len: usize, width: usize, height: usize, channels: usize, what: &str) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(Error::Data(alloc::format!("the image is {width}x{height}: width and height must be at least 1")));
    }
    if width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(Error::Data(alloc::format!(
            "the image is {width}x{height}, over the limit of {MAX_DIMENSION}x{MAX_DIMENSION}"
        )));
    }
    let expected = width * height * channels;
    if len != expected {
        return Err(Error::Data(alloc::format!(
            "the {what} buffer has {len} bytes, a {width}x{height} {what} image has {expected} ({channels} per pixel)"
        )));
    }
    Ok(())
}

/// A bounding box, `x0..x1` × `y0..y1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rect {
    x0: usize,
    y0: usize,
    x1: usize,
    y1: usize,
}

impl Rect {
    fn union(self, o: Rect) -> Rect {
        Rect { x0: self.x0.min(o.x0), y0: self.y0.min(o.y0), x1: self.x1.max(o.x1), y1: self.y1.max(o.y1) }
    }

    fn width(&self) -> usize {
        self.x1 - self.x0
    }

    fn height(&self) -> usize {
        self.y1 - self.y0
    }
}

/// The ink map of an image: 0 where there is no ink, else 1–255
/// (stretched so the strongest ink is 255).
struct Ink {
    ink: Vec<u8>,
    width: usize,
    height: usize,
}

/// Median of a 256-bin histogram holding `n > 0` values.
fn median(histogram: &[u32; 256], n: u32) -> u8 {
    let half = n.div_ceil(2);
    let mut seen = 0;
    for (v, &c) in histogram.iter().enumerate() {
        seen += c;
        if seen >= half {
            return v as u8;
        }
    }
    255
}

/// Calls `f(index)` for every pixel on the image border, once each.
fn for_border(width: usize, height: usize, mut f: impl FnMut(usize)) {
    for x in 0..width {
        f(x);
        if height > 1 {
            f((height - 1) * width + x);
        }
    }
    for y in 1..height.saturating_sub(1) {
        f(y * width);
        if width > 1 {
            f(y * width + width - 1);
        }
    }
}

/// BT.601 luminance, 0–255.
fn luminance(r: u8, g: u8, b: u8) -> u8 {
    ((77 * u32::from(r) + 150 * u32::from(g) + 29 * u32::from(b) + 128) >> 8) as u8
}

impl Ink {
    fn from_gray(gray: &[u8], width: usize, height: usize) -> Result<Ink> {
        Ink::from_luminance(gray.to_vec(), width, height)
    }

    fn from_rgba(rgba: &[u8], width: usize, height: usize) -> Result<Ink> {
        let pixels = rgba.chunks_exact(4);
        // A mostly transparent border: transparent pixels are the background
        // (a canvas). Composite over the colour that contrasts with the strokes.
        let mut border_alpha = [0u32; 256];
        let mut n = 0;
        for_border(width, height, |i| {
            border_alpha[usize::from(rgba[i * 4 + 3])] += 1;
            n += 1;
        });
        let backdrop = if median(&border_alpha, n) < 128 {
            let (mut sum, mut weight) = (0u64, 0u64);
            for p in pixels.clone() {
                sum += u64::from(luminance(p[0], p[1], p[2])) * u64::from(p[3]);
                weight += u64::from(p[3]);
            }
            // Dark strokes go on white, light strokes on black.
            if sum < weight * 128 {
                255
            } else {
                0
            }
        } else {
            // An opaque image: partly transparent pixels show over white, as in a browser.
            255
        };
        let lum = pixels
            .map(|p| {
                let (l, a) = (u32::from(luminance(p[0], p[1], p[2])), u32::from(p[3]));
                ((l * a + backdrop * (255 - a) + 127) / 255) as u8
            })
            .collect();
        Ink::from_luminance(lum, width, height)
    }

    /// Replaces luminance by ink in place: |lum − background|, thresholded and stretched.
    fn from_luminance(mut ink: Vec<u8>, width: usize, height: usize) -> Result<Ink> {
        let mut border = [0u32; 256];
        let mut n = 0;
        for_border(width, height, |i| {
            border[usize::from(ink[i])] += 1;
            n += 1;
        });
        let background = median(&border, n);
        let mut strongest = 0;
        for v in ink.iter_mut() {
            *v = v.abs_diff(background);
            strongest = strongest.max(*v);
        }
        let threshold = INK_THRESHOLD.max(((u32::from(strongest) * RELATIVE_THRESHOLD) >> 8) as u8);
        if strongest < threshold || strongest == 0 {
            return Err(Error::EmptyImage);
        }
        let s = u32::from(strongest);
        for v in ink.iter_mut() {
            *v = if *v < threshold { 0 } else { ((u32::from(*v) * 255 + s / 2) / s) as u8 };
        }
        Ok(Ink { ink, width, height })
    }
}

/// An 8-connected blob of ink.
#[derive(Debug, Clone, Copy)]
struct Blob {
    rect: Rect,
    pixels: usize,
    mass: u64,
}

/// Labels 8-connected components: `labels[i]` is 1 + the blob index, or 0 for no ink.
fn blobs(ink: &Ink) -> Result<(Vec<u32>, Vec<Blob>)> {
    let (w, h) = (ink.width, ink.height);
    let mut labels = vec![0u32; w * h];
    let mut found: Vec<Blob> = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    for start in 0..w * h {
        if ink.ink[start] == 0 || labels[start] != 0 {
            continue;
        }
        if found.len() >= MAX_BLOBS {
            return Err(Error::Data(alloc::format!(
                "the image has over {MAX_BLOBS} separate ink blobs: it looks like noise, not digits"
            )));
        }
        let label = found.len() as u32 + 1;
        let (x, y) = (start % w, start / w);
        let mut blob = Blob { rect: Rect { x0: x, y0: y, x1: x + 1, y1: y + 1 }, pixels: 0, mass: 0 };
        labels[start] = label;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            blob.rect = blob.rect.union(Rect { x0: x, y0: y, x1: x + 1, y1: y + 1 });
            blob.pixels += 1;
            blob.mass += u64::from(ink.ink[i]);
            for ny in y.saturating_sub(1)..(y + 2).min(h) {
                for nx in x.saturating_sub(1)..(x + 2).min(w) {
                    let j = ny * w + nx;
                    if ink.ink[j] != 0 && labels[j] == 0 {
                        labels[j] = label;
                        stack.push(j);
                    }
                }
            }
        }
        found.push(blob);
    }
    if found.is_empty() {
        return Err(Error::EmptyImage);
    }
    Ok((labels, found))
}

/// Whether a blob is big enough, next to the largest one, to be part of a digit.
fn is_speck(blob: &Blob, largest: usize) -> bool {
    blob.pixels * NOISE_BLOB < largest
}

fn digit(ink: Ink) -> Result<[u8; DIGIT_LEN]> {
    let (labels, found) = blobs(&ink)?;
    let largest = found.iter().map(|b| b.pixels).max().unwrap_or(0);
    // Group 0: every blob that is not a speck; specks go nowhere.
    let groups: Vec<Option<usize>> = found.iter().map(|b| (!is_speck(b, largest)).then_some(0)).collect();
    let rect =
        found.iter().filter(|b| !is_speck(b, largest)).map(|b| b.rect).reduce(Rect::union).ok_or(Error::EmptyImage)?;
    Ok(render(&GroupInk { ink: &ink, labels: &labels, group_of: &groups, group: 0 }, &Piece::whole(0, rect)))
}

fn digits(ink: Ink) -> Result<Vec<[u8; DIGIT_LEN]>> {
    let (labels, found) = blobs(&ink)?;
    let largest = found.iter().map(|b| b.pixels).max().unwrap_or(0);
    // Each group: its bounding box, its ink, the blobs in it.
    let mut groups: Vec<(Rect, u64, Vec<usize>)> = found
        .iter()
        .enumerate()
        .filter(|(_, b)| !is_speck(b, largest))
        .map(|(i, b)| (b.rect, b.mass, vec![i]))
        .collect();
    // Merge groups whose column ranges overlap heavily, until none do.
    let overlaps = |a: &Rect, b: &Rect| {
        let overlap = a.x1.min(b.x1).saturating_sub(a.x0.max(b.x0));
        overlap * 256 >= a.width().min(b.width()) * MERGE_OVERLAP
    };
    'merge: loop {
        for i in 0..groups.len() {
            for j in i + 1..groups.len() {
                if overlaps(&groups[i].0, &groups[j].0) {
                    let (rect, mass, members) = groups.swap_remove(j);
                    let g = &mut groups[i];
                    g.0 = g.0.union(rect);
                    g.1 += mass;
                    g.2.extend(members);
                    continue 'merge;
                }
            }
        }
        break;
    }
    let heaviest = groups.iter().map(|g| g.1).max().unwrap_or(0);
    groups.retain(|g| g.1 * NOISE_DIGIT >= heaviest);
    groups.sort_by_key(|g| (g.0.x0 + g.0.x1, g.0.y0));
    let mut group_of = vec![None; found.len()];
    for (g, (_, _, members)) in groups.iter().enumerate() {
        for &m in members {
            group_of[m] = Some(g);
        }
    }
    let tallest = groups.iter().map(|g| g.0.height()).max().unwrap_or(0);
    let mut pieces: Vec<Piece> = Vec::new();
    for (g, (rect, _, _)) in groups.iter().enumerate() {
        let (w, h) = (rect.width(), rect.height());
        if w * 256 <= h * SPLIT_ASPECT || h * 256 < tallest * SPLIT_MIN_HEIGHT {
            pieces.push(Piece::whole(g, *rect));
        } else {
            let n = ((w * 256 + h * DIGIT_ASPECT / 2) / (h * DIGIT_ASPECT)).clamp(2, MAX_DIGITS + 1);
            let view = GroupInk { ink: &ink, labels: &labels, group_of: &group_of, group: g };
            pieces.extend(split(&view, *rect, n));
        }
        if pieces.len() > MAX_DIGITS {
            break;
        }
    }
    if pieces.len() > MAX_DIGITS {
        return Err(Error::Data(alloc::format!(
            "the image holds {} digits (or blobs), more than the {MAX_DIGITS} allowed",
            groups.len().max(pieces.len())
        )));
    }
    Ok(pieces
        .iter()
        .map(|piece| render(&GroupInk { ink: &ink, labels: &labels, group_of: &group_of, group: piece.group }, piece))
        .collect())
}

/// The ink of one group of blobs (other groups' pixels read as 0).
struct GroupInk<'a> {
    ink: &'a Ink,
    labels: &'a [u32],
    group_of: &'a [Option<usize>],
    group: usize,
}

impl GroupInk<'_> {
    fn at(&self, x: usize, y: usize) -> u8 {
        let i = y * self.ink.width + x;
        let label = self.labels[i] as usize;
        match label.checked_sub(1).and_then(|b| self.group_of.get(b).copied().flatten()) {
            Some(g) if g == self.group => self.ink.ink[i],
            _ => 0,
        }
    }
}

/// One digit's part of a group: its box, and for each row of the box the
/// columns `from..to` that are this digit's (all of them unless the group was split).
struct Piece {
    group: usize,
    rect: Rect,
    columns: Vec<(usize, usize)>,
}

impl Piece {
    fn whole(group: usize, rect: Rect) -> Piece {
        Piece { group, rect, columns: vec![(rect.x0, rect.x1); rect.height()] }
    }
}

/// Cuts a group of touching digits into `n` pieces. Each cut is the path from
/// top to bottom (one column per row, moving at most one column a row) that
/// crosses the least ink within a third of a digit's width of where an even
/// split puts it: it runs through the gap around the point where two digits
/// touch, which a straight vertical cut would miss (two round digits touch
/// where both are inked top to bottom). Pieces are tightened to their ink;
/// pieces without ink are dropped.
fn split(group: &GroupInk, rect: Rect, n: usize) -> Vec<Piece> {
    let (w, h) = (rect.width(), rect.height());
    // Stroke width ≈ 2 · area / boundary (a stroke of length L and width t has
    // area L·t and about 2·L boundary pixels).
    let (mut area, mut boundary) = (0usize, 0usize);
    for y in rect.y0..rect.y1 {
        for x in rect.x0..rect.x1 {
            if group.at(x, y) != 0 {
                area += 1;
                let bare = |x: Option<usize>, y: Option<usize>| match (x, y) {
                    (Some(x), Some(y)) if x < rect.x1 && y < rect.y1 => group.at(x, y) == 0,
                    _ => true,
                };
                if bare(x.checked_sub(1), Some(y))
                    || bare(Some(x + 1), Some(y))
                    || bare(Some(x), y.checked_sub(1))
                    || bare(Some(x), Some(y + 1))
                {
                    boundary += 1;
                }
            }
        }
    }
    let mut cuts: Vec<Vec<usize>> = vec![vec![rect.x0; h]];
    for i in 1..n {
        let nominal = rect.x0 + i * w / n;
        let reach = (w / (3 * n)).max(1);
        let lo = nominal.saturating_sub(reach).max(rect.x0 + 1);
        let hi = (nominal + reach).min(rect.x1 - 1);
        if lo > hi {
            continue;
        }
        let path = cheapest_path(group, rect, lo, hi, nominal);
        // A cut through strokes (rather than past the point where two digits
        // touch) means one wide digit: no cut there.
        let crossed: usize = path.iter().enumerate().map(|(row, &x)| usize::from(group.at(x, rect.y0 + row))).sum();
        if crossed * 256 <= 255 * (2 * area / boundary.max(1)).max(1) * MAX_CUT_INK {
            cuts.push(path);
        }
    }
    cuts.push(vec![rect.x1; h]);
    cuts.windows(2)
        .filter_map(|pair| {
            let columns: Vec<(usize, usize)> = pair[0].iter().zip(&pair[1]).map(|(&a, &b)| (a, b.max(a))).collect();
            let mut tight: Option<Rect> = None;
            for (row, &(a, b)) in columns.iter().enumerate() {
                let y = rect.y0 + row;
                for x in a..b {
                    if group.at(x, y) != 0 {
                        let px = Rect { x0: x, y0: y, x1: x + 1, y1: y + 1 };
                        tight = Some(tight.map_or(px, |t| t.union(px)));
                    }
                }
            }
            let tight = tight?;
            let columns = columns[tight.y0 - rect.y0..tight.y1 - rect.y0].to_vec();
            Some(Piece { group: group.group, rect: tight, columns })
        })
        .collect()
}

/// The cut column of each row of `rect`: a path in columns `lo..=hi`, by
/// dynamic programming over the ink it crosses (plus one per column of drift
/// from `nominal` and per sideways step, which only breaks ties).
fn cheapest_path(group: &GroupInk, rect: Rect, lo: usize, hi: usize, nominal: usize) -> Vec<usize> {
    let k = hi - lo + 1;
    let h = rect.height();
    let own = |x: usize, y: usize| u64::from(group.at(x, y)) * 16 + x.abs_diff(nominal) as u64;
    let mut cost: Vec<u64> = (0..k).map(|c| own(lo + c, rect.y0)).collect();
    // from[row · k + c]: the column (index into lo..=hi) of the row above on the best path to c.
    let mut from = vec![0u32; h * k];
    let mut next = vec![0u64; k];
    for row in 1..h {
        for c in 0..k {
            let (mut best, mut arg) = (u64::MAX, c);
            for (p, &above) in cost.iter().enumerate().take((c + 2).min(k)).skip(c.saturating_sub(1)) {
                let step = above + u64::from(p != c);
                if step < best {
                    (best, arg) = (step, p);
                }
            }
            next[c] = best + own(lo + c, rect.y0 + row);
            from[row * k + c] = arg as u32;
        }
        core::mem::swap(&mut cost, &mut next);
    }
    let mut c = (0..k).min_by_key(|&c| cost[c]).unwrap_or(0);
    let mut path = vec![0; h];
    for row in (0..h).rev() {
        path[row] = lo + c;
        c = from[row * k + c] as usize;
    }
    path
}

/// Scales a piece of a group's ink into 20×20 and places it in 28×28 by its
/// centre of mass.
fn render(group: &GroupInk, piece: &Piece) -> [u8; DIGIT_LEN] {
    let rect = piece.rect;
    let (bw, bh) = (rect.width(), rect.height());
    let long = bw.max(bh);
    // Target size, keeping the aspect ratio (round half up, at least 1).
    let tw = ((bw * BOX + long / 2) / long).clamp(1, BOX);
    let th = ((bh * BOX + long / 2) / long).clamp(1, BOX);
    let value = |x: usize, y: usize| {
        let (x, (from, to)) = (rect.x0 + x, piece.columns[y]);
        if (from..to).contains(&x) {
            u64::from(group.at(x, rect.y0 + y))
        } else {
            0
        }
    };
    // Horizontal pass: output column o covers source [o·bw, (o+1)·bw) in units of
    // 1/tw pixel; source pixel x covers [x·tw, (x+1)·tw). Sums keep denominator bw·tw.
    let mut rows = vec![0u64; bh * tw];
    for y in 0..bh {
        for o in 0..tw {
            let (a, b) = (o * bw, (o + 1) * bw);
            let mut sum = 0;
            for x in a / tw..b.div_ceil(tw).min(bw) {
                let overlap = b.min((x + 1) * tw) - a.max(x * tw);
                sum += value(x, y) * overlap as u64;
            }
            rows[y * tw + o] = sum;
        }
    }
    // Vertical pass, the same way.
    let mut scaled = vec![0u64; th * tw];
    for o in 0..th {
        let (a, b) = (o * bh, (o + 1) * bh);
        for y in a / th..b.div_ceil(th).min(bh) {
            let overlap = (b.min((y + 1) * th) - a.max(y * th)) as u64;
            for x in 0..tw {
                scaled[o * tw + x] += rows[y * tw + x] * overlap;
            }
        }
    }
    // Stretch so the strongest pixel is 255 (MNIST digits reach 255).
    let strongest = scaled.iter().copied().max().unwrap_or(0).max(1);
    let block: Vec<u8> = scaled.iter().map(|&s| ((s * 255 + strongest / 2) / strongest) as u8).collect();
    // Centre of mass (pixel centres at x + ½) to the field centre (14), clamped inside.
    let (mut total, mut sx, mut sy) = (0i64, 0i64, 0i64);
    for (i, &v) in block.iter().enumerate() {
        let v = i64::from(v);
        total += v;
        sx += v * (2 * (i % tw) as i64 + 1);
        sy += v * (2 * (i / tw) as i64 + 1);
    }
    let total = total.max(1);
    // offset = floor(14 − c + ½) with c = s / (2·total)
    let place = |s: i64, size: usize| -> usize {
        let centre = SIDE as i64;
        let offset = ((centre + 1) * total - s).div_euclid(2 * total);
        offset.clamp(0, (SIDE - size) as i64) as usize
    };
    let (left, top) = (place(sx, tw), place(sy, th));
    let mut out = [0u8; DIGIT_LEN];
    for y in 0..th {
        out[(top + y) * SIDE + left..][..tw].copy_from_slice(&block[y * tw..][..tw]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    /// A white-background grayscale image with black rectangles (x0, y0, x1, y1).
    fn paper(width: usize, height: usize, rects: &[(usize, usize, usize, usize)]) -> Vec<u8> {
        let mut img = vec![255u8; width * height];
        for &(x0, y0, x1, y1) in rects {
            for y in y0..y1 {
                for x in x0..x1 {
                    img[y * width + x] = 0;
                }
            }
        }
        img
    }

    fn gray_to_rgba(gray: &[u8]) -> Vec<u8> {
        gray.iter().flat_map(|&g| [g, g, g, 255]).collect()
    }

    /// Centre of mass (x, y) of a 28×28 digit, pixel centres at i + ½.
    fn centre(d: &[u8; DIGIT_LEN]) -> (f64, f64) {
        let (mut t, mut x, mut y) = (0.0, 0.0, 0.0);
        for (i, &v) in d.iter().enumerate() {
            let v = f64::from(v);
            t += v;
            x += v * ((i % SIDE) as f64 + 0.5);
            y += v * ((i / SIDE) as f64 + 0.5);
        }
        (x / t, y / t)
    }

    /// Bounding box of the nonzero pixels: (x0, y0, x1, y1).
    fn bbox(d: &[u8; DIGIT_LEN]) -> (usize, usize, usize, usize) {
        let (mut x0, mut y0, mut x1, mut y1) = (SIDE, SIDE, 0, 0);
        for (i, &v) in d.iter().enumerate() {
            if v > 0 {
                let (x, y) = (i % SIDE, i / SIDE);
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x + 1);
                y1 = y1.max(y + 1);
            }
        }
        (x0, y0, x1, y1)
    }

    #[test]
    fn a_vertical_bar_lands_centred_in_a_20_high_box() {
        let img = paper(100, 100, &[(45, 10, 55, 90)]);
        let d = preprocess_gray(&img, 100, 100).unwrap();
        let (x0, y0, x1, y1) = bbox(&d);
        assert_eq!(y1 - y0, BOX, "the long side fills the 20-pixel box");
        assert_eq!((x1 - x0, x0, y0), (3, 13, 4), "10×80 → 3×20, centred");
        let (cx, cy) = centre(&d);
        assert!((cx - 14.0).abs() <= 0.5 && (cy - 14.0).abs() <= 0.5, "centre of mass {cx}, {cy}");
        assert_eq!(d.iter().copied().max(), Some(255), "white ink on black");
        assert_eq!(d[0], 0);
    }

    #[test]
    fn the_bar_is_found_wherever_it_is_drawn() {
        let a = preprocess_gray(&paper(100, 100, &[(45, 10, 55, 90)]), 100, 100).unwrap();
        let b = preprocess_gray(&paper(100, 100, &[(3, 15, 13, 95)]), 100, 100).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn both_polarities_and_rgba_give_the_same_digit() {
        let (w, h) = (60, 40);
        // An "L": a bar and a foot.
        let black_on_white = paper(w, h, &[(20, 5, 26, 35), (20, 29, 40, 35)]);
        let white_on_black: Vec<u8> = black_on_white.iter().map(|&v| 255 - v).collect();
        let a = preprocess_gray(&black_on_white, w, h).unwrap();
        let b = preprocess_gray(&white_on_black, w, h).unwrap();
        assert_eq!(a, b);
        assert_eq!(preprocess_rgba(&gray_to_rgba(&black_on_white), w, h).unwrap(), a);
        assert_eq!(preprocess_rgba(&gray_to_rgba(&white_on_black), w, h).unwrap(), a);
        // A canvas: transparent background, strokes of any colour.
        for colour in [[0u8, 0, 0], [255, 255, 255], [200, 30, 30]] {
            let canvas: Vec<u8> = black_on_white
                .iter()
                .flat_map(|&v| if v == 0 { [colour[0], colour[1], colour[2], 255] } else { [0, 0, 0, 0] })
                .collect();
            assert_eq!(preprocess_rgba(&canvas, w, h).unwrap(), a, "stroke colour {colour:?}");
        }
    }

    #[test]
    fn width_and_height_are_not_mixed_up() {
        let (w, h) = (70, 30);
        let img = paper(w, h, &[(10, 12, 60, 18), (10, 5, 16, 25)]);
        let transposed: Vec<u8> = (0..w * h).map(|i| img[(i % h) * w + i / h]).collect();
        let a = preprocess_gray(&img, w, h).unwrap();
        let b = preprocess_gray(&transposed, h, w).unwrap();
        let (x0, y0, x1, y1) = bbox(&a);
        assert_eq!(x1 - x0, BOX, "the wide side is horizontal");
        assert!(y1 - y0 < BOX);
        for y in 0..SIDE {
            for x in 0..SIDE {
                assert_eq!(a[y * SIDE + x], b[x * SIDE + y]);
            }
        }
    }

    #[test]
    fn faint_noise_and_specks_are_ignored() {
        let (w, h) = (100, 100);
        let clean = paper(w, h, &[(45, 10, 55, 90)]);
        let mut noisy = clean.clone();
        for (i, v) in noisy.iter_mut().enumerate() {
            if *v == 255 {
                *v = 255 - ((i * 7919) % 23) as u8; // faint grain below the threshold
            }
        }
        noisy[5 * w + 5] = 0; // a speck far from the digit
        assert_eq!(preprocess_gray(&noisy, w, h).unwrap(), preprocess_gray(&clean, w, h).unwrap());
    }

    #[test]
    fn tiny_and_one_pixel_images_work() {
        let d = preprocess_gray(&[0, 255, 255, 255], 2, 2).unwrap();
        assert_eq!(d.iter().filter(|&&v| v > 0).count(), BOX * BOX, "one pixel fills the box");
        assert!(preprocess_gray(&[0], 1, 1).is_err(), "one pixel is its own border: blank");
    }

    #[test]
    fn segmentation_finds_three_blobs_left_to_right() {
        let (w, h) = (120, 40);
        // Right to left in memory order: tall bar, square, wide bar.
        let img = paper(w, h, &[(100, 5, 106, 35), (50, 10, 70, 30), (5, 17, 35, 23)]);
        let digits = segment_gray(&img, w, h).unwrap();
        assert_eq!(digits.len(), 3);
        let boxes: Vec<_> = digits.iter().map(bbox).collect();
        let (x0, y0, x1, y1) = boxes[0];
        assert!(x1 - x0 == BOX && y1 - y0 < 10, "first: the wide bar, got {:?}", boxes[0]);
        let (x0, y0, x1, y1) = boxes[1];
        assert!(x1 - x0 == BOX && y1 - y0 == BOX, "second: the square, got {:?}", boxes[1]);
        let (x0, y0, x1, y1) = boxes[2];
        assert!(x1 - x0 < 10 && y1 - y0 == BOX, "third: the tall bar, got {:?}", boxes[2]);
        // Each alone is what preprocess gives for it.
        let alone = preprocess_gray(&paper(w, h, &[(50, 10, 70, 30)]), w, h).unwrap();
        assert_eq!(digits[1], alone);
        assert_eq!(segment_rgba(&gray_to_rgba(&img), w, h).unwrap(), digits);
    }

    #[test]
    fn strokes_drawn_apart_merge_into_one_digit() {
        let (w, h) = (100, 60);
        // A "5" whose top bar does not touch its body, then a "1" far right.
        let five = [(10, 5, 40, 9), (10, 12, 14, 30), (10, 30, 40, 34), (36, 34, 40, 50), (10, 50, 40, 54)];
        let img = paper(w, h, &[&five[..], &[(75, 5, 80, 55)]].concat());
        let digits = segment_gray(&img, w, h).unwrap();
        assert_eq!(digits.len(), 2);
        assert_eq!(digits[0], preprocess_gray(&paper(w, h, &five), w, h).unwrap());
        // The "1" after the "5", and nothing of the "5" in the "1".
        let one = preprocess_gray(&paper(w, h, &[(75, 5, 80, 55)]), w, h).unwrap();
        assert_eq!(digits[1], one);
    }

    /// A white-background image with black elliptic rings (cx, cy, rx, ry), 5 pixels thick.
    fn rings(width: usize, height: usize, rings: &[(f64, f64, f64, f64)]) -> Vec<u8> {
        let mut img = vec![255u8; width * height];
        for (i, v) in img.iter_mut().enumerate() {
            let (x, y) = ((i % width) as f64 + 0.5, (i / width) as f64 + 0.5);
            for &(cx, cy, rx, ry) in rings {
                let outer = ((x - cx) / rx).powi(2) + ((y - cy) / ry).powi(2);
                let inner = ((x - cx) / (rx - 5.0)).powi(2) + ((y - cy) / (ry - 5.0)).powi(2);
                if outer <= 1.0 && inner >= 1.0 {
                    *v = 0;
                }
            }
        }
        img
    }

    #[test]
    fn touching_digits_are_cut_apart_where_they_touch() {
        let (w, h) = (200, 80);
        for count in 2..=4 {
            // Rings 34 wide and 50 tall (a "0"), each touching the next at one point.
            let centres: Vec<_> = (0..count).map(|i| (30.0 + 34.0 * i as f64, 40.0, 17.0, 25.0)).collect();
            let img = rings(w, h, &centres);
            assert_eq!(blobs(&Ink::from_gray(&img, w, h).unwrap()).unwrap().1.len(), 1, "one blob");
            let digits = segment_gray(&img, w, h).unwrap();
            assert_eq!(digits.len(), count, "{count} touching rings");
            // Each piece is a ring: its box within two pixels of a ring's alone.
            let alone = preprocess_gray(&rings(w, h, &centres[..1]), w, h).unwrap();
            for (i, d) in digits.iter().enumerate() {
                let (a, b) = (bbox(d), bbox(&alone));
                let near = |p: usize, q: usize| p.abs_diff(q) <= 2;
                assert!(
                    near(a.0, b.0) && near(a.1, b.1) && near(a.2, b.2) && near(a.3, b.3),
                    "ring {i}: box {a:?}, alone {b:?}"
                );
            }
        }
        // One wide ring (a wide "0"), and a ring beside a dash, stay whole.
        let wide = rings(w, h, &[(100.0, 40.0, 28.0, 25.0)]);
        assert_eq!(segment_gray(&wide, w, h).unwrap().len(), 1, "a ring 1.1 times as wide as tall");
    }

    #[test]
    fn too_many_digits_is_an_error() {
        let (w, h) = (4 * 40, 10);
        let rects: Vec<_> = (0..40).map(|i| (i * 4 + 1, 2, i * 4 + 3, 8)).collect();
        let err = segment_gray(&paper(w, h, &rects), w, h).unwrap_err();
        assert!(err.to_string().contains("40 digits"), "{err}");
    }

    #[test]
    fn bad_sizes_and_blank_images_are_errors() {
        let msg = |r: Result<[u8; DIGIT_LEN]>| r.unwrap_err().to_string();
        assert!(msg(preprocess_rgba(&[0; 10], 2, 2)).contains("has 10 bytes"));
        assert!(msg(preprocess_gray(&[0; 5], 2, 2)).contains("has 5 bytes"));
        assert!(msg(preprocess_gray(&[], 0, 5)).contains("at least 1"));
        assert!(msg(preprocess_gray(&[], 5000, 1)).contains("over the limit"));
        assert!(msg(preprocess_gray(&[], usize::MAX, usize::MAX)).contains("over the limit"));
        assert!(matches!(preprocess_gray(&[255; 100], 10, 10), Err(Error::EmptyImage)));
        assert!(matches!(preprocess_rgba(&[0; 400], 10, 10), Err(Error::EmptyImage)));
        assert!(matches!(segment_gray(&[7; 100], 10, 10), Err(Error::EmptyImage)));
    }
}
