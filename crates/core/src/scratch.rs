//! Buffers a thread keeps from one band of rows to the next.
//!
//! The banded passes run on rayon, whose `map_init` builds a new buffer for
//! every task it splits off: at 1080p that was a fresh band-sized buffer,
//! allocated and filled, for almost every band of every pass (some 60 MB
//! allocated to mark one frame). A thread-local buffer is allocated once
//! per thread and only ever grows.
//!
//! ```
//! use tattle_core::scratch::{with_local, ROWS};
//! let sum = with_local(&ROWS, |rows| {
//!     let rows = rows.exactly(4);
//!     rows.copy_from_slice(&[1.0, 2.0, 3.0, 4.0]);
//!     rows.iter().sum::<f32>()
//! });
//! assert_eq!(sum, 10.0);
//! ```

use std::cell::RefCell;
use std::thread::LocalKey;

/// Runs `f` on this thread's value behind `key`. If that value is already
/// in use further up this thread's stack (rayon can run another band's
/// task on a thread that waits inside a band), `f` gets a new default
/// value instead.
pub fn with_local<T: Default + 'static, R>(
    key: &'static LocalKey<RefCell<T>>,
    f: impl FnOnce(&mut T) -> R,
) -> R {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut value) => f(&mut value),
        Err(_) => f(&mut T::default()),
    })
}

/// A buffer of luma values or changes, one band of rows long.
#[derive(Default)]
pub struct Rows(Vec<f32>);

thread_local! {
    /// This thread's [`Rows`].
    pub static ROWS: RefCell<Rows> = const { RefCell::new(Rows(Vec::new())) };
}

impl Rows {
    /// The first `len` values, the buffer grown (with zeros) if it is
    /// shorter. What they hold is whatever the thread's last band left:
    /// callers write every value before they read it.
    pub fn exactly(&mut self, len: usize) -> &mut [f32] {
        if self.0.len() < len {
            self.0.resize(len, 0.0);
        }
        self.0.get_mut(..len).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_in_use_is_not_handed_out_again() {
        with_local(&ROWS, |outer| {
            outer.exactly(8).fill(1.0);
            // A task run further down the same thread gets a buffer of its own.
            with_local(&ROWS, |inner| {
                assert!(inner.exactly(0).is_empty() && inner.0.is_empty())
            });
        });
        // The thread's buffer is kept, values and all, for its next band.
        with_local(&ROWS, |rows| assert_eq!(rows.exactly(8), [1.0; 8]));
        with_local(&ROWS, |rows| assert_eq!(rows.exactly(12)[8..], [0.0; 4]));
    }
}
