//! Keeping the engine's worker threads on their cores while a file is
//! decoded.
//!
//! Decoding a file is serial work; marking or examining the image that
//! follows runs on every core. A core that sat idle through the decode is
//! slow to come back: on this project's 2-core virtual machine, marking a
//! 1080p frame took 16–18 ms after an idle decode and about 14 ms when the
//! second core had been kept busy (docs/BENCHMARKS.md). [`WarmWorkers`]
//! keeps the idle workers runnable while one file is decoded, yielding
//! their core to any other thread that wants it.
//!
//! It is meant for one file at a time (`tattle embed`, `detect`, `trace`):
//! where files are processed in parallel, every core is busy anyway.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Keeps all but one of the worker threads of rayon's global pool busy
/// (yielding) until dropped; the caller's thread is taken to be the one
/// doing the serial work. Starting it also starts the pool's threads.
///
/// ```
/// use tattle_studio::warm::WarmWorkers;
/// let warm = WarmWorkers::start();
/// let decoded: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect(); // the serial work
/// drop(warm);
/// // Or, for one piece of work:
/// let decoded_again = WarmWorkers::during(|| decoded.clone());
/// assert_eq!(decoded_again.len(), 1000);
/// ```
#[derive(Debug)]
#[must_use = "the workers stop as soon as the guard is dropped"]
pub struct WarmWorkers {
    stop: Arc<AtomicBool>,
}

/// The longest the workers are kept busy, should the guard outlive the
/// work it was made for.
const LONGEST: Duration = Duration::from_secs(5);

impl WarmWorkers {
    /// Starts keeping the workers busy.
    pub fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let busy = rayon::current_num_threads().saturating_sub(1);
        if busy == 0 {
            // Still bring the single worker up while the file is read.
            rayon::spawn(|| ());
        }
        for _ in 0..busy {
            let stop = Arc::clone(&stop);
            rayon::spawn(move || {
                while !stop.load(Ordering::Relaxed) && started.elapsed() < LONGEST {
                    std::thread::yield_now();
                }
            });
        }
        Self { stop }
    }

    /// Runs `work` (decoding a file, say) on the calling thread with the
    /// workers kept busy, and lets them go when it returns.
    pub fn during<T>(work: impl FnOnce() -> T) -> T {
        let _warm = Self::start();
        work()
    }
}

impl Drop for WarmWorkers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_worker_is_free_again_once_the_guard_is_dropped() {
        let warm = WarmWorkers::start();
        std::thread::sleep(Duration::from_millis(20));
        let dropped = Instant::now();
        drop(warm);
        // A broadcast needs every thread of the pool: it returns only once
        // the kept-busy workers have let go, which must be at once, not
        // when their time limit runs out.
        let threads = rayon::broadcast(|_| 1usize).len();
        assert_eq!(threads, rayon::current_num_threads());
        assert!(
            dropped.elapsed() < LONGEST / 2,
            "the workers held on after the drop"
        );
    }
}
