//! SMART scopes: parsing v1 (`patient/*.read`) and v2 (`patient/Observation.rs?category=…`)
//! resource scopes, and deciding whether one scope set covers another.
//!
//! A scope string from a request is bounded ([`Scopes::parse_request`]: [`MAX_SCOPE_TOKENS`],
//! [`MAX_SCOPE_BYTES`], [`MAX_SCOPE_TOKEN_BYTES`]) and every operation on scopes is linear or
//! close to it (hash sets and maps, never a scan per token).

mod cache;
#[cfg(test)]
mod tests;
mod token;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

pub use cache::{ScopeCache, SCOPE_CACHE_BOUNDS};
pub use token::is_resource_type_name;
use token::parse_token;

/// The most distinct scope tokens a request may carry (registration, authorize, token,
/// debug token): far more than any SMART app asks for, few enough to keep every check cheap.
pub const MAX_SCOPE_TOKENS: usize = 100;
/// The longest scope string a request may carry, in bytes.
pub const MAX_SCOPE_BYTES: usize = 4096;
/// The longest single scope token, in bytes.
pub const MAX_SCOPE_TOKEN_BYTES: usize = 256;

/// Whose data a resource scope reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    /// The patient in context (the token's patient).
    Patient,
    /// Every patient the user may see.
    User,
    /// Backend services; never granted by this server.
    System,
}

/// What a resource scope permits, as SMART v2's c r u d s letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permissions {
    /// Create.
    pub create: bool,
    /// Read by id.
    pub read: bool,
    /// Update.
    pub update: bool,
    /// Delete.
    pub delete: bool,
    /// Search.
    pub search: bool,
}

impl Permissions {
    /// Whether every permission of `other` is also in `self`.
    pub fn contains(&self, other: &Permissions) -> bool {
        (self.create || !other.create)
            && (self.read || !other.read)
            && (self.update || !other.update)
            && (self.delete || !other.delete)
            && (self.search || !other.search)
    }
}

/// One resource scope, e.g. `patient/Observation.rs?category=laboratory`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceScope {
    /// patient/, user/ or system/.
    pub context: Context,
    /// `None` for `*`.
    pub resource_type: Option<String>,
    /// What it permits.
    pub permissions: Permissions,
    /// v2 query restrictions, e.g. `[("category", "laboratory")]`.
    pub filter: Vec<(String, String)>,
}

impl ResourceScope {
    /// Whether this scope names this resource type (or `*`).
    pub fn names_type(&self, resource_type: &str) -> bool {
        self.resource_type
            .as_deref()
            .is_none_or(|t| t == resource_type)
    }
}

/// One space-separated scope token, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A clinical data scope (shared, so a token's grants are built without copying it).
    Resource(Arc<ResourceScope>),
    /// Any other scope (launch/patient, offline_access, openid, fhirUser, …), kept verbatim.
    Other(String),
}

/// Why a scope string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// A character outside RFC 6749's scope-token alphabet.
    #[error("scope {0:?} contains a character RFC 6749 does not allow in a scope (quotes, backslashes, control characters or non-ASCII)")]
    BadCharacter(String),
    /// Something shaped like a resource scope that is not one.
    #[error("scope {0:?} is not a SMART resource scope; write it as patient/Observation.read (v1) or patient/Observation.rs (v2)")]
    Malformed(String),
    /// More distinct tokens than [`MAX_SCOPE_TOKENS`].
    #[error("scope has {count} distinct scope tokens; at most {limit} are allowed (patient/*.rs covers every resource type in one)")]
    TooMany {
        /// Distinct tokens given.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A scope string longer than [`MAX_SCOPE_BYTES`].
    #[error("scope is {len} bytes long; at most {limit} bytes are allowed")]
    TooLong {
        /// Bytes given.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// One token longer than [`MAX_SCOPE_TOKEN_BYTES`].
    #[error("the scope token starting {start:?} is {len} bytes long; at most {limit} bytes are allowed per token")]
    TokenTooLong {
        /// Its first few characters.
        start: String,
        /// Bytes given.
        len: usize,
        /// The limit.
        limit: usize,
    },
}

/// A parsed scope string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes {
    /// Tokens in the order given, duplicates removed.
    pub items: Vec<Scope>,
    raw: Vec<String>,
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw.join(" "))
    }
}

impl Scopes {
    /// Parse a space-separated scope string (RFC 6749 §3.3), of any size: for strings the
    /// server holds (a client's, an approval's, a token's), which consent may have spelled
    /// out beyond the request limits. A scope string from a request goes through
    /// [`Scopes::parse_request`].
    pub fn parse(text: &str) -> Result<Scopes, ScopeError> {
        Self::from_tokens(distinct_tokens(text))
    }

    /// Parse a scope string from a request: at most [`MAX_SCOPE_TOKENS`] distinct tokens,
    /// [`MAX_SCOPE_BYTES`] in all and [`MAX_SCOPE_TOKEN_BYTES`] per token. The count is
    /// checked first, so a huge list is refused for what it is, after one pass over it.
    pub fn parse_request(text: &str) -> Result<Scopes, ScopeError> {
        let distinct = distinct_tokens(text);
        if distinct.len() > MAX_SCOPE_TOKENS {
            return Err(ScopeError::TooMany {
                count: distinct.len(),
                limit: MAX_SCOPE_TOKENS,
            });
        }
        if text.len() > MAX_SCOPE_BYTES {
            return Err(ScopeError::TooLong {
                len: text.len(),
                limit: MAX_SCOPE_BYTES,
            });
        }
        if let Some(long) = distinct.iter().find(|t| t.len() > MAX_SCOPE_TOKEN_BYTES) {
            return Err(ScopeError::TokenTooLong {
                start: long.chars().take(32).collect(),
                len: long.len(),
                limit: MAX_SCOPE_TOKEN_BYTES,
            });
        }
        Self::from_tokens(distinct)
    }

