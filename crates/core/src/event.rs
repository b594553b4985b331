//! The points of a release that webhooks subscribe to.

use crate::Invalid;

/// A named point of a release. The first three come from the vendor contract; the fourth
/// tells subscribers that a release failed or was cancelled, and never locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    BeforeRelease,
    BeforeReleaseComplete,
    AfterRelease,
    ReleaseFailed,
}

impl Event {
    pub const ALL: [Event; 4] = [
        Event::BeforeRelease,
        Event::BeforeReleaseComplete,
        Event::AfterRelease,
        Event::ReleaseFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::BeforeRelease => "before_release",
            Event::BeforeReleaseComplete => "before_release_complete",
            Event::AfterRelease => "after_release",
            Event::ReleaseFailed => "release_failed",
        }
    }

    pub fn parse(text: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.as_str() == text)
    }

    /// Parses an event named by the user, naming `field` when it is unknown.
    pub fn parse_field(text: &str, field: &str) -> Result<Event, Invalid> {
        Event::parse(text).ok_or_else(|| {
            let known: Vec<_> = Event::ALL.iter().map(|e| e.as_str()).collect();
            Invalid::new(
                field,
                format!(
                    "unknown event {text:?}; expected one of {}",
                    known.join(", ")
                ),
            )
        })
    }

    /// Whether a subscription to this event may hold the release.
    pub fn can_lock(self) -> bool {
        self != Event::ReleaseFailed
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_parses_from_its_own_name() {
        for event in Event::ALL {
            assert_eq!(Event::parse(event.as_str()), Some(event));
        }
        assert!(Event::parse("before_deploy").is_none());
        assert!(!Event::ReleaseFailed.can_lock());
    }

    #[test]
    fn an_unknown_event_error_names_the_field() {
        let err = Event::parse_field("nope", "events[0].event").unwrap_err();
        assert_eq!(err.field, "events[0].event");
        assert!(err.message.contains("before_release"));
    }
}
