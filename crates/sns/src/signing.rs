//! Message signatures as AWS makes them ("Verifying the signatures of Amazon SNS messages"):
//! the string to sign is chosen fields of the message, each as `Name\nvalue\n`, in a fixed
//! order per message type; SignatureVersion 1 signs it with SHA1withRSA, 2 with
//! SHA256withRSA; the signature is base64. The key is RSA 2048, made once per region and kept
//! in the store with its self-signed certificate, which the API serves at the SigningCertURL.

use base64::Engine as _;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use serde::{Deserialize, Serialize};

use crate::SnsError;

/// Where the key and certificate are kept.
const NAMESPACE: &str = "sns/signing";
const KEY: &str = "key";

/// DigestInfo prefixes (RFC 8017 §9.2, note 1).
const SHA1_PREFIX: &[u8] =
    &[0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14];
const SHA256_PREFIX: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

#[derive(Serialize, Deserialize)]
struct Stored {
    key_pem: String,
    cert_pem: String,
}

/// The region's signing key and certificate.
pub struct Signer {
    key: rsa::RsaPrivateKey,
    cert_pem: String,
}

impl Signer {
    /// The stored key, or a new one (stored before it is used).
    pub fn load_or_create(store: &store::Store) -> Result<Signer, SnsError> {
        if let Some(s) = store.get::<Stored>(NAMESPACE, KEY)? {
            let key = rsa::RsaPrivateKey::from_pkcs8_pem(&s.key_pem)
                .map_err(|e| SnsError::Signing(format!("the stored signing key: {e}")))?;
            return Ok(Signer { key, cert_pem: s.cert_pem });
        }
        let failed = |e: &dyn std::fmt::Display| SnsError::Signing(e.to_string());
        let key =
            rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(|e| failed(&e))?;
        let key_pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| failed(&e))?.to_string();
        let pair = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256)
            .map_err(|e| failed(&e))?;
        let mut params = rcgen::CertificateParams::new(vec!["sns.amazonaws.com".to_string()])
            .map_err(|e| failed(&e))?;
        params.distinguished_name.push(rcgen::DnType::CommonName, "sns.amazonaws.com");
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "Cumulo (local SNS)");
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2049, 12, 31);
        let cert = params.self_signed(&pair).map_err(|e| failed(&e))?;
        let stored = Stored { key_pem, cert_pem: cert.pem() };
        store.put(NAMESPACE, KEY, &stored)?;
        Ok(Signer { key, cert_pem: stored.cert_pem })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The base64 signature of `text` for SignatureVersion `version` (1: SHA1withRSA,
    /// 2: SHA256withRSA).
    pub fn sign(&self, version: SignatureVersion, text: &str) -> Result<String, SnsError> {
        let (algorithm, prefix, len) = match version {
            SignatureVersion::V1 => (&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, SHA1_PREFIX, 20),
            SignatureVersion::V2 => (&ring::digest::SHA256, SHA256_PREFIX, 32),
        };
        let digest = ring::digest::digest(algorithm, text.as_bytes());
        let scheme = rsa::Pkcs1v15Sign { hash_len: Some(len), prefix: prefix.into() };
        let signature = self
            .key
            .sign(scheme, digest.as_ref())
            .map_err(|e| SnsError::Signing(format!("signing a message: {e}")))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(signature))
    }
}

/// A topic's `SignatureVersion` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureVersion {
    V1,
    V2,
}

impl SignatureVersion {
    pub fn parse(s: &str) -> Option<SignatureVersion> {
        match s {
            "1" => Some(SignatureVersion::V1),
            "2" => Some(SignatureVersion::V2),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SignatureVersion::V1 => "1",
            SignatureVersion::V2 => "2",
        }
    }
}

/// The string AWS signs for a message (a JSON object of string members): for `Notification`
/// Message, MessageId, Subject (when present), Timestamp, TopicArn, Type; for
/// `SubscriptionConfirmation` and `UnsubscribeConfirmation` Message, MessageId, SubscribeURL,
/// Timestamp, Token, TopicArn, Type.
pub fn string_to_sign(message: &serde_json::Map<String, serde_json::Value>) -> String {
    let kind = message.get("Type").and_then(|v| v.as_str()).unwrap_or("");
    let fields: &[&str] = if kind == "Notification" {
        &["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    } else {
        &["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    };
    let mut out = String::new();
    for field in fields {
        if let Some(value) = message.get(*field).and_then(|v| v.as_str()) {
            out.push_str(field);
            out.push('\n');
            out.push_str(value);
            out.push('\n');
        }
    }
    out
}
