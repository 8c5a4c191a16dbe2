//! Dotted keys (`smtp.incoming.port`) over the configuration, in the spirit of `postconf`:
//! list every leaf, read one, set several at once. Values are RON literals; a bare word is a
//! string. The configuration is walked as a `serde_json::Value` tree so every field of
//! [`Config`] is reachable without a hand-written table.

use super::{Config, FieldError, validate};
use serde_json::Value;

/// Why a key could not be read or set.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No such setting.
    #[error("unknown key `{0}` (see `postern config show`)")]
    Unknown(String),
    /// The text is not a RON value.
    #[error("{key}: `{text}` is not a RON value: {message}")]
    Syntax {
        /// The key being set.
        key: String,
        /// The value as given.
        text: String,
        /// What the parser says.
        message: String,
    },
    /// The value has the wrong type for the field.
    #[error("field `{field}`: {message}")]
    Type {
        /// Dotted path of the field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The new configuration breaks validation rules.
    #[error("{}", .0.iter().map(|e| format!("field `{}`: {}", e.path, e.message)).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<FieldError>),
}

fn tree(cfg: &Config) -> Value {
    serde_json::to_value(cfg).expect("Config always serialises")
}

/// Every leaf as (`dotted.key`, JSON value), in file order.
fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(&key, v, out);
            }
        }
        _ => out.push((prefix.to_string(), v.clone())),
    }
}

/// The dotted paths of `Option` fields: every one is `None` in the defaults, so they are
/// exactly the default tree's null leaves. Their values print as `Some(..)`, as in the file.
fn option_paths() -> Vec<String> {
    let mut out = Vec::new();
    walk("", &tree(&Config::default()), &mut out);
    out.into_iter()
        .filter(|(_, v)| v.is_null())
        .map(|(k, _)| k)
        .collect()
}

/// The dotted paths of enum fields (`outgoing_mails.mode`, the actions, ...): the string
/// leaves of the default tree that refuse a name as an unknown variant. Their values print bare, as
/// RON writes them and `config set` takes them (`mode=Relay`), not as quoted strings.
fn enum_paths() -> &'static [String] {
    static PATHS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    PATHS.get_or_init(|| {
        let t = tree(&Config::default());
        let mut leaves = Vec::new();
        walk("", &t, &mut leaves);
        leaves
            .into_iter()
            .filter(|(_, v)| v.is_string())
            .filter(|(k, _)| {
                let mut probe = t.clone();
                let mut at = &mut probe;
                for seg in k.split('.') {
                    at = &mut at[seg];
                }
                *at = Value::String("\u{1}no such variant".into());
                // Not a duration or the like: those refuse it too, but not as a variant.
                serde_json::from_value::<Config>(probe)
                    .is_err_and(|e| e.to_string().contains("unknown variant"))
            })
            .map(|(k, _)| k)
            .collect()
    })
}

