//! The collection loader: any bytes give a collection or a located error, in time linear in the
//! input (`-timeout=` catches the quadratic).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ =
            postie::collection::Collection::parse(std::path::Path::new("f.yaml"), text.to_string());
    }
});
