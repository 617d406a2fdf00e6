//! The caller's memory, as loading in place uses it (TensorFlow Lite Micro's
//! arena): what the network keeps is placed at the front, and the load's
//! temporaries (the graph JSON unescaped, the header's tensor index, the
//! topological sort) at the back, released when their scope ends. After the
//! load, everything behind the front is free for the activations, so the
//! temporaries cost no memory that inference would not need anyway.
//!
//! Only `Copy` values are placed here (no destructor is ever owed), each slice
//! in bytes no other slice handed out and still alive covers. The memory is
//! `MaybeUninit<u8>`: the padding of what is stored may be left uninitialised.

use core::cell::Cell;
use core::marker::PhantomData;
use core::mem::{align_of, size_of, MaybeUninit};

use crate::error::{Error, Result};

/// Where `len` values of `T` lie in a [`State`]: what the network's and the
/// engine's records hold instead of references, so that a state can live in
/// the caller's buffer or in one the model owns, the same records reading both.
pub struct Span<T> {
    offset: u32,
    len: u32,
    _values: PhantomData<fn() -> T>,
}

impl<T> Clone for Span<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Span<T> {}

impl<T> PartialEq for Span<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.offset, self.len) == (other.offset, other.len)
    }
}

impl<T> core::fmt::Debug for Span<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Span({}+{})", self.offset, self.len)
    }
}

impl<T> Span<T> {
    pub const EMPTY: Span<T> = Span { offset: 0, len: 0, _values: PhantomData };

    pub fn len(self) -> usize {
        self.len as usize
    }

    pub fn is_empty(self) -> bool {
        self.len == 0
    }

    /// Values `start..start + len` of this span (clamped to it).
    pub fn sub(self, start: usize, len: usize) -> Span<T> {
        let start = start.min(self.len as usize);
        let len = len.min(self.len as usize - start);
        let offset = self.offset as usize + start * size_of::<T>();
        Span { offset: offset as u32, len: len as u32, _values: PhantomData }
    }
}

/// The persistent bytes of a finished load, read through the [`Span`]s the
/// load handed out.
///
/// Invariant: a `State` is only ever paired with spans its own [`Memory`] made
/// (or a copy of that memory, at the same alignment: `OwnedState`).
#[derive(Clone, Copy)]
pub struct State<'s> {
    base: *const u8,
    len: usize,
    _bytes: PhantomData<&'s [u8]>,
}

impl core::fmt::Debug for State<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "State({} bytes)", self.len)
    }
}

// SAFETY: a State is a read-only view of bytes borrowed for 's, as a `&'s [u8]` is
// (which is Send and Sync); nothing writes through it.
unsafe impl Send for State<'_> {}
// SAFETY: as above.
unsafe impl Sync for State<'_> {}

impl<'s> State<'s> {
    /// The values of `span`; empty if the span does not fit this state (a bug,
    /// never a file's doing: spans come from the loader alone).
    pub fn get<T: Copy>(self, span: Span<T>) -> &'s [T] {
        let (offset, len) = (span.offset as usize, span.len as usize);
        let fits =
            len.checked_mul(size_of::<T>()).and_then(|b| b.checked_add(offset)).is_some_and(|end| end <= self.len);
        let address = (self.base as usize).wrapping_add(offset);
        if !fits || address % align_of::<T>() != 0 || len == 0 {
            return &[];
        }
        // SAFETY: `Memory::persistent::<T>` wrote `len` valid, aligned Ts at `offset` (the
        // invariant above pairs the span with this state), nothing writes the persistent
        // bytes afterwards, and they live for 's.
        unsafe { core::slice::from_raw_parts(self.base.add(offset).cast::<T>(), len) }
    }
}

/// A bump allocator over `&'a mut [MaybeUninit<u8>]`: persistent slices from
/// the front, scoped scratch slices from the back.
pub struct Memory<'a> {
    base: *mut u8,
    len: usize,
    /// Bytes taken from the front.
    front: Cell<usize>,
    /// Where the scratch begins: it grows down from `len`.
    back: Cell<usize>,
    /// Most bytes in use at once (front plus scratch).
    peak: Cell<usize>,
    _memory: PhantomData<&'a mut [MaybeUninit<u8>]>,
}

/// Scratch slices of one [`Memory::scratch`] scope: they live until the scope ends.
pub struct Scratch<'s, 'a> {
    memory: &'s Memory<'a>,
}

