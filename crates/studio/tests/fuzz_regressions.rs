//! Replays the fuzz targets' seed inputs and every input a fuzzer found a
//! crash, hang or false detection with (`fuzz/seeds/`, `fuzz/regressions/`),
//! without the fuzzer. See "Fuzzing" in the README for running the fuzzers.

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut files: Vec<PathBuf> = ["seeds", "regressions"]
        .iter()
        .filter_map(|kind| std::fs::read_dir(fuzz.join(kind).join(target)).ok())
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let files = inputs(target);
    assert!(
        files.len() >= 3,
        "expected the seed inputs of {target}, found {files:?}"
    );
    for path in files {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        run(&bytes);
    }
}

#[test]
fn decode_and_detect_inputs_neither_panic_nor_accuse() {
    replay("decode_and_detect", tattle_studio::fuzzing::decode_and_detect);
}

#[test]
fn soft_bit_and_key_inputs_do_not_panic() {
    replay("decode_soft_bits", tattle_studio::fuzzing::decode_soft_bits);
}
