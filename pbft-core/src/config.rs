//! Protocol parameters, with defaults and validation that names the wrong field.

use crate::codec;
use serde::{Deserialize, Serialize};

/// Parameters of the protocol that every replica of a cluster must share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProtocolConfig {
    /// Most requests the primary puts in one PRE-PREPARE.
    pub max_batch_size: usize,
    /// Largest operation a client may send, in bytes. A client refuses a
    /// larger one before sending it ([`crate::ClientError::TooLarge`]) and a
    /// replica drops one it receives (`Reject::RequestTooLarge`), so no
    /// request can grow a PRE-PREPARE past what every link carries.
    pub max_request_bytes: usize,
    /// Largest application result a replica keeps and sends, in bytes. A
    /// larger result is withheld: the request executed, and replicas cache
    /// and reply with its size instead of its bytes, so that no
    /// application bounds the reply cache, the checkpoint states that copy
    /// it, or the queues towards a client, but this (issue 21, point 4).
    pub max_result_bytes: usize,
    /// Most operation bytes the primary puts in one PRE-PREPARE; a batch
    /// always holds at least one request. With `max_batch_size` it bounds
    /// the frame a PRE-PREPARE or a proof of commitment takes.
    pub max_batch_bytes: usize,
    /// How long the primary waits for a batch to fill before proposing a
    /// partial one. Zero proposes every request at once.
    pub batch_delay_ms: u64,
    /// K: a checkpoint is taken every K sequence numbers.
    pub checkpoint_interval: u64,
    /// L: the high watermark is the stable checkpoint plus L. A multiple of K.
    pub watermark_window: u64,
    /// How long a backup waits for a request it knows of to execute before it
    /// asks for a view change; doubles for each consecutive failed view.
    pub view_change_timeout_ms: u64,
    /// The view-change timeout stops doubling after this many consecutive failed views.
    pub max_view_change_backoff: u32,
    /// How long a view lasts before the replicas move to the next one of
    /// their own accord, 0 for never. Rotating the primary bounds what a
    /// primary that is slow on purpose (just fast enough never to trip the
    /// view-change timeout) can take: one view in n, whatever its tactic.
    /// When set, at least twice `view_change_timeout_ms`.
    pub view_term_ms: u64,
    /// How often a replica reports its status to its peers, so they can
    /// resend what it missed.
    pub status_interval_ms: u64,
    /// Bytes of checkpointed state sent in one chunk during state transfer.
    pub state_chunk_bytes: usize,
    /// Largest checkpointed state a replica accepts in a transfer; bounds the
    /// memory a peer can make it hold. A fetching replica reserves the size
    /// its peer announces (at most this) once, and keeps the received bytes
    /// as the checkpoint copy it serves to others.
    pub max_state_bytes: u64,
    /// Most requests held per client while they wait to execute.
    pub max_pending_per_client: usize,
    /// Most messages for a view not yet entered buffered per replica.
    pub max_future_messages_per_replica: usize,
}

impl Default for ProtocolConfig {
    fn default() -> Self {
        ProtocolConfig {
            max_batch_size: 64,
            max_request_bytes: 1024 * 1024,
            max_result_bytes: 1024 * 1024,
            max_batch_bytes: 4 * 1024 * 1024,
            batch_delay_ms: 2,
            checkpoint_interval: 64,
            watermark_window: 256,
            view_change_timeout_ms: 2_000,
            max_view_change_backoff: 6,
            view_term_ms: 10_000,
            status_interval_ms: 500,
            state_chunk_bytes: 1024 * 1024,
            max_state_bytes: 1024 * 1024 * 1024,
            max_pending_per_client: 16,
            max_future_messages_per_replica: 256,
        }
    }
}

/// Bytes a signed request adds to its operation inside a batch, at most:
/// client id, timestamp, kind, the length prefixes and the 64-byte signature
/// (bincode's varints make the real figure smaller).
pub(crate) const REQUEST_OVERHEAD_BYTES: usize = 128;

/// Bytes of one signed vote (PREPARE, COMMIT, CHECKPOINT) or one signed
/// PRE-PREPARE header, at most: view, sequence number, digest, signer and
/// the 64-byte signature, rounded up.
pub(crate) const SIGNED_VOTE_BYTES: usize = 160;

