//! Where the wall time of `tattle embed` goes: the same steps as the
//! binary (read the file, decode it, mark it in place, encode it into a
//! temporary file renamed into place), timed one by one in a fresh
//! process, with the binary's allocator.
//!
//! `cargo run --release -p tattle-studio --example embed_breakdown -- IMAGE OUTPUT.png`
//! prints one line of milliseconds. Run it many times and take medians
//! (`RAYON_NUM_THREADS=1` for one thread); docs/BENCHMARKS.md shows how.
use std::path::PathBuf;
use std::time::Instant;

use tattle_embed::{EmbedOptions, Key, Payload};
use tattle_studio::files;

// As in the `tattle` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [input, output] = args.as_slice() else {
        return Err("usage: embed_breakdown IMAGE OUTPUT".into());
    };
    let embedder = EmbedOptions::default().build(&Key::from_bytes([5; 32]))?;
    // As the binary does: the worker threads come up while the file is decoded.
    rayon::spawn(|| ());
    let mut lap = Instant::now();
    let mut split = || {
        let ms = lap.elapsed().as_secs_f64() * 1e3;
        lap = Instant::now();
        ms
    };
    let bytes = files::read(input)?;
    let read = split();
    let (mut image, icc) = files::decode_image_with_profile(input, &bytes)?;
    let decode = split();
    embedder.embed_in_place(&mut image, Payload::new(0x42))?;
    let mark = split();
    files::save_image_atomic_with_profile(&image, output, 95, icc.as_deref())?;
    let encode = split();
    let total = started.elapsed().as_secs_f64() * 1e3;
    println!(
        "read {read:.2} decode {decode:.2} mark {mark:.2} encode+write {encode:.2} total {total:.2} mark-share {:.3}",
        mark / total
    );
    Ok(())
}
