//! Issue test 12: a replica fed long random sequences of well-formed but
//! adversarial signed messages never panics and keeps every buffer within its
//! configured bound.

use super::kit::{drain, Kit};
use super::view_change::{prepared_cert, view_change};
use crate::{
    batch_digest, BufferUsage, Checkpoint, Digest, Message, NewView, ReplicaId, Request, Signed, Time,
};

/// xorshift64*: a test-only input generator (the core itself has no randomness).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A small universe of batches, so that random votes often agree and the
/// replica reaches prepared, committed, executed and checkpointed states.
fn batches(kit: &Kit) -> Vec<Vec<Signed<Request>>> {
    vec![
        vec![],
        vec![kit.request(1, 1)],
        vec![kit.request(2, 2), kit.request(3, 3)],
        (1..=6).map(|t| kit.request(t, 1)).collect(),
    ]
}

/// A random message; `view` and `low` (the replica's view and low watermark)
/// and `next` (the next sequence number to execute) bias it towards what the replica is currently willing to consider.
fn random_message(kit: &Kit, g: &mut Gen, view: u64, low: u64, next: u64) -> Message {
    let n = kit.n as u64;
    let batches = batches(kit);
    let batch = batches[g.below(batches.len() as u64) as usize].clone();
    let digest = if g.below(8) == 0 { Digest::of(b"nonsense") } else { batch_digest(&batch) };
    let view = if g.below(4) == 0 { g.below(view + 3) } else { view };
    let seq = match g.below(4) {
        0 => g.below(40),
        1 => low + g.below(12),
        _ => next + g.below(2),
    };
    let from = g.below(n) as u32;
    // Weights: mostly normal-case votes, with rarer view changes so the
    // replica spends time in views where votes can form quorums.
    let kind = match g.below(34) {
        0..=1 => 0,
        2..=7 => 1,
        8..=17 => 3,
        18..=27 => 5,
        28..=30 => 7,
        31..=32 => 8,
        _ => 9,
    };
    match kind {
        0 => Message::Request(kit.request(1 + g.below(12), g.below(4) as u8)),
        1 | 2 => Message::PrePrepare(kit.pre_prepare(view, seq, batch)),
        3 | 4 => Message::Prepare(kit.prepare(from, view, seq, digest)),
        5 | 6 => Message::Commit(kit.commit(from, view, seq, digest)),
        7 => {
            let state = if g.below(2) == 0 { Digest::of(b"state") } else { Digest::default() };
            Message::Checkpoint(Signed::sign(
                Checkpoint { seq: low + 4 * g.below(4), state_digest: state, replica: ReplicaId(from) },
                kit.key(from),
            ))
        }
        8 => {
            let certs = (0..g.below(3))
                .map(|i| {
                    let backups: Vec<u32> =
                        (0..n as u32).filter(|b| *b != kit.primary(view)).take(2).collect();
                    prepared_cert(
                        kit,
                        view,
                        1 + i + g.below(3) * 3,
                        batches[(i as usize) % 3].clone(),
                        &backups,
                    )
                })
                .filter(|c| c.seq() <= 8)
                .collect::<Vec<_>>();
            let mut certs = certs;
            certs.sort_by_key(|c| c.seq());
            certs.dedup_by_key(|c| c.seq());
            Message::ViewChange(view_change(kit, from, view + 1 + g.below(3), certs))
        }
        _ => {
            let new_view = view.max(1);
            let vcs: Vec<_> = (0..n as u32)
                .filter(|_| g.below(3) > 0)
                .map(|r| view_change(kit, r, new_view, vec![]))
                .collect();
            let pre_prepares = (0..g.below(2)).map(|i| kit.pre_prepare(new_view, 1 + i, vec![])).collect();
            let primary = kit.primary(new_view);
            Message::NewView(Signed::sign(
                NewView { view: new_view, primary: ReplicaId(primary), view_changes: vcs, pre_prepares },
                kit.key(primary),
            ))
        }
    }
}

fn assert_within(usage: BufferUsage, limits: BufferUsage) {
    let over = usage.first_over(&limits);
    assert!(over.is_none(), "{over:?}: {usage:?} > {limits:?}");
}

#[test]
fn random_adversarial_messages_never_panic_and_stay_bounded() {
    let kit = Kit::new(4);
    let mut peak = BufferUsage::default();
    let mut executed = 0;
    for seed in 1..=12u64 {
        for id in [0, 1] {
            let mut g = Gen(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let mut replica = kit.replica(id);
            let mut now = Time(0);
            for _ in 0..600 {
                now = now + g.below(4);
                if replica.poll_timeout().is_some_and(|t| t <= now) {
                    replica.handle_timeout(now);
                }
                let message = random_message(
                    &kit,
                    &mut g,
                    replica.view(),
                    replica.low_watermark(),
                    replica.last_executed() + 1,
                );
                replica.receive(now, message);
                drain(&mut replica);
                let usage = replica.buffer_usage();
                assert_within(usage, replica.buffer_limits());
                peak.log_messages = peak.log_messages.max(usage.log_messages);
                peak.future_messages = peak.future_messages.max(usage.future_messages);
                peak.view_changes = peak.view_changes.max(usage.view_changes);
            }
            executed += replica.last_executed();
        }
    }
    // The inputs must actually reach the deep states, or the test proves little.
    assert!(peak.log_messages > 10 && peak.future_messages > 10 && peak.view_changes > 1, "{peak:?}");
    assert!(executed > 0, "no random sequence ever executed a batch");
}
