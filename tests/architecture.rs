//! The import rules of ARCHITECTURE.md, checked: every module of `src/engine` sits on a layer
//! and imports only from layers below its own (or from itself). The engine names no GUI crate.
//! Reads the sources as text, outside `#[cfg(test)]` modules.

use std::collections::BTreeMap;
use std::path::Path;

/// Each top-level engine module and its layer (lower numbers are lower).
const LAYERS: &[(&str, u8)] = &[
    ("events", 0),
    ("reply", 0),
    ("role", 0),
    ("options", 0),
    ("command", 0),
    ("local_ips", 0),
    ("lock", 1),
    ("stats", 0),
    ("perms", 0),
    ("wire", 0),
    ("store", 0),
    ("config", 1),
    ("dkim", 1),
    ("logfile", 2),
    ("dns", 2),
    ("tls", 2),
    ("current", 2),
    ("access", 3),
    ("delivery", 3),
    ("records", 3),
    ("queue", 4),
    ("listener", 4),
    ("smtp", 5),
    ("pop3", 5),
    ("imap", 5),
    ("control", 5),
    ("handle", 5),
    ("supervisor", 6),
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The engine modules `text` names through `crate::engine::X` (or `super::X` in a file at the
/// top of `src/engine`).
fn imports(text: &str, top_level_file: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut scan = |prefix: &str| {
        for (i, _) in text.match_indices(prefix) {
            let rest = &text[i + prefix.len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    };
    scan("crate::engine::");
    if top_level_file {
        scan("super::");
    }
    out
}

#[test]
fn engine_modules_import_only_from_below() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
    let layer: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut problems = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel == "mod.rs" {
            continue; // engine::start wires everything together
        }
        let module = rel.split('/').next().unwrap().trim_end_matches(".rs");
        let Some(&mine) = layer.get(module) else {
            problems.push(format!(
                "{rel}: module `{module}` has no layer in ARCHITECTURE.md"
            ));
            continue;
        };
        let text = std::fs::read_to_string(&f).unwrap();
        let text = match text.find("#[cfg(test)]") {
            Some(i) => &text[..i],
            None => &text[..],
        };
        for crate_name in ["eframe", "egui", "gtk", "tray_icon"] {
            if text.contains(&format!("{crate_name}::")) {
                problems.push(format!("{rel}: the engine names `{crate_name}`"));
            }
        }
        // `super::` names an engine module from `engine/x.rs` and `engine/x/mod.rs`.
        let top = !rel.contains('/') || rel.matches('/').count() == 1 && rel.ends_with("/mod.rs");
        for other in imports(text, top) {
            if other == module {
                continue;
            }
            match layer.get(other.as_str()) {
                Some(&theirs) if theirs < mine => {}
                Some(&theirs) => problems.push(format!(
                    "{rel}: `{module}` (layer {mine}) imports `{other}` (layer {theirs})"
                )),
                None => {}
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}
