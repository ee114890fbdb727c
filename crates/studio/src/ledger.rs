//! The issuance ledger: which vendor received which asset, under which payload.
//!
//! A SQLite database (bundled, so nothing to install) in WAL mode, so that
//! several `tattle stamp` processes and readers can use it at once. Every
//! write is one `BEGIN IMMEDIATE` transaction: writers queue on SQLite's
//! lock (with a generous busy timeout) instead of failing, and serials come
//! from `AUTOINCREMENT`, so concurrent stampers never hand out the same
//! payload or lose a record.
//!
//! The schema is versioned with `PRAGMA user_version` and upgraded by the
//! migrations in [`MIGRATIONS`], in order, when a ledger is opened.
//!
//! # Payload layout
//!
//! A stamped asset's 64-bit payload is `vendor id (16 bits) ‖ issuance
//! serial (48 bits)`, see [`issuance_payload`]. The payload chips are also
//! keyed by the vendor ([`tattle_core::Recipient`]), so the vendor is known
//! twice over: from whose chips decode the mark and from the payload's top
//! bits. Tracing accepts an attribution only when both agree and the ledger
//! holds the serial for that vendor.
//!
//! An issuance is first recorded as *pending*, then the marked file is
//! published under its final name, then the record becomes *issued*. A
//! crash in between leaves a pending record that the next run for the same
//! source and output completes with the same payload.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use serde::Serialize;
use tattle_core::{Key, Payload, Recipient};

use crate::error::{Error, Result};

/// Bits of the payload that hold the issuance serial.
pub const SERIAL_BITS: u32 = 48;
/// Largest vendor id (vendor ids fill the payload's top 16 bits; 0 is unused).
pub const MAX_VENDOR_ID: u16 = u16::MAX;

/// The payload of issuance `serial` to `vendor`.
///
/// ```
/// use tattle_studio::ledger::{issuance_payload, split_payload};
/// let p = issuance_payload(3, 41).unwrap();
/// assert_eq!(p.to_string(), "0003000000000029");
/// assert_eq!(split_payload(p), (3, 41));
/// assert!(issuance_payload(3, 1 << 48).is_none());
/// ```
pub fn issuance_payload(vendor: u16, serial: u64) -> Option<Payload> {
    (serial < 1 << SERIAL_BITS).then(|| Payload::new((u64::from(vendor) << SERIAL_BITS) | serial))
}

/// The vendor id and serial a payload claims (see [`issuance_payload`]).
pub fn split_payload(payload: Payload) -> (u16, u64) {
    let v = payload.value();
    ((v >> SERIAL_BITS) as u16, v & ((1 << SERIAL_BITS) - 1))
}

/// The schema, one step per version; `MIGRATIONS[i]` upgrades version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: vendors, issuances, and the fingerprint of the studio key.
    "CREATE TABLE meta (
         name  TEXT PRIMARY KEY,
         value TEXT NOT NULL
     );
     CREATE TABLE vendors (
         id      INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 65535),
         name    TEXT NOT NULL UNIQUE COLLATE NOCASE,
         contact TEXT,
         created TEXT NOT NULL
     );
     CREATE TABLE issuances (
         serial          INTEGER PRIMARY KEY AUTOINCREMENT,
         vendor_id       INTEGER NOT NULL REFERENCES vendors(id),
         payload         TEXT UNIQUE,
         status          TEXT NOT NULL CHECK (status IN ('pending', 'issued')),
         source_path     TEXT NOT NULL,
         source_sha256   TEXT NOT NULL,
         output_path     TEXT NOT NULL,
         output_sha256   TEXT,
         width           INTEGER NOT NULL,
         height          INTEGER NOT NULL,
         strength        REAL NOT NULL,
         created         TEXT NOT NULL,
         issued          TEXT,
         tool_version    TEXT NOT NULL,
         key_fingerprint TEXT NOT NULL
     );
     CREATE INDEX issuances_by_source ON issuances (vendor_id, source_sha256, output_path);",
];

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')";

