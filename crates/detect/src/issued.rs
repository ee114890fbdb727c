//! Matching a mark with the payloads a studio issued
//! ([`Detector::match_issued`]), for when the payload cannot be decoded
//! blind: asking "is it one of these N?" needs far less of the mark than
//! decoding one of 2⁶⁴.

use serde::Serialize;
use tattle_core::layout::{Role, Schedule};
use tattle_core::stats::log10_tail_bound;
use tattle_core::{code, Error};

use crate::{soft_bits, Detector, Geometry, Observation, Payload, Reading, Recipient, Result};

/// A payload given out to a recipient: what [`Detector::match_issued`]
/// compares a mark with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Issued {
    /// Whose payload chips the mark was made with.
    pub recipient: Recipient,
    /// The payload it carries.
    pub payload: Payload,
}

/// The issued payload a mark matches best, among one recipient's.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IssuedMatch {
    /// The best-matching issued payload.
    pub issued: Issued,
    /// Normalised correlation of the mark with that payload's codeword (a
    /// z-score).
    pub score: f64,
    /// Base-10 logarithm of the bound on the probability that an image not
    /// marked with this recipient's chips matches any of the payloads
    /// compared this strongly.
    pub false_positive_log10: f64,
    /// Base-10 logarithm of the bound on the probability that the mark is
    /// another of this recipient's payloads compared, not this one: for
    /// each other payload, the bits where its codeword and this one's
    /// differ are correlated with this one's, a score that would lean
    /// negative were the other payload the one marked; the closest contest,
    /// times the number of others, bounds it. It assumes, as a model, that
    /// the noise the image went through is independent of the chips (the
    /// recipient's own bound, `false_positive_log10`, assumes nothing about
    /// the image). `None` when the recipient had no other payload.
    pub another_log10: Option<f64>,
    /// The recipient's next best payload: how far ahead the best is.
    pub runner_up: Option<RunnerUp>,
    /// How many issued payloads were compared.
    pub compared: usize,
    /// Where the mark was found: the geometry of the reading that matched.
    pub geometry: Geometry,
    /// That reading was of the sharpened image (see [`restore`](crate::restore)).
    pub sharpened: bool,
    /// That reading's place in the search ([`Reading::rank`]), which sets
    /// its share of the threshold ([`Detector::payload_share`]).
    pub rank: usize,
}

/// The second-best payload of a recipient in [`Detector::match_issued`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RunnerUp {
    /// The payload.
    pub payload: Payload,
    /// Its score.
    pub score: f64,
}

