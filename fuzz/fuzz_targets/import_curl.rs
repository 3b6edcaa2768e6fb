//! `postie import curl`: any text imports or gives a located error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = postie::interop::curl::import_text(text, "fuzz", std::path::Path::new("f.sh"));
    }
});