impl<'a> Memory<'a> {
    pub fn new(memory: &'a mut [MaybeUninit<u8>]) -> Memory<'a> {
        Memory {
            base: memory.as_mut_ptr().cast::<u8>(),
            len: memory.len(),
            front: Cell::new(0),
            back: Cell::new(memory.len()),
            peak: Cell::new(0),
            _memory: PhantomData,
        }
    }

    fn too_small(&self, extra: usize) -> Error {
        let in_use = self.front.get() + (self.len - self.back.get());
        Error::MemoryTooSmall { needed: in_use.saturating_add(extra), found: self.len }
    }

    fn note_peak(&self) {
        self.peak.set(self.peak.get().max(self.front.get() + (self.len - self.back.get())));
    }

    /// A memory to go on filling: `memory` holds a state whose persistent part ends at `front`.
    pub fn resume(memory: &'a mut [MaybeUninit<u8>], front: usize) -> Memory<'a> {
        let memory = Memory::new(memory);
        memory.front.set(front.min(memory.len));
        memory
    }

    /// `n` values, first all `fill`, then as `init` writes them, kept in the
    /// front for good: their span reads them from the finished [`State`] (or
    /// from [`Memory::view`] while loading).
    pub fn persistent_with<T: Copy>(
        &self,
        n: usize,
        fill: T,
        init: impl FnOnce(&mut [T]) -> Result<()>,
    ) -> Result<Span<T>> {
        let bytes = n.checked_mul(size_of::<T>()).ok_or_else(|| self.too_small(usize::MAX))?;
        let start = self.align_up(self.front.get(), align_of::<T>());
        let end = start.checked_add(bytes).filter(|&end| end <= self.back.get());
        let Some(end) = end else { return Err(self.too_small(bytes + align_of::<T>())) };
        let (Ok(offset), Ok(len)) = (u32::try_from(start), u32::try_from(n)) else {
            return Err(self.too_small(bytes));
        };
        self.front.set(end);
        self.note_peak();
        // SAFETY: `start..end` lies inside the caller's buffer (end ≤ back ≤ len), is
        // aligned for T, and is covered by no other live slice: the front only grows,
        // and scratch slices lie at or above `back`. The slice cannot leave `init`.
        init(unsafe { self.fill_slice(start, n, fill) })?;
        Ok(Span { offset, len, _values: PhantomData })
    }

    /// Copies `values` into the front.
    pub fn persist<T: Copy>(&self, values: &[T]) -> Result<Span<T>> {
        match values.first() {
            None => Ok(Span::EMPTY),
            Some(&first) => self.persistent_with(values.len(), first, |slots| {
                slots.copy_from_slice(values);
                Ok(())
            }),
        }
    }

    /// The values of a span this memory made, while it is still loading.
    pub fn view<T: Copy>(&self, span: Span<T>) -> &[T] {
        self.state().get(span)
    }

    /// The state as it stands: what spans this memory made read from.
    pub(crate) fn state(&self) -> State<'_> {
        State { base: self.base, len: self.front.get(), _bytes: PhantomData }
    }

    /// Runs `scope` with scratch slices from the back, released when it returns.
    pub fn scratch<R>(&self, scope: impl for<'s> FnOnce(&'s Scratch<'s, 'a>) -> R) -> R {
        let back = self.back.get();
        let result = scope(&Scratch { memory: self });
        // The slices of the scope cannot outlive it (its lifetime is the closure's own).
        self.back.set(back);
        result
    }

    /// Bytes the front holds (what stays after the load).
    pub fn persistent_bytes(&self) -> usize {
        self.front.get()
    }

    /// Most bytes used at once so far.
    pub fn peak_bytes(&self) -> usize {
        self.peak.get()
    }

    /// Ends the load: the persistent state, and the bytes behind it (16-aligned),
    /// zeroed, free for the activations.
    pub fn finish(self) -> (State<'a>, &'a mut [u8]) {
        let start = self.align_up(self.front.get(), 16).min(self.len);
        let state = State { base: self.base, len: self.front.get(), _bytes: PhantomData };
        // SAFETY: every persistent slice (each borrowed `self`, which this call consumed)
        // lies below `front` ≤ `start`, and no scratch scope is open; the bytes are
        // written (zeroed) before they are seen as initialised u8s.
        let rest = unsafe {
            let rest = self.base.add(start);
            rest.write_bytes(0, self.len - start);
            core::slice::from_raw_parts_mut(rest, self.len - start)
        };
        (state, rest)
    }

