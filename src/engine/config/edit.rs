//! Changing the configuration file: the one way `postern config|domain|account|access` and the
//! desktop dialogs write it.
//!
//! [`edit`] holds `<file>.lock` so two writers cannot interleave, loads the file (creating it
//! with the defaults when missing), runs the change and saves atomically with `.bak`; a file
//! that does not load is reported and left as it is. The domain, account and relay-user
//! operations are built on it, with their rules (a domain with accounts cannot be removed, an
//! account needs a local domain, ...) as [`EditError`] variants, so front ends match on them
//! and word them as they like.

use super::{Account, Config, ConfigError, FieldError, keys, normalize_address, normalize_domain};
use crate::engine::store::password;
use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};

/// Why a configuration change was not made. Nothing was written in any case.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The file's directory could not be created.
    #[error("cannot create {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The lock file could not be opened.
    #[error("cannot open {}", path.display())]
    OpenLock {
        /// `<file>.lock`.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The lock could not be taken.
    #[error("cannot lock {}", path.display())]
    Lock {
        /// `<file>.lock`.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file could not be read, parsed, validated or written (errors keyed by file, line
    /// and field).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A `KEY=VALUE` names no setting, or its value does not fit.
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    /// An argument of `config set` has no `=`.
    #[error("`{0}` is not KEY=VALUE")]
    NotAssignment(String),
    /// The change was refused field by field (the desktop dialogs show each beside its field).
    #[error("{} setting(s) need fixing", .0.len())]
    Fields(Vec<FieldError>),
    /// `domain add` of something that is not a domain name (the message says why).
    #[error("{0}")]
    BadDomain(String),
    /// `domain add` of a domain that is already local.
    #[error("domain {0} already exists")]
    DomainExists(String),
    /// `domain remove` of a domain that is not local.
    #[error("no local domain {0}")]
    NoSuchDomain(String),
    /// `domain remove` of a domain that still has accounts.
    #[error("domain {domain} still has {accounts} account(s); remove them first")]
    DomainHasAccounts {
        /// The domain.
        domain: String,
        /// How many accounts it has.
        accounts: usize,
    },
    /// `account add` of an address that already has an account.
    #[error("account {0} already exists")]
    AccountExists(String),
    /// `account add` in a domain that is not local.
    #[error("{0} is not a local domain (add it first: postern domain add {0})")]
    NotLocalDomain(String),
    /// `account add` of something that is not `user@domain` (as given).
    #[error("`{0}` is not user@domain")]
    NotAnAddress(String),
    /// `account passwd|remove` of an unknown account.
    #[error("no account {0}")]
    NoSuchAccount(String),
    /// A user name that cannot be the local part of an address.
    #[error("`{0}` is not a valid user name")]
    BadUser(String),
    /// A password that is empty.
    #[error("the password is empty")]
    EmptyPassword,
    /// A relay user name that is empty.
    #[error("the user name is empty")]
    EmptyUser,
}

/// Reads the configuration for display: the defaults when the file does not exist yet.
pub fn read(path: &Path) -> Result<Config, ConfigError> {
    if path.exists() {
        super::load(path)
    } else {
        Ok(Config::default())
    }
}

/// Runs `change` on the configuration and saves the result, holding `<file>.lock` so two
/// writers cannot interleave. A broken file is reported and left as it is; when `change`
/// fails nothing is written.
pub fn edit<T>(
    path: &Path,
    change: impl FnOnce(&mut Config) -> Result<T, EditError>,
) -> Result<T, EditError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| EditError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let lock_path = super::file::with_suffix(path, ".lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| EditError::OpenLock {
            path: lock_path.clone(),
            source,
        })?;
    lock.lock().map_err(|source| EditError::Lock {
        path: lock_path.clone(),
        source,
    })?;
    let mut cfg = super::load_or_create(path)?;
    let out = change(&mut cfg)?;
    super::save(path, &cfg)?;
    Ok(out)
}

