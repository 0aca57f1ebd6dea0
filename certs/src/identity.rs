//! The typed identity every component agrees on.
//!
//! A certificate names its holder in one URI subject-alternative name of the form
//! `fedq://FEDERATION/ROLE/NAME`. Every other component turns a peer's certificate into an
//! [`Identity`] through [`Identity::from_certificate_der`] and nothing else, so there is
//! one place that decides what a name means.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// URI scheme of fedq identities.
pub const URI_SCHEME: &str = "fedq://";

/// What a certificate holder is allowed to be in the federation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The federation's certificate authority itself.
    Ca,
    /// Authenticates requesters, checks policy, fans out to nodes (TLS client and server).
    Coordinator,
    /// A department's node beside its database (TLS server).
    Node,
    /// A requesting agency's office, e.g. `market-regulation.licensing` (TLS client).
    Requester,
    /// A security officer who signs policy bundles and may publish them to the coordinator.
    Officer,
    /// The consent authority: the identity-verification step at the service window, or the
    /// city's citizen app. It signs consent tokens (`fedq consent issue`) and nothing else.
    ConsentAuthority,
}

impl Role {
    /// The roles `fedq certs issue --role` accepts.
    pub const ISSUABLE: [Role; 5] = [
        Role::Coordinator,
        Role::Node,
        Role::Requester,
        Role::Officer,
        Role::ConsentAuthority,
    ];

    /// The role's name as written in certificates and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ca => "ca",
            Role::Coordinator => "coordinator",
            Role::Node => "node",
            Role::Requester => "requester",
            Role::Officer => "officer",
            Role::ConsentAuthority => "consent-authority",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ca" => Ok(Role::Ca),
            "coordinator" => Ok(Role::Coordinator),
            "node" => Ok(Role::Node),
            "requester" => Ok(Role::Requester),
            "officer" => Ok(Role::Officer),
            "consent-authority" => Ok(Role::ConsentAuthority),
            other => Err(IdentityError::UnknownRole(other.to_owned())),
        }
    }
}

/// Why a name, role or certificate does not carry a valid fedq identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The role is not one of the federation's roles.
    #[error("unknown role `{0}`: expected one of coordinator, node, requester, officer, consent-authority")]
    UnknownRole(String),
    /// A federation or holder name breaks the naming rule.
    #[error("invalid name `{name}`: {why}; use lower-case letters, digits, `-` and `.` (e.g. `market-regulation.licensing`)")]
    InvalidName {
        /// The offending name.
        name: String,
        /// What rule it broke.
        why: &'static str,
    },
    /// The certificate could not be parsed as X.509.
    #[error("certificate is not valid X.509: {0}")]
    BadCertificate(String),
    /// The certificate has no `fedq://` URI SAN, or more than one.
    #[error("certificate carries {0} fedq identities; exactly one `fedq://FEDERATION/ROLE/NAME` URI SAN is required")]
    IdentityCount(usize),
    /// The URI SAN is not of the form `fedq://FEDERATION/ROLE/NAME`.
    #[error("malformed fedq identity `{0}`: expected `fedq://FEDERATION/ROLE/NAME`")]
    MalformedUri(String),
}

/// Checks a federation or holder name: 1–63 characters of `a-z`, `0-9`, `-`, `.`, starting
/// and ending with a letter or digit, no empty dot-separated part. Such a name is safe as a
/// file name and as a DNS name, so it can never escape `--dir`.
pub fn validate_name(name: &str) -> Result<(), IdentityError> {
    let invalid = |why| {
        Err(IdentityError::InvalidName {
            name: name.to_owned(),
            why,
        })
    };
    if name.is_empty() {
        return invalid("it is empty");
    }
    if name.len() > 63 {
        return invalid("it is longer than 63 characters");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
    {
        return invalid(match c {
            '/' | '\\' => "it contains a path separator",
            c if c.is_whitespace() => "it contains a space",
            c if c.is_ascii_uppercase() => "it contains an upper-case letter",
            _ => "it contains a character outside a-z, 0-9, `-` and `.`",
        });
    }
    if name.split('.').any(|part| part.is_empty()) {
        return invalid("it has an empty part between dots");
    }
    if name
        .split('.')
        .any(|part| part.starts_with('-') || part.ends_with('-'))
    {
        return invalid("a part starts or ends with `-`");
    }
    Ok(())
}

/// Who a certificate holder is: federation, role and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identity {
    /// The federation that issued the certificate, e.g. `changsha`.
    pub federation: String,
    /// What the holder may do.
    pub role: Role,
    /// The holder's name, e.g. `court` or `market-regulation.licensing`.
    pub name: String,
}

