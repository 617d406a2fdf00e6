//! Activation shapes and window geometry: what every layer above agrees on.

use core::ops::Range;

/// Spatial size of a C×H×W activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Shape {
    pub const fn new(c: usize, h: usize, w: usize) -> Shape {
        Shape { c, h, w }
    }

    pub const fn len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// `len()` without overflow (32-bit targets, hostile files): None if it does not fit.
    pub fn checked_len(&self) -> Option<usize> {
        self.c.checked_mul(self.h)?.checked_mul(self.w)
    }

    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl core::fmt::Display for Shape {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}x{}x{}", self.c, self.h, self.w)
    }
}

/// Geometry of a 2-D convolution or pooling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dGeometry {
    pub input: Shape,
    pub output: Shape,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride: usize,
    /// Padding above and left of the input (real zero). Padding below and right
    /// is whatever the output size needs: a window's taps past the input read
    /// zero too, so TFLite's SAME padding (one more row below than above when
    /// the total is odd) is `pad_top` = total/2 and an output one row taller.
    pub pad_top: usize,
    pub pad_left: usize,
    /// Channel groups of a convolution (1 for pools and ordinary convolutions):
    /// output channel o reads only the input channels of its group,
    /// `o / (output.c / groups)`. groups = input.c is a depthwise convolution.
    pub groups: usize,
    /// Spacing of a convolution's taps (1: adjacent; PyTorch's and TFLite's
    /// `dilation`): tap t of output row o reads row o·stride + t·dilation − pad_top.
    pub dilation: usize,
}

impl Conv2dGeometry {
    /// Input channels each output channel reads (`input.c / groups`).
    #[inline]
    pub fn group_inputs(&self) -> usize {
        self.input.c / self.groups.max(1)
    }

    /// The first input channel output channel `o` reads.
    #[inline]
    pub fn group_start(&self, o: usize) -> usize {
        let group_outputs = (self.output.c / self.groups.max(1)).max(1);
        o / group_outputs * self.group_inputs()
    }

    /// The kernel rows of output row `oy` that read inside the input: `first..last`.
    #[inline]
    pub fn rows(&self, oy: usize) -> (usize, usize) {
        self.taps(oy, self.pad_top, self.kernel_h, self.input.h)
    }

    /// The kernel columns of output column `ox` that read inside the input.
    #[inline]
    pub fn cols(&self, ox: usize) -> (usize, usize) {
        self.taps(ox, self.pad_left, self.kernel_w, self.input.w)
    }

    /// Input row of kernel row `ky` at output row `oy` (only for rows inside `rows()`).
    #[inline]
    pub fn source_row(&self, oy: usize, ky: usize) -> usize {
        oy * self.stride + ky * self.dilation.max(1) - self.pad_top
    }

    /// Input column of kernel column `kx` at output column `ox` (only inside `cols()`).
    #[inline]
    pub fn source_col(&self, ox: usize, kx: usize) -> usize {
        ox * self.stride + kx * self.dilation.max(1) - self.pad_left
    }

    /// Along one axis (before-padding `pad`, kernel size `k`, input length `len`):
    /// the taps `t` in `first..last` with `o·stride + t·dilation − pad` in `0..len`.
    #[inline]
    fn taps(&self, o: usize, pad: usize, k: usize, len: usize) -> (usize, usize) {
        let start = (o * self.stride) as isize - pad as isize;
        let (first, last) = if self.dilation <= 1 {
            ((-start).max(0), (len as isize - start).clamp(0, k as isize))
        } else {
            let d = self.dilation as isize;
            let first = if start >= 0 { 0 } else { (-start + d - 1) / d };
            let last = if start >= len as isize { 0 } else { (len as isize - start + d - 1) / d };
            (first.min(k as isize), last.min(k as isize))
        };
        (first as usize, last.max(first) as usize)
    }

    /// Extent of a window of `k` taps: (k − 1)·dilation + 1.
    #[inline]
    pub fn extent(&self, k: usize) -> usize {
        k.saturating_sub(1) * self.dilation.max(1) + 1
    }

    /// The input rows output row `oy` reads: `start..end`, empty where its
    /// window lies in the padding.
    pub fn input_rows(&self, oy: usize) -> Range<usize> {
        match self.rows(oy) {
            (first, last) if first < last => self.source_row(oy, first)..self.source_row(oy, last - 1) + 1,
            _ => 0..0,
        }
    }

    /// Output row `oy` alone, its input `input_rows(oy)` alone: every tap reads
    /// the value it reads in `self`.
    pub fn row_band(&self, oy: usize) -> Conv2dGeometry {
        let (first, _) = self.rows(oy);
        Conv2dGeometry {
            input: Shape { h: self.input_rows(oy).len(), ..self.input },
            output: Shape { h: 1, ..self.output },
            pad_top: first * self.dilation.max(1),
            ..*self
        }
    }

    /// Run in place (the output written over its input, both `len()` values
    /// long), output row `oy` is made from copies of `input_rows(oy)`: those it
    /// shares with `held`, the rows of row `oy − 1`, are kept; the rest, from
    /// this row on, are copied from the input.
    pub fn first_row_to_copy(&self, oy: usize, held: &Range<usize>) -> usize {
        let rows = self.input_rows(oy);
        rows.start.max(held.end).min(rows.end)
    }

