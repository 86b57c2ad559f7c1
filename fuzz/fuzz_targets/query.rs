//! The Query decoder: arbitrary bytes as a form body and a URL query, then as a value tree.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let query = String::from_utf8_lossy(&data[..split]);
    let q = api::query::QueryInput::parse(&query, data.get(split + 1..).unwrap_or_default());
    let _ = q.structs("A");
    let _ = q.map("A");
    let _ = q.filters();
    let tree = api::protocol::query_tree(&q);
    let _ = api::protocol::encode_json(&tree);
});