impl Detector {
    /// Compares the mark of a reading (from [`Detector::examine`]) with
    /// payloads known to have been issued, for when the payload cannot be
    /// read blind: the studio knows every payload it gave out, and asking
    /// "is it one of these N?" needs far less of the mark than decoding one
    /// of 2⁶⁴.
    ///
    /// Each issued payload's codeword, spread with its recipient's chips, is
    /// correlated with every reading the search measured (each alignment it
    /// decoded, as received and sharpened): the mark of a badly damaged
    /// image may lie at an alignment whose pilot the search ranked below
    /// another's. Under the null hypothesis (not
    /// marked with that recipient's chips) each correlation is a Rademacher
    /// sum over the choice of key, as in the blind test, so each reading's
    /// bound is multiplied by the number of payloads compared and divided by
    /// the reading's share of the threshold ([`Detector::payload_share`], as
    /// the blind payload test's is, without its 2⁶⁴), and the reading with
    /// the smallest bound counts. Returns, for every recipient whose best payload
    /// passes [`DetectOptions::threshold`](crate::DetectOptions::threshold) on that bound, that payload, best
    /// first; usually one, several when copies of different recipients were
    /// mixed.
    ///
    /// Payloads are mixed before coding ([`code`]), so even consecutive
    /// serials have codewords that differ in about half their bits, and a
    /// payload not marked reads like one of another key:
    /// [`IssuedMatch::runner_up`] shows it. The recipient is established by
    /// the bound; the payload among a recipient's by
    /// [`IssuedMatch::another_log10`], a weaker, model-based bound.
    ///
    /// Fails when a payload's recipient is not one this detector was built
    /// for ([`DetectOptions::build_for`](crate::DetectOptions::build_for)).
    ///
    /// ```
    /// use image::{DynamicImage, RgbImage};
    /// use tattle_detect::{DetectOptions, Issued, Key, Payload, Recipient};
    /// use tattle_embed::EmbedOptions;
    ///
    /// let img = DynamicImage::ImageRgb8(RgbImage::from_fn(384, 384, |x, y| {
    ///     let v = ((x * 7919 + y * 104729) % 251) as u8;
    ///     image::Rgb([v, v / 2, 255 - v])
    /// }));
    /// let key = Key::from_bytes([7; 32]);
    /// let vendor = Recipient::Vendor(3);
    /// let marked = EmbedOptions::default().build_for(&key, vendor).unwrap().embed(&img, Payload::new(41)).unwrap();
    ///
    /// let detector = DetectOptions::default().build_for(&key, &[vendor]).unwrap();
    /// let issued: Vec<Issued> = (40..44).map(|n| Issued { recipient: vendor, payload: Payload::new(n) }).collect();
    /// let (_, reading) = detector.examine(&tattle_core::plane::luma(&marked));
    /// let matches = detector.match_issued(&reading, &issued).unwrap();
    /// assert_eq!(matches[0].issued.payload, Payload::new(41));
    /// assert!(matches[0].false_positive_log10 < -9.0);
    ///
    /// // The unmarked image matches none of them.
    /// let (_, reading) = detector.examine(&tattle_core::plane::luma(&img));
    /// assert!(detector.match_issued(&reading, &issued).unwrap().is_empty());
    /// ```
    pub fn match_issued(&self, reading: &Reading, issued: &[Issued]) -> Result<Vec<IssuedMatch>> {
        for candidate in issued {
            self.reader(candidate.recipient)?;
        }
        let payloads_log10 = (issued.len().max(1) as f64).log10();
        let readings: Vec<&Reading> = reading.all().collect();
        // Each reading is tested within its own share of the threshold, and
        // the shares of all the readings a search can make sum to at most 1.
        debug_assert!(
            readings
                .iter()
                .map(|r| self.payload_share(r.rank, r.sharpened))
                .sum::<f64>()
                <= 1.0 + 1e-12
        );
        let mut matches = Vec::new();
        for reader in self.readers.iter() {
            let candidates: Vec<Payload> = issued
                .iter()
                .filter(|c| c.recipient == reader.recipient)
                .map(|c| c.payload)
                .collect();
            let codewords: Vec<Vec<bool>> = candidates.iter().map(|p| code::encode(*p)).collect();
            // The reading where this recipient's best payload matches with
            // the smallest bound, each within its own share.
            let mut strongest: Option<(f64, Ranked, &Reading, Vec<f32>)> = None;
            for reading in &readings {
                let soft = soft_bits(&reader.schedule, &reading.observation);
                let norm = self.payload_norm(&reading.observation);
                let Some(ranked) = rank_payloads(&candidates, &codewords, &soft, norm) else {
                    break;
                };
                let bound_log10 = (log10_tail_bound(ranked.score)
                    + self.payload_trials_log10(payloads_log10, reading.rank, reading.sharpened))
                .min(0.0);
                if strongest.as_ref().is_none_or(|s| bound_log10 < s.0) {
                    strongest = Some((bound_log10, ranked, reading, soft));
                }
            }
            let Some((
                false_positive_log10,
                Ranked {
                    score,
                    payload,
                    runner_up,
                },
                reading,
                soft,
            )) = strongest
            else {
                continue;
            };
            if false_positive_log10 > self.options.threshold.log10() {
                continue;
            }
            // Against each other payload of the recipient, the bits where
            // the two codewords differ decide between them; the closest
            // such contest bounds how likely another was the one marked.
            let energies = bit_energies(self.pilot_schedule(), &reading.observation);
            let (own, others): (Vec<_>, Vec<_>) = candidates
                .iter()
                .zip(&codewords)
                .partition(|(p, _)| **p == payload);
            let Some((_, codeword)) = own.first() else {
                continue;
            };
            let closest = others
                .iter()
                .map(|(_, other)| contest_score(codeword, other, &soft, &energies))
                .fold(f64::INFINITY, f64::min);
            let another_log10 = (!others.is_empty())
                .then(|| (log10_tail_bound(closest) + (others.len() as f64).log10()).min(0.0));
            matches.push(IssuedMatch {
                issued: Issued {
                    recipient: reader.recipient,
                    payload,
                },
                score,
                false_positive_log10,
                another_log10,
                runner_up: runner_up.map(|(score, payload)| RunnerUp { payload, score }),
                compared: issued.len(),
                geometry: reading.geometry.clone(),
                sharpened: reading.sharpened,
                rank: reading.rank,
            });
        }
        matches.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(matches)
    }
}

