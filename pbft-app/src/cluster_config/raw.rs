//! The config file as TOML holds it, before any check: what
//! [`ClusterConfig::load`](super::ClusterConfig::load) parses and what
//! [`NewCluster::to_toml`](super::NewCluster::to_toml) renders, so that the
//! two cannot disagree about the format. Fields left out of the file are
//! `None` (or empty, or the default) here, and are left out when rendered.

use super::AppKind;
use pbft_core::ProtocolConfig;
use serde::{Deserialize, Serialize, Serializer};
use std::path::PathBuf;

/// The whole file.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) cluster: RawCluster,
    /// Rendered with only the parameters that differ from the defaults, so
    /// a file written with the defaults keeps following them.
    #[serde(default, serialize_with = "changed_parameters")]
    pub(super) protocol: ProtocolConfig,
    #[serde(default, rename = "replica", skip_serializing_if = "Option::is_none")]
    pub(super) replicas: Option<Vec<RawParticipant<u32>>>,
    #[serde(default, rename = "client", skip_serializing_if = "Option::is_none")]
    pub(super) clients: Option<Vec<RawParticipant<u64>>>,
    #[serde(default, rename = "traitor", skip_serializing_if = "Vec::is_empty")]
    pub(super) traitors: Vec<RawTraitor>,
    #[serde(default, skip_serializing_if = "RawStorage::is_default")]
    pub(super) storage: RawStorage,
}

/// `[storage]`.
#[derive(Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) sync: Option<bool>,
}

impl RawStorage {
    fn is_default(&self) -> bool {
        self.data_dir.is_none() && self.sync.is_none()
    }
}

/// `[cluster]`.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) f: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) keys_dir: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) dev_keys: bool,
    /// Marks a config made to show an attack: only then may it list traitors.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) demonstration: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) client_retry_ms: Option<u64>,
    #[serde(default)]
    pub(super) app: AppKind,
}

/// One `[[replica]]` (with a `u32` id) or `[[client]]` (with a `u64` id).
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawParticipant<Id> {
    pub(super) id: Id,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) public_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) key_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) metrics_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) request_traces: Option<bool>,
}

/// One `[[traitor]]`.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTraitor {
    pub(super) replica: u32,
    pub(super) behavior: String,
}

/// Serialises the parameters of `protocol` that differ from
/// [`ProtocolConfig::default`], as a table.
fn changed_parameters<S: Serializer>(protocol: &ProtocolConfig, serializer: S) -> Result<S::Ok, S::Error> {
    use serde::ser::Error;
    let given = toml::Table::try_from(protocol).map_err(S::Error::custom)?;
    let defaults = toml::Table::try_from(ProtocolConfig::default()).map_err(S::Error::custom)?;
    let changed: toml::Table =
        given.into_iter().filter(|(name, value)| defaults.get(name) != Some(value)).collect();
    changed.serialize(serializer)
}
