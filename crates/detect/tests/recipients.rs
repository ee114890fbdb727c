//! Vendor-keyed payloads: each vendor's mark reads only with that vendor's
//! chips, and a collusion average is never pinned on a third vendor; the
//! ledger match names both colluders.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use image::DynamicImage;
use tattle_detect::{DetectOptions, Issued, Key, Payload, Recipient};
use tattle_embed::EmbedOptions;

fn sample(name: &str) -> DynamicImage {
    image::open(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../samples")
            .join(name),
    )
    .unwrap()
}

/// The decoder picks the codeword that best fits whatever it is given, so
/// on noise its correlation is not N(0, 1) but the best of 2^64, here also
/// the best of three vendors' chips, read plain and sharpened: measured
/// over 6 keys × 4 vendors of this test, median 7.2, highest 9.0. That is
/// why the payload bound carries the factor 2^64 and a payload needs
/// z ≈ 11.6 to be reported; 10 is between the two.
const NULL_PAYLOAD_SCORE: f64 = 10.0;

const VENDORS: [Recipient; 4] = [
    Recipient::Vendor(1),
    Recipient::Vendor(2),
    Recipient::Vendor(3),
    Recipient::Vendor(4),
];

#[test]
fn each_vendor_reads_only_its_own_mark() {
    let key = Key::from_bytes([21; 32]);
    let img = sample("photo_kodim23.png");
    let options = DetectOptions::default().geometric_search(false);
    for (i, vendor) in VENDORS.iter().enumerate() {
        let payload = Payload::new(0x1000 + i as u64);
        let marked = EmbedOptions::default()
            .build_for(&key, *vendor)
            .unwrap()
            .embed(&img, payload)
            .unwrap();
        let all = options
            .build_for(&key, &VENDORS)
            .unwrap()
            .detect(&marked)
            .unwrap();
        assert_eq!(
            (all.recipient, all.payload),
            (Some(*vendor), Some(payload)),
            "{vendor}"
        );
        // Everyone else: the studio's pilot is there, the payload is not readable.
        let others: Vec<Recipient> = VENDORS.iter().copied().filter(|v| v != vendor).collect();
        let rest = options.build_for(&key, &others).unwrap().detect(&marked).unwrap();
        assert!(rest.detected, "the studio-wide pilot should still be found");
        assert_eq!(
            (rest.recipient, rest.payload),
            (None, None),
            "{vendor} read by another vendor"
        );
        assert!(rest.payload_score < NULL_PAYLOAD_SCORE, "{rest:?}");
    }
}

#[test]
fn a_collusion_average_names_both_colluders_and_never_a_third_vendor() {
    let key = Key::from_bytes([22; 32]);
    for name in [
        "photo_kodim23.png",
        "film3d_bbb_splash.png",
        "cel_openclipart_tiger.png",
    ] {
        let img = sample(name);
        let mark = |vendor: Recipient, payload: u64| {
            EmbedOptions::default()
                .build_for(&key, vendor)
                .unwrap()
                .embed(&img, Payload::new(payload))
                .unwrap()
        };
        let colluded =
            tattle_attacks::collusion_average(&[mark(VENDORS[0], 0xa), mark(VENDORS[1], 0xb)]).unwrap();
        for search in [false, true] {
            let detector = DetectOptions::default()
                .geometric_search(search)
                .build_for(&key, &VENDORS)
                .unwrap();
            let found = detector.detect(&colluded).unwrap();
            assert!(found.detected, "{name}: the pilot survives averaging");
            match found.recipient {
                None => assert_eq!(found.payload, None),
                Some(Recipient::Vendor(1)) => assert_eq!(found.payload, Some(Payload::new(0xa))),
                Some(Recipient::Vendor(2)) => assert_eq!(found.payload, Some(Payload::new(0xb))),
                Some(other) => panic!("{name}: colluded copy of vendors 1 and 2 attributed to {other}"),
            }
            // The innocent vendors' own payload tests stay at null level.
            let innocents = detector_for(&key, &VENDORS[2..], search)
                .detect(&colluded)
                .unwrap();
            assert_eq!(innocents.payload, None, "{name}");
            assert!(
                innocents.payload_score < NULL_PAYLOAD_SCORE,
                "{name}: {innocents:?}"
            );
            // Compared with the payloads issued (0x1–0x10 to each vendor),
            // the mark matches both colluders' and no innocent's.
            let ledger: Vec<Issued> = VENDORS
                .iter()
                .flat_map(|&recipient| {
                    (1..=0x10).map(move |p| Issued {
                        recipient,
                        payload: Payload::new(p),
                    })
                })
                .collect();
            let (_, reading) = detector.examine(&tattle_core::plane::luma(&colluded));
            let mut named: Vec<_> = detector
                .match_issued(&reading, &ledger)
                .unwrap()
                .iter()
                .map(|m| (m.issued.recipient, m.issued.payload.value()))
                .collect();
            named.sort();
            assert_eq!(
                named,
                [(VENDORS[0], 0xa), (VENDORS[1], 0xb)],
                "{name}, search {search}"
            );
        }
    }
}

