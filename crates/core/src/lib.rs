//! The engine shared by `tattle-embed` and `tattle-detect`.
//!
//! tattle hides a keyed 64-bit payload in the luminance of an image, in the
//! 8x8 block DCT domain, as a spread-spectrum signal shaped by a perceptual
//! model. This crate holds what both sides must agree on:
//!
//! * [`dct`] — the orthonormal 8x8 DCT;
//! * [`key`] — the secret [`Key`] and BLAKE3 key derivation;
//! * [`prng`] — keyed ChaCha20 streams (chips, shuffles);
//! * [`payload`] and [`code`] — the 64-bit [`Payload`], CRC-24 and the
//!   K=9 rate-1/3 convolutional code with soft Viterbi decoding;
//! * [`layout`] — the tile, the coefficient band and the keyed slot schedule;
//! * [`recipient`] — whose payload chips a mark uses (studio-wide or one vendor);
//! * [`mask`] — the perceptual model;
//! * [`observe`] — measuring an image slot by slot;
//! * [`pattern`] — the spatial pattern of one tile;
//! * [`plane`] — luma planes and applying a luma change to any image;
//! * [`stats`] — the null-hypothesis bounds behind reported probabilities.
//!
//! Determinism: every keyed value comes from ChaCha20 seeded by BLAKE3
//! `derive_key`, read through our own conversions; golden tests pin them.
//!
//! ```
//! use tattle_core::{Key, Payload, code};
//! let key = Key::from_bytes([1; 32]);
//! let coded = code::encode(Payload::new(0xfeed));
//! assert_eq!(coded.len(), code::CODED_BITS);
//! assert_eq!(key.fingerprint().len(), 16);
//! ```
#![deny(missing_docs)]
// Every path here is reachable from user input: no index that can panic.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

pub mod code;
pub mod dct;
pub mod error;
mod fast_math;
pub mod key;
pub mod layout;
pub mod mask;
pub mod observe;
pub mod pattern;
pub mod payload;
pub mod plane;
pub mod prng;
pub mod recipient;
pub mod scratch;
pub mod stats;

pub use error::{Error, Result};
pub use key::Key;
pub use payload::Payload;
pub use recipient::Recipient;
