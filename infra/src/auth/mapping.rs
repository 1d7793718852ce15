//! From what an identity provider says of a person to a Baton role and
//! scope. Providers send roles, groups or organisation codes in claims of
//! their own (NHS CIS2 its RBAC codes and organisation, Entra ID `groups`
//! and `roles`); the admin writes rules that turn those into Baton's
//! claims (`role` and its scope), in a TOML file (`role_mapping_file`):
//!
//! ```toml
//! [[rule]]
//! claim = "groups"            # a claim holding a string or a list of them
//! equals = "baton-ward-rbd"
//! set = { role = "ward", hospital = "RBD" }
//! ```
//!
//! The first rule that matches decides. With no rule matching, the
//! provider's own claims are read as a bearer token's are (`role`,
//! `hospital`, `team`...), so a provider that already speaks Baton's claims
//! needs no file. Every rule's `set` is checked when the file is loaded, so
//! a typo stops the server at start instead of refusing staff later.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::claims::{ClaimsProblem, IncomingClaims, Principal};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default, rename = "rule")]
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    claim: String,
    equals: String,
    set: BTreeMap<String, String>,
}

/// Why a mapping file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("role mapping file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("role mapping file {path}: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    /// A rule's `set` does not describe a caller (an unknown role, a ward
    /// without a hospital...).
    #[error("role mapping file {path}: rule {number} ({claim} = {equals:?}): {problem}")]
    Rule {
        path: String,
        number: usize,
        claim: String,
        equals: String,
        problem: ClaimsProblem,
    },
}

/// The admin's rules (none by default).
#[derive(Debug, Clone, Default)]
pub struct RoleMapping {
    rules: Vec<Rule>,
}

/// Whether a claim's value is, or holds, `wanted`.
fn holds(value: &Value, wanted: &str) -> bool {
    match value {
        Value::String(s) => s == wanted,
        Value::Number(n) => n.to_string() == wanted,
        Value::Bool(b) => b.to_string() == wanted,
        Value::Array(items) => items.iter().any(|item| holds(item, wanted)),
        Value::Null | Value::Object(_) => false,
    }
}

impl RoleMapping {
    pub fn load(path: &Path) -> Result<Self, MappingError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| MappingError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown)
    }

    fn parse(text: &str, shown: &str) -> Result<Self, MappingError> {
        let file: File = toml::from_str(text).map_err(|source| MappingError::Parse {
            path: shown.to_owned(),
            source: Box::new(source),
        })?;
        for (index, rule) in file.rules.iter().enumerate() {
            let mut claims = Map::new();
            claims.insert("sub".to_owned(), Value::from("check"));
            apply(&mut claims, rule);
            principal_of(claims).map_err(|problem| MappingError::Rule {
                path: shown.to_owned(),
                number: index + 1,
                claim: rule.claim.clone(),
                equals: rule.equals.clone(),
                problem,
            })?;
        }
        Ok(Self { rules: file.rules })
    }

    /// The role and scope of a person the provider describes with `claims`
    /// (which hold `sub` and `name`).
    pub fn principal(&self, claims: &Map<String, Value>) -> Result<Principal, ClaimsProblem> {
        let mut claims = claims.clone();
        let rule = self.rules.iter().find(|rule| {
            claims
                .get(&rule.claim)
                .is_some_and(|value| holds(value, &rule.equals))
        });
        if let Some(rule) = rule {
            // The rule's claims replace whatever role and scope the
            // provider sent.
            for key in ["role", "hospital", "team", "trust", "hub"] {
                claims.remove(key);
            }
            apply(&mut claims, rule);
        }
        principal_of(claims)
    }
}

fn apply(claims: &mut Map<String, Value>, rule: &Rule) {
    for (key, value) in &rule.set {
        claims.insert(key.clone(), Value::from(value.clone()));
    }
}

/// The caller that claims describe (`sub`, `name`, `role` and its scope),
/// checked as a token's claims are.
pub fn principal_of(claims: Map<String, Value>) -> Result<Principal, ClaimsProblem> {
    let incoming: IncomingClaims = serde_json::from_value(Value::Object(claims))
        .map_err(|_| ClaimsProblem::Invalid("role".to_owned()))?;
    incoming.into_principal()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    const RULES: &str = r#"
        [[rule]]
        claim = "groups"
        equals = "baton-ward-rbd"
        set = { role = "ward", hospital = "RBD" }

        [[rule]]
        claim = "org"
        equals = "REAB-E"
        set = { role = "team", team = "REAB-E" }
    "#;

    #[test]
    fn the_first_matching_rule_gives_the_role_and_scope() {
        let mapping = RoleMapping::parse(RULES, "rules.toml").unwrap();
        let nurse = mapping
            .principal(&claims(serde_json::json!({
                "sub": "u1", "name": "Ann", "groups": ["staff", "baton-ward-rbd"], "org": "REAB-E"
            })))
            .unwrap();
        assert_eq!(nurse.role, Role::Ward);
        assert_eq!(nurse.hospital.as_deref(), Some("RBD"));
        assert_eq!(nurse.name, "Ann");
        let carer = mapping
            .principal(&claims(
                serde_json::json!({"sub": "u2", "org": "REAB-E", "role": "admin"}),
            ))
            .unwrap();
        assert_eq!(carer.role, Role::Team);
        assert_eq!(carer.team.as_deref(), Some("REAB-E"));
    }

    #[test]
    fn with_no_rule_matching_the_providers_own_claims_are_read() {
        let mapping = RoleMapping::parse(RULES, "rules.toml").unwrap();
        let admin = mapping
            .principal(&claims(serde_json::json!({"sub": "u3", "role": "admin"})))
            .unwrap();
        assert_eq!(admin.role, Role::Admin);
        assert_eq!(
            mapping.principal(&claims(serde_json::json!({"sub": "u4", "groups": "other"}))),
            Err(ClaimsProblem::Missing("role".to_owned()))
        );
    }

    #[test]
    fn a_rule_that_describes_no_caller_is_refused_when_the_file_is_read() {
        let bad = "[[rule]]\nclaim = \"groups\"\nequals = \"x\"\nset = { role = \"ward\" }\n";
        match RoleMapping::parse(bad, "rules.toml") {
            Err(MappingError::Rule {
                number, problem, ..
            }) => {
                assert_eq!(number, 1);
                assert_eq!(problem, ClaimsProblem::WardWithoutHospital);
            }
            other => panic!("expected a rule error, got {other:?}"),
        }
        assert!(matches!(
            RoleMapping::parse("[[rule]]\nclaim = 1\n", "rules.toml"),
            Err(MappingError::Parse { .. })
        ));
    }
}
