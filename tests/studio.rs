//! The studio workflow end to end through the `tattle` binary: init,
//! vendors, stamping deliveries, tracing a leak, the ledger's audits, and
//! the failure cases (corrupt files, interrupted and concurrent runs,
//! re-stamping).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn tattle(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tattle"))
        .args(args)
        .current_dir(dir)
        .env_remove("TATTLE_STUDIO")
        .output()
        .expect("the binary runs")
}

fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "exit {:?}\n{}",
        o.status.code(),
        text(&o.stderr)
    );
    o
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json_lines(o: &Output) -> Vec<Value> {
    text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples")
}

/// A studio in `dir/studio` with three vendors.
fn studio() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    ok(tattle(
        dir.path(),
        &["init", "studio", "--name", "Nimbus Pictures"],
    ));
    let studio = dir.path().join("studio");
    for vendor in ["Acme VFX", "Bolt Paint", "Cobalt Comp"] {
        ok(tattle(
            &studio,
            &["vendor", "add", vendor, "--contact", "ops@example.com"],
        ));
    }
    (dir, studio)
}

/// `tattle stamp --vendor VENDOR INPUT --out OUT EXTRA…` in the studio.
fn stamp(studio: &Path, vendor: &str, input: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "stamp",
        "--vendor",
        vendor,
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    tattle(studio, &args)
}

/// `image` saved as a JPEG of this quality, as a leak is re-encoded.
fn save_jpeg(image: &image::DynamicImage, path: &Path, quality: u8) {
    let mut bytes = Vec::new();
    image
        .to_rgb8()
        .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut bytes, quality,
        ))
        .unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A 256x256 frame cut from a sample photo, different for every `seed`.
fn frame(path: &Path, seed: u32) {
    let photo = image::open(samples().join("photo_kodim23.png")).unwrap();
    let (x, y) = ((seed * 37) % (768 - 256), (seed * 53) % (512 - 256));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    photo.crop_imm(x, y, 256, 256).save(path).unwrap();
}

