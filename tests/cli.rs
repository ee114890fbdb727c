//! End-to-end tests of the `tattle` binary, each in a fresh temporary folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tattle() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tattle"))
}

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples")
}

fn run(args: &[&str], dir: &Path) -> Output {
    tattle()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A temporary folder holding a fresh key `k.key`.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["keygen", "-o", "k.key"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    dir
}

/// `tattle embed --key k.key --payload PAYLOAD INPUT -o OUTPUT` in `dir`.
fn embed(dir: &Path, payload: &str, input: &str, output: &str) -> Output {
    run(
        &[
            "embed",
            "--key",
            "k.key",
            "--payload",
            payload,
            input,
            "-o",
            output,
        ],
        dir,
    )
}

fn sample(name: &str) -> String {
    samples().join(name).to_string_lossy().into_owned()
}

/// A workspace where the sample photo (whose path is returned) is marked
/// with payload `00c0ffee12345678` as `m.png`.
fn marked_photo() -> (tempfile::TempDir, String) {
    let dir = workspace();
    let input = sample("photo_kodim23.png");
    let o = embed(dir.path(), "00c0ffee12345678", &input, "m.png");
    assert!(o.status.success(), "{}", stderr(&o));
    (dir, input)
}

#[test]
fn keygen_writes_a_private_key_and_never_overwrites() {
    let dir = workspace();
    let key = dir.path().join("k.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let before = std::fs::read(&key).unwrap();
    let o = run(&["keygen", "-o", "k.key"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("k.key"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&key).unwrap(), before);
    // Two keys differ.
    run(&["keygen", "-o", "k2.key"], dir.path());
    assert_ne!(std::fs::read(dir.path().join("k2.key")).unwrap(), before);
}

#[test]
fn embed_then_detect_reads_the_payload_and_json_is_complete() {
    let (dir, input) = marked_photo();
    let o = run(&["detect", "--key", "k.key", "m.png"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("payload 00c0ffee12345678"), "{}", stdout(&o));

    let o = run(
        &["detect", "--key", "k.key", "--json", "m.png", &input],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1), "one input is unmarked");
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let marked = &lines[0];
    assert_eq!(marked["path"], "m.png");
    assert_eq!(marked["detected"], true);
    assert_eq!(marked["payload"], "00c0ffee12345678");
    assert!(marked["false_positive_probability"].as_f64().unwrap() < 1e-9);
    assert!(marked["score"].as_f64().unwrap() > 6.0);
    let clean = &lines[1];
    assert_eq!(clean["detected"], false);
    assert!(clean["payload"].is_null());
    assert!(clean["false_positive_probability"].as_f64().unwrap() > 1e-9);
}

/// [`marked_photo`] with `crop.png` beside it: a 512x384 crop of the
/// marked picture, cut at (100, 60).
fn marked_photo_cropped() -> (tempfile::TempDir, String) {
    let (dir, input) = marked_photo();
    image::open(dir.path().join("m.png"))
        .unwrap()
        .crop_imm(100, 60, 512, 384)
        .save(dir.path().join("crop.png"))
        .unwrap();
    (dir, input)
}

#[test]
fn detect_with_the_original_says_whether_the_image_shows_it() {
    let (dir, input) = marked_photo_cropped();
    let other = sample("film3d_bbb_splash.png");
    let detect = |original: &str| {
        let o = run(
            &[
                "detect",
                "--key",
                "k.key",
                "--json",
                "--original",
                original,
                "crop.png",
            ],
            dir.path(),
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()
    };
    let found = detect(&input);
    let content = &found["content"];
    assert_eq!(content["status"], "compared", "{found}");
    assert_eq!(content["found"]["shows_original"], true, "{found}");
    assert!(
        (content["found"]["offset_x"].as_f64().unwrap() - 100.0).abs() <= 2.0,
        "{found}"
    );
    assert!(
        (content["found"]["offset_y"].as_f64().unwrap() - 60.0).abs() <= 2.0,
        "{found}"
    );
    // Named the wrong original, the same mark reads but the picture is not it.
    let found = detect(&other);
    assert_eq!(found["payload"], "00c0ffee12345678");
    assert_eq!(found["content"]["found"]["shows_original"], false, "{found}");
    let o = run(
        &["detect", "--key", "k.key", "--original", &other, "crop.png"],
        dir.path(),
    );
    assert!(
        stdout(&o).contains("WARNING: the image does not show the asset"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn detect_draws_the_original_beside_the_image_and_needs_the_original_to() {
    let (dir, input) = marked_photo_cropped();
    let o = run(
        &[
            "detect",
            "--key",
            "k.key",
            "--json",
            "--original",
            &input,
            "--side-by-side",
            "side.png",
            "crop.png",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let found: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(found["side_by_side"], "side.png", "{found}");
    let panels = image::open(dir.path().join("side.png")).unwrap().to_rgb8();
    assert_eq!(panels.dimensions(), (3 * 512 + 2 * 8, 384));
    // The original drawn as the crop shows it is the crop but for the mark,
    // and the test can tell: a few pixels off, it differs far more.
    let crop = image::open(dir.path().join("crop.png")).unwrap().to_rgb8();
    let difference = |shift: u32| {
        let pixels = (0..384).flat_map(|y| (0..500).map(move |x| (x, y)));
        let total: u32 = pixels
            .map(|(x, y)| {
                let (a, b) = (crop.get_pixel(x, y).0, panels.get_pixel(512 + 8 + x + shift, y).0);
                (0..3).map(|c| u32::from(a[c].abs_diff(b[c]))).sum::<u32>()
            })
            .sum();
        f64::from(total) / (3.0 * 500.0 * 384.0)
    };
    let (aligned, off_by_a_few) = (difference(0), difference(3));
    assert!(
        aligned < 2.0 && off_by_a_few > 3.0 * aligned,
        "{aligned} {off_by_a_few}"
    );
    // Without `--original` there is nothing to draw beside the image.
    let o = run(
        &[
            "detect",
            "--key",
            "k.key",
            "--side-by-side",
            "side.png",
            "crop.png",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--original"), "{}", stderr(&o));
}

#[test]
fn jpeg_output_with_quality_still_decodes() {
    let dir = workspace();
    let input = sample("film3d_bbb_splash.png");
    let args = [
        "embed",
        "--key",
        "k.key",
        "--payload",
        "0000000000000001",
        &input,
        "-o",
        "m.jpg",
        "--quality",
        "80",
    ];
    let o = run(&args, dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        &std::fs::read(dir.path().join("m.jpg")).unwrap()[..2],
        &[0xff, 0xd8]
    );
    let o = run(&["detect", "--key", "k.key", "--json", "m.jpg"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("\"payload\":\"0000000000000001\""));
}

#[test]
fn another_key_finds_nothing() {
    let dir = workspace();
    run(&["keygen", "-o", "other.key"], dir.path());
    let input = sample("photo_kodim23.png");
    embed(dir.path(), "1111111111111111", &input, "m.png");
    let o = run(&["detect", "--key", "other.key", "--json", "m.png"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["detected"], false);
    assert!(v["payload"].is_null());
}

#[test]
fn embedding_is_deterministic() {
    let dir = workspace();
    let input = sample("cel_openclipart_tiger.png");
    for out in ["a.png", "b.png"] {
        let o = embed(dir.path(), "abcdefabcdefabcd", &input, out);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(
        std::fs::read(dir.path().join("a.png")).unwrap(),
        std::fs::read(dir.path().join("b.png")).unwrap()
    );
}

#[test]
fn refuses_to_overwrite_the_input() {
    let dir = workspace();
    std::fs::copy(samples().join("photo_kodim23.png"), dir.path().join("in.png")).unwrap();
    let before = std::fs::read(dir.path().join("in.png")).unwrap();
    let o = embed(dir.path(), "1111111111111111", "in.png", "in.png");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_eq!(std::fs::read(dir.path().join("in.png")).unwrap(), before);
}

#[test]
fn bad_inputs_give_one_line_errors_naming_the_file() {
    let dir = workspace();
    std::fs::write(
        dir.path().join("corrupt.png"),
        b"\x89PNG\r\n\x1a\nthis is not a png",
    )
    .unwrap();
    std::fs::write(dir.path().join("bad.key"), "tattle-key-v1 1234\n").unwrap();
    std::fs::write(dir.path().join("tiny.png"), []).unwrap();
    let input = sample("photo_kodim23.png");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["detect", "--key", "k.key", "corrupt.png"], "corrupt.png"),
        (vec!["detect", "--key", "k.key", "missing.png"], "missing.png"),
        (vec!["detect", "--key", "k.key", "tiny.png"], "tiny.png"),
        (vec!["detect", "--key", "bad.key", &input], "bad.key"),
        (vec!["detect", "--key", "nokey.key", &input], "nokey.key"),
        (
            vec![
                "embed",
                "--key",
                "k.key",
                "--payload",
                "xyz",
                &input,
                "-o",
                "o.png",
            ],
            "payload",
        ),
        (
            vec![
                "embed",
                "--key",
                "k.key",
                "--payload",
                "1111111111111111",
                &input,
                "-o",
                "o.gif",
            ],
            "o.gif",
        ),
        (
            vec![
                "embed",
                "--key",
                "k.key",
                "--payload",
                "1111111111111111",
                "corrupt.png",
                "-o",
                "o.png",
            ],
            "corrupt.png",
        ),
        (
            vec![
                "embed",
                "--key",
                "k.key",
                "--payload",
                "1111111111111111",
                &input,
                "-o",
                "o.png",
                "--strength",
                "0",
            ],
            "strength",
        ),
    ];
    for (args, needle) in cases {
        let o = run(&args, dir.path());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // No output was left behind by the failed embeds.
    assert!(!dir.path().join("o.png").exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn an_image_too_small_to_carry_a_mark_is_refused() {
    let dir = workspace();
    let small = image::RgbImage::from_pixel(100, 300, image::Rgb([10, 20, 30]));
    small.save(dir.path().join("small.png")).unwrap();
    let o = embed(dir.path(), "1111111111111111", "small.png", "o.png");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("small.png") && stderr(&o).contains("at least"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("o.png").exists());
}

#[test]
fn an_image_whose_mark_would_not_read_back_is_refused() {
    let dir = workspace();
    // Big enough, but flat colour and a lone thin outline: nowhere for the
    // mark to hide.
    image::RgbImage::from_pixel(512, 512, image::Rgb([200, 40, 90]))
        .save(dir.path().join("swatch.png"))
        .unwrap();
    image::GrayImage::from_fn(256, 256, |x, y| {
        image::Luma([if x % 64 == 0 || y % 64 == 0 { 0 } else { 255 }])
    })
    .save(dir.path().join("grid.png"))
    .unwrap();
    for name in ["swatch.png", "grid.png"] {
        let o = embed(dir.path(), "1111111111111111", name, "o.png");
        assert_eq!(o.status.code(), Some(2), "{name}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(name) && err.contains("nothing written") && err.contains("does not read back"),
            "{err}"
        );
        assert!(!dir.path().join("o.png").exists());
    }
}

#[test]
fn a_failing_file_does_not_stop_detection_of_the_others() {
    let dir = workspace();
    let input = sample("photo_kodim23.png");
    embed(dir.path(), "2222222222222222", &input, "m.png");
    let o = run(
        &["detect", "--key", "k.key", "--json", "missing.png", "m.png"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).contains("2222222222222222"));
}

#[test]
fn bench_runs_on_the_samples_and_reports_tables() {
    let dir = tempfile::tempdir().unwrap();
    let samples = samples();
    let o = run(
        &[
            "bench",
            "--images",
            &samples.to_string_lossy(),
            "--attacks",
            "identity,jpeg-75",
            "--out",
            "b.md",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(dir.path().join("b.md")).unwrap();
    assert!(md.contains("| identity | 100.0 | 100.0 |"), "{md}");
    assert!(md.contains("luma PSNR"));
    let o = run(
        &[
            "bench",
            "--images",
            &samples.to_string_lossy(),
            "--attacks",
            "nonsense",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown attack"));
}

#[test]
fn bench_over_several_keys_counts_every_image_under_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let samples = samples();
    let bench = |keys: &str| {
        run(
            &[
                "bench",
                "--images",
                &samples.to_string_lossy(),
                "--attacks",
                "identity",
                "--keys",
                keys,
                "--json",
            ],
            dir.path(),
        )
    };
    let o = bench("2");
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (summary, images) = lines.split_last().unwrap();
    let images_in_folder = std::fs::read_dir(&samples)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "png"))
        .count();
    assert_eq!(images.len(), 2 * images_in_folder);
    for key in [0, 1] {
        let marked_with = images.iter().filter(|r| r["key"] == key).count();
        assert_eq!(marked_with, images_in_folder, "images marked with key {key}");
    }
    assert_eq!(summary["keys"], 2);
    assert_eq!(summary["images"], images_in_folder);
    assert_eq!(summary["rows"][0][1]["runs"], 2 * images_in_folder);
    assert_eq!(summary["rows"][0][1]["exact"], 2 * images_in_folder);
    // Each outcome says how far the image's own payload was from being read
    // blind: here, untouched, far past the threshold of 10^-9.
    for outcome in images.iter().map(|r| &r["outcomes"][0]) {
        assert!(outcome["own_blind_log10"].as_f64().unwrap() < -9.0, "{outcome}");
        assert!(outcome["own_score"].as_f64().unwrap() > 11.0, "{outcome}");
    }
    // The first key is the benchmark's own: its images read as in a one-key run.
    let one = bench("1");
    let first: Vec<&serde_json::Value> = images.iter().filter(|r| r["key"] == 0).collect();
    let alone: Vec<serde_json::Value> = stdout(&one)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (a, b) in first.iter().zip(&alone) {
        assert_eq!(a["image"], b["image"]);
        assert_eq!(a["luma_psnr"], b["luma_psnr"]);
        assert_eq!(a["outcomes"], b["outcomes"]);
    }
    let o = bench("0");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--keys"), "{}", stderr(&o));
}

#[cfg(unix)]
#[test]
fn a_key_file_others_can_read_gives_a_warning_and_is_never_printed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = workspace();
    let key = dir.path().join("k.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = run(
        &["detect", "--key", "k.key", &sample("photo_kodim23.png")],
        dir.path(),
    );
    let err = stderr(&o);
    assert!(err.contains("warning") && err.contains("chmod 600"), "{err}");
    let secret = std::fs::read_to_string(&key).unwrap();
    let hex = secret.split_whitespace().last().unwrap();
    assert!(!err.contains(hex) && !stdout(&o).contains(hex));
}

/// Writes `image` as PNG carrying `icc` as its colour profile.
fn save_png_with_profile(image: &image::DynamicImage, path: &Path, icc: &[u8]) {
    use image::ImageEncoder;
    let mut encoder = image::codecs::png::PngEncoder::new(std::fs::File::create(path).unwrap());
    encoder.set_icc_profile(icc.to_vec()).unwrap();
    image.write_with_encoder(encoder).unwrap();
}

fn icc_of(path: &Path) -> Option<Vec<u8>> {
    use image::ImageDecoder;
    let mut decoder = image::ImageReader::open(path)
        .unwrap()
        .with_guessed_format()
        .unwrap()
        .into_decoder()
        .unwrap();
    decoder.icc_profile().unwrap()
}

#[test]
fn bit_depth_alpha_and_colour_profile_survive_marking() {
    let dir = workspace();
    let photo = image::open(samples().join("photo_kodim23.png")).unwrap();
    // 16-bit RGBA with a varied alpha channel, and a colour profile.
    let mut rgba16 = photo.to_rgba16();
    for (x, y, p) in rgba16.enumerate_pixels_mut() {
        p[3] = ((x * 97 + y * 31) % 65536) as u16 | 0x8000;
    }
    let source = image::DynamicImage::ImageRgba16(rgba16.clone());
    let icc = b"not a real profile, but tattle must carry it byte for byte".to_vec();
    let input = dir.path().join("plate.png");
    save_png_with_profile(&source, &input, &icc);
    for output in ["marked.png", "marked.tif", "marked.jpg"] {
        let o = embed(dir.path(), "00000000000000aa", input.to_str().unwrap(), output);
        assert!(o.status.success(), "{output}: {}", stderr(&o));
        let out = dir.path().join(output);
        assert_eq!(
            icc_of(&out).as_deref(),
            Some(&icc[..]),
            "{output}: the colour profile was lost"
        );
        let marked = image::open(&out).unwrap();
        if output != "marked.jpg" {
            let marked = marked.as_rgba16().expect("still 16-bit RGBA");
            let alpha_in: Vec<u16> = rgba16.pixels().map(|p| p[3]).collect();
            let alpha_out: Vec<u16> = marked.pixels().map(|p| p[3]).collect();
            assert!(alpha_in == alpha_out, "{output}: alpha changed");
        }
        let o = run(&["detect", "--key", "k.key", "--json", output], dir.path());
        assert!(
            stdout(&o).contains("\"payload\":\"00000000000000aa\""),
            "{output}: {}",
            stdout(&o)
        );
    }
}

#[test]
fn an_hdr_exr_is_marked_as_float_and_traced_in_its_srgb_jpeg_export() {
    let dir = workspace();
    let frame = image::open(samples().join("film3d_bbb_splash.png"))
        .unwrap()
        .to_rgba8();
    // Linear light, exposed so that highlights pass 1.0, with a varied alpha.
    let plate = image::Rgba32FImage::from_fn(frame.width(), frame.height(), |x, y| {
        let p = frame.get_pixel(x, y).0;
        let linear = |v: u8| 3.0 * tattle_core::plane::decode_to_linear(f32::from(v) / 255.0);
        image::Rgba([
            linear(p[0]),
            linear(p[1]),
            linear(p[2]),
            ((x + y) % 100) as f32 / 100.0,
        ])
    });
    let input = dir.path().join("plate.exr");
    image::DynamicImage::ImageRgba32F(plate.clone())
        .save(&input)
        .unwrap();
    for output in ["marked.exr", "marked.jpg"] {
        let o = embed(dir.path(), "00000000000000ee", "plate.exr", output);
        assert!(o.status.success(), "{output}: {}", stderr(&o));
        let o = run(&["detect", "--key", "k.key", "--json", output], dir.path());
        assert!(
            stdout(&o).contains("\"payload\":\"00000000000000ee\""),
            "{output}: {}",
            stdout(&o)
        );
    }
    let marked = image::open(dir.path().join("marked.exr")).unwrap();
    let marked = marked.as_rgba32f().expect("still float RGBA");
    assert!(
        marked.pixels().zip(plate.pixels()).all(|(m, p)| m[3] == p[3]),
        "alpha changed"
    );
    assert!(marked.pixels().any(|p| p[0] > 1.5), "highlights stay above 1.0");
    // The JPEG is the sRGB view of the plate (clamp, then sRGB), not scaled linear light.
    let jpeg = image::open(dir.path().join("marked.jpg")).unwrap().to_rgb8();
    let view = tattle_core::plane::display_rgb8(&image::DynamicImage::ImageRgba32F(plate));
    let mean_error = jpeg
        .as_raw()
        .iter()
        .zip(view.as_raw())
        .map(|(&a, &b)| f64::from(a.abs_diff(b)))
        .sum::<f64>()
        / view.len() as f64;
    assert!(
        mean_error < 3.0,
        "the JPEG is not the sRGB view: mean error {mean_error}"
    );
}

#[test]
fn detect_matches_a_listed_payload_when_none_can_be_read_blind() {
    let dir = tempfile::tempdir().unwrap();
    tattle_core::Key::from_bytes([21; 32])
        .write_new(&dir.path().join("k.key"))
        .unwrap();
    let payload = "00000000000000fa";
    let input = sample("film3d_bbb_splash.png");
    let o = embed(dir.path(), payload, &input, "m.png");
    assert!(o.status.success(), "{}", stderr(&o));
    // Halved and re-encoded as JPEG 72: too little is left for 64 bits.
    let halved = image::open(dir.path().join("m.png"))
        .unwrap()
        .resize(480, 270, image::imageops::FilterType::CatmullRom)
        .to_rgb8();
    let mut jpeg = Vec::new();
    halved
        .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 72))
        .unwrap();
    std::fs::write(dir.path().join("leak.jpg"), jpeg).unwrap();
    let o = run(&["detect", "--key", "k.key", "--json", "leak.jpg"], dir.path());
    assert_eq!(
        o.status.code(),
        Some(1),
        "blind reading must fail for this test to mean anything: {}",
        stdout(&o)
    );

    // The payloads given out: this one, its neighbours and 990 others.
    let mut list = String::from("# payloads given out with k.key\n\n");
    for n in 0..1000u64 {
        let p = if n < 10 {
            0xf5 + n
        } else {
            n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        };
        list.push_str(&format!("{p:016x}  # delivery {n}\n"));
    }
    std::fs::write(dir.path().join("given.txt"), list).unwrap();
    let o = run(
        &[
            "detect",
            "--key",
            "k.key",
            "--payloads",
            "given.txt",
            "--json",
            "leak.jpg",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let line: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert!(line["payload"].is_null(), "{line}");
    let bytes = std::fs::read(dir.path().join("leak.jpg")).unwrap();
    assert_eq!(line["sha256"], tattle_studio::files::sha256_hex(&bytes));
    assert_eq!(line["matched"]["issued"]["payload"], payload, "{line}");
    assert_eq!(line["matched"]["compared"], 1000);
    assert!(
        line["matched"]["false_positive_log10"].as_f64().unwrap() < -9.0,
        "{line}"
    );
    let scale = line["geometry"]["scale_x"].as_f64().unwrap();
    assert!((scale - 0.5).abs() < 0.01, "{line}");
    // The match says where it was found, and the verdict reports that.
    assert_eq!(line["matched"]["geometry"], line["geometry"], "{line}");
    assert_eq!(line["matched"]["sharpened"], line["sharpened"], "{line}");
    let o = run(
        &["detect", "--key", "k.key", "--payloads", "given.txt", "leak.jpg"],
        dir.path(),
    );
    let text = stdout(&o);
    assert!(
        text.contains(&format!("matches payload {payload}, the best of the 1000 listed"))
            && text.contains("scaled 0.50"),
        "{text}"
    );

    // The unmarked frame matches none of them.
    let o = run(
        &["detect", "--key", "k.key", "--payloads", "given.txt", &input],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("no mark found"), "{}", stdout(&o));

    // A list with a bad line is refused, naming the file and the line.
    std::fs::write(dir.path().join("bad.txt"), "00000000000000fa\nnot-a-payload\n").unwrap();
    let o = run(
        &["detect", "--key", "k.key", "--payloads", "bad.txt", "leak.jpg"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.txt line 2"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    // A payload list or an original that cannot be read is an error naming
    // it, before any input is examined.
    for (option, missing) in [("--payloads", "missing.txt"), ("--original", "missing.png")] {
        let o = run(
            &["detect", "--key", "k.key", option, missing, "leak.jpg"],
            dir.path(),
        );
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains(missing), "{}", stderr(&o));
        assert!(stdout(&o).is_empty());
    }
}
