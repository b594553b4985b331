//! A release's tag, held to git's rules for reference names.
//!
//! The rules refuse whitespace, control characters and most punctuation that shells treat
//! specially, but a valid tag may still hold `;`, `$` or backticks. That is why tags reach
//! step commands only through the environment and are never spliced into a command line.

use crate::Invalid;

/// The longest tag accepted; git allows more, but no real tag comes close.
pub const MAX_LEN: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag(String);

impl Tag {
    pub fn parse(text: &str, field: &str) -> Result<Self, Invalid> {
        match rule_broken(text) {
            Some(rule) => Err(Invalid::new(
                field,
                format!("{text:?} is not a valid git ref name: {rule}"),
            )),
            None => Ok(Tag(text.to_owned())),
        }
    }

    pub fn from_stored(text: String) -> Self {
        Tag(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The first of git's `check-ref-format` rules (one-level names allowed) that `name` breaks.
fn rule_broken(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name.len() > MAX_LEN {
        return Some("it is longer than 255 bytes");
    }
    // An option, not a name, to whatever command a step hands the tag to.
    if name.starts_with('-') {
        return Some("it starts with '-'");
    }
    if name == "@" {
        return Some("it is the single character @");
    }
    // Git itself refuses only ASCII spaces and controls; other whitespace is refused too,
    // since a tag that looks like two words is always a mistake.
    let bad = |c: char| c.is_control() || c.is_whitespace() || " ~^:?*[\\".contains(c);
    if name.chars().any(bad) {
        return Some("it contains whitespace, a control character or one of ~ ^ : ? * [ \\");
    }
    if name.contains("..") || name.contains("@{") || name.contains("//") {
        return Some("it contains '..', '@{' or '//'");
    }
    if name.starts_with('/') || name.ends_with('/') || name.ends_with('.') {
        return Some("it starts or ends with '/' or ends with '.'");
    }
    if name
        .split('/')
        .any(|part| part.starts_with('.') || part.ends_with(".lock"))
    {
        return Some("a component starts with '.' or ends with '.lock'");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_release_tags_are_accepted() {
        for good in [
            "v2.4.1",
            "release/2026-12-03",
            "1.0.0-rc.1+build.5",
            "v1;$(id)`x`",
        ] {
            assert!(Tag::parse(good, "tag").is_ok(), "{good:?} was refused");
        }
    }

    #[test]
    fn names_git_refuses_are_refused() {
        let bad = [
            "",
            "@",
            "-v1",
            "--upload-pack=touch",
            "v1; rm -rf /",
            "v1..2",
            "v1@{0}",
            "/v1",
            "v1/",
            "v1.",
            "a//b",
            ".hidden",
            "v1.lock",
            "v1~1",
            "v1^",
            "a:b",
            "a?b",
            "a*b",
            "a[b",
            "a\\b",
            "tab\there",
            "nl\n",
        ];
        for name in bad {
            let err = Tag::parse(name, "tag").unwrap_err();
            assert_eq!(err.field, "tag", "{name:?}");
        }
        assert!(Tag::parse(&"v".repeat(256), "tag").is_err());
    }
}
