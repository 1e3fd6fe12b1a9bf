//! Messages for a view this replica has not entered yet, held per sender
//! until it enters that view (OSDI'99 §4.4: a replica that is behind in the
//! view change accepts the new view's messages once it gets there).
//!
//! Each sender's share is bounded twice: by count
//! (`max_future_messages_per_replica`) and by bytes
//! ([`ProtocolConfig::future_bytes_per_replica`]), so a peer that sends
//! full-sized PRE-PREPAREs for far views pins at most its byte budget, not
//! the count times the largest message. What is refused comes back by
//! status-driven retransmission once this replica is in the view.

use crate::codec;
use crate::config::ProtocolConfig;
use crate::ids::ReplicaId;
use crate::message::Message;
use crate::reject::Reject;
use std::collections::{BTreeMap, VecDeque};

/// One sender's buffered messages and their encoded size.
#[derive(Debug, Default)]
struct Share {
    messages: VecDeque<(usize, Message)>,
    bytes: usize,
}

/// The future-view buffer of all senders.
#[derive(Debug, Default)]
pub(crate) struct FutureBuffer {
    shares: BTreeMap<ReplicaId, Share>,
}

impl FutureBuffer {
    /// Holds `message` from `from`, or says why not (`BufferFull`: the
    /// sender's count or byte budget would be exceeded).
    pub(crate) fn push(
        &mut self,
        from: ReplicaId,
        message: Message,
        config: &ProtocolConfig,
        n: usize,
    ) -> Result<(), Reject> {
        let size = codec::encoded_len(&message);
        let share = self.shares.entry(from).or_default();
        if share.messages.len() >= config.max_future_messages_per_replica
            || share.bytes.saturating_add(size) > config.future_bytes_per_replica(n)
        {
            return Err(Reject::BufferFull);
        }
        share.bytes += size;
        share.messages.push_back((size, message));
        Ok(())
    }

    /// Keeps only the messages `keep` accepts.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Message) -> bool) {
        for share in self.shares.values_mut() {
            share.messages.retain(|(_, message)| keep(message));
            share.bytes = share.messages.iter().map(|(size, _)| size).sum();
        }
        self.shares.retain(|_, share| !share.messages.is_empty());
    }

    /// Empties the buffer, giving every message back in sender order, each
    /// sender's in arrival order.
    pub(crate) fn take(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.shares)
            .into_values()
            .flat_map(|share| share.messages.into_iter().map(|(_, message)| message))
            .collect()
    }

    /// Messages held.
    pub(crate) fn len(&self) -> usize {
        self.shares.values().map(|share| share.messages.len()).sum()
    }

    /// Encoded bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.shares.values().map(|share| share.bytes).sum()
    }
}
