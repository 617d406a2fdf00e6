//! Activation shapes and window geometry: what every layer above agrees on.

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
    pub padding: usize,
    /// Channel groups of a convolution (1 for pools and ordinary convolutions):
    /// output channel o reads only the input channels of its group,
    /// `o / (output.c / groups)`. groups = input.c is a depthwise convolution.
    pub groups: usize,
    /// Spacing of a convolution's taps (1: adjacent; PyTorch's and TFLite's
    /// `dilation`): tap t of output position o reads o·stride + t·dilation − padding.
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

    /// The taps of output position `o` along an axis of length `len`, with kernel
    /// size `k`, that read inside the input: the `t` in `first..last` with
    /// `o·stride + t·dilation − padding` in `0..len`.
    #[inline]
    pub fn taps(&self, o: usize, k: usize, len: usize) -> (usize, usize) {
        let start = (o * self.stride) as isize - self.padding as isize;
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

    /// The input padded on every side, for the kernels that copy it so: (height, width,
    /// elements + `slack`), if every output window lies inside it and nothing overflows.
    pub fn padded_input(&self, slack: usize) -> Option<(usize, usize, usize)> {
        let padded_h = self.input.h.checked_add(self.padding.checked_mul(2)?)?;
        let padded_w = self.input.w.checked_add(self.padding.checked_mul(2)?)?;
        let fits = |out: usize, kernel: usize, len: usize| {
            out > 0
                && (out - 1).checked_mul(self.stride).and_then(|x| x.checked_add(kernel)).is_some_and(|end| end <= len)
        };
        if self.input.is_empty()
            || !fits(self.output.h, self.extent(self.kernel_h), padded_h)
            || !fits(self.output.w, self.extent(self.kernel_w), padded_w)
        {
            return None;
        }
        let elements = padded_h.checked_mul(padded_w)?.checked_mul(self.input.c)?.checked_add(slack)?;
        Some((padded_h, padded_w, elements))
    }

    /// Input coordinate of tap `t` at output position `o` (only for taps inside `taps()`).
    #[inline]
    pub fn source(&self, o: usize, t: usize) -> usize {
        o * self.stride + t * self.dilation.max(1) - self.padding
    }
}

/// Output length along an axis: ⌊(len + 2·padding − kernel)/stride⌋ + 1, or None if the window does not fit.
pub fn output_len(len: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
    let padded = len.checked_add(2 * padding)?;
    if padded < kernel || stride == 0 {
        return None;
    }
    Some((padded - kernel) / stride + 1)
}