/// RON text of the value at `path`.
fn render(path: &str, v: &Value, options: &[String]) -> String {
    if let Value::String(s) = v
        && enum_paths().iter().any(|p| p == path)
    {
        return s.clone();
    }
    match v {
        Value::Object(m) => format!(
            "({})",
            m.iter()
                .map(|(k, x)| format!("{k}: {}", render(&format!("{path}.{k}"), x, options)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        v if !v.is_null() && options.iter().any(|o| o == path) => format!("Some({})", to_ron(v)),
        v => to_ron(v),
    }
}

/// Every leaf as (`dotted.key`, RON text), in file order. Lists are shown whole.
pub fn leaves(cfg: &Config) -> Vec<(String, String)> {
    let options = option_paths();
    let mut out = Vec::new();
    walk("", &tree(cfg), &mut out);
    out.into_iter()
        .map(|(k, v)| {
            let text = render(&k, &v, &options);
            (k, text)
        })
        .collect()
}

/// The RON text of one key (a leaf or a whole section).
pub fn get(cfg: &Config, key: &str) -> Result<String, KeyError> {
    let t = tree(cfg);
    let mut v = &t;
    for seg in key.split('.') {
        v = v
            .get(seg)
            .ok_or_else(|| KeyError::Unknown(key.to_string()))?;
    }
    Ok(render(key, v, &option_paths()))
}

/// Applies `key=value` assignments to a copy of `cfg` and validates the result.
pub fn set(cfg: &Config, assignments: &[(String, String)]) -> Result<Config, KeyError> {
    let new = assign(cfg, assignments)?;
    let errors = validate(&new);
    if errors.is_empty() {
        Ok(new)
    } else {
        Err(KeyError::Invalid(errors))
    }
}

/// Applies `key=value` assignments to a copy of `cfg`, checking types but not the rules
/// [`validate`] enforces (tests use it to set limits below the dialog's minimums).
pub fn assign(cfg: &Config, assignments: &[(String, String)]) -> Result<Config, KeyError> {
    let mut t = tree(cfg);
    for (key, text) in assignments {
        let mut slot = &mut t;
        for seg in key.split('.') {
            slot = slot
                .get_mut(seg)
                .ok_or_else(|| KeyError::Unknown(key.to_string()))?;
        }
        *slot = parse_value(key, text, slot.is_string())?;
    }
    serde_path_to_error::deserialize(t).map_err(|e| KeyError::Type {
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

/// Splits `KEY=VALUE`.
pub fn split_assignment(s: &str) -> Option<(String, String)> {
    let (k, v) = s.split_once('=')?;
    Some((k.trim().to_string(), v.trim().to_string()))
}

/// A RON literal, or a bare word taken as a string. Where the field holds a string (or an
/// enum such as `OutboundTls`), any bare word is that string, even `None` or `true`.
fn parse_value(key: &str, text: &str, string_field: bool) -> Result<Value, KeyError> {
    let word = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:@/+".contains(&b));
    let bare_word = word
        && (string_field
            || !matches!(text, "true" | "false" | "None") && text.parse::<f64>().is_err());
    if bare_word {
        return Ok(Value::String(text.to_string()));
    }
    let v: ron::Value = ron::from_str(text).map_err(|e| KeyError::Syntax {
        key: key.to_string(),
        text: text.to_string(),
        message: e.code.to_string(),
    })?;
    serde_json::to_value(&v).map_err(|e| KeyError::Syntax {
        key: key.to_string(),
        text: text.to_string(),
        message: e.to_string(),
    })
}

/// RON text of a JSON-shaped value: objects as `(k: v)`, null as `None`.
fn to_ron(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => ron::to_string(s).unwrap_or_else(|_| format!("{s:?}")),
        Value::Array(a) => format!("[{}]", a.iter().map(to_ron).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => format!(
            "({})",
            m.iter()
                .map(|(k, v)| format!("{k}: {}", to_ron(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set1(cfg: &Config, k: &str, v: &str) -> Result<Config, KeyError> {
        set(cfg, &[(k.into(), v.into())])
    }

    #[test]
    fn show_lists_dotted_leaves() {
        let l = leaves(&Config::default());
        assert!(l.contains(&("smtp.incoming.port".into(), "25".into())));
        assert!(l.contains(&("smtp.outgoing.enabled".into(), "false".into())));
        assert!(l.contains(&("smtp.timeouts.command".into(), "\"5m\"".into())));
        assert!(l.contains(&("smtp.tls.implicit_port".into(), "None".into())));
        // Enums bare, as RON and the README write them; strings quoted.
        assert!(l.contains(&("outgoing_mails.mode".into(), "Independent".into())));
        assert!(l.contains(&("abuse.spf.action".into(), "Tag".into())));
        assert!(l.contains(&("logs.level".into(), "Info".into())));
        assert!(l.contains(&("smtp.tls.certificate".into(), "\"\"".into())));
    }

    #[test]
    fn set_accepts_ron_literals_and_bare_words() {
        let c = Config::default();
        let c = set1(&c, "server.hostname", "mail.example.test").unwrap();
        assert_eq!(c.server.hostname, "mail.example.test");
        let c = set1(&c, "smtp.outgoing.enabled", "true").unwrap();
        assert!(c.smtp.outgoing.enabled);
        let c = set1(&c, "smtp.tls.implicit_port", "Some(4465)").unwrap();
        assert_eq!(c.smtp.tls.implicit_port, Some(4465));
        assert_eq!(get(&c, "smtp.tls.implicit_port").unwrap(), "Some(4465)");
        assert!(
            get(&c, "smtp.tls")
                .unwrap()
                .contains("implicit_port: Some(4465)")
        );
        let c = set1(&c, "smtp.timeouts.data", "90s").unwrap();
        assert_eq!(get(&c, "smtp.timeouts.data").unwrap(), "\"1m30s\"");
        let c = set1(&c, "domains", "[\"a.test\"]").unwrap();
        let c = set1(&c, "outgoing_mails.outbound_tls", "None").unwrap();
        assert_eq!(
            c.outgoing_mails.outbound_tls,
            crate::engine::config::OutboundTls::None
        );
        assert_eq!(c.domains, ["a.test"]);
    }

    #[test]
    fn set_refuses_bad_values_by_field() {
        let c = Config::default();
        assert!(matches!(
            set1(&c, "smtp.nope", "1"),
            Err(KeyError::Unknown(_))
        ));
        let e = set1(&c, "smtp.incoming.port", "70000")
            .unwrap_err()
            .to_string();
        assert!(e.contains("smtp.incoming.port"), "{e}");
        let e = set1(&c, "smtp.max_recipients_per_mail", "5")
            .unwrap_err()
            .to_string();
        assert!(e.contains("smtp.max_recipients_per_mail"), "{e}");
    }
}
