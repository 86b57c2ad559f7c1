//! AWS Signature Version 4, checked on the server side: the canonical request, the string to
//! sign, the signing key, and a constant-time comparison with the signature the request
//! carries, in the `Authorization: AWS4-HMAC-SHA256 ...` header or in presigned query
//! parameters (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Signature`, ...).
//!
//! A region checks signatures only when it is given credentials; then an unknown access key
//! is `InvalidClientTokenId`, a wrong secret `SignatureDoesNotMatch`, and an unsigned request
//! `MissingAuthenticationToken`. Without credentials any signature (or none) is accepted, as
//! AWS's local tools do.
//!
//! Not checked: how old `X-Amz-Date` is and presigned `X-Amz-Expires` (a region's clock can
//! run faster than the caller's, so the two clocks disagree by design).

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Access key id → secret access key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    keys: BTreeMap<String, String>,
}

impl Credentials {
    pub fn new<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Credentials {
        Credentials { keys: pairs.into_iter().collect() }
    }

    /// Every profile's `aws_access_key_id` / `aws_secret_access_key` of an INI file like
    /// `~/.aws/credentials`.
    pub fn parse_ini(text: &str) -> Result<Credentials, String> {
        let mut keys = BTreeMap::new();
        let mut id: Option<String> = None;
        let mut secret: Option<String> = None;
        let mut flush = |id: &mut Option<String>, secret: &mut Option<String>| {
            if let (Some(i), Some(s)) = (id.take(), secret.take()) {
                keys.insert(i, s);
            }
        };
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if line.starts_with('[') {
                flush(&mut id, &mut secret);
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(format!("line {}: expected `key = value`", n + 1));
            };
            match k.trim() {
                "aws_access_key_id" => id = Some(v.trim().to_string()),
                "aws_secret_access_key" => secret = Some(v.trim().to_string()),
                _ => {}
            }
        }
        flush(&mut id, &mut secret);
        if keys.is_empty() {
            return Err("no aws_access_key_id with an aws_secret_access_key".into());
        }
        Ok(Credentials { keys })
    }

    pub fn secret(&self, access_key: &str) -> Option<&str> {
        self.keys.get(access_key).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A request as it came over the wire.
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as sent (percent-encoded).
    pub path: &'a str,
    /// The query string as sent, without `?`.
    pub query: &'a str,
    /// Header names and values in arrival order (a name may repeat).
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl Request<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What a signature claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed {
    pub access_key: String,
    /// `YYYYMMDD/region/service/aws4_request`.
    pub scope: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
    /// `X-Amz-Date`: `YYYYMMDDTHHMMSSZ`.
    pub amz_date: String,
    pub presigned: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error("Request is missing Authentication Token")]
    Missing,
    #[error("{0}")]
    Malformed(String),
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    Mismatch,
}

impl SigError {
    /// The Query protocol's code (awsJson services name two of them differently: `json_code`).
    pub fn code(&self) -> &'static str {
        match self {
            SigError::Missing => "MissingAuthenticationToken",
            SigError::Malformed(_) => "IncompleteSignature",
            SigError::UnknownKey => "InvalidClientTokenId",
            SigError::Mismatch => "SignatureDoesNotMatch",
        }
    }

    /// awsJson's code for the same error.
    pub fn json_code(&self) -> &'static str {
        match self {
            SigError::Missing => "MissingAuthenticationTokenException",
            SigError::Malformed(_) => "IncompleteSignatureException",
            SigError::UnknownKey => "UnrecognizedClientException",
            SigError::Mismatch => "InvalidSignatureException",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            SigError::Malformed(_) => 400,
            _ => 403,
        }
    }
}