/// `config set KEY=VALUE...`: all assignments or none.
pub fn config_set(path: &Path, assignments: &[String]) -> Result<(), EditError> {
    let pairs = assignments
        .iter()
        .map(|a| keys::split_assignment(a).ok_or_else(|| EditError::NotAssignment(a.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    edit(path, |cfg| {
        *cfg = keys::set(cfg, &pairs)?;
        Ok(())
    })
}

/// Adds a local domain.
pub fn domain_add(path: &Path, domain: &str) -> Result<(), EditError> {
    edit(path, |cfg| add_domain(cfg, domain).map(drop))
}

/// Removes a local domain; refused while it still has accounts.
pub fn domain_remove(path: &Path, domain: &str) -> Result<(), EditError> {
    edit(path, |cfg| remove_domain(cfg, domain))
}

/// Adds an account in a local domain; the password is stored as an argon2id hash.
pub fn account_add(path: &Path, address: &str, pass: &str) -> Result<(), EditError> {
    check_password(pass)?;
    let hash = password::hash(pass);
    edit(path, |cfg| add_account(cfg, address, hash).map(drop))
}

/// Sets an account's password (stored as an argon2id hash).
pub fn account_passwd(path: &Path, address: &str, pass: &str) -> Result<(), EditError> {
    check_password(pass)?;
    let hash = password::hash(pass);
    edit(path, |cfg| set_password(cfg, address, hash))
}

/// `account quota`: sets an account's Max Account Size (octets; 0 = unlimited); a size the
/// validation refuses (non-zero below 1K) is reported with its field and nothing is written.
pub fn account_quota(path: &Path, address: &str, max_size: u64) -> Result<(), EditError> {
    edit(path, |cfg| set_max_size(cfg, address, max_size))
}

/// Removes an account (the mailbox on disk is kept).
pub fn account_remove(path: &Path, address: &str) -> Result<(), EditError> {
    edit(path, |cfg| remove_account(cfg, address))
}

// The rules of the domain and account lists, on a configuration in memory: what the commands
// above apply to the file, and what the Domains & Accounts dialog applies to its draft.

/// Adds `domain` (normalised, which is returned) to the local domains.
pub fn add_domain(cfg: &mut Config, domain: &str) -> Result<String, EditError> {
    let d = normalize_domain(domain.trim());
    if let Some(why) = super::validate::domain_problem(&d) {
        return Err(EditError::BadDomain(why));
    }
    if cfg.is_local_domain(&d) {
        return Err(EditError::DomainExists(d));
    }
    cfg.domains.push(d.clone());
    Ok(d)
}

/// Removes a local domain; refused while it still has accounts.
pub fn remove_domain(cfg: &mut Config, domain: &str) -> Result<(), EditError> {
    let d = normalize_domain(domain);
    if !cfg.is_local_domain(&d) {
        return Err(EditError::NoSuchDomain(d));
    }
    let n = accounts_of(cfg, &d).count();
    if n > 0 {
        return Err(EditError::DomainHasAccounts {
            domain: d,
            accounts: n,
        });
    }
    cfg.domains.retain(|x| normalize_domain(x) != d);
    Ok(())
}

/// The accounts of local domain `domain`.
pub fn accounts_of<'a>(
    cfg: &'a Config,
    domain: &str,
) -> impl Iterator<Item = &'a Account> + use<'a> {
    let suffix = format!("@{}", normalize_domain(domain));
    cfg.accounts
        .iter()
        .filter(move |a| a.address.ends_with(&suffix))
}

/// Adds an account (its address normalised, which is returned) with an argon2id `hash`.
pub fn add_account(cfg: &mut Config, address: &str, hash: String) -> Result<String, EditError> {
    let a = normalize_address(address.trim());
    if cfg.account(&a).is_some() {
        return Err(EditError::AccountExists(a));
    }
    match a.rsplit_once('@') {
        Some((user, _)) if !super::validate::is_local_part(user) => {
            return Err(EditError::BadUser(user.to_string()));
        }
        Some((_, d)) if cfg.is_local_domain(d) => {}
        Some((_, d)) => return Err(EditError::NotLocalDomain(d.to_string())),
        None => return Err(EditError::NotAnAddress(address.to_string())),
    }
    cfg.accounts.push(Account {
        address: a.clone(),
        password: hash,
        max_size: 0,
    });
    Ok(a)
}

/// Gives an account a new argon2id `hash`.
pub fn set_password(cfg: &mut Config, address: &str, hash: String) -> Result<(), EditError> {
    let a = normalize_address(address);
    let acc = cfg
        .accounts
        .iter_mut()
        .find(|x| x.address == a)
        .ok_or(EditError::NoSuchAccount(a))?;
    acc.password = hash;
    Ok(())
}

/// Sets an account's Max Account Size (octets; 0 = unlimited).
pub fn set_max_size(cfg: &mut Config, address: &str, max_size: u64) -> Result<(), EditError> {
    let a = normalize_address(address);
    let acc = cfg
        .accounts
        .iter_mut()
        .find(|x| x.address == a)
        .ok_or(EditError::NoSuchAccount(a))?;
    acc.max_size = max_size;
    Ok(())
}

/// Removes an account.
pub fn remove_account(cfg: &mut Config, address: &str) -> Result<(), EditError> {
    let a = normalize_address(address);
    let before = cfg.accounts.len();
    cfg.accounts.retain(|x| x.address != a);
    if cfg.accounts.len() == before {
        return Err(EditError::NoSuchAccount(a));
    }
    Ok(())
}

/// Outgoing SMTP Access Control's "Allow Only The Following": the one user name and password
/// (hashed) that may relay; turns "Allow any account's login details" off.
pub fn relay_user(path: &Path, user: &str, pass: &str) -> Result<(), EditError> {
    check_password(pass)?;
    if user.trim().is_empty() {
        return Err(EditError::EmptyUser);
    }
    let hash = password::hash(pass);
    edit(path, |cfg| {
        let sa = &mut cfg.access.smtp_auth;
        sa.allow_any_account = false;
        sa.only_user = user.trim().to_string();
        sa.only_password = hash;
        Ok(())
    })
}

/// Relay mode's login at the relay host. The password is kept as given (it must be sent),
/// in the private config file; it never has to appear on a command line.
pub fn relay_login(path: &Path, user: &str, pass: &str) -> Result<(), EditError> {
    check_password(pass)?;
    if user.trim().is_empty() {
        return Err(EditError::EmptyUser);
    }
    edit(path, |cfg| {
        let r = &mut cfg.outgoing_mails.relay;
        r.username = user.trim().to_string();
        r.password = pass.to_string();
        Ok(())
    })
}

/// The rule for a new password: not empty.
pub fn check_password(p: &str) -> Result<(), EditError> {
    if p.is_empty() {
        return Err(EditError::EmptyPassword);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_hold_on_a_draft_in_memory() {
        let mut cfg = Config::default();
        assert_eq!(add_domain(&mut cfg, " Corp.TEST. ").unwrap(), "corp.test");
        assert!(matches!(
            add_domain(&mut cfg, "intranet"),
            Err(EditError::BadDomain(_))
        ));
        assert!(matches!(
            add_domain(&mut cfg, "bad domain.test"),
            Err(EditError::BadDomain(_))
        ));
        assert!(matches!(
            add_account(&mut cfg, "a b@corp.test", "$argon2id$x".into()),
            Err(EditError::BadUser(u)) if u == "a b"
        ));
        assert_eq!(
            add_account(&mut cfg, "Eve@Corp.test", "$argon2id$x".into()).unwrap(),
            "eve@corp.test"
        );
        assert_eq!(accounts_of(&cfg, "CORP.test").count(), 1);
        assert!(matches!(
            remove_domain(&mut cfg, "corp.test"),
            Err(EditError::DomainHasAccounts { accounts: 1, .. })
        ));
        set_password(&mut cfg, "EVE@corp.test", "$argon2id$y".into()).unwrap();
        assert_eq!(cfg.accounts[0].password, "$argon2id$y");
        remove_account(&mut cfg, "eve@corp.test").unwrap();
        assert!(matches!(
            remove_account(&mut cfg, "eve@corp.test"),
            Err(EditError::NoSuchAccount(_))
        ));
        remove_domain(&mut cfg, "corp.test").unwrap();
        assert!(cfg.domains.is_empty());
    }

    #[test]
    fn domain_and_account_rules_are_typed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/c.ron");
        domain_add(&p, "A.test").unwrap();
        assert!(
            matches!(domain_add(&p, "a.test"), Err(EditError::DomainExists(d)) if d == "a.test")
        );
        assert!(matches!(
            account_add(&p, "bob@b.test", "pw"),
            Err(EditError::NotLocalDomain(d)) if d == "b.test"
        ));
        assert!(matches!(
            account_add(&p, "bob", "pw"),
            Err(EditError::NotAnAddress(_))
        ));
        assert!(matches!(
            account_add(&p, "bob@a.test", ""),
            Err(EditError::EmptyPassword)
        ));
        account_add(&p, "Bob@a.test", "pw").unwrap();
        let e = domain_remove(&p, "a.test").unwrap_err();
        assert_eq!(
            e.to_string(),
            "domain a.test still has 1 account(s); remove them first"
        );
        assert!(matches!(
            account_remove(&p, "eve@a.test"),
            Err(EditError::NoSuchAccount(_))
        ));
        account_quota(&p, "BOB@a.test", 2 << 20).unwrap();
        assert_eq!(read(&p).unwrap().accounts[0].max_size, 2 << 20);
        assert!(matches!(
            account_quota(&p, "bob@a.test", 10),
            Err(EditError::Config(ConfigError::Invalid { errors, .. }))
                if errors[0].0.path == "accounts[0].max_size"
        ));
        assert!(matches!(
            account_quota(&p, "eve@a.test", 0),
            Err(EditError::NoSuchAccount(_))
        ));
        account_remove(&p, "bob@a.test").unwrap();
        domain_remove(&p, "a.test").unwrap();
        assert!(read(&p).unwrap().domains.is_empty());
    }

    #[test]
    fn a_failed_change_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.ron");
        config_set(&p, &["smtp.incoming.port=2626".into()]).unwrap();
        let before = std::fs::read(&p).unwrap();
        assert!(matches!(
            config_set(&p, &["smtp.incoming.port".into()]),
            Err(EditError::NotAssignment(_))
        ));
        assert!(matches!(
            config_set(&p, &["smtp.nope=1".into()]),
            Err(EditError::Key(_))
        ));
        let r: Result<(), _> = edit(&p, |cfg| {
            cfg.smtp.incoming.port = 1;
            Err(EditError::Fields(Vec::new()))
        });
        assert!(matches!(r, Err(EditError::Fields(_))));
        assert_eq!(std::fs::read(&p).unwrap(), before);
    }
}
