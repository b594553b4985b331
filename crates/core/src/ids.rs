//! Resource ids: a short prefix naming the kind, then 32 hex digits.
//!
//! The first 12 digits are the creation time in milliseconds, so ids sort by age and serve
//! as pagination cursors; the remaining 80 bits are random, so ids cannot be guessed.

use rand::Rng;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id for a new resource.
            pub fn generate() -> Self {
                $name(generate($prefix))
            }

            /// Accepts only ids of this kind, so a lock id is never taken for a release id.
            pub fn parse(text: &str) -> Option<Self> {
                is_valid(text, $prefix).then(|| $name(text.to_owned()))
            }

            /// Wraps an id read back from storage, which only ever holds valid ones.
            pub fn from_stored(text: String) -> Self {
                $name(text)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A release.
    ReleaseId, "rel"
);
id_type!(
    /// A webhook subscription.
    WebhookId, "wh"
);
id_type!(
    /// One webhook's message for one event of one release.
    DeliveryId, "dlv"
);
id_type!(
    /// A lock, by its public id (not its secret token).
    LockId, "lck"
);
id_type!(
    /// An API token, by its public id (not its secret).
    TokenId, "tok"
);

fn generate(prefix: &str) -> String {
    let millis = crate::time::now_ms().max(0) as u64 & 0xffff_ffff_ffff;
    let random: u128 = rand::rng().random::<u128>() & ((1u128 << 80) - 1);
    format!("{prefix}_{millis:012x}{random:020x}")
}

fn is_valid(text: &str, prefix: &str) -> bool {
    match text.split_once('_') {
        Some((p, rest)) => {
            p == prefix
                && rest.len() == 32
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_only_as_their_own_kind() {
        let id = ReleaseId::generate();
        assert!(ReleaseId::parse(id.as_str()).is_some());
        assert!(LockId::parse(id.as_str()).is_none());
        assert!(ReleaseId::parse("rel_xyz").is_none());
        assert!(ReleaseId::parse("rel").is_none());
    }

    #[test]
    fn ids_created_later_sort_later() {
        let first = DeliveryId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = DeliveryId::generate();
        assert!(first < second);
    }
}
