//! Unit tests of single-replica protocol rules, with real keys and signatures.

mod auth;
mod certificates;
mod future;
mod fuzz;
mod kit;
mod normal;
mod persist;
mod screen;
mod state_transfer;
mod view_change;
