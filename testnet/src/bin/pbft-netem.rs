//! `pbft-netem`: delays, jitters and drops the packets one host sends, in
//! user space, for kernels without the netem qdisc.
//!
//! The test network sends every packet a host addresses to another host
//! through an iptables `NFQUEUE` rule, one queue number per destination
//! (see `pbft_testnet::faults`). This program, started inside that host's
//! network namespace, reads each queued packet's metadata, drops it with the
//! link's loss probability or holds it for the link's delay plus a uniform
//! jitter, then lets the kernel send it on. Jitter larger than the gap
//! between two packets reorders them, as netem's does.
//!
//! The queue's socket cannot be woken by a timer, so the loop polls it
//! without blocking and sleeps at most one millisecond between rounds: a
//! packet's delay is accurate to about a millisecond, which is well under the
//! delays the scenarios ask for. When this process ends, the kernel drops the
//! packets it held (they are lost, as on a real link), and the rules'
//! `--queue-bypass` lets later packets through undelayed.

use anyhow::{bail, Context, Result};
use clap::Parser;
use fault_injector::Rng;
use nfq::{Queue, Verdict};
use pbft_testnet::Link;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Delays and drops the packets of chosen NFQUEUE queues (one per link).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// A queue and its link: `QUEUE=DELAY_US,JITTER_US,LOSS_PPM` (loss in
    /// parts per million). Repeat for every queue this host's rules use.
    #[arg(long = "queue", value_name = "QUEUE=LINK", required = true)]
    queues: Vec<String>,

    /// Seed of the loss and jitter draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// The longest a round sleeps: the delays' resolution.
const TICK: Duration = Duration::from_millis(1);

/// How many packets each queue may hold in the kernel before it drops more.
const QUEUE_MAX_LEN: u32 = 65_536;

fn main() -> Result<()> {
    let args = Args::parse();
    // Die with whoever started us (the harness's thread): a test process
    // killed outright must not leave a delayer polling for ever.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).context("setting PR_SET_PDEATHSIG")?;
    let mut links = BTreeMap::new();
    for spec in &args.queues {
        let (queue, link) = spec.split_once('=').context("a --queue is QUEUE=DELAY_US,JITTER_US,LOSS_PPM")?;
        let queue: u16 = queue.parse().with_context(|| format!("queue number {queue:?}"))?;
        links.insert(queue, Link::from_queue_spec(link)?);
    }
    let mut queue = Queue::open().context("opening an NFQUEUE socket (needs CAP_NET_ADMIN)")?;
    for &number in links.keys() {
        queue.bind(number).with_context(|| format!("binding NFQUEUE {number}"))?;
        queue.set_queue_max_len(number, QUEUE_MAX_LEN)?;
        // Only the verdict matters: copy a packet's first bytes, not all of it.
        queue.set_copy_range(number, 64)?;
    }
    // A burst larger than the socket's buffer is dropped by the kernel, as a
    // full router queue drops: it is loss, not a reason to stop.
    queue.set_recv_enobufs(false)?;
    queue.set_nonblocking(true);
    // Tell whoever started us that the queues are bound: packets sent from
    // now on are delayed (before, `--queue-bypass` lets them through).
    use std::io::Write as _;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "ready").and_then(|()| stdout.flush()).context("reporting readiness")?;
    run(&mut queue, &links, Rng::new(args.seed))
}

/// Reads packets, drops or holds them, and releases each when its time comes.
fn run(queue: &mut Queue, links: &BTreeMap<u16, Link>, mut rng: Rng) -> Result<()> {
    let mut held = BTreeMap::new();
    let mut arrivals: u64 = 0;
    loop {
        loop {
            match queue.recv() {
                Ok(mut packet) => {
                    let Some(link) = links.get(&packet.get_queue_num()) else {
                        bail!("a packet on queue {} that no --queue names", packet.get_queue_num());
                    };
                    if link.drops(&mut rng) {
                        packet.set_verdict(Verdict::Drop);
                        queue.verdict(packet)?;
                    } else {
                        arrivals += 1;
                        held.insert((Instant::now() + link.sample_delay(&mut rng), arrivals), packet);
                    }
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                // ENOENT: a verdict for a packet the kernel already dropped
                // (its hook went away); the packet is lost either way.
                Err(error)
                    if matches!(error.raw_os_error(), Some(nix::libc::ENOBUFS | nix::libc::ENOENT)) =>
                {
                    continue
                }
                Err(error) => return Err(error).context("reading the NFQUEUE"),
            }
        }
        let now = Instant::now();
        while let Some(entry) = held.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let mut packet = entry.remove();
            packet.set_verdict(Verdict::Accept);
            queue.verdict(packet)?;
        }
        let next = held.keys().next().map_or(TICK, |(due, _)| due.saturating_duration_since(now));
        std::thread::sleep(next.min(TICK));
    }
}
