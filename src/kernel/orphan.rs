//! Exit when the process that started the kernel is gone, as ipykernel's parent poller
//! does: an orphaned kernel would otherwise keep its ports, and the embedded server's, for
//! ever. Jupyter names the parent in `JPY_PARENT_PID`.

use std::time::Duration;

use super::wire::{Outbox, Outgoing};

/// How often the parent is looked at.
const EVERY: Duration = Duration::from_secs(1);

/// Watch the parent; queue `Exit` when it is gone. Returns at once where nothing can be
/// watched (not Unix, or no parent but init from the start).
pub async fn watch(outbox: Outbox) {
    #[cfg(unix)]
    {
        use std::os::unix::process::parent_id;
        // Trust JPY_PARENT_PID only when it is really the parent (a launcher in between
        // would otherwise look like a dead parent).
        let named = std::env::var("JPY_PARENT_PID")
            .ok()
            .and_then(|pid| pid.parse::<u32>().ok())
            .filter(|pid| *pid == parent_id());
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            let now = parent_id();
            let gone = match named {
                Some(parent) => now != parent,
                None => now == 1,
            };
            if gone {
                tracing::warn!("the process that started the kernel is gone; exiting");
                outbox.send(Outgoing::Exit);
                return;
            }
        }
    }
    #[cfg(not(unix))]
    drop(outbox);
}
