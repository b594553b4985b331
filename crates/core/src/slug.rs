//! Instance ids are slugs, so they read well in URLs, logs and step environments.

use crate::Invalid;

/// Lowercase letters, digits and inner hyphens, 1 to 63 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InstanceId(String);

impl InstanceId {
    pub fn parse(text: &str, field: &str) -> Result<Self, Invalid> {
        let ok_chars = text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if text.is_empty() || text.len() > 63 || !ok_chars {
            return Err(Invalid::new(
                field,
                "must be 1-63 characters of lowercase letters, digits and hyphens",
            ));
        }
        if text.starts_with('-') || text.ends_with('-') {
            return Err(Invalid::new(field, "must not start or end with a hyphen"));
        }
        Ok(InstanceId(text.to_owned()))
    }

    pub fn from_stored(text: String) -> Self {
        InstanceId(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_accept_lowercase_words_and_refuse_the_rest() {
        assert!(InstanceId::parse("shop-prod-2", "id").is_ok());
        for bad in [
            "",
            "Shop",
            "-shop",
            "shop-",
            "shop prod",
            "shop/prod",
            &"a".repeat(64),
        ] {
            assert!(
                InstanceId::parse(bad, "id").is_err(),
                "{bad:?} was accepted"
            );
        }
    }
}
