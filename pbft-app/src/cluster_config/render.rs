//! Writing a new cluster config: the TOML `pbft init` writes, rendered from
//! the same types [`ClusterConfig::load`](super::ClusterConfig::load) parses.

use super::raw::{RawCluster, RawConfig, RawParticipant};
use super::AppKind;
use crate::keyfile;
use pbft_core::{ProtocolConfig, PublicKey};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a config could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("cannot render the cluster config as TOML: {0}")]
pub struct RenderError(#[from] toml::ser::Error);

/// A new cluster, as `pbft init` makes it: replica `i` is
/// `replicas[i]`, client `i` is `clients[i]`, and every secret key lives in
/// `keys_dir` under the name the config implies (`replica-{i}.key`,
/// `client-{i}.key`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCluster {
    /// The fault bound (at most `(replicas.len() - 1) / 3`).
    pub f: usize,
    /// The folder of the key files, relative to the config file's folder.
    pub keys_dir: PathBuf,
    /// The application the replicas run.
    pub app: AppKind,
    /// The protocol parameters; only those that differ from the defaults
    /// are written, so the file keeps following the defaults otherwise.
    pub protocol: ProtocolConfig,
    /// Each replica's address and public key, in id order.
    pub replicas: Vec<(SocketAddr, PublicKey)>,
    /// Where each replica serves its metrics, in id order (empty: nowhere).
    pub metrics_addresses: Vec<SocketAddr>,
    /// Each client's public key, in id order.
    pub clients: Vec<PublicKey>,
}

impl NewCluster {
    /// The config file's text: a comment saying what wrote it, then the
    /// `[cluster]`, `[protocol]`, `[[replica]]` and `[[client]]` sections.
    pub fn to_toml(&self) -> Result<String, RenderError> {
        let raw = RawConfig {
            cluster: RawCluster {
                name: None,
                f: Some(self.f),
                keys_dir: Some(self.keys_dir.clone()),
                dev_keys: false,
                demonstration: false,
                client_retry_ms: None,
                app: self.app,
            },
            protocol: self.protocol.clone(),
            replicas: Some(
                (0u32..)
                    .zip(&self.replicas)
                    .map(|(id, (address, key))| RawParticipant {
                        id,
                        address: Some(address.to_string()),
                        public_key: Some(keyfile::public_key_hex(key)),
                        key_file: None,
                        metrics_address: self.metrics_addresses.get(id as usize).map(ToString::to_string),
                        request_traces: None,
                    })
                    .collect(),
            ),
            clients: Some(
                (0u64..)
                    .zip(&self.clients)
                    .map(|(id, key)| RawParticipant {
                        id,
                        address: None,
                        public_key: Some(keyfile::public_key_hex(key)),
                        key_file: None,
                        metrics_address: None,
                        request_traces: None,
                    })
                    .collect(),
            ),
            traitors: Vec::new(),
            storage: Default::default(),
        };
        let header = format!(
            "# Written by `pbft init`. n = {n} replicas tolerate f = {f} traitors.\n\
             # Secret keys are in {keys}/; share only this file's public keys.\n\n",
            n = self.replicas.len(),
            f = self.f,
            keys = self.keys_dir.display()
        );
        Ok(header + &toml::to_string(&raw)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a panic is a failed test

    use super::*;
    use crate::cluster_config::ClusterConfig;
    use crate::ClientId;
    use pbft_core::ReplicaId;
    use std::path::Path;

    /// A fresh folder with `replicas` and `clients` key files in `keys/`,
    /// and the cluster of them.
    fn cluster_in(dir: &Path, protocol: ProtocolConfig, replicas: u16, clients: u64) -> NewCluster {
        let _ = std::fs::remove_dir_all(dir);
        let key = |name: String| {
            let path = dir.join("keys").join(name);
            keyfile::create_secret(&path).unwrap();
            keyfile::read_secret(&path).unwrap().public()
        };
        NewCluster {
            f: (usize::from(replicas) - 1) / 3,
            keys_dir: PathBuf::from("keys"),
            app: AppKind::Bank,
            protocol,
            replicas: (0..replicas)
                .map(|i| (SocketAddr::from(([127, 0, 0, 1], 7100 + i)), key(format!("replica-{i}.key"))))
                .collect(),
            clients: (0..clients).map(|i| key(format!("client-{i}.key"))).collect(),
            metrics_addresses: Vec::new(),
        }
    }

    fn scratch(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("pbft-render-{name}-{}", std::process::id()))
    }

    #[test]
    fn a_rendered_config_loads_back_into_the_same_cluster() {
        let dir = scratch("round-trip");
        let protocol = ProtocolConfig {
            max_batch_size: 10,
            checkpoint_interval: 16,
            watermark_window: 64,
            ..ProtocolConfig::default()
        };
        let mut new = cluster_in(&dir, protocol.clone(), 7, 3);
        new.metrics_addresses = (0..7).map(|i| SocketAddr::from(([127, 0, 0, 1], 9100 + i))).collect();
        let path = dir.join("cluster.toml");
        std::fs::write(&path, new.to_toml().unwrap()).unwrap();
        let loaded = ClusterConfig::load(&path).unwrap();
        assert_eq!(loaded.f, 2);
        assert_eq!(loaded.app, AppKind::Bank);
        assert_eq!(loaded.protocol, protocol);
        assert_eq!(loaded.name, "cluster");
        assert!(loaded.traitors.is_empty());
        let replicas: Vec<_> =
            loaded.replicas.iter().map(|r| (r.id, r.address, r.key, r.key_file.clone())).collect();
        let expected: Vec<_> = (0u32..)
            .zip(&new.replicas)
            .map(|(i, (address, key))| {
                (ReplicaId(i), *address, *key, Some(dir.join("keys").join(format!("replica-{i}.key"))))
            })
            .collect();
        assert_eq!(replicas, expected);
        let metrics: Vec<_> = loaded.replicas.iter().filter_map(|r| r.metrics_address).collect();
        assert_eq!(metrics, new.metrics_addresses);
        let clients: Vec<_> = loaded.clients.iter().map(|c| (c.id, c.key, c.key_file.clone())).collect();
        let expected: Vec<_> = (0u64..)
            .zip(&new.clients)
            .map(|(i, key)| (ClientId(i), *key, Some(dir.join("keys").join(format!("client-{i}.key")))))
            .collect();
        assert_eq!(clients, expected);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_default_protocol_renders_as_an_empty_table_after_the_comment() {
        let dir = scratch("defaults");
        let new = cluster_in(&dir, ProtocolConfig::default(), 4, 1);
        let text = new.to_toml().unwrap();
        let [replica, client] = [new.replicas[0].1, new.clients[0]].map(|k| keyfile::public_key_hex(&k));
        let expected = format!(
            "# Written by `pbft init`. n = 4 replicas tolerate f = 1 traitors.\n\
             # Secret keys are in keys/; share only this file's public keys.\n\n\
             [cluster]\nf = 1\nkeys_dir = \"keys\"\napp = \"bank\"\n\n[protocol]\n\n\
             [[replica]]\nid = 0\naddress = \"127.0.0.1:7100\"\npublic_key = \"{replica}\"\n\n"
        );
        assert!(text.starts_with(&expected), "{text}");
        assert!(text.ends_with(&format!("[[client]]\nid = 0\npublic_key = \"{client}\"\n")), "{text}");
        let path = dir.join("cluster.toml");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(ClusterConfig::load(&path).unwrap().protocol, ProtocolConfig::default());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
