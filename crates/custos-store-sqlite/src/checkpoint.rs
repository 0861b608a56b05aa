//! Background checkpoints of the WAL, and wiping an erasure's old pages out of it.
//!
//! Commits never checkpoint inline: a thread copies the WAL into the database
//! file every [`CHECKPOINT_EVERY`] with a passive checkpoint, which never
//! blocks readers or the writer.
//!
//! A passive checkpoint leaves the WAL file as long as it was, and its frames
//! hold every page image written since it was last reset: after an erasure,
//! the subject's wrapped key and sealed items would stay readable in
//! `custos.db-wal` until new frames happened to overwrite them. So each
//! erasure, once committed, asks this thread for a *truncating* checkpoint:
//! every frame is copied into the database file (where `secure_delete` has
//! zeroed the erased bytes) and the WAL is cut to zero bytes. Erasures that
//! commit close together share one checkpoint. It runs on the write
//! connection, under the store's write lock, so no writer of this process
//! competes with it; it waits at most [`TRUNCATE_WAIT`] for readers (of any
//! process) still reading older pages from the WAL, and when they do not let
//! go in time it is retried, after a pause that doubles from 250 ms up to
//! [`MAX_RETRY_PAUSE`], until it completes. With no such
//! reader, the erased bytes are out of both files within
//! [`ERASED_BYTES_GONE_WITHIN`](crate::ERASED_BYTES_GONE_WITHIN). A store
//! closed with a wipe pending (a CLI command run beside a server) does it
//! before it closes, waiting up to the usual busy timeout.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::error::{Describe, OpenError};
use crate::{BUSY_TIMEOUT, Writer, open_error};

/// How often the WAL is checkpointed in the background.
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// How long a truncating checkpoint waits for readers of older WAL frames
/// before giving up until its next try. The writers of this process wait as
/// long, so it is kept short.
const TRUNCATE_WAIT: Duration = Duration::from_millis(25);

/// The longest pause between tries of a truncating checkpoint that readers
/// keep failing (the pause doubles from [`CHECKPOINT_EVERY`] up to this), so
/// that a long reader in another process does not keep stalling this one's
/// writers.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(4);

enum Signal {
    /// An erasure committed: the WAL must be truncated.
    Erased,
}

/// The background checkpoint thread; stops (after any pending wipe) when dropped.
pub(crate) struct Checkpointer {
    signal: Option<Sender<Signal>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub(crate) fn start(path: &Path, writer: Arc<Mutex<Writer>>) -> Result<Checkpointer, OpenError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error("opening the checkpointer", &e))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| open_error("configuring the checkpointer", &e))?;
        let (signal, signals) = mpsc::channel::<Signal>();
        let thread = std::thread::Builder::new()
            .name("custos-checkpoint".into())
            .spawn(move || run(&conn, &writer, &signals))
            .map_err(|e| OpenError::Sqlite(format!("starting the checkpointer: {e}")))?;
        Ok(Checkpointer { signal: Some(signal), thread: Some(thread) })
    }

    /// Asks for the WAL to be truncated: an erasure has committed.
    pub(crate) fn erased(&self) {
        if let Some(signal) = &self.signal {
            // Fails only once the thread has stopped, i.e. never before drop.
            let _ = signal.send(Signal::Erased);
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.signal.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(conn: &Connection, writer: &Mutex<Writer>, signals: &mpsc::Receiver<Signal>) {
    let mut wipe_pending = false;
    let mut pause = CHECKPOINT_EVERY;
    let mut next_try = Instant::now();
    loop {
        match signals.recv_timeout(CHECKPOINT_EVERY) {
            Ok(Signal::Erased) => wipe_pending = true,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        // Erasures that committed meanwhile share this checkpoint.
        while let Ok(Signal::Erased) = signals.try_recv() {
            wipe_pending = true;
        }
        if wipe_pending && Instant::now() >= next_try {
            wipe_pending = !truncate(writer, TRUNCATE_WAIT);
            pause = if wipe_pending { (pause * 2).min(MAX_RETRY_PAUSE) } else { CHECKPOINT_EVERY };
            next_try = Instant::now() + pause;
        } else if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            report_failure("background WAL checkpoint", &e);
        }
    }
    // The store is closing: a wipe still owed is done now, waiting as long as a write would.
    if wipe_pending && !truncate(writer, BUSY_TIMEOUT) {
        eprintln!(
            "custos: the WAL could not be truncated after an erasure before closing (readers held it); \
             the next erasure or the last connection to close will"
        );
    }
}

/// Checkpoints every frame of the WAL into the database file and truncates
/// the WAL to zero bytes, on the write connection. Whether it completed.
pub(crate) fn truncate(writer: &Mutex<Writer>, wait: Duration) -> bool {
    let writer = writer.lock().unwrap_or_else(PoisonError::into_inner);
    let conn = &writer.conn;
    let result = conn.busy_timeout(wait).and_then(|()| {
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
    });
    if let Err(e) = conn.busy_timeout(BUSY_TIMEOUT) {
        report_failure("restoring the busy timeout", &e);
    }
    match result {
        // busy = 0: it ran to the end; log = 0: the WAL is empty.
        Ok((0, 0)) => true,
        Ok(_) => false,
        Err(e) => {
            report_failure("truncating WAL checkpoint after an erasure", &e);
            false
        }
    }
}

/// A failed checkpoint is retried at the next tick; the WAL only grows
/// meanwhile. It is reported on stderr (no values: SQLite's message).
fn report_failure(what: &str, e: &rusqlite::Error) {
    eprintln!("custos: {what} failed (will retry): {}", Describe(e));
}
