//! Where the mark lives: the tile, the coefficient band, and the keyed
//! assignment of every coefficient slot to the pilot or to a coded bit.
//!
//! The mark is a square tile of [`TILE_BLOCKS`]² DCT blocks repeated across
//! the whole image, so any part of the image large enough to hold a tile
//! carries every coded bit, and the detector averages all copies. In each
//! block the mark uses the mid-frequency coefficients of [`BAND`]: low
//! enough to survive JPEG, blur and halving the size, high enough to stay
//! out of the flat, smooth shading where the eye sees changes best.
//!
//! Every (block-in-tile, coefficient) pair is a *slot*. A keyed shuffle
//! gives [`PILOT_SLOTS`] slots to the pilot — a known keyed ±1 sequence that
//! proves the mark is present and, in the geometric search, locks the grid —
//! and spreads the rest evenly over the [`code::CODED_BITS`] coded bits, so
//! each coded bit lands in blocks all over the tile and at several
//! frequencies (interleaving against occlusion and frequency-selective
//! damage). Each slot also gets its own keyed ±1 chip.

use crate::code;
use crate::key::Key;
use crate::prng::KeyedStream;
use crate::recipient::Recipient;

/// Blocks per tile side.
pub const TILE_BLOCKS: usize = 16;
/// Tile side in pixels.
pub const TILE: usize = TILE_BLOCKS * crate::dct::BLOCK;
/// The DCT coefficients `(u, v)` (vertical, horizontal frequency) that carry
/// the mark, with their relative amplitude.
///
/// The weights follow the shape of Watson's frequency sensitivity: a
/// coefficient the eye tolerates more gets proportionally more energy.
pub const BAND: [(usize, usize, f32); 10] = [
    (0, 2, 0.85),
    (1, 1, 0.95),
    (2, 0, 0.85),
    (0, 3, 1.0),
    (1, 2, 1.0),
    (2, 1, 1.0),
    (3, 0, 1.0),
    (1, 3, 1.1),
    (2, 2, 1.15),
    (3, 1, 1.1),
];
/// Slots per tile.
pub const SLOTS: usize = TILE_BLOCKS * TILE_BLOCKS * BAND.len();
/// Slots given to the pilot.
pub const PILOT_SLOTS: usize = SLOTS / 4;

const ROLE_CONTEXT: &str = "tattle 2026-11 slot roles v1";
const PILOT_CONTEXT: &str = "tattle 2026-11 pilot chips v1";
const PAYLOAD_CONTEXT: &str = "tattle 2026-11 payload chips v1";

/// What a slot carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The known pilot sequence.
    Pilot,
    /// One chip of the coded bit with this index.
    Coded(u16),
}

/// The keyed layout of one mark: role and chip of every slot.
///
/// Roles and pilot chips depend on the studio key only; payload chips on
/// the key and the [`Recipient`].
///
/// Building it costs a few microseconds; embedders and detectors build it
/// once and reuse it.
///
/// ```
/// use tattle_core::{layout::{Schedule, Role, SLOTS, PILOT_SLOTS}, Key, Recipient};
/// let s = Schedule::new(&Key::from_bytes([1; 32]), Recipient::Studio);
/// assert_eq!(s.roles().len(), SLOTS);
/// assert_eq!(s.roles().iter().filter(|r| **r == Role::Pilot).count(), PILOT_SLOTS);
/// ```
#[derive(Clone, Debug)]
pub struct Schedule {
    roles: Vec<Role>,
    chips: Vec<f32>,
}

