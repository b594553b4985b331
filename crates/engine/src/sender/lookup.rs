//! Name lookups for outbound requests, through the outbound address policy.
//!
//! The [`Guard`] resolves and checks every address; this wrapper only gives its failures a
//! type, so that an attempt's error chain says exactly whether a name did not resolve
//! (`dns`) or resolved to an address the policy refuses (`blocked`).

use crate::guard::{Guard, BLOCKED};

/// Why a name gave no address to connect to.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The name does not resolve, or resolves to nothing.
    #[error("{0}")]
    Unresolved(String),
    /// The name resolves to an address the outbound policy refuses.
    #[error("{0}")]
    Refused(String),
}

/// The guard's resolver, with typed failures.
pub(super) struct Lookup(pub(super) Guard);

impl reqwest::dns::Resolve for Lookup {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolving = self.0.resolve(name);
        Box::pin(async move {
            resolving.await.map_err(|err| {
                let text = err.to_string();
                // The guard words every refusal with BLOCKED; any other failure is the
                // lookup's own.
                let typed = if text.contains(BLOCKED) {
                    LookupError::Refused(text)
                } else {
                    LookupError::Unresolved(text)
                };
                Box::new(typed) as Box<dyn std::error::Error + Send + Sync>
            })
        })
    }
}
