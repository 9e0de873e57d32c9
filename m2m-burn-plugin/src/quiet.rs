//! Catching a panic without printing it, on this thread only. burn reports some errors
//! by panicking (a checkpoint that cannot be read, a device that cannot be used); m2m
//! catches those and reports them in its own words. The process's panic hook is wrapped
//! once, never swapped: a panic of another thread meanwhile (a test, a user's own code)
//! is printed as usual.

thread_local! {
    /// Whether this thread is inside [`quietly`].
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, catching a panic without printing it: the process's panic hook is wrapped
/// once so that it stays silent on a thread inside `quietly` (burn reports some
/// errors by panicking; we report them ourselves).
pub fn quietly<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    static WRAP_HOOK: std::sync::Once = std::sync::Once::new();
    WRAP_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                previous(info)
            }
        }));
    });
    let outer = QUIET.with(|q| q.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(outer));
    result
}

/// The message of a caught panic.
pub fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown error".into())
}
