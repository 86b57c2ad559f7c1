//! Key pairs with real key material: RSA (2048 bits, PKCS#1 PEM) or ED25519 (OpenSSH's
//! format), fingerprinted as EC2 does for keys it creates (RSA: SHA-1 of the PKCS#8 DER, as
//! colon hex; ED25519: SHA-256 of the public key blob, base64). The private key is handed
//! out once and not kept.

use base64::engine::general_purpose::STANDARD;
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::EncodePrivateKey;
use rsa::traits::PublicKeyParts;

use super::*;

fn rejected(code: &'static str, message: impl Into<String>) -> Ec2Error {
    Ec2Error::Rejected { code, message: message.into() }
}

/// SSH's wire encoding: a length-prefixed string.
fn ssh_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// SSH's mpint: big-endian, with a zero byte first when the top bit is set.
fn ssh_mpint(out: &mut Vec<u8>, be: &[u8]) {
    let trimmed: &[u8] = {
        let first = be.iter().position(|b| *b != 0).unwrap_or(be.len());
        &be[first..]
    };
    if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v = vec![0];
        v.extend_from_slice(trimmed);
        ssh_string(out, &v);
    } else {
        ssh_string(out, trimmed);
    }
}

fn wrap_pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> =
        body.as_bytes().chunks(70).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----", lines.join("\n"))
}

/// A new key: (private key material, OpenSSH public line, fingerprint).
fn generate(key_type: &str, name: &str) -> Result<(String, String, String), Ec2Error> {
    let failed =
        |e: &dyn std::fmt::Display| Ec2Error::Launch(format!("key generation failed: {e}"));
    match key_type {
        "ed25519" => {
            let rng = SystemRandom::new();
            let mut seed = [0u8; 32];
            rng.fill(&mut seed).map_err(|e| failed(&e))?;
            let pair = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|e| failed(&e))?;
            let public = pair.public_key().as_ref().to_vec();
            let mut blob = Vec::new();
            ssh_string(&mut blob, b"ssh-ed25519");
            ssh_string(&mut blob, &public);
            let mut check = [0u8; 4];
            rng.fill(&mut check).map_err(|e| failed(&e))?;
            let mut private = Vec::new();
            private.extend_from_slice(&check);
            private.extend_from_slice(&check);
            ssh_string(&mut private, b"ssh-ed25519");
            ssh_string(&mut private, &public);
            let mut secret = seed.to_vec();
            secret.extend_from_slice(&public);
            ssh_string(&mut private, &secret);
            ssh_string(&mut private, name.as_bytes());
            let mut pad = 1u8;
            while private.len() % 8 != 0 {
                private.push(pad);
                pad += 1;
            }
            let mut doc = b"openssh-key-v1\0".to_vec();
            ssh_string(&mut doc, b"none");
            ssh_string(&mut doc, b"none");
            ssh_string(&mut doc, b"");
            doc.extend_from_slice(&1u32.to_be_bytes());
            ssh_string(&mut doc, &blob);
            ssh_string(&mut doc, &private);
            let fingerprint = STANDARD.encode(digest::digest(&digest::SHA256, &blob));
            Ok((
                wrap_pem("OPENSSH PRIVATE KEY", &doc),
                format!("ssh-ed25519 {}", STANDARD.encode(&blob)),
                fingerprint,
            ))
        }
        _ => {
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
                .map_err(|e| failed(&e))?;
            let pkcs1 = key.to_pkcs1_der().map_err(|e| failed(&e))?;
            let pkcs8 = key.to_pkcs8_der().map_err(|e| failed(&e))?;
            let mut blob = Vec::new();
            ssh_string(&mut blob, b"ssh-rsa");
            ssh_mpint(&mut blob, &key.e().to_bytes_be());
            ssh_mpint(&mut blob, &key.n().to_bytes_be());
            let sha1 = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, pkcs8.as_bytes());
            let fingerprint =
                sha1.as_ref().iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
            Ok((
                wrap_pem("RSA PRIVATE KEY", pkcs1.as_bytes()),
                format!("ssh-rsa {}", STANDARD.encode(&blob)),
                fingerprint,
            ))
        }
    }
}

impl Ec2 {
    pub fn key_pair(&self, name: &str) -> Result<Option<KeyPairRecord>, Ec2Error> {
        Ok(self.store.get(KEY_PAIRS, name)?)
    }

    pub fn key_pairs(&self) -> Result<Vec<KeyPairRecord>, Ec2Error> {
        Ok(self.store.list::<KeyPairRecord>(KEY_PAIRS, "")?.into_iter().map(|(_, r)| r).collect())
    }

    /// CreateKeyPair: the record, and the private key (given out once).
    pub fn create_key_pair(
        &self,
        name: &str,
        key_type: Option<&str>,
        tags: IndexMap<String, String>,
    ) -> Result<(KeyPairRecord, String), Ec2Error> {
        let key_type = key_type.unwrap_or("rsa");
        if key_type != "rsa" && key_type != "ed25519" {
            return Err(rejected(
                "InvalidParameterValue",
                format!("Value ({key_type}) for parameter keyType is invalid."),
            ));
        }
        if name.is_empty() || name.len() > 255 {
            return Err(rejected("InvalidParameterValue", "Invalid value for KeyName"));
        }
        if self.key_pair(name)?.is_some() {
            return Err(rejected(
                "InvalidKeyPair.Duplicate",
                format!("The keypair '{name}' already exists."),
            ));
        }
        let (material, public_key, fingerprint) = generate(key_type, name)?;
        let record = KeyPairRecord {
            name: name.to_string(),
            id: aws_ids::ec2_id("key"),
            fingerprint,
            key_type: key_type.to_string(),
            public_key,
            created: clock::iso8601(self.clock.now()),
            tags,
        };
        self.store.put(KEY_PAIRS, name, &record)?;
        Ok((record, material))
    }

    /// DeleteKeyPair, by name or id (deleting one that is not there succeeds, as in EC2).
    pub fn delete_key_pair(&self, name_or_id: &str) -> Result<(), Ec2Error> {
        let found =
            self.key_pairs()?.into_iter().find(|k| k.name == name_or_id || k.id == name_or_id);
        if let Some(k) = found {
            self.store.delete(KEY_PAIRS, &k.name)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_real_and_fingerprinted_as_ec2_does() {
        let (pem, public, fingerprint) = generate("ed25519", "edx-key").unwrap();
        assert!(
            pem.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA"),
            "{pem}"
        );
        assert!(public.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA"), "{public}");
        assert_eq!(fingerprint.len(), 44, "base64 of 32 bytes: {fingerprint}");
        let (pem, public, fingerprint) = generate("rsa", "edx-key").unwrap();
        assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\nMIIE"), "{pem}");
        assert!(public.starts_with("ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB"), "{public}");
        assert_eq!(fingerprint.split(':').count(), 20, "SHA-1 as colon hex: {fingerprint}");
    }
}
