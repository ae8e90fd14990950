//! What the gateway accepts as a CA certificate object's `cert`: PEM holding exactly one
//! X.509 certificate that rustls can use as a trust anchor and that says it is a CA
//! (basicConstraints `cA = TRUE`, as Kong requires). Pure: bytes in, DER, digest and the end
//! of its validity out; whether that end has passed is the caller's to ask, with its clock.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::SectionKind;
use sha2::{Digest, Sha256};

use crate::Timestamp;

/// A CA certificate that passed every check: its DER, the hex SHA-256 of the DER (Kong's
/// `cert_digest`) and its validity's `notAfter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaCert {
    pub der: Vec<u8>,
    pub digest: String,
    /// The last second the certificate is valid (`notAfter`, inclusive as RFC 5280 says).
    pub not_after: Timestamp,
}

impl CaCert {
    /// Parses `pem`; the error is a sentence for the `cert` field.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let begins = pem.lines().filter(|l| l.trim_start().starts_with("-----BEGIN ")).count();
        if begins == 0 {
            return Err("must be a PEM certificate (-----BEGIN CERTIFICATE-----)".into());
        }
        if begins > 1 {
            return Err(format!("must hold exactly one certificate; found {begins} PEM sections"));
        }
        let mut reader = pem.as_bytes();
        let der = match rustls_pki_types::pem::from_buf(&mut reader) {
            Ok(Some((SectionKind::Certificate, der))) => der,
            Ok(Some((kind, _))) => return Err(format!("must be a certificate, not a {}", section_name(kind))),
            Ok(None) => return Err("must be a PEM certificate (-----BEGIN CERTIFICATE-----)".into()),
            Err(e) => return Err(format!("is not valid PEM: {e}")),
        };
        let cert = CertificateDer::from(der.as_slice());
        webpki::EndEntityCert::try_from(&cert).map_err(|e| format!("is not a valid X.509 certificate: {e}"))?;
        webpki::anchor_from_trusted_cert(&cert).map_err(|e| format!("cannot be used as a trust anchor: {e}"))?;
        match basic_constraints_ca(&der) {
            Some(true) => {}
            _ => {
                return Err(
                    "is not a CA certificate: it lacks the basicConstraints extension with CA set to true".into()
                );
            }
        }
        // webpki keeps the validity unparsed until it verifies a chain; read it here.
        let not_after = not_after(&der)
            .ok_or("is not a valid X.509 certificate: its validity's notAfter is not a UTCTime or GeneralizedTime")?;
        let digest = Sha256::digest(&der).iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self { der, digest, not_after })
    }

    /// Whether the certificate's validity ended before `now` (Kong refuses such a CA
    /// certificate when it is written).
    pub fn expired_at(&self, now: Timestamp) -> bool {
        self.not_after < now
    }
}

fn section_name(kind: SectionKind) -> &'static str {
    match kind {
        SectionKind::Certificate => "certificate",
        SectionKind::PublicKey => "public key",
        SectionKind::Crl => "certificate revocation list",
        SectionKind::Csr => "certificate request",
        SectionKind::EchConfigList => "ECH configuration",
        _ => "private key",
    }
}

/// One DER element: its tag, its contents, and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        (rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const EXTENSIONS: u8 = 0xa3;
const OID: u8 = 0x06;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
/// 2.5.29.19, basicConstraints.
const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];

/// The certificate's `notAfter`; `None` when the DER is not a certificate's or the time is
/// not one RFC 5280 allows (`YYMMDDHHMMSSZ` or `YYYYMMDDHHMMSSZ`).
fn not_after(der: &[u8]) -> Option<Timestamp> {
    let (SEQUENCE, cert, _) = tlv(der)? else { return None };
    let (SEQUENCE, tbs, _) = tlv(cert)? else { return None };
    // [0] version (absent in v1), serial, signature, issuer, then validity.
    let (tag, _, rest) = tlv(tbs)?;
    let at_signature = if tag == VERSION { tlv(rest)?.2 } else { rest };
    let (_, _, at_issuer) = tlv(at_signature)?;
    let (_, _, at_validity) = tlv(at_issuer)?;
    let (SEQUENCE, validity, _) = tlv(at_validity)? else { return None };
    let (_, _, at_not_after) = tlv(validity)?;
    let (tag, time, _) = tlv(at_not_after)?;
    der_time(tag, time)
}

