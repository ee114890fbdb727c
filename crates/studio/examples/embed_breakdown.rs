//! Where the wall time of `tattle embed` goes: the same steps as the
//! binary (read the file, decode it, mark it in place, encode it into a
//! temporary file renamed into place), timed one by one in a fresh
//! process, with the binary's allocator.
//!
//! `cargo run --release -p tattle-studio --example embed_breakdown -- IMAGE OUTPUT.png`
//! prints one line of milliseconds; `confirm` is the binary's check that
//! the new mark reads back (`Detector::confirm_mark`). Run it many times and take medians
//! (`RAYON_NUM_THREADS=1` for one thread); docs/BENCHMARKS.md shows how.
//! With `--no-mark` after the paths it does the same without marking (a
//! plain re-encode): the difference between the two medians of the total
//! is what the mark adds to the process. On Linux a second line, on
//! standard error, counts each step's page faults: memory touched for the
//! first time, which the kernel must clear (2 MB at a time where
//! transparent huge pages are on).
use std::path::PathBuf;
use std::time::Instant;

use tattle_detect::{DetectOptions, Recipient};
use tattle_embed::{EmbedOptions, Key, Payload};
use tattle_studio::files;
use tattle_studio::warm::WarmWorkers;

// As in the `tattle` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let (input, output, marking) = match args.as_slice() {
        [input, output] => (input, output, true),
        [input, output, flag] if flag.as_os_str() == "--no-mark" => (input, output, false),
        _ => return Err("usage: embed_breakdown IMAGE OUTPUT [--no-mark]".into()),
    };
    let key = Key::from_bytes([5; 32]);
    let embedder = EmbedOptions::default().build(&key)?;
    let checker = DetectOptions::default().geometric_search(false).build(&key)?;
    let mut lap = Instant::now();
    let mut faults = Vec::new();
    let mut last_faults = minor_faults();
    let mut split = || {
        let ms = lap.elapsed().as_secs_f64() * 1e3;
        lap = Instant::now();
        let now = minor_faults();
        faults.push(now.zip(last_faults).map(|(now, before)| now - before));
        last_faults = now;
        ms
    };
    // As the binary does: the workers are kept busy while the file is decoded.
    let warm = WarmWorkers::start();
    let bytes = files::read(input)?;
    let read = split();
    let (mut image, icc) = files::decode_image_with_profile(input, &bytes)?;
    drop(warm);
    let decode = split();
    let payload = Payload::new(0x42);
    if marking {
        embedder.embed_in_place(&mut image, payload)?;
    }
    let mark = split();
    if marking {
        checker.confirm_mark(&image, Recipient::Studio, payload)?;
    }
    let confirm = split();
    files::save_image_atomic_with_profile(&image, output, 95, icc.as_deref())?;
    let encode = split();
    let total = started.elapsed().as_secs_f64() * 1e3;
    println!(
        "read {read:.2} decode {decode:.2} mark {mark:.2} confirm {confirm:.2} encode+write {encode:.2} total {total:.2} \
         mark-share {:.3} confirm-share {:.3}",
        mark / total,
        confirm / total
    );
    if let [Some(read), Some(decode), Some(mark), Some(confirm), Some(encode)] = faults[..] {
        eprintln!(
            "page faults: read {read} decode {decode} mark {mark} confirm {confirm} encode+write {encode}"
        );
    }
    Ok(())
}

/// The process's minor page faults so far (Linux), from `/proc/self/stat`.
fn minor_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name (which may hold spaces): the state
    // is the first, the minor faults the eighth.
    let fields = stat.get(stat.rfind(')')? + 2..)?;
    fields.split(' ').nth(7)?.parse().ok()
}
