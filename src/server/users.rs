//! The shipped participants: who they are, their hashed passwords, and whose charts they see.

use std::sync::Arc;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use serde::Deserialize;

use super::password_check::{stand_in_for, PasswordCheck};

/// How a user relates to a patient they can share.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Relation {
    /// The user is the patient.
    #[serde(rename = "self")]
    Own,
    /// The user represents the patient (a parent, a proxy).
    Represented,
    /// The user is a practitioner who treats the patient.
    Treated,
}

/// One patient a user can share.
#[derive(Debug, Clone, Deserialize)]
pub struct PatientLink {
    /// The FHIR Patient id.
    pub id: String,
    /// How the user relates to the patient.
    pub relation: Relation,
    /// For a represented patient: the RelatedPerson id that stands for the user in the
    /// patient's compartment.
    #[serde(default)]
    pub related_person: Option<String>,
}

/// A portal user.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    /// Login name.
    pub username: String,
    /// Name to greet with.
    pub display_name: String,
    /// Argon2id PHC string; the clear password is never stored.
    password_argon2: String,
    /// For a practitioner: the id of their Practitioner resource.
    #[serde(default)]
    pub practitioner: Option<String>,
    /// Patients this user may share.
    pub patients: Vec<PatientLink>,
}

impl User {
    /// Whether the user may share this patient.
    pub fn has_patient(&self, patient_id: &str) -> bool {
        self.patients.iter().any(|p| p.id == patient_id)
    }

    /// The user's FHIR identity in a grant of this patient, as a relative reference
    /// (`Patient/…`, `RelatedPerson/…` or `Practitioner/…`); `None` when the user cannot
    /// share this patient or the fixture names no resource for the link.
    pub fn fhir_user(&self, patient_id: &str) -> Option<String> {
        let link = self.patients.iter().find(|p| p.id == patient_id)?;
        match link.relation {
            Relation::Own => Some(format!("Patient/{}", link.id)),
            Relation::Represented => link
                .related_person
                .as_ref()
                .map(|id| format!("RelatedPerson/{id}")),
            Relation::Treated => self
                .practitioner
                .as_ref()
                .map(|id| format!("Practitioner/{id}")),
        }
    }

    /// Whether the user signs in as a practitioner (has a Practitioner resource).
    pub fn is_practitioner(&self) -> bool {
        self.practitioner.is_some()
    }

    /// Check a password against the stored hash (argon2 compares in constant time).
    pub fn verify_password(&self, password: &str) -> bool {
        match PasswordHash::new(&self.password_argon2) {
            Ok(hash) => Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok(),
            Err(_) => false,
        }
    }
}

#[derive(Deserialize)]
struct UserFile {
    users: Vec<User>,
}

/// The fixture users, compiled into the binary.
#[derive(Debug, Clone)]
pub struct Users {
    users: Vec<User>,
    /// Sign-in checks: argon2 in bounded memory, and a memo of verified logins.
    check: Arc<PasswordCheck>,
    /// What an unknown name's password is checked against, so it costs what a wrong one
    /// does: a hash with the shipped ones' parameters that matches nothing.
    stand_in: Arc<str>,
}

/// The stand-in when no shipped hash can lend its parameters: argon2's defaults, which
/// the shipped hashes use.
const FALLBACK_STAND_IN: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c3RhbmQtaW4tc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

impl Users {
    /// Load the shipped users.
    pub fn shipped() -> Self {
        let file: UserFile = serde_json::from_str(include_str!("users.json"))
            .expect("src/server/users.json is valid (checked by tests)");
        let stand_in = file
            .users
            .first()
            .and_then(|u| stand_in_for(&u.password_argon2))
            .unwrap_or_else(|| FALLBACK_STAND_IN.to_string());
        Users {
            users: file.users,
            check: Arc::default(),
            stand_in: stand_in.into(),
        }
    }

    /// Whether this user name and password sign in. A login argon2 accepted lately is
    /// recognised by a keyed digest instead of argon2 again (see `password_check`). An
    /// unknown name costs one argon2 check against a stand-in, as a wrong password does.
    pub async fn verify_login(&self, username: &str, password: &str) -> bool {
        match self.get(username) {
            Some(user) => {
                self.check
                    .verify(&user.username, &user.password_argon2, password)
                    .await
            }
            None => {
                self.check
                    .verify_stand_in(username, &self.stand_in, password)
                    .await
            }
        }
    }

    /// How many argon2 checks sign-in has run so far (a remembered login runs none).
    pub fn verifications(&self) -> u64 {
        self.check.verifications()
    }

    /// Find a user by login name.
    pub fn get(&self, username: &str) -> Option<&User> {
        self.users.iter().find(|u| u.username == username)
    }

