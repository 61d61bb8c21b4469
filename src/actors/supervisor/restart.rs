//! When to restart a child that stopped unexpectedly.
//!
//! A child may be restarted `max_restarts` times within `window`; the n-th
//! restart inside the window waits `base × 2^(n-1)`, capped at `max_delay`,
//! so a child that dies at once after every start does not spin. Past the
//! limit the child is reported failed and left stopped while the rest of the
//! agent keeps running.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What to do about a stopped child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    RestartAfter(Duration),
    GiveUp,
}

/// The restart history of one child.
#[derive(Debug, Clone)]
pub struct RestartTracker {
    max_restarts: usize,
    window: Duration,
    base_delay: Duration,
    max_delay: Duration,
    recent: VecDeque<Instant>,
}

impl Default for RestartTracker {
    /// 5 restarts in 60 s, starting at 100 ms and doubling up to 10 s.
    fn default() -> Self {
        RestartTracker::new(
            5,
            Duration::from_secs(60),
            Duration::from_millis(100),
            Duration::from_secs(10),
        )
    }
}

impl RestartTracker {
    pub fn new(
        max_restarts: usize,
        window: Duration,
        base_delay: Duration,
        max_delay: Duration,
    ) -> Self {
        RestartTracker {
            max_restarts,
            window,
            base_delay,
            max_delay,
            recent: VecDeque::new(),
        }
    }

    /// Records a stop at `now` and decides.
    pub fn on_stop(&mut self, now: Instant) -> Decision {
        while let Some(t) = self.recent.front() {
            if now.duration_since(*t) > self.window {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        if self.recent.len() >= self.max_restarts {
            return Decision::GiveUp;
        }
        self.recent.push_back(now);
        let n = self.recent.len() as u32;
        let delay = self.base_delay.saturating_mul(1u32 << (n - 1).min(20));
        Decision::RestartAfter(delay.min(self.max_delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_give_up_within_window() {
        let mut t = RestartTracker::default();
        let start = Instant::now();
        let got: Vec<Decision> = (0..6)
            .map(|i| t.on_stop(start + Duration::from_secs(i)))
            .collect();
        let ms = |m| Decision::RestartAfter(Duration::from_millis(m));
        assert_eq!(
            got,
            vec![
                ms(100),
                ms(200),
                ms(400),
                ms(800),
                ms(1600),
                Decision::GiveUp
            ]
        );
    }

    #[test]
    fn old_restarts_leave_the_window() {
        let mut t = RestartTracker::default();
        let start = Instant::now();
        for i in 0..5 {
            assert!(matches!(
                t.on_stop(start + Duration::from_secs(i)),
                Decision::RestartAfter(_)
            ));
        }
        // 61 s after the first, four remain in the window: one more is allowed.
        assert_eq!(
            t.on_stop(start + Duration::from_secs(61)),
            Decision::RestartAfter(Duration::from_millis(1600))
        );
    }
}
