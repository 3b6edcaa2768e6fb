//! The JSONPath subset: any path text parses or is refused; a parsed path selects from any
//! document without panicking. Input: a path, a NUL byte, a JSON document.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, doc) = text.split_once('\0').unwrap_or((text, "{}"));
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(doc) else {
        return;
    };
    if let Ok(p) = postie::capture::JsonPath::parse(path) {
        let _ = p.select(&doc);
        let _ = p.value(&doc);
    }
});
