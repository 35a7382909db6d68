//! A small browser-like test client for the participant's side of the authorization-code
//! flow, and the research app's side of the token, introspection and revocation endpoints.
//!
//! The browser keeps cookies, does not follow redirects on its own (it follows those that
//! stay on the server and stops at the first one that leaves, which is where the app's
//! redirect_uri receives the answer), and moves only by submitting the HTML forms it is
//! shown: hidden inputs, radios, checkboxes, selects and the submit button pressed, as a
//! browser would serialize them. Tests that forge a request say so with `Form::forge` or
//! `Form::tamper`, so every shortcut is visible where it is taken.
//!
//! Each test binary uses its own part of this module, hence the allow below.
#![allow(dead_code, unused_imports)]

pub mod api;
pub mod browser;
pub mod flow;
pub mod html;

pub use api::{App, Auth, Pkce, Reply, TestServer, Tokens, SEED_REDIRECT, SEED_SCOPE};
pub use browser::{Browser, Callback, Landing};
pub use flow::{
    authorize, exchange_reply, tokens_for, Authorize, Person, AMY, CARTER, DANIEL, JOSEPH,
    PASSWORD, SEED_STATE,
};
pub use html::{Form, Page};
