//! The record writer: a thread that owns the store's write connection and writes the records the
//! call path submits, so no call ever waits for the disk (unless the queue is full).
//!
//! - The queue is bounded ([`WriterConfig::capacity`]). When it is full, [`Writer::submit`] logs
//!   an error (at most once a second, with the number of waits in between) and blocks until the
//!   writer has taken records out: back-pressure, never a drop.
//! - The thread takes up to [`BATCH`] queued records, writes them in one transaction, and then
//!   sends one [`Durable`] per record, in the order written.
//! - A failed write (disk full, SQLITE_BUSY, I/O error) is retried with backoff (50 ms doubling
//!   to 5 s) and an error log each time, for as long as it takes; meanwhile the queue keeps
//!   absorbing records up to its capacity.
//! - A progress row still queued is replaced by a newer row of the same call (in its place in
//!   the queue); a queued finished row is never replaced by a progress row (that progress row is
//!   stale and is discarded). Rows of one call are written in the order submitted; rows of
//!   different calls in submission order, except that a replacing row takes its predecessor's
//!   place.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::record::CallRecord;
use super::store::{Store, StoreError};

/// Most records written in one transaction.
pub const BATCH: usize = 256;

/// First wait after a failed write.
const RETRY_FIRST: Duration = Duration::from_millis(50);

/// Longest wait between retries.
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Shortest interval between two "queue full" error logs.
const FULL_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Quiet time after the last write before the thread gives back its memory (see [`Store::release_memory`]).
const IDLE_RELEASE: Duration = Duration::from_secs(10);

/// What the writer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterConfig {
    /// The store file (`store::path_in(&config.paths.data)`).
    pub path: PathBuf,
    /// Records that may wait to be written before [`Writer::submit`] blocks (at least 1).
    pub capacity: usize,
    /// Export endpoint names: each finished record gets one outbox row per name.
    pub endpoints: Vec<String>,
}

/// Sent back once a record is on disk (committed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Durable {
    /// The row of call `id` is committed; `finished` when it was the final record (the call's
    /// resources may be released), `false` for a progress row.
    Record {
        /// The record's id.
        id: String,
        /// Whether the record had its `end`.
        finished: bool,
    },
}

/// [`Writer::submit`] failed: the writer thread has stopped; the record comes back.
#[derive(Debug, thiserror::Error)]
#[error("the call record writer has stopped; record {} was not written", .record.id)]
pub struct WriterGone {
    /// The record that was not queued.
    pub record: Box<CallRecord>,
}

/// The handle of the writer thread; dropping it or [`Writer::close`] writes everything queued
/// and joins the thread.
pub struct Writer {
    /// State shared with the thread.
    shared: Arc<Shared>,
    /// The thread, until joined.
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

/// State shared between submitters and the thread.
struct Shared {
    /// The store file, for logs.
    path: PathBuf,
    /// The queue and flags.
    state: Mutex<State>,
    /// Signalled when records were taken out of the queue (or the thread stopped).
    room: Condvar,
    /// Signalled when records were queued or closing was asked.
    work: Condvar,
}

/// The mutable part of [`Shared`].
struct State {
    /// Records waiting to be written.
    queue: Queue,
    /// `close()` was called: write what is queued, then stop.
    closing: bool,
    /// The thread is running.
    alive: bool,
    /// When the last "queue full" error was logged.
    full_logged: Option<Instant>,
    /// Submits that found the queue full since that log.
    full_unlogged: u64,
}

/// Lock the state; a panic elsewhere does not make the queue unusable.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Writer {
    /// Open the store at `config.path` (creating and migrating it) and start the writer thread;
    /// one [`Durable`] per written record is sent to `durable`.
    pub fn start(
        config: WriterConfig,
        durable: UnboundedSender<Durable>,
    ) -> Result<Writer, StoreError> {
        let store = Store::open(&config.path)?;
        let shared = Arc::new(Shared {
            path: config.path.clone(),
            state: Mutex::new(State {
                queue: Queue::new(config.capacity),
                closing: false,
                alive: true,
                full_logged: None,
                full_unlogged: 0,
            }),
            room: Condvar::new(),
            work: Condvar::new(),
        });
        let thread_shared = Arc::clone(&shared);
        let endpoints = config.endpoints;
        let thread = std::thread::Builder::new()
            .name("hotline-records".to_owned())
            .spawn(move || run(&thread_shared, store, &endpoints, &durable));
        match thread {
            Ok(thread) => Ok(Writer {
                shared,
                thread: Some(thread),
            }),
            Err(source) => Err(StoreError::Thread {
                path: config.path,
                source,
            }),
        }
    }