    fn from_tokens(tokens: Vec<&str>) -> Result<Scopes, ScopeError> {
        let mut scopes = Scopes {
            items: Vec::with_capacity(tokens.len()),
            raw: Vec::with_capacity(tokens.len()),
        };
        for token in tokens {
            scopes.items.push(parse_token(token)?);
            scopes.raw.push(token.to_string());
        }
        Ok(scopes)
    }

    /// Whether there are no scopes at all.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Whether this exact scope token is present (for launch/patient, offline_access, …).
    pub fn has(&self, token: &str) -> bool {
        self.raw.iter().any(|t| t == token)
    }

    /// Whether these scopes share who the user is: `openid` with `fhirUser` (or the legacy
    /// `profile`), the grant that comes with an id_token and reads its fhirUser resource.
    pub fn grants_identity(&self) -> bool {
        self.has("openid") && (self.has("fhirUser") || self.has("profile"))
    }

    /// The resource scopes only.
    pub fn resource_scopes(&self) -> impl Iterator<Item = &Arc<ResourceScope>> {
        self.items.iter().filter_map(|s| match s {
            Scope::Resource(r) => Some(r),
            Scope::Other(_) => None,
        })
    }

    /// The scope tokens of `requested` that this set does not cover; empty means a subset.
    /// Linear in both sets: this set's tokens and resource scopes are indexed once (by
    /// context, resource type and filter), and each requested scope is looked up there.
    pub fn uncovered<'a>(&self, requested: &'a Scopes) -> Vec<&'a str> {
        let tokens: HashSet<&str> = self.raw.iter().map(String::as_str).collect();
        let mut by_type: HashMap<(Context, Option<&str>), Coverage> = HashMap::new();
        for have in self.resource_scopes() {
            by_type
                .entry((have.context, have.resource_type.as_deref()))
                .or_default()
                .add(have);
        }
        let covered_in = |key: (Context, Option<&str>), wanted: &ResourceScope| {
            by_type.get(&key).is_some_and(|c| c.covers(wanted))
        };
        requested
            .items
            .iter()
            .zip(&requested.raw)
            .filter(|(scope, raw)| match scope {
                Scope::Other(_) => !tokens.contains(raw.as_str()),
                Scope::Resource(wanted) => {
                    let exact = (wanted.context, wanted.resource_type.as_deref());
                    !(covered_in((wanted.context, None), wanted)
                        || (exact.1.is_some() && covered_in(exact, wanted)))
                }
            })
            .map(|(_, raw)| raw.as_str())
            .collect()
    }
}

/// The resource scopes of one context and resource type (or `*`): those without a filter,
/// which cover any filter, and the others by their exact filter. Each list holds scopes
/// that differ only in their permissions, so it is a few entries long at most.
#[derive(Default)]
struct Coverage<'a> {
    unfiltered: Vec<&'a ResourceScope>,
    by_filter: HashMap<&'a [(String, String)], Vec<&'a ResourceScope>>,
}

impl<'a> Coverage<'a> {
    fn add(&mut self, have: &'a ResourceScope) {
        if have.filter.is_empty() {
            self.unfiltered.push(have);
        } else {
            self.by_filter.entry(&have.filter).or_default().push(have);
        }
    }

    fn covers(&self, wanted: &ResourceScope) -> bool {
        let permits = |have: &&ResourceScope| have.permissions.contains(&wanted.permissions);
        self.unfiltered.iter().any(permits)
            || self
                .by_filter
                .get(wanted.filter.as_slice())
                .is_some_and(|haves| haves.iter().any(permits))
    }
}

/// The non-empty space-separated tokens of `text`, first occurrences only, in order.
fn distinct_tokens(text: &str) -> Vec<&str> {
    let mut seen = HashSet::new();
    text.split(' ')
        .filter(|t| !t.is_empty() && seen.insert(*t))
        .collect()
}

impl Scopes {
    /// The same scopes confined to these resource types: a specific scope for another type
    /// is dropped, and a `*` scope is spelled out per kept type (unless every type in
    /// `all_types` is kept, when it stays as it was).
    pub fn restrict_types(&self, keep: &[&str], all_types: &[&str]) -> Scopes {
        let everything = all_types.iter().all(|t| keep.contains(t));
        let mut out = Vec::new();
        for (scope, raw) in self.items.iter().zip(&self.raw) {
            match scope {
                Scope::Resource(r) if r.resource_type.is_none() && !everything => {
                    let (prefix, rest) = raw.split_once("/*").unwrap_or((raw, ""));
                    out.extend(keep.iter().map(|t| format!("{prefix}/{t}{rest}")));
                }
                Scope::Resource(r) => {
                    if r.resource_type.as_deref().is_none_or(|t| keep.contains(&t)) {
                        out.push(raw.clone());
                    }
                }
                Scope::Other(_) => out.push(raw.clone()),
            }
        }
        Scopes::parse(&out.join(" ")).unwrap_or_default()
    }
}
