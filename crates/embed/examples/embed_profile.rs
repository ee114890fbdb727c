//! Marks one 1920x1080 textured frame (or the image given after the
//! number of rounds; `-` for the frame) repeatedly, for profilers
//! (`perf record ./target/release/examples/embed_profile [ROUNDS [IMAGE [SSIM_FLOOR]]]`;
//! an SSIM floor of 1 turns the mask ceiling off).
#![allow(clippy::unwrap_used, clippy::expect_used)]
use image::{DynamicImage, RgbImage};
use tattle_embed::{EmbedOptions, Key, Payload};

// As in the `tattle` binary: big planes are reused instead of being
// returned to the OS and faulted in again for every frame.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let rounds: usize = std::env::args().nth(1).map_or(10, |a| a.parse().unwrap());
    let img = match std::env::args().nth(2).filter(|a| a != "-") {
        Some(path) => image::open(&path).unwrap(),
        None => DynamicImage::ImageRgb8(RgbImage::from_fn(1920, 1080, |x, y| {
            let h = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 7;
            let base = (128.0 + 60.0 * ((x as f32 * 0.05).sin() * (y as f32 * 0.031).cos())) as u32;
            let v = (base + h % 40).min(255) as u8;
            image::Rgb([v, v / 2, 200 - v / 2])
        })),
    };
    let ssim_floor = std::env::args()
        .nth(3)
        .map_or(EmbedOptions::default().ssim_floor, |a| a.parse().unwrap());
    let embedder = EmbedOptions::default()
        .ssim_floor(ssim_floor)
        .build(&Key::from_bytes([5; 32]))
        .unwrap();
    let start = std::time::Instant::now();
    for i in 0..rounds {
        std::hint::black_box(embedder.embed(&img, Payload::new(i as u64)).unwrap());
    }
    let per = start.elapsed().as_secs_f64() / rounds as f64;
    println!(
        "embed: {:.1} ms per frame, {:.1} MP/s",
        per * 1e3,
        f64::from(img.width()) * f64::from(img.height()) / per / 1e6
    );
}
