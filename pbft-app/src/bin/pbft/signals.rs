//! What stops a replica or a supervisor: Ctrl-C, SIGTERM, or the end of
//! standard input.

/// Completes on Ctrl-C or SIGTERM, or, with `watch_stdin`, when standard
/// input closes (how `pbft up` makes sure its replicas never outlive it).
pub async fn shutdown_signal(watch_stdin: bool) {
    let stdin_closed = async {
        if !watch_stdin {
            return std::future::pending().await;
        }
        let mut stdin = tokio::io::stdin();
        let mut buffer = [0u8; 64];
        while let Ok(read) = tokio::io::AsyncReadExt::read(&mut stdin, &mut buffer).await {
            if read == 0 {
                break;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate() => {}
        _ = stdin_closed => {}
    }
}

#[cfg(unix)]
async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending().await
}
