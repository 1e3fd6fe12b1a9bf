//! Traitor replicas: a real replica whose outgoing traffic is rewritten.

mod behavior;

pub use behavior::{Behavior, UnknownBehavior};
