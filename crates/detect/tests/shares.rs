//! The payload test's threshold is shared between the readings a search
//! can make (a weighted union bound): the shares must cover every reading
//! and sum to at most 1, and a reported payload's bound must be its
//! reading's tail over that reading's share; no two readings of one
//! search may claim the same share.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use image::DynamicImage;
use tattle_core::plane::luma;
use tattle_core::stats::log10_tail_bound;
use tattle_detect::{DetectOptions, Key, Payload, Recipient, MAX_CANDIDATES};
use tattle_embed::EmbedOptions;

#[test]
fn the_shares_of_every_reading_a_search_can_make_sum_to_one() {
    let key = Key::from_bytes([3; 32]);
    for search in [true, false] {
        let detector = DetectOptions::default()
            .geometric_search(search)
            .build(&key)
            .unwrap();
        let share = |rank: usize, sharpened: bool| detector.payload_share(rank, sharpened);
        let total: f64 = (0..MAX_CANDIDATES)
            .flat_map(|rank| [share(rank, false), share(rank, true)])
            .sum();
        assert!((total - 1.0).abs() < 1e-12, "search {search}: {total}");
        // No reading beyond those the search makes has any.
        assert_eq!(share(MAX_CANDIDATES, false), 0.0);
        if search {
            // Every reading the search can make has a share, the first
            // reading of each geometry the most.
            for rank in 0..MAX_CANDIDATES {
                assert!(share(rank, true) > 0.0 && share(rank, false) >= share(rank, true));
            }
        } else {
            assert_eq!(share(1, false), 0.0);
        }
    }
}

/// The photo sample, and the same marked with `key` and `payload`.
fn photo_and_marked(key: &Key, payload: Payload) -> (DynamicImage, DynamicImage) {
    let photo =
        image::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/photo_kodim23.png")).unwrap();
    let marked = EmbedOptions::default()
        .build(key)
        .unwrap()
        .embed(&photo, payload)
        .unwrap();
    (photo, marked)
}

#[test]
fn a_payload_bound_is_the_tail_of_its_reading_over_that_readings_share() {
    let key = Key::from_bytes([3; 32]);
    let payload = Payload::new(0x0042_0000_0000_0007);
    let (_, marked) = photo_and_marked(&key, payload);
    let detector = DetectOptions::default().build(&key).unwrap();
    // As sent, the unchanged geometry reads it; cropped at an offset off the
    // tile grid, the search's strongest alignment does.
    for (image, rank) in [(marked.clone(), 0), (marked.crop_imm(37, 53, 400, 300), 1)] {
        let (found, reading) = detector.examine(&luma(&image));
        assert_eq!(found.payload, Some(payload), "{found:?}");
        assert_eq!((reading.rank, reading.sharpened), (rank, false));
        let share = detector.payload_share(reading.rank, reading.sharpened);
        let expected = log10_tail_bound(found.payload_score) + 64.0 * 2f64.log10() - share.log10();
        let reported = found.payload_false_positive_log10.unwrap();
        assert!(
            (reported - expected).abs() < 1e-9,
            "{reported} against {expected}"
        );
    }
}

#[test]
fn no_two_readings_of_a_search_claim_the_same_share() {
    let key = Key::from_bytes([3; 32]);
    let payload = Payload::new(0x0042_0000_0000_0007);
    let (photo, marked) = photo_and_marked(&key, payload);
    let rescaled = luma(
        &tattle_attacks::Chain::parse("scale-0.75-bicubic")
            .unwrap()
            .apply(&marked, 1)
            .unwrap(),
    );
    let detector = DetectOptions::default().build(&key).unwrap();
    // A reader of another recipient's payload finds the pilot they share
    // but no payload: the first alignment is read, and the search goes on.
    let other_reader = DetectOptions::default()
        .build_for(&key, &[Recipient::Vendor(2)])
        .unwrap();
    let cases = [
        ("unmarked", &detector, luma(&photo)),
        ("rescaled", &detector, rescaled.clone()),
        ("another recipient's", &other_reader, rescaled),
    ];
    for (name, detector, image) in cases {
        let (found, reading) = detector.examine(&image);
        let claimed: Vec<(usize, bool)> = reading.all().map(|r| (r.rank, r.sharpened)).collect();
        let mut distinct = claimed.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), claimed.len(), "{name}: {claimed:?}");
        let total: f64 = claimed
            .iter()
            .map(|&(rank, sharpened)| detector.payload_share(rank, sharpened))
            .sum();
        assert!(total > 0.0 && total <= 1.0, "{name}: {total}");
        let deepest = claimed.iter().map(|c| c.0).max().unwrap();
        match name {
            // The lattice's map gives the first alignment, which reads the
            // payload: nothing else is read.
            "rescaled" => {
                assert_eq!(found.payload, Some(payload), "{found:?}");
                assert_eq!((reading.rank, deepest), (1, 1), "{claimed:?}");
            }
            "another recipient's" => {
                assert_eq!(found.payload, None);
                assert!(claimed.contains(&(1, false)) && deepest > 1, "{claimed:?}");
            }
            _ => assert!(found.payload.is_none() && deepest > 1, "{claimed:?}"),
        }
    }
}
