//! The [`Authenticator`] as its callers see it, one file a source of trust;
//! the helpers every file shares are here.

mod external;
mod jwks;
mod jwks_server;
mod local;

use super::*;

use ed25519_dalek::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const RSA_PRIVATE: &str = include_str!("../../../tests/fixtures/test-only-rsa-private.pem");
const RSA_PUBLIC: &str = include_str!("../../../tests/fixtures/test-only-rsa-public.pem");

fn principal(role: Role, hospital: Option<&str>, team: Option<&str>) -> Principal {
    Principal {
        sub: "u-42".to_owned(),
        name: "Sam Carter".to_owned(),
        role,
        hospital: hospital.map(str::to_owned),
        trust: None,
        team: team.map(str::to_owned),
        hub: None,
    }
}

fn ward() -> Principal {
    principal(Role::Ward, Some("RXH"), None)
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Claims as the local key would sign them, for tests that change one.
fn local_claims() -> serde_json::Value {
    json!({
        "sub": "u-42", "name": "Sam Carter", "role": "ward", "hospital": "RXH",
        "iss": LOCAL_ISSUER, "aud": LOCAL_AUDIENCE, "iat": now(), "exp": now() + 600,
    })
}

fn sign_with_local_key(dir: &Path, claims: &serde_json::Value) -> String {
    LocalKey::load_or_create(dir).unwrap().sign(claims).unwrap()
}

fn config(dir: &Path) -> Config {
    Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    }
}

/// An Ed25519 key pair of a pretend identity provider: its signing key
/// and the path of its public key PEM inside `dir`.
fn provider_ed25519_key(dir: &Path) -> (EncodingKey, PathBuf) {
    let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    let der = key.to_pkcs8_der().unwrap();
    let public = key
        .verifying_key()
        .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .unwrap();
    let path = dir.join("idp-public.pem");
    std::fs::write(&path, public).unwrap();
    (EncodingKey::from_ed_der(der.as_bytes()), path)
}

fn sign(
    key: &EncodingKey,
    alg: Algorithm,
    kid: Option<&str>,
    claims: &serde_json::Value,
) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn idp_claims(iss: &str, aud: &str) -> serde_json::Value {
    json!({
        "sub": "u-7", "name": "Alex Team", "role": "team", "team": "REAB-N",
        "iss": iss, "aud": aud, "iat": now(), "exp": now() + 600,
    })
}

fn external(dir: &Path, key_file: PathBuf) -> Config {
    Config {
        jwt_issuer: Some("https://idp.example".to_owned()),
        jwt_audience: Some("baton-api".to_owned()),
        jwt_public_key_file: Some(key_file),
        ..config(dir)
    }
}

fn base64_url(bytes: &[u8]) -> String {
    // Unpadded base64url, as JWTs encode their parts.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}
