//! The one seam through which every host drives a protocol node.
//!
//! The QUIC driver in `pbft-net` and the simulator in `fault-injector` both
//! drive any [`Node`]: a [`Replica`] itself, or a wrapper around one (the
//! fault injector's traitor rewrites what its replica sends). Whatever a host
//! adds (persistence, metrics, a traitor) therefore lives in one place per
//! host, not once per kind of node.

use crate::app::ReplicatedStateMachine;
use crate::ids::ClientId;
use crate::message::Message;
use crate::output::Output;
use crate::replica::Replica;
use crate::time::Time;

/// A sans-IO protocol node: inputs change its state, outputs say what the
/// world must do.
///
/// The contract is the crate's: after **every** input ([`Node::receive`],
/// [`Node::receive_all`], [`Node::handle_timeout`]) drain
/// [`Node::poll_output`] until it returns `None`, then read
/// [`Node::poll_timeout`] again and call `handle_timeout` at that instant.
pub trait Node {
    /// Verifies a message off the wire and handles it.
    fn receive(&mut self, now: Time, message: Message);

    /// Verifies and handles messages that arrived together, in order; a node
    /// may check their signatures as one batch.
    fn receive_all(&mut self, now: Time, messages: Vec<Message>) {
        for message in messages {
            self.receive(now, message);
        }
    }

    /// Fires whatever fell due at or before `now`.
    fn handle_timeout(&mut self, now: Time);

    /// The next thing the host must do, if any.
    fn poll_output(&mut self) -> Option<Output>;

    /// The earliest instant at which [`Node::handle_timeout`] must be called.
    fn poll_timeout(&self) -> Option<Time>;

    /// Reports the normal-case phases as events, or stops (see
    /// [`Replica::report_phases`]).
    fn report_phases(&mut self, on: bool);

    /// The highest timestamp of `client`'s that executed (see
    /// [`Replica::newest_timestamp`]).
    fn newest_timestamp(&self, client: ClientId) -> u64;
}

impl<A: ReplicatedStateMachine> Node for Replica<A> {
    fn receive(&mut self, now: Time, message: Message) {
        Replica::receive(self, now, message);
    }

    fn receive_all(&mut self, now: Time, messages: Vec<Message>) {
        Replica::receive_all(self, now, messages);
    }

    fn handle_timeout(&mut self, now: Time) {
        Replica::handle_timeout(self, now);
    }

    fn poll_output(&mut self) -> Option<Output> {
        Replica::poll_output(self)
    }

    fn poll_timeout(&self) -> Option<Time> {
        Replica::poll_timeout(self)
    }

    fn report_phases(&mut self, on: bool) {
        Replica::report_phases(self, on);
    }

    fn newest_timestamp(&self, client: ClientId) -> u64 {
        Replica::newest_timestamp(self, client)
    }
}
