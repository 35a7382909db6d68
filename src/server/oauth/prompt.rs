//! OpenID Connect's demands on the sign-in behind an authorize request (Core §3.1.2.1):
//! `prompt=none` (answer without showing a page, or say why not), `prompt=login` (sign in
//! again even if signed in) and `max_age` (a sign-in at most this many seconds old).
//! `prompt=consent` and `select_account` ask for what the pages always do.

use crate::server::oauth::form::Form;

/// What the request demands of the participant's sign-in (kept with the pending request,
/// so defined beside it in the store).
pub use crate::server::store::SignInRule;

impl SignInRule {
    /// The rule an authorize request's `prompt` and `max_age` make, at Unix time `now`;
    /// an `invalid_request` description when either is malformed.
    pub fn of(form: &Form, now: i64) -> Result<SignInRule, String> {
        let mut rule = SignInRule::default();
        if let Some(prompt) = form.get("prompt") {
            let values: Vec<&str> = prompt.split(' ').filter(|v| !v.is_empty()).collect();
            for value in &values {
                match *value {
                    "none" => rule.no_pages = true,
                    "login" => rule.signed_in_since = Some(now),
                    "consent" | "select_account" => {}
                    other => {
                        return Err(format!(
                            "prompt {other:?} is not one of none, login, consent, select_account"
                        ))
                    }
                }
            }
            if rule.no_pages && values.len() > 1 {
                return Err("prompt=none cannot be combined with other prompt values \
                            (OpenID Connect Core §3.1.2.1)"
                    .to_string());
            }
        }
        if let Some(text) = form.get("max_age") {
            let seconds = text.parse::<u32>().map_err(|_| {
                format!("max_age {text:?} must be a whole number of seconds (0 or more)")
            })?;
            rule.max_age = Some(i64::from(seconds));
        }
        Ok(rule)
    }

    /// Whether a sign-in that started at Unix time `signed_in` meets the rule at `now`.
    pub fn accepts(&self, signed_in: i64, now: i64) -> bool {
        self.signed_in_since.is_none_or(|since| signed_in >= since)
            && self.max_age.is_none_or(|age| now - signed_in <= age)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pairs: &[(&str, &str)]) -> Result<SignInRule, String> {
        let owned = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        SignInRule::of(&Form::from_pairs(owned).unwrap(), 1000)
    }

    #[test]
    fn prompt_and_max_age_make_the_rule() {
        assert_eq!(rule(&[]).unwrap(), SignInRule::default());
        assert!(rule(&[("prompt", "none")]).unwrap().no_pages);
        let login = rule(&[("prompt", "login consent")]).unwrap();
        assert_eq!(login.signed_in_since, Some(1000));
        assert!(!login.accepts(999, 1000) && login.accepts(1000, 1005));
        let aged = rule(&[("max_age", "60")]).unwrap();
        assert!(aged.accepts(940, 1000) && !aged.accepts(939, 1000));
        assert!(rule(&[("max_age", "0")]).unwrap().accepts(1000, 1000));
    }

    #[test]
    fn malformed_values_are_named() {
        assert!(rule(&[("prompt", "none login")])
            .unwrap_err()
            .contains("prompt=none"));
        assert!(rule(&[("prompt", "sometimes")])
            .unwrap_err()
            .contains("sometimes"));
        assert!(rule(&[("max_age", "-1")]).unwrap_err().contains("max_age"));
        assert!(rule(&[("max_age", "1.5")]).unwrap_err().contains("max_age"));
    }
}
