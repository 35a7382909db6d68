//! Parsed scope strings by their exact text, so a FHIR request with a bearer token (or an
//! authorize request, for its client's scopes) looks them up instead of parsing them again:
//! a server sees few distinct scope strings (one per kind of app and consent), and each is
//! parsed once while it stays in the cache.

use std::mem::size_of;
use std::sync::{Arc, Mutex};

use crate::server::bounded::{Bounded, Bounds, Weigh};

use super::{ResourceScope, Scope, Scopes};

/// The most scope strings kept, and the bytes they may hold. The oldest go first (FIFO, no
/// reordering on a hit: a popular string evicted is parsed once more and comes back).
pub const SCOPE_CACHE_BOUNDS: Bounds = Bounds {
    entries: 1024,
    bytes: 4 * 1024 * 1024,
};

impl Weigh for Arc<Scopes> {
    fn heap_bytes(&self) -> usize {
        let strings: usize = self.raw.iter().map(String::capacity).sum();
        let items =
            self.items.capacity() * size_of::<Scope>() + self.raw.capacity() * size_of::<String>();
        let resources: usize = self
            .items
            .iter()
            .map(|item| match item {
                Scope::Resource(r) => {
                    size_of::<ResourceScope>()
                        + r.resource_type.heap_bytes()
                        + r.filter.capacity() * size_of::<(String, String)>()
                        + r.filter
                            .iter()
                            .map(|(k, v)| k.capacity() + v.capacity())
                            .sum::<usize>()
                }
                Scope::Other(token) => token.capacity(),
            })
            .sum();
        size_of::<Scopes>() + strings + items + resources
    }
}

/// Scope strings already parsed.
pub struct ScopeCache {
    table: Mutex<Bounded<Arc<Scopes>>>,
}

impl Default for ScopeCache {
    fn default() -> Self {
        ScopeCache::with_bounds(SCOPE_CACHE_BOUNDS)
    }
}

impl ScopeCache {
    /// An empty cache within these bounds.
    pub fn with_bounds(bounds: Bounds) -> Self {
        ScopeCache {
            table: Mutex::new(Bounded::new(bounds)),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Bounded<Arc<Scopes>>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The scopes of a stored scope string (a token's, a client's), parsed once; a string
    /// that does not parse grants nothing.
    pub fn stored(&self, text: &str) -> Arc<Scopes> {
        if let Some(hit) = self.table().get(text) {
            return hit.clone();
        }
        // Parsed outside the lock; two requests racing on a new string both parse it once.
        let parsed = Arc::new(Scopes::parse(text).unwrap_or_default());
        self.table().insert(text.to_string(), parsed.clone());
        parsed
    }

    /// How many scope strings are kept.
    pub fn len(&self) -> usize {
        self.table().len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the kept strings and their parsed forms hold.
    pub fn bytes_held(&self) -> usize {
        self.table().bytes_held()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_is_parsed_once_and_shared() {
        let cache = ScopeCache::default();
        let a = cache.stored("launch/patient patient/*.read");
        let b = cache.stored("launch/patient patient/*.read");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(cache.len(), 1);
        assert!(cache.stored("a\"b").is_empty());
    }

    #[test]
    fn the_cache_stays_within_its_bounds() {
        let cache = ScopeCache::default();
        let long: Vec<String> = (0..100)
            .map(|i| format!("patient/Observation.rs?category=c{i:0>20}"))
            .collect();
        for i in 0..3 * SCOPE_CACHE_BOUNDS.entries {
            cache.stored(&format!("{} openid{i}", long.join(" ")));
            assert!(cache.len() <= SCOPE_CACHE_BOUNDS.entries);
            assert!(cache.bytes_held() <= SCOPE_CACHE_BOUNDS.bytes);
        }
        assert!(cache.len() > 1);
    }
}
