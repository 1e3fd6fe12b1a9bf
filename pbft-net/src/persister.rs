//! The storage thread: makes a replica's persist records durable off its
//! runtime thread, so that while a write and fdatasync are in flight the
//! replica keeps receiving, verifying and computing; only its sends wait.
//!
//! Each burst of records the driver submits gets a [`Ticket`], in order.
//! The thread takes every burst queued when it becomes free and makes them
//! durable together ([`Storage::persist`]: one write, one sync), which is
//! group commit across bursts; then it publishes the highest ticket now
//! durable. Records are written in the order they were submitted, so a
//! ticket being durable means every earlier one is too.

use crate::driver::Storage;
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

/// The driver's handle on its storage thread.
pub(crate) struct Persister {
    to_thread: Option<mpsc::Sender<Vec<Persist>>>,
    progress: watch::Receiver<Progress>,
    submitted: Ticket,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Persister {
    /// Moves `storage` onto a thread of its own.
    pub(crate) fn start(storage: impl Storage) -> std::io::Result<Persister> {
        let (to_thread, bursts) = mpsc::channel();
        let (publish, progress) = watch::channel(Progress::Durable(Ticket(0)));
        let thread = std::thread::Builder::new()
            .name("pbft-storage".into())
            .spawn(move || persist_bursts(storage, bursts, publish))?;
        Ok(Persister { to_thread: Some(to_thread), progress, submitted: Ticket(0), thread: Some(thread) })
    }

    /// Queues `records` (one burst) and returns their ticket. After a
    /// failure the records go nowhere; [`Persister::progress`] says so.
    pub(crate) fn submit(&mut self, records: Vec<Persist>) -> Ticket {
        self.submitted.0 += 1;
        if let Some(to_thread) = &self.to_thread {
            // A send fails only once the thread has stopped after a failed
            // persist, which `progress` already reports.
            let _ = to_thread.send(records);
        }
        self.submitted
    }

    /// What is durable now.
    pub(crate) fn progress(&self) -> Progress {
        *self.progress.borrow()
    }

    /// Completes when the progress changes (never, once the thread stopped
    /// and reported it).
    pub(crate) async fn changed(&mut self) {
        if self.progress.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Lets the thread finish what was submitted, then joins it.
    pub(crate) async fn finish(mut self) {
        self.to_thread = None;
        if let Some(thread) = self.thread.take() {
            let joined = tokio::task::spawn_blocking(move || thread.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                tracing::error!("the storage thread panicked");
            }
        }
    }
}

/// The storage thread's loop: persist everything queued at once, publish
/// the ticket reached; stop at the first failure.
fn persist_bursts(
    mut storage: impl Storage,
    bursts: mpsc::Receiver<Vec<Persist>>,
    publish: watch::Sender<Progress>,
) {
    let mut durable = Ticket(0);
    while let Ok(mut records) = bursts.recv() {
        let mut taken = 1;
        while let Ok(more) = bursts.try_recv() {
            records.extend(more);
            taken += 1;
        }
        if let Err(error) = storage.persist(&records) {
            tracing::error!(
                %error,
                "CANNOT PERSIST: this replica stops sending and signing until it is restarted \
                 (it never acknowledges what it could not make durable)"
            );
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
    }

    impl Storage for Recording {
        fn persist(&mut self, records: &[Persist]) -> Result<(), String> {
            let fails = records
                .iter()
                .any(|r| matches!((r, self.fail_from), (Persist::View(v), Some(from)) if *v >= from));
            if fails {
                return Err("disk full".into());
            }
            self.calls.lock().map_err(|e| e.to_string())?.push(records.to_vec());
            Ok(())
        }
    }

    async fn until(persister: &mut Persister, wanted: Progress) {
        while persister.progress() != wanted {
            persister.changed().await;
        }
    }

    /// Every submitted record reaches the storage once, in submission
    /// order, and the last ticket is reported durable.
    #[tokio::test]
    async fn bursts_are_persisted_in_order_and_reported_durable() {
        let storage = Recording::default();
        let mut persister = Persister::start(storage.clone()).unwrap();
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
        let storage = Recording { fail_from: Some(3), ..Recording::default() };
        let mut persister = Persister::start(storage.clone()).unwrap();
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
