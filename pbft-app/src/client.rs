//! The typed client library: connect to a cluster from its TOML config and
//! invoke an application's operations and queries, from async code
//! ([`Client`]) or from scripts and tests ([`BlockingClient`]).
//!
//! Exactly-once, f+1 matching replies, retries to every replica, following
//! the primary through view changes, and the read-only optimisation come
//! from the sans-IO [`pbft_core::Client`] underneath; many invocations may be
//! in flight on one client at once (up to the cluster's
//! `max_pending_per_client`, the rest queue).

use crate::cluster_config::{ClusterConfig, ConfigError};
use pbft_core::codec::CodecError;
use pbft_core::typed::{decode_output, encode_request, TypedError};
use pbft_core::{ClientId, SecretKey, StateMachine};
use pbft_net::{query_traces, ClientHandle, Completed, InvokeError, NetError, ReplicaAddress, RequestTrace};
use std::marker::PhantomData;
use std::path::Path;
use std::time::Duration;

/// How long an invocation waits for its result unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an invocation or a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The cluster config is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The transport could not start.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The operation did not serialise.
    #[error("the operation does not encode: {0}")]
    Encode(#[from] CodecError),
    /// No agreed result in time, or the client stopped.
    #[error(transparent)]
    Invoke(#[from] InvokeError),
    /// The agreed result is a refusal or not this application's output.
    #[error(transparent)]
    Result(#[from] TypedError),
    /// The async runtime of a [`BlockingClient`] could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// A client of a cluster running the typed application `S`.
pub struct Client<S> {
    handle: ClientHandle,
    timeout: Duration,
    /// Who this client is and where the replicas are, for trace queries.
    secret: SecretKey,
    replicas: Vec<ReplicaAddress>,
    app: PhantomData<fn() -> S>,
}

/// Which request carried an invocation: what to ask the replicas about to
/// trace it ([`Client::trace`], `pbft trace`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestRef {
    /// The client that sent it.
    pub client: ClientId,
    /// Its timestamp (its id among the client's requests).
    pub timestamp: u64,
    /// When it was first sent, in wall-clock microseconds since the Unix epoch.
    pub sent_at: u64,
}

impl From<&Completed> for RequestRef {
    fn from(completed: &Completed) -> RequestRef {
        RequestRef { client: completed.client, timestamp: completed.timestamp, sent_at: completed.sent_at }
    }
}

/// How long a trace query waits for the replicas' answers.
pub const TRACE_TIMEOUT: Duration = Duration::from_secs(2);

impl<S: StateMachine> Client<S> {
    /// Connects as client `id` of `config`. Must run inside a tokio runtime.
    pub fn connect(config: &ClusterConfig, id: ClientId) -> Result<Client<S>, ClientError> {
        let secret = config.client_secret(id)?;
        let handle =
            ClientHandle::connect_with(id, &secret, &config.replica_addresses(), config.client_options())?;
        let replicas = config.replica_addresses();
        Ok(Client { handle, timeout: DEFAULT_TIMEOUT, secret, replicas, app: PhantomData })
    }

    /// Loads the cluster config at `path` and connects as client `id`.
    pub fn from_config_file(path: &Path, id: ClientId) -> Result<Client<S>, ClientError> {
        Client::connect(&ClusterConfig::load(path)?, id)
    }

    /// How long each invocation waits for its result (default [`DEFAULT_TIMEOUT`]).
    /// An invocation that times out may still execute later.
    pub fn with_timeout(mut self, timeout: Duration) -> Client<S> {
        self.timeout = timeout;
        self
    }

    /// Orders and executes `op`; returns the output f+1 replicas agreed on.
    pub async fn invoke(&self, op: &S::Op) -> Result<S::Output, ClientError> {
        let result = self.handle.invoke_within(encode_request(op)?, self.timeout).await?;
        Ok(decode_output(&result)?)
    }

    /// Answers `query` from the replicas' committed state: without ordering
    /// when 2f+1 replicas answer alike, ordered otherwise.
    pub async fn query(&self, query: &S::Query) -> Result<S::Output, ClientError> {
        let result = self.handle.query_within(encode_request(query)?, self.timeout).await?;
        Ok(decode_output(&result)?)
    }

    /// [`Client::invoke`], also telling which request carried it.
    pub async fn invoke_traced(&self, op: &S::Op) -> Result<(S::Output, RequestRef), ClientError> {
        let completed = self.handle.submit_within(encode_request(op)?, false, self.timeout).await?;
        Ok((decode_output(&completed.result)?, RequestRef::from(&completed)))
    }

    /// [`Client::query`], also telling which request carried it.
    pub async fn query_traced(&self, query: &S::Query) -> Result<(S::Output, RequestRef), ClientError> {
        let completed = self.handle.submit_within(encode_request(query)?, true, self.timeout).await?;
        Ok((decode_output(&completed.result)?, RequestRef::from(&completed)))
    }

    /// What each replica recorded of `client`'s request `timestamp` (entry
    /// `i` is replica `i`'s; `None` where it keeps no record or did not
    /// answer within [`TRACE_TIMEOUT`]). Replicas remember their last
    /// [`pbft_net::MAX_TRACED_REQUESTS`] requests.
    pub async fn trace(
        &self,
        client: ClientId,
        timestamp: u64,
    ) -> Result<Vec<Option<RequestTrace>>, ClientError> {
        Ok(query_traces(&self.secret, &self.replicas, client, timestamp, TRACE_TIMEOUT).await?)
    }
}

/// A [`Client`] with its own runtime, for code that is not async.
pub struct BlockingClient<S> {
    client: Client<S>,
    runtime: tokio::runtime::Runtime,
}

impl<S: StateMachine> BlockingClient<S> {
    /// Connects as client `id` of `config`. Must not be called from async code.
    pub fn connect(config: &ClusterConfig, id: ClientId) -> Result<BlockingClient<S>, ClientError> {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
        let client = {
            let _entered = runtime.enter();
            Client::connect(config, id)?
        };
        Ok(BlockingClient { client, runtime })
    }

    /// See [`Client::with_timeout`].
    pub fn with_timeout(mut self, timeout: Duration) -> BlockingClient<S> {
        self.client = self.client.with_timeout(timeout);
        self
    }

    /// See [`Client::invoke`].
    pub fn invoke(&self, op: &S::Op) -> Result<S::Output, ClientError> {
        self.runtime.block_on(self.client.invoke(op))
    }

    /// See [`Client::query`].
    pub fn query(&self, query: &S::Query) -> Result<S::Output, ClientError> {
        self.runtime.block_on(self.client.query(query))
    }

    /// See [`Client::invoke_traced`].
    pub fn invoke_traced(&self, op: &S::Op) -> Result<(S::Output, RequestRef), ClientError> {
        self.runtime.block_on(self.client.invoke_traced(op))
    }

    /// See [`Client::query_traced`].
    pub fn query_traced(&self, query: &S::Query) -> Result<(S::Output, RequestRef), ClientError> {
        self.runtime.block_on(self.client.query_traced(query))
    }

    /// See [`Client::trace`].
    pub fn trace(&self, client: ClientId, timestamp: u64) -> Result<Vec<Option<RequestTrace>>, ClientError> {
        self.runtime.block_on(self.client.trace(client, timestamp))
    }
}
