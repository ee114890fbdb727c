//! How verdicts are written for people.

use tattle_studio::trace::ContentCheck;

/// A probability given as its base-10 logarithm, readably.
pub fn format_probability(log10: f64) -> String {
    // Three decimals down to 0.001; below, 0.000 would say nothing.
    if log10 >= -3.0 {
        format!("{:.3}", 10f64.powf(log10))
    } else {
        // Rounded to one decimal first, so that a mantissa of 9.96 reads
        // 1.0e(n+1), not 10.0en.
        let rounded = log10.floor();
        let mantissa = (10f64.powf(log10 - rounded) * 10.0).round() / 10.0;
        let (mantissa, exponent) = if mantissa >= 10.0 {
            (mantissa / 10.0, rounded + 1.0)
        } else {
            (mantissa, rounded)
        };
        format!("{mantissa:.1}e{exponent}")
    }
}

/// The verdict's false-positive probability and, when a payload is
/// reported, the payload test's own: the figure behind naming the recipient.
pub fn describe_odds(d: &tattle_detect::Detection) -> String {
    let verdict = format_probability(d.false_positive_log10);
    match d.payload_false_positive_log10 {
        Some(log10) => format!(
            "false-positive probability {verdict}, of the payload alone {}",
            format_probability(log10)
        ),
        None => format!("false-positive probability {verdict}"),
    }
}

/// How far a match with issued payloads is ahead of the rest of `others`
/// (a phrase such as "the vendor's issuances"): the runner-up's score and
/// the bound on the chance that the mark is another of them.
pub fn describe_contest(m: &tattle_detect::IssuedMatch, others: &str) -> String {
    let runner_up = m
        .runner_up
        .map(|r| {
            format!(
                "; the next best of {others}, payload {}, scores {:.2}",
                r.payload, r.score
            )
        })
        .unwrap_or_default();
    let another = m
        .another_log10
        .map(|log10| {
            format!(
                "; the chance that it is another of {others}: at most {}",
                format_probability(log10)
            )
        })
        .unwrap_or_default();
    format!("{runner_up}{another}")
}

/// A short description of what the detector undid to read the mark — the
/// geometry it recovered and any sharpening — empty when nothing changed.
pub fn describe_recovery(d: &tattle_detect::Detection) -> String {
    let mut parts = d.geometry.as_ref().map(describe_geometry).unwrap_or_default();
    if d.sharpened {
        parts.push("read sharpened (the image was blurred)".to_owned());
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("; {}", parts.join(", "))
    }
}

/// The geometric changes a recovered geometry describes.
fn describe_geometry(g: &tattle_detect::Geometry) -> Vec<String> {
    let mut parts = Vec::new();
    if (g.scale_x - 1.0).abs() > 0.005 || (g.scale_y - 1.0).abs() > 0.005 {
        if (g.scale_x - g.scale_y).abs() < 0.005 {
            parts.push(format!("scaled {:.3}", g.scale_x));
        } else {
            parts.push(format!("scaled {:.3} x {:.3}", g.scale_x, g.scale_y));
        }
    }
    if g.rotation_degrees.abs() > 0.05 {
        parts.push(format!("rotated {:.1}°", g.rotation_degrees));
    }
    if g.mirrored {
        parts.push("mirrored".to_owned());
    }
    if g.perspective_percent >= 0.1 {
        parts.push(format!(
            "seen in perspective (its scale changes {:.1}% across it)",
            g.perspective_percent
        ));
    }
    // Whole pixels within the tile: 127.6 is a crop of 0 (mod 128).
    let tile = tattle_core::layout::TILE as f64;
    let (x, y) = (g.offset_x.round() % tile, g.offset_y.round() % tile);
    if x != 0.0 || y != 0.0 {
        parts.push(format!("cropped at +{x:.0},+{y:.0} (mod {tile})"));
    }
    parts
}

