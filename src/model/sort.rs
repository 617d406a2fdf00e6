//! The loader's one sort: indices by a comparison, in place. A heapsort (no
//! recursion, no buffer, O(n log n)) whose comparison is dynamic, so one copy
//! of its code serves every use; `core`'s sorts are copied per closure, ~7 KB
//! each, which a microcontroller's flash pays for four times over.

use core::cmp::Ordering;

/// Sorts `items` ascending by `cmp`. Not stable: ties must not matter to the caller.
pub fn sort(items: &mut [u32], cmp: &mut dyn FnMut(u32, u32) -> Ordering) {
    let n = items.len();
    for start in (0..n / 2).rev() {
        sift_down(items, start, n, cmp);
    }
    for end in (1..n).rev() {
        items.swap(0, end);
        sift_down(items, 0, end, cmp);
    }
}

/// Restores the max-heap below `root` within `items[..end]`.
fn sift_down(items: &mut [u32], mut root: usize, end: usize, cmp: &mut dyn FnMut(u32, u32) -> Ordering) {
    loop {
        let mut child = 2 * root + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && cmp(items[child], items[child + 1]) == Ordering::Less {
            child += 1;
        }
        if cmp(items[root], items[child]) != Ordering::Less {
            return;
        }
        items.swap(root, child);
        root = child;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_like_the_standard_library() {
        let mut state = 12345u64;
        for n in [0, 1, 2, 3, 7, 64, 513] {
            let keys: alloc::vec::Vec<u32> = (0..n)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (state >> 40) as u32 % 50
                })
                .collect();
            let mut items: alloc::vec::Vec<u32> = (0..n as u32).collect();
            sort(&mut items, &mut |a, b| keys[a as usize].cmp(&keys[b as usize]).then(a.cmp(&b)));
            let mut want = items.clone();
            want.sort_by_key(|&i| (keys[i as usize], i));
            assert_eq!(items, want, "n = {n}");
        }
    }
}
