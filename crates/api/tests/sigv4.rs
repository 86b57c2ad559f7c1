//! AWS's SigV4 test suite (`tests/sigv4/*`, see its README): for every case, the signed
//! request (header-signed and presigned) gives the suite's canonical request, string to sign
//! and signature, verifies with the suite's credentials, and fails with a wrong secret.

use std::path::{Path, PathBuf};

use api::sigv4::{self, Credentials, Request, SigError};

struct Http {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// The suite's request files: `METHOD TARGET HTTP/1.1`, `Name:value` lines (a line that starts
/// with whitespace continues the previous value), a blank line, the body.
fn parse_http(text: &str) -> Http {
    let (head, body) = match text.split_once("\n\n") {
        Some((h, b)) => (h, b),
        None => (text.trim_end_matches('\n'), ""),
    };
    let mut lines = head.lines();
    let first = lines.next().unwrap();
    let method = first.split(' ').next().unwrap().to_string();
    let target = first[method.len() + 1..].rsplit_once(" HTTP/").unwrap().0;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            let last = headers.last_mut().unwrap();
            last.1.push('\n');
            last.1.push_str(line);
        } else {
            let (k, v) = line.split_once(':').unwrap();
            headers.push((k.to_string(), v.to_string()));
        }
    }
    Http {
        method,
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

#[test]
fn every_vector_of_the_suite() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sigv4");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut checked = 0;
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let context: serde_json::Value =
            serde_json::from_str(&read(dir, "context.json").unwrap()).unwrap();
        let key = context["credentials"]["access_key_id"].as_str().unwrap();
        let secret = context["credentials"]["secret_access_key"].as_str().unwrap();
        let normalize = context["normalize"].as_bool().unwrap();
        let credentials = Credentials::new([(key.to_string(), secret.to_string())]);
        let wrong = Credentials::new([(key.to_string(), format!("{secret}x"))]);
        for kind in ["header", "query"] {
            // The signer adds the session token to the query after signing: a case for signers
            // (the server cannot tell a token left out of the signature from a signed one).
            if name == "post-sts-header-after" && kind == "query" {
                continue;
            }
            let Some(text) = read(dir, &format!("{kind}-signed-request.txt")) else { continue };
            let http = parse_http(&text);
            let req = Request {
                method: &http.method,
                path: &http.path,
                query: &http.query,
                headers: &http.headers,
                body: &http.body,
            };
            let signed = sigv4::parse(&req).unwrap().unwrap();
            let canonical = sigv4::canonical_request(&req, &signed, normalize);
            let to_sign = sigv4::string_to_sign(&signed.amz_date, &signed.scope, &canonical);
            let signature = sigv4::signature(secret, &signed, &canonical);
            let expect = |file: &str| read(dir, &format!("{kind}-{file}")).unwrap();
            let mut check = |what: &str, got: &str, want: &str| {
                if got != want {
                    failures
                        .push(format!("{name} ({kind}) {what}:\n got: {got:?}\nwant: {want:?}"));
                }
            };
            check("canonical request", &canonical, &expect("canonical-request.txt"));
            check("string to sign", &to_sign, &expect("string-to-sign.txt"));
            check("signature", &signature, expect("signature.txt").trim());
            check("signature claimed", &signed.signature, expect("signature.txt").trim());
            if normalize {
                // The server normalizes paths (every service but S3 does).
                let ok = sigv4::verify(&credentials, &req).map(|_| ());
                check("verify", &format!("{ok:?}"), "Ok(())");
                let refused = sigv4::verify(&wrong, &req).map(|_| ());
                check(
                    "verify, wrong secret",
                    &format!("{refused:?}"),
                    &format!("{:?}", Err::<(), _>(SigError::Mismatch)),
                );
            }
            checked += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= 75, "only {checked} vectors ran");
}