impl Schedule {
    /// The layout for a key and recipient.
    pub fn new(key: &Key, recipient: Recipient) -> Self {
        let mut order: Vec<u32> = (0..SLOTS as u32).collect();
        KeyedStream::from_seed(key.derive(ROLE_CONTEXT, &[])).shuffle(&mut order);
        let mut roles = vec![Role::Pilot; SLOTS];
        for (rank, &slot) in order.iter().enumerate().skip(PILOT_SLOTS) {
            if let Some(role) = roles.get_mut(slot as usize) {
                *role = Role::Coded(((rank - PILOT_SLOTS) % code::CODED_BITS) as u16);
            }
        }
        let mut pilot = KeyedStream::from_seed(key.derive(PILOT_CONTEXT, &[]));
        let mut payload = KeyedStream::from_seed(key.derive(PAYLOAD_CONTEXT, &recipient.key_context()));
        // Two streams, so that payload chips keyed per recipient leave the
        // studio-wide pilot untouched.
        let chips = roles
            .iter()
            .map(|r| match r {
                Role::Pilot => pilot.chip(),
                Role::Coded(_) => payload.chip(),
            })
            .collect();
        Self { roles, chips }
    }

    /// Role of every slot.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// Chip (±1) of every slot.
    pub fn chips(&self) -> &[f32] {
        &self.chips
    }

    /// The signed value every slot should carry for a given codeword:
    /// `chip` for pilot slots, `chip × (±1 for the coded bit)` otherwise.
    pub fn slot_signs(&self, codeword: &[bool]) -> Vec<f32> {
        self.roles
            .iter()
            .zip(&self.chips)
            .map(|(role, chip)| match role {
                Role::Pilot => *chip,
                Role::Coded(i) => match codeword.get(usize::from(*i)) {
                    Some(true) => -chip,
                    Some(false) => *chip,
                    None => 0.0,
                },
            })
            .collect()
    }
}

/// Index of the slot for the block at `(block_x, block_y)` of the tile and
/// the `k`-th coefficient of [`BAND`].
pub fn slot_index(block_x: usize, block_y: usize, k: usize) -> usize {
    ((block_y % TILE_BLOCKS) * TILE_BLOCKS + (block_x % TILE_BLOCKS)) * BAND.len() + k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_coded_bit_gets_a_fair_share() {
        let s = Schedule::new(&Key::from_bytes([3; 32]), Recipient::Studio);
        let mut counts = vec![0usize; code::CODED_BITS];
        for r in s.roles() {
            if let Role::Coded(i) = r {
                counts[usize::from(*i)] += 1;
            }
        }
        let min = counts.iter().min().copied().unwrap_or(0);
        let max = counts.iter().max().copied().unwrap_or(0);
        assert!(min >= (SLOTS - PILOT_SLOTS) / code::CODED_BITS);
        assert!(max - min <= 1);
    }

    #[test]
    fn schedules_differ_between_keys_and_repeat_for_one() {
        let a = Schedule::new(&Key::from_bytes([3; 32]), Recipient::Studio);
        let b = Schedule::new(&Key::from_bytes([3; 32]), Recipient::Studio);
        let c = Schedule::new(&Key::from_bytes([4; 32]), Recipient::Studio);
        assert_eq!(a.roles(), b.roles());
        assert_eq!(a.chips(), b.chips());
        assert_ne!(a.roles(), c.roles());
        let agreement: f32 = a.chips().iter().zip(c.chips()).map(|(x, y)| x * y).sum();
        assert!(agreement.abs() < 200.0);
    }

    #[test]
    fn vendors_share_roles_and_pilot_but_not_payload_chips() {
        let key = Key::from_bytes([3; 32]);
        let studio = Schedule::new(&key, Recipient::Studio);
        let a = Schedule::new(&key, Recipient::Vendor(1));
        let b = Schedule::new(&key, Recipient::Vendor(2));
        assert_eq!(a.roles(), b.roles());
        assert_eq!(a.roles(), studio.roles());
        let mut payload_agreement = 0.0f32;
        for ((role, x), y) in a.roles().iter().zip(a.chips()).zip(b.chips()) {
            match role {
                Role::Pilot => assert_eq!(x, y),
                Role::Coded(_) => payload_agreement += x * y,
            }
        }
        // Independent ±1 chips over 1920 slots: |sum| well under 5 sigma (~219).
        assert!(payload_agreement.abs() < 220.0, "{payload_agreement}");
    }
}
