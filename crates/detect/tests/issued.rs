//! Matching a mark with the payloads a studio issued (`Detector::match_issued`),
//! for images too damaged for the payload to be read blind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use image::DynamicImage;
use tattle_attacks::Chain;
use tattle_core::plane::luma;
use tattle_detect::{DetectOptions, Issued, Key, Payload, Recipient};
use tattle_embed::EmbedOptions;

const OURS: Recipient = Recipient::Vendor(1);
const THEIRS: Recipient = Recipient::Vendor(2);

fn frame() -> DynamicImage {
    image::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/film3d_bbb_splash.png")).unwrap()
}

fn key() -> Key {
    Key::from_bytes([21; 32])
}

/// Vendor 1's payload of serial `serial`, as the studio ledger forms it.
fn payload(recipient: Recipient, serial: u64) -> Payload {
    let Recipient::Vendor(id) = recipient else {
        unreachable!()
    };
    Payload::new((u64::from(id) << 48) | serial)
}

/// A ledger of 1,000 issuances: serials 1..=500 to each vendor.
fn ledger() -> Vec<Issued> {
    (1..=500)
        .flat_map(|serial| {
            [OURS, THEIRS].map(|recipient| Issued {
                recipient,
                payload: payload(recipient, serial),
            })
        })
        .collect()
}

/// The frame marked for `recipient` with `serial`.
fn marked(recipient: Recipient, serial: u64) -> DynamicImage {
    EmbedOptions::default()
        .build_for(&key(), recipient)
        .unwrap()
        .embed(&frame(), payload(recipient, serial))
        .unwrap()
}

/// The frame marked for `recipient` with `serial`, halved and saved as JPEG 75:
/// too little is left to decode 64 bits blind.
fn leaked(recipient: Recipient, serial: u64) -> DynamicImage {
    Chain::parse("scale-0.5-bicubic+jpeg-75")
        .unwrap()
        .apply(&marked(recipient, serial), 7)
        .unwrap()
}

#[test]
fn a_mark_too_damaged_to_decode_matches_its_issued_payload() {
    let detector = DetectOptions::default()
        .build_for(&key(), &[OURS, THEIRS])
        .unwrap();
    let (blind, reading) = detector.examine(&luma(&leaked(OURS, 250)));
    assert_eq!(
        blind.payload, None,
        "the blind reading must fail for this test to mean anything"
    );
    let matches = detector.match_issued(&reading, &ledger()).unwrap();
    assert_eq!(matches.len(), 1, "{matches:?}");
    let best = &matches[0];
    // The blind verdict reports no geometry; the reading the match rests
    // on has the halving undone.
    assert_eq!(blind.geometry, None);
    assert!((best.geometry.scale_x - 0.5).abs() < 0.01, "{:?}", best.geometry);
    assert!((best.geometry.scale_y - 0.5).abs() < 0.01, "{:?}", best.geometry);
    assert_eq!(best.issued.recipient, OURS);
    assert_eq!(best.issued.payload, payload(OURS, 250));
    assert_eq!(best.compared, 1000);
    assert!(best.false_positive_log10 < -9.0, "{best:?}");
    // The bound is the tail of the score times 1,000 payloads, over the
    // share of the threshold the reading it rests on has.
    let tail = tattle_core::stats::log10_tail_bound(best.score);
    let share = detector.payload_share(best.rank, best.sharpened);
    assert!((best.false_positive_log10 - (tail + (1000.0 / share).log10())).abs() < 1e-9);
    // Payloads are mixed before coding, so even the neighbouring serials'
    // codewords differ in half their bits: the runner-up scores as a
    // payload never marked would (measured: 3.45, against 10.89).
    let runner_up = best.runner_up.unwrap();
    assert!(runner_up.score < 6.0, "{runner_up:?}");
    // Which of the vendor's 500 issuances it is, is less certain than whose
    // it is (a contest with each other issuance rests on the half of the
    // bits where the two codewords differ, and the closest of 499 counts),
    // but it is settled too (measured: 10^-4.5, since the exact halving is
    // tried whole, 10^-2.7 before; 10^0.15, no evidence, before the mixing).
    let another = best.another_log10.unwrap();
    assert!((-9.0..=-2.0).contains(&another), "{another}");
    // How far the mark was from being read blind: the same score at the
    // same reading, but tested as one of 2^64 payloads for each of the two
    // vendors, which it fails.
    let evidence = detector.payload_evidence(&reading, best.issued).unwrap();
    assert_eq!((evidence.score, evidence.rank), (best.score, best.rank));
    let blind_trials = (2f64.powi(64) * 2.0 / share).log10();
    assert!((evidence.blind_false_positive_log10 - (tail + blind_trials)).abs() < 1e-9);
    assert!(evidence.blind_false_positive_log10 > -9.0, "{evidence:?}");

    // Undamaged, the mark settles the issuance as well.
    let (_, reading) = detector.examine(&luma(&marked(OURS, 250)));
    let best = &detector.match_issued(&reading, &ledger()).unwrap()[0];
    assert_eq!(best.issued.payload, payload(OURS, 250));
    assert!(best.another_log10.unwrap() < -9.0, "{best:?}");
}