/// What the request says about its signature, `None` when it carries none.
pub fn parse(req: &Request<'_>) -> Result<Option<Signed>, SigError> {
    if let Some(auth) = req.header("authorization") {
        let Some(rest) = auth.trim().strip_prefix(ALGORITHM) else {
            return Err(SigError::Malformed(format!(
                "Authorization header requires the {ALGORITHM} algorithm"
            )));
        };
        let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
        for part in rest.split(',') {
            if let Some((k, v)) = part.trim().split_once('=') {
                fields.insert(k.trim(), v.trim());
            }
        }
        let field = |k: &str| {
            fields.get(k).map(|v| v.to_string()).ok_or_else(|| {
                SigError::Malformed(format!(
                    "Authorization header requires '{k}' parameter. Authorization={auth}"
                ))
            })
        };
        let amz_date = req
            .header("x-amz-date")
            .map(str::to_string)
            .ok_or_else(|| SigError::Malformed("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into()))?;
        return signed(
            field("Credential")?,
            field("SignedHeaders")?,
            field("Signature")?,
            amz_date,
            false,
        )
        .map(Some);
    }
    let params = query_pairs(req.query);
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if get("X-Amz-Algorithm").is_none() && get("X-Amz-Signature").is_none() {
        return Ok(None);
    }
    if get("X-Amz-Algorithm").as_deref() != Some(ALGORITHM) {
        return Err(SigError::Malformed(format!("X-Amz-Algorithm only supports \"{ALGORITHM}\"")));
    }
    let need = |k: &str| {
        get(k).ok_or_else(|| {
            SigError::Malformed(format!("AWS query-string parameters must include '{k}'."))
        })
    };
    signed(
        need("X-Amz-Credential")?,
        need("X-Amz-SignedHeaders")?,
        need("X-Amz-Signature")?,
        need("X-Amz-Date")?,
        true,
    )
    .map(Some)
}

fn signed(
    credential: String,
    signed_headers: String,
    signature: String,
    amz_date: String,
    presigned: bool,
) -> Result<Signed, SigError> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, "aws4_request"] = parts[..] else {
        return Err(SigError::Malformed(format!(
            "Credential should be scoped to a valid region and service: {credential}"
        )));
    };
    Ok(Signed {
        access_key: access_key.to_string(),
        scope: format!("{date}/{region}/{service}/aws4_request"),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers: signed_headers.split(';').map(|h| h.trim().to_ascii_lowercase()).collect(),
        signature,
        amz_date,
        presigned,
    })
}

/// Checks a request's signature against `credentials`; the signature's claims when it holds.
pub fn verify(credentials: &Credentials, req: &Request<'_>) -> Result<Signed, SigError> {
    let signed = parse(req)?.ok_or(SigError::Missing)?;
    let secret = credentials.secret(&signed.access_key).ok_or(SigError::UnknownKey)?;
    if let Some(claimed) = req.header("x-amz-content-sha256")
        && claimed != "UNSIGNED-PAYLOAD"
        && !claimed.eq_ignore_ascii_case(&hex(&Sha256::digest(req.body)))
    {
        return Err(SigError::Mismatch);
    }
    let expected = signature(secret, &signed, &canonical_request(req, &signed, true));
    if bool::from(expected.as_bytes().ct_eq(signed.signature.to_ascii_lowercase().as_bytes())) {
        Ok(signed)
    } else {
        Err(SigError::Mismatch)
    }
}

/// The hex signature of a canonical request.
pub fn signature(secret: &str, signed: &Signed, canonical: &str) -> String {
    let key = signing_key(secret, &signed.date, &signed.region, &signed.service);
    hex(&hmac(&key, string_to_sign(&signed.amz_date, &signed.scope, canonical).as_bytes()))
}

pub fn string_to_sign(amz_date: &str, scope: &str, canonical: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", hex(&Sha256::digest(canonical.as_bytes())))
}

pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    hmac(&k, b"aws4_request")
}

