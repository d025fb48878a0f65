//! The stack limit, enforced even when a program catches the engine's stack overflow.
//!
//! QuickJS compares its native stack pointer with a limit (the stack top it last recorded
//! minus its maximum stack size) and raises a catchable `RangeError: Maximum call stack
//! size exceeded`. The host gets no call there, and the engine serves most allocations
//! from its own small-block arenas, so the host's allocator cannot tell how deep the stack
//! went either (a recursion that allocates nothing reaches the limit without calling it).
//!
//! So the sandbox paints the stack: before each invocation it fills a band of
//! [`BAND`] bytes just beyond the program's `stack_kb` (measured from the invocation's
//! frame) with a pattern, and sets the engine's own limit [`SLACK`] bytes below that band.
//! Any frame that goes deeper than `stack_kb` must cross the band before the engine stops
//! it, and overwrites the pattern (return addresses, saved registers, initialised locals).
//! The invocation then ends with `stack_limit` whatever the program made of the
//! exception. This is the high-water-mark technique of embedded kernels; it costs one
//! memset of the band and one compare pass (a few hundred nanoseconds).
//!
//! The band lies inside the stack the engine is allowed to use, so painting touches no
//! memory the engine would not touch itself. The calling thread's real stack bounds are
//! read first: a thread whose stack cannot hold `stack_kb` plus the band gets a smaller
//! engine limit (the engine then raises its own error instead of running off the thread's
//! stack), and the invocation is refused when even that leaves too little.
#![allow(unsafe_code)]

use rquickjs::Ctx;

/// Bytes painted just beyond the program's stack limit.
pub(crate) const BAND: usize = 8 * 1024;
/// Bytes between the band and the engine's own limit (frames of the function that
/// records the stack top, rounding).
pub(crate) const SLACK: usize = 4 * 1024;
/// Room kept free below the engine's limit for C leaf functions and host callbacks that
/// run past the engine's last check, and for signal frames.
const RESERVE: usize = 128 * 1024;
/// The smallest JavaScript stack an invocation is started with.
const MIN_STACK: usize = 16 * 1024;

const PATTERN_BYTE: u8 = 0xa5;
const PATTERN: u64 = u64::from_ne_bytes([PATTERN_BYTE; 8]);
const WORD: usize = std::mem::size_of::<u64>();

/// An address in the caller's frame (close to the stack pointer).
#[inline(always)]
pub(crate) fn stack_pointer() -> usize {
    let marker = 0u8;
    std::hint::black_box(std::ptr::addr_of!(marker)) as usize
}

/// The lowest usable address of the calling thread's stack (above its guard page), when
/// the platform tells.
#[cfg(target_os = "linux")]
pub(crate) fn thread_stack_floor() -> Option<usize> {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: pthread_getattr_np initialises `attr` for the calling thread when it returns
    // 0; we only read it then, and destroy it exactly once.
    unsafe {
        if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let mut guard: libc::size_t = 0;
        let ok = libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size) == 0
            && libc::pthread_attr_getguardsize(attr.as_ptr(), &mut guard) == 0;
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        if !ok || addr.is_null() {
            return None;
        }
        (addr as usize).checked_add(guard)
    }
}

/// Stack bounds are not read on other platforms; the band is then painted only where
/// the engine limit itself says the stack is.
#[cfg(not(target_os = "linux"))]
pub(crate) fn thread_stack_floor() -> Option<usize> {
    None
}

/// Where this invocation's stack may go, and the painted band beyond it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Band {
    /// Lowest address of the band (word aligned).
    lo: usize,
    /// Number of words in the band.
    words: usize,
    /// The stack the program gets (less than asked on a small thread stack).
    stack_bytes: usize,
    /// What the engine's maximum stack size is set to, from its recorded stack top.
    pub(crate) engine_max: usize,
}

/// The calling thread's stack cannot hold even [`MIN_STACK`] plus the band.
#[derive(Debug, thiserror::Error)]
#[error(
    "the thread's stack is too small for the program's stack limit ({available} bytes left below the invocation)"
)]
pub(crate) struct StackTooSmall {
    available: usize,
}

impl Band {
    /// Plans the band for an invocation whose frame is at `sp` and whose program may use
    /// `stack_bytes`; `floor` is the thread's lowest usable stack address, if known.
    pub(crate) fn plan(
        sp: usize,
        stack_bytes: usize,
        floor: Option<usize>,
    ) -> Result<Self, StackTooSmall> {
        let overhead = BAND + SLACK + RESERVE;
        let mut stack = stack_bytes.max(MIN_STACK);
        if let Some(floor) = floor {
            let available = sp.saturating_sub(floor);
            let fits = available.saturating_sub(overhead);
            if fits < MIN_STACK {
                return Err(StackTooSmall { available });
            }
            stack = stack.min(fits);
        } else if sp.saturating_sub(overhead) < stack {
            return Err(StackTooSmall { available: sp });
        }
        let hi = (sp - stack) & !(WORD - 1);
        let lo = hi - BAND;
        Ok(Self {
            lo,
            words: BAND / WORD,
            stack_bytes: stack,
            engine_max: stack + BAND + SLACK,
        })
    }