    /// `offset` rounded up so that `base + offset` is aligned to `align` (a power of two).
    fn align_up(&self, offset: usize, align: usize) -> usize {
        let address = (self.base as usize).wrapping_add(offset);
        offset.saturating_add(address.wrapping_neg() & (align - 1))
    }

    /// # Safety
    /// `start..start + n·size_of::<T>()` must lie in the buffer, be aligned for T
    /// and be covered by no live slice.
    unsafe fn fill_slice<'x, T: Copy>(&self, start: usize, n: usize, fill: T) -> &'x mut [T] {
        // SAFETY: the caller's contract; T is Copy, so writing over the old bytes
        // drops nothing, and every element is written before the slice is made.
        unsafe {
            let first = self.base.add(start).cast::<T>();
            for i in 0..n {
                first.add(i).write(fill);
            }
            core::slice::from_raw_parts_mut(first, n)
        }
    }
}

impl<'s, 'a> Scratch<'s, 'a> {
    /// `n` values of `fill`, until the scope ends.
    pub fn alloc<T: Copy>(&self, n: usize, fill: T) -> Result<&'s mut [T]> {
        let memory = self.memory;
        let bytes = n.checked_mul(size_of::<T>()).ok_or_else(|| memory.too_small(usize::MAX))?;
        let back = memory.back.get();
        let start = back.checked_sub(bytes).and_then(|s| {
            // Aligned down: base + start must be a multiple of align_of::<T>().
            let address = (memory.base as usize).wrapping_add(s);
            s.checked_sub(address & (align_of::<T>() - 1))
        });
        let Some(start) = start.filter(|&s| s >= memory.front.get() && s <= back) else {
            return Err(memory.too_small(bytes + align_of::<T>()));
        };
        memory.back.set(start);
        memory.note_peak();
        // SAFETY: `start..start + bytes` lies in the buffer (front ≤ start, start + bytes ≤
        // back ≤ len), aligned for T, above every persistent slice and below every scratch
        // slice still alive (older ones sit higher; released ones are dead).
        Ok(unsafe { memory.fill_slice(start, n, fill) })
    }

    /// Persistent slices may be taken while a scratch scope is open.
    pub fn memory(&self) -> &'s Memory<'a> {
        self.memory
    }
}

/// A state in a buffer of its own: what an allocating load keeps ([`crate::Network`]).
#[cfg(feature = "alloc")]
pub struct OwnedState {
    /// u64 words: every type a state holds is at most 8-aligned, so a span's
    /// alignment survives a copy to another such buffer.
    words: alloc::boxed::Box<[MaybeUninit<u64>]>,
    /// Bytes of `words` the state fills.
    len: usize,
}

#[cfg(feature = "alloc")]
impl OwnedState {
    /// Runs `load` on a memory of `estimate` bytes, and again on a larger one
    /// while it reports [`Error::MemoryTooSmall`]; keeps what it made persistent.
    pub fn load<R>(estimate: usize, load: impl FnMut(&Memory<'_>) -> Result<R>) -> Result<(R, OwnedState)> {
        OwnedState::empty().extend(estimate, load)
    }

    /// A state that holds nothing.
    pub fn empty() -> OwnedState {
        OwnedState { words: alloc::boxed::Box::new([]), len: 0 }
    }

    /// This state and what `load` adds to it, in a new buffer (this state's spans read it too).
    pub fn extend<R>(
        &self,
        estimate: usize,
        mut load: impl FnMut(&Memory<'_>) -> Result<R>,
    ) -> Result<(R, OwnedState)> {
        let mut bytes = self.len + estimate.max(1024);
        // Each retry at least doubles the memory; 40 of them would pass any limit.
        for _ in 0..40 {
            let mut words = alloc::vec![MaybeUninit::new(0u64); bytes.div_ceil(8)].into_boxed_slice();
            // SAFETY: the bytes of `words` (initialised; MaybeUninit<u8> has no alignment)
            // are viewed as MaybeUninit<u8> for as long as `memory` borrows `words`.
            let raw = unsafe {
                core::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<MaybeUninit<u8>>(), words.len() * 8)
            };
            self.copy_to(raw);
            let memory = Memory::resume(raw, self.len);
            let outcome = load(&memory);
            let len = memory.persistent_bytes();
            match outcome {
                Ok(result) => {
                    let mut state = OwnedState { words, len };
                    state.shrink();
                    return Ok((result, state));
                }
                Err(Error::MemoryTooSmall { needed, .. }) => bytes = needed.max(2 * bytes),
                Err(e) => return Err(e),
            }
        }
        Err(Error::Internal("a load kept asking for more memory"))
    }

    /// Copies the state's bytes to the start of `to` (at least `len` long).
    fn copy_to(&self, to: &mut [MaybeUninit<u8>]) {
        let len = self.len.min(to.len());
        // SAFETY: both ranges are `len` bytes inside their buffers, and distinct
        // allocations; copying MaybeUninit bytes reads no value.
        unsafe {
            core::ptr::copy_nonoverlapping(self.words.as_ptr().cast::<MaybeUninit<u8>>(), to.as_mut_ptr(), len);
        }
    }

    /// Drops the unused tail of the buffer.
    fn shrink(&mut self) {
        if self.words.len() > self.len.div_ceil(8) {
            let mut words = alloc::vec![MaybeUninit::new(0u64); self.len.div_ceil(8)].into_boxed_slice();
            // SAFETY: as in `extend`.
            let raw = unsafe {
                core::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<MaybeUninit<u8>>(), words.len() * 8)
            };
            self.copy_to(raw);
            self.words = words;
        }
    }

