//! Scopes and data categories in words a participant understands.

use crate::server::fhir::data::SERVED_TYPES;
use crate::server::scopes::{Context, Scope, Scopes};

/// A data category on the consent page: one FHIR type, in plain words.
#[derive(Debug, Clone, PartialEq)]
pub struct Category {
    /// The FHIR type, the checkbox's value.
    pub resource_type: &'static str,
    /// What it holds, for a person.
    pub label: &'static str,
}

/// What each served type is called on the consent page.
fn label(resource_type: &str) -> &'static str {
    match resource_type {
        "Patient" => "Demographics: name, birth date, address",
        "Observation" => "Vital signs, lab results and smoking status",
        "Condition" => "Conditions and diagnoses",
        "MedicationRequest" => "Medications",
        "AllergyIntolerance" => "Allergies",
        "Immunization" => "Immunizations",
        "Procedure" => "Procedures",
        "Encounter" => "Visits",
        _ => "Other records",
    }
}

/// The categories a scope set can reach, in the server's order.
pub fn categories(scopes: &Scopes) -> Vec<Category> {
    SERVED_TYPES
        .iter()
        .filter(|t| {
            scopes.resource_scopes().any(|s| {
                s.context != Context::System
                    && s.names_type(t)
                    && (s.permissions.read || s.permissions.search)
            })
        })
        .map(|t| Category {
            resource_type: t,
            label: label(t),
        })
        .collect()
}

/// What a scope set lets an app do, by whose records: a `user/` scope reaches every patient
/// the participant can share whichever one is chosen (see `fhir::access`), a `patient/`
/// scope only the chosen one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reach {
    /// Sentences for the `user/` scopes: these hold for every patient listed.
    pub every_patient: Vec<String>,
    /// Sentences for the `patient/` scopes: these hold for the chosen patient only.
    pub chosen_patient: Vec<String>,
}

/// The resource scopes in words, split by whose records they reach.
pub fn reach(scopes: &Scopes) -> Reach {
    let mut reach = Reach::default();
    for scope in scopes.resource_scopes() {
        let line = describe_one(&Scope::Resource(scope.clone()));
        match scope.context {
            Context::User => reach.every_patient.push(line),
            Context::Patient => reach.chosen_patient.push(line),
            Context::System => {}
        }
    }
    reach
}

/// One sentence per scope token.
pub fn describe(scopes: &Scopes) -> Vec<String> {
    let offline = scopes.has("offline_access");
    scopes
        .items
        .iter()
        .map(|scope| match scope {
            // With offline_access too, the grant outlives the sign-in (see grants.rs).
            Scope::Other(token) if token == "online_access" && offline => {
                "Keep access while you are signed in here, and after you leave as well \
                 (the offline access above)"
                    .to_string()
            }
            other => describe_one(other),
        })
        .collect()
}

fn describe_one(scope: &Scope) -> String {
    match scope {
        Scope::Other(token) => match token.as_str() {
            "launch/patient" => "Know which patient's records you chose to share".to_string(),
            "launch" => "Start from your health record's app launcher".to_string(),
            "offline_access" => {
                "Keep access after you leave, until the sharing period ends or you revoke it"
                    .to_string()
            }
            "online_access" => "Keep access while you stay signed in here: when you sign out or \
                 your sign-in ends, the app can no longer renew its access"
                .to_string(),
            "openid" | "fhirUser" | "profile" => {
                "Know who you are (your name and account)".to_string()
            }
            other => format!("Use the permission \u{201c}{other}\u{201d}"),
        },
        Scope::Resource(r) => {
            let what = match &r.resource_type {
                None => "all health records".to_string(),
                Some(t) => label(t).to_lowercase(),
            };
            let whose = match r.context {
                Context::Patient => "of the chosen patient",
                Context::User => "of every patient you can share",
                Context::System => "of any patient",
            };
            let verb = match (
                r.permissions.read || r.permissions.search,
                r.permissions.create || r.permissions.update || r.permissions.delete,
            ) {
                (true, true) => "Read and change",
                (true, false) => "Read",
                (false, _) => "Change",
            };
            let only = if r.filter.is_empty() {
                String::new()
            } else {
                let parts: Vec<String> = r.filter.iter().map(|(k, v)| format!("{k} {v}")).collect();
                format!(" (only {})", parts.join(", "))
            };
            format!("{verb} {what} {whose}{only}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_scopes_read_well() {
        let scopes = Scopes::parse("launch/patient patient/*.read offline_access").unwrap();
        let words = describe(&scopes);
        assert_eq!(words[1], "Read all health records of the chosen patient");
        assert!(words[2].starts_with("Keep access after you leave"));
        assert_eq!(categories(&scopes).len(), SERVED_TYPES.len());
    }

    #[test]
    fn online_access_says_when_it_ends() {
        let online = Scopes::parse("patient/*.read online_access").unwrap();
        assert!(describe(&online)[1].contains("when you sign out or your sign-in ends"));
        let both = Scopes::parse("patient/*.read online_access offline_access").unwrap();
        assert!(describe(&both)[1].contains("after you leave as well"));
    }

    #[test]
    fn narrow_scopes_offer_narrow_categories() {
        let scopes =
            Scopes::parse("patient/Observation.rs?category=laboratory launch/patient").unwrap();
        let offered = categories(&scopes);
        assert_eq!(offered.len(), 1);
        assert_eq!(offered[0].resource_type, "Observation");
        assert!(describe(&scopes)[0].ends_with("(only category laboratory)"));
    }

    #[test]
    fn user_scopes_reach_every_patient_and_patient_scopes_the_chosen_one() {
        let scopes =
            Scopes::parse("launch/patient user/Observation.rs patient/Condition.read").unwrap();
        let reach = reach(&scopes);
        assert_eq!(
            reach.every_patient,
            ["Read vital signs, lab results and smoking status of every patient you can share"]
        );
        assert_eq!(
            reach.chosen_patient,
            ["Read conditions and diagnoses of the chosen patient"]
        );
    }
}
