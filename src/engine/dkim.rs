//! DKIM keys and signers (RFC 6376; Ed25519 by RFC 8463): the key files of each local domain
//! in `DATA/dkim/DOMAIN/`, their selectors, the TXT records to publish, rotation, and the
//! [`Signers`] the delivery client uses. The cryptography and the signature itself are
//! `mail-auth`'s; this module only keeps the keys and says which one signs.
//!
//! Files: `DATA/dkim/DOMAIN/SELECTOR.rsa.pem` (PKCS#1 `RSA PRIVATE KEY`, 2048 bits) and
//! `DATA/dkim/DOMAIN/SELECTOR.ed25519.pem` (PKCS#8 `PRIVATE KEY`), each 0600 in a 0700
//! directory, written to a temporary name and renamed. A selector is dated: `pYYYYMMDD` for
//! RSA, `eYYYYMMDD` for Ed25519, with a letter `b`..`z` appended for a second one made the
//! same day. The greatest selector of each kind (they sort by date) is the active one; the
//! others are old: listed, to stay published until the admin removes them, never used.
//!
//! Signing (`Signers::for_domain`): relaxed/relaxed, the headers of [`SIGNED_HEADERS`]
//! (`From` listed twice, so no second `From` can be added), no `x=` and no `l=`.

use crate::engine::store::body::Body;
use base64::Engine as _;
use mail_auth::common::crypto::{DkimKey, Ed25519Key, RsaKey, Sha256};
use mail_auth::dkim::generate::DkimKeyPair;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer};
use std::collections::HashMap;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The header fields signed, in this order; `From` twice (oversigned).
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

/// Bits of a generated RSA key.
pub const RSA_BITS: usize = 2048;

/// The two kinds of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Algo {
    /// RSA 2048, `rsa-sha256`, selector `pYYYYMMDD`.
    Rsa,
    /// Ed25519, `ed25519-sha256`, selector `eYYYYMMDD`.
    Ed25519,
}

impl Algo {
    fn prefix(self) -> char {
        match self {
            Algo::Rsa => 'p',
            Algo::Ed25519 => 'e',
        }
    }

    fn ext(self) -> &'static str {
        match self {
            Algo::Rsa => "rsa",
            Algo::Ed25519 => "ed25519",
        }
    }

    /// The `k=` tag of the TXT record.
    pub fn k(self) -> &'static str {
        match self {
            Algo::Rsa => "rsa",
            Algo::Ed25519 => "ed25519",
        }
    }
}

/// Why a key could not be made, read or removed.
#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A key file does not hold a usable key.
    #[error("{path}: not a usable DKIM key: {why}")]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Key generation failed.
    #[error("cannot generate a DKIM key: {0}")]
    Generate(String),
    /// No key with this selector.
    #[error("{domain} has no DKIM selector `{selector}`")]
    NoSuchSelector {
        /// The domain.
        domain: String,
        /// The selector asked for.
        selector: String,
    },
    /// The selector is the one signing now.
    #[error(
        "`{selector}` is the active selector of {domain}: rotate first (`postern dkim rotate {domain}`)"
    )]
    Active {
        /// The domain.
        domain: String,
        /// The selector.
        selector: String,
    },
    /// The name is not a domain we can keep a key directory for.
    #[error("`{0}` is not a domain name")]
    BadDomain(String),
    /// Every selector of today is taken.
    #[error("too many DKIM keys made today for {0}")]
    TooManyToday(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> DkimError + '_ {
    move |source| DkimError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One key of a domain, as `postern dkim show` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// The selector (`p20261202`).
    pub name: String,
    /// RSA or Ed25519.
    pub algo: Algo,
    /// Whether it signs (the newest of its kind); old ones stay published until removed.
    pub active: bool,
    /// The public key, base64, for `p=`.
    pub public_key: String,
}

impl Selector {
    /// The DNS name of its TXT record: `SELECTOR._domainkey.DOMAIN`.
    pub fn dns_name(&self, domain: &str) -> String {
        format!("{}._domainkey.{domain}", self.name)
    }

