//! The periodic sweep: expired codes, tokens, approvals, pending authorize requests,
//! browser sessions, sign-in failure counts and registrations never used are forgotten (all
//! in the store), so memory and tables stay bounded by what is live.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::clock;
use super::state::AppState;
use super::store::{code_replay_memory, Retention, StoreError, Swept};

/// What one sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Rows or entries removed from the store.
    pub store: Swept,
}

/// How long a launch is remembered after it expires: ten minutes, so an app that comes
/// back late hears "expired" or "already used" rather than "unknown".
pub const LAUNCH_MEMORY: i64 = 600;

/// How long a replaced signing key stays in the JWKS: an id_token lives as long as the
/// access token it comes with, and a replica on the same database may sign with the old key
/// until its next sweep reloads the keys; a minute more for clocks that differ.
pub fn signing_key_memory(config: &crate::server::Config) -> i64 {
    let lifetime = i64::try_from(config.access_lifetime).unwrap_or(i64::MAX);
    let reload = i64::try_from(config.sweep_interval.as_secs()).unwrap_or(i64::MAX);
    lifetime.saturating_add(reload).saturating_add(60)
}

/// Sweep everything once, now.
pub async fn sweep_once(state: &AppState) -> Result<SweepReport, StoreError> {
    let now = clock::now();
    let limits = &state.config.login_limits;
    let idle = state.config.client_idle_lifetime;
    let retention = Retention {
        code_memory: code_replay_memory(state.config.code_lifetime),
        client_idle: (idle > 0).then(|| i64::try_from(idle).unwrap_or(i64::MAX)),
        signing_key_memory: signing_key_memory(&state.config),
        launch_memory: LAUNCH_MEMORY,
        session_lifetime: state.sessions.lifetime(),
        failure_window: limits.per_user.window.max(limits.per_address.window),
    };
    let store = state.store.sweep(now, retention).await?;
    // A rotation by another server on the same database takes effect here.
    if let Err(e) = state.keys.reload(state.store.as_ref()).await {
        tracing::warn!("reloading the signing key failed: {e}");
    }
    Ok(SweepReport { store })
}

/// The sweep at start, before the first connection is accepted: what an earlier run left
/// behind goes at once, and no sweep can land in the middle of the first requests (a
/// sweep that started late once removed an approval a request had just made, expired on
/// purpose, before the next request could look at it).
pub async fn sweep_at_start(state: &AppState) {
    if let Err(e) = sweep_once(state).await {
        tracing::warn!("the sweep at start failed, trying again at the next tick: {e}");
    }
}

/// Sweep every `every`, the first time one period from now, until the task is aborted (the
/// server sweeps once before it accepts connections, see [`sweep_at_start`]). A failed sweep
/// (the database is unreachable, say) is logged and tried again at the next tick.
pub fn spawn(state: Arc<AppState>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match sweep_once(&state).await {
                Ok(report) if report != SweepReport::default() => {
                    tracing::debug!("swept {report:?}");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("the sweep failed, trying again later: {e}"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::oauth::pending::{PendingAuthorization, PENDING_LIFETIME};
    use crate::server::store::{MemoryStore, Store};
    use crate::server::Config;

    fn pending(id: &str, created: i64) -> PendingAuthorization {
        PendingAuthorization {
            id: id.into(),
            client_id: "c".into(),
            redirect_uri: "http://localhost:9001/authorized".into(),
            redirect_uri_given: true,
            scope: "patient/*.read".into(),
            state: "s".into(),
            code_challenge: None,
            nonce: None,
            sign_in: Default::default(),
            username: None,
            patient_id: None,
            context: None,
            created,
        }
    }

    #[tokio::test]
    async fn a_sweep_forgets_stale_authorize_requests_and_sessions() {
        let addr = "127.0.0.1:9".parse().unwrap();
        let store = Arc::new(MemoryStore::new());
        let state = AppState::new(
            Config::default(),
            "http://localhost:9".into(),
            addr,
            store.clone(),
        );
        let now = clock::now();
        state
            .pending
            .insert(pending("stale", now - PENDING_LIFETIME - 1))
            .await
            .unwrap();
        state.pending.insert(pending("live", now)).await.unwrap();
        state.sessions.start("daniel-adams").await.unwrap();

        let report = sweep_once(&state).await.unwrap();
        assert_eq!((report.store.pending, report.store.sessions), (1, 0));
        assert_eq!(state.pending.len().await.unwrap(), 1);
        assert!(state.pending.get("live").await.is_some());
        // Twelve hours on, the session is gone too.
        let later = Retention {
            code_memory: 0,
            client_idle: None,
            signing_key_memory: 0,
            launch_memory: 0,
            session_lifetime: state.sessions.lifetime(),
            failure_window: 0,
        };
        let swept = store.sweep(now + 12 * 3600 + 1, later).await.unwrap();
        assert_eq!(swept.sessions, 1);
        assert!(state.sessions.is_empty().await.unwrap());
    }
}
