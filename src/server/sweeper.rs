//! The periodic sweep: expired codes, tokens, approvals, pending authorize requests and
//! browser sessions are forgotten, so memory and tables stay bounded by what is live.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::clock;
use super::state::AppState;
use super::store::{StoreError, Swept};

/// What one sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Rows or entries removed from the store.
    pub store: Swept,
    /// Authorize requests nobody finished in time.
    pub pending: usize,
    /// Browser sessions past their lifetime.
    pub sessions: usize,
}

/// Sweep everything once, now.
pub async fn sweep_once(state: &AppState) -> Result<SweepReport, StoreError> {
    let now = clock::now();
    let pending = state.pending.sweep(now);
    let sessions = state.sessions.sweep(now);
    let store = state.store.sweep(now).await?;
    Ok(SweepReport {
        store,
        pending,
        sessions,
    })
}

/// Sweep at once and then every `every` until the task is aborted. A failed sweep (the
/// database is unreachable, say) is logged and tried again at the next tick.
pub fn spawn(state: Arc<AppState>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
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
