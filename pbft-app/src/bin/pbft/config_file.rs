//! Loading the cluster config a command names with `--config`.

use pbft_app::cluster_config::{AppKind, ClusterConfig};
use std::path::Path;

/// Loads and checks the config at `path`.
pub fn load(path: &Path) -> anyhow::Result<ClusterConfig> {
    Ok(ClusterConfig::load(path)?)
}

/// Loads `path` and checks that its replicas run `app`.
pub fn load_for(path: &Path, app: AppKind) -> anyhow::Result<ClusterConfig> {
    let config = load(path)?;
    anyhow::ensure!(
        config.app == app,
        "{}: cluster.app is \"{}\"; this command talks to \"{}\" clusters",
        path.display(),
        config.app.name(),
        app.name()
    );
    Ok(config)
}