/// A progress bar on standard error with `what` counted, its rate and ETA;
/// hidden when standard error is not a terminal or output is JSON.
pub fn progress_bar(len: usize, what: &str, hidden: bool) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{bar:30}} {{pos}}/{{len}} {what}, {{per_sec}}, {{elapsed}} elapsed, eta {{eta}} {{msg}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    if hidden || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}

/// Whether the image shows the asset its mark names.
pub fn describe_content(content: Option<&ContentCheck>) -> String {
    match content {
        Some(ContentCheck::Compared { file, found }) if found.shows_original => format!(
            "; the image shows the asset: its detail correlates {:.2} with {file}'s, its top-left corner at ({:.0}, {:.0}) there",
            found.correlation, found.offset_x, found.offset_y
        ),
        Some(ContentCheck::Compared { file, found }) => format!(
            "; WARNING: the image does not show the asset (its detail correlates {:.2} with {file}'s): the mark may \
             have been copied onto another picture; compare the two before relying on this",
            found.correlation
        ),
        Some(ContentCheck::TooLittleOverlap { file }) => {
            format!("; the image overlaps {file} too little to compare their content")
        }
        Some(ContentCheck::Unavailable) => {
            "; the delivered file and its source are gone or changed since delivery: content not compared".to_owned()
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tattle_detect::{Detection, Geometry};

    fn detection(geometry: Option<Geometry>, sharpened: bool) -> Detection {
        Detection {
            detected: true,
            payload: None,
            false_positive_probability: 1e-12,
            false_positive_log10: -12.0,
            payload_false_positive_log10: None,
            score: 9.0,
            pilot_score: 9.0,
            payload_score: 1.0,
            bit_errors: 80,
            blocks: 100,
            geometry,
            sharpened,
            rank: 0,
            recipient: None,
        }
    }

    #[test]
    fn odds_name_the_payload_test_only_when_a_payload_is_reported() {
        let mut d = detection(None, false);
        assert_eq!(describe_odds(&d), "false-positive probability 1.0e-12");
        d.payload = Some(tattle_detect::Payload::new(7));
        d.payload_false_positive_log10 = Some(-9.7);
        assert_eq!(
            describe_odds(&d),
            "false-positive probability 1.0e-12, of the payload alone 2.0e-10"
        );
    }

    #[test]
    fn recovery_names_geometry_and_sharpening_and_nothing_else() {
        assert_eq!(
            describe_recovery(&detection(Some(Geometry::unchanged()), false)),
            ""
        );
        assert_eq!(
            describe_recovery(&detection(Some(Geometry::unchanged()), true)),
            "; read sharpened (the image was blurred)"
        );
        let turned = Geometry {
            rotation_degrees: 5.0,
            mirrored: true,
            ..Geometry::unchanged()
        };
        assert_eq!(
            describe_recovery(&detection(Some(turned), true)),
            "; rotated 5.0°, mirrored, read sharpened (the image was blurred)"
        );
        let photographed = Geometry {
            perspective_percent: 2.04,
            ..Geometry::unchanged()
        };
        assert_eq!(
            describe_recovery(&detection(Some(photographed), false)),
            "; seen in perspective (its scale changes 2.0% across it)"
        );
        let cropped = |offset_x, offset_y| {
            describe_recovery(&detection(
                Some(Geometry {
                    offset_x,
                    offset_y,
                    ..Geometry::unchanged()
                }),
                false,
            ))
        };
        assert_eq!(cropped(12.4, 0.0), "; cropped at +12,+0 (mod 128)");
        assert_eq!(cropped(127.6, 127.5), "");
        assert_eq!(cropped(0.3, 127.7), "");
        assert_eq!(format_probability(-12.3), "5.0e-13");
        // 10^-27.0017 is 9.96e-28: one decimal rounds it to 1.0e-27.
        assert_eq!(format_probability(-27.0017), "1.0e-27");
        assert_eq!(format_probability(-3.5), "3.2e-4");
        assert_eq!(format_probability(-2.0), "0.010");
        assert_eq!(format_probability(0.0), "1.000");
    }
}
