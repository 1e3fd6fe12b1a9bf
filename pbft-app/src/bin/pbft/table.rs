//! The status table `pbft status` and `pbft up` print: every replica's
//! view, progress and state digest, and whether they agree.

use pbft_app::cluster_config::ClusterConfig;
use pbft_app::node::{agreement, role, Agreement};
use pbft_core::ReplicaId;
use pbft_net::NodeStatus;

/// Prints one row per replica of `config` (from `statuses`, in id order),
/// then the agreement verdict and any checkpoint disagreement a replica saw.
pub fn print_table(statuses: &[Option<NodeStatus>], config: &ClusterConfig) {
    println!("replica  address                 view  mode         links  executed  checkpoint  state digest");
    let peers = config.n().saturating_sub(1);
    for (replica, status) in config.replicas.iter().zip(statuses) {
        match status {
            Some(s) => println!(
                "{:<8} {:<23} {:>4}  {:<11} {:>5}  {:>8}  {:>10}  {}{}",
                s.replica,
                replica.address,
                s.view,
                if s.recovering {
                    "recovering"
                } else if s.normal {
                    "normal"
                } else {
                    "view-change"
                },
                format!("{}/{peers}", s.net.links_up),
                s.last_executed,
                s.stable_checkpoint,
                short(&s.state_digest),
                match role(config, ReplicaId(s.replica)).as_str() {
                    "honest" => String::new(),
                    other => format!("  ({other})"),
                }
            ),
            None => println!("{:<8} {:<23} unreachable", replica.id.0, replica.address),
        }
    }
    match agreement(statuses) {
        Agreement::Agree => {
            println!("agreement: replicas report the same state wherever they can be compared")
        }
        Agreement::Diverged { seq, digests } => {
            println!("DIVERGED at sequence number {seq}:");
            for (digest, replicas) in digests {
                println!("  replicas {replicas:?} hold state {}", short(&digest));
            }
        }
    }
    for status in statuses.iter().flatten() {
        if let Some(disagreement) = &status.disagreement {
            println!(
                "replica {} saw CHECKPOINT DIGESTS DISAGREE at sequence number {} \
                 (a Byzantine replica, or an application that is not deterministic):",
                status.replica, disagreement.seq
            );
            for (digest, replicas) in &disagreement.digests {
                println!("  replicas {replicas:?} signed {}", short(digest));
            }
        }
    }
}

/// The first 16 characters of a digest a replica reported. A replica's
/// answer is peer input: cut by characters, never by bytes, so odd text
/// cannot make the status command panic.
fn short(digest: &str) -> String {
    digest.chars().take(16).collect()
}
