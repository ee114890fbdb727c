//! The studio workflow around tattle's watermark: a workspace with the
//! studio key, a ledger of vendors and issuances, stamping whole
//! deliveries with a unique payload per asset, and tracing a leaked image
//! back to the vendor and asset it came from.
//!
//! ```
//! use tattle_studio::{Studio, stamp::{Stamper, StampOptions}, trace::{Tracer, Verdict}};
//! # let dir = tempfile::tempdir().unwrap();
//! # let source = dir.path().join("frame.png");
//! # image::RgbImage::from_fn(384, 256, |x, y| image::Rgb([(x * 7 + y * 13) as u8, (x ^ y) as u8, 90]))
//! #     .save(&source).unwrap();
//! let studio = Studio::init(&dir.path().join("studio"), "Nimbus Pictures").unwrap();
//! let ledger = studio.ledger().unwrap();
//! for name in ["Acme VFX", "Bolt Paint", "Cobalt Comp"] {
//!     ledger.add_vendor(name, None).unwrap();
//! }
//! let stamper = Stamper::new(&studio, &ledger, "Bolt Paint", StampOptions::from_studio(&studio)).unwrap();
//! let out = dir.path().join("delivery/frame.png");
//! let issued = stamper.stamp(&source, &out).unwrap();
//!
//! let tracer = Tracer::new(&studio, &ledger, 1e-9).unwrap();
//! let leaked = image::open(&out).unwrap();
//! match tracer.trace(&leaked, false).unwrap().verdict {
//!     Verdict::Attributed { vendor, issuance, also } => {
//!         assert_eq!(vendor.name, "Bolt Paint");
//!         assert_eq!(issuance.serial, issued.issuance().serial);
//!         assert!(also.is_empty(), "no other vendor's copy is mixed in");
//!     }
//!     other => panic!("{other:?}"),
//! }
//! ```
#![deny(missing_docs)]
// Every path here is reachable from user input: no index that can panic.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

pub mod audit;
pub mod error;
pub mod files;
#[doc(hidden)]
pub mod fuzzing;
pub mod ledger;
pub mod stamp;
pub mod trace;
pub mod warm;
pub mod workspace;

pub use error::{Error, Result};
pub use ledger::Ledger;
pub use workspace::Studio;