/// How close one payload's codeword comes to being read blind from a
/// reading: see [`Detector::payload_evidence`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PayloadEvidence {
    /// Normalised correlation of the mark with the payload's codeword (a
    /// z-score), at the reading where its blind bound is smallest.
    pub score: f64,
    /// Base-10 logarithm of the bound a blind verdict for this payload
    /// would report at that reading: the blind payload test's (one of 2⁶⁴
    /// payloads per recipient, within the reading's share of the
    /// threshold). The payload can be read blind only where this is at most
    /// the threshold's logarithm, and the decoder finds it.
    pub blind_false_positive_log10: f64,
    /// The reading's place in the search's order (0: the unchanged
    /// geometry).
    pub rank: usize,
    /// The reading was of the sharpened image.
    pub sharpened: bool,
}

impl Detector {
    /// How strongly a known payload's codeword is present in a reading
    /// (from [`Detector::examine`]), and how far that is from a blind
    /// reading: for benchmarks and for judging how much of a mark an
    /// attack left. Every reading the search measured is scored, and the
    /// one with the smallest blind bound counts.
    ///
    /// It scores the payload whether or not it is the one marked, so it is
    /// evidence only for a payload chosen before looking (the one a
    /// benchmark marked); comparing many is [`Detector::match_issued`]'s
    /// job, whose bound counts them.
    ///
    /// Fails when the recipient is not one this detector was built for.
    ///
    /// ```
    /// use image::{DynamicImage, RgbImage};
    /// use tattle_detect::{DetectOptions, Issued, Key, Payload, Recipient};
    /// use tattle_embed::EmbedOptions;
    ///
    /// let img = DynamicImage::ImageRgb8(RgbImage::from_fn(384, 384, |x, y| {
    ///     let v = ((x * 7919 + y * 104729) % 251) as u8;
    ///     image::Rgb([v, v / 2, 255 - v])
    /// }));
    /// let key = Key::from_bytes([7; 32]);
    /// let marked = EmbedOptions::default().build(&key).unwrap().embed(&img, Payload::new(41)).unwrap();
    /// let detector = DetectOptions::default().build(&key).unwrap();
    /// let (detection, reading) = detector.examine(&tattle_core::plane::luma(&marked));
    ///
    /// let issued = |n| Issued { recipient: Recipient::Studio, payload: Payload::new(n) };
    /// let own = detector.payload_evidence(&reading, issued(41)).unwrap();
    /// assert_eq!(detection.payload, Some(Payload::new(41)));
    /// assert!(own.blind_false_positive_log10 < -9.0);
    /// // Another payload's codeword reads like noise.
    /// let other = detector.payload_evidence(&reading, issued(42)).unwrap();
    /// assert!(other.score < 5.0 && other.blind_false_positive_log10 == 0.0);
    /// ```
    pub fn payload_evidence(&self, reading: &Reading, issued: Issued) -> Result<PayloadEvidence> {
        let reader = self.reader(issued.recipient)?;
        let codeword = code::encode(issued.payload);
        let candidates_log10 = self.blind_candidates_log10();
        let evidence = |reading: &Reading| {
            let soft = soft_bits(&reader.schedule, &reading.observation);
            let score = codeword_score(&codeword, &soft, self.payload_norm(&reading.observation));
            PayloadEvidence {
                score,
                blind_false_positive_log10: (log10_tail_bound(score)
                    + self.payload_trials_log10(candidates_log10, reading.rank, reading.sharpened))
                .min(0.0),
                rank: reading.rank,
                sharpened: reading.sharpened,
            }
        };
        let mut best = evidence(reading);
        for other in reading.others.iter().map(evidence) {
            // At equal bounds (both 1, say) the higher score.
            let (a, b) = (other.blind_false_positive_log10, best.blind_false_positive_log10);
            if a < b || (a == b && other.score > best.score) {
                best = other;
            }
        }
        Ok(best)
    }
}

