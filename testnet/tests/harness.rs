//! The test network itself: its links delay and drop what they should, its
//! cuts cut one direction, and it leaves no namespace behind.
//!
//! Like the scenarios, these need root, `ip` and `iptables`; without them
//! each reports itself `SKIPPED <name>: <why>`, and fails instead when
//! `PBFT_REQUIRE_TESTNET` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is a failed test

use pbft_testnet::namespace::{self, PREFIX};
use pbft_testnet::thread::on_host;
use pbft_testnet::{Link, NetError, Testnet};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// A network of `hosts` hosts, or `None` after saying why it cannot be built.
fn testnet(name: &str, hosts: usize) -> Option<Testnet> {
    match Testnet::new(hosts) {
        Ok(net) => Some(net),
        Err(NetError::Unsupported(why)) => {
            pbft_testnet::net::skip_unless_required(name, &why);
            None
        }
        Err(error) => panic!("{name}: {error:#}"),
    }
}

/// Starts a UDP echo on host 1, port 9000, for `packets` datagrams.
fn echo_on_host_1(net: &Testnet) -> std::thread::JoinHandle<anyhow::Result<()>> {
    let address = SocketAddr::from((net.address(1), 9000));
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let handle = on_host(net, 1, "echo", move || async move {
        let socket = tokio::net::UdpSocket::bind(address).await.expect("binding the echo");
        ready_tx.send(()).expect("signalling the test");
        let mut buffer = [0u8; 64];
        while let Ok(Ok((len, from))) =
            tokio::time::timeout(Duration::from_secs(3), socket.recv_from(&mut buffer)).await
        {
            let _ = socket.send_to(&buffer[..len], from).await;
        }
    })
    .expect("starting the echo");
    ready.recv().expect("the echo started");
    handle
}

/// Sends `count` datagrams from host 0 to host 1's echo, one at a time,
/// and returns the round-trip times of those answered within 500 ms.
fn round_trips(net: &Testnet, count: usize) -> Vec<Duration> {
    let target = SocketAddr::from((net.address(1), 9000));
    on_host(net, 0, "pinger", move || async move {
        let socket = UdpSocket::bind("0.0.0.0:0").expect("binding the pinger");
        socket.set_read_timeout(Some(Duration::from_millis(500))).expect("setting a timeout");
        let mut times = Vec::new();
        let mut buffer = [0u8; 64];
        for i in 0..count {
            let sent = Instant::now();
            socket.send_to(&(i as u64).to_le_bytes(), target).expect("sending");
            while let Ok(len) = socket.recv(&mut buffer) {
                if buffer[..len] == (i as u64).to_le_bytes() {
                    times.push(sent.elapsed());
                    break;
                }
            }
        }
        times
    })
    .expect("starting the pinger")
    .join()
    .expect("the pinger panicked")
    .expect("the pinger failed")
}

/// A link's delay is added one way (host 0 to 1 only), a cut drops one
/// direction silently, loss of 100 % drops everything, and healing restores it.
#[test]
fn links_delay_cut_and_lose_what_they_should() {
    let Some(mut net) = testnet("links_delay_cut_and_lose_what_they_should", 2) else { return };
    let echo = echo_on_host_1(&net);
    let fast = round_trips(&net, 5);
    assert_eq!(fast.len(), 5, "a perfect link lost datagrams");
    assert!(fast.iter().all(|rtt| *rtt < Duration::from_millis(20)), "a perfect link was slow: {fast:?}");

    net.set_link(0, 1, Link::wan(Duration::from_millis(40), Duration::ZERO, 0.0)).unwrap();
    let slow = round_trips(&net, 5);
    assert_eq!(slow.len(), 5, "a delaying link lost datagrams");
    assert!(
        slow.iter().all(|rtt| *rtt >= Duration::from_millis(39) && *rtt < Duration::from_millis(100)),
        "a 40 ms one-way link gave round trips of {slow:?}"
    );

    net.cut(1, 0).unwrap();
    assert!(round_trips(&net, 3).is_empty(), "answers crossed a cut link");
    net.uncut(1, 0).unwrap();
    let healed = round_trips(&net, 3);
    assert_eq!(healed.len(), 3, "the healed link still drops");
    assert!(
        healed.iter().all(|rtt| *rtt >= Duration::from_millis(39)),
        "healing a cut lost the delay: {healed:?}"
    );

    net.set_link(0, 1, Link::wan(Duration::ZERO, Duration::ZERO, 100.0)).unwrap();
    assert!(round_trips(&net, 3).is_empty(), "a link with 100 % loss delivered");
    net.set_link(0, 1, Link::default()).unwrap();
    assert_eq!(round_trips(&net, 3).len(), 3, "a perfect link again still drops");
    net.check_netems().unwrap();
    drop(net);
    echo.join().expect("the echo panicked").expect("the echo failed");
}

/// Dropping a network deletes every namespace it made, and a network left
/// behind by a process that no longer runs is deleted by the next one.
#[test]
fn no_namespace_outlives_its_network() {
    let Some(net) = testnet("no_namespace_outlives_its_network", 3) else { return };
    let ours: Vec<String> = (0..3).map(|i| net.namespace_name(i).to_string()).collect();
    assert!(namespaces().iter().any(|name| *name == ours[0]), "the network's namespace is not listed");
    drop(net);
    let left: Vec<String> = namespaces().into_iter().filter(|name| ours.contains(name)).collect();
    assert!(left.is_empty(), "namespaces left after the drop: {left:?}");

    // pid 0 never names a running test process.
    let orphan = format!("{PREFIX}0-0-0");
    namespace::ip(&["netns", "add", &orphan]).unwrap();
    namespace::remove_stale();
    assert!(!namespaces().contains(&orphan), "a dead process's namespace {orphan} was not removed");
}

/// The names `ip netns list` shows.
fn namespaces() -> Vec<String> {
    namespace::run("ip", &["netns", "list"])
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_string))
        .collect()
}