#[test]
fn init_vendors_stamp_and_trace_a_damaged_leak_to_the_right_vendor_and_asset() {
    let (dir, studio) = studio();
    let vendors = json_lines(&ok(tattle(&studio, &["vendor", "list", "--json"])));
    let names: Vec<&str> = vendors[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Acme VFX", "Bolt Paint", "Cobalt Comp"]);

    let samples = samples();
    for (vendor, out) in [
        ("Acme VFX", "acme"),
        ("Bolt Paint", "bolt"),
        ("Cobalt Comp", "cobalt"),
    ] {
        let out = dir.path().join(out);
        let o = ok(stamp(&studio, vendor, &samples, &out, &["--json"]));
        let lines = json_lines(&o);
        assert_eq!(lines.len(), 3, "{}", text(&o.stdout));
        assert!(lines.iter().all(|l| l["status"] == "issued"));
        assert!(out.join("photo_kodim23.png").is_file());
    }

    // The leak: Bolt Paint's copy of the 3D frame, cropped, shrunk and re-encoded as JPEG 60.
    let stamped = image::open(dir.path().join("bolt/film3d_bbb_splash.png")).unwrap();
    let leaked = stamped
        .crop_imm(90, 40, 720, 450)
        .resize(576, 360, image::imageops::FilterType::Triangle);
    let leak = dir.path().join("leak.jpg");
    save_jpeg(&leaked, &leak, 60);

    let heat = dir.path().join("heat.png");
    let side_by_side = dir.path().join("side.png");
    // From a folder below the workspace: found by walking up.
    let shots = studio.join("shots");
    std::fs::create_dir_all(&shots).unwrap();
    let o = ok(tattle(
        &shots,
        &[
            "trace",
            leak.to_str().unwrap(),
            "--json",
            "--heatmap",
            heat.to_str().unwrap(),
            "--side-by-side",
            side_by_side.to_str().unwrap(),
        ],
    ));
    let trace = &json_lines(&o)[0];
    assert_eq!(trace["verdict"], "attributed", "{trace}");
    assert_eq!(trace["vendor"]["name"], "Bolt Paint");
    assert!(trace["issuance"]["source_path"]
        .as_str()
        .unwrap()
        .ends_with("film3d_bbb_splash.png"));
    assert!(trace["issuance"]["output_path"]
        .as_str()
        .unwrap()
        .ends_with("bolt/film3d_bbb_splash.png"));
    assert!(trace["detection"]["false_positive_probability"].as_f64().unwrap() < 1e-9);
    let scale = trace["detection"]["geometry"]["scale_x"].as_f64().unwrap();
    assert!((scale - 0.8).abs() < 0.01, "{scale}");
    // The leak shows the delivered asset, cut at (90, 40).
    let content = &trace["content"];
    assert_eq!(content["status"], "compared", "{content}");
    assert_eq!(content["found"]["shows_original"], true, "{content}");
    let at = |axis: &str| content["found"][axis].as_f64().unwrap();
    assert!(
        (at("offset_x") - 90.0).abs() <= 3.0 && (at("offset_y") - 40.0).abs() <= 3.0,
        "{content}"
    );
    assert_eq!(image::image_dimensions(&heat).unwrap(), (576, 360));
    // The side-by-side picture: the leak, the delivered file as the leak
    // shows it, and the two in squares. The second panel matches the first.
    assert_eq!(trace["side_by_side"], side_by_side.to_str().unwrap());
    let panels = image::open(&side_by_side).unwrap().to_luma8();
    assert_eq!(panels.dimensions(), (3 * 576 + 2 * 8, 360));
    let difference = |shift: u32| {
        let pixels = (0..360).flat_map(|y| (0..576).map(move |x| (x, y)));
        pixels
            .map(|(x, y)| f64::from(panels.get_pixel(x, y)[0].abs_diff(panels.get_pixel(x + shift, y)[0])))
            .sum::<f64>()
            / (576.0 * 360.0)
    };
    let (aligned, off_by_a_few) = (difference(576 + 8), difference(576 + 8 + 3));
    assert!(
        aligned < 4.0 && off_by_a_few > 2.0 * aligned,
        "{aligned} {off_by_a_few}"
    );

    // Text output names vendor and asset; an unmarked image is "no mark".
    let original = samples.join("film3d_bbb_splash.png");
    let o = tattle(
        &studio,
        &["trace", leak.to_str().unwrap(), original.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o.stdout);
    assert!(
        out.contains("leaked from vendor \"Bolt Paint\"") && out.contains("film3d_bbb_splash.png"),
        "{out}"
    );
    assert!(out.contains("no mark of this studio found"), "{out}");

    // The audit trail: nine issuances, all intact; then one is tampered with.
    let csv = text(&ok(tattle(&studio, &["ledger", "export", "--format", "csv"])).stdout);
    assert_eq!(csv.lines().count(), 1 + 9, "{csv}");
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .starts_with("serial,payload,vendor_id,vendor,status"));
    let export: Value =
        serde_json::from_slice(&ok(tattle(&studio, &["ledger", "export", "--format", "json"])).stdout)
            .unwrap();
    assert_eq!(export["issuances"].as_array().unwrap().len(), 9);
    assert!(
        !text(&std::fs::read(studio.join("ledger.sqlite")).unwrap())
            .contains(&text(&std::fs::read(studio.join("tattle.key")).unwrap())[60..90]),
        "the key must never reach the ledger"
    );
    ok(tattle(&studio, &["ledger", "verify"]));
    std::fs::write(dir.path().join("acme/photo_kodim23.png"), b"tampered").unwrap();
    let o = tattle(&studio, &["ledger", "verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stdout).contains("acme/photo_kodim23.png: modified"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn a_corrupt_file_does_not_stop_the_batch_and_a_rerun_resumes() {
    let (dir, studio) = studio();
    let input = dir.path().join("in");
    for i in 0..4 {
        frame(&input.join(format!("shot{i}/frame.png")), i);
    }
    std::fs::write(input.join("shot1/broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    std::fs::write(input.join("shot2/tiny.png"), b"").unwrap();
    image::RgbImage::new(64, 64)
        .save(input.join("shot3/thumb.png"))
        .unwrap();
    let out = dir.path().join("out");
    let stamp = |extra: &[&str]| stamp(&studio, "acme vfx", &input, &out, extra);
    let o = stamp(&["--jobs", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("4 stamped, 0 already stamped and skipped, 3 failed"),
        "{err}"
    );
    for name in ["shot1/broken.png", "shot2/tiny.png", "shot3/thumb.png"] {
        assert!(err.contains(name), "{name} not named in:\n{err}");
        assert!(!out.join(name).exists(), "{name} must not be published");
    }
    assert!(err.contains("64x64"), "{err}");
    for i in 0..4 {
        assert!(out.join(format!("shot{i}/frame.png")).is_file());
    }
    // Re-run: everything already stamped is skipped; a deleted output is re-stamped.
    std::fs::remove_file(out.join("shot2/frame.png")).unwrap();
    let o = stamp(&["--json"]);
    let lines = json_lines(&o);
    let status = |name: &str| {
        lines
            .iter()
            .find(|l| l["source"].as_str().unwrap().ends_with(name))
            .map(|l| l["status"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(status("shot0/frame.png"), "skipped");
    assert_eq!(status("shot2/frame.png"), "issued");
    assert_eq!(status("shot1/broken.png"), "failed");
    // No temporary files are left behind.
    let leftovers: Vec<_> = walk(&out)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".tattle-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_frame_too_flat_to_carry_a_mark_is_refused_and_leaves_no_issuance() {
    let (dir, studio) = studio();
    let input = dir.path().join("in");
    frame(&input.join("frame.png"), 3);
    // A black slate, as at the end of a fade: no texture, so no mark reads.
    image::RgbImage::new(512, 512)
        .save(input.join("slate.png"))
        .unwrap();
    let out = dir.path().join("out");
    let issuances = || -> Vec<Value> {
        let export: Value =
            serde_json::from_slice(&ok(tattle(&studio, &["ledger", "export", "--format", "json"])).stdout)
                .unwrap();
        export["issuances"].as_array().unwrap().clone()
    };
    for _run in 0..2 {
        let o = stamp(&studio, "Acme VFX", &input, &out, &[]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(err.contains("1 failed"), "{err}");
        assert!(
            err.contains("slate.png")
                && err.contains("does not read back")
                && err.contains("too little texture"),
            "{err}"
        );
        assert!(
            !out.join("slate.png").exists(),
            "an unmarkable frame must not be published"
        );
        assert!(out.join("frame.png").is_file());
        // Only the frame was issued; the slate's issuance was withdrawn, on
        // the first run and on the retry, so nothing is left pending.
        let issued = issuances();
        assert_eq!(issued.len(), 1, "{issued:?}");
        assert_eq!(issued[0]["status"], "issued");
        assert!(issued[0]["source_path"].as_str().unwrap().ends_with("frame.png"));
    }
    ok(tattle(&studio, &["ledger", "verify"]));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// A studio, and `frame.png` (made with `seed`) stamped for Acme VFX into
/// `first/`: the directory, the studio, the source and the stamped file.
fn frame_stamped_for_acme(seed: u32) -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let (dir, studio) = studio();
    let source = dir.path().join("frame.png");
    frame(&source, seed);
    let first = dir.path().join("first");
    ok(stamp(&studio, "Acme VFX", &source, &first, &[]));
    let stamped = first.join("frame.png");
    (dir, studio, source, stamped)
}

#[test]
fn an_image_already_stamped_is_refused_unless_forced() {
    let (dir, studio, _, stamped) = frame_stamped_for_acme(7);
    let second = dir.path().join("second");
    let o = stamp(&studio, "Bolt Paint", &stamped, &second, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("already carries this studio's mark"),
        "{}",
        text(&o.stderr)
    );
    assert!(!second.join("frame.png").exists());
    ok(stamp(&studio, "Bolt Paint", &stamped, &second, &["--force"]));
    assert!(second.join("frame.png").is_file());
}

#[test]
fn detect_on_a_stamped_delivery_points_to_trace() {
    let (dir, studio) = studio();
    let out = dir.path().join("acme");
    ok(stamp(
        &studio,
        "Acme VFX",
        &samples().join("photo_kodim23.png"),
        &out,
        &[],
    ));
    let stamped = out.join("photo_kodim23.png");
    let stamped = stamped.to_str().unwrap();
    // The studio key finds the pilot, but the payload is keyed to the vendor.
    let o = ok(tattle(&studio, &["detect", "--key", "tattle.key", stamped]));
    let line = text(&o.stdout);
    assert!(
        line.contains("marked, payload unreadable") && line.contains("`tattle trace` reads"),
        "{line}"
    );
    let traced = text(&ok(tattle(&studio, &["trace", stamped])).stdout);
    assert!(traced.contains("vendor \"Acme VFX\""), "{traced}");
}

#[test]
fn a_mark_copied_onto_another_picture_is_flagged() {
    let (dir, studio) = studio();
    let source = samples().join("photo_kodim23.png");
    let out = dir.path().join("acme");
    ok(stamp(&studio, "Acme VFX", &source, &out, &[]));
    let stamped = out.join("photo_kodim23.png");

    // The copy attack with a perfect estimate of the mark (the stamped
    // file minus its source), added to another picture of the same size.
    let marked = image::open(&stamped).unwrap().to_rgb8();
    let original = image::open(&source).unwrap().to_rgb8();
    let other = image::open(samples().join("film3d_bbb_splash.png"))
        .unwrap()
        .crop_imm(100, 20, 768, 512)
        .to_rgb8();
    let forged = image::RgbImage::from_fn(768, 512, |x, y| {
        let (m, o, t) = (
            marked.get_pixel(x, y),
            original.get_pixel(x, y),
            other.get_pixel(x, y),
        );
        image::Rgb(std::array::from_fn(|c| {
            (i32::from(t[c]) + i32::from(m[c]) - i32::from(o[c])).clamp(0, 255) as u8
        }))
    });
    let forged_path = dir.path().join("forged.png");
    forged.save(&forged_path).unwrap();
    let trace = |path: &Path| {
        json_lines(&ok(tattle(&studio, &["trace", "--json", path.to_str().unwrap()])))[0].clone()
    };

    // The mark reads, and names the delivery; the picture is not it.
    let found = trace(&forged_path);
    assert_eq!(found["verdict"], "attributed", "{found}");
    assert_eq!(found["content"]["status"], "compared", "{found}");
    assert_eq!(found["content"]["file"], stamped.to_str().unwrap());
    assert_eq!(found["content"]["found"]["shows_original"], false, "{found}");
    assert!(
        found["content"]["found"]["correlation"].as_f64().unwrap() < 0.2,
        "{found}"
    );
    let line = text(&ok(tattle(&studio, &["trace", forged_path.to_str().unwrap()])).stdout);
    assert!(
        line.contains("WARNING: the image does not show the asset"),
        "{line}"
    );

    // The delivered file itself shows it. Once deleted, the source stands in.
    let leak = dir.path().join("leak.png");
    std::fs::copy(&stamped, &leak).unwrap();
    assert_eq!(trace(&leak)["content"]["found"]["shows_original"], true);
    std::fs::remove_file(&stamped).unwrap();
    let found = trace(&leak);
    let source = source.canonicalize().unwrap();
    assert_eq!(found["content"]["file"], source.to_str().unwrap(), "{found}");
    assert_eq!(found["content"]["found"]["shows_original"], true, "{found}");
}

#[test]
fn without_the_delivered_file_or_its_source_the_content_is_not_compared() {
    let (dir, studio, source, stamped) = frame_stamped_for_acme(3);
    let leak = dir.path().join("leak.png");
    std::fs::rename(stamped, &leak).unwrap();
    // The source changed since it was stamped: it is not what was delivered.
    frame(&source, 4);
    let o = ok(tattle(&studio, &["trace", "--json", leak.to_str().unwrap()]));
    let found = &json_lines(&o)[0];
    assert_eq!(found["verdict"], "attributed", "{found}");
    assert_eq!(found["content"]["status"], "unavailable", "{found}");
    let side = dir.path().join("side.png");
    let o = ok(tattle(
        &studio,
        &[
            "trace",
            leak.to_str().unwrap(),
            "--side-by-side",
            side.to_str().unwrap(),
        ],
    ));
    assert!(
        text(&o.stdout).contains("content not compared"),
        "{}",
        text(&o.stdout)
    );
    // Nothing to show beside the leak: no picture, and a note that says so.
    assert!(!side.exists());
    assert!(
        text(&o.stderr).contains("no side-by-side picture"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn concurrent_stamp_processes_lose_and_duplicate_nothing() {
    let (dir, studio) = studio();
    const PROCESSES: usize = 4;
    const PER_PROCESS: u32 = 5;
    for p in 0..PROCESSES {
        for i in 0..PER_PROCESS {
            frame(&dir.path().join(format!("in{p}/f{i}.png")), p as u32 * 100 + i);
        }
    }
    // All started before any is waited for, so they write the ledger at once.
    let handles: Vec<_> = (0..PROCESSES)
        .map(|p| {
            let vendor = ["Acme VFX", "Bolt Paint"][p % 2];
            Command::new(env!("CARGO_BIN_EXE_tattle"))
                .args(["stamp", "--vendor", vendor, "--jobs", "1"])
                .arg(dir.path().join(format!("in{p}")))
                .arg("--out")
                .arg(dir.path().join(format!("out{p}")))
                .current_dir(&studio)
                .env_remove("TATTLE_STUDIO")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for h in handles {
        let o = h.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    let export: Value =
        serde_json::from_slice(&ok(tattle(&studio, &["ledger", "export", "--format", "json"])).stdout)
            .unwrap();
    let issuances = export["issuances"].as_array().unwrap();
    let expected = PROCESSES * PER_PROCESS as usize;
    assert_eq!(issuances.len(), expected);
    let mut payloads: Vec<&str> = issuances.iter().map(|i| i["payload"].as_str().unwrap()).collect();
    payloads.sort_unstable();
    payloads.dedup();
    assert_eq!(payloads.len(), expected, "payloads must be unique");
    assert!(issuances.iter().all(|i| i["status"] == "issued"));
    ok(tattle(&studio, &["ledger", "verify"]));
}

#[test]
fn studio_commands_outside_a_studio_say_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let o = tattle(dir.path(), &["vendor", "list"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("tattle init"), "{}", text(&o.stderr));
    // --studio and TATTLE_STUDIO point at one from anywhere.
    ok(tattle(dir.path(), &["init", "s"]));
    ok(tattle(dir.path(), &["--studio", "s", "vendor", "add", "Acme"]));
    let o = Command::new(env!("CARGO_BIN_EXE_tattle"))
        .args(["vendor", "list"])
        .current_dir(std::env::temp_dir())
        .env("TATTLE_STUDIO", dir.path().join("s"))
        .output()
        .unwrap();
    assert!(text(&o.stdout).contains("Acme"), "{}", text(&o.stderr));
    let o = tattle(dir.path(), &["init", "s"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("already exists"));
    let o = tattle(
        dir.path(),
        &["--studio", "s", "stamp", "--vendor", "Nobody", "s", "--out", "o"],
    );
    assert!(
        text(&o.stderr).contains("no vendor named \"Nobody\""),
        "{}",
        text(&o.stderr)
    );
}

/// A studio in `dir/studio` whose key is `key` (`tattle init` draws a
/// random one), so that what the engine reads is the same on every run.
fn studio_with_key(key: [u8; 32]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    ok(tattle(dir.path(), &["init", "studio"]));
    let studio = dir.path().join("studio");
    let (key_path, ledger_path) = (studio.join("tattle.key"), studio.join("ledger.sqlite"));
    std::fs::remove_file(&key_path).unwrap();
    std::fs::remove_file(&ledger_path).unwrap();
    let key = tattle_core::Key::from_bytes(key);
    key.write_new(&key_path).unwrap();
    tattle_studio::ledger::Ledger::create(&ledger_path, &key).unwrap();
    (dir, studio)
}

#[test]
fn a_leak_too_damaged_to_decode_is_matched_with_the_ledger_and_colluders_are_both_named() {
    let (dir, studio) = studio_with_key([22; 32]);
    for vendor in ["Acme VFX", "Bolt Paint"] {
        ok(tattle(&studio, &["vendor", "add", vendor]));
    }
    let frame = samples().join("film3d_bbb_splash.png");
    for (vendor, out) in [("Acme VFX", "acme"), ("Bolt Paint", "bolt")] {
        ok(stamp(&studio, vendor, &frame, &dir.path().join(out), &[]));
    }
    // Bolt Paint's copy, halved and re-encoded as JPEG 70 for a web page
    // (at 75 this frame now decodes blind: measured, pilot 7.0 and payload
    // z 11.9 under the exact halving; at 70, pilot 6.5 and no payload, but
    // the match scores 10.4).
    let stamped = image::open(dir.path().join("bolt/film3d_bbb_splash.png")).unwrap();
    let leaked = stamped.resize(480, 270, image::imageops::FilterType::CatmullRom);
    let leak = dir.path().join("leak.jpg");
    save_jpeg(&leaked, &leak, 70);

    let o = ok(tattle(&studio, &["trace", leak.to_str().unwrap(), "--json"]));
    let trace = &json_lines(&o)[0];
    assert_eq!(trace["verdict"], "matched", "{trace}");
    assert!(trace["detection"]["payload"].is_null(), "{trace}");
    assert_eq!(trace["vendor"]["name"], "Bolt Paint");
    assert!(trace["issuance"]["output_path"]
        .as_str()
        .unwrap()
        .ends_with("bolt/film3d_bbb_splash.png"));
    let evidence = &trace["evidence"];
    assert_eq!(evidence["issued"]["recipient"]["vendor"], 2, "{evidence}");
    assert_eq!(evidence["compared"], 2);
    // One issuance per vendor: no other of Bolt's to rule out.
    assert!(evidence["another_log10"].is_null(), "{evidence}");
    assert!(
        evidence["false_positive_log10"].as_f64().unwrap() < -9.0,
        "{evidence}"
    );
    assert_eq!(trace["also"].as_array().unwrap().len(), 0);
    // What ties the verdict to the file, the key and the tool.
    let bytes = std::fs::read(&leak).unwrap();
    assert_eq!(trace["sha256"], tattle_studio::files::sha256_hex(&bytes));
    let fingerprint = tattle_core::Key::from_bytes([22; 32]).fingerprint();
    assert_eq!(trace["key_fingerprint"], fingerprint.as_str());
    assert_eq!(trace["tattle_version"], env!("CARGO_PKG_VERSION"));
    let examined = trace["examined"].as_str().unwrap();
    assert!(
        examined.len() == 20 && examined.starts_with("20") && examined.ends_with('Z'),
        "{examined}"
    );
    // Where the mark was found: the halving, undone, at the reading the
    // evidence rests on.
    let scale = &trace["detection"]["geometry"]["scale_x"];
    assert!((scale.as_f64().unwrap() - 0.5).abs() < 0.01, "{trace}");
    assert_eq!(evidence["geometry"], trace["detection"]["geometry"], "{trace}");

    let heat = dir.path().join("heat.png");
    let o = ok(tattle(
        &studio,
        &[
            "trace",
            leak.to_str().unwrap(),
            "--heatmap",
            heat.to_str().unwrap(),
        ],
    ));
    let out = text(&o.stdout);
    // The map is drawn only for a mark detected blind, and says so.
    assert!(text(&o.stderr).contains("no heat map for"), "{}", text(&o.stderr));
    assert!(!heat.exists());
    assert!(
        out.contains("leaked from vendor \"Bolt Paint\"")
            && out.contains("unreadable blind")
            && out.contains("scaled 0.50")
            && out.contains("bolt/film3d_bbb_splash.png"),
        "{out}"
    );
    // Acme's and Bolt's copies averaged (collusion): both vendors named.
    let acme = image::open(dir.path().join("acme/film3d_bbb_splash.png")).unwrap();
    let averaged = tattle_attacks::collusion_average(&[acme, stamped]).unwrap();
    let colluded = dir.path().join("colluded.png");
    averaged.save(&colluded).unwrap();
    let o = ok(tattle(&studio, &["trace", colluded.to_str().unwrap(), "--json"]));
    let trace = &json_lines(&o)[0];
    let mut named = vec![trace["vendor"]["id"].as_u64().unwrap()];
    named.extend(
        trace["also"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["issued"]["recipient"]["vendor"].as_u64().unwrap()),
    );
    named.sort();
    assert_eq!(named, [1, 2], "{trace}");
    let out = text(&ok(tattle(&studio, &["trace", colluded.to_str().unwrap()])).stdout);
    assert!(out.contains("copies mixed together"), "{out}");

    // The unmarked frame, put through the same, matches nothing.
    let original = image::open(&frame)
        .unwrap()
        .resize(480, 270, image::imageops::FilterType::CatmullRom);
    let clean = dir.path().join("clean.png");
    original.save(&clean).unwrap();
    let o = tattle(&studio, &["trace", clean.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json_lines(&o)[0]["verdict"], "not_found");
}

#[test]
fn a_payload_the_ledger_never_issued_is_reported_not_attributed() {
    let (dir, studio) = studio();
    let source = dir.path().join("frame.png");
    frame(&source, 3);
    // Marked with the studio key outside the ledger, claiming vendor 2's id.
    let marked = dir.path().join("marked.png");
    ok(tattle(
        &studio,
        &[
            "embed",
            "--key",
            "tattle.key",
            "--payload",
            "0002000000000063",
            source.to_str().unwrap(),
            "-o",
            marked.to_str().unwrap(),
        ],
    ));
    let o = ok(tattle(&studio, &["trace", marked.to_str().unwrap(), "--json"]));
    let trace = &json_lines(&o)[0];
    assert_eq!(trace["verdict"], "unknown_payload", "{trace}");
    assert_eq!(trace["payload"], "0002000000000063");
    assert!(trace.get("vendor").is_none());
    let o = ok(tattle(&studio, &["trace", marked.to_str().unwrap()]));
    assert!(
        text(&o.stdout).contains("which the ledger did not issue"),
        "{}",
        text(&o.stdout)
    );
}

/// `kill -9` in the middle of a batch: no half-written file under a final
/// name, no issued record without its file, and the next run completes
/// whatever was pending with its original payload.
#[cfg(unix)]
#[test]
fn a_batch_killed_mid_way_leaves_no_torn_file_and_the_rerun_completes_it() {
    let (dir, studio) = studio();
    let input = dir.path().join("in");
    let photo = image::open(samples().join("photo_kodim23.png")).unwrap();
    const FRAMES: usize = 40;
    std::fs::create_dir_all(&input).unwrap();
    for i in 0..FRAMES {
        // Full-size frames, so that one takes long enough to be interrupted.
        let mut frame = photo.clone();
        frame.as_mut_rgb8().unwrap().get_pixel_mut(i as u32, 0).0 = [i as u8, 0, 0];
        frame.save(input.join(format!("f{i:02}.png"))).unwrap();
    }
    let out = dir.path().join("out");
    let args = [
        "stamp",
        "--vendor",
        "Acme VFX",
        "--jobs",
        "2",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_tattle"))
        .args(args)
        .current_dir(&studio)
        .env_remove("TATTLE_STUDIO")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until a few files are out, then kill -9.
    let started = std::time::Instant::now();
    while walk_if_exists(&out)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .count()
        < 3
        && started.elapsed() < std::time::Duration::from_secs(60)
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let export = |studio: &Path| -> Vec<Value> {
        let o = ok(tattle(studio, &["ledger", "export", "--format", "json"]));
        serde_json::from_slice::<Value>(&o.stdout).unwrap()["issuances"]
            .as_array()
            .unwrap()
            .clone()
    };
    let published: Vec<PathBuf> = walk_if_exists(&out)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    assert!(
        published.len() < FRAMES,
        "the batch finished before it was killed; the test proves nothing"
    );
    let records = export(&studio);
    for file in &published {
        // Every file under a final name is whole, and the ledger knows it.
        image::open(file).unwrap_or_else(|e| panic!("{} is torn: {e}", file.display()));
        let canonical = file.canonicalize().unwrap();
        assert!(
            records
                .iter()
                .any(|r| Path::new(r["output_path"].as_str().unwrap()) == canonical),
            "{} was published without a ledger record",
            file.display()
        );
    }
    for record in records.iter().filter(|r| r["status"] == "issued") {
        assert!(
            Path::new(record["output_path"].as_str().unwrap()).is_file(),
            "issued without its file: {record}"
        );
    }
    let pending: Vec<(String, String)> = records
        .iter()
        .filter(|r| r["status"] == "pending")
        .map(|r| {
            (
                r["output_path"].as_str().unwrap().to_owned(),
                r["payload"].as_str().unwrap().to_owned(),
            )
        })
        .collect();

    // The rerun finishes the batch; interrupted issuances keep their payloads.
    ok(tattle(&studio, &args));
    let records = export(&studio);
    assert_eq!(records.len(), FRAMES, "one issuance per frame, none duplicated");
    assert!(records.iter().all(|r| r["status"] == "issued"));
    for (output, payload) in pending {
        assert!(records
            .iter()
            .any(|r| r["output_path"] == output.as_str() && r["payload"] == payload.as_str()));
    }
    ok(tattle(&studio, &["ledger", "verify"]));
}

fn walk_if_exists(dir: &Path) -> Vec<PathBuf> {
    if dir.is_dir() {
        walk(dir)
    } else {
        Vec::new()
    }
}
