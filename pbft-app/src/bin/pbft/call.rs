//! What the client commands (`pbft kv`, `pbft bank`) share: the options that
//! name the cluster and the client, and one call to the cluster.

use crate::config_file::load_for;
use clap::Args;
use pbft_app::cluster_config::AppKind;
use pbft_app::{timeline, BlockingClient, RequestRef, StateMachine};
use pbft_core::ClientId;
use pbft_net::RequestTrace;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What every client command needs: the cluster, who to be, how long to wait.
#[derive(Args)]
pub struct ClientArgs {
    /// The cluster config (TOML).
    #[arg(long)]
    config: PathBuf,
    /// The client identity to use (one process per identity at a time).
    #[arg(long, default_value_t = 0)]
    client: u64,
    /// Give up after this many seconds without f+1 matching replies.
    #[arg(long, default_value_t = 10)]
    timeout_secs: u64,
    /// After the call, print its timeline across the replicas (when each
    /// received, pre-prepared, prepared, committed, executed and replied to
    /// it) on standard error. May follow the operation (`put K V --trace`).
    #[arg(long, global = true)]
    trace: bool,
}

/// An operation or a read-only query of application `S`.
pub enum Call<S: StateMachine> {
    /// An operation, ordered by the protocol.
    Invoke(S::Op),
    /// A read-only query.
    Query(S::Query),
}

/// A client command line that becomes one call of application `S`.
pub trait IntoCall<S: StateMachine> {
    /// The operation or query this command asks for.
    fn into_call(self) -> Call<S>;
}

/// Parses `line` as a client command `C` and returns the call it becomes
/// (the command tests' one parser).
#[cfg(test)]
pub fn call_of<S: StateMachine, C: clap::Subcommand + IntoCall<S>>(line: &[&str]) -> Call<S> {
    #[derive(clap::Parser)]
    struct Line<C: clap::Subcommand> {
        #[command(subcommand)]
        command: C,
    }
    match <Line<C> as clap::Parser>::try_parse_from(line) {
        Ok(parsed) => parsed.command.into_call(),
        Err(error) => panic!("{line:?} does not parse: {error}"),
    }
}

/// How long `--trace` waits for the replicas that have not replied yet (the
/// client needed only f+1 of them).
const TRACE_SETTLE: Duration = Duration::from_secs(3);

/// The request's traces once all `n` replicas have replied to it, or as
/// they are after [`TRACE_SETTLE`].
fn replied_traces<S: StateMachine>(
    client: &BlockingClient<S>,
    request: RequestRef,
    n: usize,
) -> anyhow::Result<Vec<Option<RequestTrace>>> {
    let deadline = Instant::now() + TRACE_SETTLE;
    loop {
        let traces = client.trace(request.client, request.timestamp)?;
        let replied = traces.iter().flatten().filter(|t| t.phases.replied.is_some()).count();
        if replied >= n || Instant::now() >= deadline {
            return Ok(traces);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `call` on the `app` cluster `args` names and returns the agreed
/// output; with `--trace`, prints the request's timeline first.
pub fn call<S: StateMachine>(args: &ClientArgs, app: AppKind, call: Call<S>) -> anyhow::Result<S::Output> {
    let config = load_for(&args.config, app)?;
    let client = BlockingClient::<S>::connect(&config, ClientId(args.client))?
        .with_timeout(Duration::from_secs(args.timeout_secs));
    let (output, request) = match call {
        Call::Invoke(op) => client.invoke_traced(&op)?,
        Call::Query(query) => client.query_traced(&query)?,
    };
    if args.trace {
        let traces = replied_traces(&client, request, config.n())?;
        match timeline::render(&traces, request.client, request.timestamp, Some(request.sent_at)) {
            Some(table) => eprint!("{table}"),
            None => eprintln!("no replica kept a record of this request"),
        }
        eprintln!(
            "(again later: pbft trace --config {} --client {} --timestamp {})",
            args.config.display(),
            request.client.0,
            request.timestamp
        );
    }
    Ok(output)
}
