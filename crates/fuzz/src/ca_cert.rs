//! A gateway CA certificate object's `cert` (`tessera_domain::x509::CaCert::from_pem`, which
//! walks the certificate's DER by hand to read basicConstraints) under fuzz input.
//!
//! Random text is rarely PEM, and random DER is rarely a certificate, so two of the three
//! modes start nearer the parser's depths: arbitrary bytes wrapped as a PEM certificate, and a
//! real CA certificate (`ca_cert.pem`) with bytes overwritten where the input says.
//! Whatever is accepted has the SHA-256 of its DER as `cert_digest` and reads back the same
//! from a PEM made of that DER; as an object's `cert`, it is taken at its `notAfter` and
//! refused as expired (naming `cert`) one second later, whatever the DER's time encoding.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest as _, Sha256};
use tessera_domain::Timestamp;
use tessera_domain::gateway::CaCertificate;
use tessera_domain::x509::CaCert;

/// A CA certificate (P-256, basicConstraints CA:TRUE, critical) for the third mode.
const CA_PEM: &str = include_str!("ca_cert.pem");

/// Runs one input. The first byte picks the mode: 0 = the text as `cert`; 1 = the bytes as
/// the DER of a PEM certificate; 2 = the CA certificate's DER with `(offset, byte)` pairs of
/// the input written over it.
pub fn fuzz_ca_cert(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let pem = match mode % 3 {
        0 => String::from_utf8_lossy(rest).into_owned(),
        1 => pem_of(rest),
        _ => {
            let mut der = base_der();
            for pair in rest.chunks_exact(3) {
                let at = usize::from(u16::from_le_bytes([pair[0], pair[1]])) % der.len();
                der[at] = pair[2];
            }
            pem_of(&der)
        }
    };
    check(&pem);
}

/// The properties of one `cert` value.
pub fn check(pem: &str) {
    let Ok(ca) = CaCert::from_pem(pem) else { return };
    let digest: String = Sha256::digest(&ca.der).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(ca.digest, digest, "{pem:?}");
    assert_eq!(CaCert::from_pem(&pem_of(&ca.der)).as_ref(), Ok(&ca), "{pem:?} does not read back");
    let written_at = |now: Timestamp| {
        let mut object = CaCertificate {
            id: None,
            cert: pem_of(&ca.der),
            cert_digest: None,
            tags: vec![],
            created_at: 0,
            updated_at: 0,
        };
        object.normalize(now).map(|()| object.cert_digest)
    };
    assert_eq!(written_at(ca.not_after), Ok(Some(ca.digest.clone())), "{pem:?} is refused at its notAfter");
    let late = written_at(ca.not_after.plus_secs(1)).expect_err("taken after its notAfter");
    assert!(late.field == "cert" && late.message.contains("certificate expired"), "{late:?}");
}

/// The DER of [`CA_PEM`].
pub fn base_der() -> Vec<u8> {
    let body: String = CA_PEM.lines().filter(|l| !l.starts_with("-----")).collect();
    B64.decode(body).unwrap_or_default()
}

/// `der` as a PEM certificate.
pub fn pem_of(der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}
