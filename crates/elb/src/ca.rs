//! The local certificate authority. HTTPS listeners present certificates it issues on demand
//! for whatever name the client asks for (SNI), so any DNS name, IP or `localhost` works once
//! the CA is trusted (`cumulo ca` prints it). ACM certificate ARNs on listeners need no local
//! material: every name is served by this CA.
//!
//! The CA's key and certificate live in the data directory and survive restarts.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("cannot make the local CA: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("cannot keep the local CA in {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

pub struct Ca {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    leaves: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ca")
    }
}

fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Cumulo Local CA");
    dn.push(DnType::OrganizationName, "Cumulo");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2049, 12, 31);
    Ok(params)
}

impl Ca {
    /// The CA kept in `dir` (made there on first use), or a fresh one for this process.
    pub fn load_or_create(dir: Option<&Path>) -> Result<Ca, CaError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| CaError::Io { path, source }
        };
        if let Some(dir) = dir {
            let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
            if let (Ok(cert), Ok(key)) =
                (std::fs::read_to_string(&cert_path), std::fs::read_to_string(&key_path))
                && let Ok(key) = KeyPair::from_pem(&key)
            {
                return Ca::from_parts(cert, key);
            }
            let (ca, key_pem) = Ca::fresh()?;
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            std::fs::write(&key_path, key_pem).map_err(io(&key_path))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600));
            }
            std::fs::write(&cert_path, &ca.cert_pem).map_err(io(&cert_path))?;
            return Ok(ca);
        }
        Ok(Ca::fresh()?.0)
    }

    fn fresh() -> Result<(Ca, String), CaError> {
        let key = KeyPair::generate()?;
        let cert = ca_params()?.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        Ok((Ca::from_parts(cert.pem(), key)?, key_pem))
    }

    fn from_parts(cert_pem: String, key: KeyPair) -> Result<Ca, CaError> {
        let der =
            pem_to_der(&cert_pem).ok_or(CaError::Rcgen(rcgen::Error::CouldNotParseCertificate))?;
        let issuer = Issuer::new(ca_params()?, key);
        Ok(Ca {
            cert_pem,
            cert_der: CertificateDer::from(der),
            issuer,
            leaves: Mutex::new(HashMap::new()),
        })
    }

    /// The CA certificate, PEM (what users add to trust stores).
    pub fn pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// A certificate for `name` (a DNS name or an IP), issued once and cached.
    pub fn certified(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(c) = self.leaves.lock().get(&name) {
            return Some(c.clone());
        }
        let leaf = self
            .issue(&name)
            .map_err(|e| tracing::warn!("cannot issue a certificate for {name}: {e}"))
            .ok()?;
        self.leaves.lock().insert(name, leaf.clone());
        Some(leaf)
    }

    fn issue(&self, name: &str) -> Result<Arc<CertifiedKey>, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.subject_alt_names = match name.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![SanType::IpAddress(ip)],
            Err(_) => vec![SanType::DnsName(name.to_string().try_into()?)],
        };
        params.distinguished_name.push(DnType::CommonName, name);
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2049, 12, 31);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing =
            any_supported_type(&key_der).map_err(|_| rcgen::Error::CouldNotParseKeyPair)?;
        Ok(Arc::new(CertifiedKey::new(vec![cert.der().clone(), self.cert_der.clone()], signing)))
    }
}

fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// Serves a certificate for the name the client asked for (SNI), or for `fallback` (the load
/// balancer's address) when it sent none.
#[derive(Debug)]
pub struct SniResolver {
    pub ca: Arc<Ca>,
    pub fallback: String,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.ca.certified(hello.server_name().unwrap_or(&self.fallback))
    }
}
