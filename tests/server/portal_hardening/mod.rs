//! The portal's hardening: where sign-in may send a browser (`next`), what anonymous
//! visitors cost the server (nothing stored), what an unknown user name costs (the same as
//! a wrong password), and what the patient picker says `user/` scopes share.

mod anonymous_sessions;
mod next_redirect;
mod router;
mod sign_in_cost;
mod user_scope_words;
