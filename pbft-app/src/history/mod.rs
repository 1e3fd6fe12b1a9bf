//! Histories of client operations on the key-value store, and a
//! linearizability checker for them.
//!
//! A test that drives a cluster through faults wants to know more than "no
//! call failed": it wants to know that what the clients saw could have come
//! from one store executing one operation at a time, each at some instant
//! between its invocation and its answer (linearizability, Herlihy & Wing,
//! TOPLAS 1990). That is the promise PBFT makes to its clients (OSDI'99 §2),
//! and the one a replica bug (a stale read, a lost update, a replay) breaks.
//!
//! - [`RecordingClient`](crate::history::RecordingClient) wraps a
//!   [`Client<KvStore>`](crate::Client) and records each call in a shared
//!   [`History`](crate::history::History): its invocation time, before the
//!   request is sent; its completion time and result, after the answer. A
//!   call that fails (or whose future is dropped) stays
//!   [`Outcome::Unknown`](crate::history::Outcome::Unknown): it may have
//!   executed or not.
//! - [`check`](crate::history::check) decides whether a list of
//!   [`Operation`](crate::history::Operation)s is linearizable, key by key,
//!   within a time budget, and when it is not returns a
//!   [`Counterexample`](crate::history::Counterexample): operations on one
//!   key whose results no order explains, each of them needed.
//!
//! Operations are plain data (serde), so a failing test can dump the
//! history as JSON and a later run can load and check it again:
//!
//! ```
//! use pbft_app::apps::{KvOp, KvQuery, KvResult};
//! use pbft_app::history::{check, Call, Operation, Outcome, Verdict};
//! use std::time::Duration;
//!
//! let ms = Duration::from_millis;
//! let put = Call::Op(KvOp::Put { key: "a".into(), value: "1".into() });
//! let get = Call::Query(KvQuery::Get { key: "a".into() });
//! let history = vec![
//!     Operation { client: 1, call: put, invoked: ms(0), completed: Some(ms(1)),
//!                 outcome: Outcome::Ok(KvResult::Previous(None)) },
//!     // Starts after the put completed, yet does not see it: a stale read.
//!     Operation { client: 2, call: get, invoked: ms(2), completed: Some(ms(3)),
//!                 outcome: Outcome::Ok(KvResult::Value(None)) },
//! ];
//! let verdict = check(&history, Duration::from_secs(1));
//! assert!(matches!(verdict, Verdict::NotLinearizable(_)), "{verdict}");
//! let json = serde_json::to_string_pretty(&history).expect("operations encode");
//! let again: Vec<Operation> = serde_json::from_str(&json).expect("and decode");
//! assert_eq!(again, history);
//! ```

mod linearizable;
mod recorder;
mod search;
#[cfg(test)]
mod tests;

pub use linearizable::{check, Counterexample, Verdict};
pub use recorder::{History, RecordingClient};

use crate::apps::{KvOp, KvQuery, KvResult};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// What a client asked of the store: an ordered operation or a read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Call {
    /// An operation sent with [`Client::invoke`](crate::Client::invoke).
    Op(KvOp),
    /// A read sent with [`Client::query`](crate::Client::query).
    Query(KvQuery),
}

impl Call {
    /// The one key the call touches: the checker checks each key alone.
    pub fn key(&self) -> &str {
        match self {
            Call::Op(KvOp::Put { key, .. } | KvOp::Delete { key } | KvOp::CompareAndSwap { key, .. }) => key,
            Call::Query(KvQuery::Get { key }) => key,
        }
    }

    /// Whether the call only reads (so, unanswered, it constrains nothing).
    pub fn is_read(&self) -> bool {
        matches!(self, Call::Query(_))
    }
}

/// How a call ended, as far as its client knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The cluster answered with this result.
    Ok(KvResult),
    /// The client gave up or got an error: a write may have taken effect at
    /// any time after its invocation, or never; a read tells nothing.
    Unknown,
}

/// One call of one client, as the history recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// Which client made the call (a [`RecordingClient`]'s id).
    pub client: u64,
    /// What it asked.
    pub call: Call,
    /// When it was invoked, since the history's start.
    pub invoked: Duration,
    /// When its answer arrived, since the history's start; `None` when the
    /// outcome is [`Outcome::Unknown`].
    pub completed: Option<Duration>,
    /// What it returned.
    pub outcome: Outcome,
}

impl fmt::Display for Call {
    /// `put a = "1"`, `delete a`, `cas a "1" -> None`, `get a`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::Op(KvOp::Put { key, value }) => write!(f, "put {key} = {value:?}"),
            Call::Op(KvOp::Delete { key }) => write!(f, "delete {key}"),
            Call::Op(KvOp::CompareAndSwap { key, expected, new }) => {
                write!(f, "cas {key} {} -> {}", Shown(expected), Shown(new))
            }
            Call::Query(KvQuery::Get { key }) => write!(f, "get {key}"),
        }
    }
}

impl fmt::Display for Outcome {
    /// The result as it reads in a counterexample, or `unknown`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok(KvResult::Previous(old)) => write!(f, "previous {}", Shown(old)),
            Outcome::Ok(KvResult::Value(value)) => write!(f, "value {}", Shown(value)),
            Outcome::Ok(KvResult::Swapped { swapped, current }) => {
                let verb = if *swapped { "swapped" } else { "not swapped" };
                write!(f, "{verb}, now {}", Shown(current))
            }
            Outcome::Unknown => f.write_str("unknown"),
        }
    }
}

impl fmt::Display for Operation {
    /// One line: `client 1: put a = "1" -> previous None  [0.000..1.000 ms]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |at: Duration| at.as_secs_f64() * 1000.0;
        let call = self.call.to_string();
        write!(
            f,
            "client {}: {call:<24} -> {:<24} [{:.3}..",
            self.client,
            self.outcome.to_string(),
            ms(self.invoked)
        )?;
        match self.completed {
            Some(at) => write!(f, "{:.3} ms]", ms(at)),
            None => write!(f, "? ms]"),
        }
    }
}

/// An optional value shown as `"text"` or `None`.
struct Shown<'a>(&'a Option<String>);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(value) => write!(f, "{value:?}"),
            None => f.write_str("None"),
        }
    }
}