/// A vendor: someone the studio sends assets to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Vendor {
    /// The vendor's id, 1 to 65535; part of every payload stamped for it.
    pub id: u16,
    /// Unique name (case-insensitive).
    pub name: String,
    /// Free-form contact details.
    pub contact: Option<String>,
    /// When the vendor was registered (UTC, RFC 3339).
    pub created: String,
}

/// Where an issuance stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Recorded; the marked file may not be published yet.
    Pending,
    /// The marked file was published with the recorded hash.
    Issued,
}

/// One asset stamped for one vendor.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Issuance {
    /// Ledger-wide serial number.
    pub serial: u64,
    /// The payload carried by the stamped file.
    pub payload: Payload,
    /// The vendor's id.
    pub vendor_id: u16,
    /// The vendor's name.
    pub vendor: String,
    /// Pending or issued.
    pub status: Status,
    /// The source file (absolute path at stamping time).
    pub source_path: String,
    /// SHA-256 of the source file's bytes.
    pub source_sha256: String,
    /// The stamped file (absolute path at stamping time).
    pub output_path: String,
    /// SHA-256 of the stamped file's bytes, once issued.
    pub output_sha256: Option<String>,
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Embedding strength.
    pub strength: f32,
    /// When the issuance was recorded (UTC, RFC 3339).
    pub created: String,
    /// When the stamped file was published (UTC, RFC 3339).
    pub issued: Option<String>,
    /// The tattle version that stamped it.
    pub tool_version: String,
    /// Fingerprint of the studio key (never the key itself).
    pub key_fingerprint: String,
}

/// What a stamper knows before marking an asset.
#[derive(Clone, Debug)]
pub struct IssuanceRequest<'a> {
    /// The vendor's id.
    pub vendor_id: u16,
    /// The source file.
    pub source_path: &'a Path,
    /// SHA-256 of its bytes.
    pub source_sha256: &'a str,
    /// Where the stamped file goes.
    pub output_path: &'a Path,
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// Embedding strength.
    pub strength: f32,
}

