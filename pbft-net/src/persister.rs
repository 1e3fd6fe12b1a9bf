//! The storage thread: makes a replica's persist records durable off its
//! runtime thread, so that while a write and fdatasync are in flight the
//! replica keeps receiving, verifying and computing; only its sends wait.
//! Storage that does not sync ([`Storage::syncs`] is false) is written
//! inline instead: its writes are quick, and handing each burst to another
//! thread and back cost more than they do (a millisecond of p50 at
//! 1,000 ops/s on two busy cores, BENCHMARKS.md).
//!
//! Each burst of records the driver submits gets a [`Ticket`], in order.
//! The thread takes every burst queued when it becomes free and makes them
//! durable together ([`Storage::persist`]: one write, one sync), which is
//! group commit across bursts; then it publishes the highest ticket now
//! durable. Records are written in the order they were submitted, so a
//! ticket being durable means every earlier one is too.

use crate::driver::Storage;
use crate::metrics::StorageMetrics;
use pbft_core::Persist;
use std::sync::mpsc;
use tokio::sync::watch;

/// The position of a burst of records in the order they were submitted;
/// `Ticket(0)` is "before any record", always durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ticket(u64);

/// How far the storage thread got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Every burst up to this ticket is durable.
    Durable(Ticket),
    /// A persist failed: what was submitted may not be durable, and nothing
    /// later will be (the thread has stopped).
    Failed,
}

/// The driver's handle on its storage: a thread of its own, or inline.
pub(crate) struct Persister<S> {
    submitted: Ticket,
    mode: Mode<S>,
}

/// Storage that times each of its writes when there are metrics to tell.
struct Timed<S> {
    storage: S,
    metrics: Option<StorageMetrics>,
}

impl<S: Storage> Timed<S> {
    fn persist(&mut self, records: &[Persist]) -> Result<(), String> {
        let started = std::time::Instant::now();
        let bytes = self.storage.persist(records)?;
        if let Some(metrics) = &self.metrics {
            metrics.observe(started.elapsed(), bytes);
        }
        Ok(())
    }
}

enum Mode<S> {
    Thread {
        to_thread: Option<mpsc::Sender<Vec<Persist>>>,
        progress: watch::Receiver<Progress>,
        thread: Option<std::thread::JoinHandle<()>>,
    },
    Inline {
        storage: Timed<S>,
        progress: Progress,
    },
}

impl<S: Storage> Persister<S> {
    /// Moves `storage` onto a thread of its own if it syncs; keeps it
    /// inline otherwise. Each write is timed into `metrics`, if given.
    pub(crate) fn start(storage: S, metrics: Option<StorageMetrics>) -> std::io::Result<Persister<S>> {
        let syncs = storage.syncs();
        let storage = Timed { storage, metrics };
        let mode = if syncs {
            let (to_thread, bursts) = mpsc::channel();
            let (publish, progress) = watch::channel(Progress::Durable(Ticket(0)));
            let thread = std::thread::Builder::new()
                .name("pbft-storage".into())
                .spawn(move || persist_bursts(storage, bursts, publish))?;
            Mode::Thread { to_thread: Some(to_thread), progress, thread: Some(thread) }
        } else {
            Mode::Inline { storage, progress: Progress::Durable(Ticket(0)) }
        };
        Ok(Persister { submitted: Ticket(0), mode })
    }

    /// Queues `records` (one burst; inline: writes them now) and returns
    /// their ticket. After a failure the records go nowhere;
    /// [`Persister::progress`] says so.
    pub(crate) fn submit(&mut self, records: Vec<Persist>) -> Ticket {
        self.submitted.0 += 1;
        match &mut self.mode {
            Mode::Thread { to_thread: Some(to_thread), .. } => {
                // A send fails only once the thread has stopped after a
                // failed or panicking persist, which `progress` reports.
                let _ = to_thread.send(records);
            }
            Mode::Thread { to_thread: None, .. } => {}
            Mode::Inline { storage, progress } => {
                if *progress != Progress::Failed {
                    *progress = match storage.persist(&records) {
                        Ok(()) => Progress::Durable(self.submitted),
                        Err(error) => {
                            cannot_persist(&error);
                            Progress::Failed
                        }
                    };
                }
            }
        }
        self.submitted
    }

    /// What is durable now.
    pub(crate) fn progress(&self) -> Progress {
        match &self.mode {
            Mode::Thread { progress, .. } => *progress.borrow(),
            Mode::Inline { progress, .. } => *progress,
        }
    }

    /// Completes when the progress changes (never inline, where it changes
    /// only in `submit`, nor once the thread stopped and reported it).
    pub(crate) async fn changed(&mut self) {
        if let Mode::Thread { progress, .. } = &mut self.mode {
            if progress.changed().await.is_ok() {
                return;
            }
        }
        std::future::pending::<()>().await;
    }

