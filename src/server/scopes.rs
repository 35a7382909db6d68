//! SMART scopes: parsing v1 (`patient/*.read`) and v2 (`patient/Observation.rs?category=…`)
//! resource scopes, and deciding whether one scope set covers another.

use std::fmt;

/// Whose data a resource scope reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    fn covers(&self, other: &ResourceScope) -> bool {
        self.context == other.context
            && (self.resource_type.is_none() || self.resource_type == other.resource_type)
            && self.permissions.contains(&other.permissions)
            && (self.filter.is_empty() || self.filter == other.filter)
    }
}

/// One space-separated scope token, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A clinical data scope.
    Resource(ResourceScope),
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
    /// Parse a space-separated scope string (RFC 6749 §3.3).
    pub fn parse(text: &str) -> Result<Scopes, ScopeError> {
        let mut scopes = Scopes::default();
        for token in text.split(' ').filter(|t| !t.is_empty()) {
            if scopes.raw.iter().any(|t| t == token) {
                continue;
            }
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

    /// The resource scopes only.
    pub fn resource_scopes(&self) -> impl Iterator<Item = &ResourceScope> {
        self.items.iter().filter_map(|s| match s {
            Scope::Resource(r) => Some(r),
            Scope::Other(_) => None,
        })
    }

    /// The scope tokens of `requested` that this set does not cover; empty means a subset.
    pub fn uncovered<'a>(&self, requested: &'a Scopes) -> Vec<&'a str> {
        requested
            .items
            .iter()
            .zip(&requested.raw)
            .filter(|(scope, raw)| !self.covers(scope, raw))
            .map(|(_, raw)| raw.as_str())
            .collect()
    }

    fn covers(&self, scope: &Scope, raw: &str) -> bool {
        match scope {
            Scope::Other(_) => self.has(raw),
            Scope::Resource(wanted) => self.resource_scopes().any(|have| have.covers(wanted)),
        }
    }
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

fn parse_token(token: &str) -> Result<Scope, ScopeError> {
    let allowed = |c: char| c == '!' || ('#'..='[').contains(&c) || (']'..='~').contains(&c);
    if !token.chars().all(allowed) {
        return Err(ScopeError::BadCharacter(token.to_string()));
    }
    let context = match token.split_once('/') {
        Some(("patient", _)) => Context::Patient,
        Some(("user", _)) => Context::User,
        Some(("system", _)) => Context::System,
        _ => return Ok(Scope::Other(token.to_string())),
    };
    let malformed = || ScopeError::Malformed(token.to_string());
    let rest = &token[token.find('/').unwrap_or(0) + 1..];
    let (body, query) = match rest.split_once('?') {
        Some((body, query)) => (body, Some(query)),
        None => (rest, None),
    };
    let (resource_type, action) = body.rsplit_once('.').ok_or_else(malformed)?;
    let resource_type = match resource_type {
        "*" => None,
        t if is_resource_type_name(t) => Some(t.to_string()),
        _ => return Err(malformed()),
    };
    let permissions = parse_action(action).ok_or_else(malformed)?;
    let filter = match query {
        None => Vec::new(),
        Some(q) => {
            let pairs: Vec<(String, String)> = form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            if pairs.is_empty() || pairs.iter().any(|(k, v)| k.is_empty() || v.is_empty()) {
                return Err(malformed());
            }
            pairs
        }
    };
    Ok(Scope::Resource(ResourceScope {
        context,
        resource_type,
        permissions,
        filter,
    }))
}

/// `Observation`, `MedicationRequest`: a capitalised ASCII name.
pub fn is_resource_type_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_alphabetic())
        && name.len() <= 64
}

