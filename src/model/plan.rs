//! Arena planning: every activation gets an offset in one buffer, chosen at
//! load time so that buffers alive at the same step never overlap.
//!
//! Greedy first fit: in some order, each value goes to the lowest offset that
//! does not collide with an already placed value whose lifetime intersects its
//! own. Two orders are tried and the smaller arena kept: TFLite Micro's (the
//! largest first) and execution order.

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

/// The orders in which [`place`] lays values out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// TFLite Micro's: the largest first, then the earliest.
    LargestFirst,
    /// Execution order. Better where largest-first puts a large value at the
    /// bottom and so pushes its smaller producers apart: MobileNet v1's first
    /// blocks need 55,296 bytes this way, 64,512 largest-first.
    FirstUse,
}

/// `shares[v]` of a value with bytes of its own.
pub const OWN: u32 = u32::MAX;

/// `sizes[v]` bytes live during `lifetimes[v]`: each value's place in `buffers`,
/// with `order` as room to sort in (all `sizes.len()` long). Returns the arena's
/// bytes: the smaller of what the two greedy orders need (largest first, execution
/// order; largest first on a tie).
///
/// `shares[v] = u` asks for value v to be made in value u's bytes: an op run
/// in place (element-wise, an add, or a convolution row after row). Granted where
/// [`may_share`]; otherwise `shares[v]` becomes [`OWN`]. A granted `shares[v]`
/// then names the first value of its chain, whose lifetime is stretched over
/// the chain's.
pub fn place(
    sizes: &[usize],
    lifetimes: &mut [Lifetime],
    shares: &mut [u32],
    order: &mut [u32],
    buffers: &mut [Buffer],
) -> usize {
    for v in 0..sizes.len() {
        let u = shares[v] as usize;
        if !may_share(sizes, lifetimes, u, v) {
            shares[v] = OWN;
            continue;
        }
        let root = if shares[u] == OWN { u } else { shares[u] as usize };
        shares[v] = root as u32;
        lifetimes[root].last = lifetimes[root].last.max(lifetimes[v].last);
    }
    let (lifetimes, shares) = (&*lifetimes, &*shares);
    let first_use = place_in(Order::FirstUse, sizes, lifetimes, shares, order, buffers);
    let largest_first = place_in(Order::LargestFirst, sizes, lifetimes, shares, order, buffers);
    if largest_first <= first_use {
        largest_first
    } else {
        // `buffers` holds the last layout made (most graphs keep it): make the smaller again.
        place_in(Order::FirstUse, sizes, lifetimes, shares, order, buffers)
    }
}

/// Whether value v may be made in value u's bytes: that overwrites nothing
/// still needed where u < v, v's producer is u's last reader, and both have
/// the same size. (On the lifetimes as [`fill_lifetimes`] gives them.)
pub fn may_share(sizes: &[usize], lifetimes: &[Lifetime], u: usize, v: usize) -> bool {
    u < v && lifetimes[u].last == lifetimes[v].first && sizes[u] == sizes[v]
}

