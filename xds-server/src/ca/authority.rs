//! The CA: the built-in one or the operator's own (an intermediate), checked when loaded, and
//! the workload certificates it issues (ECDSA P-256, the SPIFFE ID as URI SAN).

use std::{
    fmt,
    time::{Duration, SystemTime},
};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use rustls_pki_types::{CertificateDer, pem::PemObject};
use x509_parser::prelude::{ASN1Time, FromDer, X509Certificate};

use super::{Error, TrustDomain};

/// How long a generated built-in CA is valid.
const BUILT_IN_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A CA that can issue workload certificates, and the trust bundle proxies verify them with.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    /// Appended to every leaf: the CA certificate and, for an operator's intermediate, the
    /// chain above it (PEM).
    chain_pem: String,
    /// The roots proxies trust, newest first (PEM, one certificate each). While a CA is
    /// replaced, the old root stays here so certificates it issued keep verifying.
    bundle: Vec<String>,
    /// Leaves never outlive the CA.
    not_after: SystemTime,
    trust_domain: TrustDomain,
    ttl: Duration,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority")
            .field("trust_domain", &self.trust_domain)
            .field("roots", &self.bundle.len())
            .field("key", &"[redacted]")
            .finish()
    }
}

/// A workload certificate and its key. Prints without the key.
#[derive(Clone, PartialEq, Eq)]
pub struct WorkloadCert {
    pub spiffe_id: String,
    /// The leaf, then the CA chain (PEM).
    pub chain_pem: String,
    /// PKCS#8 PEM: only ever put into an SDS `Secret`.
    pub key_pem: String,
    /// When it was issued: renewal counts from here (`not_before` is a little earlier, for
    /// clock skew).
    pub issued_at: SystemTime,
    pub not_after: SystemTime,
    /// Hex serial: tells two issues of one identity apart.
    pub serial: String,
}

impl fmt::Debug for WorkloadCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadCert")
            .field("spiffe_id", &self.spiffe_id)
            .field("serial", &self.serial)
            .field("not_after", &self.not_after)
            .field("key_pem", &"[redacted]")
            .finish()
    }
}

/// Where a PEM came from, for error messages (never the content).
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub cert: &'a str,
    pub key: &'a str,
}

impl Authority {
    /// A new self-signed root for `trust_domain`: returns its certificate and key (PEM), to
    /// be stored, and loaded back with [`Authority::from_pem`].
    pub fn generate(trust_domain: &TrustDomain) -> Result<(String, String), Error> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| Error::Issue(e.to_string()))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "xds-server mesh");
        dn.push(DnType::CommonName, format!("mesh CA {trust_domain}"));
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = SystemTime::now();
        params.not_before = (now - Duration::from_secs(3600)).into();
        params.not_after = (now + BUILT_IN_VALIDITY).into();
        params.serial_number = Some(random_serial()?);
        let cert = params
            .self_signed(&key)
            .map_err(|e| Error::Issue(e.to_string()))?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Loads a CA from PEM, refusing a malformed certificate or key, a key that is not the
    /// certificate's, a certificate that is not a CA or not valid now. `chain_pem` is what
    /// lies above an intermediate (its last certificate is the root proxies trust); without
    /// it the CA certificate itself is the root.
    pub fn from_pem(
        cert_pem: &str,
        key_pem: &str,
        chain_pem: Option<(&str, &str)>,
        source: Source<'_>,
        trust_domain: TrustDomain,
        ttl: Duration,
    ) -> Result<Self, Error> {
        let der = single_cert(cert_pem, "the CA certificate", source.cert)?;
        let (_, x509) =
            X509Certificate::from_der(der.as_ref()).map_err(|e| Error::BadCertificate {
                what: "the CA certificate",
                path: source.cert.to_string(),
                reason: e.to_string(),
            })?;
        if !x509.is_ca() {
            return Err(Error::NotCa {
                path: source.cert.to_string(),
            });
        }
        let validity = x509.validity();
        if !validity.is_valid_at(ASN1Time::now()) {
            return Err(Error::Expired {
                path: source.cert.to_string(),
                not_before: validity.not_before.to_string(),
                not_after: validity.not_after.to_string(),
            });
        }
        let not_after = SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(validity.not_after.timestamp()).unwrap_or(0));
        // rcgen's errors can quote the input: say only what was wrong.
        let key = KeyPair::from_pem(key_pem).map_err(|_| Error::BadKey {
            path: source.key.to_string(),
        })?;
        if x509.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(Error::KeyMismatch {
                cert: source.cert.to_string(),
                key: source.key.to_string(),
            });
        }
        let mut chain = vec![pem_of(&der)];
        if let Some((pem, path)) = chain_pem {
            let certs = certs(pem, "the CA chain", path)?;
            for c in &certs {
                let (_, parsed) =
                    X509Certificate::from_der(c.as_ref()).map_err(|e| Error::BadCertificate {
                        what: "the CA chain",
                        path: path.to_string(),
                        reason: e.to_string(),
                    })?;
                if !parsed.is_ca() {
                    return Err(Error::NotCa {
                        path: path.to_string(),
                    });
                }
            }
            chain.extend(certs.iter().map(pem_of));
        }
        let root = chain.last().cloned().expect("the CA certificate is in it");
        let issuer = Issuer::from_ca_cert_der(&der, key).map_err(|e| Error::BadCertificate {
            what: "the CA certificate",
            path: source.cert.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            issuer,
            chain_pem: chain.concat(),
            bundle: vec![root],
            not_after,
            trust_domain,
            ttl,
        })
    }

    /// Adds roots proxies keep trusting (a replaced CA's, while rotating), after the current
    /// one; duplicates are skipped. Each must parse as a certificate.
    pub fn keep_trusting(
        &mut self,
        pem: &str,
        what: &'static str,
        path: &str,
    ) -> Result<(), Error> {
        for c in certs(pem, what, path)? {
            let root = pem_of(&c);
            if !self.bundle.contains(&root) {
                self.bundle.push(root);
            }
        }
        Ok(())
    }

    /// The trust bundle: every root proxies trust, concatenated (PEM).
    pub fn trust_bundle_pem(&self) -> String {
        self.bundle.concat()
    }

    /// How many roots the trust bundle holds.
    pub fn roots(&self) -> usize {
        self.bundle.len()
    }

    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new certificate for `service`, valid for the TTL from `now` (never past the CA).
    pub fn issue(&self, service: &str, now: SystemTime) -> Result<WorkloadCert, Error> {
        let issue = |e: rcgen::Error| Error::Issue(e.to_string());
        let spiffe_id = self.trust_domain.spiffe_id(service);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(issue)?;
        let mut params = CertificateParams::default();
        let uri = spiffe_id.clone().try_into().map_err(issue)?;
        params.subject_alt_names = vec![SanType::URI(uri)];
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "xds-server mesh");
        dn.push(DnType::CommonName, service);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let skew = (self.ttl / 4).min(Duration::from_secs(60));
        let not_after = (now + self.ttl).min(self.not_after);
        params.not_before = (now - skew).into();
        params.not_after = not_after.into();
        let serial = random_serial()?;
        let hex = serial
            .to_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        params.serial_number = Some(serial);
        let cert = params.signed_by(&key, &self.issuer).map_err(issue)?;
        Ok(WorkloadCert {
            spiffe_id,
            chain_pem: format!("{}{}", cert.pem(), self.chain_pem),
            key_pem: key.serialize_pem(),
            issued_at: now,
            not_after,
            serial: hex,
        })
    }
}

