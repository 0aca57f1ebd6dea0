//! Connecting to PostgreSQL, for the node's PostgreSQL store ([`crate::postgres`]) and its
//! attached department databases ([`crate::attach`]): URLs, what of them may be shown,
//! and the pools' settings.
//!
//! Imports nothing of this crate, so the config, the store and the attached tables all
//! depend on it and it on none of them. It never shows a URL's user or password, and
//! [`without`] blanks a resident ID out of a database's message.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

/// How many connections a node keeps to its PostgreSQL store at most.
pub const MAX_CONNECTIONS: u32 = 16;

/// `postgres://HOST:PORT/DATABASE`: a URL fit for logs and errors (no user, no password).
pub fn redacted(options: &PgConnectOptions) -> String {
    format!(
        "postgres://{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or_default()
    )
}

/// Why a PostgreSQL URL cannot be used. The parser's own error is kept only as text, and
/// only when it does not repeat the URL (which may hold a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PgUrlError {
    /// Not a URL the driver reads; its reason would have quoted the URL.
    #[error("malformed URL; expected postgres://USER:PASSWORD@HOST:PORT/DATABASE")]
    Malformed,
    /// Not a URL the driver reads, for this reason (which does not quote it).
    #[error("malformed URL ({0}); expected postgres://USER:PASSWORD@HOST:PORT/DATABASE")]
    MalformedBecause(String),
}

/// Parses a PostgreSQL URL. The error never repeats the URL (it may hold a password).
pub fn parse_url(url: &str) -> Result<PgConnectOptions, PgUrlError> {
    PgConnectOptions::from_str(url)
        .map(|o| o.application_name("fedq-node"))
        .map_err(|e| {
            let reason = e.to_string();
            if reason.contains(url) {
                PgUrlError::Malformed
            } else {
                PgUrlError::MalformedBecause(reason)
            }
        })
}

/// `text` with every occurrence of `secret` (a resident ID) blanked out: for database
/// error messages, which may quote a parameter.
pub fn without(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        return text.to_owned();
    }
    text.replace(secret, "<resident ID>")
}

/// The pool options the node uses for a database.
pub fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(Duration::from_secs(5))
}

/// How long a lookup waits for a connection to a serving node's database before the node
/// answers that its store is unavailable. sqlx keeps retrying a refused connection until
/// this runs out, so it must stay well inside the coordinator's deadline (2 s by default):
/// a server that is down is then reported by the node as `unavailable`, with its reason,
/// rather than as a silent `timed_out` at the coordinator.
pub const LOOKUP_CONNECTION_WAIT: Duration = Duration::from_millis(1000);

/// A pool that connects on first use, for serving lookups (see
/// [`LOOKUP_CONNECTION_WAIT`]). Needs a running tokio runtime (sqlx spawns its pool
/// maintenance there); errors rather than panics without one.
pub fn lazy_pool(options: PgConnectOptions) -> Result<PgPool, NoRuntime> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(NoRuntime);
    }
    Ok(pool_options()
        .acquire_timeout(LOOKUP_CONNECTION_WAIT)
        .connect_lazy_with(options))
}

/// A PostgreSQL pool was asked for outside a tokio runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a PostgreSQL pool needs a running tokio runtime; start the node from within one")]
pub struct NoRuntime;