impl Identity {
    /// Builds an identity after validating both names.
    pub fn new(federation: &str, role: Role, name: &str) -> Result<Self, IdentityError> {
        validate_name(federation)?;
        validate_name(name)?;
        Ok(Self {
            federation: federation.to_owned(),
            role,
            name: name.to_owned(),
        })
    }

    /// The URI SAN that carries this identity.
    pub fn to_uri(&self) -> String {
        format!(
            "{URI_SCHEME}{}/{}/{}",
            self.federation, self.role, self.name
        )
    }

    /// Parses `fedq://FEDERATION/ROLE/NAME`.
    pub fn from_uri(uri: &str) -> Result<Self, IdentityError> {
        let malformed = || IdentityError::MalformedUri(uri.to_owned());
        let rest = uri.strip_prefix(URI_SCHEME).ok_or_else(malformed)?;
        let mut parts = rest.split('/');
        let (Some(federation), Some(role), Some(name), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        Self::new(federation, role.parse()?, name)
    }

    /// Reads the identity from a DER certificate's URI SANs. Exactly one `fedq://` URI must
    /// be present; anything else is refused rather than guessed.
    pub fn from_certificate_der(der: &[u8]) -> Result<Self, IdentityError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| IdentityError::BadCertificate(e.to_string()))?;
        let uris: Vec<&str> = match cert.subject_alternative_name() {
            Ok(Some(san)) => san
                .value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::URI(u) if u.starts_with(URI_SCHEME) => {
                        Some(*u)
                    }
                    _ => None,
                })
                .collect(),
            Ok(None) => Vec::new(),
            Err(e) => return Err(IdentityError::BadCertificate(e.to_string())),
        };
        match uris.as_slice() {
            [uri] => Self::from_uri(uri),
            other => Err(IdentityError::IdentityCount(other.len())),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} `{}` of federation `{}`",
            self.role, self.name, self.federation
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_round_trips() {
        let id = Identity::new("changsha", Role::Requester, "market-regulation.licensing").unwrap();
        assert_eq!(
            id.to_uri(),
            "fedq://changsha/requester/market-regulation.licensing"
        );
        assert_eq!(Identity::from_uri(&id.to_uri()).unwrap(), id);
    }

    #[test]
    fn the_consent_authority_role_is_written_consent_authority() {
        assert_eq!(
            "consent-authority".parse::<Role>().unwrap(),
            Role::ConsentAuthority
        );
        let id = Identity::new("changsha", Role::ConsentAuthority, "service-window").unwrap();
        assert_eq!(
            id.to_uri(),
            "fedq://changsha/consent-authority/service-window"
        );
        assert_eq!(Identity::from_uri(&id.to_uri()).unwrap(), id);
        assert!(Role::ISSUABLE.contains(&Role::ConsentAuthority));
    }

    #[test]
    fn names_that_could_escape_a_directory_are_refused() {
        for bad in [
            "", "../ca", "a/b", "a b", "Court", "a..b", ".a", "a.", "-a", "a\\b", "é",
        ] {
            assert!(validate_name(bad).is_err(), "`{bad}` should be refused");
        }
        for good in [
            "court",
            "public-security",
            "market-regulation.licensing",
            "a1",
        ] {
            validate_name(good).unwrap();
        }
    }

    #[test]
    fn malformed_uris_are_refused() {
        for bad in [
            "fedq://changsha/node",
            "fedq://changsha/node/court/extra",
            "https://changsha/node/court",
            "fedq://changsha/admin/court",
        ] {
            assert!(
                Identity::from_uri(bad).is_err(),
                "`{bad}` should be refused"
            );
        }
    }
}
