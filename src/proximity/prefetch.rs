//! A cache hint for the hot loops: a record a few iterations ahead is asked for early, so the
//! loads of several random records overlap instead of each stalling the loop in turn.

/// Hints the CPU to bring every cache line of `item` into L1. Does nothing on targets without
/// a stable prefetch instruction.
#[inline(always)]
#[cfg_attr(
    target_arch = "x86_64",
    expect(
        unsafe_code,
        reason = "`_mm_prefetch` is an intrinsic; a prefetch reads nothing and never faults"
    )
)]
pub(crate) fn prefetch<T>(item: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let start = (item as *const T).cast::<i8>();
        let mut offset = 0;
        while offset < std::mem::size_of::<T>() {
            // SAFETY: a prefetch reads nothing the program observes and never faults; the
            // address lies inside a live reference anyway. SSE is part of the x86_64 baseline.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset)) };
            offset += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = item;
}