/// A protocol parameter that is out of range; names the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("protocol.{field}: {problem}")]
pub struct ConfigError {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl ProtocolConfig {
    /// The most bytes a VIEW-CHANGE of a cluster of `n` takes encoded: a
    /// checkpoint proof of up to n votes, and a prepared certificate (a
    /// pre-prepare header and up to n - 1 prepares, no batch) per sequence
    /// number of the window, with a vote's worth for the envelope.
    pub fn view_change_bytes(&self, n: usize) -> usize {
        // A certificate holds every matching prepare (up to n - 1, one per
        // backup) and a proof every matching vote (up to n), not only the
        // quorum; replicas refuse more (`Replica::screen`).
        let certificate = SIGNED_VOTE_BYTES * n;
        let window = usize::try_from(self.watermark_window).unwrap_or(usize::MAX);
        (SIGNED_VOTE_BYTES * (n + 1)).saturating_add(window.saturating_mul(certificate))
    }

    /// The most bytes a NEW-VIEW of a cluster of `n` takes encoded: 2f+1
    /// VIEW-CHANGEs and a pre-prepare header per sequence number of the window.
    pub fn new_view_bytes(&self, n: usize) -> usize {
        let f = n.saturating_sub(1) / 3;
        let window = usize::try_from(self.watermark_window).unwrap_or(usize::MAX);
        (2 * f + 1)
            .saturating_mul(self.view_change_bytes(n))
            .saturating_add(window.saturating_mul(SIGNED_VOTE_BYTES))
    }

    /// The most bytes of messages for views not yet entered held for one
    /// sender (encoded): one NEW-VIEW and two full PRE-PREPAREs. Votes are
    /// small, and what is refused comes back by status-driven
    /// retransmission once the replica is in the view.
    pub fn future_bytes_per_replica(&self, n: usize) -> usize {
        self.new_view_bytes(n).saturating_add(self.batch_frame_bytes().saturating_mul(2))
    }

    /// [`ProtocolConfig::validate`], and that a NEW-VIEW of a cluster of `n`
    /// replicas fits in one message whatever the requests' sizes (its
    /// certificates carry no batches, so only the window and `n` count).
    pub fn validate_for(&self, n: usize) -> Result<(), ConfigError> {
        self.validate()?;
        let bytes = self.new_view_bytes(n);
        if bytes > codec::MAX_MESSAGE_BYTES {
            return Err(ConfigError {
                field: "watermark_window",
                problem: format!(
                    "with {n} replicas a NEW-VIEW may take {bytes} bytes, over the {} a message may; lower \
                     watermark_window (found {})",
                    codec::MAX_MESSAGE_BYTES,
                    self.watermark_window
                ),
            });
        }
        Ok(())
    }

    /// The most bytes a full batch takes encoded: its operations and each
    /// request's overhead.
    pub fn batch_frame_bytes(&self) -> usize {
        self.max_batch_bytes.saturating_add(self.max_batch_size.saturating_mul(REQUEST_OVERHEAD_BYTES))
    }