/// A TLS serving certificate (see [`Authority::issue_server`]). Prints without the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerCert {
    /// The leaf, then the CA chain (PEM).
    pub chain_pem: String,
    /// PKCS#8 PEM.
    pub key_pem: String,
    pub issued_at: SystemTime,
    pub not_after: SystemTime,
    /// Hex serial, for logs.
    pub serial: String,
}

impl fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCert")
            .field("serial", &self.serial)
            .field("not_after", &self.not_after)
            .field("key_pem", &"[redacted]")
            .finish()
    }
}

impl Authority {
    /// A serving certificate for the xDS port (serverAuth only), valid for `dns` names and
    /// `ips`, for the TTL from `now` (never past the CA).
    pub fn issue_server(
        &self,
        dns: &[String],
        ips: &[std::net::IpAddr],
        now: SystemTime,
    ) -> Result<ServerCert, Error> {
        let issue = |e: rcgen::Error| Error::Issue(e.to_string());
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(issue)?;
        let mut params = CertificateParams::default();
        for name in dns {
            params
                .subject_alt_names
                .push(SanType::DnsName(name.clone().try_into().map_err(issue)?));
        }
        params
            .subject_alt_names
            .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "xds-server mesh");
        dn.push(DnType::CommonName, "xds-server");
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let skew = (self.ttl / 4).min(Duration::from_secs(60));
        let not_after = (now + self.ttl).min(self.not_after);
        params.not_before = (now - skew).into();
        params.not_after = not_after.into();
        let serial = random_serial()?;
        let hex = serial
            .to_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        params.serial_number = Some(serial);
        let cert = params.signed_by(&key, &self.issuer).map_err(issue)?;
        Ok(ServerCert {
            chain_pem: format!("{}{}", cert.pem(), self.chain_pem),
            key_pem: key.serialize_pem(),
            issued_at: now,
            not_after,
            serial: hex,
        })
    }
}

fn random_serial() -> Result<SerialNumber, Error> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Issue("the system random source failed".into()))?;
    bytes[0] &= 0x7f; // positive
    Ok(SerialNumber::from_slice(&bytes))
}

/// Every certificate in `pem`; at least one.
fn certs(pem: &str, what: &'static str, path: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let bad = |reason: String| Error::BadCertificate {
        what,
        path: path.to_string(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no 'BEGIN CERTIFICATE' block in it".into()));
    }
    for c in &certs {
        X509Certificate::from_der(c.as_ref()).map_err(|e| bad(e.to_string()))?;
    }
    Ok(certs)
}

/// The one certificate in `pem`.
fn single_cert(
    pem: &str,
    what: &'static str,
    path: &str,
) -> Result<CertificateDer<'static>, Error> {
    let mut all = certs(pem, what, path)?;
    if all.len() > 1 {
        return Err(Error::BadCertificate {
            what,
            path: path.to_string(),
            reason: "it holds more than one certificate: put the CA certificate alone here and the rest in --ca-chain-file".into(),
        });
    }
    Ok(all.remove(0))
}

fn pem_of(der: &CertificateDer<'_>) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}
