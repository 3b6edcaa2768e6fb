//! The exit codes, documented in the README and `postie --help`. Nothing else lives here, so
//! every part (the mock's command too) can use them without depending on the rest.

/// Success.
pub const OK: i32 = 0;
/// A check failed: an assertion, capture, polling condition, the PUT guard or
/// `--fail-on-status`.
pub const ASSERT: i32 = 1;
/// The collection, a template, an argument or the saved state is not usable; nothing was sent.
pub const COLLECTION: i32 = 2;
/// An HTTP, network or authorization-server error.
pub const HTTP: i32 = 3;
/// A later step could not be rendered after earlier steps were sent (the run stopped half-way).
pub const PARTIAL: i32 = 4;
/// Interrupted with Ctrl-C (as shells report SIGINT).
pub const INTERRUPTED: i32 = 130;
