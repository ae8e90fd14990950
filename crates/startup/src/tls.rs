//! TLS on the listeners: a certificate chain and its private key from PEM files, served by
//! rustls (with ring, the provider reqwest already builds), and reloaded without a restart:
//! on SIGHUP, and when the files' contents change (checked every [`RELOAD_POLL`]). A new
//! file that cannot be used (unreadable, not PEM, a key that does not match the
//! certificate) keeps the certificate in service and logs a warning; connections already
//! open keep the certificate they were made with.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// How often the certificate files are read to see whether they changed.
pub const RELOAD_POLL: Duration = Duration::from_secs(2);

/// The ring provider, the one crypto stack of the process.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A listener's certificate, swapped in place when its files change.
pub struct ReloadingCert {
    listener: &'static str,
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' bytes in service, to notice a change.
    loaded: Mutex<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert").field("cert", &self.cert_path).field("key", &self.key_path).finish()
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))
}

/// Parses a chain and key; errors name the file, never its contents.
fn certified(cert_path: &Path, cert: &[u8], key_path: &Path, key: &[u8]) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{} is not a PEM certificate chain: {e}", cert_path.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no PEM certificate", cert_path.display()));
    }
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|e| format!("{} is not a PEM private key: {e}", key_path.display()))?;
    let certified = CertifiedKey::from_der(chain, key, &provider()).map_err(|e| {
        format!("{} and {} do not make a usable certificate: {e}", cert_path.display(), key_path.display())
    })?;
    Ok(certified)
}

impl ReloadingCert {
    /// Loads the files, or says which one cannot be used.
    pub fn load(listener: &'static str, cert_path: &Path, key_path: &Path) -> Result<Arc<Self>, String> {
        let cert = read(cert_path, "certificate")?;
        let key = read(key_path, "private key")?;
        let certified = certified(cert_path, &cert, key_path, &key)?;
        Ok(Arc::new(Self {
            listener,
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            current: RwLock::new(Arc::new(certified)),
            loaded: Mutex::new((cert, key)),
        }))
    }

    /// Reads the files again: `Ok(true)` when a new certificate is in service, `Ok(false)`
    /// when they did not change, `Err` (the old certificate stays) when they cannot be used.
    pub fn reload(&self) -> Result<bool, String> {
        let cert = read(&self.cert_path, "certificate")?;
        let key = read(&self.key_path, "private key")?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if loaded.0 == cert && loaded.1 == key {
            return Ok(false);
        }
        let certified = certified(&self.cert_path, &cert, &self.key_path, &key)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(certified);
        *loaded = (cert, key);
        Ok(true)
    }

    /// Reloads and logs the outcome.
    fn reload_and_log(&self) {
        match self.reload() {
            Ok(false) => {}
            Ok(true) => {
                tracing::info!(listener = self.listener, cert = %self.cert_path.display(), "TLS certificate reloaded")
            }
            Err(e) => tracing::warn!(
                listener = self.listener,
                error = %e,
                "the new TLS certificate cannot be used; the previous one stays in service"
            ),
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner())))
    }
}

/// An acceptor serving `cert`, offering `alpn` (e.g. `h2`, `http/1.1`) in that order.
pub fn acceptor(cert: &Arc<ReloadingCert>, alpn: &[&[u8]]) -> Result<TlsAcceptor, String> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(Arc::clone(cert) as Arc<dyn ResolvesServerCert>);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Reloads `certs` on SIGHUP and whenever their files change, until `stop` says so.
pub async fn follow(certs: Vec<Arc<ReloadingCert>>, mut stop: watch::Receiver<bool>) {
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(RELOAD_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let hup = async {
            match hangup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hup = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = tick.tick() => {}
            _ = hup => tracing::info!("SIGHUP: reading the TLS certificates again"),
            _ = stop.changed() => return,
        }
        for c in &certs {
            c.reload_and_log();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `name`, as PEM (certificate, key).
    fn self_signed(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap().self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn served(c: &ReloadingCert) -> Vec<u8> {
        c.current.read().unwrap().cert[0].to_vec()
    }

    #[test]
    fn a_changed_file_is_served_and_a_bad_one_keeps_the_old_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let (c1, k1) = self_signed("one.test");
        std::fs::write(&cert, &c1).unwrap();
        std::fs::write(&key, &k1).unwrap();
        let reloading = ReloadingCert::load("gateway", &cert, &key).unwrap();
        let first = served(&reloading);
        assert_eq!(reloading.reload(), Ok(false), "unchanged files change nothing");

        let (c2, k2) = self_signed("two.test");
        std::fs::write(&cert, &c2).unwrap();
        std::fs::write(&key, &k2).unwrap();
        assert_eq!(reloading.reload(), Ok(true));
        let second = served(&reloading);
        assert_ne!(first, second);

        // Not PEM, then a key of another certificate: refused, naming the file, the
        // certificate in service unchanged.
        std::fs::write(&cert, "not a certificate").unwrap();
        let e = reloading.reload().unwrap_err();
        assert!(e.contains("cert.pem"), "{e}");
        assert_eq!(served(&reloading), second);
        std::fs::write(&cert, &c1).unwrap();
        let e = reloading.reload().unwrap_err();
        assert!(e.contains("do not make a usable certificate"), "{e}");
        assert!(!e.contains("PRIVATE KEY"), "the key never appears in a message: {e}");
        assert_eq!(served(&reloading), second);
        std::fs::write(&key, &k1).unwrap();
        assert_eq!(reloading.reload(), Ok(true), "a good pair again is taken");
        assert_eq!(served(&reloading), first);
    }

    #[test]
    fn a_missing_or_empty_file_fails_the_start_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let e = ReloadingCert::load("API", &cert, &key).unwrap_err();
        assert!(e.contains("cannot read the certificate") && e.contains("cert.pem"), "{e}");
        std::fs::write(&cert, "").unwrap();
        std::fs::write(&key, self_signed("x").1).unwrap();
        let e = ReloadingCert::load("API", &cert, &key).unwrap_err();
        assert!(e.contains("holds no PEM certificate"), "{e}");
    }
}
