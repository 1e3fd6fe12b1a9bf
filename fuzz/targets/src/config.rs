//! The cluster config parser and checker (`ClusterConfig::check_text`),
//! fed any text.
//!
//! The config is read as if from a folder that does not exist, so relative
//! key paths name no file, and `check_text` never creates one.
//!
//! Properties: checking never panics; every refusal names a field; every
//! config accepted keeps the framework's promises: n ≥ 3f+1, replica ids
//! 0..n each once, protocol parameters valid for n, each traitor a distinct
//! replica of the cluster.

use pbft_app::cluster_config::ClusterConfig;
use std::path::Path;

/// Where the fuzzed config claims to live.
const PATH: &str = "/nonexistent-pbft-fuzz/cluster.toml";

/// Runs one input: the text of a config file (invalid UTF-8 replaced).
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match ClusterConfig::check_text(&text, Path::new(PATH)) {
        Err(error) => {
            assert!(!error.field.is_empty(), "a refusal names no field: {error}");
            assert!(!error.problem.is_empty(), "a refusal says nothing: {error}");
        }
        Ok(config) => {
            let n = config.n();
            assert!(n > 3 * config.f, "accepted n = {n} with f = {}", config.f);
            for (index, replica) in config.replicas.iter().enumerate() {
                assert_eq!(replica.id.0 as usize, index, "replica ids out of order");
            }
            assert!(
                config.protocol.validate_for(n).is_ok(),
                "accepted protocol parameters invalid for n = {n}"
            );
            let traitors: std::collections::BTreeSet<u32> =
                config.traitors.iter().map(|t| t.replica.0).collect();
            assert_eq!(traitors.len(), config.traitors.len(), "a replica is a traitor twice");
            assert!(traitors.iter().all(|&t| (t as usize) < n), "a traitor names no replica");
        }
    }
}
