//! Spending a launch at the authorize request that names it: found, not expired, not used,
//! and for this client when it was made for one; then spent, once.

use crate::server::clock;
use crate::server::oauth::sha256;
use crate::server::state::AppState;
use crate::server::store::{Launch, StoreError};

/// Why a `launch=` value was refused; the text is the `error_description`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No such launch.
    #[error("the launch value is unknown to this server; launch the app from the EHR again")]
    Unknown,
    /// Past its lifetime.
    #[error(
        "the launch has expired (launches last a few minutes); launch the app from the EHR again"
    )]
    Expired,
    /// An authorize request used it already.
    #[error("the launch was already used by an earlier authorize request (each launch is single use); launch the app from the EHR again")]
    Spent,
    /// Made for another app.
    #[error("the launch was made for another app; launch this app from the EHR")]
    OtherClient,
}

/// Spend the launch `id` for `client_id`: the launch, or why not.
pub async fn spend(
    state: &AppState,
    id: &str,
    client_id: &str,
) -> Result<Result<Launch, Refusal>, StoreError> {
    let hash = sha256(id);
    let Some(stored) = state.store.launch(&hash).await? else {
        return Ok(Err(Refusal::Unknown));
    };
    let launch = stored.launch;
    if launch
        .client_id
        .as_deref()
        .is_some_and(|bound| bound != client_id)
    {
        return Ok(Err(Refusal::OtherClient));
    }
    if stored.spent {
        return Ok(Err(Refusal::Spent));
    }
    if launch.expires <= clock::now() {
        return Ok(Err(Refusal::Expired));
    }
    if !state.store.spend_launch(&hash).await? {
        return Ok(Err(Refusal::Spent));
    }
    Ok(Ok(launch))
}