    /// Queues a record. When the queue is full: logs loudly (tracing::error!) and BLOCKS until there
    /// is room (back-pressure), never drops. Returns Err only if the writer thread is gone.
    pub fn submit(&self, record: CallRecord) -> Result<(), WriterGone> {
        let shared = &*self.shared;
        let mut state = lock(&shared.state);
        let mut record = record;
        let mut waited = false;
        loop {
            if !state.alive || state.closing {
                return Err(WriterGone {
                    record: Box::new(record),
                });
            }
            match state.queue.push(record) {
                Push::Queued | Push::Replaced => {
                    drop(state);
                    shared.work.notify_one();
                    return Ok(());
                }
                Push::Stale(stale) => {
                    tracing::warn!(
                        "call record {}: a progress row submitted after the call's final record \
                         was discarded",
                        stale.id
                    );
                    return Ok(());
                }
                Push::Full(back) => {
                    record = back;
                    if !waited {
                        waited = true;
                        log_full(&mut state, &shared.path);
                    }
                    state = shared
                        .room
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }

    /// Records queued and not yet taken by the writer thread.
    pub fn queued(&self) -> usize {
        lock(&self.shared.state).queue.len()
    }

    /// Write everything queued, stop the thread and wait for it.
    pub fn close(self) {
        drop(self);
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        lock(&self.shared.state).closing = true;
        self.shared.work.notify_all();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!(
                    "call record writer for {} panicked; records still queued were not written",
                    self.shared.path.display()
                );
            }
        }
    }
}

/// Log that a submit found the queue full, at most once per [`FULL_LOG_INTERVAL`].
fn log_full(state: &mut State, path: &std::path::Path) {
    state.full_unlogged += 1;
    let due = state
        .full_logged
        .is_none_or(|at| at.elapsed() >= FULL_LOG_INTERVAL);
    if due {
        tracing::error!(
            "call record queue is full ({} records waiting for {}): the store is not keeping \
             up and calls are held until their records can be queued ({} waits since the last \
             report)",
            state.queue.capacity,
            path.display(),
            state.full_unlogged
        );
        state.full_logged = Some(Instant::now());
        state.full_unlogged = 0;
    }
}

/// Marks the thread stopped when it ends (also by a panic), waking blocked submitters.
struct AliveGuard<'a>(&'a Shared);

impl Drop for AliveGuard<'_> {
    fn drop(&mut self) {
        lock(&self.0.state).alive = false;
        self.0.room.notify_all();
    }
}

/// The writer thread.
fn run(
    shared: &Shared,
    mut store: Store,
    endpoints: &[String],
    durable: &UnboundedSender<Durable>,
) {
    let _alive = AliveGuard(shared);
    // Whether records were written since the memory was last given back.
    let mut wrote = false;
    loop {
        let batch = {
            let mut state = lock(&shared.state);
            while state.queue.is_empty() && !state.closing {
                if !wrote {
                    state = shared
                        .work
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                    continue;
                }
                let (guard, waited) = shared
                    .work
                    .wait_timeout(state, IDLE_RELEASE)
                    .unwrap_or_else(PoisonError::into_inner);
                state = guard;
                if waited.timed_out() && state.queue.is_empty() {
                    // A busy hour is over: its queue space and page cache go back, the cache
                    // outside the lock, so no submitter waits for SQLite.
                    state.queue.shrink();
                    drop(state);
                    store.release_memory();
                    crate::memory::release_thread_cache();
                    wrote = false;
                    state = lock(&shared.state);
                }
            }
            if state.queue.is_empty() {
                return;
            }
            state.queue.take(BATCH)
        };
        wrote = true;
        shared.room.notify_all();
        write(&mut store, &batch, endpoints);
        for record in &batch {
            // The receiver may be gone at shutdown; the record is on disk either way.
            let _ = durable.send(Durable::Record {
                id: record.id.clone(),
                finished: record.is_finished(),
            });
        }
    }
}

/// Write `batch` in one transaction, retrying with backoff until it succeeds.
fn write(store: &mut Store, batch: &[CallRecord], endpoints: &[String]) {
    let mut delay = RETRY_FIRST;
    let mut attempt = 1u64;
    loop {
        match store.put_all(batch, endpoints) {
            Ok(()) => {
                if attempt > 1 {
                    tracing::info!(
                        "call records written to {} after {attempt} attempts",
                        store.path().display()
                    );
                }
                return;
            }
            Err(error) => {
                tracing::error!(
                    "cannot write {} call records (attempt {attempt}); retrying in {} ms: {error}",
                    batch.len(),
                    delay.as_millis()
                );
                std::thread::sleep(delay);
                delay = (delay * 2).min(RETRY_MAX);
                attempt += 1;
            }
        }
    }
}

/// Set the thread's `alive` flag (tests of a stopped writer).
#[cfg(test)]
pub(crate) fn set_alive_for_test(writer: &Writer, alive: bool) {
    lock(&writer.shared.state).alive = alive;
}