pub(crate) fn unknown_recipient(recipient: Recipient) -> Error {
    Error::InvalidParameter {
        name: "issued",
        reason: format!("{recipient} is not among the detector's recipients"),
    }
}

/// The normalised correlation of a codeword with the soft bits of a reading
/// whose payload slots have norm `norm`.
fn codeword_score(codeword: &[bool], soft: &[f32], norm: f64) -> f64 {
    let dot: f64 = codeword
        .iter()
        .zip(soft)
        .map(|(&bit, &s)| if bit { -f64::from(s) } else { f64::from(s) })
        .sum();
    if norm > 0.0 {
        dot / norm
    } else {
        0.0
    }
}

/// The best of one recipient's issued payloads against one reading, and
/// the next best.
struct Ranked {
    score: f64,
    payload: Payload,
    runner_up: Option<(f64, Payload)>,
}

/// Ranks `payloads` (with their `codewords`) by their normalised
/// correlation with the soft bits of a reading whose payload slots have
/// norm `norm`; `None` when there are none.
fn rank_payloads(payloads: &[Payload], codewords: &[Vec<bool>], soft: &[f32], norm: f64) -> Option<Ranked> {
    let mut best: Option<(f64, Payload)> = None;
    let mut runner_up: Option<(f64, Payload)> = None;
    for (&payload, codeword) in payloads.iter().zip(codewords) {
        if best.is_some_and(|b| b.1 == payload) {
            // Listed twice: it is not its own runner-up.
            continue;
        }
        let score = codeword_score(codeword, soft, norm);
        let entry = Some((score, payload));
        if best.is_none_or(|b| score > b.0) {
            runner_up = best;
            best = entry;
        } else if runner_up.is_none_or(|r| score > r.0) {
            runner_up = entry;
        }
    }
    best.map(|(score, payload)| Ranked {
        score,
        payload,
        runner_up,
    })
}

/// The energy of the slots of every coded bit: the squares of the values
/// whose chip-weighted sum is that bit's soft value.
fn bit_energies(schedule: &Schedule, observation: &Observation) -> Vec<f64> {
    let mut energies = vec![0.0f64; code::CODED_BITS];
    for (role, v) in schedule.roles().iter().zip(observation.slots()) {
        if let Role::Coded(bit) = role {
            if let Some(e) = energies.get_mut(usize::from(*bit)) {
                *e += f64::from(*v) * f64::from(*v);
            }
        }
    }
    energies
}

/// The normalised correlation with codeword `a` of the coded bits where it
/// differs from `b`: the evidence for `a` over `b`. Were `b` the codeword
/// marked, those bits would carry `b`'s signs and this would lean negative,
/// so its chance of reaching a score `t` is at most the null bound at `t`
/// (the chips being independent of the image and of the noise of its
/// attacks).
fn contest_score(a: &[bool], b: &[bool], soft: &[f32], energies: &[f64]) -> f64 {
    let (mut dot, mut energy) = (0.0f64, 0.0f64);
    for (((&bit, &other), &s), &e) in a.iter().zip(b).zip(soft).zip(energies) {
        if bit != other {
            dot += if bit { -f64::from(s) } else { f64::from(s) };
            energy += e;
        }
    }
    if energy > 0.0 {
        dot / energy.sqrt()
    } else {
        0.0
    }
}
