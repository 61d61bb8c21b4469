//! Named places where a test can make the agent fail on purpose.
//!
//! `MONGOMON_FAILPOINT=NAME` makes [`hit`]`(NAME)` panic. The tests use it to
//! prove that a panic anywhere ends the process (see [`crate::fatal`]) rather
//! than leaving an agent that holds its pid file and does nothing; there is
//! no other way to make correct code panic from outside. Reading the
//! variable once keeps the cost of a disarmed point to one comparison.

use std::sync::OnceLock;

/// The variable that arms a failpoint. Single-word, so it is not a
/// configuration key (those are `MONGOMON_SECTION__KEY`).
pub const ENV: &str = "MONGOMON_FAILPOINT";

fn armed() -> Option<&'static str> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED
        .get_or_init(|| std::env::var(ENV).ok().filter(|v| !v.is_empty()))
        .as_deref()
}

/// Panics when `name` is the armed failpoint; the panic names the caller's
/// place, as a real one would.
#[inline]
#[track_caller]
pub fn hit(name: &str) {
    if let Some(a) = armed() {
        if a == name {
            panic!("failpoint {name} reached ({ENV})");
        }
    }
}
