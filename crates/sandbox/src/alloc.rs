//! A counting allocator for the engine: it enforces the memory limit and records the
//! peak, and tells the host when an allocation was refused so that a program catching
//! the engine's "out of memory" error still ends with `memory_limit`. (QuickJS serves
//! small blocks from its own 4 KiB arenas, so this sees arena refills and large blocks,
//! which is what the memory limit counts.)
#![allow(unsafe_code)]

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::rc::Rc;

use rquickjs::allocator::Allocator;

/// The engine needs `u64` alignment; the header that records the size keeps it.
const ALIGN: usize = 16;
const HEADER: usize = 16;

/// Shared between the allocator (inside the engine) and the host.
#[derive(Debug, Default)]
pub(crate) struct MemMeter {
    /// Bytes currently allocated (payload plus header).
    pub(crate) current: Cell<usize>,
    /// Highest `current` since the last [`MemMeter::reset_peak`].
    pub(crate) peak: Cell<usize>,
    /// Ceiling for `current`; 0 means no ceiling.
    pub(crate) limit: Cell<usize>,
    /// Set when an allocation was refused because of `limit`.
    pub(crate) exceeded: Cell<bool>,
}

impl MemMeter {
    pub(crate) fn reset_peak(&self) {
        self.peak.set(self.current.get());
        self.exceeded.set(false);
    }

    fn admit(&self, add: usize, remove: usize) -> bool {
        let next = self
            .current
            .get()
            .saturating_sub(remove)
            .saturating_add(add);
        let limit = self.limit.get();
        if limit != 0 && next > limit && add > remove {
            self.exceeded.set(true);
            return false;
        }
        self.current.set(next);
        if next > self.peak.get() {
            self.peak.set(next);
        }
        true
    }
}

pub(crate) struct CountingAllocator {
    pub(crate) meter: Rc<MemMeter>,
}

fn layout_for(payload: usize) -> Option<Layout> {
    let size = payload
        .checked_add(HEADER)?
        .checked_next_multiple_of(ALIGN)?;
    Layout::from_size_align(size, ALIGN).ok()
}

// SAFETY: every pointer handed out points HEADER bytes into a block from the global
// allocator whose first word records the payload size; `dealloc`, `realloc` and
// `usable_size` only receive pointers this allocator produced (the engine's contract).
unsafe impl Allocator for CountingAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        let Some(layout) = layout_for(size) else {
            return std::ptr::null_mut();
        };
        if !self.meter.admit(layout.size(), 0) {
            return std::ptr::null_mut();
        }
        // SAFETY: layout has non-zero size (it includes the header).
        let base = unsafe { alloc::alloc(layout) };
        if base.is_null() {
            self.meter
                .current
                .set(self.meter.current.get().saturating_sub(layout.size()));
            return base;
        }
        // SAFETY: base is valid for layout.size() >= HEADER bytes and aligned to 16.
        unsafe {
            base.cast::<usize>().write(size);
            base.add(HEADER)
        }
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        let Some(total) = count.checked_mul(size) else {
            return std::ptr::null_mut();
        };
        let p = self.alloc(total);
        if !p.is_null() {
            // SAFETY: p is valid for `total` bytes (alloc reserved at least that).
            unsafe { std::ptr::write_bytes(p, 0, total) };
        }
        p
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        if ptr.is_null() {
            return;
        }
        // SAFETY: ptr came from `alloc`/`realloc`, so the header sits HEADER bytes before.
        let base = unsafe { ptr.sub(HEADER) };
        // SAFETY: the header was written by us.
        let size = unsafe { base.cast::<usize>().read() };
        if let Some(layout) = layout_for(size) {
            self.meter
                .current
                .set(self.meter.current.get().saturating_sub(layout.size()));
            // SAFETY: same layout as at allocation.
            unsafe { alloc::dealloc(base, layout) };
        }
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        if ptr.is_null() {
            return self.alloc(new_size);
        }
        // SAFETY: as in dealloc.
        let base = unsafe { ptr.sub(HEADER) };
        // SAFETY: header written by us.
        let old = unsafe { base.cast::<usize>().read() };
        let (Some(old_layout), Some(new_layout)) = (layout_for(old), layout_for(new_size)) else {
            return std::ptr::null_mut();
        };
        if !self.meter.admit(new_layout.size(), old_layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: base was allocated with old_layout; the new size is non-zero and a
        // multiple of the alignment.
        let nb = unsafe { alloc::realloc(base, old_layout, new_layout.size()) };
        if nb.is_null() {
            // Undo the accounting; the old block is still valid.
            self.meter.current.set(
                self.meter
                    .current
                    .get()
                    .saturating_sub(new_layout.size())
                    .saturating_add(old_layout.size()),
            );
            return nb;
        }
        // SAFETY: nb is valid for new_layout.size() >= HEADER bytes.
        unsafe {
            nb.cast::<usize>().write(new_size);
            nb.add(HEADER)
        }
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        if ptr.is_null() {
            return 0;
        }
        // SAFETY: as in dealloc.
        unsafe { ptr.sub(HEADER).cast::<usize>().read() }
    }
}
