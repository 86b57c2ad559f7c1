//! The data plane's reading of a target's HTTP/1 response head.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (head_request, bytes) = match data.split_first() {
        Some((first, rest)) => (first & 1 == 1, rest),
        None => (false, data),
    };
    let _ = elb_proxy::h1::parse_response_head(bytes, head_request);
});