    pub fn state(&self) -> State<'_> {
        State { base: self.words.as_ptr().cast::<u8>(), len: self.len, _bytes: PhantomData }
    }

    /// Bytes the state holds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(feature = "alloc")]
impl Clone for OwnedState {
    fn clone(&self) -> Self {
        // MaybeUninit<u64> is Copy: its clone copies the bytes, initialised or not.
        OwnedState { words: self.words.clone(), len: self.len }
    }
}

#[cfg(feature = "alloc")]
impl core::fmt::Debug for OwnedState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "OwnedState({} bytes)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_and_back_never_overlap_and_scratch_is_reused() {
        let mut buffer = [MaybeUninit::new(0u8); 256];
        let memory = Memory::new(&mut buffer);
        let span = memory
            .persistent_with(4, 7u32, |a| {
                a[3] = 8;
                Ok(())
            })
            .unwrap();
        let total = memory.scratch(|scratch| {
            let s = scratch.alloc(10, 1u16).unwrap();
            let b = scratch.memory().persist(&[9u64; 3]).unwrap();
            let b = scratch.memory().view(b);
            assert!(scratch.alloc(1000, 0u8).is_err());
            s.iter().map(|&v| u64::from(v)).sum::<u64>() + b.iter().sum::<u64>()
        });
        assert_eq!(total, 10 + 27);
        let peak = memory.peak_bytes();
        // The scratch is free again: a second scope gets the same bytes.
        memory.scratch(|scratch| {
            let s = scratch.alloc(10, 2u16).unwrap();
            assert_eq!(s, [2; 10]);
        });
        assert_eq!(memory.peak_bytes(), peak);
        let used = memory.persistent_bytes();
        let (state, rest) = memory.finish();
        assert_eq!(state.get(span), [7, 7, 7, 8]);
        assert!(rest.len() + used <= 256 && rest.len() + used + 16 > 256);
        assert!(rest.iter().all(|&b| b == 0));
    }

    #[test]
    fn too_small_says_how_much() {
        let mut buffer = [MaybeUninit::new(0u8); 64];
        let memory = Memory::new(&mut buffer);
        memory.persist(&[0u32; 8]).unwrap();
        match memory.persist(&[0u8; 100]) {
            Err(Error::MemoryTooSmall { needed, found: 64 }) => assert!(needed >= 132, "{needed}"),
            other => panic!("{other:?}"),
        }
        assert!(memory.persistent_with(usize::MAX, 0u64, |_| Ok(())).is_err());
        memory.scratch(|scratch| assert!(scratch.alloc(usize::MAX / 2, 0u32).is_err()));
        // 8 bytes at an address that is no multiple of 8: no aligned u64 fits, and aligning
        // down must not pass the buffer's start.
        let mut odd = [MaybeUninit::new(0u8); 16];
        let skip = (1..8).find(|k| !(odd.as_ptr() as usize + k).is_multiple_of(8)).unwrap();
        let memory = Memory::new(&mut odd[skip..skip + 8]);
        memory.scratch(|scratch| assert!(scratch.alloc(1, 0u64).is_err()));
        assert!(memory.persistent_with(1, 0u64, |_| Ok(())).is_err());
    }
}
