//! One scope token: `patient/Observation.rs?category=…`, `patient/*.read`, or any other
//! token kept verbatim.

use std::sync::Arc;

use super::{Context, Permissions, ResourceScope, Scope, ScopeError};

/// Parse one scope token (already split from its string).
pub(super) fn parse_token(token: &str) -> Result<Scope, ScopeError> {
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
    Ok(Scope::Resource(Arc::new(ResourceScope {
        context,
        resource_type,
        permissions,
        filter,
    })))
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
