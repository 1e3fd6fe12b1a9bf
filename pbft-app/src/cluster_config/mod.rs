//! The cluster TOML file: who the replicas and clients are, where replicas
//! listen, their keys, the protocol parameters and, for demonstrations, which
//! replicas are traitors.
//!
//! ```toml
//! [cluster]
//! name = "local-4"
//! f = 1                      # optional: defaults to the most n tolerates
//! keys_dir = "keys"          # where key files without an explicit path live
//! dev_keys = true            # create missing key files on first use (development only)
//! app = "kv"                 # the replicated application: kv (default), bank or counter
//! demonstration = true       # only with [[traitor]] sections: this config shows an attack
//!
//! [protocol]                 # optional: every field has a default
//! checkpoint_interval = 64
//!
//! [storage]                  # optional
//! data_dir = "data"          # default: replica N keeps its log in data/replica-N
//! sync = true                # default; false loses acknowledged operations in a crash (benchmarks only)
//!
//! [[replica]]
//! id = 0
//! address = "127.0.0.1:7100"
//! # public_key = "64 hex digits"   # optional; key_file = "path" overrides keys_dir
//!
//! [[client]]
//! id = 0
//!
//! [[traitor]]
//! replica = 3
//! behavior = "equivocate"
//! ```
//!
//! Every error names the field it is about (`replica[2].address: …`).
//! Relative paths are relative to the config file's folder.
//!
//! [`NewCluster`] writes a new config (what `pbft init` does) from the same
//! types [`ClusterConfig::load`] parses, so what is written always loads.

mod raw;
mod render;

pub use render::{NewCluster, RenderError};

use crate::keyfile::{self, KeyFileError};
use fault_injector::traitor::Behavior;
use pbft_core::{ClientId, KeyBook, ProtocolConfig, PublicKey, ReplicaId, SecretKey};
use pbft_net::ReplicaAddress;
use raw::{RawConfig, RawParticipant};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A config that cannot be used, with the field at fault.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {field}: {problem}")]
pub struct ConfigError {
    /// The config file.
    pub file: String,
    /// The field at fault, as a path (`replica[1].address`).
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

/// Which example application the replicas run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppKind {
    /// The key-value store (`pbft kv`).
    #[default]
    Kv,
    /// The bank ledger (`pbft bank`).
    Bank,
    /// The counter.
    Counter,
}

impl AppKind {
    /// The name configs use.
    pub fn name(self) -> &'static str {
        match self {
            AppKind::Kv => "kv",
            AppKind::Bank => "bank",
            AppKind::Counter => "counter",
        }
    }
}

/// A replica as the config describes it.
#[derive(Clone, Debug)]
pub struct ReplicaEntry {
    /// Its id (its index in the list).
    pub id: ReplicaId,
    /// Where it listens.
    pub address: SocketAddr,
    /// Its public key.
    pub key: PublicKey,
    /// Where its secret key lives, if this machine has it.
    pub key_file: Option<PathBuf>,
    /// Where it serves Prometheus metrics over HTTP (`metrics_address`;
    /// `pbft replica --metrics` overrides it), if anywhere.
    pub metrics_address: Option<SocketAddr>,
    /// Whether it keeps the phase times of its recent requests for
    /// `pbft trace` (`request_traces`, default true; `pbft replica
    /// --no-request-traces` turns them off). Off, it answers every trace
    /// query with no record.
    pub request_traces: bool,
}

/// A client as the config describes it.
#[derive(Clone, Debug)]
pub struct ClientEntry {
    /// Its id.
    pub id: ClientId,
    /// Its public key.
    pub key: PublicKey,
    /// Where its secret key lives, if this machine has it.
    pub key_file: Option<PathBuf>,
}

/// A replica told to misbehave, for demonstrations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraitorEntry {
    /// Which replica.
    pub replica: ReplicaId,
    /// How.
    pub behavior: Behavior,
}

