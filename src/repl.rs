//! placeholder
pub async fn run(_p: &std::path::Path, _o: &crate::cli::SendOpts) -> i32 {
    0
}
