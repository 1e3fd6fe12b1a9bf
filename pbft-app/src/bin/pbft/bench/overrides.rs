//! `pbft bench --local --protocol NAME=VALUE` (and `--metrics-base-port`,
//! `--no-request-traces`): the config the local cluster runs, with protocol
//! parameters changed, metrics addresses set and request traces turned off,
//! leaving the file itself alone.

use anyhow::Context;
use std::path::{Path, PathBuf};

/// A copy of a cluster config with protocol parameters changed, in the
/// temporary directory; removed when dropped.
pub struct Overridden {
    /// Where the copy is.
    pub path: PathBuf,
}

impl Overridden {
    /// Writes `original` with every `NAME=VALUE` of `overrides` set in its
    /// `[protocol]` table, replica i's `metrics_address` at port
    /// `metrics_base_port + i` of its own IP (if given), `request_traces`
    /// set in every replica's entry, and its relative key paths made
    /// absolute so they still resolve from the copy's directory.
    pub fn write(
        original: &Path,
        overrides: &[String],
        metrics_base_port: Option<u16>,
        request_traces: bool,
    ) -> anyhow::Result<Overridden> {
        let text = std::fs::read_to_string(original)
            .with_context(|| format!("cannot read {}", original.display()))?;
        let mut table: toml::Table =
            text.parse().with_context(|| format!("{} is not valid TOML", original.display()))?;
        let base = std::fs::canonicalize(original)?.parent().map(Path::to_path_buf).unwrap_or_default();
        let absolute = |value: &mut toml::Value| {
            if let Some(relative) = value.as_str() {
                *value = toml::Value::String(base.join(relative).display().to_string());
            }
        };
        if let Some(dir) = table.get_mut("cluster").and_then(|c| c.get_mut("keys_dir")) {
            absolute(dir);
        }
        for section in ["replica", "client"] {
            let entries = table.get_mut(section).and_then(toml::Value::as_array_mut);
            for entry in entries.into_iter().flatten() {
                if let Some(file) = entry.get_mut("key_file") {
                    absolute(file);
                }
            }
        }
        if let Some(base_port) = metrics_base_port {
            let entries = table.get_mut("replica").and_then(toml::Value::as_array_mut);
            for (offset, entry) in (0u16..).zip(entries.into_iter().flatten()) {
                let ip = entry.get("address").and_then(toml::Value::as_str).and_then(|a| a.rsplit_once(':'));
                let ip = ip.map_or("127.0.0.1", |(ip, _)| ip).to_string();
                let port =
                    base_port.checked_add(offset).context("--metrics-base-port: the ports do not fit")?;
                if let Some(entry) = entry.as_table_mut() {
                    entry.insert("metrics_address".into(), toml::Value::String(format!("{ip}:{port}")));
                }
            }
        }
        if !request_traces {
            let entries = table.get_mut("replica").and_then(toml::Value::as_array_mut);
            for entry in entries.into_iter().flatten().filter_map(toml::Value::as_table_mut) {
                entry.insert("request_traces".into(), toml::Value::Boolean(false));
            }
        }
        let protocol = table
            .entry("protocol")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .context("[protocol] in the config is not a table")?;
        for assignment in overrides {
            let (name, value) = assignment
                .split_once('=')
                .with_context(|| format!("--protocol {assignment}: expected NAME=VALUE"))?;
            let value: i64 = value
                .trim()
                .parse()
                .with_context(|| format!("--protocol {assignment}: the value must be a whole number"))?;
            protocol.insert(name.trim().to_string(), toml::Value::Integer(value));
        }
        let path = std::env::temp_dir().join(format!("pbft-bench-{}.toml", std::process::id()));
        std::fs::write(&path, toml::to_string(&table)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Overridden { path })
    }
}

impl Drop for Overridden {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
