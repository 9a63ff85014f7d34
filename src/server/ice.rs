//! ICE servers for clients: STUN/TURN URLs and short-lived TURN credentials of each client's own.
//!
//! Credentials follow the TURN REST API scheme coturn implements with `--use-auth-secret`
//! (draft-uberti-behave-turn-rest-00): username `"<unix expiry>:<peer id>"`, password
//! `base64(HMAC-SHA1(secret, username))`. coturn, holding the same secret, recomputes the
//! password and accepts it while the expiry lies in the future; mingle never talks to coturn.
//! Each client gets its list right after `Welcome` and a fresh one at half the credentials'
//! lifetime, so it always holds credentials valid for at least half a TTL.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use bevy::prelude::{Component, Query, Res, ResMut, Resource};

use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::components::MinglePeer;
use super::config::MingleServerConfig;
use super::stats::ServerStats;
use super::{Outgoing, send};
use crate::protocol::{IceServer, PeerId, ServerToClient};

/// The TURN shared secret (coturn's `--static-auth-secret`). Its `Debug` never shows it, and
/// mingle never logs it.
#[derive(Clone, PartialEq, Eq, Resource)]
pub struct TurnSecret(String);

impl TurnSecret {
    /// Wraps a secret, trimming surrounding whitespace (a trailing newline in a file).
    /// `None` if nothing is left.
    pub fn new(secret: &str) -> Option<Self> {
        let secret = secret.trim();
        (!secret.is_empty()).then(|| TurnSecret(secret.to_owned()))
    }
}

impl std::fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TurnSecret(<redacted>)")
    }
}

/// Whether `url` names a TURN server (`turn:` or `turns:`), which needs credentials.
pub fn is_turn_url(url: &str) -> bool {
    url.starts_with("turn:") || url.starts_with("turns:")
}

/// The TURN REST credential of `peer` valid until `expiry_unix`: `(username, password)` with
/// username `"<expiry_unix>:<peer id>"` and password `base64(HMAC-SHA1(secret, username))`.
pub fn turn_rest_credential(
    secret: &TurnSecret,
    expiry_unix: u64,
    peer: PeerId,
) -> (String, String) {
    let username = format!("{expiry_unix}:{}", peer.0);
    let mut mac =
        Hmac::<Sha1>::new_from_slice(secret.0.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(username.as_bytes());
    let password = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, password)
}

/// The `IceServers` message for `peer` at `now_unix`: STUN URLs in one entry without
/// credentials, TURN URLs in another with fresh credentials (only with a secret).
pub fn ice_servers_message(
    config: &MingleServerConfig,
    secret: Option<&TurnSecret>,
    peer: PeerId,
    now_unix: u64,
) -> ServerToClient {
    let (turn, stun): (Vec<String>, Vec<String>) = config
        .ice_servers
        .iter()
        .cloned()
        .partition(|u| is_turn_url(u));
    let mut servers = Vec::new();
    if !stun.is_empty() {
        servers.push(IceServer {
            urls: stun,
            username: String::new(),
            credential: String::new(),
        });
    }
    let mut expires_unix = 0;
    if let (false, Some(secret)) = (turn.is_empty(), secret) {
        expires_unix = now_unix + config.turn_credential_ttl_secs;
        let (username, credential) = turn_rest_credential(secret, expires_unix, peer);
        servers.push(IceServer {
            urls: turn,
            username,
            credential,
        });
    }
    ServerToClient::IceServers {
        servers,
        expires_unix,
    }
}

/// When a client's TURN credentials are due for renewal (unix seconds). Only on clients that
/// were given TURN credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Component)]
pub struct IceRenewal {
    /// Unix time of the next `IceServers`.
    pub due_unix: u64,
}

/// Seconds since the Unix epoch by the system clock (what coturn compares expiries with).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Sends `peer` its ICE servers if the server has any; returns when to renew them (only
/// when TURN credentials were issued).
pub(crate) fn issue(
    out: &mut Outgoing,
    stats: &mut ServerStats,
    config: &MingleServerConfig,
    secret: Option<&TurnSecret>,
    peer: PeerId,
    now_unix: u64,
) -> Option<IceRenewal> {
    if config.ice_servers.is_empty() {
        return None;
    }
    let msg = ice_servers_message(config, secret, peer, now_unix);
    send(out, peer, &msg);
    match msg {
        ServerToClient::IceServers { expires_unix, .. } if expires_unix > 0 => {
            stats.turn_credentials_issued += 1;
            Some(IceRenewal {
                due_unix: now_unix + config.turn_credential_ttl_secs.div_ceil(2),
            })
        }
        _ => None,
    }
}

/// Renews the TURN credentials of every client whose renewal is due.
pub(crate) fn renew_credentials(
    mut out: Outgoing,
    mut stats: ResMut<ServerStats>,
    config: Res<MingleServerConfig>,
    secret: Option<Res<TurnSecret>>,
    mut clients: Query<(&MinglePeer, &mut IceRenewal)>,
) {
    let now = unix_now();
    for (peer, mut renewal) in &mut clients {
        if renewal.due_unix > now {
            continue;
        }
        match issue(
            &mut out,
            &mut stats,
            &config,
            secret.as_deref(),
            peer.id,
            now,
        ) {
            Some(next) => *renewal = next,
            None => renewal.due_unix = u64::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_matches_openssl() {
        // printf %s "1700000600:42" | openssl dgst -binary -sha1 -hmac S3cret | base64
        let secret = TurnSecret::new("S3cret\n").unwrap();
        let (user, pass) = turn_rest_credential(&secret, 1_700_000_600, PeerId(42));
        assert_eq!(user, "1700000600:42");
        assert_eq!(pass, OPENSSL_VECTOR);
    }

    const OPENSSL_VECTOR: &str = "56kaG9CWWCSmucRcv6My1YFGAlc=";

    #[test]
    fn secret_never_shows_in_debug() {
        let secret = TurnSecret::new("hunter2").unwrap();
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert_eq!(TurnSecret::new(" \n"), None);
    }

    #[test]
    fn stun_and_turn_are_split_and_only_turn_gets_credentials() {
        let config = MingleServerConfig {
            ice_servers: vec![
                "stun:203.0.113.1:3478".into(),
                "turn:203.0.113.1:3478?transport=udp".into(),
            ],
            turn_credential_ttl_secs: 600,
            ..MingleServerConfig::default()
        };
        let secret = TurnSecret::new("s").unwrap();
        let ServerToClient::IceServers {
            servers,
            expires_unix,
        } = ice_servers_message(&config, Some(&secret), PeerId(7), 1000)
        else {
            panic!("an IceServers message");
        };
        assert_eq!(expires_unix, 1600);
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].urls, ["stun:203.0.113.1:3478"]);
        assert!(servers[0].username.is_empty());
        assert_eq!(servers[1].username, "1600:7");
        assert_eq!(
            servers[1].credential,
            turn_rest_credential(&secret, 1600, PeerId(7)).1
        );
        // Without a secret the TURN URLs are left out: there is nothing to log in with.
        let ServerToClient::IceServers { servers, .. } =
            ice_servers_message(&config, None, PeerId(7), 1000)
        else {
            panic!("an IceServers message");
        };
        assert_eq!(servers.len(), 1);
    }
}