/// The studio's ledger. Cheap to share between threads (one connection
/// behind a mutex; SQLite serialises writers anyway).
///
/// ```
/// use tattle_core::Key;
/// use tattle_studio::ledger::Ledger;
/// # let dir = tempfile::tempdir().unwrap();
/// let key = Key::from_bytes([1; 32]);
/// let ledger = Ledger::create(&dir.path().join("ledger.sqlite"), &key).unwrap();
/// let acme = ledger.add_vendor("Acme VFX", Some("ops@acme.example")).unwrap();
/// assert_eq!(acme.id, 1);
/// assert_eq!(ledger.vendors().unwrap(), vec![acme]);
/// assert!(ledger.add_vendor("acme vfx", None).is_err()); // names are case-insensitive
/// ```
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl Ledger {
    /// Creates a new ledger for a studio key. Fails if the file exists.
    pub fn create(path: &Path, key: &Key) -> Result<Self> {
        if path.exists() {
            return Err(Error::StudioExists {
                path: path.to_owned(),
            });
        }
        let ledger = Self::connect(path)?;
        ledger.write(|tx| {
            tx.execute(
                "INSERT INTO meta (name, value) VALUES ('key_fingerprint', ?1)",
                params![key.fingerprint()],
            )
            .map_err(ledger.sqlite())?;
            Ok(())
        })?;
        Ok(ledger)
    }

    /// Opens an existing ledger, upgrading its schema if it is older.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::io(path)(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the ledger database does not exist",
            )));
        }
        Self::connect(path)
    }

    fn connect(path: &Path) -> Result<Self> {
        let sqlite = |source| Error::Ledger {
            path: path.to_owned(),
            cause: source,
        };
        let mut connection = Connection::open(path).map_err(sqlite)?;
        connection.busy_timeout(Duration::from_secs(60)).map_err(sqlite)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .and_then(|_| connection.pragma_update(None, "synchronous", "FULL"))
            .and_then(|_| connection.pragma_update(None, "foreign_keys", "ON"))
            .map_err(sqlite)?;
        migrate(&mut connection, path)?;
        Ok(Self {
            path: path.to_owned(),
            connection: Mutex::new(connection),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent
        // (the transaction rolls back), so a poisoned lock is still usable.
        self.connection.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sqlite(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        move |source| Error::Ledger {
            path: self.path.clone(),
            cause: source,
        }
    }

    /// Runs `f` in one immediate (write-locked) transaction.
    fn write<T>(&self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut connection = self.lock();
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.sqlite())?;
        let value = f(&tx)?;
        tx.commit().map_err(self.sqlite())?;
        Ok(value)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        f(&self.lock()).map_err(self.sqlite())
    }

    /// The fingerprint of the key the ledger was created with.
    pub fn key_fingerprint(&self) -> Result<String> {
        self.read(|c| {
            c.query_row("SELECT value FROM meta WHERE name = 'key_fingerprint'", [], |r| {
                r.get(0)
            })
        })
    }

    /// Fails unless `key` is the key the ledger was created with.
    pub fn check_key(&self, key: &Key) -> Result<()> {
        let ledger = self.key_fingerprint()?;
        if ledger != key.fingerprint() {
            return Err(Error::KeyMismatch {
                path: self.path.clone(),
                key: key.fingerprint(),
                ledger,
            });
        }
        Ok(())
    }

    /// Registers a vendor under the next free id.
    pub fn add_vendor(&self, name: &str, contact: Option<&str>) -> Result<Vendor> {
        let name = name.trim();
        let invalid = |reason| Error::InvalidVendorName {
            name: name.to_owned(),
            reason,
        };
        if name.is_empty() {
            return Err(invalid("the name is empty"));
        }
        if name.chars().any(char::is_control) {
            return Err(invalid("the name contains control characters"));
        }
        let id = self.write(|tx| {
            let sqlite = self.sqlite();
            let taken: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM vendors WHERE name = ?1)",
                    [name],
                    |r| r.get(0),
                )
                .map_err(&sqlite)?;
            if taken {
                return Err(Error::VendorExists {
                    name: name.to_owned(),
                });
            }
            let next: i64 = tx
                .query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM vendors", [], |r| r.get(0))
                .map_err(&sqlite)?;
            if next > i64::from(MAX_VENDOR_ID) {
                return Err(Error::TooManyVendors {
                    max: u32::from(MAX_VENDOR_ID),
                });
            }
            tx.execute(
                &format!("INSERT INTO vendors (id, name, contact, created) VALUES (?1, ?2, ?3, {NOW})"),
                params![next, name, contact],
            )
            .map_err(&sqlite)?;
            Ok(next)
        })?;
        self.vendor_where("id = ?1", id)?
            .ok_or_else(|| Error::UnknownVendor {
                name: name.to_owned(),
            })
    }

    fn vendor_where(&self, condition: &str, value: impl rusqlite::ToSql) -> Result<Option<Vendor>> {
        self.read(|c| {
            c.query_row(
                &format!("SELECT id, name, contact, created FROM vendors WHERE {condition}"),
                [value],
                vendor_from_row,
            )
            .optional()
        })
    }

    /// Every channel a mark of this studio can carry a payload on: the
    /// studio-wide one of `tattle embed`, then each registered vendor's.
    pub fn recipients(&self) -> Result<Vec<Recipient>> {
        let mut recipients = vec![Recipient::Studio];
        recipients.extend(self.vendors()?.iter().map(|v| Recipient::Vendor(v.id)));
        Ok(recipients)
    }

    /// The vendor with this name (case-insensitive), if registered.
    pub fn vendor_by_name(&self, name: &str) -> Result<Option<Vendor>> {
        self.vendor_where("name = ?1", name.trim())
    }

    /// The vendor with this id, if registered.
    pub fn vendor(&self, id: u16) -> Result<Option<Vendor>> {
        self.vendor_where("id = ?1", id)
    }

    /// Every vendor, by id.
    pub fn vendors(&self) -> Result<Vec<Vendor>> {
        self.read(|c| {
            c.prepare("SELECT id, name, contact, created FROM vendors ORDER BY id")?
                .query_map([], vendor_from_row)?
                .collect()
        })
    }

    /// Records that an asset is about to be stamped and returns its
    /// issuance (with its payload), still pending. A pending issuance for
    /// the same vendor, source and output — left by an interrupted run — is
    /// returned instead of a new one, so the retry carries the same payload.
    pub fn begin_issuance(&self, request: &IssuanceRequest<'_>) -> Result<Issuance> {
        let source = request.source_path.to_string_lossy();
        let output = request.output_path.to_string_lossy();
        let serial = self.write(|tx| {
            let sqlite = self.sqlite();
            let pending: Option<i64> = tx
                .query_row(
                    "SELECT serial FROM issuances WHERE status = 'pending' AND vendor_id = ?1
                     AND source_sha256 = ?2 AND output_path = ?3 ORDER BY serial LIMIT 1",
                    params![request.vendor_id, request.source_sha256, output],
                    |r| r.get(0),
                )
                .optional()
                .map_err(&sqlite)?;
            if let Some(serial) = pending {
                return Ok(serial);
            }
            tx.execute(
                &format!(
                    "INSERT INTO issuances (vendor_id, status, source_path, source_sha256, output_path,
                         width, height, strength, created, tool_version, key_fingerprint)
                     VALUES (?1, 'pending', ?2, ?3, ?4, ?5, ?6, ?7, {NOW}, ?8,
                         (SELECT value FROM meta WHERE name = 'key_fingerprint'))"
                ),
                params![
                    request.vendor_id,
                    source,
                    request.source_sha256,
                    output,
                    request.width,
                    request.height,
                    request.strength,
                    env!("CARGO_PKG_VERSION"),
                ],
            )
            .map_err(&sqlite)?;
            let serial = tx.last_insert_rowid();
            let payload = u64::try_from(serial)
                .ok()
                .and_then(|s| issuance_payload(request.vendor_id, s))
                .ok_or(Error::SerialsExhausted)?;
            tx.execute(
                "UPDATE issuances SET payload = ?1 WHERE serial = ?2",
                params![payload.to_string(), serial],
            )
            .map_err(&sqlite)?;
            Ok(serial)
        })?;
        self.issuance_by_serial(serial)
    }

    /// Withdraws a pending issuance whose file was never published (the
    /// image could not carry its mark): the record goes, and its serial and
    /// payload are never issued again. An issued record is left alone.
    pub fn abandon_issuance(&self, serial: u64) -> Result<()> {
        let serial = i64::try_from(serial).map_err(|_| Error::SerialsExhausted)?;
        self.write(|tx| {
            tx.execute(
                "DELETE FROM issuances WHERE serial = ?1 AND status = 'pending'",
                params![serial],
            )
            .map_err(self.sqlite())?;
            Ok(())
        })
    }

    /// Marks a pending issuance as issued, with the published file's hash.
    pub fn complete_issuance(&self, serial: u64, output_sha256: &str) -> Result<Issuance> {
        let serial = i64::try_from(serial).map_err(|_| Error::SerialsExhausted)?;
        self.write(|tx| {
            tx.execute(
                &format!(
                    "UPDATE issuances SET status = 'issued', output_sha256 = ?1, issued = {NOW}
                     WHERE serial = ?2"
                ),
                params![output_sha256, serial],
            )
            .map_err(self.sqlite())?;
            Ok(())
        })?;
        self.issuance_by_serial(serial)
    }

    fn issuance_by_serial(&self, serial: i64) -> Result<Issuance> {
        self.issuances_where("i.serial = ?1", params![serial])?
            .into_iter()
            .next()
            .ok_or_else(|| self.sqlite()(rusqlite::Error::QueryReturnedNoRows))
    }

    fn issuances_where(&self, condition: &str, values: impl rusqlite::Params) -> Result<Vec<Issuance>> {
        self.read(|c| {
            c.prepare(&format!(
                "SELECT i.serial, i.payload, i.vendor_id, v.name, i.status, i.source_path, i.source_sha256,
                        i.output_path, i.output_sha256, i.width, i.height, i.strength, i.created, i.issued,
                        i.tool_version, i.key_fingerprint
                 FROM issuances i JOIN vendors v ON v.id = i.vendor_id
                 WHERE {condition} ORDER BY i.serial"
            ))?
            .query_map(values, issuance_from_row)?
            .collect()
        })
    }

    /// The latest issued stamp of this source for this vendor at this output, if any.
    pub fn find_issued(
        &self,
        vendor_id: u16,
        source_sha256: &str,
        output_path: &Path,
    ) -> Result<Option<Issuance>> {
        Ok(self
            .issuances_where(
                "i.status = 'issued' AND i.vendor_id = ?1 AND i.source_sha256 = ?2 AND i.output_path = ?3",
                params![vendor_id, source_sha256, output_path.to_string_lossy()],
            )?
            .pop())
    }

    /// The issuance a payload names, if the ledger holds it for the vendor
    /// the payload claims. `None` for payloads the ledger never issued.
    pub fn lookup(&self, payload: Payload) -> Result<Option<Issuance>> {
        let (vendor, serial) = split_payload(payload);
        let Ok(serial) = i64::try_from(serial) else {
            return Ok(None);
        };
        Ok(self
            .issuances_where("i.serial = ?1 AND i.vendor_id = ?2", params![serial, vendor])?
            .pop()
            .filter(|i| i.payload == payload))
    }

    /// Every issuance, by serial.
    pub fn issuances(&self) -> Result<Vec<Issuance>> {
        self.issuances_where("1", [])
    }

    /// Issuances still pending (interrupted stamps).
    pub fn pending(&self) -> Result<Vec<Issuance>> {
        self.issuances_where("i.status = 'pending'", [])
    }

    /// The vendor id and payload of every issuance, by serial: what a
    /// leaked mark is compared with, without the rest of each record.
    pub fn issued_payloads(&self) -> Result<Vec<(u16, Payload)>> {
        self.read(|c| {
            c.prepare("SELECT vendor_id, payload FROM issuances ORDER BY serial")?
                .query_map([], |row| Ok((row.get(0)?, parse_payload(row, 1)?)))?
                .collect()
        })
    }
}