fn place_in(
    strategy: Order,
    sizes: &[usize],
    lifetimes: &[Lifetime],
    shares: &[u32],
    order: &mut [u32],
    buffers: &mut [Buffer],
) -> usize {
    for (v, slot) in order.iter_mut().enumerate() {
        *slot = v as u32;
    }
    // The index breaks ties (a scratch value starts with its node's output): both orders are total.
    sort(order, &mut |a, b| {
        let (a, b) = (a as usize, b as usize);
        let by_first = lifetimes[a].first.cmp(&lifetimes[b].first).then(a.cmp(&b));
        match strategy {
            Order::LargestFirst => sizes[b].cmp(&sizes[a]).then(by_first),
            Order::FirstUse => by_first,
        }
    });

    let mut arena_bytes = 0;
    let own = |v: usize| shares[v] == OWN;
    for (k, v) in order.iter().map(|&v| v as usize).enumerate().filter(|&(_, v)| own(v)) {
        let size = sizes[v];
        // Candidate offsets: 0 and the aligned end of every conflicting buffer placed so far.
        let conflicts = || {
            order[..k]
                .iter()
                .map(|&p| p as usize)
                .filter(|&p| own(p) && lifetimes[p].overlaps(&lifetimes[v]))
                .map(|p| buffers[p])
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
    for v in (0..sizes.len()).filter(|&v| !own(v)) {
        let start = buffers[shares[v] as usize].start;
        buffers[v] = Buffer { start, end: start.saturating_add(sizes[v]) };
    }
    align_up(arena_bytes)
}

/// [`place`] with no value sharing another's bytes, its results in vectors.
#[cfg(feature = "alloc")]
pub fn plan(sizes: &[usize], lifetimes: &[Lifetime]) -> Plan {
    let mut lifetimes = lifetimes.to_vec();
    let mut shares = alloc::vec![OWN; sizes.len()];
    let mut order = alloc::vec![0u32; sizes.len()];
    let mut buffers = alloc::vec![Buffer::default(); sizes.len()];
    let arena_bytes = place(sizes, &mut lifetimes, &mut shares, &mut order, &mut buffers);
    Plan { buffers: buffers.iter().map(|b| b.range()).collect(), arena_bytes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

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

    /// The head of MobileNet v1 (input, conv, depthwise, a pointwise conv that
    /// doubles the channels, a strided depthwise): largest-first places the
    /// pointwise output at 0 and needs a third buffer beside the first two;
    /// execution order reaches the bound, the two largest values alive at once.
    #[test]
    fn execution_order_wins_where_largest_first_fragments() {
        let sizes = [27_648, 18_432, 18_432, 36_864, 9_216];
        let lifetimes: Vec<_> = (0..5).map(|v| Lifetime { first: v, last: v + 1 }).collect();
        let mut order = [0u32; 5];
        let mut buffers = [Buffer::default(); 5];
        assert_eq!(place_in(Order::LargestFirst, &sizes, &lifetimes, &[OWN; 5], &mut order, &mut buffers), 64_512);
        assert_eq!(plan(&sizes, &lifetimes).arena_bytes, 18_432 + 36_864);
    }

    /// Random graphs, some values asking for their input's bytes (an element-wise
    /// op in place): live values never share a byte unless a granted request
    /// chains them, requests are granted exactly where nothing still needed is
    /// overwritten, and the arena is at least the most bytes alive at one step
    /// and at most what largest-first alone needs.
    #[test]
    fn random_plans_are_sound_and_no_worse_than_largest_first() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let (mut execution_order_won, mut granted) = (0, 0);
        for _ in 0..2_000 {
            let values = 1 + next(24);
            let mut sizes: Vec<usize> = (0..values).map(|_| 1 + next(5_000)).collect();
            // Value v is produced at step v and read by up to 5 steps later (a skip connection).
            let lifetimes: Vec<_> =
                (0..values).map(|v| Lifetime { first: v, last: (v + 1 + next(5)).min(values) }).collect();
            // A third of the values ask for their predecessor's bytes, mostly at its size.
            let mut shares = vec![OWN; values];
            for v in 1..values {
                if next(3) == 0 {
                    shares[v] = (v - 1) as u32;
                    if next(4) != 0 {
                        sizes[v] = sizes[v - 1];
                    }
                }
            }
            let asked = shares.clone();
            let (mut merged, mut order, mut buffers) =
                (lifetimes.clone(), vec![0; values], vec![Buffer::default(); values]);
            let arena_bytes = place(&sizes, &mut merged, &mut shares, &mut order, &mut buffers);
            // The chain of values sharing bytes with v, by its first value.
            let root = |v: usize| if shares[v] == OWN { v } else { shares[v] as usize };
            for v in 0..values {
                let u = asked[v] as usize;
                let grantable = asked[v] != OWN && lifetimes[u].last == v && sizes[u] == sizes[v];
                assert_eq!(shares[v] != OWN, grantable, "value {v}'s request for {u}");
                if grantable {
                    assert_eq!(root(v), root(u));
                    assert_eq!(buffers[v].start, buffers[u].start);
                    granted += 1;
                }
            }
            for a in 0..values {
                for b in a + 1..values {
                    if lifetimes[a].overlaps(&lifetimes[b]) && root(a) != root(b) {
                        let (ra, rb) = (buffers[a], buffers[b]);
                        assert!(ra.end <= rb.start || rb.end <= ra.start, "{a} and {b} overlap");
                    }
                }
                assert_eq!(buffers[a].end - buffers[a].start, sizes[a]);
                assert!(buffers[a].end <= arena_bytes && buffers[a].start % ALIGN == 0);
            }
            // The bytes alive at once, a chain counted once (at its largest).
            let live_peak = (0..=values)
                .map(|t| {
                    (0..values)
                        .filter(|&v| root(v) == v && merged[v].first <= t && t <= merged[v].last)
                        .map(|v| sizes[v])
                        .sum::<usize>()
                })
                .max()
                .unwrap_or(0);
            let largest_first = place_in(Order::LargestFirst, &sizes, &merged, &shares, &mut order, &mut buffers);
            assert!(live_peak <= arena_bytes && arena_bytes <= largest_first);
            execution_order_won += usize::from(arena_bytes < largest_first);
        }
        assert!(execution_order_won > 20, "execution order won on {execution_order_won} graphs");
        assert!(granted > 1_000, "{granted} requests granted");
    }

    #[test]
    fn sizes_beyond_usize_saturate() {
        let big = usize::MAX / 3;
        let lifetimes = [Lifetime { first: 0, last: 1 }; 4];
        assert_eq!(plan(&[big; 4], &lifetimes).arena_bytes, usize::MAX);
    }
}