    /// The stack the program gets: its limit, or less on a thread whose stack is smaller.
    pub(crate) fn stack_bytes(&self) -> usize {
        self.stack_bytes
    }

    fn base(&self) -> *mut u64 {
        std::ptr::with_exposed_provenance_mut::<u64>(self.lo)
    }

    /// Fills the band with the pattern. Must be called from the invocation's frame (or
    /// one above the band), before the engine runs.
    #[inline(never)]
    pub(crate) fn paint(&self) {
        // SAFETY: the band lies between the engine's stack limit and the program's limit
        // on the calling thread's own stack: mapped (the thread floor was checked in
        // `plan`), word aligned, below every live frame (`plan` put it at least
        // `stack_bytes` >= MIN_STACK below the caller's frame, and this function's frame
        // is far smaller), and not referenced by any Rust value. The writes are kept: the
        // memory is reached through an exposed address that later code reads.
        unsafe { std::ptr::write_bytes(self.base(), PATTERN_BYTE, self.words) };
    }

    /// Whether any frame reached into the band since [`Band::paint`].
    pub(crate) fn touched(&self) -> bool {
        self.touched_words(self.words)
    }

    /// Cheap check of the band's top kilobyte (where a frame crossing the program's limit
    /// writes first), for the engine's interrupt handler.
    pub(crate) fn touched_top(&self) -> bool {
        self.touched_words(1024 / WORD)
    }

    fn touched_words(&self, n: usize) -> bool {
        let n = n.min(self.words);
        // SAFETY: as in `paint`: this thread's mapped stack memory inside the band, fully
        // initialised by `paint` (frames since then only wrote whole values into it);
        // nothing writes it while this shared view lives (only this thread's frames
        // deeper than this one could, and there are none during the call).
        let band = unsafe { std::slice::from_raw_parts(self.base().cast_const(), self.words) };
        band[self.words - n..].iter().any(|w| *w != PATTERN)
    }
}

/// Makes the engine measure its stack from the caller's frame from now on, with `max`
/// bytes below it. The engine otherwise keeps the stack top of the frame that created
/// the runtime, which says nothing about where later invocations run. (Called inside
/// `Context::with`, where the runtime's own setter cannot be used: it holds the lock.)
pub(crate) fn set_engine_stack(ctx: &Ctx<'_>, max: usize) {
    // SAFETY: `ctx` is a live context of a runtime owned by this thread's instance and
    // locked by the caller; JS_GetRuntime reads its runtime pointer, JS_UpdateStackTop
    // records the current stack pointer and JS_SetMaxStackSize the size, nothing else.
    unsafe {
        let rt = rquickjs::qjs::JS_GetRuntime(ctx.as_raw().as_ptr());
        rquickjs::qjs::JS_UpdateStackTop(rt);
        rquickjs::qjs::JS_SetMaxStackSize(rt, max as _);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_fits_the_limit_below_the_frame() {
        let sp = 0x7000_0000usize;
        let b = Band::plan(sp, 512 * 1024, Some(sp - 8 * 1024 * 1024)).unwrap();
        assert_eq!(b.stack_bytes(), 512 * 1024);
        assert!(b.lo + BAND <= sp - 512 * 1024);
        assert!(sp - 512 * 1024 - (b.lo + BAND) < WORD);
        assert_eq!(b.engine_max, 512 * 1024 + BAND + SLACK);
    }

    #[test]
    fn plan_shrinks_on_a_small_thread_stack_and_refuses_a_tiny_one() {
        let sp = 0x7000_0000usize;
        let b = Band::plan(sp, 4 * 1024 * 1024, Some(sp - 1024 * 1024)).unwrap();
        assert_eq!(b.stack_bytes(), 1024 * 1024 - BAND - SLACK - RESERVE);
        assert!(Band::plan(sp, 512 * 1024, Some(sp - RESERVE)).is_err());
        assert!(Band::plan(64 * 1024, 512 * 1024, None).is_err());
    }

    /// Paints a band in this thread's stack well below the current frame, then recurses
    /// (without allocating) into it.
    #[test]
    fn a_recursion_into_the_band_is_seen() {
        #[inline(never)]
        fn dig(n: usize) -> usize {
            let buf = std::hint::black_box([n as u8; 256]);
            if n == 0 {
                usize::from(buf[0])
            } else {
                dig(n - 1) + usize::from(buf[1])
            }
        }
        let run = |levels: usize| {
            std::thread::Builder::new()
                .stack_size(4 * 1024 * 1024)
                .spawn(move || {
                    let band =
                        Band::plan(stack_pointer(), 64 * 1024, thread_stack_floor()).unwrap();
                    band.paint();
                    let quiet = !band.touched();
                    std::hint::black_box(dig(levels));
                    (quiet, band.touched(), band.touched_top())
                })
                .unwrap()
                .join()
                .unwrap()
        };
        // ~300 bytes a level: 20 levels stay far above the band, 1,000 go through it.
        assert_eq!(run(20), (true, false, false));
        let (quiet, touched, top) = run(1000);
        assert!(quiet && touched && top);
    }
}