/// A checked cluster config.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// The file it came from.
    pub path: PathBuf,
    /// A name for logs and status output.
    pub name: String,
    /// The fault bound: the cluster tolerates f Byzantine replicas.
    pub f: usize,
    /// Protocol parameters every replica shares.
    pub protocol: ProtocolConfig,
    /// The replicas, indexed by id.
    pub replicas: Vec<ReplicaEntry>,
    /// The clients, in id order.
    pub clients: Vec<ClientEntry>,
    /// Traitors (demonstrations only).
    pub traitors: Vec<TraitorEntry>,
    /// How long a client waits before re-sending a request to every replica.
    pub client_retry_ms: u64,
    /// The application the replicas run.
    pub app: AppKind,
    /// Where and how replicas keep their durable state.
    pub storage: StorageConfig,
}

/// The data directory's default name, beside the config file.
pub const DEFAULT_DATA_DIR: &str = "data";

/// `[storage]`: where and how replicas keep their durable state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageConfig {
    /// The folder that holds each replica's `replica-<id>` directory
    /// (`data_dir`, relative to the config file; default `data`).
    pub data_dir: PathBuf,
    /// Whether each burst's records are synced (fdatasync) before the
    /// replica sends anything. Off only for benchmarks: a crash then loses
    /// operations clients were told had completed.
    pub sync: bool,
}

/// Whether checking a config may create the key files it lacks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyCreation {
    /// As `cluster.dev_keys` says.
    AsConfigured,
    /// Never: checking has no side effects.
    Never,
}

struct Checker<'a> {
    file: &'a Path,
}

impl Checker<'_> {
    fn error(&self, field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
        ConfigError { file: self.file.display().to_string(), field: field.into(), problem: problem.into() }
    }
}

impl ClusterConfig {
    /// Reads and checks the config at `path`. With `cluster.dev_keys`, key
    /// files that do not exist yet are created.
    pub fn load(path: &Path) -> Result<ClusterConfig, ConfigError> {
        let check = Checker { file: path };
        let text =
            std::fs::read_to_string(path).map_err(|e| check.error("(file)", format!("cannot read: {e}")))?;
        ClusterConfig::parse(&text, path, KeyCreation::AsConfigured)
    }

    /// Checks `text` as [`ClusterConfig::load`] checks the file at `path`
    /// (relative paths in it are taken from `path`'s folder), but never
    /// creates a file: `cluster.dev_keys` is ignored, so a missing key file
    /// is an error. For tools that only check a config, and for the fuzzer.
    pub fn check_text(text: &str, path: &Path) -> Result<ClusterConfig, ConfigError> {
        ClusterConfig::parse(text, path, KeyCreation::Never)
    }

    fn parse(text: &str, path: &Path, keys: KeyCreation) -> Result<ClusterConfig, ConfigError> {
        let check = Checker { file: path };
        let mut raw: RawConfig =
            toml::from_str(text).map_err(|e| check.error(toml_field(&e, text), e.to_string().trim_end()))?;
        if keys == KeyCreation::Never {
            raw.cluster.dev_keys = false;
        }
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        ClusterConfig::check(raw, path, &base, &check)
    }

