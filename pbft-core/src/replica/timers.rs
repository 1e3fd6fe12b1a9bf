//! The replica's timers: a small named table of deadlines.

use crate::time::Time;

/// A replica timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// The primary proposes a partial batch when this fires.
    Batch,
    /// A backup that knows of an unexecuted request asks for a view change when this fires.
    Request,
    /// A replica changing views moves on to the next view when this fires.
    ViewChange,
    /// A replica reports its status to its peers when this fires.
    Status,
    /// A state fetch that got no answer moves to another peer when this fires.
    Fetch,
    /// The current view's term is over: the replica moves to the next view.
    Term,
}

const ALL: [Timer; 6] =
    [Timer::Batch, Timer::Request, Timer::ViewChange, Timer::Status, Timer::Fetch, Timer::Term];

#[derive(Debug, Default)]
pub(crate) struct Timers {
    deadlines: [Option<Time>; 6],
}

impl Timers {
    pub(crate) fn starting_with(timer: Timer, at: Time) -> Timers {
        let mut timers = Timers::default();
        timers.set(timer, at);
        timers
    }

    fn slot(timer: Timer) -> usize {
        match timer {
            Timer::Batch => 0,
            Timer::Request => 1,
            Timer::ViewChange => 2,
            Timer::Status => 3,
            Timer::Fetch => 4,
            Timer::Term => 5,
        }
    }

    pub(crate) fn set(&mut self, timer: Timer, at: Time) {
        self.deadlines[Self::slot(timer)] = Some(at);
    }

    pub(crate) fn set_if_unset(&mut self, timer: Timer, at: Time) {
        let slot = &mut self.deadlines[Self::slot(timer)];
        if slot.is_none() {
            *slot = Some(at);
        }
    }

    pub(crate) fn cancel(&mut self, timer: Timer) {
        self.deadlines[Self::slot(timer)] = None;
    }

    pub(crate) fn is_set(&self, timer: Timer) -> bool {
        self.deadlines[Self::slot(timer)].is_some()
    }

    pub(crate) fn next(&self) -> Option<Time> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Clears and returns the timers due at `now`, in table order.
    pub(crate) fn expire(&mut self, now: Time) -> Vec<Timer> {
        let mut due = Vec::new();
        for timer in ALL {
            let slot = &mut self.deadlines[Self::slot(timer)];
            if slot.is_some_and(|at| at <= now) {
                *slot = None;
                due.push(timer);
            }
        }
        due
    }
}
