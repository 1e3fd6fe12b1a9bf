//! Deliberate protocol bugs, compiled only with the `mutations` feature, so
//! tests can show that the simulator's checkers catch a broken protocol.

/// A way to break the protocol on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// VIEW-CHANGE messages carry no prepared certificates, so a new view can
    /// reuse a sequence number at which some replica already executed a batch.
    ForgetPreparedCertificates,
    /// A replica recovering from a lost or damaged disk never leaves the
    /// recovering mode: it never votes again, and never catches up for good.
    NeverFinishRecovery,
}
