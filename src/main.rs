//! The `postie` binary: everything lives in the library; this only hands over the exit code.

/// mimalloc, built without transparent huge pages (`no_thp`). The mock serves from one core
/// that it shares with its journal writer. Measured in paired runs at 1,000,000 contacts,
/// against glibc malloc (docs/benchmarks.md):
/// - `sign_up_form` was 13–30 % faster;
/// - GET after a burst of writes was 14–25 % faster, where glibc had spent 8 % of the core in
///   `_int_malloc`.
///
/// With huge pages, the first touch of each new 2 MiB page zeroed it inside a request. On this
/// VM that took 5 ms each, and `sign_up_form`'s p99 went to 6.8 ms.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // `postie run ... | head` closes the pipe early: Rust ignores SIGPIPE, so the next print
    // panics. End quietly instead, with the status a shell gives a process SIGPIPE ended.
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to std") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
    std::process::exit(postie::cli::main());
}