/// What [`Queue::push`] did.
#[derive(Debug)]
enum Push {
    /// Appended.
    Queued,
    /// Replaced a queued row of the same call.
    Replaced,
    /// A progress row for a call whose final row is queued: not queued.
    Stale(CallRecord),
    /// No room: the record comes back.
    Full(CallRecord),
}

/// The bounded queue with one entry per call at most.
#[derive(Debug)]
struct Queue {
    /// Records in submission order.
    entries: VecDeque<CallRecord>,
    /// Sequence number of `entries[0]`.
    head: u64,
    /// Call id -> sequence number of its queued entry.
    index: HashMap<String, u64>,
    /// Most entries.
    capacity: usize,
}

impl Queue {
    /// An empty queue for `capacity` records (at least 1).
    fn new(capacity: usize) -> Queue {
        Queue {
            entries: VecDeque::new(),
            head: 0,
            index: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Number of queued records.
    fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is queued.
    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Queue `record`, replacing a queued row of the same call unless that one is final and
    /// `record` is not.
    fn push(&mut self, record: CallRecord) -> Push {
        if let Some(&seq) = self.index.get(&record.id) {
            let position = usize::try_from(seq - self.head).unwrap_or(usize::MAX);
            if let Some(queued) = self.entries.get_mut(position) {
                if queued.is_finished() && !record.is_finished() {
                    return Push::Stale(record);
                }
                *queued = record;
                return Push::Replaced;
            }
        }
        if self.entries.len() >= self.capacity {
            return Push::Full(record);
        }
        let seq = self.head + self.entries.len() as u64;
        self.index.insert(record.id.clone(), seq);
        self.entries.push_back(record);
        Push::Queued
    }

    /// Gives back the space left over from a peak of queued records.
    fn shrink(&mut self) {
        self.entries.shrink_to_fit();
        crate::memory::shrink_sparse(&mut self.index);
    }

    /// Take up to `most` records from the front.
    fn take(&mut self, most: usize) -> Vec<CallRecord> {
        let count = most.min(self.entries.len());
        let batch: Vec<CallRecord> = self.entries.drain(..count).collect();
        for record in &batch {
            self.index.remove(&record.id);
        }
        self.head += count as u64;
        batch
    }
}

#[cfg(test)]
mod queue_tests {
    use super::*;
    use crate::tickets::record::{CallEnd, Party};

    fn record(id: &str, finished: bool, note: &str) -> CallRecord {
        let mut record = CallRecord::new(
            id.to_owned(),
            format!("sip-{id}"),
            Party::default(),
            "12345".to_owned(),
            chrono::Utc::now(),
        );
        record.tags.insert("note".to_owned(), note.to_owned());
        if finished {
            record.end = Some(CallEnd {
                by: "caller".to_owned(),
                cause: "bye".to_owned(),
                sip_status: None,
            });
        }
        record
    }

    fn notes(queue: &mut Queue) -> Vec<String> {
        queue
            .take(usize::MAX)
            .iter()
            .map(|r| format!("{}:{}", r.id, r.tags["note"]))
            .collect()
    }

    #[test]
    fn newer_row_replaces_queued_progress_row_in_place() {
        let mut queue = Queue::new(3);
        assert!(matches!(queue.push(record("a", false, "1")), Push::Queued));
        assert!(matches!(queue.push(record("b", false, "1")), Push::Queued));
        assert!(matches!(
            queue.push(record("a", false, "2")),
            Push::Replaced
        ));
        assert!(matches!(queue.push(record("a", true, "3")), Push::Replaced));
        assert_eq!(queue.len(), 2);
        assert_eq!(notes(&mut queue), ["a:3", "b:1"]);
    }

    #[test]
    fn finished_row_is_not_replaced_by_progress_row() {
        let mut queue = Queue::new(3);
        queue.push(record("a", true, "final"));
        assert!(matches!(
            queue.push(record("a", false, "late")),
            Push::Stale(_)
        ));
        assert_eq!(notes(&mut queue), ["a:final"]);
    }

    #[test]
    fn full_queue_gives_record_back_but_still_coalesces() {
        let mut queue = Queue::new(2);
        queue.push(record("a", false, "1"));
        queue.push(record("b", false, "1"));
        assert!(matches!(queue.push(record("c", false, "1")), Push::Full(r) if r.id == "c"));
        assert!(matches!(queue.push(record("b", true, "2")), Push::Replaced));
        // After taking the front, positions of later entries are still found.
        assert_eq!(queue.take(1).len(), 1);
        assert!(matches!(queue.push(record("b", true, "3")), Push::Replaced));
        assert!(matches!(queue.push(record("a", true, "2")), Push::Queued));
        assert_eq!(notes(&mut queue), ["b:3", "a:2"]);
        assert!(queue.is_empty());
    }
}
