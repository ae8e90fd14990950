//! What upstream certificates the gateway accepts beyond rustls's stock verifier: any, for
//! `tls_verify = false`; and, for a service with `tls_verify_depth`, only those that chain to
//! a trusted root through at most that many intermediate CA certificates (nginx's
//! `proxy_ssl_verify_depth`, as OpenSSL counts it).

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};

/// `tls_verify = false`: any certificate is taken (the handshake's signatures are still
/// checked, so the connection is encrypted to whoever holds the certificate's key).
#[derive(Debug)]
pub(crate) struct NoVerifier(pub(crate) Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Why a certificate was refused for its chain's length alone: every path from it to a
/// trusted root passes through more intermediate CA certificates than the service allows.
#[derive(Debug)]
pub struct ChainTooDeep {
    /// The service's `tls_verify_depth`.
    pub depth: u8,
}

impl std::fmt::Display for ChainTooDeep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the certificate chain has more intermediate CA certificates than tls_verify_depth ({}) allows",
            self.depth
        )
    }
}

impl std::error::Error for ChainTooDeep {}

/// rustls's verification (the same roots, signature algorithms and host name check, no
/// revocation) with a bound on the chain: at most `depth` intermediate CA certificates
/// between the upstream's certificate and the trust anchor. Depth 0: the certificate must be
/// issued by a trusted CA itself.
///
/// The chain is built by webpki with the bound as a condition on each candidate path, so a
/// server that sends a long chain is still accepted when a shorter one leads to a trusted
/// root (as through a cross-signed intermediate).
#[derive(Debug)]
pub(crate) struct DepthLimited {
    /// The stock verifier over the same roots: it checks the handshake's signatures, and says
    /// in rustls's own words why a certificate was refused (webpki's errors reach rustls's
    /// only through rustls's private mapping).
    stock: Arc<WebPkiServerVerifier>,
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
    depth: u8,
}

impl DepthLimited {
    /// `None` when there is no root: nothing verifies then, and the stock verifier refuses
    /// everything itself.
    pub(crate) fn new(roots: Arc<RootCertStore>, provider: Arc<CryptoProvider>, depth: u8) -> Option<Self> {
        let algorithms = provider.signature_verification_algorithms;
        let stock = WebPkiServerVerifier::builder_with_provider(Arc::clone(&roots), provider).build().ok()?;
        Some(Self { stock, roots, algorithms, depth })
    }

    /// Whether the certificate is valid for `server_name` and chains to a root within the depth.
    fn accepts(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> bool {
        let Ok(cert) = webpki::EndEntityCert::try_from(end_entity) else { return false };
        let within_depth = |path: &webpki::VerifiedPath<'_>| {
            if path.intermediate_certificates().count() > usize::from(self.depth) {
                // Not fatal to webpki: it goes on looking for a shorter path.
                return Err(webpki::Error::MaximumPathDepthExceeded);
            }
            Ok(())
        };
        let chained = cert.verify_for_usage(
            self.algorithms.all,
            &self.roots.roots,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            Some(&within_depth),
        );
        chained.is_ok() && cert.verify_is_valid_for_subject_name(server_name).is_ok()
    }
}

impl ServerCertVerifier for DepthLimited {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.accepts(end_entity, intermediates, server_name, now) {
            return Ok(ServerCertVerified::assertion());
        }
        // Refused: the stock verifier says why. When it accepts what the bound refused, the
        // chain's length was the only fault.
        self.stock.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)?;
        let too_deep = ChainTooDeep { depth: self.depth };
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(too_deep)))))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.stock.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.stock.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.stock.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.stock.root_hint_subjects()
    }
}

