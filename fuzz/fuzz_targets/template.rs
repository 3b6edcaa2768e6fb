//! The template engine: analysis and rendering of any text never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(src) = std::str::from_utf8(data) {
        let t = postie::template::Templates::new();
        let ctx = serde_json::json!({"a": "x", "n": 3, "list": [1, 2], "obj": {"k": "v"}});
        let _ = t.analyse(src, false);
        let _ = t.render(src, &ctx);
    }
});
