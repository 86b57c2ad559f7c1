//! The rpc-v2-cbor decoder, and a round trip of what it decoded.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = api::protocol::decode_cbor(data) {
        let encoded = api::protocol::encode_cbor(&v);
        let again = api::protocol::decode_cbor(&encoded);
        assert!(again.is_ok(), "what the encoder writes, the decoder reads");
        let _ = api::protocol::encode_json(&v);
        let _ = api::protocol::cbor_diagnostic(data);
    }
});
