//! The `/metrics` endpoint: HTTP/1.1 (hyper) on a TCP address of the
//! operator's choice. A scrape asks the replica's driver for its status
//! (answered between two bursts of input, so the hot path does nothing for
//! scrapes it is not asked), then encodes the registry.
//!
//! At most [`MAX_SCRAPE_CONNECTIONS`] connections are served at once; more
//! wait in the kernel's accept queue, and one that has not sent a
//! request's headers within 10 s is closed. Bind the endpoint to a loopback or
//! monitoring address: it has no authentication, like every Prometheus
//! exporter.

use crate::endpoint::NetError;
use crate::metrics::ReplicaMetrics;
use crate::wire::NodeStatus;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Connections the endpoint serves at once.
pub const MAX_SCRAPE_CONNECTIONS: usize = 16;

/// How long a scrape waits for the replica's status before answering
/// without it.
const STATUS_WAIT: Duration = Duration::from_secs(2);

/// How long a connection may take to send a request's headers before it
/// is closed: a client that connects and sends nothing holds one of the
/// slots at most this long.
const HEADER_WAIT: Duration = Duration::from_secs(10);

/// The OpenMetrics text format, which Prometheus reads.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A bound metrics endpoint, not yet serving: [`crate::run_replica`] serves it.
pub struct MetricsServer {
    listener: std::net::TcpListener,
}

/// A status request from the endpoint to the driver.
pub(crate) type StatusRequest = oneshot::Sender<NodeStatus>;

impl MetricsServer {
    /// Binds `address` now, so that a taken port or an address this host
    /// does not have is an error at start rather than a silent absence.
    pub fn bind(address: SocketAddr) -> Result<MetricsServer, NetError> {
        let listener = std::net::TcpListener::bind(address)
            .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
            .map_err(|source| NetError::MetricsBind { address, source })?;
        Ok(MetricsServer { listener })
    }

    /// The address it is bound to (with the port the OS chose for port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves scrapes of `metrics` until the returned task is aborted or
    /// `status` closes; each scrape asks for a status on `status`.
    pub(crate) fn spawn(
        self,
        metrics: Arc<ReplicaMetrics>,
        status: mpsc::Sender<StatusRequest>,
    ) -> std::io::Result<tokio::task::JoinHandle<()>> {
        let listener = tokio::net::TcpListener::from_std(self.listener)?;
        Ok(tokio::spawn(serve(listener, metrics, status)))
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<ReplicaMetrics>,
    status: mpsc::Sender<StatusRequest>,
) {
    let slots = Arc::new(Semaphore::new(MAX_SCRAPE_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::debug!(%error, "metrics endpoint: accept failed");
                continue;
            }
        };
        let (metrics, status) = (metrics.clone(), status.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (metrics, status) = (metrics.clone(), status.clone());
                async move { Ok::<_, std::convert::Infallible>(answer(&request, &metrics, &status).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(HEADER_WAIT);
            if let Err(error) = http.serve_connection(io, service).await {
                tracing::debug!(%error, "metrics endpoint: connection ended with an error");
            }
            drop(permit);
        });
    }
}

async fn answer<B>(
    request: &Request<B>,
    metrics: &ReplicaMetrics,
    status: &mpsc::Sender<StatusRequest>,
) -> Response<Full<Bytes>> {
    if request.method() != Method::GET || request.uri().path() != "/metrics" {
        return plain(StatusCode::NOT_FOUND, "not found: the metrics are at GET /metrics\n");
    }
    let (reply, answer) = oneshot::channel();
    // A full queue means the replica has not answered earlier scrapes: this
    // one goes without its status rather than waiting behind them.
    let current = match status.try_send(reply) {
        Ok(()) => tokio::time::timeout(STATUS_WAIT, answer).await.ok().and_then(Result::ok),
        Err(_) => None,
    };
    let body = metrics.encode(current);
    Response::builder()
        .header(hyper::header::CONTENT_TYPE, CONTENT_TYPE)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "cannot build the response\n"))
}

fn plain(code: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = code;
    response
}
