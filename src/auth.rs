//! Secure mode: the server's private key and the connect tokens a game backend issues.
//!
//! A token is netcode's `ConnectToken`, signed with the server's 32-byte private key; it fixes
//! the client's id and carries the realm in its user data, so a client can neither pick
//! another's id nor join another tenant. Tokens travel as hex text.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use renetcode::ConnectToken;

use crate::protocol::{PROTOCOL_ID, Realm};

/// Why a key or token could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// The key is not 64 hex digits (32 bytes).
    BadKey(String),
    /// The token is not valid hex or not a netcode connect token.
    BadToken(String),
    /// netcode refused to build the token (too many server addresses).
    Generate(String),
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::BadKey(why) => write!(f, "invalid private key: {why}"),
            AuthError::BadToken(why) => write!(f, "invalid connect token: {why}"),
            AuthError::Generate(why) => write!(f, "cannot generate a connect token: {why}"),
        }
    }
}

impl std::error::Error for AuthError {}

fn hex_decode(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return Err("odd number of hex digits".to_owned());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|_| format!("not hex at {i}")))
        .collect()
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a private key: 64 hex digits.
///
/// # Errors
/// [`AuthError::BadKey`].
pub fn parse_key(text: &str) -> Result<[u8; 32], AuthError> {
    let bytes = hex_decode(text).map_err(AuthError::BadKey)?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| AuthError::BadKey(format!("{} bytes, expected 32", b.len())))
}

/// A fresh random private key, as 64 hex digits.
pub fn generate_key() -> String {
    hex_encode(&renetcode::generate_random_bytes::<32>())
}

/// Everything a connect token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The client id the token grants.
    pub client_id: u64,
    /// The realm (tenant) it joins.
    pub realm: Realm,
    /// The server address the client will dial (must equal the server's public address).
    pub server: SocketAddr,
    /// Seconds until the token expires. Default in the CLI: 300.
    pub expire_secs: u64,
    /// Seconds of silence before netcode drops the connection.
    pub timeout_secs: i32,
}

/// Signs a connect token, as hex text.
///
/// # Errors
/// [`AuthError::Generate`] if netcode refuses the inputs.
pub fn generate_token(request: &TokenRequest, key: &[u8; 32]) -> Result<String, AuthError> {
    generate_token_at(request, key, now(), PROTOCOL_ID)
}

/// [`generate_token`] carrying initial voice groups (#17) in the user data beside the realm
/// (see [`token_user_data`](crate::protocol::token_user_data)): the server puts the client in
/// them when it connects.
///
/// # Errors
/// [`AuthError::Generate`] if netcode refuses the inputs.
pub fn generate_token_with_groups(
    request: &TokenRequest,
    groups: &[crate::proximity::GroupId],
    key: &[u8; 32],
) -> Result<String, AuthError> {
    let user_data = crate::protocol::token_user_data(request.realm, groups);
    sign(request, key, now(), PROTOCOL_ID, &user_data)
}

/// [`generate_token`] with the clock and protocol id given (tests make expired and
/// wrong-protocol tokens with it).
///
/// # Errors
/// [`AuthError::Generate`] if netcode refuses the inputs.
pub fn generate_token_at(
    request: &TokenRequest,
    key: &[u8; 32],
    now: Duration,
    protocol_id: u64,
) -> Result<String, AuthError> {
    sign(
        request,
        key,
        now,
        protocol_id,
        &request.realm.to_user_data(),
    )
}

fn sign(
    request: &TokenRequest,
    key: &[u8; 32],
    now: Duration,
    protocol_id: u64,
    user_data: &[u8; 256],
) -> Result<String, AuthError> {
    let token = ConnectToken::generate(
        now,
        protocol_id,
        request.expire_secs,
        request.client_id,
        request.timeout_secs,
        vec![request.server],
        Some(user_data),
        key,
    )
    .map_err(|e| AuthError::Generate(e.to_string()))?;
    let mut bytes = Vec::new();
    token
        .write(&mut bytes)
        .expect("writing into a Vec cannot fail");
    Ok(hex_encode(&bytes))
}

/// Reads a token from hex text.
///
/// # Errors
/// [`AuthError::BadToken`].
pub fn parse_token(text: &str) -> Result<ConnectToken, AuthError> {
    let bytes = hex_decode(text).map_err(AuthError::BadToken)?;
    ConnectToken::read(&mut bytes.as_slice()).map_err(|e| AuthError::BadToken(e.to_string()))
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_bad_keys_are_named() {
        let key = generate_key();
        assert_eq!(key.len(), 64);
        assert!(parse_key(&key).is_ok());
        assert!(matches!(parse_key("abcd"), Err(AuthError::BadKey(_))));
        assert!(matches!(
            parse_key(&"zz".repeat(32)),
            Err(AuthError::BadKey(_))
        ));
    }

    #[test]
    fn tokens_round_trip() {
        let key = parse_key(&generate_key()).unwrap();
        let req = TokenRequest {
            client_id: 7,
            realm: Realm(3),
            server: "127.0.0.1:5000".parse().unwrap(),
            expire_secs: 60,
            timeout_secs: 15,
        };
        let token = parse_token(&generate_token(&req, &key).unwrap()).unwrap();
        assert_eq!(token.client_id, 7);
        assert_eq!(token.protocol_id, PROTOCOL_ID);
        assert!(matches!(parse_token("00ff"), Err(AuthError::BadToken(_))));
    }
}