#[test]
fn a_fresh_mark_is_confirmed_only_for_its_own_vendor_and_payload() {
    let key = Key::from_bytes([22; 32]);
    let payload = Payload::new(0x0001_0000_0000_002a);
    let marked = EmbedOptions::default()
        .build_for(&key, VENDORS[0])
        .unwrap()
        .embed(&sample("photo_kodim23.png"), payload)
        .unwrap();
    let checker = detector_for(&key, &VENDORS, true);
    let confirmed = checker.confirm_mark(&marked, VENDORS[0], payload).unwrap();
    assert_eq!(
        (confirmed.rank, confirmed.geometry),
        (0, Some(tattle_detect::Geometry::unchanged()))
    );
    // Another payload or another vendor is not what was marked: the error
    // says what the image reads as.
    let other = Payload::new(payload.value() + 1);
    let err = checker
        .confirm_mark(&marked, VENDORS[0], other)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("reads as payload {payload} for vendor 1")),
        "{err}"
    );
    assert!(checker.confirm_mark(&marked, VENDORS[1], payload).is_err());
    // A vendor the checker does not read is refused outright.
    let err = checker
        .confirm_mark(&marked, Recipient::Vendor(9), payload)
        .unwrap_err()
        .to_string();
    assert!(err.contains("vendor 9"), "{err}");
    // Only the unchanged geometry counts, even for a detector that would
    // search: a quarter turn is found by `detect`, not confirmed as fresh.
    let turned = marked.rotate90();
    assert_eq!(checker.detect(&turned).unwrap().payload, Some(payload));
    let err = checker
        .confirm_mark(&turned, VENDORS[0], payload)
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not read back"), "{err}");
}

fn detector_for(key: &Key, recipients: &[Recipient], search: bool) -> tattle_detect::Detector {
    DetectOptions::default()
        .geometric_search(search)
        .build_for(key, recipients)
        .unwrap()
}

#[test]
fn many_recipients_read_the_same_payload_and_none_is_refused() {
    let key = Key::from_bytes([23; 32]);
    let img = sample("film3d_bbb_splash.png");
    let marked = EmbedOptions::default()
        .build_for(&key, VENDORS[0])
        .unwrap()
        .embed(&img, Payload::new(1))
        .unwrap();
    let one = detector_for(&key, &VENDORS[..1], false).detect(&marked).unwrap();
    let many: Vec<Recipient> = (1..=1000).map(Recipient::Vendor).collect();
    let thousand = detector_for(&key, &many, false).detect(&marked).unwrap();
    assert_eq!(thousand.payload, one.payload);
    assert_eq!(thousand.payload_score, one.payload_score);
    assert!(DetectOptions::default().build_for(&key, &[]).is_err());
}