#[test]
fn a_match_may_rest_on_a_reading_the_search_ranked_below_another() {
    // A halved photo: the search's strongest pilot is a false peak, but the
    // true alignment is among the readings it measured, and the match finds
    // it there. (Measured: pilot -2.2 at the reading judged best; the match
    // scores 9.1 at the exact halving, where 7.4 is needed.)
    let photo =
        image::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/photo_kodim23.png")).unwrap();
    let key = Key::from_bytes([5; 32]);
    let marked = EmbedOptions::default()
        .build_for(&key, OURS)
        .unwrap()
        .embed(&photo, payload(OURS, 250))
        .unwrap();
    let leaked = Chain::parse("scale-0.5-bicubic+jpeg-75")
        .unwrap()
        .apply(&marked, 7)
        .unwrap();
    let detector = DetectOptions::default().build_for(&key, &[OURS]).unwrap();
    let (blind, reading) = detector.examine(&luma(&leaked));
    assert!(!blind.detected, "{blind:?}");
    let issued: Vec<Issued> = ledger().into_iter().filter(|i| i.recipient == OURS).collect();
    let matches = detector.match_issued(&reading, &issued).unwrap();
    assert_eq!(matches.len(), 1, "{matches:?}");
    let best = &matches[0];
    assert_eq!(best.issued.payload, payload(OURS, 250));
    assert!(best.false_positive_log10 < -9.0, "{best:?}");
    assert_ne!(
        best.geometry, reading.geometry,
        "the match should rest on another reading"
    );
    assert!((best.geometry.scale_x - 0.5).abs() < 0.01, "{:?}", best.geometry);
    // The blind verdict, told where the match was, reports it.
    let mut located = blind.clone();
    located.locate_by(best);
    assert_eq!(located.geometry.as_ref(), Some(&best.geometry));
}

#[test]
fn unmarked_other_keys_and_other_vendors_match_nothing() {
    let detector = DetectOptions::default().build_for(&key(), &[OURS]).unwrap();
    let ours_only: Vec<Issued> = ledger().into_iter().filter(|i| i.recipient == OURS).collect();
    // The unmarked frame, put through the same attack.
    let unmarked = Chain::parse("scale-0.5-bicubic+jpeg-75")
        .unwrap()
        .apply(&frame(), 7)
        .unwrap();
    let (_, reading) = detector.examine(&luma(&unmarked));
    assert!(detector.match_issued(&reading, &ours_only).unwrap().is_empty());
    // Another vendor's copy, undamaged: its mark is plain to see, but none
    // of our vendor's payloads match it.
    let (found, reading) = detector.examine(&luma(&marked(THEIRS, 250)));
    assert!(found.detected);
    assert!(detector.match_issued(&reading, &ours_only).unwrap().is_empty());
    // Our vendor's copy, under another studio's key.
    let other = DetectOptions::default()
        .build_for(&Key::from_bytes([22; 32]), &[OURS])
        .unwrap();
    let (_, reading) = other.examine(&luma(&leaked(OURS, 250)));
    assert!(other.match_issued(&reading, &ours_only).unwrap().is_empty());
}

#[test]
fn payloads_of_recipients_the_detector_does_not_read_are_refused() {
    let detector = DetectOptions::default().build_for(&key(), &[OURS]).unwrap();
    let (_, reading) = detector.examine(&luma(&frame()));
    let err = detector.match_issued(&reading, &ledger()).unwrap_err();
    assert!(err.to_string().contains("vendor 2"), "{err}");
    let err = detector.payload_evidence(&reading, ledger()[1]).unwrap_err();
    assert!(err.to_string().contains("vendor 2"), "{err}");
    // An empty list matches nothing.
    assert!(detector.match_issued(&reading, &[]).unwrap().is_empty());
    // A payload listed twice is neither its own runner-up nor its own rival.
    let twice = [ledger()[0], ledger()[0]];
    let (_, reading) = detector.examine(&luma(&marked(OURS, 1)));
    let found = detector.match_issued(&reading, &twice).unwrap();
    assert_eq!(found[0].issued, twice[0]);
    assert_eq!((found[0].runner_up, found[0].another_log10), (None, None));
}