/// The canonical request: method, path, query, signed headers, their names, payload hash.
/// `normalize` removes `.`/`..` segments and empty ones (every service but S3).
pub fn canonical_request(req: &Request<'_>, signed: &Signed, normalize: bool) -> String {
    let path = if normalize { normalize_path(req.path) } else { req.path.to_string() };
    let mut params: Vec<(String, String)> = query_pairs(req.query)
        .into_iter()
        .filter(|(k, _)| !(signed.presigned && k == "X-Amz-Signature"))
        .map(|(k, v)| (encode(&k, true), encode(&v, true)))
        .collect();
    params.sort();
    let query: Vec<String> = params.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut headers = String::new();
    for name in &signed.signed_headers {
        let values: Vec<String> = req
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let payload = match req.header("x-amz-content-sha256") {
        Some(claimed) => claimed.to_string(),
        None => hex(&Sha256::digest(req.body)),
    };
    format!(
        "{}\n{}\n{}\n{headers}\n{}\n{payload}",
        req.method,
        encode(&path, false),
        query.join("&"),
        signed.signed_headers.join(";"),
    )
}

/// `/a/./b/../c//d` → `/a/c/d` (a trailing slash stays).
fn normalize_path(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut s = format!("/{}", out.join("/"));
    if path.ends_with('/') && s.len() > 1 {
        s.push('/');
    }
    s
}

/// The query's name/value pairs, percent-decoded (`+` stays a `+`).
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_at = |j: usize| bytes.get(j).and_then(|b| (*b as char).to_digit(16));
        match (bytes[i], hex_at(i + 1), hex_at(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 3986 encoding: unreserved characters stay, every other byte is `%XX`; `/` too unless
/// it is a path.
fn encode(s: &str, slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (!slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Signs a request with the `Authorization` header (what a client does; tests use it):
/// adds `X-Amz-Date` and `Authorization` to `headers`.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    headers: &mut Vec<(String, String)>,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
    (access_key, secret): (&str, &str),
    (region, service): (&str, &str),
    amz_date: &str,
) {
    headers.retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("x-amz-date")) {
        headers.push(("X-Amz-Date".into(), amz_date.into()));
    }
    let date = amz_date.get(..8).unwrap_or(amz_date);
    let mut names: Vec<String> = headers.iter().map(|(k, _)| k.to_ascii_lowercase()).collect();
    names.sort();
    names.dedup();
    let signed = Signed {
        access_key: access_key.into(),
        scope: format!("{date}/{region}/{service}/aws4_request"),
        date: date.into(),
        region: region.into(),
        service: service.into(),
        signed_headers: names,
        signature: String::new(),
        amz_date: amz_date.into(),
        presigned: false,
    };
    let req = Request { method, path, query, headers, body };
    let sig = signature(secret, &signed, &canonical_request(&req, &signed, true));
    headers.push((
        "Authorization".into(),
        format!(
            "{ALGORITHM} Credential={access_key}/{}, SignedHeaders={}, Signature={sig}",
            signed.scope,
            signed.signed_headers.join(";")
        ),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_from_an_ini_file() {
        let c = Credentials::parse_ini(
            "[default]\naws_access_key_id = AKID1\naws_secret_access_key=s1\n# c\n[other]\naws_secret_access_key = s2\naws_access_key_id = AKID2\nregion=x\n",
        )
        .unwrap();
        assert_eq!(
            (c.secret("AKID1"), c.secret("AKID2"), c.secret("x")),
            (Some("s1"), Some("s2"), None)
        );
        assert!(Credentials::parse_ini("[default]\n").is_err());
        assert!(Credentials::parse_ini("junk").is_err());
    }

    #[test]
    fn signs_and_verifies_and_refuses() {
        let creds = Credentials::new([("AKID".to_string(), "secret".to_string())]);
        let mut headers = vec![("Host".to_string(), "127.0.0.1:4566".to_string())];
        let body = b"Action=GetCallerIdentity&Version=2011-06-15";
        sign(
            &mut headers,
            "POST",
            "/",
            "",
            body,
            ("AKID", "secret"),
            ("us-east-1", "sts"),
            "20260101T000000Z",
        );
        let req = |headers: &[(String, String)], body: &'static [u8]| -> Result<String, String> {
            let r = Request { method: "POST", path: "/", query: "", headers, body };
            verify(&creds, &r).map(|s| s.service).map_err(|e| e.code().to_string())
        };
        assert_eq!(req(&headers, body), Ok("sts".into()));
        assert_eq!(req(&headers, b"Action=Other"), Err("SignatureDoesNotMatch".into()));
        let mut other = vec![("Host".to_string(), "127.0.0.1:4566".to_string())];
        sign(
            &mut other,
            "POST",
            "/",
            "",
            body,
            ("AKID", "wrong"),
            ("us-east-1", "sts"),
            "20260101T000000Z",
        );
        assert_eq!(req(&other, body), Err("SignatureDoesNotMatch".into()));
        let mut unknown = vec![("Host".to_string(), "h".to_string())];
        sign(
            &mut unknown,
            "POST",
            "/",
            "",
            body,
            ("NOPE", "secret"),
            ("us-east-1", "sts"),
            "20260101T000000Z",
        );
        assert_eq!(req(&unknown, body), Err("InvalidClientTokenId".into()));
        assert_eq!(req(&[], body), Err("MissingAuthenticationToken".into()));
        let bad = vec![("Authorization".to_string(), "AWS4-HMAC-SHA256 Credential=x".to_string())];
        assert_eq!(req(&bad, body), Err("IncompleteSignature".into()));
    }

    #[test]
    fn paths_normalize() {
        let cases = [
            ("/", "/"),
            ("//", "/"),
            ("/a/./b/../c", "/a/c"),
            ("/../..", "/"),
            ("/a//b/", "/a/b/"),
        ];
        for (path, expected) in cases {
            assert_eq!(normalize_path(path), expected, "{path}");
        }
    }
}
