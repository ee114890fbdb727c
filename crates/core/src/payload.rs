//! The 64 bits a mark carries.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// The 64 user bits a mark carries, written as 16 lowercase hex digits.
///
/// What the bits mean is the caller's business; the studio workflow packs a
/// vendor id and an issuance serial into them.
///
/// ```
/// use tattle_core::Payload;
/// let p: Payload = "00c0ffee12345678".parse().unwrap();
/// assert_eq!(p.to_string(), "00c0ffee12345678");
/// assert_eq!(p.value(), 0x00c0_ffee_1234_5678);
/// assert!("c0ffee".parse::<Payload>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Payload(u64);

impl Payload {
    /// Number of user bits.
    pub const BITS: usize = 64;

    /// Wraps a 64-bit value.
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The 64-bit value.
    pub const fn value(self) -> u64 {
        self.0
    }

    /// The bits, most significant first.
    pub fn bits(self) -> [bool; Self::BITS] {
        let mut out = [false; Self::BITS];
        for (i, b) in out.iter_mut().enumerate() {
            *b = (self.0 >> (Self::BITS - 1 - i)) & 1 == 1;
        }
        out
    }

    /// Rebuilds a payload from bits, most significant first.
    pub fn from_bits(bits: &[bool; Self::BITS]) -> Self {
        Self(bits.iter().fold(0u64, |acc, &b| (acc << 1) | u64::from(b)))
    }
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for Payload {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let digits = text.trim();
        let digits = digits.strip_prefix("0x").unwrap_or(digits);
        if digits.len() != 16 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::InvalidPayload {
                text: text.to_owned(),
            });
        }
        u64::from_str_radix(digits, 16)
            .map(Self)
            .map_err(|_| Error::InvalidPayload {
                text: text.to_owned(),
            })
    }
}

impl serde::Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn bits_round_trip(v in any::<u64>()) {
            let p = Payload::new(v);
            prop_assert_eq!(Payload::from_bits(&p.bits()), p);
            prop_assert_eq!(p.to_string().parse::<Payload>().unwrap(), p);
        }
    }

    #[test]
    fn bad_text_is_refused() {
        for t in [
            "",
            "123",
            "0123456789abcdeg",
            "0123456789abcdef0",
            "+123456789abcdef",
            "ü123456789abcde",
        ] {
            assert!(t.parse::<Payload>().is_err(), "{t}");
        }
        assert!("0X".parse::<Payload>().is_err());
        assert_eq!("FFFFFFFFFFFFFFFF".parse::<Payload>().unwrap().value(), u64::MAX);
    }
}
