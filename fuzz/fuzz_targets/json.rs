//! The awsJson decoder, and encoding back what it decoded.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = api::protocol::decode_json(data) {
        let again = api::protocol::decode_json(&api::protocol::encode_json(&v));
        assert!(again.is_ok(), "what the encoder writes, the decoder reads");
        let _ = api::protocol::encode_cbor(&v);
    }
});
