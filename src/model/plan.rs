//! Arena planning: every activation gets an offset in one buffer, chosen at
//! load time so that buffers alive at the same step never overlap.
//!
//! The greedy strategy of TFLite Micro: place the largest buffers first, each at
//! the lowest offset that does not collide with an already placed buffer whose
//! lifetime intersects its own.

#[cfg(feature = "alloc")]
use alloc::vec::Vec;
use core::ops::Range;

#[cfg(feature = "alloc")]
use super::graph::Graph;
use super::sort::sort;

/// Offsets are multiples of this (SIMD loads, f32 alignment).
pub const ALIGN: usize = 16;

/// Lifetime of a value in execution steps: produced at `first`, last read at `last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    pub first: usize,
    pub last: usize,
}

impl Lifetime {
    fn overlaps(&self, other: &Lifetime) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

/// When each value is alive (value 0 the input, `i + 1` node i's output; node
/// i, reading the values `node_inputs[i]`, runs at step i + 1): from its
/// producer to its last reader, the logits to the end. Every backend's
/// planner starts from these.
pub fn fill_lifetimes<I: IntoIterator<Item = usize>>(
    lifetimes: &mut [Lifetime],
    node_inputs: impl Iterator<Item = I>,
    logits: usize,
) {
    let values = lifetimes.len();
    for (v, lifetime) in lifetimes.iter_mut().enumerate() {
        *lifetime = Lifetime { first: v, last: v };
    }
    for (i, inputs) in node_inputs.enumerate() {
        for v in inputs {
            if let Some(lifetime) = lifetimes.get_mut(v) {
                lifetime.last = lifetime.last.max(i + 1);
            }
        }
    }
    if let Some(logits) = lifetimes.get_mut(logits) {
        logits.last = values;
    }
}

/// [`fill_lifetimes`] of an owned graph.
#[cfg(feature = "alloc")]
pub fn lifetimes(graph: &Graph) -> Vec<Lifetime> {
    let mut lifetimes = alloc::vec![Lifetime { first: 0, last: 0 }; graph.nodes.len() + 1];
    fill_lifetimes(&mut lifetimes, graph.nodes.iter().map(|n| n.inputs.iter().copied()), graph.logits);
    lifetimes
}

/// A value's bytes in the arena, as a load keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Buffer {
    pub start: usize,
    pub end: usize,
}

impl Buffer {
    pub fn range(self) -> Range<usize> {
        self.start..self.end
    }
}

#[cfg(feature = "alloc")]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Byte range of each value in the arena.
    pub buffers: Vec<Range<usize>>,
    /// Bytes the arena needs.
    pub arena_bytes: usize,
}

/// Saturating, like every sum below: on a 32-bit target a hostile graph can ask
/// for more than `usize::MAX` bytes, which must saturate (and be refused by the
/// arena limit), not wrap around to a small arena.
fn align_up(x: usize) -> usize {
    x.div_ceil(ALIGN).saturating_mul(ALIGN)
}

/// `sizes[v]` bytes live during `lifetimes[v]`: each value's place in `buffers`,
/// with `order` as room to sort in (all three `sizes.len()` long). Returns the
/// arena's bytes.
pub fn place(sizes: &[usize], lifetimes: &[Lifetime], order: &mut [u32], buffers: &mut [Buffer]) -> usize {
    for (v, slot) in order.iter_mut().enumerate() {
        *slot = v as u32;
    }
    // Largest first, then the earliest. Values have distinct `first`s, so the order is total.
    sort(order, &mut |a, b| {
        let (a, b) = (a as usize, b as usize);
        sizes[b].cmp(&sizes[a]).then(lifetimes[a].first.cmp(&lifetimes[b].first))
    });

    let mut arena_bytes = 0;
    for (k, v) in order.iter().map(|&v| v as usize).enumerate() {
        let size = sizes[v];
        // Candidate offsets: 0 and the aligned end of every conflicting buffer placed so far.
        let conflicts = || {
            order[..k].iter().map(|&p| p as usize).filter(|&p| lifetimes[p].overlaps(&lifetimes[v])).map(|p| buffers[p])
        };
        let fits = |start: usize| conflicts().all(|r| start.saturating_add(size) <= r.start || r.end <= start);
        let offset = core::iter::once(0)
            .chain(conflicts().map(|r| align_up(r.end)))
            .filter(|&start| fits(start))
            .min()
            .unwrap_or(0);
        let end = offset.saturating_add(size);
        buffers[v] = Buffer { start: offset, end };
        arena_bytes = arena_bytes.max(end);
    }
    align_up(arena_bytes)
}

/// [`place`], its results in vectors.
#[cfg(feature = "alloc")]
pub fn plan(sizes: &[usize], lifetimes: &[Lifetime]) -> Plan {
    let mut order = alloc::vec![0u32; sizes.len()];
    let mut buffers = alloc::vec![Buffer::default(); sizes.len()];
    let arena_bytes = place(sizes, lifetimes, &mut order, &mut buffers);
    Plan { buffers: buffers.iter().map(|b| b.range()).collect(), arena_bytes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_reuses_memory() {
        // a → b → c: a and c may share bytes, b sits beside them.
        let sizes = [100, 50, 100];
        let lifetimes =
            [Lifetime { first: 0, last: 1 }, Lifetime { first: 1, last: 2 }, Lifetime { first: 2, last: 3 }];
        let p = plan(&sizes, &lifetimes);
        assert_eq!(p.buffers[0].start, p.buffers[2].start);
        assert_eq!(p.arena_bytes, 176); // b sits at the 16-aligned 112
    }

    #[test]
    fn live_buffers_never_overlap() {
        let sizes = [64, 32, 48, 16, 80, 8];
        let lifetimes = [
            Lifetime { first: 0, last: 2 },
            Lifetime { first: 1, last: 3 },
            Lifetime { first: 2, last: 5 },
            Lifetime { first: 3, last: 4 },
            Lifetime { first: 4, last: 5 },
            Lifetime { first: 5, last: 6 },
        ];
        let p = plan(&sizes, &lifetimes);
        for a in 0..sizes.len() {
            for b in a + 1..sizes.len() {
                if lifetimes[a].overlaps(&lifetimes[b]) {
                    let (ra, rb) = (&p.buffers[a], &p.buffers[b]);
                    assert!(ra.end <= rb.start || rb.end <= ra.start, "{a} and {b} overlap");
                }
            }
            assert!(p.buffers[a].end <= p.arena_bytes);
        }
    }

    #[test]
    fn sizes_beyond_usize_saturate() {
        let big = usize::MAX / 3;
        let lifetimes = [Lifetime { first: 0, last: 1 }; 4];
        assert_eq!(plan(&[big; 4], &lifetimes).arena_bytes, usize::MAX);
    }
}