/// Whether a refused handshake's error says the chain was too long: longer than the
/// service's `tls_verify_depth`, or than webpki's own bound (which holds for every service).
pub(crate) fn is_chain_too_deep(e: &rustls::Error) -> bool {
    let rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) = e else { return false };
    inner.is::<ChainTooDeep>()
        || inner.downcast_ref::<webpki::Error>() == Some(&webpki::Error::MaximumPathDepthExceeded)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate authority made for the test.
    struct Ca {
        cert: rcgen::Certificate,
        key: rcgen::KeyPair,
    }

    fn ca_params(name: &str) -> rcgen::CertificateParams {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
        params
    }

    impl Ca {
        fn root(name: &str) -> Ca {
            let key = rcgen::KeyPair::generate().unwrap();
            Ca { cert: ca_params(name).self_signed(&key).unwrap(), key }
        }

        /// An intermediate CA this one issues.
        fn intermediate(&self, name: &str) -> Ca {
            let key = rcgen::KeyPair::generate().unwrap();
            Ca { cert: ca_params(name).signed_by(&key, &self.cert, &self.key).unwrap(), key }
        }

        /// The same CA (name and key) certified by `issuer` as well: a cross-signed copy.
        fn cross_signed_by(&self, name: &str, issuer: &Ca) -> CertificateDer<'static> {
            ca_params(name).signed_by(&self.key, &issuer.cert, &issuer.key).unwrap().der().clone()
        }

        /// A server certificate for `upstream.test`.
        fn leaf(&self) -> CertificateDer<'static> {
            let key = rcgen::KeyPair::generate().unwrap();
            let params = rcgen::CertificateParams::new(vec!["upstream.test".to_owned()]).unwrap();
            params.signed_by(&key, &self.cert, &self.key).unwrap().der().clone()
        }

        fn der(&self) -> CertificateDer<'static> {
            self.cert.der().clone()
        }
    }

    fn limited(roots: &[&Ca], depth: u8) -> DepthLimited {
        let mut store = RootCertStore::empty();
        for ca in roots {
            store.add(ca.der()).unwrap();
        }
        DepthLimited::new(Arc::new(store), Arc::new(rustls::crypto::ring::default_provider()), depth).unwrap()
    }

    fn verify(
        verifier: &DepthLimited,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &str,
    ) -> Result<(), rustls::Error> {
        let name = ServerName::try_from(name.to_owned()).unwrap();
        verifier.verify_server_cert(leaf, intermediates, &name, &[], UnixTime::now()).map(|_| ())
    }

    fn too_deep(result: Result<(), rustls::Error>) -> bool {
        result.is_err_and(|e| is_chain_too_deep(&e))
    }

    #[test]
    fn the_depth_counts_the_intermediate_cas_between_the_certificate_and_the_root() {
        let root = Ca::root("Root");
        let one = root.intermediate("One");
        let two = one.intermediate("Two");
        let direct = root.leaf();
        let via_one = one.leaf();
        let via_two = two.leaf();
        let name = "upstream.test";

        assert_eq!(verify(&limited(&[&root], 0), &direct, &[], name), Ok(()), "issued by the root itself");
        assert!(too_deep(verify(&limited(&[&root], 0), &via_one, &[one.der()], name)));
        assert_eq!(verify(&limited(&[&root], 1), &via_one, &[one.der()], name), Ok(()));
        assert!(too_deep(verify(&limited(&[&root], 1), &via_two, &[two.der(), one.der()], name)));
        assert_eq!(verify(&limited(&[&root], 2), &via_two, &[two.der(), one.der()], name), Ok(()));
        assert_eq!(verify(&limited(&[&root], 64), &via_two, &[two.der(), one.der()], name), Ok(()));
        // An intermediate that is itself a trust anchor ends the path there.
        assert_eq!(verify(&limited(&[&root, &two], 0), &via_two, &[two.der(), one.der()], name), Ok(()));
        // What the gateway's log line carries (rustls shows its inner error's Debug).
        let refused = verify(&limited(&[&root], 0), &via_one, &[one.der()], name).unwrap_err();
        assert!(refused.to_string().contains("ChainTooDeep { depth: 0 }"), "{refused}");
    }

    #[test]
    fn a_shorter_path_through_a_cross_signed_intermediate_is_taken() {
        let root = Ca::root("Root");
        let middle = root.intermediate("Middle");
        let issuing = middle.intermediate("Issuing");
        let leaf = issuing.leaf();
        // The server sends the long path first, and the issuing CA certified by the root too.
        let sent = [issuing.der(), middle.der(), issuing.cross_signed_by("Issuing", &root)];
        assert_eq!(verify(&limited(&[&root], 1), &leaf, &sent, "upstream.test"), Ok(()));
        assert!(too_deep(verify(&limited(&[&root], 1), &leaf, &sent[..2], "upstream.test")));
    }

    #[test]
    fn webpkis_own_bound_of_six_intermediates_holds_for_every_depth_and_reads_as_too_deep() {
        let root = Ca::root("Root");
        let mut cas = vec![root.intermediate("CA 1")];
        for i in 2..=7 {
            let next = cas.last().unwrap().intermediate(&format!("CA {i}"));
            cas.push(next);
        }
        let sent = |n: usize| cas[..n].iter().rev().map(Ca::der).collect::<Vec<_>>();
        let (six, seven) = (cas[5].leaf(), cas[6].leaf());
        assert_eq!(verify(&limited(&[&root], 6), &six, &sent(6), "upstream.test"), Ok(()));
        assert!(too_deep(verify(&limited(&[&root], 64), &seven, &sent(7), "upstream.test")));
        let mut store = RootCertStore::empty();
        store.add(root.der()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let stock = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider).build().unwrap();
        let name = ServerName::try_from("upstream.test").unwrap();
        let unset = stock.verify_server_cert(&seven, &sent(7), &name, &[], UnixTime::now()).map(|_| ());
        assert!(too_deep(unset), "without a depth too");
    }

    #[test]
    fn other_faults_are_told_as_rustls_tells_them_not_as_depth() {
        let root = Ca::root("Root");
        let one = root.intermediate("One");
        let stranger = Ca::root("Stranger");
        // Refused by the depth as well: the name is the fault rustls names.
        let wrong_name = verify(&limited(&[&root], 0), &one.leaf(), &[one.der()], "other.test").unwrap_err();
        assert!(
            matches!(wrong_name, rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })),
            "{wrong_name:?}"
        );
        let unknown = verify(&limited(&[&root], 3), &stranger.leaf(), &[], "upstream.test").unwrap_err();
        assert_eq!(unknown, rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer));
        let missing = verify(&limited(&[&root], 0), &one.leaf(), &[], "upstream.test").unwrap_err();
        assert_eq!(missing, rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer), "the chain is short");
        assert!(
            DepthLimited::new(Arc::new(RootCertStore::empty()), Arc::new(rustls::crypto::ring::default_provider()), 1)
                .is_none()
        );
    }
}
