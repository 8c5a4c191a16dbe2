//! Reading and writing the configuration file.
//!
//! Loading reports a file that does not parse or validate with its path, line and field, and
//! never touches it. Saving is atomic (temp file, fsync, rename, fsync of the directory) and keeps
//! the previous version next to it as `<name>.bak`.

use super::{Config, FieldError, validate};
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file is not valid RON for Postern's settings.
    #[error("{path}: line {line}, column {column}: {}{message}", field.as_deref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// Dotted path of the field being read, when known.
        field: Option<String>,
        /// What the parser says.
        message: String,
    },
    /// The file parses but some settings are not allowed.
    #[error("{}", Located(path, errors))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Each invalid field, with the line it is on when it could be found.
        errors: Vec<(FieldError, Option<usize>)>,
    },
}

struct Located<'a>(&'a Path, &'a [(FieldError, Option<usize>)]);

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (e, line)) in self.1.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match line {
                Some(l) => write!(
                    f,
                    "{}: line {l}: field `{}`: {}",
                    self.0.display(),
                    e.path,
                    e.message
                )?,
                None => write!(f, "{}: field `{}`: {}", self.0.display(), e.path, e.message)?,
            }
        }
        Ok(())
    }
}

/// Parses and validates configuration text; `path` is only used in errors.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let spanned = |e: ron::error::SpannedError, field: Option<String>| ConfigError::Parse {
        path: path.to_path_buf(),
        line: e.span.start.line,
        column: e.span.start.col,
        field,
        message: e.code.to_string(),
    };
    let mut de = ron::Deserializer::from_str(text).map_err(|e| spanned(e, None))?;
    let cfg: Config = match serde_path_to_error::deserialize(&mut de) {
        Ok(c) => c,
        Err(e) => {
            let field = e.path().to_string();
            let field = (field != "." && !field.is_empty()).then_some(field);
            let err = de.span_error(e.into_inner());
            return Err(spanned(err, field));
        }
    };
    de.end().map_err(|e| spanned(de.span_error(e), None))?;
    let errors = validate(&cfg);
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            errors: errors
                .into_iter()
                .map(|e| {
                    let line = locate(text, &e.path);
                    (e, line)
                })
                .collect(),
        })
    }
}

/// Loads and validates the file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Loads the file, or creates it with the defaults when it does not exist. An existing file
/// that fails to load is returned as an error and left exactly as it is.
pub fn load_or_create(path: &Path) -> Result<Config, ConfigError> {
    match fs::metadata(path) {
        Ok(_) => load(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let cfg = Config::default();
            save(path, &cfg)?;
            Ok(cfg)
        }
        Err(source) => Err(ConfigError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The text a configuration is saved as.
pub fn to_text(cfg: &Config) -> String {
    let pretty = ron::ser::PrettyConfig::new()
        .struct_names(false)
        .separate_tuple_members(false)
        .indentor("    ".to_string());
    let body = ron::ser::to_string_pretty(cfg, pretty).expect("Config always serialises");
    format!(
        "// Postern configuration. Edit with `postern config set KEY=VALUE`, the desktop app, or by\n\
         // hand; a running server picks up changes. Durations are written like \"30s\" or \"5m\".\n{body}\n"
    )
}

/// Validates `cfg` and writes it atomically, keeping the old file as `.bak`.
pub fn save(path: &Path, cfg: &Config) -> Result<(), ConfigError> {
    let errors = validate(cfg);
    if !errors.is_empty() {
        return Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            errors: errors.into_iter().map(|e| (e, None)).collect(),
        });
    }
    let io = |source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io)?;
    }
    if let Ok(old) = fs::read(path) {
        write_atomic(&with_suffix(path, ".bak"), &old).map_err(io)?;
    }
    write_atomic(path, to_text(cfg).as_bytes()).map_err(io)
}

/// `path` with `suffix` appended to its file name.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes `bytes` to a temp file beside `path`, syncs it, renames it over `path` and syncs the
/// directory, so a crash leaves either the old or the new file, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = with_suffix(path, &format!(".tmp{}", std::process::id()));
    let result = (|| {
        // The config can hold the relay host's password: only the owner may read it.
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Best-effort line (1-based) of a dotted field path such as `smtp.incoming.port` or
/// `accounts[1].password` in the RON text.
fn locate(text: &str, path: &str) -> Option<usize> {
    let mut pos = 0;
    let segments: Vec<&str> = path.split('.').collect();
    for (si, seg) in segments.iter().enumerate() {
        let (name, index) = match seg.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (*seg, None),
        };
        pos = find_key(text, pos, name)?;
        if let Some(i) = index {
            match segments.get(si + 1) {
                // accounts[2].address: the third `address:` after `accounts:`
                Some(next) => {
                    for _ in 0..i {
                        pos = find_key(text, pos, next)? + next.len();
                    }
                }
                // domains[1]: the second string literal after `domains:`
                None => {
                    for _ in 0..=i {
                        pos += text[pos..].find('"')? + 1;
                        pos += text[pos..].find('"')? + 1;
                    }
                    pos -= 1;
                }
            }
        }
    }
    Some(text[..pos].matches('\n').count() + 1)
}

/// Byte offset of `name:` (a whole identifier) at or after `from`.
fn find_key(text: &str, from: usize, name: &str) -> Option<usize> {
    let mut at = from;
    while let Some(i) = text[at..].find(name) {
        let start = at + i;
        let end = start + name.len();
        let before_ok = start == 0
            || !text.as_bytes()[start - 1].is_ascii_alphanumeric()
                && text.as_bytes()[start - 1] != b'_';
        let after = text[end..].trim_start();
        if before_ok && after.starts_with(':') {
            return Some(start);
        }
        at = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_text_round_trips() {
        let cfg = Config::default();
        let back = parse(&to_text(&cfg), Path::new("x.ron")).unwrap();
        assert_eq!(back, cfg);
    }

    #[test]
    fn type_error_names_line_and_field() {
        let text = "(\n  smtp: (\n    incoming: (\n      port: \"abc\",\n    ),\n  ),\n)\n";
        let err = parse(text, Path::new("/etc/p.ron"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/etc/p.ron: line 4, column"), "{err}");
        assert!(err.contains("smtp.incoming.port"), "{err}");
    }

    #[test]
    fn invalid_value_names_line_and_field() {
        let text = "(\n  domains: [\"a.test\", \"a.test\"],\n  smtp: (\n    max_recipients_per_mail: 5,\n  ),\n)\n";
        let err = parse(text, Path::new("p.ron")).unwrap_err().to_string();
        assert!(
            err.contains("p.ron: line 4: field `smtp.max_recipients_per_mail`"),
            "{err}"
        );
        assert!(err.contains("p.ron: line 2: field `domains[1]`"), "{err}");
    }

    #[test]
    fn unknown_field_is_refused() {
        let err = parse("(smtp: (prot: 25))", Path::new("p.ron"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("prot"), "{err}");
    }

    #[test]
    fn save_keeps_backup() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.ron");
        let mut cfg = Config::default();
        save(&p, &cfg).unwrap();
        cfg.smtp.incoming.port = 2626;
        save(&p, &cfg).unwrap();
        assert_eq!(load(&p).unwrap().smtp.incoming.port, 2626);
        assert_eq!(
            load(&with_suffix(&p, ".bak")).unwrap().smtp.incoming.port,
            25
        );
    }
}