    fn check(
        raw: RawConfig,
        path: &Path,
        base: &Path,
        check: &Checker<'_>,
    ) -> Result<ClusterConfig, ConfigError> {
        let keys_dir = raw.cluster.keys_dir.as_ref().map(|dir| base.join(dir));
        let dev_keys = raw.cluster.dev_keys;
        let raw_replicas = raw
            .replicas
            .ok_or_else(|| check.error("[[replica]]", "missing section: a cluster needs replicas"))?;
        let raw_clients = raw
            .clients
            .ok_or_else(|| check.error("[[client]]", "missing section: list at least one client"))?;
        let n = raw_replicas.len();
        if n == 0 {
            return Err(check.error("[[replica]]", "no replicas listed"));
        }
        let most = (n - 1) / 3;
        let f = raw.cluster.f.unwrap_or(most);
        if n < 3 * f + 1 {
            return Err(check
                .error("cluster.f", format!("f = {f} needs n ≥ 3f+1 = {} replicas, found {n}", 3 * f + 1)));
        }
        raw.protocol.validate_for(n).map_err(|e| check.error(format!("protocol.{}", e.field), e.problem))?;
        let mut replicas: Vec<Option<ReplicaEntry>> = vec![None; n];
        let mut addresses: BTreeMap<SocketAddr, u32> = BTreeMap::new();
        let mut metrics_addresses: BTreeMap<SocketAddr, u32> = BTreeMap::new();
        let mut owners: BTreeMap<PublicKey, String> = BTreeMap::new();
        for (index, entry) in raw_replicas.iter().enumerate() {
            let field = format!("replica[{index}]");
            let id = entry.id;
            let slot = replicas.get_mut(id as usize).ok_or_else(|| {
                check.error(
                    format!("{field}.id"),
                    format!("{id} is out of range: ids run from 0 to {}", n - 1),
                )
            })?;
            if slot.is_some() {
                return Err(check.error(format!("{field}.id"), format!("duplicate id {id}")));
            }
            let address_text = entry.address.as_deref().ok_or_else(|| {
                check.error(format!("{field}.address"), "missing: where does the replica listen?")
            })?;
            let address =
                parse_address(address_text).map_err(|p| check.error(format!("{field}.address"), p))?;
            if let Some(other) = addresses.insert(address, id) {
                return Err(check.error(
                    format!("{field}.address"),
                    format!("{address} is also replica {other}'s address"),
                ));
            }
            let metrics_address = match entry.metrics_address.as_deref() {
                None => None,
                Some(text) => {
                    let metrics = parse_address(text)
                        .map_err(|p| check.error(format!("{field}.metrics_address"), p))?;
                    if let Some(other) = metrics_addresses.insert(metrics, id) {
                        return Err(check.error(
                            format!("{field}.metrics_address"),
                            format!("{metrics} is also replica {other}'s metrics address"),
                        ));
                    }
                    Some(metrics)
                }
            };
            let default_file = keys_dir.as_ref().map(|dir| dir.join(format!("replica-{id}.key")));
            let (key, key_file) = resolve_key(entry, base, default_file, dev_keys, &field, check)?;
            claim_key(&mut owners, key, &field, check)?;
            *slot = Some(ReplicaEntry {
                id: ReplicaId(id),
                address,
                key,
                key_file,
                metrics_address,
                request_traces: entry.request_traces.unwrap_or(true),
            });
        }
        let replicas: Vec<ReplicaEntry> = replicas.into_iter().flatten().collect();
        let mut clients: BTreeMap<u64, ClientEntry> = BTreeMap::new();
        for (index, entry) in raw_clients.iter().enumerate() {
            let field = format!("client[{index}]");
            if entry.address.is_some() {
                return Err(
                    check.error(format!("{field}.address"), "clients do not listen; remove the address")
                );
            }
            if entry.metrics_address.is_some() {
                return Err(check.error(
                    format!("{field}.metrics_address"),
                    "only replicas serve metrics; remove the address",
                ));
            }
            if entry.request_traces.is_some() {
                return Err(check.error(
                    format!("{field}.request_traces"),
                    "only replicas keep request traces; remove the field",
                ));
            }
            if clients.contains_key(&entry.id) {
                return Err(check.error(format!("{field}.id"), format!("duplicate id {}", entry.id)));
            }
            let default_file = keys_dir.as_ref().map(|dir| dir.join(format!("client-{}.key", entry.id)));
            let (key, key_file) = resolve_key(entry, base, default_file, dev_keys, &field, check)?;
            claim_key(&mut owners, key, &field, check)?;
            clients.insert(entry.id, ClientEntry { id: ClientId(entry.id), key, key_file });
        }
        if clients.is_empty() {
            return Err(check.error("[[client]]", "no clients listed"));
        }
        let mut traitors = Vec::new();
        for (index, entry) in raw.traitors.iter().enumerate() {
            let field = format!("traitor[{index}]");
            if entry.replica as usize >= n {
                return Err(check.error(
                    format!("{field}.replica"),
                    format!("no replica {} in this cluster", entry.replica),
                ));
            }
            if traitors.iter().any(|t: &TraitorEntry| t.replica.0 == entry.replica) {
                return Err(check.error(
                    format!("{field}.replica"),
                    format!("replica {} is listed twice", entry.replica),
                ));
            }
            let behavior = entry
                .behavior
                .parse()
                .map_err(|e| check.error(format!("{field}.behavior"), format!("{e}")))?;
            traitors.push(TraitorEntry { replica: ReplicaId(entry.replica), behavior });
        }
        if let Some(first) = traitors.first().filter(|_| !raw.cluster.demonstration) {
            return Err(check.error(
                "traitor[0]",
                format!(
                    "a [[traitor]] makes replica {} attack its own cluster; that is for demonstrations \
                     only: set `demonstration = true` in [cluster] to run one",
                    first.replica.0
                ),
            ));
        }
        let name = raw.cluster.name.unwrap_or_else(|| {
            path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "cluster".into())
        });
        let client_retry_ms =
            raw.cluster.client_retry_ms.unwrap_or(raw.protocol.view_change_timeout_ms / 2).max(1);
        Ok(ClusterConfig {
            path: path.to_path_buf(),
            name,
            f,
            protocol: raw.protocol,
            replicas,
            clients: clients.into_values().collect(),
            traitors,
            client_retry_ms,
            app: raw.cluster.app,
            storage: StorageConfig {
                data_dir: base.join(raw.storage.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))),
                sync: raw.storage.sync.unwrap_or(true),
            },
        })
    }

    /// Where replica `id` keeps its durable log: `replica-<id>` in the data directory.
    pub fn data_dir(&self, id: ReplicaId) -> PathBuf {
        self.storage.data_dir.join(format!("replica-{}", id.0))
    }

    /// The number of replicas.
    pub fn n(&self) -> usize {
        self.replicas.len()
    }

    /// Every replica's address and key, in id order, for the transport.
    pub fn replica_addresses(&self) -> Vec<ReplicaAddress> {
        self.replicas.iter().map(|r| ReplicaAddress { key: r.key, address: r.address }).collect()
    }

    /// How a client of this cluster talks to it: its retry timeout, its
    /// window (`max_pending_per_client`) and the request and result size limits.
    pub fn client_options(&self) -> pbft_net::ClientOptions {
        pbft_net::ClientOptions {
            max_request_bytes: self.protocol.max_request_bytes,
            max_result_bytes: self.protocol.max_result_bytes,
            ..pbft_net::ClientOptions::new(self.client_retry_ms, self.protocol.max_pending_per_client)
        }
    }

    /// Every client's id and key.
    pub fn client_keys(&self) -> Vec<(ClientId, PublicKey)> {
        self.clients.iter().map(|c| (c.id, c.key)).collect()
    }

    /// The key book every replica verifies with.
    pub fn key_book(&self) -> Result<KeyBook, ConfigError> {
        let replicas: Vec<PublicKey> = self.replicas.iter().map(|r| r.key).collect();
        KeyBook::new(&replicas, self.client_keys()).map_err(|e| self.error("[[replica]]", e.to_string()))
    }

    /// Replica `id`'s secret key, from its key file.
    pub fn replica_secret(&self, id: ReplicaId) -> Result<SecretKey, ConfigError> {
        let field = format!("replica[{}]", id.0);
        let entry =
            self.replicas.get(id.index()).ok_or_else(|| self.error("--id", format!("no replica {id}")))?;
        self.secret(entry.key_file.as_deref(), entry.key, &field)
    }

    /// Client `id`'s secret key, from its key file.
    pub fn client_secret(&self, id: ClientId) -> Result<SecretKey, ConfigError> {
        let entry = self
            .clients
            .iter()
            .find(|c| c.id == id)
            .ok_or_else(|| self.error("--client", format!("no {id} in the config")))?;
        self.secret(entry.key_file.as_deref(), entry.key, &format!("client (id {})", id.0))
    }

    /// The traitor behaviour of replica `id`, if it has one.
    pub fn traitor(&self, id: ReplicaId) -> Option<Behavior> {
        self.traitors.iter().find(|t| t.replica == id).map(|t| t.behavior)
    }

    fn secret(&self, file: Option<&Path>, key: PublicKey, field: &str) -> Result<SecretKey, ConfigError> {
        let file = file.ok_or_else(|| {
            self.error(format!("{field}.key_file"), "no key file: this machine lacks the secret key")
        })?;
        let secret =
            keyfile::read_secret(file).map_err(|e| self.error(format!("{field}.key_file"), e.to_string()))?;
        if secret.public() != key {
            return Err(self.error(format!("{field}.key_file"), "holds a key that does not match public_key"));
        }
        Ok(secret)
    }

    fn error(&self, field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
        Checker { file: &self.path }.error(field, problem)
    }
}