/// A UTCTime (years 1950-2049, RFC 5280's window) or GeneralizedTime in Zulu, whole seconds.
fn der_time(tag: u8, text: &[u8]) -> Option<Timestamp> {
    let (year, rest) = match (tag, text.len()) {
        (UTC_TIME, 13) => {
            let yy = i32::from(two_digits(&text[..2])?);
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        (GENERALIZED_TIME, 15) => {
            (i32::from(two_digits(&text[..2])?) * 100 + i32::from(two_digits(&text[2..4])?), &text[4..])
        }
        _ => return None,
    };
    if rest[10] != b'Z' {
        return None;
    }
    let [month, day, hour, minute, second] = [0, 2, 4, 6, 8].map(|i| two_digits(&rest[i..i + 2]));
    let date = time::Date::from_calendar_date(year, time::Month::try_from(month?).ok()?, day?).ok()?;
    let time = time::Time::from_hms(hour?, minute?, second?).ok()?;
    Some(Timestamp(time::PrimitiveDateTime::new(date, time).assume_utc().unix_timestamp()))
}

fn two_digits(b: &[u8]) -> Option<u8> {
    match b {
        [t @ b'0'..=b'9', u @ b'0'..=b'9'] => Some((t - b'0') * 10 + (u - b'0')),
        _ => None,
    }
}

/// The `cA` flag of the certificate's basicConstraints; `None` when it has no such extension
/// (or the DER is not a certificate's). webpki has parsed the certificate already; this reads
/// the one field it keeps to itself.
fn basic_constraints_ca(der: &[u8]) -> Option<bool> {
    let (SEQUENCE, cert, _) = tlv(der)? else { return None };
    let (SEQUENCE, mut tbs, _) = tlv(cert)? else { return None };
    // version, serial, signature, issuer, validity, subject, spki, [1], [2], then [3] extensions.
    let extensions = loop {
        let (tag, value, rest) = tlv(tbs)?;
        if tag == EXTENSIONS {
            break value;
        }
        tbs = rest;
    };
    let (SEQUENCE, mut list, _) = tlv(extensions)? else { return None };
    while !list.is_empty() {
        let (SEQUENCE, ext, rest) = tlv(list)? else { return None };
        list = rest;
        let (OID, oid, mut ext) = tlv(ext)? else { return None };
        if oid != BASIC_CONSTRAINTS {
            continue;
        }
        let (mut tag, mut value, after) = tlv(ext)?;
        if tag == BOOLEAN {
            // `critical`; the value follows.
            ext = after;
            (tag, value, _) = tlv(ext)?;
        }
        if tag != OCTET_STRING {
            return None;
        }
        let (SEQUENCE, constraints, _) = tlv(value)? else { return None };
        // `cA BOOLEAN DEFAULT FALSE`: absent means false.
        return Some(matches!(tlv(constraints), Some((BOOLEAN, [0xff], _))));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca(is_ca: bool) -> String {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, "test");
        if is_ca {
            p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().pem()
    }

    /// A CA valid until `not_after` (Unix seconds).
    fn ca_until(not_after: i64) -> String {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.not_before = time::OffsetDateTime::from_unix_timestamp(0).unwrap();
        p.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).unwrap();
        p.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap().pem()
    }

    #[test]
    fn not_after_is_read_from_utc_and_generalized_times() {
        // rcgen writes UTCTime before 2050 and GeneralizedTime from then on (RFC 5280).
        for t in [1_893_455_999, 2_524_607_999, 2_524_608_000, 64_060_588_799] {
            let c = CaCert::from_pem(&ca_until(t)).unwrap();
            assert_eq!(c.not_after, Timestamp(t));
            assert!(!c.expired_at(Timestamp(t)), "valid through its last second");
            assert!(c.expired_at(Timestamp(t + 1)));
        }
        // rcgen's default end (4096-01-01).
        assert_eq!(CaCert::from_pem(&ca(true)).unwrap().not_after, Timestamp(67_090_118_400));
    }

    #[test]
    fn der_times_outside_rfc_5280_are_refused() {
        assert_eq!(der_time(UTC_TIME, b"491231235959Z"), Some(Timestamp(2_524_607_999)));
        assert_eq!(der_time(UTC_TIME, b"500101000000Z"), Some(Timestamp(-631_152_000)));
        assert_eq!(der_time(GENERALIZED_TIME, b"20500101000000Z"), Some(Timestamp(2_524_608_000)));
        for (tag, text) in [
            (UTC_TIME, &b"491231235959"[..]),
            (UTC_TIME, b"4912312359Z"),
            (UTC_TIME, b"491231235959+"),
            (UTC_TIME, b"491331235959Z"),
            (UTC_TIME, b"490230235959Z"),
            (UTC_TIME, b"491231245959Z"),
            (UTC_TIME, b"4912312359-9Z"),
            (GENERALIZED_TIME, b"491231235959Z"),
            (GENERALIZED_TIME, b"20491231235959.5Z"),
            (0x04, b"20491231235959Z"),
        ] {
            assert_eq!(der_time(tag, text), None, "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn a_ca_is_taken_with_the_digest_of_its_der() {
        let pem = ca(true);
        let c = CaCert::from_pem(&pem).unwrap();
        let der = rustls_pki_types::pem::from_buf(&mut pem.as_bytes()).unwrap().unwrap().1;
        assert_eq!(c.der, der);
        assert_eq!(c.digest.len(), 64);
        assert_eq!(c.digest, Sha256::digest(&der).iter().map(|b| format!("{b:02x}")).collect::<String>());
    }

    #[test]
    fn anything_but_one_ca_certificate_is_refused_with_a_reason() {
        let err = |pem: &str| CaCert::from_pem(pem).unwrap_err();
        assert!(err("hello").contains("must be a PEM certificate"), "{}", err("hello"));
        assert!(err(&format!("{}{}", ca(true), ca(true))).contains("exactly one"));
        assert!(err(&ca(false)).contains("is not a CA certificate"), "{}", err(&ca(false)));
        let key = rcgen::KeyPair::generate().unwrap().serialize_pem();
        assert!(err(&key).contains("not a private key"), "{}", err(&key));
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(err(garbage).contains("not a valid X.509 certificate"), "{}", err(garbage));
        let truncated = ca(true).lines().take(3).collect::<Vec<_>>().join("\n");
        assert!(err(&truncated).contains("not valid PEM"), "{}", err(&truncated));
    }
}
