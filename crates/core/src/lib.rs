//! Lockstep's domain and its wire contract, with no I/O.
//!
//! - [`ids`]: prefixed, time-ordered ids for every resource.
//! - [`event`]: the points of a release that webhooks subscribe to.
//! - [`tag`], [`slug`], [`target`]: parsing constructors for user input.
//! - [`payload`]: the JSON body receivers are sent, serialised once.
//! - [`release`]: a release's stages and the moves between them.
//! - [`retry`]: when a failed delivery is tried again.
//! - [`signature`]: Standard Webhooks signing keys and signatures.
//! - [`secret`]: random tokens, their stored hashes and constant-time checks.
//! - [`time`]: the clock as the rest of Lockstep reads it.

pub mod event;
pub mod ids;
pub mod payload;
pub mod release;
pub mod retry;
pub mod secret;
pub mod signature;
pub mod slug;
pub mod tag;
pub mod target;
pub mod time;

pub use event::Event;
pub use release::Stage;
pub use slug::InstanceId;
pub use tag::Tag;
pub use target::WebhookUrl;

/// A value the user gave us that breaks a rule; `field` names what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}
