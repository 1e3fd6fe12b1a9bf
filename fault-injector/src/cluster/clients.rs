//! The simulated clients: each runs a real [`Client`] over a queue of
//! operations, one at a time, and keeps what it saw complete.

use super::network::{NodeId, Payload};
use super::SimCluster;
use pbft_core::{Client, ClientId, ClientOutput, Message, ReplicatedStateMachine, Time};
use std::collections::VecDeque;

/// A request a client saw complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The client.
    pub client: ClientId,
    /// The request's timestamp.
    pub timestamp: u64,
    /// The operation.
    pub op: Vec<u8>,
    /// The result f+1 replicas agreed on (2f+1 for an unordered read).
    pub result: Vec<u8>,
    /// Whether it was a read-only query (answered by the application's
    /// `query`, possibly without being ordered).
    pub read_only: bool,
    /// When the client invoked it.
    pub invoked_at: Time,
    /// When the client accepted the result.
    pub completed_at: Time,
}

/// One client and its workload.
pub(crate) struct SimClient {
    pub(crate) client: Client,
    /// Operations not yet invoked, with whether each is a read-only query.
    workload: VecDeque<(Vec<u8>, bool)>,
    /// The operation in progress, whether it is a query, and when it was invoked.
    current: Option<(Vec<u8>, bool, Time)>,
    completed: Vec<Completion>,
}

impl SimClient {
    pub(crate) fn new(client: Client) -> SimClient {
        SimClient { client, workload: VecDeque::new(), current: None, completed: Vec::new() }
    }

    pub(crate) fn idle(&self) -> bool {
        self.current.is_none() && self.workload.is_empty()
    }

    pub(crate) fn completed(&self) -> &[Completion] {
        &self.completed
    }
}

impl<A: ReplicatedStateMachine> SimCluster<A> {
    /// Queues `op` for `client`; it is invoked once the client's earlier operations complete.
    pub fn submit(&mut self, client: ClientId, op: Vec<u8>) {
        self.enqueue(client, op, false);
    }

    /// Queues the read-only `query` for `client` (see [`pbft_core::Client::query`]);
    /// it is invoked once the client's earlier operations complete.
    pub fn submit_query(&mut self, client: ClientId, query: Vec<u8>) {
        self.enqueue(client, query, true);
    }

    fn enqueue(&mut self, client: ClientId, op: Vec<u8>, read_only: bool) {
        let index = client.0 as usize;
        self.clients[index].workload.push_back((op, read_only));
        self.start_next(index);
    }

    /// Whether every submitted operation completed.
    pub fn all_complete(&self) -> bool {
        self.clients.iter().all(SimClient::idle)
    }

    /// The requests `client` saw complete, in order.
    pub fn completions(&self, client: ClientId) -> &[Completion] {
        self.clients[client.0 as usize].completed()
    }

    /// Every completion of every client.
    pub fn all_completions(&self) -> impl Iterator<Item = &Completion> {
        self.clients.iter().flat_map(|c| c.completed.iter())
    }

    /// Routes what client `index` outputs: requests onto the network,
    /// completions into its record (and its next operation starts).
    pub(crate) fn drain_client(&mut self, index: usize) {
        let from = NodeId::Client(ClientId(index as u64));
        while let Some(output) = self.clients[index].client.poll_output() {
            match output {
                ClientOutput::Send { to, request } => {
                    self.record.request_sent(&request);
                    self.post(from, NodeId::Replica(to), Payload::Message(Message::Request(request)))
                }
                ClientOutput::Broadcast(request) => {
                    self.record.request_sent(&request);
                    for to in self.quorum().replicas() {
                        let message = Payload::Message(Message::Request(request.clone()));
                        self.post(from, NodeId::Replica(to), message);
                    }
                }
                ClientOutput::Completed { timestamp, result } => {
                    let sim = &mut self.clients[index];
                    if let Some((op, read_only, invoked_at)) = sim.current.take() {
                        sim.completed.push(Completion {
                            client: ClientId(index as u64),
                            timestamp,
                            op,
                            result,
                            read_only,
                            invoked_at,
                            completed_at: self.now,
                        });
                    }
                    self.start_next(index);
                }
                // A simulated client is one process per identity and never
                // reuses a timestamp, and the simulated applications'
                // results are far below `max_result_bytes`; were a bug to
                // make replicas say otherwise, the operation would stay
                // uncompleted, which the liveness checks report.
                ClientOutput::TimestampReused { .. } | ClientOutput::ResultWithheld { .. } => {}
            }
        }
    }

    fn start_next(&mut self, index: usize) {
        let now = self.now;
        let sim = &mut self.clients[index];
        if sim.current.is_some() {
            return;
        }
        let Some((op, read_only)) = sim.workload.pop_front() else { return };
        let started =
            if read_only { sim.client.query(now, op.clone()) } else { sim.client.invoke(now, op.clone()) };
        if started.is_ok() {
            sim.current = Some((op, read_only, now));
        }
        self.drain_client(index);
    }
}
