//! The command line's own logic, kept out of `main.rs` so it can be tested: default paths, and
//! the edits `postern config|domain|account` make to the configuration file under a lock.

use crate::engine::config::{self, Account, Config, ConfigError, keys, normalize_address, normalize_domain};
use crate::engine::store::password;
use anyhow::{Context, Result, bail};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

/// Default configuration file and data directory (XDG locations on Linux).
pub fn default_paths() -> (PathBuf, PathBuf) {
    match directories::ProjectDirs::from("", "", "postern") {
        Some(d) => (d.config_dir().join("postern.ron"), d.data_dir().to_path_buf()),
        None => (PathBuf::from("postern.ron"), PathBuf::from("postern-data")),
    }
}

/// Reads the configuration for display: the defaults when the file does not exist yet.
pub fn read(path: &Path) -> Result<Config, ConfigError> {
    if path.exists() { config::load(path) } else { Ok(Config::default()) }
}

/// Runs `change` on the configuration and saves the result, holding `<file>.lock` so two
/// commands cannot interleave. A broken file is reported and left as it is.
pub fn edit<T>(path: &Path, change: impl FnOnce(&mut Config) -> Result<T>) -> Result<T> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let lock_path = config::file::with_suffix(path, ".lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    lock.lock().with_context(|| format!("cannot lock {}", lock_path.display()))?;
    let mut cfg = config::load_or_create(path)?;
    let out = change(&mut cfg)?;
    config::save(path, &cfg)?;
    Ok(out)
}

/// `config set KEY=VALUE...`
pub fn config_set(path: &Path, assignments: &[String]) -> Result<()> {
    let pairs = assignments
        .iter()
        .map(|a| keys::split_assignment(a).with_context(|| format!("`{a}` is not KEY=VALUE")))
        .collect::<Result<Vec<_>>>()?;
    edit(path, |cfg| {
        *cfg = keys::set(cfg, &pairs)?;
        Ok(())
    })
}

/// `domain add`
pub fn domain_add(path: &Path, domain: &str) -> Result<()> {
    let d = normalize_domain(domain);
    edit(path, |cfg| {
        if cfg.is_local_domain(&d) {
            bail!("domain {d} already exists");
        }
        cfg.domains.push(d.clone());
        Ok(())
    })
}

/// `domain remove`: refused while the domain still has accounts.
pub fn domain_remove(path: &Path, domain: &str) -> Result<()> {
    let d = normalize_domain(domain);
    edit(path, |cfg| {
        if !cfg.is_local_domain(&d) {
            bail!("no local domain {d}");
        }
        let n = cfg.accounts.iter().filter(|a| a.address.ends_with(&format!("@{d}"))).count();
        if n > 0 {
            bail!("domain {d} still has {n} account(s); remove them first");
        }
        cfg.domains.retain(|x| normalize_domain(x) != d);
        Ok(())
    })
}

/// `account add`
pub fn account_add(path: &Path, address: &str, pass: &str) -> Result<()> {
    let a = normalize_address(address);
    check_password(pass)?;
    let hash = password::hash(pass);
    edit(path, |cfg| {
        if cfg.account(&a).is_some() {
            bail!("account {a} already exists");
        }
        match a.rsplit_once('@') {
            Some((_, d)) if cfg.is_local_domain(d) => {}
            Some((_, d)) => bail!("{d} is not a local domain (add it first: postern domain add {d})"),
            None => bail!("`{address}` is not user@domain"),
        }
        cfg.accounts.push(Account { address: a.clone(), password: hash });
        Ok(())
    })
}

/// `account passwd`
pub fn account_passwd(path: &Path, address: &str, pass: &str) -> Result<()> {
    let a = normalize_address(address);
    check_password(pass)?;
    let hash = password::hash(pass);
    edit(path, |cfg| {
        let acc = cfg.accounts.iter_mut().find(|x| x.address == a).with_context(|| format!("no account {a}"))?;
        acc.password = hash;
        Ok(())
    })
}

/// `account remove` (the mailbox on disk is kept).
pub fn account_remove(path: &Path, address: &str) -> Result<()> {
    let a = normalize_address(address);
    edit(path, |cfg| {
        let before = cfg.accounts.len();
        cfg.accounts.retain(|x| x.address != a);
        if cfg.accounts.len() == before {
            bail!("no account {a}");
        }
        Ok(())
    })
}

fn check_password(p: &str) -> Result<()> {
    if p.is_empty() {
        bail!("the password is empty");
    }
    Ok(())
}
