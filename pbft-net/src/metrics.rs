//! A replica's Prometheus metrics: what it counts as it runs (from the
//! core's events and the driver's traffic) and what it reports of its state
//! when scraped. The registry and the exposition format are the Prometheus
//! project's own Rust client (`prometheus-client`, OpenMetrics text); the
//! HTTP endpoint is in `metrics_server`.
//!
//! Names follow Prometheus conventions: a `pbft_` prefix, `_total` on
//! counters, base units (`_seconds`, `_bytes`). Labels take few values: a
//! rejection's reason and message kind (enums of the core), who sent it (a
//! replica id, or `client` for any client), a peer (`replica N` or
//! `clients`). No client id, key or request ever becomes a label.
//! `docs/operating.md` lists every metric and what to watch.

use crate::wire::NodeStatus;
use pbft_core::{Author, Event, SeqNum, View};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a message was dropped, as labels of `pbft_rejected_messages_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectLabels {
    /// The core's [`pbft_core::Reject`] variant.
    reason: String,
    /// The kind of message.
    kind: String,
    /// Its claimed author: a replica id, or `client`.
    from: String,
}

/// Latency buckets: 100 µs doubling up to about 6.5 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_1, 2.0, 17)
}

/// What the driver counts as the replica runs.
#[derive(Clone)]
pub(crate) struct EventMetrics {
    requests_executed: Counter,
    batches_committed: Counter,
    batch_size: Histogram,
    commit_latency: Histogram,
    execute_latency: Histogram,
    view_terms_ended: Counter,
    view_changes_started: Counter,
    view_changes_completed: Counter,
    rejected: Family<RejectLabels, Counter>,
    checkpoints_stable: Counter,
    checkpoint_disagreements: Counter,
    state_transfers_started: Counter,
    state_transfers_completed: Counter,
    state_transfer_bytes: Counter,
    client_requests: Counter,
    replies: Counter,
    reply_cache_hits: Counter,
    /// Replicas in the cluster: a claimed author id at or above it is
    /// labelled `unknown` (a forged id must not make a new series).
    n: u32,
}

/// What the storage thread counts: how long each write and sync took and
/// how much it wrote.
#[derive(Clone)]
pub(crate) struct StorageMetrics {
    sync_seconds: Histogram,
    bytes_written: Counter,
}

impl StorageMetrics {
    /// One write (and sync) of `bytes` that took `took`.
    pub(crate) fn observe(&self, took: Duration, bytes: u64) {
        self.sync_seconds.observe(took.as_secs_f64());
        self.bytes_written.inc_by(bytes);
    }
}

/// A replica's registry and the handles the driver updates.
pub struct ReplicaMetrics {
    pub(crate) registry: Registry,
    pub(crate) events: EventMetrics,
    pub(crate) storage: StorageMetrics,
    /// The replica's status at the latest scrape, which [`StatusCollector`]
    /// encodes.
    pub(crate) latest: Arc<Mutex<Option<NodeStatus>>>,
    /// Held from setting `latest` to the end of encoding, so that two
    /// scrapes at once each encode their own status.
    encoding: Mutex<()>,
}

impl ReplicaMetrics {
    /// Every metric registered, all at zero, for a replica of a cluster of `n`.
    pub fn new(n: usize) -> ReplicaMetrics {
        let mut root = Registry::default();
        root.register_collector(Box::new(ProcessCollector));
        let latest = Arc::new(Mutex::new(None));
        let registry = root.sub_registry_with_prefix("pbft");
        registry.register_collector(Box::new(StatusCollector { latest: latest.clone() }));
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        let seconds = |registry: &mut Registry, name: &str, help: &str| {
            let histogram = Histogram::new(latency_buckets());
            registry.register_with_unit(name, help, Unit::Seconds, histogram.clone());
            histogram
        };
        let batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        registry.register(
            "batch_size",
            "Requests per batch in each PRE-PREPARE this replica sent or accepted",
            batch_size.clone(),
        );
        let rejected = Family::<RejectLabels, Counter>::default();
        registry.register(
            "rejected_messages",
            "Messages dropped, by reason, kind and claimed author (a replica id, or client)",
            rejected.clone(),
        );
        let state_transfer_bytes = Counter::default();
        registry.register_with_unit(
            "state_transfer_fetched",
            "State bytes received in state-transfer chunks",
            Unit::Bytes,
            state_transfer_bytes.clone(),
        );
        let events = EventMetrics {
            requests_executed: counter(registry, "requests_executed", "Client requests executed"),
            batches_committed: counter(
                registry,
                "batches_committed",
                "Batches that became committed-local here",
            ),
            batch_size,
            commit_latency: seconds(
                registry,
                "commit_latency",
                "Time from this replica sending or accepting a batch's PRE-PREPARE to its committed-local",
            ),
            execute_latency: seconds(
                registry,
                "execute_latency",
                "Time from this replica sending or accepting a batch's PRE-PREPARE to its execution",
            ),
            view_terms_ended: counter(
                registry,
                "view_terms_ended",
                "Views that lasted their term (view_term_ms) and rotated the primary: routine view changes",
            ),
            view_changes_started: counter(
                registry,
                "view_changes_started",
                "View changes this replica asked for (term rotations included; see view_terms_ended)",
            ),
            view_changes_completed: counter(
                registry,
                "view_changes_completed",
                "New views this replica entered through a valid NEW-VIEW",
            ),
            rejected,
            checkpoints_stable: counter(registry, "checkpoints_stable", "Checkpoints that became stable"),
            checkpoint_disagreements: counter(
                registry,
                "checkpoint_disagreements",
                "Checkpoint votes whose state digest differs from another's at the same sequence number",
            ),
            state_transfers_started: counter(
                registry,
                "state_transfers_started",
                "Times this replica fell behind a proven checkpoint and began fetching its state",
            ),
            state_transfers_completed: counter(
                registry,
                "state_transfers_completed",
                "Checkpoint states fetched from a peer and installed",
            ),
            state_transfer_bytes,
            client_requests: counter(
                registry,
                "client_requests_received",
                "Requests read from clients' own connections",
            ),
            replies: counter(registry, "replies_sent", "Replies queued to clients' connections"),
            reply_cache_hits: counter(
                registry,
                "reply_cache_hits",
                "Repeats of executed requests answered from the reply cache",
            ),
            n: u32::try_from(n).unwrap_or(u32::MAX),
        };
        let sync_seconds = Histogram::new(latency_buckets());
        registry.register_with_unit(
            "storage_sync",
            "Time of one write of the replica's log and its fdatasync (group commit: one per burst; \
             the write alone with sync = false)",
            Unit::Seconds,
            sync_seconds.clone(),
        );
        let bytes_written = Counter::default();
        registry.register_with_unit(
            "storage_written",
            "Bytes written to the replica's log",
            Unit::Bytes,
            bytes_written.clone(),
        );
        let storage = StorageMetrics { sync_seconds, bytes_written };
        ReplicaMetrics { registry: root, events, storage, latest, encoding: Mutex::new(()) }
    }

    /// The registry in OpenMetrics text, with `status` as the replica's
    /// state.
    pub fn encode(&self, status: Option<NodeStatus>) -> String {
        let _one_at_a_time = self.encoding.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *self.latest.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = status;
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::warn!(%error, "cannot encode the metrics");
        }
        text
    }
}

/// When each batch in flight was pre-prepared here, to time its commit and
/// execution. Holds only batches not yet executed: the watermark window
/// bounds it.
#[derive(Default)]
pub(crate) struct BatchClock {
    started: BTreeMap<SeqNum, (View, Instant)>,
    /// The highest sequence number executed: a NEW-VIEW re-proposes batches
    /// up to it, and their second committed-local is not counted.
    executed: SeqNum,
}

impl EventMetrics {
    /// Counts and times what `event` reports, at the time `now` tells
    /// (asked only for the events that are timed).
    pub(crate) fn on_event(&self, clock: &mut BatchClock, event: &Event, now: impl Fn() -> Instant) {
        match event {
            Event::PrePrepared { view, seq, requests } => {
                self.batch_size.observe(requests.len() as f64);
                clock.started.insert(*seq, (*view, now()));
            }
            Event::CommittedLocal { view, seq } if *seq > clock.executed => {
                self.batches_committed.inc();
                if let Some((_, started)) = clock.started.get(seq).filter(|(v, _)| v == view) {
                    self.commit_latency.observe(now().duration_since(*started).as_secs_f64());
                }
            }
            Event::Executed { view, seq, requests, .. } => {
                self.requests_executed.inc_by(requests.len() as u64);
                if let Some((_, started)) = clock.started.get(seq).filter(|(v, _)| v == view) {
                    self.execute_latency.observe(now().duration_since(*started).as_secs_f64());
                }
                clock.started = clock.started.split_off(&(seq + 1));
                clock.executed = clock.executed.max(*seq);
            }
            Event::TermEnded { .. } => {
                self.view_terms_ended.inc();
            }
            Event::ViewChangeStarted { .. } => {
                self.view_changes_started.inc();
            }
            Event::NewViewEntered { .. } => {
                self.view_changes_completed.inc();
            }
            Event::Rejected { from, kind, reason } => {
                let from = match from {
                    Author::Replica(replica) if replica.0 < self.n => replica.0.to_string(),
                    Author::Replica(_) => "unknown".to_string(),
                    Author::Client(_) => "client".to_string(),
                };
                let labels = RejectLabels { reason: format!("{reason:?}"), kind: format!("{kind:?}"), from };
                self.rejected.get_or_create(&labels).inc();
            }
            Event::CheckpointStable { .. } => {
                self.checkpoints_stable.inc();
            }
            Event::CheckpointDisagreement(_) => {
                self.checkpoint_disagreements.inc();
            }
            Event::FellBehind { .. } => {
                self.state_transfers_started.inc();
            }
            Event::StateTransferred { .. } => {
                self.state_transfers_completed.inc();
            }
            Event::RepliedFromCache { .. } => {
                self.reply_cache_hits.inc();
            }
            _ => {}
        }
    }

    /// A client's request arrived on its own connection.
    pub(crate) fn client_request(&self) {
        self.client_requests.inc();
    }

    /// A reply was queued to its client.
    pub(crate) fn reply(&self) {
        self.replies.inc();
    }

    /// A state-transfer chunk of `bytes` arrived.
    pub(crate) fn state_chunk(&self, bytes: usize) {
        self.state_transfer_bytes.inc_by(bytes as u64);
    }
}

/// Encodes one gauge or counter of no labels.
fn single(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: Value,
) -> Result<(), std::fmt::Error> {
    match value {
        Value::Gauge(v) => {
            let gauge = ConstGauge::new(v);
            gauge.encode(encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?)
        }
        Value::Counter(v) => {
            let counter = ConstCounter::new(v);
            counter.encode(encoder.encode_descriptor(name, help, unit, MetricType::Counter)?)
        }
        Value::CounterF(v) => {
            let counter = ConstCounter::new(v);
            counter.encode(encoder.encode_descriptor(name, help, unit, MetricType::Counter)?)
        }
    }
}

enum Value {
    Gauge(i64),
    Counter(u64),
    CounterF(f64),
}

fn flag(on: bool) -> Value {
    Value::Gauge(i64::from(on))
}

fn gauge(value: u64) -> Value {
    Value::Gauge(i64::try_from(value).unwrap_or(i64::MAX))
}

/// Encodes one metric per peer, labelled `peer`.
fn per_peer(
    encoder: &mut DescriptorEncoder,
    status: &NodeStatus,
    (name, help, unit, metric_type): (&str, &str, Option<&Unit>, MetricType),
    value: impl Fn(&crate::wire::PeerCounters) -> u64,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, unit, metric_type)?;
    for peer in &status.peers {
        let labels = [("peer", peer.peer.as_str())];
        let metric = family.encode_family(&labels)?;
        match metric_type {
            MetricType::Counter => ConstCounter::new(value(peer)).encode(metric)?,
            _ => ConstGauge::new(i64::try_from(value(peer)).unwrap_or(i64::MAX)).encode(metric)?,
        }
    }
    Ok(())
}

/// The replica's state as of the latest scrape: its view and progress,
/// buffers, and each peer's traffic.
#[derive(Debug)]
struct StatusCollector {
    latest: Arc<Mutex<Option<NodeStatus>>>,
}

impl Collector for StatusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let latest = self.latest.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let e = &mut encoder;
        let answered =
            "1 if the replica reported its state for this scrape (the metrics below are missing when 0)";
        single(e, "status_up", answered, None, flag(latest.is_some()))?;
        let Some(status) = latest.as_ref() else { return Ok(()) };
        single(
            e,
            "view",
            "The replica's view (the target view while changing views)",
            None,
            gauge(status.view),
        )?;
        single(e, "primary", "1 if this replica is the primary of its view", None, flag(status.primary))?;
        single(e, "view_changing", "1 while this replica is changing views", None, flag(!status.normal))?;
        single(
            e,
            "recovering",
            "1 while recovering from a lost or damaged disk",
            None,
            flag(status.recovering),
        )?;
        single(
            e,
            "last_executed_seq",
            "Highest sequence number executed",
            None,
            gauge(status.last_executed),
        )?;
        single(
            e,
            "stable_checkpoint_seq",
            "Sequence number of the stable checkpoint",
            None,
            gauge(status.stable_checkpoint),
        )?;
        single(e, "pending_requests", "Requests waiting to execute", None, gauge(status.pending_requests))?;
        single(
            e,
            "held_reads",
            "Unordered reads waiting for execution to catch up",
            None,
            gauge(status.held_reads),
        )?;
        single(e, "log_slots", "Sequence numbers in the message log", None, gauge(status.log_slots))?;
        single(e, "open_connections", "QUIC connections open now", None, gauge(status.open_connections))?;
        let failed = Value::Counter(status.net.failed_handshakes);
        single(e, "failed_handshakes", "Incoming connections whose TLS handshake failed", None, failed)?;
        let mut links = e.encode_descriptor(
            "peer_link_up",
            "1 if the outgoing link to the peer replica is up",
            None,
            MetricType::Gauge,
        )?;
        for peer in status.peers.iter().filter(|p| p.peer != "clients") {
            ConstGauge::new(i64::from(peer.link_up))
                .encode(links.encode_family(&[("peer", peer.peer.as_str())])?)?;
        }
        let queue = (
            "peer_send_queue_frames",
            "Frames waiting in the send queue to the peer",
            None,
            MetricType::Gauge,
        );
        per_peer(e, status, queue, |p| p.send_queue_frames)?;
        let received =
            ("peer_received", "Bytes received from the peer", Some(&Unit::Bytes), MetricType::Counter);
        per_peer(e, status, received, |p| p.bytes_in)?;
        let sent = ("peer_sent", "Bytes written to the peer", Some(&Unit::Bytes), MetricType::Counter);
        per_peer(e, status, sent, |p| p.bytes_out)?;
        let frames =
            ("peer_frames_received", "Frames received from the peer and decoded", None, MetricType::Counter);
        per_peer(e, status, frames, |p| p.frames_in)?;
        let mut dropped = e.encode_descriptor(
            "peer_frames_dropped",
            "Frames dropped, by peer and reason: queue_full, too_large or refused (to it), malformed, forbidden or oversized (from it)",
            None,
            MetricType::Counter,
        )?;
        for peer in &status.peers {
            for (reason, count) in [
                ("queue_full", peer.send_queue_drops),
                ("too_large", peer.oversized_frames_out),
                ("refused", peer.refused_frames),
                ("malformed", peer.malformed_frames),
                ("forbidden", peer.forbidden_frames),
                ("oversized", peer.oversized_frames),
            ] {
                let labels = [("peer", peer.peer.as_str()), ("reason", reason)];
                ConstCounter::new(count).encode(dropped.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// This process's CPU time, resident memory and open files, under the
/// names every Prometheus client library uses (`process_…`).
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let pid = std::process::id();
        let e = &mut encoder;
        if let Some(ticks) = crate::procfs::cpu_ticks(pid) {
            let seconds = Value::CounterF(ticks as f64 / crate::procfs::CLOCK_TICKS_PER_SECOND);
            single(e, "process_cpu", "User and system CPU time", Some(&Unit::Seconds), seconds)?;
        }
        if let Some(bytes) = crate::procfs::resident_bytes(pid) {
            single(e, "process_resident_memory", "Resident memory", Some(&Unit::Bytes), gauge(bytes))?;
        }
        if let Some(fds) = crate::procfs::open_fds(pid) {
            single(e, "process_open_fds", "Open file descriptors", None, gauge(fds))?;
        }
        Ok(())
    }
}
