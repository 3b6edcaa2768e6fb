//! OpenAPI/Swagger documents: any text parses or is refused; a parsed document's operations can
//! be listed and served.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(doc) = postie::openapi::Doc::parse(text, false) {
            let _ = doc.operations();
            let _ = postie::mock::engine::spec::SpecServer::new(doc, 0, true);
        }
    }
});
