//! The `postie` binary: everything lives in the library; this only hands over the exit code.

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