/// The payload stored in column `column` of a ledger row.
fn parse_payload(row: &Row<'_>, column: usize) -> rusqlite::Result<Payload> {
    let payload: Option<String> = row.get(column)?;
    payload.as_deref().and_then(|p| p.parse().ok()).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            "invalid payload in the ledger".into(),
        )
    })
}

fn migrate(connection: &mut Connection, path: &Path) -> Result<()> {
    let sqlite = |source| Error::Ledger {
        path: path.to_owned(),
        cause: source,
    };
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sqlite)?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(Error::SchemaTooNew {
            path: path.to_owned(),
            found: version,
            known,
        });
    }
    for (step, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.execute_batch(sql).map_err(sqlite)?;
        tx.pragma_update(None, "user_version", step as i64 + 1)
            .map_err(sqlite)?;
    }
    tx.commit().map_err(sqlite)
}

fn vendor_from_row(row: &Row<'_>) -> rusqlite::Result<Vendor> {
    Ok(Vendor {
        id: row.get(0)?,
        name: row.get(1)?,
        contact: row.get(2)?,
        created: row.get(3)?,
    })
}

fn issuance_from_row(row: &Row<'_>) -> rusqlite::Result<Issuance> {
    let invalid = |column: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            format!("invalid {what} in the ledger").into(),
        )
    };
    let status: String = row.get(4)?;
    Ok(Issuance {
        serial: row.get(0)?,
        payload: parse_payload(row, 1)?,
        vendor_id: row.get(2)?,
        vendor: row.get(3)?,
        status: match status.as_str() {
            "pending" => Status::Pending,
            "issued" => Status::Issued,
            _ => return Err(invalid(4, "status")),
        },
        source_path: row.get(5)?,
        source_sha256: row.get(6)?,
        output_path: row.get(7)?,
        output_sha256: row.get(8)?,
        width: row.get(9)?,
        height: row.get(10)?,
        strength: row.get(11)?,
        created: row.get(12)?,
        issued: row.get(13)?,
        tool_version: row.get(14)?,
        key_fingerprint: row.get(15)?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn ledger() -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::create(&dir.path().join("l.sqlite"), &Key::from_bytes([1; 32])).unwrap();
        (dir, ledger)
    }

    fn request<'a>(vendor_id: u16, sha: &'a str, output: &'a Path) -> IssuanceRequest<'a> {
        IssuanceRequest {
            vendor_id,
            source_path: Path::new("/src/a.png"),
            source_sha256: sha,
            output_path: output,
            width: 640,
            height: 480,
            strength: 1.0,
        }
    }

    #[test]
    fn an_issuance_goes_from_pending_to_issued_and_is_found_by_payload() {
        let (_dir, ledger) = ledger();
        let vendor = ledger.add_vendor("Acme", None).unwrap();
        let out = Path::new("/out/a.png");
        let first = ledger.begin_issuance(&request(vendor.id, "aa", out)).unwrap();
        assert_eq!(first.status, Status::Pending);
        assert_eq!(split_payload(first.payload), (vendor.id, first.serial));
        // An interrupted run's pending record is reused, not duplicated.
        let retry = ledger.begin_issuance(&request(vendor.id, "aa", out)).unwrap();
        assert_eq!(retry.serial, first.serial);
        assert_eq!(ledger.find_issued(vendor.id, "aa", out).unwrap(), None);
        let done = ledger.complete_issuance(first.serial, "bb").unwrap();
        assert_eq!(
            (done.status, done.output_sha256.as_deref()),
            (Status::Issued, Some("bb"))
        );
        assert_eq!(
            ledger.find_issued(vendor.id, "aa", out).unwrap(),
            Some(done.clone())
        );
        assert_eq!(ledger.lookup(done.payload).unwrap(), Some(done.clone()));
        assert_eq!(
            ledger.key_fingerprint().unwrap(),
            Key::from_bytes([1; 32]).fingerprint()
        );
        // A payload claiming another vendor for the same serial is not ours.
        let forged = issuance_payload(vendor.id + 1, done.serial).unwrap();
        assert_eq!(ledger.lookup(forged).unwrap(), None);
        // A new issuance after completion gets a new serial.
        let again = ledger.begin_issuance(&request(vendor.id, "aa", out)).unwrap();
        assert_ne!(again.serial, first.serial);
        assert_eq!(ledger.pending().unwrap().len(), 1);
        // Every issuance's payload, pending ones too (a stamp may have
        // published its file before it was interrupted).
        assert_eq!(
            ledger.issued_payloads().unwrap(),
            [(vendor.id, done.payload), (vendor.id, again.payload)]
        );
    }

    #[test]
    fn vendor_names_are_checked() {
        let (_dir, ledger) = ledger();
        assert!(matches!(
            ledger.add_vendor("  ", None),
            Err(Error::InvalidVendorName { .. })
        ));
        assert!(matches!(
            ledger.add_vendor("a\nb", None),
            Err(Error::InvalidVendorName { .. })
        ));
        ledger.add_vendor("Acme", None).unwrap();
        assert!(matches!(
            ledger.add_vendor("ACME", None),
            Err(Error::VendorExists { .. })
        ));
        assert_eq!(ledger.vendor_by_name("acme").unwrap().map(|v| v.id), Some(1));
        assert_eq!(ledger.add_vendor("Bolt", Some("x@y")).unwrap().id, 2);
    }

    #[test]
    fn a_wrong_key_or_newer_schema_is_refused() {
        let (dir, ledger) = ledger();
        assert!(matches!(
            ledger.check_key(&Key::from_bytes([2; 32])),
            Err(Error::KeyMismatch { .. })
        ));
        ledger.check_key(&Key::from_bytes([1; 32])).unwrap();
        drop(ledger);
        let path = dir.path().join("l.sqlite");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        assert!(matches!(
            Ledger::open(&path),
            Err(Error::SchemaTooNew { found: 99, .. })
        ));
        assert!(Ledger::create(&path, &Key::from_bytes([1; 32])).is_err());
        assert!(Ledger::open(&dir.path().join("missing.sqlite")).is_err());
    }

    #[test]
    fn garbage_is_not_a_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.sqlite");
        std::fs::write(
            &path,
            b"this is not a database, just some text of decent length..........",
        )
        .unwrap();
        let err = Ledger::open(&path).unwrap_err();
        assert!(err.to_string().contains("junk.sqlite"), "{err}");
    }
}
