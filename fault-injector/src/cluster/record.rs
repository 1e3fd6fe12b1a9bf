//! What a simulated run leaves for the checkers and for replay: every event
//! replicas reported, the batches each executed, every request clients sent,
//! and a hash of everything that happened.

use crate::checkers::Vote;
use crate::trace::TraceHash;
use pbft_core::{Digest, Event, ReplicaId, Request, SeqNum, Signed, Time};
use std::collections::BTreeMap;

/// The record of a run.
pub(crate) struct Record {
    pub(crate) events: Vec<(Time, ReplicaId, Event)>,
    /// Per replica, the batches it executed since it last lost its memory.
    pub(crate) executed: Vec<Vec<(SeqNum, Digest)>>,
    pub(crate) requests_sent: BTreeMap<Digest, Request>,
    /// Every vote a replica (not a twin) sent, with when.
    pub(crate) votes: Vec<(Time, ReplicaId, Vote)>,
    /// Every disk fault a replica restarted with, with when.
    pub(crate) disk_faults: Vec<(Time, ReplicaId, super::DiskFault)>,
    /// Messages dropped because their channel may not carry them
    /// ([`pbft_core::channel::may_carry`]), as the QUIC driver drops them.
    pub(crate) forbidden: u64,
    pub(crate) trace: TraceHash,
}

impl Record {
    pub(crate) fn new(n: usize) -> Record {
        Record {
            events: Vec::new(),
            executed: vec![Vec::new(); n],
            requests_sent: BTreeMap::new(),
            votes: Vec::new(),
            disk_faults: Vec::new(),
            forbidden: 0,
            trace: TraceHash::default(),
        }
    }

    pub(crate) fn request_sent(&mut self, request: &Signed<Request>) {
        self.requests_sent.insert(request.digest(), request.payload().clone());
    }

    /// An event of replica `id`; `twin` for its second instance, whose
    /// events are kept but neither traced nor counted as executed (the
    /// checkers ignore a twinned replica: it is the Byzantine one).
    pub(crate) fn event(&mut self, now: Time, id: ReplicaId, twin: bool, event: Event) {
        if !twin {
            self.trace.record(format!("{now:?} {id:?} {event:?}").as_bytes());
            if let Event::Executed { seq, digest, .. } = &event {
                self.executed[id.index()].push((*seq, *digest));
            }
        }
        self.events.push((now, id, event));
    }
}