    /// The user names, in file order, comma-separated (for messages that list them).
    pub fn names(&self) -> String {
        self.users
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Every user, in file order.
    pub fn all(&self) -> &[User] {
        &self.users
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_passwords_verify_and_wrong_ones_do_not() {
        let users = Users::shipped();
        for name in ["daniel-adams", "joseph-ross", "dr-carter"] {
            let user = users.get(name).expect("fixture user");
            assert!(user.verify_password("demo-password"));
            assert!(!user.verify_password("demo-passwore"));
            assert!(!user.verify_password(""));
        }
    }

    #[tokio::test]
    async fn logins_verify_again_from_the_memo_and_wrong_ones_never_do() {
        let users = Users::shipped();
        assert!(users.verify_login("joseph-ross", "demo-password").await);
        assert!(users.verify_login("joseph-ross", "demo-password").await);
        assert!(!users.verify_login("joseph-ross", "demo-passwore").await);
        assert!(!users.verify_login("daniel-adams", "").await);
        assert!(!users.verify_login("nobody", "demo-password").await);
    }

    #[tokio::test]
    async fn an_unknown_name_costs_one_argon2_check_like_a_wrong_password() {
        let users = Users::shipped();
        let cost = |before: u64| users.verifications() - before;
        let before = users.verifications();
        assert!(!users.verify_login("joseph-ross", "wrong").await);
        assert_eq!(cost(before), 1, "a wrong password");
        let before = users.verifications();
        assert!(!users.verify_login("nobody-here", "wrong").await);
        assert_eq!(cost(before), 1, "an unknown name");
        let real = PasswordHash::new(&users.get("joseph-ross").unwrap().password_argon2)
            .unwrap()
            .params
            .to_string();
        let stand_in = PasswordHash::new(&users.stand_in)
            .unwrap()
            .params
            .to_string();
        assert_eq!(real, stand_in);
        assert!(PasswordHash::new(FALLBACK_STAND_IN).is_ok());
    }

    #[test]
    fn daniel_shares_himself_and_amy() {
        let users = Users::shipped();
        let daniel = users.get("daniel-adams").unwrap();
        assert!(daniel.has_patient("smart-1288992"));
        assert!(daniel.has_patient("smart-1032702"));
        assert!(!daniel.has_patient("smart-1081332"));
        assert_eq!(daniel.patients[1].relation, Relation::Represented);
    }

    #[test]
    fn every_user_has_a_fhir_user_for_each_patient_they_share() {
        let users = Users::shipped();
        let fhir_user = |name: &str, patient: &str| users.get(name).unwrap().fhir_user(patient);
        assert_eq!(
            fhir_user("daniel-adams", "smart-1288992").as_deref(),
            Some("Patient/smart-1288992")
        );
        assert_eq!(
            fhir_user("daniel-adams", "smart-1032702").as_deref(),
            Some("RelatedPerson/related-daniel-for-amy")
        );
        assert_eq!(fhir_user("daniel-adams", "smart-1081332"), None);
        assert_eq!(
            fhir_user("joseph-ross", "smart-1081332").as_deref(),
            Some("Patient/smart-1081332")
        );
        assert_eq!(fhir_user("joseph-ross", "smart-1288992"), None);
        for patient in ["smart-1288992", "smart-1032702", "smart-1081332"] {
            assert_eq!(
                fhir_user("dr-carter", patient).as_deref(),
                Some("Practitioner/practitioner-carter"),
                "{patient}"
            );
        }
        assert_eq!(fhir_user("dr-carter", "smart-0000000"), None);
    }

    #[test]
    fn dr_carter_treats_all_three_patients_as_a_practitioner() {
        let users = Users::shipped();
        let carter = users.get("dr-carter").unwrap();
        assert_eq!(carter.display_name, "Dr. Rose Carter");
        assert!(carter.is_practitioner());
        assert_eq!(carter.patients.len(), 3);
        assert!(carter
            .patients
            .iter()
            .all(|p| p.relation == Relation::Treated));
        assert!(!users.get("daniel-adams").unwrap().is_practitioner());
        assert!(!users.get("joseph-ross").unwrap().is_practitioner());
    }

    #[test]
    fn a_link_without_its_resource_has_no_fhir_user() {
        let user: User = serde_json::from_value(serde_json::json!({
            "username": "u", "display_name": "U", "password_argon2": "x",
            "patients": [
                {"id": "p1", "relation": "represented"},
                {"id": "p2", "relation": "treated"},
                {"id": "p3", "relation": "self"}
            ]
        }))
        .unwrap();
        assert_eq!(user.fhir_user("p1"), None);
        assert_eq!(user.fhir_user("p2"), None);
        assert_eq!(user.fhir_user("p3").as_deref(), Some("Patient/p3"));
        assert!(!user.is_practitioner());
    }
}
