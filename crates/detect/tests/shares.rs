//! The payload test's threshold is shared between the readings a search
//! can make (a weighted union bound): the shares must cover every reading
//! and sum to at most 1, and a reported payload's bound must be its
//! reading's tail over that reading's share.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use tattle_core::plane::luma;
use tattle_core::stats::log10_tail_bound;
use tattle_detect::{DetectOptions, Key, Payload, MAX_CANDIDATES};
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

#[test]
fn a_payload_bound_is_the_tail_of_its_reading_over_that_readings_share() {
    let photo =
        image::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/photo_kodim23.png")).unwrap();
    let key = Key::from_bytes([3; 32]);
    let payload = Payload::new(0x0042_0000_0000_0007);
    let marked = EmbedOptions::default()
        .build(&key)
        .unwrap()
        .embed(&photo, payload)
        .unwrap();
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
