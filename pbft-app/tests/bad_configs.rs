//! Issue 6, test 5: every wrong config is refused by the binary with a
//! non-zero exit code and a message that names the field at fault.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns; a panic is a failed test

mod support;

use pbft_app::keyfile::public_key_hex;
use pbft_core::SecretKey;
use support::{pbft, scratch};

fn key(seed: u8) -> String {
    public_key_hex(&SecretKey::from_seed([seed; 32]).public())
}

fn replica(id: u32, port: u32, seed: u8) -> String {
    format!("[[replica]]\nid = {id}\naddress = \"127.0.0.1:{port}\"\npublic_key = \"{}\"\n\n", key(seed))
}

fn client(id: u32, seed: u8) -> String {
    format!("[[client]]\nid = {id}\npublic_key = \"{}\"\n\n", key(seed))
}

/// A valid four-replica config with one client, public keys only.
fn valid() -> String {
    let mut text = String::from("[cluster]\nname = \"t\"\nf = 1\n\n");
    for id in 0..4 {
        text.push_str(&replica(id, 9000 + id, id as u8 + 1));
    }
    text + &client(0, 50)
}

#[test]
fn the_valid_base_config_is_accepted() {
    let dir = scratch("good-config");
    let path = dir.join("good.toml");
    std::fs::write(&path, valid()).unwrap();
    let output = pbft().args(["check", "--config"]).arg(&path).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Issue 21, point 7: a config may list traitors only when it says it is a
/// demonstration; then it loads (the refusal is in the table below).
#[test]
fn a_demonstration_config_may_list_traitors() {
    let dir = scratch("demonstration-config");
    let path = dir.join("demo.toml");
    let text = valid().replace("[cluster]\n", "[cluster]\ndemonstration = true\n")
        + "[[traitor]]\nreplica = 3\nbehavior = \"silent\"\n";
    std::fs::write(&path, text).unwrap();
    let output = pbft().args(["check", "--config"]).arg(&path).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn bad_configs_are_refused_naming_the_field() {
    let cases: Vec<(&str, String, &str)> = vec![
        ("n < 3f+1", valid().replace("f = 1", "f = 2"), "cluster.f"),
        // Found by the config fuzz target: an empty key used to be named
        // as the empty field.
        ("an empty key", format!("''=''\n{}", valid()), ".toml: line 1: TOML parse error"),
        ("duplicate id", valid().replace("id = 3\n", "id = 1\n"), "replica[3].id"),
        ("id out of range", valid().replace("id = 3\n", "id = 7\n"), "replica[3].id"),
        ("duplicate address", valid().replace(":9003", ":9001"), "replica[3].address"),
        ("port out of range", valid().replace(":9002", ":70000"), "replica[2].address"),
        ("port zero", valid().replace(":9002", ":0"), "replica[2].address"),
        (
            "host name instead of ip",
            valid().replace("127.0.0.1:9001", "localhost:9001"),
            "replica[1].address",
        ),
        (
            "unreadable key file",
            valid().replace(&format!("public_key = \"{}\"", key(1)), "key_file = \"no-such.key\""),
            "replica[0].key_file",
        ),
        ("malformed public key", valid().replace(&key(2), "abc"), "replica[1].public_key"),
        ("duplicate key", valid().replace(&key(3), &key(1)), "replica[2].public_key"),
        ("client reuses a replica key", valid().replace(&key(50), &key(4)), "client[0].public_key"),
        (
            "unknown traitor behaviour",
            valid() + "[[traitor]]\nreplica = 3\nbehavior = \"equivocat\"\n",
            "traitor[0].behavior",
        ),
        (
            "traitor replica out of range",
            valid() + "[[traitor]]\nreplica = 9\nbehavior = \"silent\"\n",
            "traitor[0].replica",
        ),
        (
            "a traitor in a config that is not a demonstration",
            valid() + "[[traitor]]\nreplica = 3\nbehavior = \"silent\"\n",
            "traitor[0]: a [[traitor]] makes replica 3 attack its own cluster",
        ),
        (
            "request traces on a client",
            valid().replace(
                &client(0, 50),
                &(client(0, 50).trim_end().to_string() + "\nrequest_traces = false\n"),
            ),
            "client[0].request_traces",
        ),
        (
            "request traces not a boolean",
            valid().replace("id = 0\naddress", "id = 0\nrequest_traces = \"no\"\naddress"),
            "request_traces",
        ),
        ("missing [cluster] section", valid().replace("[cluster]\nname = \"t\"\nf = 1\n", ""), "cluster"),
        ("missing [[replica]] section", "[cluster]\nf = 0\n\n".to_string() + &client(0, 50), "[[replica]]"),
        ("missing [[client]] section", valid().replace(&client(0, 50), ""), "[[client]]"),
        (
            "misspelt field",
            valid().replace("address = \"127.0.0.1:9000\"", "adress = \"127.0.0.1:9000\""),
            "adress",
        ),
        (
            "bad protocol parameter",
            valid() + "[protocol]\ncheckpoint_interval = 0\n",
            "protocol.checkpoint_interval",
        ),
        ("unknown protocol parameter", valid() + "[protocol]\nbatch_size = 10\n", "batch_size"),
    ];
    assert!(cases.len() >= 10);
    let dir = scratch("bad-configs");
    let mut failures = Vec::new();
    for (index, (what, text, field)) in cases.iter().enumerate() {
        let path = dir.join(format!("case-{index}.toml"));
        std::fs::write(&path, text).unwrap();
        let output = pbft().args(["check", "--config"]).arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() || !stderr.contains(field) {
            failures
                .push(format!("{what}: exit {:?}, expected `{field}` in: {stderr}", output.status.code()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A key file is read only up to a few KiB: a path to a device that never
/// ends (or a huge file) is refused naming the field, not read whole.
#[test]
fn a_key_file_that_never_ends_is_refused_naming_the_field() {
    use std::io::Read;
    let dir = scratch("endless-key-file");
    let path = dir.join("endless.toml");
    let text = valid().replace(&format!("public_key = \"{}\"", key(1)), "key_file = \"/dev/zero\"");
    std::fs::write(&path, text).unwrap();
    let mut child = pbft()
        .args(["check", "--config"])
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("pbft check was still reading /dev/zero after 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("replica[0].key_file"), "{stderr}");
}

/// `ClusterConfig::check_text` (the fuzzer's entry) has no side effects:
/// with `dev_keys` it refuses a missing key file where `load` creates it.
#[test]
fn checking_config_text_never_creates_a_key_file() {
    use pbft_app::cluster_config::ClusterConfig;
    let dir = scratch("check-text-no-keys");
    let path = dir.join("dev.toml");
    let text = valid()
        .replace("[cluster]\n", "[cluster]\ndev_keys = true\nkeys_dir = \"keys\"\n")
        .lines()
        .filter(|line| !line.starts_with("public_key"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&path, &text).unwrap();
    let error = ClusterConfig::check_text(&text, &path).unwrap_err();
    assert_eq!(error.field, "replica[0].key_file", "{error}");
    assert!(!dir.join("keys").exists(), "check_text created a key folder");
    ClusterConfig::load(&path).unwrap();
    assert!(dir.join("keys/replica-0.key").exists(), "load creates the dev key");
}