    /// The TXT value to publish: `v=DKIM1; k=rsa; p=...`.
    pub fn txt(&self) -> String {
        format!("v=DKIM1; k={}; p={}", self.algo.k(), self.public_key)
    }
}

/// The keys of every domain, under `DATA/dkim`.
#[derive(Debug, Clone)]
pub struct KeyStore {
    /// `DATA/dkim`.
    dir: PathBuf,
}

impl KeyStore {
    /// The store of the data directory `data_dir`.
    pub fn new(data_dir: &Path) -> KeyStore {
        KeyStore {
            dir: data_dir.join("dkim"),
        }
    }

    fn domain_dir(&self, domain: &str) -> Result<PathBuf, DkimError> {
        let d = domain.trim_end_matches('.').to_ascii_lowercase();
        let ok = !d.is_empty()
            && !d.starts_with('.')
            && d.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
            && !d.contains("..");
        if !ok {
            return Err(DkimError::BadDomain(domain.to_string()));
        }
        Ok(self.dir.join(d))
    }

    /// The keys of `domain`, oldest first within each kind (RSA first).
    pub fn list(&self, domain: &str) -> Result<Vec<Selector>, DkimError> {
        let dir = self.domain_dir(domain)?;
        let mut found: Vec<(Algo, String, PathBuf)> = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        for e in entries {
            let e = e.map_err(io_err(&dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            for algo in [Algo::Rsa, Algo::Ed25519] {
                let suffix = format!(".{}.pem", algo.ext());
                if let Some(sel) = name.strip_suffix(&suffix)
                    && sel.starts_with(algo.prefix())
                {
                    found.push((algo, sel.to_string(), e.path()));
                }
            }
        }
        found.sort();
        let mut out = Vec::new();
        for (i, (algo, name, path)) in found.iter().enumerate() {
            let newest = found.get(i + 1).is_none_or(|(a, _, _)| a != algo);
            let key = read_key(*algo, path)?;
            out.push(Selector {
                name: name.clone(),
                algo: *algo,
                active: newest,
                public_key: public_key(&key),
            });
        }
        Ok(out)
    }

    /// Makes the keys `domain` lacks: an RSA key, and an Ed25519 key when `ed25519`.
    /// Returns the selectors made.
    pub fn ensure(&self, domain: &str, ed25519: bool) -> Result<Vec<String>, DkimError> {
        let _lock = self.lock()?;
        let have = self.list(domain)?;
        let mut made = Vec::new();
        for (algo, wanted) in [(Algo::Rsa, true), (Algo::Ed25519, ed25519)] {
            if wanted && !have.iter().any(|s| s.algo == algo) {
                made.push(self.generate(domain, algo, &today())?);
            }
        }
        Ok(made)
    }

    /// Makes a new RSA key (and Ed25519 key when `ed25519`) that signs from now on; the old
    /// ones stay, listed as old. Returns the new selectors.
    pub fn rotate(&self, domain: &str, ed25519: bool) -> Result<Vec<String>, DkimError> {
        let _lock = self.lock()?;
        let mut made = vec![self.generate(domain, Algo::Rsa, &today())?];
        if ed25519 {
            made.push(self.generate(domain, Algo::Ed25519, &today())?);
        }
        Ok(made)
    }

    /// Removes an old key; the active one of its kind is refused.
    pub fn remove(&self, domain: &str, selector: &str) -> Result<(), DkimError> {
        let dir = self.domain_dir(domain)?;
        let sel = self
            .list(domain)?
            .into_iter()
            .find(|s| s.name == selector)
            .ok_or_else(|| DkimError::NoSuchSelector {
                domain: domain.to_string(),
                selector: selector.to_string(),
            })?;
        if sel.active {
            return Err(DkimError::Active {
                domain: domain.to_string(),
                selector: selector.to_string(),
            });
        }
        let path = dir.join(format!("{}.{}.pem", sel.name, sel.algo.ext()));
        std::fs::remove_file(&path).map_err(io_err(&path))
    }

    /// `DATA/dkim/.lock`, held while keys are made: the server (at a reload) and the command
    /// line (`domain add`) check and make a domain's missing key one after the other, so it
    /// is made once.
    fn lock(&self) -> Result<std::fs::File, DkimError> {
        std::fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err(&self.dir))?;
        let path = self.dir.join(".lock");
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io_err(&path))?;
        f.lock().map_err(io_err(&path))?;
        Ok(f)
    }

