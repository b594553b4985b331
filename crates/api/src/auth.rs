//! Who is calling: bearer tokens and their scopes.
//!
//! Tokens are looked up by their SHA-256 hash, so the stored form never has to be compared
//! with the presented secret byte by byte.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use lockstep_core::secret::hash_token;

use crate::error::ApiError;
use crate::AppState;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything.
    Admin,
    /// Start and cancel releases, force locks, redeliver, and read.
    Deploy,
    /// Release locks and append to logs, and read those.
    Hook,
    /// Read.
    Read,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Admin, Scope::Deploy, Scope::Hook, Scope::Read];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Deploy => "deploy",
            Scope::Hook => "hook",
            Scope::Read => "read",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
}

impl Caller {
    /// How the caller appears in the action log.
    pub fn actor(&self) -> String {
        format!("{} ({})", self.name, self.token_id)
    }

    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&Scope::Admin) || self.scopes.contains(&scope)
    }

    /// Allows the call if the token holds any of `scopes` (admin holds them all).
    pub fn require(&self, scopes: &[Scope]) -> Result<(), ApiError> {
        if scopes.iter().any(|s| self.has(*s)) {
            return Ok(());
        }
        let wanted: Vec<_> = scopes.iter().map(|s| s.as_str()).collect();
        Err(ApiError::Forbidden(format!(
            "this token lacks the scope for this call (needs one of: admin, {})",
            wanted.join(", ")
        )))
    }

    /// Reading releases, instances, webhooks and deliveries.
    pub fn require_read(&self) -> Result<(), ApiError> {
        self.require(&[Scope::Read, Scope::Deploy])
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    /// Authenticates the bearer token, counting failures per address so guessing is slow.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        let caller = authenticate(parts, state).await;
        let (Err(ApiError::Unauthenticated), Some(ip)) = (&caller, ip) else {
            return caller;
        };
        // A valid token always gets through, so clients behind one proxy address are never
        // shut out by another's mistakes; only the failures are held back.
        if let Some(wait) = state.throttle.wait(ip) {
            return Err(ApiError::TooManyRequests(wait.as_secs().max(1)));
        }
        state.throttle.failed(ip);
        caller
    }
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::Unauthenticated)?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthenticated)?;
    let store = state.engine.store();
    let token = store
        .authenticate(&hash_token(token))
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    Ok(Caller {
        token_id: token.id,
        name: token.name,
        scopes: token
            .scopes
            .iter()
            .filter_map(|s| Scope::parse(s))
            .collect(),
    })
}
