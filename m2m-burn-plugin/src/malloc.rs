//! glibc's allocator settings for our binaries.
//!
//! Every burn op allocates its output, and a ResNet-32 step frees and reallocates
//! buffers of up to a few MiB hundreds of times. By default glibc serves such buffers
//! with fresh `mmap`s (above a threshold that it raises only as it sees large frees) and
//! returns freed heap memory to the kernel early, so many of them come back as new pages
//! that the kernel has to fault in and zero. Keeping freed buffers in the heap for reuse
//! made the training step and the M2m iteration faster (docs/benchmarks.md, issue #14).
//! The price is resident memory that does not shrink back between steps.

/// Buffers up to this size come from the heap (glibc's maximum for this setting).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Freed memory at the top of the heap is given back only above this.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: i32 = 1 << 30;
/// Extra memory taken from the kernel whenever the heap grows.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TOP_PAD: i32 = 64 << 20;

/// Applies the settings above, unless the user chose glibc settings of their own
/// (`MALLOC_*_` variables or `GLIBC_TUNABLES`) or `M2M_MALLOC=glibc` asks for glibc's
/// defaults. Call it first thing in `main`; a no-op off glibc. Library users of the
/// plugin decide for their own program.
pub fn keep_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let own = std::env::vars_os().any(|(k, v)| {
            let k = k.to_string_lossy();
            k == "GLIBC_TUNABLES"
                || (k.starts_with("MALLOC_") && k.ends_with('_'))
                || (k == "M2M_MALLOC" && v == "glibc")
        });
        if own {
            return;
        }
        // SAFETY: mallopt only changes allocator parameters; called before other threads
        // allocate (first thing in main).
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
            libc::mallopt(libc::M_TOP_PAD, TOP_PAD);
        }
    }
}
