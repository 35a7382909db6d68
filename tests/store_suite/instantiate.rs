//! `store_suite!(backend, fresh)`: the suite as one test module per backend.

/// Instantiate the suite for one backend: `$fresh` is an async expression giving a [`Fresh`].
#[macro_export]
macro_rules! store_suite {
    ($backend:ident, $fresh:expr) => {
        mod $backend {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn clients_round_trip() {
                let fresh = $fresh.await;
                store_suite::clients(fresh.store.clone()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn approvals_list_and_cascade() {
                let fresh = $fresh.await;
                store_suite::approvals(fresh.store.clone()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn tokens_rotate_and_revoke() {
                let fresh = $fresh.await;
                store_suite::tokens(fresh.store.clone()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn codes_are_single_use() {
                let fresh = $fresh.await;
                store_suite::codes::codes(fresh.store.clone()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn races_have_one_winner() {
                let fresh = $fresh.await;
                let stores = vec![fresh.store.clone(), fresh.second().await];
                store_suite::codes::races(stores).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn assertion_jtis_are_used_once() {
                let fresh = $fresh.await;
                let stores = vec![fresh.store.clone(), fresh.second().await];
                store_suite::jtis::jtis(stores).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn simulated_faults_answer_as_often_as_asked() {
                let fresh = $fresh.await;
                let stores = vec![fresh.store.clone(), fresh.second().await];
                store_suite::faults::faults(stores).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn launches_are_spent_once() {
                let fresh = $fresh.await;
                let stores = vec![fresh.store.clone(), fresh.second().await];
                store_suite::launches::launches(stores).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn browser_sessions_are_shared_and_bounded() {
                let fresh = $fresh.await;
                let stores = vec![fresh.store.clone(), fresh.second().await];
                store_suite::portal::sessions(stores).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn the_anonymous_csrf_key_is_made_once() {
                let fresh = $fresh.await;
                let stores = vec![fresh.store.clone(), fresh.second().await];
                store_suite::portal::anonymous_key(stores).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn pending_requests_are_taken_once() {
                let fresh = $fresh.await;
                let stores = vec![fresh.store.clone(), fresh.second().await];
                store_suite::portal::pending(stores).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn failure_counts_are_never_undercounted() {
                let fresh = $fresh.await;
                let stores = vec![fresh.store.clone(), fresh.second().await];
                store_suite::portal::failures(stores).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn signing_keys_rotate_and_age_out() {
                let fresh = $fresh.await;
                store_suite::signing_keys::signing_keys(fresh.store.clone()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sweep_removes_only_the_dead() {
                let fresh = $fresh.await;
                store_suite::sweeps::sweep(fresh.store.clone()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sweep_forgets_clients_never_approved() {
                let fresh = $fresh.await;
                store_suite::sweeps::sweep_idle_clients(fresh.store.clone()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn idle_clients_are_capped_oldest_first() {
                let fresh = $fresh.await;
                store_suite::sweeps::idle_clients_are_capped(fresh.store.clone()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sweep_keeps_tables_bounded() {
                let fresh = $fresh.await;
                store_suite::sweeps::sweep_keeps_tables_bounded(fresh.store.clone()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn state_survives_reopening() {
                let fresh = $fresh.await;
                fresh.survives_reopening().await;
            }
        }
    };
}
