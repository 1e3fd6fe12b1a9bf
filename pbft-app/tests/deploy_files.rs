//! The deployment files agree with what `pbft init` writes:
//! `deploy/docker/compose.yaml` runs, for each replica id, a container at the
//! address and ports the config gives that replica, with the config folder
//! its header's `pbft init` command writes mounted where its services look.
//!
//! The compose file is read by a small line scanner, not a YAML parser (the
//! workspace has none): it knows the file's own layout (services two spaces
//! in, `command:` and `expose:` as flow lists, `ipv4_address:` and
//! `volumes:` items on lines of their own) and fails, naming the line
//! shape, when that layout changes, rather than skipping what it cannot
//! read.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns; a panic is a failed test

mod support;

use pbft_app::cluster_config::ClusterConfig;
use std::net::Ipv4Addr;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use support::{pbft, TempDir};

/// The repository's root (this crate is one folder below it).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Where the compose file lives, relative to the repository's root.
const COMPOSE: &str = "deploy/docker/compose.yaml";

/// One service of the compose file, as the scanner reads it.
#[derive(Debug, Default)]
struct Service {
    name: String,
    command: Vec<String>,
    ipv4_address: Option<Ipv4Addr>,
    expose: Vec<String>,
    volumes: Vec<String>,
}

impl Service {
    /// The value after `flag` in the service's command.
    fn arg(&self, flag: &str) -> &str {
        let at = self.command.iter().position(|a| a == flag);
        let value = at.and_then(|i| self.command.get(i + 1));
        value.unwrap_or_else(|| {
            panic!("service {}: no `{flag} VALUE` in its command {:?}", self.name, self.command)
        })
    }

    /// The service's address on the cluster network.
    fn address(&self) -> Ipv4Addr {
        self.ipv4_address.unwrap_or_else(|| panic!("service {}: no ipv4_address", self.name))
    }
}

/// The compose file as the tests need it.
#[derive(Debug)]
struct Compose {
    /// The arguments of the `pbft init` command in the header comment.
    init_args: Vec<String>,
    /// The services, in file order.
    services: Vec<Service>,
    /// The cluster network's subnet: its address and prefix length.
    subnet: (Ipv4Addr, u32),
}

/// `[ "a", "b" ]` (a flow list of quoted strings) as its items.
fn flow_list(text: &str, line: &str) -> Vec<String> {
    let inner = text
        .trim()
        .strip_prefix('[')
        .and_then(|t| t.split_once(']'))
        .map(|(items, _)| items)
        .unwrap_or_else(|| panic!("{COMPOSE}: expected a flow list `[\"..\", ..]` in `{line}`"));
    inner.split(',').map(|item| item.trim().trim_matches('"').to_string()).collect()
}

fn scan(text: &str) -> Compose {
    let mut init_args = None;
    let mut services: Vec<Service> = Vec::new();
    let mut subnet = None;
    let mut section = "";
    let mut in_volumes = false;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let content = line.trim();
        if let Some(comment) = content.strip_prefix('#') {
            if let Some((_, args)) = comment.split_once("pbft init ") {
                assert!(init_args.is_none(), "{COMPOSE}: two `pbft init` commands in comments");
                init_args = Some(args.split_whitespace().map(str::to_string).collect::<Vec<_>>());
            }
            continue;
        }
        if content.is_empty() {
            continue;
        }
        if indent == 0 {
            section = content.split(':').next().unwrap_or("");
            continue;
        }
        if let Some(value) = content.strip_prefix("- subnet:") {
            let (address, prefix) = value.trim().split_once('/').expect("subnet is address/prefix");
            subnet = Some((address.parse().unwrap(), prefix.parse().unwrap()));
        }
        if section != "services" {
            continue;
        }
        if indent == 2 {
            let name =
                content.strip_suffix(':').unwrap_or_else(|| panic!("{COMPOSE}: a service line `{line}`"));
            services.push(Service { name: name.to_string(), ..Service::default() });
            in_volumes = false;
            continue;
        }
        let service = services.last_mut().expect("a service");
        if indent == 4 {
            in_volumes = content == "volumes:";
        }
        if let Some(value) = content.strip_prefix("command:") {
            service.command = flow_list(value, line);
        } else if let Some(value) = content.strip_prefix("expose:") {
            let value = value.split('#').next().unwrap_or("");
            service.expose = flow_list(value, line);
        } else if let Some(value) = content.strip_prefix("ipv4_address:") {
            service.ipv4_address = Some(value.trim().parse().unwrap_or_else(|e| panic!("`{line}`: {e}")));
        } else if let (true, Some(item)) = (in_volumes, content.strip_prefix("- ")) {
            service.volumes.push(item.trim().to_string());
        }
    }
    Compose {
        init_args: init_args.unwrap_or_else(|| panic!("{COMPOSE}: no `pbft init` command in its comments")),
        services,
        subnet: subnet.unwrap_or_else(|| panic!("{COMPOSE}: no `- subnet:` for the cluster network")),
    }
}

fn compose() -> Compose {
    let text = std::fs::read_to_string(repo_root().join(COMPOSE)).unwrap();
    let compose = scan(&text);
    assert!(!compose.services.is_empty(), "{COMPOSE}: no services found");
    compose
}

