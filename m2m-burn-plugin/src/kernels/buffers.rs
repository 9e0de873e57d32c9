//! Output buffers and scratch space for our CPU kernels (`conv`, `batch_norm`), without
//! the zeroing that `vec![0.0; n]` does on the calling thread before every parallel loop:
//! with freed buffers kept for reuse (crate::malloc) that zeroing is a serial `memset` of
//! every output, and per-task scratch from `for_each_init` was zeroed once per rayon
//! split. Profiled on ResNet-32 training steps: `memset` was 11% of the samples, 2.9% on
//! the main thread while the workers waited and 8% on the workers; afterwards 0.1% on
//! the main thread, and the step 0.31-0.32 s instead of 0.38-0.39 s (docs/benchmarks.md,
//! issue #14).

use std::cell::RefCell;
use std::mem::MaybeUninit;

use rayon::prelude::*;

/// A vector of `len` values whose consecutive chunks of `chunk` values are filled in
/// parallel by `fill(chunk index, chunk)`. Each chunk arrives zeroed, by the worker that
/// fills it, while it is in that worker's cache.
pub(crate) fn par_filled(len: usize, chunk: usize, fill: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
    let mut out: Vec<f32> = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len].par_chunks_mut(chunk.max(1)).enumerate().for_each(|(i, part)| {
        part.fill(MaybeUninit::new(0.0));
        // SAFETY: every element of `part` was just initialised; MaybeUninit<f32> has the
        // layout of f32.
        let part = unsafe { &mut *(part as *mut [MaybeUninit<f32>] as *mut [f32]) };
        fill(i, part);
    });
    // SAFETY: the chunks cover 0..len and each was initialised above.
    unsafe { out.set_len(len) };
    out
}

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch buffer of `len` values, reused from call to call
/// (it holds whatever the last user left: callers write before they read).
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => {
            if scratch.len() < len {
                scratch.resize(len, 0.0);
            }
            f(&mut scratch[..len])
        }
        // Re-entered on this thread (a kernel nested in another's task): a buffer of its own.
        Err(_) => f(&mut vec![0.0; len]),
    })
}
