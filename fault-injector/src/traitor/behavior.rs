//! The named traitor behaviours a config or a simulation can select.

use std::fmt;
use std::str::FromStr;

/// How a traitor replica misbehaves. Names are the ones configs use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Behavior {
    /// Sends nothing: a crash the others cannot tell from slowness.
    Silent,
    /// Tells different peers different things: conflicting PRE-PREPAREs as
    /// primary, conflicting PREPAREs and COMMITs as backup.
    Equivocate,
    /// Prepares and commits every digest it sees for a sequence number.
    DoubleVote,
    /// Sends messages with bad signatures or claiming another sender, and
    /// answers clients with results it never computed.
    Forge,
    /// Re-sends old messages from earlier views and sequence numbers, and
    /// other replicas' STATUS reports.
    Replay,
    /// Omits prepared certificates, claims stale checkpoints and asks for
    /// far-future views.
    ViewChangeLiar,
    /// As primary, holds each PRE-PREPARE until just before backups time out.
    SlowPrimary,
    /// Sends many valid-looking but useless messages.
    Flood,
    /// Talks only to some of the replicas.
    Selective,
    /// Runs a coordinated fork attack with the other colluders.
    Collude,
}

impl Behavior {
    /// Every behaviour, in the order the docs list them.
    pub const ALL: [Behavior; 10] = [
        Behavior::Silent,
        Behavior::Equivocate,
        Behavior::DoubleVote,
        Behavior::Forge,
        Behavior::Replay,
        Behavior::ViewChangeLiar,
        Behavior::SlowPrimary,
        Behavior::Flood,
        Behavior::Selective,
        Behavior::Collude,
    ];

    /// The name configs use.
    pub fn name(self) -> &'static str {
        match self {
            Behavior::Silent => "silent",
            Behavior::Equivocate => "equivocate",
            Behavior::DoubleVote => "double-vote",
            Behavior::Forge => "forge",
            Behavior::Replay => "replay",
            Behavior::ViewChangeLiar => "view-change-liar",
            Behavior::SlowPrimary => "slow-primary",
            Behavior::Flood => "flood",
            Behavior::Selective => "selective",
            Behavior::Collude => "collude",
        }
    }
}

impl fmt::Display for Behavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A behaviour name that is not one of [`Behavior::ALL`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown behaviour `{0}`; expected one of: {names}", names = Behavior::ALL.map(Behavior::name).join(", "))]
pub struct UnknownBehavior(pub String);

impl FromStr for Behavior {
    type Err = UnknownBehavior;

    fn from_str(name: &str) -> Result<Behavior, UnknownBehavior> {
        Behavior::ALL.into_iter().find(|b| b.name() == name).ok_or_else(|| UnknownBehavior(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_behaviour() {
        for behavior in Behavior::ALL {
            assert_eq!(behavior.name().parse(), Ok(behavior));
        }
        let error = "equivocat".parse::<Behavior>().unwrap_err();
        assert!(error
            .to_string()
            .contains("unknown behaviour `equivocat`; expected one of: silent, equivocate"));
    }
}