    /// Generates a key of `algo` under the first free selector of `date` (`YYYYMMDD`).
    fn generate(&self, domain: &str, algo: Algo, date: &str) -> Result<String, DkimError> {
        let dir = self.domain_dir(domain)?;
        for d in [&self.dir, &dir] {
            std::fs::create_dir_all(d).map_err(io_err(d))?;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))
                .map_err(io_err(d))?;
        }
        let pem = match algo {
            Algo::Rsa => {
                let pair = DkimKeyPair::generate_rsa(RSA_BITS)
                    .map_err(|e| DkimError::Generate(e.to_string()))?;
                to_pem("RSA PRIVATE KEY", pair.private_key())
            }
            Algo::Ed25519 => {
                let der =
                    Ed25519Key::generate_pkcs8().map_err(|e| DkimError::Generate(e.to_string()))?;
                to_pem("PRIVATE KEY", &der)
            }
        };
        // A key file is never replaced: another process (the CLI beside a running server)
        // that made one under the same selector keeps it, and this one takes the next.
        let base = format!("{}{date}", algo.prefix());
        let candidates = std::iter::once(base.clone())
            .chain((b'b'..=b'z').map(|c| format!("{base}{}", c as char)));
        for selector in candidates {
            let path = dir.join(format!("{selector}.{}.pem", algo.ext()));
            if path.exists() {
                continue;
            }
            if write_private(&path, pem.as_bytes())? {
                return Ok(selector);
            }
        }
        Err(DkimError::TooManyToday(domain.to_string()))
    }

    /// Makes the missing keys of every domain in `domains` and loads the active ones.
    /// Returns the signers, the selectors made (domain, selector) and the problems met (a
    /// domain with a problem is not signed for).
    pub fn prepare(&self, domains: &[String], ed25519: bool) -> Prepared {
        let mut p = Prepared::default();
        let mut by_domain = HashMap::new();
        for domain in domains {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            match self.ensure(&domain, ed25519) {
                Ok(made) => p.made.extend(made.into_iter().map(|s| (domain.clone(), s))),
                Err(e) => {
                    p.problems.push(e.to_string());
                    continue;
                }
            }
            match self.load(&domain, ed25519) {
                Ok(keys) => {
                    by_domain.insert(domain, Arc::new(keys));
                }
                Err(e) => p.problems.push(e.to_string()),
            }
        }
        p.signers = Signers {
            by_domain: Arc::new(by_domain),
        };
        p
    }

    /// The active keys of `domain` (the Ed25519 one only when `ed25519`).
    fn load(&self, domain: &str, ed25519: bool) -> Result<Vec<DomainKey>, DkimError> {
        let dir = self.domain_dir(domain)?;
        let mut out = Vec::new();
        for s in self.list(domain)? {
            if !s.active || (s.algo == Algo::Ed25519 && !ed25519) {
                continue;
            }
            let path = dir.join(format!("{}.{}.pem", s.name, s.algo.ext()));
            let key = read_key(s.algo, &path)?;
            let signer = DkimSigner::from_key(key)
                .domain(domain)
                .selector(&s.name)
                .headers(SIGNED_HEADERS.iter().copied())
                .header_canonicalization(Canonicalization::Relaxed)
                .body_canonicalization(Canonicalization::Relaxed);
            out.push(DomainKey {
                selector: s.name,
                signer,
            });
        }
        Ok(out)
    }
}

/// What [`KeyStore::prepare`] did.
#[derive(Default)]
pub struct Prepared {
    /// The signers of the domains whose keys could be loaded.
    pub signers: Signers,
    /// Keys made: (domain, selector).
    pub made: Vec<(String, String)>,
    /// What went wrong, one sentence each.
    pub problems: Vec<String>,
}

/// One active key of a domain, ready to sign.
pub struct DomainKey {
    /// Its selector.
    pub selector: String,
    /// mail-auth's signer for it.
    pub signer: DkimSigner<DkimKey, Done>,
}