    /// Checks every field; the error names the first field that is wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |field, problem: String| Err(ConfigError { field, problem });
        if self.max_batch_size == 0 {
            return err("max_batch_size", "must be at least 1, found 0".into());
        }
        if self.max_request_bytes == 0 {
            return err("max_request_bytes", "must be at least 1, found 0".into());
        }
        if self.max_result_bytes == 0 || self.max_result_bytes > codec::MAX_MESSAGE_BYTES / 2 {
            return err(
                "max_result_bytes",
                format!(
                    "must be between 1 and half a message ({} bytes), so a reply always fits in one, found {}",
                    codec::MAX_MESSAGE_BYTES / 2,
                    self.max_result_bytes
                ),
            );
        }
        if self.max_batch_bytes < self.max_request_bytes {
            return err(
                "max_batch_bytes",
                format!(
                    "must be at least max_request_bytes ({}), found {}",
                    self.max_request_bytes, self.max_batch_bytes
                ),
            );
        }
        if self.batch_frame_bytes() > codec::MAX_MESSAGE_BYTES / 2 {
            return err(
                "max_batch_bytes",
                format!(
                    "a full batch ({} bytes with max_batch_size {} requests of {} bytes' overhead each) must \
                     fit in half a message ({} bytes), so a proof of commitment fits in one",
                    self.batch_frame_bytes(),
                    self.max_batch_size,
                    REQUEST_OVERHEAD_BYTES,
                    codec::MAX_MESSAGE_BYTES / 2
                ),
            );
        }
        if self.checkpoint_interval == 0 {
            return err("checkpoint_interval", "must be at least 1, found 0".into());
        }
        if self.watermark_window < self.checkpoint_interval
            || self.watermark_window % self.checkpoint_interval != 0
        {
            return err(
                "watermark_window",
                format!(
                    "must be a positive multiple of checkpoint_interval ({}), found {}",
                    self.checkpoint_interval, self.watermark_window
                ),
            );
        }
        if self.view_change_timeout_ms == 0 {
            return err("view_change_timeout_ms", "must be at least 1, found 0".into());
        }
        if self.batch_delay_ms >= self.view_change_timeout_ms {
            return err(
                "batch_delay_ms",
                format!(
                    "must be below view_change_timeout_ms ({}), found {}",
                    self.view_change_timeout_ms, self.batch_delay_ms
                ),
            );
        }
        if self.view_term_ms != 0 && self.view_term_ms < 2 * self.view_change_timeout_ms {
            return err(
                "view_term_ms",
                format!(
                    "must be 0 (no rotation) or at least twice view_change_timeout_ms ({}), found {}{}",
                    2 * self.view_change_timeout_ms,
                    self.view_term_ms,
                    if self.view_term_ms == ProtocolConfig::default().view_term_ms {
                        " (the default; set view_term_ms when view_change_timeout_ms is above half of it)"
                    } else {
                        ""
                    }
                ),
            );
        }
        if self.max_view_change_backoff > 16 {
            return err(
                "max_view_change_backoff",
                format!("must be at most 16, found {}", self.max_view_change_backoff),
            );
        }
        if self.status_interval_ms == 0 {
            return err("status_interval_ms", "must be at least 1, found 0".into());
        }
        if self.state_chunk_bytes == 0 || self.state_chunk_bytes > codec::MAX_MESSAGE_BYTES / 2 {
            return err(
                "state_chunk_bytes",
                format!(
                    "must be between 1 and {}, found {}",
                    codec::MAX_MESSAGE_BYTES / 2,
                    self.state_chunk_bytes
                ),
            );
        }
        if self.max_pending_per_client == 0 {
            return err("max_pending_per_client", "must be at least 1, found 0".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(ProtocolConfig::default().validate(), Ok(()));
    }

    /// The NEW-VIEW bound grows with the window and the cluster, not with
    /// the requests: the default window fits clusters of tens of replicas,
    /// and a hundred replicas need a smaller one (32), which the error names.
    #[test]
    fn a_new_view_of_the_window_must_fit_in_a_message() {
        let config = ProtocolConfig::default();
        assert_eq!(config.validate_for(4), Ok(()));
        assert_eq!(config.validate_for(31), Ok(()));
        let error = config.validate_for(100).unwrap_err();
        assert_eq!(error.field, "watermark_window");
        let smaller =
            ProtocolConfig { watermark_window: 32, checkpoint_interval: 32, ..ProtocolConfig::default() };
        assert_eq!(smaller.validate_for(100), Ok(()));
    }

    #[test]
    fn errors_name_the_field() {
        type Breaker = fn(&mut ProtocolConfig);
        let cases: [(Breaker, &str); 12] = [
            (|c| c.max_batch_size = 0, "max_batch_size"),
            (|c| c.max_request_bytes = 0, "max_request_bytes"),
            (|c| c.max_result_bytes = 0, "max_result_bytes"),
            (|c| c.max_result_bytes = codec::MAX_MESSAGE_BYTES / 2 + 1, "max_result_bytes"),
            (|c| c.max_batch_bytes = c.max_request_bytes - 1, "max_batch_bytes"),
            (|c| c.max_batch_bytes = codec::MAX_MESSAGE_BYTES / 2, "max_batch_bytes"),
            (|c| c.checkpoint_interval = 0, "checkpoint_interval"),
            (|c| c.watermark_window = 100, "watermark_window"),
            (|c| c.view_change_timeout_ms = 0, "view_change_timeout_ms"),
            (|c| c.batch_delay_ms = 5_000, "batch_delay_ms"),
            (|c| c.max_pending_per_client = 0, "max_pending_per_client"),
            (|c| c.view_term_ms = 3_000, "view_term_ms"),
        ];
        for (break_it, field) in cases {
            let mut config = ProtocolConfig::default();
            break_it(&mut config);
            let error = config.validate().unwrap_err();
            assert_eq!(error.field, field);
            assert!(error.to_string().starts_with(&format!("protocol.{field}:")));
        }
    }
}