    /// Lets the thread finish what was submitted, then joins it.
    pub(crate) async fn finish(mut self) {
        if let Mode::Thread { to_thread, thread, .. } = &mut self.mode {
            *to_thread = None;
            if let Some(thread) = thread.take() {
                let joined = tokio::task::spawn_blocking(move || thread.join()).await;
                if !matches!(joined, Ok(Ok(()))) {
                    tracing::error!("the storage thread panicked");
                }
            }
        }
    }
}

fn cannot_persist(error: &str) {
    tracing::error!(
        %error,
        "CANNOT PERSIST: this replica stops sending and signing until it is restarted \
         (it never acknowledges what it could not make durable)"
    );
}

/// The storage thread's loop: persist everything queued at once, publish
/// the ticket reached; stop at the first failure.
fn persist_bursts<S: Storage>(
    mut storage: Timed<S>,
    bursts: mpsc::Receiver<Vec<Persist>>,
    publish: watch::Sender<Progress>,
) {
    /// Publishes a failure if the thread unwinds (a panicking storage):
    /// the driver must stop sending, not wait forever.
    struct FailOnUnwind<'a>(&'a watch::Sender<Progress>);
    impl Drop for FailOnUnwind<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0.send_replace(Progress::Failed);
            }
        }
    }
    let _guard = FailOnUnwind(&publish);
    let mut durable = Ticket(0);
    while let Ok(mut records) = bursts.recv() {
        let mut taken = 1;
        while let Ok(more) = bursts.try_recv() {
            records.extend(more);
            taken += 1;
        }
        if let Err(error) = storage.persist(&records) {
            cannot_persist(&error);
            publish.send_replace(Progress::Failed);
            return;
        }
        durable.0 += taken;
        publish.send_replace(Progress::Durable(durable));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbft_core::View;
    use std::sync::{Arc, Mutex};

    /// Storage that records each call's records, and fails on request.
    #[derive(Clone, Default)]
    struct Recording {
        calls: Arc<Mutex<Vec<Vec<Persist>>>>,
        fail_from: Option<View>,
        inline: bool,
    }

    impl Storage for Recording {
        fn syncs(&self) -> bool {
            !self.inline
        }

        fn persist(&mut self, records: &[Persist]) -> Result<u64, String> {
            let fails = records
                .iter()
                .any(|r| matches!((r, self.fail_from), (Persist::View(v), Some(from)) if *v >= from));
            if fails {
                return Err("disk full".into());
            }
            self.calls.lock().map_err(|e| e.to_string())?.push(records.to_vec());
            Ok(records.len() as u64)
        }
    }

    async fn until(persister: &mut Persister<Recording>, wanted: Progress) {
        while persister.progress() != wanted {
            persister.changed().await;
        }
    }

    /// Every submitted record reaches the storage once, in submission
    /// order, and the last ticket is reported durable.
    #[tokio::test]
    async fn bursts_are_persisted_in_order_and_reported_durable() {
        for inline in [false, true] {
            bursts_are_persisted_in_order(Recording { inline, ..Recording::default() }).await;
        }
    }

    async fn bursts_are_persisted_in_order(storage: Recording) {
        let mut persister = Persister::start(storage.clone(), None).unwrap();
        let tickets: Vec<Ticket> = (0..50).map(|v| persister.submit(vec![Persist::View(v)])).collect();
        assert_eq!(tickets, (1..=50).map(Ticket).collect::<Vec<_>>());
        until(&mut persister, Progress::Durable(Ticket(50))).await;
        persister.finish().await;
        let written: Vec<Persist> = storage.calls.lock().unwrap().concat();
        assert_eq!(written, (0..50).map(Persist::View).collect::<Vec<_>>());
    }

    /// A failed persist is reported, and nothing submitted after it is
    /// ever reported durable.
    #[tokio::test]
    async fn a_failure_is_final() {
        for inline in [false, true] {
            a_failure_is_final_with(Recording { fail_from: Some(3), inline, ..Recording::default() }).await;
        }
    }

    async fn a_failure_is_final_with(storage: Recording) {
        let mut persister = Persister::start(storage.clone(), None).unwrap();
        for view in 0..6 {
            persister.submit(vec![Persist::View(view)]);
        }
        until(&mut persister, Progress::Failed).await;
        persister.submit(vec![Persist::View(0)]);
        persister.finish().await;
        let written: Vec<Persist> = storage.calls.lock().unwrap().concat();
        assert!(!written.iter().any(|r| matches!(r, Persist::View(v) if *v >= 3)), "{written:?}");
    }
}