/// The active keys of every local domain; made at start and at each reload.
#[derive(Default, Clone)]
pub struct Signers {
    /// Lower-case domain to its active keys (RSA first).
    by_domain: Arc<HashMap<String, Arc<Vec<DomainKey>>>>,
}

impl Signers {
    /// The keys that sign mail whose `From:` is in `domain`, if it is a local domain with keys.
    pub fn for_domain(&self, domain: &str) -> Option<Arc<Vec<DomainKey>>> {
        self.by_domain
            .get(&domain.trim_end_matches('.').to_ascii_lowercase())
            .cloned()
    }

    /// Whether no domain has a key.
    pub fn is_empty(&self) -> bool {
        self.by_domain.is_empty()
    }
}

impl std::fmt::Debug for Signers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_domain.keys()).finish()
    }
}

/// The domain of the first address of the `From:` field of the message's header section
/// (read from at most the first 64 KiB), lower case.
pub fn from_domain(message: &Body) -> Option<String> {
    let head = message.head(64 * 1024).ok()?;
    // The From field alone is parsed (the last one, as a parser of the whole section takes).
    let section = crate::engine::store::body::header_section(&head);
    let one = crate::engine::store::body::field_alone(section, "From")?;
    let parsed = mail_parser::MessageParser::new().parse_headers(&one[..])?;
    let addr = parsed.from()?.first()?.address()?.to_string();
    let (_, domain) = addr.rsplit_once('@')?;
    Some(domain.trim_end_matches('.').to_ascii_lowercase())
}

/// Today in UTC as `YYYYMMDD`.
fn today() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}{:02}{:02}", d.year(), d.month() as u8, d.day())
}

fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Writes `bytes` to `path` mode 0600 unless `path` exists: to a temporary name, synced,
/// then linked to `path` (which fails if it exists). Whether it was written.
fn write_private(path: &Path, bytes: &[u8]) -> Result<bool, DkimError> {
    let tmp = path.with_extension(format!("pem.{}.tmp", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    let written = (|| {
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    })()
    .map_err(io_err(path));
    let _ = std::fs::remove_file(&tmp);
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    written
}

fn read_key(algo: Algo, path: &Path) -> Result<DkimKey, DkimError> {
    let text = std::fs::read(path).map_err(io_err(path))?;
    let bad = |why: String| DkimError::BadKey {
        path: path.to_path_buf(),
        why,
    };
    match algo {
        Algo::Rsa => {
            let der = match PrivatePkcs1KeyDer::from_pem_slice(&text) {
                Ok(k) => PrivateKeyDer::Pkcs1(k),
                Err(_) => PrivateKeyDer::Pkcs8(
                    PrivatePkcs8KeyDer::from_pem_slice(&text).map_err(|e| bad(e.to_string()))?,
                ),
            };
            Ok(DkimKey::Rsa(
                RsaKey::<Sha256>::from_key_der(der).map_err(|e| bad(e.to_string()))?,
            ))
        }
        Algo::Ed25519 => {
            let der = PrivatePkcs8KeyDer::from_pem_slice(&text).map_err(|e| bad(e.to_string()))?;
            Ok(DkimKey::Ed25519(
                Ed25519Key::from_pkcs8_maybe_unchecked_der(der.secret_pkcs8_der())
                    .map_err(|e| bad(e.to_string()))?,
            ))
        }
    }
}

/// The `p=` value: for RSA the SubjectPublicKeyInfo (RFC 6376 3.6.1), for Ed25519 the raw
/// 32 octets (RFC 8463 4.2), base64.
fn public_key(key: &DkimKey) -> String {
    let der = match key {
        DkimKey::Rsa(k) => rsa_spki(&k.public_key()),
        DkimKey::Ed25519(k) => k.public_key(),
    };
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// Wraps a PKCS#1 `RSAPublicKey` in a SubjectPublicKeyInfo with the rsaEncryption algorithm.
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let n = content.len();
        if n < 0x80 {
            out.push(n as u8);
        } else {
            let bytes: Vec<u8> = n
                .to_be_bytes()
                .into_iter()
                .skip_while(|&b| b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(content);
        out
    }
    // SEQUENCE { OID 1.2.840.113549.1.1.1, NULL }
    let alg: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0u8];
    bits.extend_from_slice(pkcs1);
    let mut inner = alg.to_vec();
    inner.extend(tlv(0x03, &bits));
    tlv(0x30, &inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o777
    }

    #[test]
    fn keys_are_made_private_and_listed_with_their_records() {
        let tmp = tempfile::tempdir().unwrap();
        let store = KeyStore::new(tmp.path());
        let made = store.ensure("Example.COM", true).unwrap();
        let day = today();
        assert_eq!(made, vec![format!("p{day}"), format!("e{day}")]);
        assert!(store.ensure("example.com", true).unwrap().is_empty());
        assert_eq!(mode(&tmp.path().join("dkim")), 0o700);
        let dir = tmp.path().join("dkim/example.com");
        assert_eq!(mode(&dir), 0o700);
        for f in [format!("p{day}.rsa.pem"), format!("e{day}.ed25519.pem")] {
            assert_eq!(mode(&dir.join(&f)), 0o600, "{f}");
        }
        let list = store.list("example.com").unwrap();
        assert_eq!(list.len(), 2);
        assert!(list.iter().all(|s| s.active));
        let rsa = &list[0];
        assert_eq!(
            rsa.dns_name("example.com"),
            format!("p{day}._domainkey.example.com")
        );
        assert!(
            rsa.txt()
                .starts_with("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A")
        );
        let ed = &list[1];
        assert!(ed.txt().starts_with("v=DKIM1; k=ed25519; p="));
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&ed.public_key)
            .unwrap();
        assert_eq!(raw.len(), 32);
        let p = store.prepare(&["example.com".into()], true);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(p.signers.for_domain("EXAMPLE.com.").unwrap().len(), 2);
        let p = store.prepare(&["example.com".into()], false);
        assert_eq!(p.signers.for_domain("example.com").unwrap().len(), 1);
        assert!(p.signers.for_domain("other.org").is_none());
    }

    #[test]
    fn rotation_keeps_the_old_key_listed_and_refuses_to_remove_the_active_one() {
        let tmp = tempfile::tempdir().unwrap();
        let store = KeyStore::new(tmp.path());
        let day = today();
        store.ensure("example.com", false).unwrap();
        let new = store.rotate("example.com", false).unwrap();
        assert_eq!(new, vec![format!("p{day}b")]);
        let list = store.list("example.com").unwrap();
        let names: Vec<(&str, bool)> = list.iter().map(|s| (s.name.as_str(), s.active)).collect();
        assert_eq!(
            names,
            vec![(format!("p{day}").as_str(), false), (new[0].as_str(), true)]
        );
        assert_ne!(list[0].public_key, list[1].public_key);
        // The new key is the one that signs.
        let p = store.prepare(&["example.com".into()], false);
        let keys = p.signers.for_domain("example.com").unwrap();
        assert_eq!(keys[0].selector, new[0]);
        assert!(matches!(
            store.remove("example.com", &new[0]),
            Err(DkimError::Active { .. })
        ));
        assert!(matches!(
            store.remove("example.com", "p19990101"),
            Err(DkimError::NoSuchSelector { .. })
        ));
        store.remove("example.com", &format!("p{day}")).unwrap();
        let list = store.list("example.com").unwrap();
        assert_eq!(list.len(), 1);
        assert!(list[0].active);
        assert!(matches!(store.list("../etc"), Err(DkimError::BadDomain(_))));
    }

    #[test]
    fn the_from_domain_is_read_from_the_header_section() {
        let b = Body::from_bytes(
            b"Subject: x\r\nFrom: \"A, B\" <a@Mail.Example.ORG>\r\n\r\nFrom: b@c.d\r\n".to_vec(),
        );
        assert_eq!(from_domain(&b).as_deref(), Some("mail.example.org"));
        let b = Body::from_bytes(b"Subject: x\r\n\r\nFrom: b@c.d\r\n".to_vec());
        assert_eq!(from_domain(&b), None);
    }
}