    /// Whether the output can be written over its input as it is made, row
    /// after row ([`first_row_to_copy`](Self::first_row_to_copy)): the same
    /// number of values, every input row copied before an output row covers it.
    /// Returns the most input rows held at once (the copies' room), or None.
    pub fn in_place_rows(&self) -> Option<usize> {
        if self.output.len() != self.input.len() || self.output.is_empty() {
            return None;
        }
        let (row_in, row_out) = (self.input.w * self.input.c, self.output.w * self.output.c);
        let (mut held, mut most) = (0..0, 0);
        for oy in 0..self.output.h {
            let rows = self.input_rows(oy);
            let copy_from = self.first_row_to_copy(oy, &held);
            // Rows 0..oy of the output are written by now.
            let copied_intact = copy_from == rows.end || copy_from * row_in >= oy * row_out;
            if rows.is_empty() || rows.start < held.start || !copied_intact {
                return None;
            }
            most = most.max(rows.len());
            held = rows;
        }
        Some(most)
    }

    /// The input padded around, for the kernels that copy it so: (height, width,
    /// elements + `slack`): `pad_top` rows above, `pad_left` columns left, and
    /// below and right as many as the last window needs (at least as many as
    /// above and left, so a symmetric layer keeps its symmetric copy). None if
    /// there is no output or something overflows.
    pub fn padded_input(&self, slack: usize) -> Option<(usize, usize, usize)> {
        let span = |out: usize, kernel: usize, pad: usize, len: usize| -> Option<usize> {
            let windows = out.checked_sub(1)?.checked_mul(self.stride)?.checked_add(self.extent(kernel))?;
            Some(windows.max(len.checked_add(pad.checked_mul(2)?)?))
        };
        if self.input.is_empty() {
            return None;
        }
        let padded_h = span(self.output.h, self.kernel_h, self.pad_top, self.input.h)?;
        let padded_w = span(self.output.w, self.kernel_w, self.pad_left, self.input.w)?;
        let elements = padded_h.checked_mul(padded_w)?.checked_mul(self.input.c)?.checked_add(slack)?;
        Some((padded_h, padded_w, elements))
    }
}

/// Output length along an axis: ⌊(len + 2·padding − kernel)/stride⌋ + 1, or None if the window does not fit.
pub fn output_len(len: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
    output_len_padded(len, kernel, stride, padding, padding)
}

/// Output length with `before` and `after` padding: ⌊(len + before + after − kernel)/stride⌋ + 1.
pub fn output_len_padded(len: usize, kernel: usize, stride: usize, before: usize, after: usize) -> Option<usize> {
    let padded = len.checked_add(before)?.checked_add(after)?;
    if padded < kernel || stride == 0 {
        return None;
    }
    Some((padded - kernel) / stride + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(input: Shape, output: Shape, kernel: usize, stride: usize, pad_top: usize) -> Conv2dGeometry {
        Conv2dGeometry {
            input,
            output,
            kernel_h: kernel,
            kernel_w: kernel,
            stride,
            pad_top,
            pad_left: pad_top,
            groups: 1,
            dilation: 1,
        }
    }

    #[test]
    fn a_row_band_reads_what_its_row_reads() {
        let g = conv(Shape::new(4, 6, 5), Shape::new(4, 6, 5), 3, 1, 1);
        assert_eq!((g.input_rows(0), g.input_rows(3), g.input_rows(5)), (0..2, 2..5, 4..6));
        let band = g.row_band(0);
        assert_eq!((band.input.h, band.output.h, band.pad_top), (2, 1, 1));
        let band = g.row_band(3);
        assert_eq!((band.input.h, band.output.h, band.pad_top), (3, 1, 0));
        // Taps 2 apart: output row 1 reads rows −1 (padding), 1 and 3.
        let dilated = Conv2dGeometry { dilation: 2, pad_top: 3, ..g };
        assert_eq!(dilated.input_rows(1), 0..3);
        assert_eq!(dilated.row_band(1).pad_top, 2);
    }

    #[test]
    fn in_place_needs_the_same_size_and_rows_copied_before_they_are_covered() {
        let same = Shape::new(8, 10, 10);
        assert_eq!(conv(same, same, 3, 1, 1).in_place_rows(), Some(3));
        assert_eq!(conv(same, same, 1, 1, 0).in_place_rows(), Some(1));
        assert_eq!(conv(same, same, 5, 1, 2).in_place_rows(), Some(5));
        // Half the rows and columns, four times the channels: two rows in, one out.
        assert_eq!(conv(same, Shape::new(32, 5, 5), 2, 2, 0).in_place_rows(), Some(2));
        // Not the same size.
        assert_eq!(conv(same, Shape::new(8, 8, 8), 3, 1, 0).in_place_rows(), None);
        // Output row 0 reads only padding (a 1×1 window, padding 1, stride 2): nothing to copy first.
        assert_eq!(conv(Shape::new(9, 4, 4), Shape::new(16, 3, 3), 1, 2, 1).in_place_rows(), None);
        // Rows of 3 values out of rows of 2, a 2×1 window at stride 2 below one row of
        // padding: output row 0 covers half of input row 1, which output row 1 reads.
        let g = Conv2dGeometry { kernel_w: 1, pad_left: 0, ..conv(Shape::new(2, 3, 1), Shape::new(3, 2, 1), 2, 2, 1) };
        assert_eq!((g.input_rows(0), g.input_rows(1)), (0..1, 1..3));
        assert_eq!(g.in_place_rows(), None);
    }
}