/// The field a TOML error is about: its name when the parser gives one,
/// otherwise the line it is on.
fn toml_field(error: &toml::de::Error, text: &str) -> String {
    let message = error.message();
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next())
        .filter(|name| !name.is_empty());
    // An empty key (`'' = 1`) names nothing: its line does.
    if let Some(name) = named {
        return name.to_string();
    }
    match error.span() {
        Some(span) => format!("line {}", text.get(..span.start).unwrap_or(text).lines().count().max(1)),
        None => "(file)".to_string(),
    }
}

fn parse_address(text: &str) -> Result<SocketAddr, String> {
    let (_, port) = text.rsplit_once(':').ok_or_else(|| format!("`{text}` is not ip:port"))?;
    match port.parse::<u32>() {
        Ok(0) => return Err("port 0 is out of range 1-65535".into()),
        Ok(port) if port > 65_535 => return Err(format!("port {port} is out of range 1-65535")),
        Ok(_) => {}
        Err(_) => return Err(format!("`{port}` is not a port number")),
    }
    text.parse().map_err(|_| format!("`{text}` is not ip:port (use an IP address, not a host name)"))
}

fn resolve_key<Id>(
    entry: &RawParticipant<Id>,
    base: &Path,
    default_file: Option<PathBuf>,
    dev_keys: bool,
    field: &str,
    check: &Checker<'_>,
) -> Result<(PublicKey, Option<PathBuf>), ConfigError> {
    let listed = match &entry.public_key {
        Some(hex) => Some(PublicKey(keyfile::parse_hex32(hex.trim()).ok_or_else(|| {
            check.error(format!("{field}.public_key"), format!("`{hex}` is not 64 hex digits"))
        })?)),
        None => None,
    };
    let file = entry.key_file.as_ref().map(|f| base.join(f)).or(default_file);
    let key_error = |e: KeyFileError| check.error(format!("{field}.key_file"), e.to_string());
    let from_file = match (&file, listed) {
        (Some(file), _) if dev_keys => Some(keyfile::read_or_create_secret(file).map_err(key_error)?),
        (Some(file), None) => Some(keyfile::read_secret(file).map_err(key_error)?),
        (Some(file), Some(_)) if file.exists() => Some(keyfile::read_secret(file).map_err(key_error)?),
        _ => None,
    };
    let key = match (listed, &from_file) {
        (Some(listed), Some(secret)) if secret.public() != listed => {
            return Err(check.error(format!("{field}.public_key"), "does not match the key in key_file"));
        }
        (Some(listed), _) => listed,
        (None, Some(secret)) => secret.public(),
        (None, None) => {
            return Err(check.error(
                format!("{field}.public_key"),
                "missing: give public_key, key_file or cluster.keys_dir",
            ));
        }
    };
    if pbft_core::KeyBook::new(&[key], []).is_err() {
        return Err(check.error(format!("{field}.public_key"), "is not a valid ed25519 public key"));
    }
    let own_file = if from_file.is_some() { file } else { None };
    Ok((key, own_file))
}

fn claim_key(
    owners: &mut BTreeMap<PublicKey, String>,
    key: PublicKey,
    field: &str,
    check: &Checker<'_>,
) -> Result<(), ConfigError> {
    if let Some(other) = owners.insert(key, field.to_string()) {
        return Err(check.error(format!("{field}.public_key"), format!("the same key as {other}")));
    }
    Ok(())
}
