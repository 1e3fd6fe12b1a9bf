//! Issue 4's slow-primary goal, in virtual time: a primary that holds every
//! PRE-PREPARE for just under the view-change timeout never trips it, so
//! without rotation it keeps the role and the cluster crawls; with views
//! rotating on a term it is primary one view in n, and the honest replicas
//! keep at least half of their fault-free throughput.
//!
//! Virtual time makes these figures the protocol's, independent of the
//! machine, so asserting on them is a protocol property, not a timing test.

use fault_injector::throughput::{measure_with, protocol};
use fault_injector::traitor::Behavior;
use pbft_app::workloads::KvWorkload;
use pbft_core::{ProtocolConfig, ReplicaId};

const SECONDS: u64 = 4;

#[test]
fn rotating_views_keep_half_the_throughput_under_a_slow_primary() {
    let rotating = protocol();
    assert!(rotating.view_term_ms > 0 && rotating.view_term_ms * 2 <= SECONDS * 1_000);
    let fixed = ProtocolConfig { view_term_ms: 0, ..protocol() };
    let slow = Some((ReplicaId(0), Behavior::SlowPrimary));

    let baseline = measure_with::<KvWorkload>(rotating.clone(), 4, None, SECONDS);
    let attacked = measure_with::<KvWorkload>(rotating, 4, slow, SECONDS);
    let stuck = measure_with::<KvWorkload>(fixed, 4, slow, SECONDS);
    println!(
        "n=4, {SECONDS} virtual s: fault-free {baseline:.0}/s, slow primary with rotation {attacked:.0}/s \
         ({:.0} %), without {stuck:.0}/s ({:.0} %)",
        100.0 * attacked / baseline,
        100.0 * stuck / baseline
    );
    assert!(baseline > 0.0);
    assert!(attacked >= baseline / 2.0, "with rotation the honest replicas keep at least half");
    assert!(stuck < baseline / 2.0, "without rotation the slow primary holds the cluster back");
}
