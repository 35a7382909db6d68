//! Scopes and data categories in words a participant understands.

use crate::server::fhir::data::{in_compartment, SERVED_TYPES};
use crate::server::scopes::{Context, Scope, Scopes};
use crate::server::users::Relation;

/// How a patient is related to the signed-in user, as the picker and the EHR page say it.
pub fn relation(relation: &Relation) -> &'static str {
    match relation {
        Relation::Own => "You",
        Relation::Represented => "Someone you represent",
        Relation::Treated => "Your patient",
    }
}

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
        "RelatedPerson" => "People who represent the patient",
        "Practitioner" => "Clinicians' names and identifiers",
        _ => "Other records",
    }
}

/// The categories a scope set can reach, in the server's order (a type in no patient
/// compartment only through a `user/` scope, as `fhir::access` has it).
pub fn categories(scopes: &Scopes) -> Vec<Category> {
    SERVED_TYPES
        .iter()
        .filter(|t| {
            scopes.resource_scopes().any(|s| {
                (s.context == Context::User || s.context == Context::Patient && in_compartment(t))
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
        // A type in no compartment (Practitioner) is nobody's record: no patient's reach.
        if scope
            .resource_type
            .as_deref()
            .is_some_and(|t| !in_compartment(t))
        {
            continue;
        }
        let line = describe_one(&Scope::Resource(scope.clone()));
        match scope.context {
            Context::User => reach.every_patient.push(line),
            Context::Patient => reach.chosen_patient.push(line),
            Context::System => {}
        }
    }
    reach
}

/// Who the participant is in the grant being asked for: their fhirUser for the chosen
/// patient (`User::fhir_user`) and that patient's name.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    /// The relative reference, e.g. `RelatedPerson/related-daniel-for-amy`; `None` if none.
    pub fhir_user: Option<&'a str>,
    /// The chosen patient's name.
    pub patient_name: &'a str,
}

/// The identity scopes `openid`, `fhirUser` and `profile`.
fn is_identity_scope(token: &str) -> bool {
    matches!(token, "openid" | "fhirUser" | "profile")
}

/// What the identity grant (`openid` with `fhirUser` or `profile`) shares, in words.
pub fn who_you_are(identity: &Identity) -> String {
    let kind = identity
        .fhir_user
        .and_then(|r| r.split_once('/'))
        .map(|(kind, _)| kind);
    match kind {
        Some("RelatedPerson") => format!(
            "Know who you are: your name and your record as a FHIR RelatedPerson (the person who represents {})",
            identity.patient_name
        ),
        Some(kind) => format!("Know who you are: your name and your record as a FHIR {kind}"),
        None => "Know who you are: your name".to_string(),
    }
}

/// On /apps: what an approval's identity grant lets the app know, if it has one.
pub fn knows_you(scope: &str, fhir_user: Option<&str>) -> Option<String> {
    let scopes = Scopes::parse(scope).unwrap_or_default();
    if !scopes.grants_identity() {
        return None;
    }
    Some(match fhir_user {
        Some(reference) => {
            format!("Knows who you are: your name and your FHIR record {reference}")
        }
        None => "Knows who you are: your name".to_string(),
    })
}

/// One sentence per scope token; the identity scopes together in one sentence.
pub fn describe(scopes: &Scopes, identity: &Identity) -> Vec<String> {
    let offline = scopes.has("offline_access");
    let shares_identity = scopes.grants_identity();
    let mut identity_said = false;
    let mut lines = Vec::new();
    for scope in &scopes.items {
        let line = match scope {
            // With offline_access too, the grant outlives the sign-in (see grants.rs).
            Scope::Other(token) if token == "online_access" && offline => {
                "Keep access while you are signed in here, and after you leave as well \
                 (the offline access above)"
                    .to_string()
            }
            Scope::Other(token) if is_identity_scope(token) && shares_identity => {
                if std::mem::replace(&mut identity_said, true) {
                    continue;
                }
                who_you_are(identity)
            }
            other => describe_one(other),
        };
        lines.push(line);
    }
    lines
}

fn describe_one(scope: &Scope) -> String {
    match scope {
        Scope::Other(token) => match token.as_str() {
            "launch/patient" => "Know which patient's records you chose to share".to_string(),
            "launch" => "Start from your health record's app launcher".to_string(),
            "launch/encounter" => {
                "Know which visit (encounter) you chose to open it with".to_string()
            }
            "offline_access" => {
                "Keep access after you leave, until the sharing period ends or you revoke it"
                    .to_string()
            }
            "online_access" => "Keep access while you stay signed in here: when you sign out or \
                 your sign-in ends, the app can no longer renew its access"
                .to_string(),
            "openid" => "Confirm your sign-in with OpenID Connect; on its own this shares \
                 nothing about who you are"
                .to_string(),
            "fhirUser" | "profile" => "Ask who you are; without OpenID Connect (openid) \
                 nothing about you is shared"
                .to_string(),
            other => format!("Use the permission \u{201c}{other}\u{201d}"),
        },
        Scope::Resource(r)
            if r.resource_type
                .as_deref()
                .is_some_and(|t| !in_compartment(t)) =>
        {
            let what = label(r.resource_type.as_deref().unwrap_or_default()).to_lowercase();
            match r.context {
                Context::User => format!("Read {what} (these belong to no patient's record)"),
                _ => format!(
                    "Nothing more: {what} belong to no patient's record, so a patient-level permission does not reach them"
                ),
            }
        }
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

    const NOBODY: Identity = Identity {
        fhir_user: None,
        patient_name: "Nobody",
    };

    fn identity_words(scope: &str, fhir_user: &str) -> Vec<String> {
        let scopes = Scopes::parse(scope).unwrap();
        let who = Identity {
            fhir_user: Some(fhir_user),
            patient_name: "Amy V. Shaw",
        };
        describe(&scopes, &who)
    }

    #[test]
    fn the_identity_grant_says_whose_record_in_one_line() {
        let words = identity_words(
            "openid fhirUser profile patient/*.rs",
            "Patient/smart-1288992",
        );
        assert_eq!(
            words,
            [
                "Know who you are: your name and your record as a FHIR Patient",
                "Read all health records of the chosen patient"
            ]
        );
        assert_eq!(
            identity_words("profile openid", "Practitioner/practitioner-carter"),
            ["Know who you are: your name and your record as a FHIR Practitioner"]
        );
        assert_eq!(
            identity_words("openid fhirUser", "RelatedPerson/related-daniel-for-amy"),
            ["Know who you are: your name and your record as a FHIR RelatedPerson (the person who represents Amy V. Shaw)"]
        );
        // Either half alone shares nothing, and says so.
        let alone = identity_words("openid", "Patient/smart-1288992");
        assert!(alone[0].contains("shares nothing"), "{alone:?}");
        let alone = identity_words("fhirUser", "Patient/smart-1288992");
        assert!(
            alone[0].contains("nothing about you is shared"),
            "{alone:?}"
        );
    }

    #[test]
    fn apps_say_which_approvals_know_who_you_are() {
        assert_eq!(
            knows_you("openid fhirUser patient/*.rs", Some("Patient/p1")).as_deref(),
            Some("Knows who you are: your name and your FHIR record Patient/p1")
        );
        assert!(knows_you("openid profile", None).is_some());
        assert_eq!(knows_you("openid patient/*.rs", Some("Patient/p1")), None);
        assert_eq!(knows_you("fhirUser patient/*.rs", Some("Patient/p1")), None);
    }

    #[test]
    fn practitioner_scopes_reach_no_patient() {
        let scopes = Scopes::parse("user/Practitioner.rs patient/Practitioner.rs").unwrap();
        let words = describe(&scopes, &NOBODY);
        assert_eq!(
            words[0],
            "Read clinicians' names and identifiers (these belong to no patient's record)"
        );
        assert!(words[1].starts_with("Nothing more"), "{words:?}");
        assert_eq!(reach(&scopes), Reach::default());
        let offered: Vec<&str> = categories(&scopes)
            .iter()
            .map(|c| c.resource_type)
            .collect();
        assert_eq!(offered, ["Practitioner"]);
    }

    #[test]
    fn the_seed_scopes_read_well() {
        let scopes = Scopes::parse("launch/patient patient/*.read offline_access").unwrap();
        let words = describe(&scopes, &NOBODY);
        assert_eq!(words[1], "Read all health records of the chosen patient");
        assert!(words[2].starts_with("Keep access after you leave"));
        // Every type but those in no patient's compartment.
        let offered: Vec<&str> = categories(&scopes)
            .iter()
            .map(|c| c.resource_type)
            .collect();
        assert_eq!(offered.len(), SERVED_TYPES.len() - 1);
        assert!(offered.contains(&"RelatedPerson") && !offered.contains(&"Practitioner"));
        let user = Scopes::parse("user/*.rs").unwrap();
        assert_eq!(categories(&user).len(), SERVED_TYPES.len());
    }

    #[test]
    fn online_access_says_when_it_ends() {
        let online = Scopes::parse("patient/*.read online_access").unwrap();
        assert!(describe(&online, &NOBODY)[1].contains("when you sign out or your sign-in ends"));
        let both = Scopes::parse("patient/*.read online_access offline_access").unwrap();
        assert!(describe(&both, &NOBODY)[1].contains("after you leave as well"));
    }

    #[test]
    fn narrow_scopes_offer_narrow_categories() {
        let scopes =
            Scopes::parse("patient/Observation.rs?category=laboratory launch/patient").unwrap();
        let offered = categories(&scopes);
        assert_eq!(offered.len(), 1);
        assert_eq!(offered[0].resource_type, "Observation");
        assert!(describe(&scopes, &NOBODY)[0].ends_with("(only category laboratory)"));
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
