//! A release's stages and the moves between them.
//!
//! ```text
//! queued → before_release ⟶ gate → steps → before_release_complete ⟶ gate
//!        → completed → after_release ⟶ gate → closed
//! any non-terminal stage → failed | cancelled
//! ```

use crate::Event;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Queued,
    BeforeRelease,
    Steps,
    BeforeReleaseComplete,
    Completed,
    AfterRelease,
    Closed,
    Failed,
    Cancelled,
}

impl Stage {
    pub const ALL: [Stage; 9] = [
        Stage::Queued,
        Stage::BeforeRelease,
        Stage::Steps,
        Stage::BeforeReleaseComplete,
        Stage::Completed,
        Stage::AfterRelease,
        Stage::Closed,
        Stage::Failed,
        Stage::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Queued => "queued",
            Stage::BeforeRelease => "before_release",
            Stage::Steps => "steps",
            Stage::BeforeReleaseComplete => "before_release_complete",
            Stage::Completed => "completed",
            Stage::AfterRelease => "after_release",
            Stage::Closed => "closed",
            Stage::Failed => "failed",
            Stage::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Stage::Closed | Stage::Failed | Stage::Cancelled)
    }

    /// The event fired on entering this stage, whose gate holds the release in it.
    pub fn event(self) -> Option<Event> {
        match self {
            Stage::BeforeRelease => Some(Event::BeforeRelease),
            Stage::BeforeReleaseComplete => Some(Event::BeforeReleaseComplete),
            Stage::AfterRelease => Some(Event::AfterRelease),
            _ => None,
        }
    }

    /// Where a release goes once this stage's work (its gate, its steps) is done.
    /// Terminal stages go nowhere.
    pub fn next(self) -> Option<Stage> {
        match self {
            Stage::Queued => Some(Stage::BeforeRelease),
            Stage::BeforeRelease => Some(Stage::Steps),
            Stage::Steps => Some(Stage::BeforeReleaseComplete),
            Stage::BeforeReleaseComplete => Some(Stage::Completed),
            Stage::Completed => Some(Stage::AfterRelease),
            Stage::AfterRelease => Some(Stage::Closed),
            Stage::Closed | Stage::Failed | Stage::Cancelled => None,
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a person asks of a release, summarised from its stage and what it waits on.
pub fn state(stage: Stage, waiting: bool) -> &'static str {
    match stage {
        Stage::Queued => "queued",
        Stage::Closed => "succeeded",
        Stage::Failed => "failed",
        Stage::Cancelled => "cancelled",
        _ if waiting => "waiting",
        _ => "running",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn following_next_from_queued_visits_every_happy_stage_once() {
        let mut seen = vec![Stage::Queued];
        while let Some(next) = seen.last().unwrap().next() {
            seen.push(next);
        }
        let names: Vec<_> = seen.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "queued",
                "before_release",
                "steps",
                "before_release_complete",
                "completed",
                "after_release",
                "closed"
            ]
        );
    }

    #[test]
    fn only_event_stages_fire_events_and_terminal_stages_stay() {
        assert_eq!(Stage::BeforeRelease.event(), Some(Event::BeforeRelease));
        assert_eq!(Stage::Steps.event(), None);
        for stage in Stage::ALL {
            assert_eq!(Stage::parse(stage.as_str()), Some(stage));
            assert_eq!(stage.is_terminal(), stage.next().is_none());
        }
    }

    #[test]
    fn state_summarises_stage_and_waiting() {
        assert_eq!(state(Stage::BeforeRelease, true), "waiting");
        assert_eq!(state(Stage::Steps, false), "running");
        assert_eq!(state(Stage::Closed, false), "succeeded");
    }
}
