//! The SigV4 parser and canonicaliser: arbitrary request lines, headers and bodies.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let path = lines.next().unwrap_or("/");
    let query = lines.next().unwrap_or("");
    let mut headers = Vec::new();
    let mut body = "";
    for line in lines.by_ref() {
        match line.split_once(':') {
            Some((k, v)) => headers.push((k.to_string(), v.to_string())),
            None => {
                body = line;
                break;
            }
        }
    }
    let req = api::sigv4::Request {
        method: "POST",
        path,
        query,
        headers: &headers,
        body: body.as_bytes(),
    };
    if let Ok(Some(signed)) = api::sigv4::parse(&req) {
        let canonical = api::sigv4::canonical_request(&req, &signed, true);
        let _ = api::sigv4::string_to_sign(&signed.amz_date, &signed.scope, &canonical);
    }
    let creds = api::sigv4::Credentials::new([("AKID".to_string(), "secret".to_string())]);
    let _ = api::sigv4::verify(&creds, &req);
});
