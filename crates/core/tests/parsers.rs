//! Property tests: the parsers of user input never panic, and what they accept keeps the
//! rules the rest of Lockstep relies on.

use proptest::prelude::*;

use lockstep_core::retry::{parse_duration, Schedule};
use lockstep_core::{InstanceId, Tag, WebhookUrl};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn an_accepted_tag_holds_nothing_a_shell_splits_on(text in "\\PC{0,64}|[ -~]{0,300}") {
        if let Ok(tag) = Tag::parse(&text, "tag") {
            let tag = tag.as_str();
            prop_assert!(!tag.is_empty() && tag.len() <= 255);
            prop_assert!(!tag.chars().any(|c| c.is_whitespace() || c.is_control()));
            prop_assert!(!tag.contains(".."));
        }
    }

    #[test]
    fn an_accepted_instance_id_is_a_lowercase_slug(text in "[a-zA-Z0-9_ -]{0,80}") {
        if let Ok(id) = InstanceId::parse(&text, "id") {
            let id = id.as_str();
            let slug_byte = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
            prop_assert!(id.bytes().all(slug_byte));
            prop_assert!(!id.starts_with('-') && !id.ends_with('-'));
        }
    }

    #[test]
    fn an_accepted_webhook_url_is_http_with_a_host(text in "\\PC{0,100}") {
        if let Ok(url) = WebhookUrl::parse(&text, "url") {
            prop_assert!(["http", "https"].contains(&url.url().scheme()));
            prop_assert!(url.url().host_str().is_some());
        }
    }

    #[test]
    fn schedules_and_durations_parse_or_refuse_without_panicking(text in "[0-9smhd, x-]{0,40}") {
        let _ = parse_duration(&text);
        if let Ok(schedule) = Schedule::parse(&text, "retry") {
            prop_assert!(!schedule.steps().is_empty());
            prop_assert_eq!(Schedule::parse(&schedule.to_text(), "retry").unwrap(), schedule);
        }
    }
}
