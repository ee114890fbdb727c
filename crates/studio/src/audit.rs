//! Audits of the ledger: exporting it, and checking that stamped files are
//! still what was recorded.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::files;
use crate::ledger::{Issuance, Ledger, Status, Vendor};

/// Writes issuances as CSV, one row per issuance with a header row.
///
/// ```
/// use tattle_studio::{audit::write_csv, Ledger};
/// # let dir = tempfile::tempdir().unwrap();
/// let ledger = Ledger::create(&dir.path().join("l.sqlite"), &tattle_core::Key::from_bytes([1; 32])).unwrap();
/// let mut out = Vec::new();
/// write_csv(&ledger.issuances().unwrap(), &mut out).unwrap();
/// assert!(String::from_utf8(out).unwrap().starts_with("serial,payload,vendor_id,vendor,status,"));
/// ```
pub fn write_csv(issuances: &[Issuance], out: impl Write) -> Result<()> {
    let failed = |e: csv::Error| Error::io("<csv output>")(std::io::Error::other(e.to_string()));
    let mut writer = csv::Writer::from_writer(out);
    for issuance in issuances {
        writer.serialize(issuance).map_err(failed)?;
    }
    if issuances.is_empty() {
        writer
            .write_record([
                "serial",
                "payload",
                "vendor_id",
                "vendor",
                "status",
                "source_path",
                "source_sha256",
                "output_path",
                "output_sha256",
                "width",
                "height",
                "strength",
                "created",
                "issued",
                "tool_version",
                "key_fingerprint",
            ])
            .map_err(failed)?;
    }
    writer.flush().map_err(Error::io("<csv output>"))
}

/// The whole ledger as one JSON document.
#[derive(Debug, Serialize)]
pub struct Export {
    /// Fingerprint of the studio key.
    pub key_fingerprint: String,
    /// Every vendor.
    pub vendors: Vec<Vendor>,
    /// Every issuance.
    pub issuances: Vec<Issuance>,
}

impl Export {
    /// Reads the ledger.
    pub fn of(ledger: &Ledger) -> Result<Self> {
        Ok(Self {
            key_fingerprint: ledger.key_fingerprint()?,
            vendors: ledger.vendors()?,
            issuances: ledger.issuances()?,
        })
    }
}

/// The state of one stamped file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileCheck {
    /// The file is there with the recorded hash.
    Intact,
    /// The file is gone.
    Missing,
    /// The file is there but its bytes changed.
    Modified {
        /// Its hash now.
        sha256: String,
    },
    /// The stamp was interrupted before it finished; re-running the same
    /// `tattle stamp` completes it.
    Pending,
}

/// Checks every issuance's output file against its recorded hash.
pub fn verify(ledger: &Ledger) -> Result<Vec<(Issuance, FileCheck)>> {
    Ok(ledger
        .issuances()?
        .into_iter()
        .map(|issuance| {
            let check = check_file(&issuance);
            (issuance, check)
        })
        .collect())
}

fn check_file(issuance: &Issuance) -> FileCheck {
    if issuance.status == Status::Pending {
        return FileCheck::Pending;
    }
    match std::fs::read(Path::new(&issuance.output_path)) {
        Err(_) => FileCheck::Missing,
        Ok(bytes) => {
            let sha256 = files::sha256_hex(&bytes);
            if Some(&sha256) == issuance.output_sha256.as_ref() {
                FileCheck::Intact
            } else {
                FileCheck::Modified { sha256 }
            }
        }
    }
}
