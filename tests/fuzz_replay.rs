//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/*`) through the same checks as the
//! cargo-fuzz targets, on stable Rust and without libFuzzer, so every seed and every input that
//! once found a bug keeps passing. The checks live in `fuzz/src/lib.rs`; see docs/fuzzing.md.

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// Every file of one target's corpus, sorted so failures are reported in a stable order.
fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every input of `target`, catching each panic so one report names all failing files.
fn replay(target: &str) {
    let (_, check) = checks::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let files = corpus(target);
    assert!(!files.is_empty(), "fuzz/corpus/{target}/ is empty");
    let mut failed = Vec::new();
    for file in &files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("{}: {msg}", file.display()));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} inputs of {target} fail:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
}

#[test]
fn every_target_has_a_corpus_and_nothing_else_is_there() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for entry in std::fs::read_dir(&root).expect("fuzz/corpus") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        assert!(
            checks::TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz/corpus/{name} belongs to no target"
        );
    }
    for (target, _) in checks::TARGETS {
        assert!(
            corpus_dir(target).is_dir(),
            "fuzz/corpus/{target} is missing"
        );
    }
}

#[test]
fn smtp_command_corpus() {
    replay("smtp_command");
}

#[test]
fn data_reader_corpus() {
    replay("data_reader");
}

#[test]
fn address_corpus() {
    replay("address");
}

#[test]
fn config_file_corpus() {
    replay("config_file");
}

#[test]
fn config_keys_corpus() {
    replay("config_keys");
}

// Findings (docs/fuzzing.md, "Findings"), fixed in `session::parse_command`: each test states
// what Postern must do and fails if it stops doing it; its input is also in the corpus.

/// F1: `Session::command` hands smtp-proto a command line with a bare CR inside; smtp-proto
/// drops CRs inside a path, so `RCPT TO:<c@d.<CR>.<CR>test>` is taken as `c@d..test`, an
/// address the same parser refuses when it is written plainly.
#[test]
fn finding_f1_bare_cr_inside_a_path_changes_the_address() {
    checks::check_smtp_command(
        b"\xffEHLO a.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.\r.\rtest>\r\n",
    );
}

/// F2: a quoted domain is accepted as the domain, so `RCPT TO:<a@"b> NOTIFY=NEVER">` gives the
/// session `a@b> NOTIFY=NEVER`; relayed, it is written `RCPT TO:<a@b> notify=never>`.
#[test]
fn finding_f2_a_domain_that_is_not_a_domain_is_accepted() {
    checks::check_address(br#"a@"b> NOTIFY=NEVER">"#);
}

/// F3: the sender is relayed as received (`MAIL FROM:<{from}>`), without re-quoting its local
/// part as `forward_path` does for recipients: `"john smith"@x.test` goes out as
/// `MAIL FROM:<john smith@x.test>`.
#[test]
fn finding_f3_a_quoted_sender_is_relayed_unquoted() {
    checks::check_address(br#""john smith"@x.test"#);
}
