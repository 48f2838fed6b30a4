//! Stable replay: every target on every committed seed, and the target list in step with
//! `fuzz_targets/`, `corpus/` and `Cargo.toml`.

use std::path::Path;

use mcp_oauth_client_fuzz::{TARGETS, corpus_dir, files_under};

#[test]
fn every_target_replays_every_seed() {
    for (name, target) in TARGETS {
        let seeds = files_under(&corpus_dir(name));
        assert!(!seeds.is_empty(), "{name} has no seeds");
        for seed in seeds {
            let bytes = std::fs::read(&seed).unwrap();
            // A panic names the seed that caused it.
            let result = std::panic::catch_unwind(|| target(&bytes));
            assert!(result.is_ok(), "{name} failed on {}", seed.display());
        }
    }
}

#[test]
fn every_target_has_a_source_file_a_bin_and_a_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(root.join("fuzz_targets"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut names: Vec<String> = TARGETS.iter().map(|(n, _)| format!("{n}.rs")).collect();
    names.sort();
    assert_eq!(files, names);
    let mut corpora: Vec<String> = std::fs::read_dir(root.join("corpus"))
        .unwrap()
        .map(|e| format!("{}.rs", e.unwrap().file_name().to_string_lossy()))
        .collect();
    corpora.sort();
    assert_eq!(corpora, names);
    for (name, _) in TARGETS {
        assert!(
            manifest.contains(&format!("path = \"fuzz_targets/{name}.rs\"")),
            "{name} is not a [[bin]] in Cargo.toml"
        );
    }
}