/// The value after `flag` in the header's `pbft init` command.
fn init_arg<'a>(compose: &'a Compose, flag: &str) -> &'a str {
    let at = compose.init_args.iter().position(|a| a == flag);
    at.and_then(|i| compose.init_args.get(i + 1)).unwrap_or_else(|| {
        panic!("{COMPOSE}: its `pbft init` has no `{flag} VALUE`: {:?}", compose.init_args)
    })
}

/// Runs the header's `pbft init` command with its `--dir` replaced by a
/// scratch folder, and loads what it wrote.
fn init_as_documented(compose: &Compose, scratch: &TempDir) -> ClusterConfig {
    let dir = scratch.0.join("cluster");
    let mut args = compose.init_args.clone();
    let at = args.iter().position(|a| a == "--dir").expect("the documented init has --dir") + 1;
    args[at] = dir.to_str().unwrap().to_string();
    let output = pbft().arg("init").args(&args).stdout(Stdio::null()).output().unwrap();
    assert!(output.status.success(), "pbft init {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    ClusterConfig::load(&dir.join("cluster.toml")).unwrap()
}

/// `path` with `.` and `dir/..` removed, without asking the file system.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Every service of compose.yaml has, for its `--id N`, the address and
/// ports that the `pbft init` command in the file's header gives replica N;
/// that command's `--hosts` are the services' addresses in service order;
/// the ids are 0..n, each once; and every address lies in the network's
/// subnet. Changing any `ipv4_address:` (or the header's `--hosts`, or a
/// service's `--id`) in compose.yaml without the other fails this test.
#[test]
fn compose_services_have_the_addresses_and_ports_the_documented_init_gives_them() {
    let compose = compose();
    let addresses: Vec<String> = compose.services.iter().map(|s| s.address().to_string()).collect();
    assert_eq!(
        init_arg(&compose, "--hosts").split(',').collect::<Vec<_>>(),
        addresses,
        "the header's `pbft init --hosts` and the services' ipv4_address lines, in service order"
    );
    let scratch = TempDir::new("compose-init");
    let config = init_as_documented(&compose, &scratch);
    assert_eq!(config.n(), compose.services.len(), "one service per replica");
    let (network, prefix) = compose.subnet;
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    let mut ids = Vec::new();
    for service in &compose.services {
        let id: usize = service.arg("--id").parse().unwrap();
        let replica = config.replicas.get(id).unwrap_or_else(|| panic!("{}: no replica {id}", service.name));
        assert_eq!(
            replica.address.ip(),
            std::net::IpAddr::V4(service.address()),
            "service {} runs replica {id}: its ipv4_address is not the config's address for it",
            service.name
        );
        assert_eq!(
            u32::from(service.address()) & mask,
            u32::from(network) & mask,
            "{} outside the subnet",
            service.name
        );
        let mut ports = vec![format!("{}/udp", replica.address.port())];
        if let Some(metrics) = replica.metrics_address {
            assert_eq!(metrics.ip(), replica.address.ip(), "replica {id} serves metrics on its own address");
            ports.push(format!("{}/tcp", metrics.port()));
        }
        assert_eq!(service.expose, ports, "service {}: expose, against the config's ports", service.name);
        ids.push(id);
    }
    ids.sort_unstable();
    assert_eq!(ids, (0..config.n()).collect::<Vec<_>>(), "every replica id runs once");
}

/// Every service reads its config at the path that the folder written by
/// the header's `pbft init --dir` is mounted on (the mount's source,
/// relative to compose.yaml, is that `--dir`, relative to the repository's
/// root), read-only, and keeps its data (`--data-dir`) in a named volume of
/// its own.
#[test]
fn compose_mounts_the_folder_init_writes_where_its_services_read_their_config() {
    let compose = compose();
    let init_dir = lexical(&repo_root().join(init_arg(&compose, "--dir")));
    let compose_dir = repo_root().join(COMPOSE).parent().unwrap().to_path_buf();
    let mut data_volumes = Vec::new();
    for service in &compose.services {
        assert_eq!(service.command.first().map(String::as_str), Some("replica"), "{}", service.name);
        let config = Path::new(service.arg("--config"));
        assert_eq!(config.file_name().unwrap(), "cluster.toml", "pbft init writes DIR/cluster.toml");
        let mount = config.parent().unwrap().to_str().unwrap();
        let source = service
            .volumes
            .iter()
            .find_map(|v| v.strip_suffix(&format!(":{mount}:ro")))
            .unwrap_or_else(|| panic!("service {}: nothing mounted read-only at {mount}", service.name));
        assert_eq!(
            lexical(&compose_dir.join(source)),
            init_dir,
            "service {}: the folder mounted at {mount} is not the one `pbft init --dir` writes",
            service.name
        );
        let data = service.arg("--data-dir");
        let volume =
            service.volumes.iter().find_map(|v| v.strip_suffix(&format!(":{data}"))).unwrap_or_else(|| {
                panic!("service {}: nothing mounted at its --data-dir {data}", service.name)
            });
        assert!(!volume.starts_with(['.', '/']), "service {}: {volume} is not a named volume", service.name);
        data_volumes.push(volume.to_string());
    }
    let mut distinct = data_volumes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), data_volumes.len(), "replicas share a data volume: {data_volumes:?}");
}