fn parse_action(action: &str) -> Option<Permissions> {
    match action {
        "read" => Some(Permissions {
            read: true,
            search: true,
            ..Default::default()
        }),
        "write" => Some(Permissions {
            create: true,
            update: true,
            delete: true,
            ..Default::default()
        }),
        "*" => Some(Permissions {
            create: true,
            read: true,
            update: true,
            delete: true,
            search: true,
        }),
        letters => {
            // v2: a non-empty run of c r u d s, each at most once, in that order.
            let mut perms = Permissions::default();
            let mut last = None;
            for c in letters.chars() {
                let position = "cruds".find(c)?;
                if last.is_some_and(|l| l >= position) {
                    return None;
                }
                last = Some(position);
                match c {
                    'c' => perms.create = true,
                    'r' => perms.read = true,
                    'u' => perms.update = true,
                    'd' => perms.delete = true,
                    _ => perms.search = true,
                }
            }
            last.map(|_| perms)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(text: &str) -> ResourceScope {
        match &Scopes::parse(text).unwrap().items[0] {
            Scope::Resource(r) => r.clone(),
            other => panic!("{text} parsed as {other:?}"),
        }
    }

    #[test]
    fn v1_read_grants_read_and_search() {
        let r = resource("patient/*.read");
        assert_eq!(r.context, Context::Patient);
        assert_eq!(r.resource_type, None);
        assert!(r.permissions.read && r.permissions.search && !r.permissions.create);
    }

    #[test]
    fn v2_letters_in_order_only() {
        let r = resource("patient/Observation.rs");
        assert_eq!(r.resource_type.as_deref(), Some("Observation"));
        assert!(r.permissions.read && r.permissions.search && !r.permissions.update);
        for bad in [
            "patient/Observation.sr",
            "patient/Observation.rr",
            "patient/Observation.x",
            "patient/Observation.",
            "patient/observation.read",
            "patient/Observation",
        ] {
            assert!(
                matches!(Scopes::parse(bad), Err(ScopeError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn v2_filters_are_kept() {
        let r = resource("patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory");
        assert_eq!(
            r.filter,
            vec![(
                "category".to_string(),
                "http://terminology.hl7.org/CodeSystem/observation-category|laboratory".to_string()
            )]
        );
        assert!(Scopes::parse("patient/Observation.rs?").is_err());
    }

    #[test]
    fn other_scopes_pass_through_and_bad_characters_fail() {
        let s = Scopes::parse("launch/patient  offline_access openid offline_access").unwrap();
        assert_eq!(s.to_string(), "launch/patient offline_access openid");
        assert!(s.has("offline_access"));
        assert!(matches!(
            Scopes::parse("a\"b"),
            Err(ScopeError::BadCharacter(_))
        ));
        assert!(matches!(
            Scopes::parse("caf\u{e9}"),
            Err(ScopeError::BadCharacter(_))
        ));
    }

    #[test]
    fn restricting_types_spells_out_wildcards() {
        let all = ["Patient", "Observation", "Condition"];
        let s = Scopes::parse("launch/patient patient/*.read patient/Condition.rs offline_access")
            .unwrap();
        assert_eq!(
            s.restrict_types(&["Patient", "Observation"], &all)
                .to_string(),
            "launch/patient patient/Patient.read patient/Observation.read offline_access"
        );
        assert_eq!(s.restrict_types(&all, &all).to_string(), s.to_string());
        let v2 = Scopes::parse("patient/*.rs?category=laboratory").unwrap();
        assert_eq!(
            v2.restrict_types(&["Observation"], &all).to_string(),
            "patient/Observation.rs?category=laboratory"
        );
    }

    #[test]
    fn coverage_is_semantic() {
        let have = Scopes::parse("launch/patient patient/*.read offline_access").unwrap();
        let narrower =
            Scopes::parse("patient/Observation.rs patient/Patient.read launch/patient").unwrap();
        assert!(have.uncovered(&narrower).is_empty());
        let wider = Scopes::parse("patient/*.write user/*.read openid").unwrap();
        assert_eq!(
            have.uncovered(&wider),
            vec!["patient/*.write", "user/*.read", "openid"]
        );
        let filtered = Scopes::parse("patient/Observation.rs?category=laboratory").unwrap();
        assert!(have.uncovered(&filtered).is_empty());
        assert_eq!(
            filtered.uncovered(&Scopes::parse("patient/Observation.rs").unwrap()),
            vec!["patient/Observation.rs"]
        );
    }
}
