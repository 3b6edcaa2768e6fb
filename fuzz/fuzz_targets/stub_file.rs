//! Stub files (`postie mock --stubs`): any text loads or gives a located error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("postie-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join("stubs.yaml");
    if std::fs::write(&file, data).is_ok() {
        let _ = postie::mock::engine::stubs::Stubs::load(&[file]);
    }
});
