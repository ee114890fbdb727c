//! Criterion benchmarks of the watermark's own work, next to PNG decoding
//! and encoding of the same image so its cost can be read against the
//! codec's. Throughput is in pixels (read as MP/s). Seeded, synthetic
//! textured images. The library works on one thread per image; the
//! `*-all-threads` rows mark or examine as many images at once as there are
//! cores (rayon), which is how batch jobs use the machine.
//!
//! `cargo bench -p tattle-detect --bench engine`

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use image::{DynamicImage, RgbImage};
use tattle_core::plane::luma;
use tattle_core::prng::KeyedStream;
use tattle_detect::{DetectOptions, Key, Payload};
use tattle_embed::EmbedOptions;

// The allocator of the `tattle` binary, so the figures are the tool's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn textured(width: u32, height: u32) -> DynamicImage {
    let mut rng = KeyedStream::from_seed([21; 32]);
    let noise: Vec<u8> = (0..width * height).map(|_| rng.below(40) as u8).collect();
    DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
        let base = (128.0 + 60.0 * ((x as f32 * 0.05).sin() * (y as f32 * 0.031).cos())) as u8;
        let n = noise[(y * width + x) as usize];
        image::Rgb([base.saturating_add(n), base / 2 + n, 200 - n])
    }))
}

fn sizes() -> [(&'static str, u32, u32); 3] {
    [
        ("1MP", 1024, 1024),
        ("1920x1080", 1920, 1080),
        ("3840x2160", 3840, 2160),
    ]
}

fn bench(c: &mut Criterion) {
    let key = Key::from_bytes([5; 32]);
    let embedder = EmbedOptions::default()
        .build(&key)
        .unwrap_or_else(|e| panic!("{e}"));
    let detector = DetectOptions::default()
        .build(&key)
        .unwrap_or_else(|e| panic!("{e}"));
    let plain = DetectOptions::default()
        .geometric_search(false)
        .build(&key)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("engine");
    group.sample_size(10);
    for (name, w, h) in sizes() {
        let img = textured(w, h);
        let marked = embedder
            .embed(&img, Payload::new(1))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut png = Vec::new();
        marked
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap_or_else(|e| panic!("{e}"));
        group.throughput(Throughput::Elements(u64::from(w * h)));
        group.bench_with_input(BenchmarkId::new("embed", name), &img, |b, img| {
            b.iter(|| embedder.embed(img, Payload::new(1)))
        });
        // What `tattle embed` and `tattle stamp` do: mark the decoded frame
        // where it lies (the copy is made outside the timed part).
        group.bench_with_input(BenchmarkId::new("embed-in-place", name), &img, |b, img| {
            b.iter_batched_ref(
                || img.clone(),
                |frame| embedder.embed_in_place(frame, Payload::new(1)),
                BatchSize::LargeInput,
            )
        });
        let threads = rayon::current_num_threads();
        group.throughput(Throughput::Elements(u64::from(w * h) * threads as u64));
        group.bench_with_input(BenchmarkId::new("embed-all-threads", name), &img, |b, img| {
            b.iter(|| {
                use rayon::prelude::*;
                (0..threads)
                    .into_par_iter()
                    .map(|i| embedder.embed(img, Payload::new(i as u64)).is_ok())
                    .count()
            })
        });
        let unmarked = luma(&img);
        group.bench_with_input(
            BenchmarkId::new("detect-full-search-unmarked-all-threads", name),
            &unmarked,
            |b, l| {
                b.iter(|| {
                    use rayon::prelude::*;
                    (0..threads)
                        .into_par_iter()
                        .map(|_| detector.detect_luma(l).detected)
                        .count()
                })
            },
        );
        group.throughput(Throughput::Elements(u64::from(w * h)));
        let marked_luma = luma(&marked);
        group.bench_with_input(
            BenchmarkId::new("detect-no-search", name),
            &marked_luma,
            |b, l| b.iter(|| plain.detect_luma(l)),
        );
        let unmarked_luma = luma(&img);
        group.bench_with_input(
            BenchmarkId::new("detect-full-search-unmarked", name),
            &unmarked_luma,
            |b, l| b.iter(|| detector.detect_luma(l)),
        );
        group.bench_with_input(BenchmarkId::new("png-decode", name), &png, |b, png| {
            b.iter(|| image::load_from_memory_with_format(png, image::ImageFormat::Png))
        });
        group.bench_with_input(BenchmarkId::new("png-encode", name), &marked, |b, m| {
            b.iter(|| {
                let mut out = Vec::new();
                m.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
                    .map(|_| out.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
