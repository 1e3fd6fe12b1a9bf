//! Quorum arithmetic for n = 3f+1 replicas, in one place (OSDI'99 §4).

use crate::ids::{ReplicaId, View};
use serde::{Deserialize, Serialize};

/// The sizes of a cluster that tolerates `f` Byzantine replicas among `n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quorum {
    n: usize,
    f: usize,
}

impl Quorum {
    /// The quorum system of `n` replicas: tolerates `f = (n - 1) / 3` faults.
    ///
    /// Returns `None` for `n == 0`. For `n` not of the form 3f+1 the extra
    /// replicas add capacity but not fault tolerance.
    pub fn new(n: usize) -> Option<Quorum> {
        if n == 0 {
            return None;
        }
        Some(Quorum { n, f: (n - 1) / 3 })
    }

    /// The number of replicas.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The number of Byzantine replicas tolerated.
    pub fn f(&self) -> usize {
        self.f
    }

    /// Size of a quorum certificate: any two such sets share an honest replica.
    /// `n - f`, which is 2f+1 when n = 3f+1.
    pub fn quorum(&self) -> usize {
        self.n - self.f
    }

    /// Matching PREPAREs from distinct backups needed (with the PRE-PREPARE) to be prepared: 2f.
    pub fn prepare_quorum(&self) -> usize {
        self.quorum() - 1
    }

    /// f+1: at least one of this many replicas is honest.
    pub fn weak(&self) -> usize {
        self.f + 1
    }

    /// The primary of `view`: replica `view mod n`.
    pub fn primary(&self, view: View) -> ReplicaId {
        ReplicaId((view % self.n as u64) as u32)
    }

    /// Whether `id` names a replica of this cluster.
    pub fn contains(&self, id: ReplicaId) -> bool {
        id.index() < self.n
    }

    /// All replica ids in ascending order.
    pub fn replicas(&self) -> impl Iterator<Item = ReplicaId> {
        (0..self.n as u32).map(ReplicaId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_sizes_table() {
        // (n, f, quorum 2f+1, prepares 2f, weak f+1)
        let table = [
            (1, 0, 1, 0, 1),
            (4, 1, 3, 2, 2),
            (5, 1, 4, 3, 2),
            (7, 2, 5, 4, 3),
            (10, 3, 7, 6, 4),
            (13, 4, 9, 8, 5),
        ];
        for (n, f, q, p, w) in table {
            let quorum = Quorum::new(n).unwrap();
            assert_eq!(
                (quorum.f(), quorum.quorum(), quorum.prepare_quorum(), quorum.weak()),
                (f, q, p, w),
                "n = {n}"
            );
        }
        assert!(Quorum::new(0).is_none());
    }

    #[test]
    fn two_quorums_intersect_in_an_honest_replica() {
        // OSDI'99 §4: any two quorums of size n - f overlap in at least f + 1 replicas.
        for n in 1..40 {
            let q = Quorum::new(n).unwrap();
            assert!(2 * q.quorum() > n + q.f(), "n = {n}");
        }
    }

    #[test]
    fn primary_rotates_round_robin() {
        let q = Quorum::new(4).unwrap();
        let primaries: Vec<u32> = (0..9).map(|v| q.primary(v).0).collect();
        assert_eq!(primaries, vec![0, 1, 2, 3, 0, 1, 2, 3, 0]);
    }
}
