//! The server's configuration: defaults from `assets/mingle.toml`, validated in one place.

use std::net::SocketAddr;
use std::path::Path;

use bevy::prelude::Resource;
use serde::Deserialize;

/// The default configuration file, embedded in the binary.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("../../assets/mingle.toml");

/// Most clients one server takes (netcode shards of [`SHARD_CLIENTS`](super::SHARD_CLIENTS) slots behind one socket).
pub const MAX_CLIENTS_LIMIT: usize = 16_384;

/// One space's own rules in the config file (`[[spaces]]`); fields left out take the
/// server-wide value.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpaceSettings {
    /// The space id clients send with their position.
    pub id: u32,
    /// Introduction distance in this space, world units.
    pub range: Option<f32>,
    /// Departure distance in this space, world units.
    pub leave_range: Option<f32>,
    /// Peer cap in this space; 0 is unlimited.
    pub max_peers: Option<u32>,
}

/// What the server sends when peer sets change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyMode {
    /// mingle's way: one `PeersChanged` per client per tick, only when its set changed.
    #[default]
    Changes,
    /// The original's way before its one-shot change, kept as a measurable baseline: on every
    /// position update the mover and each of its peers get their full set (`PeerSnapshot`),
    /// and every set change is announced by a snapshot too.
    EveryUpdate,
}

/// Everything the server plugin and binary need to run. `Default` is what we ship, the same
/// values as `assets/mingle.toml`.
#[derive(Debug, Clone, PartialEq, Resource, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MingleServerConfig {
    /// UDP address to listen on. Default: `127.0.0.1:5000`. Port 0 picks a free port.
    pub bind: SocketAddr,
    /// The address clients dial, written into connect tokens and checked by netcode (secure
    /// mode). Default: none, meaning the bound address; set it when binding `0.0.0.0`.
    pub public_addr: Option<SocketAddr>,
    /// Introduction distance. Default: 20.0 world units.
    pub range: f32,
    /// Departure distance, >= `range`. Default: 25.0 world units.
    pub leave_range: f32,
    /// Proximity ticks per second. Default: 20.0 Hz.
    pub tick_hz: f64,
    /// App updates per second of the headless loop (socket reads and writes). Default: 20.0 Hz.
    pub loop_hz: f64,
    /// Most clients at once, 1..=16,384. Default: 1024.
    pub max_clients: usize,
    /// Seconds without any message before a client is disconnected. Default: 15.0 s.
    pub idle_timeout_secs: f64,
    /// Undecodable messages tolerated from one client before disconnecting it. Invalid positions
    /// (NaN, out of world) never count. Default: 10.
    pub max_decode_failures: u32,
    /// Seconds between stats lines in the log. Default: 60.0 s.
    pub stats_interval_secs: f64,
    /// Most position updates a client may send per second (bursts of one second's worth);
    /// the excess is dropped. Default: 30.0.
    pub max_position_hz: f64,
    /// Refresh requests a client may send per second. Default: 1.0.
    pub refresh_per_sec: f64,
    /// Refresh requests a client may send in a burst. Default: 5.
    pub refresh_burst: u32,
    /// What to send when sets change. Default: [`NotifyMode::Changes`].
    pub notify: NotifyMode,
    /// Most introduced peers per client, nearest first; 0 is unlimited. Default: 0.
    pub max_peers: u32,
    /// With a cap, a pair is replaced only by a candidate nearer by this much. Default: 2.0
    /// world units.
    pub replace_margin: f32,
    /// Spaces with their own range, leave_range or cap. Default: none.
    pub spaces: Vec<SpaceSettings>,
    /// Where to serve Prometheus metrics (`GET /metrics`), e.g. `127.0.0.1:9464`.
    /// Default: none (off).
    pub metrics_addr: Option<SocketAddr>,
    /// STUN and TURN URLs given to every client (`stun:host:port`,
    /// `turn:host:port?transport=udp`). TURN URLs need the shared secret
    /// ([`TurnSecret`](super::TurnSecret)), which never lives in this struct. Default: none.
    pub ice_servers: Vec<String>,
    /// Lifetime of each client's TURN credentials, renewed at half of it. Default: 3600 s.
    pub turn_credential_ttl_secs: u64,
    /// Voice rules: group size limit, voice range bounds, admin API (`[voice_rules]`).
    pub voice_rules: super::rules::VoiceRulesConfig,
}

impl Default for MingleServerConfig {
    fn default() -> Self {
        MingleServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 5000)),
            public_addr: None,
            range: 20.0,
            leave_range: 25.0,
            tick_hz: 20.0,
            loop_hz: 20.0,
            max_clients: 1024,
            idle_timeout_secs: 15.0,
            max_decode_failures: 10,
            stats_interval_secs: 60.0,
            max_position_hz: 30.0,
            refresh_per_sec: 1.0,
            refresh_burst: 5,
            notify: NotifyMode::Changes,
            metrics_addr: None,
            max_peers: 0,
            replace_margin: 2.0,
            spaces: Vec::new(),
            ice_servers: Vec::new(),
            turn_credential_ttl_secs: 3600,
            voice_rules: super::rules::VoiceRulesConfig::default(),
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        /// The file.
        path: String,
        /// The I/O error, as text.
        message: String,
    },
    /// The file is not valid TOML for this configuration.
    Parse {
        /// The file (or "embedded defaults").
        path: String,
        /// What the parser said, naming the line and field.
        message: String,
    },
    /// A field holds a value outside its allowed range.
    Invalid {
        /// The field's name as in the file and the flag.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Read { path, message } => write!(f, "cannot read {path}: {message}"),
            ConfigError::Parse { path, message } => write!(f, "invalid config {path}: {message}"),
            ConfigError::Invalid { field, reason } => write!(f, "invalid `{field}`: {reason}"),
        }
    }
}

impl std::error::Error for ConfigError {}

fn invalid(field: &'static str, reason: String) -> ConfigError {
    ConfigError::Invalid { field, reason }
}

impl MingleServerConfig {
    /// Parses a TOML document; missing fields take their defaults. Does not validate.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] naming `origin`, the line and the field.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.to_string(),
        })
    }

    /// Reads and parses a TOML file. Does not validate.
    ///
    /// # Errors
    /// [`ConfigError::Read`] or [`ConfigError::Parse`].
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(reason) = self.voice_rules.problem() {
            return Err(invalid("voice_rules", reason));
        }
        if !(self.range.is_finite() && self.range > 0.0) {
            return Err(invalid(
                "range",
                format!("must be a positive number, got {}", self.range),
            ));
        }
        if !(self.leave_range.is_finite() && self.leave_range >= self.range) {
            return Err(invalid(
                "leave_range",
                format!(
                    "must be >= range ({}), got {}",
                    self.range, self.leave_range
                ),
            ));
        }
        if !(self.tick_hz.is_finite() && self.tick_hz > 0.0 && self.tick_hz <= 1000.0) {
            return Err(invalid(
                "tick_hz",
                format!("must be in (0, 1000], got {}", self.tick_hz),
            ));
        }
        if !(self.loop_hz.is_finite() && self.loop_hz >= self.tick_hz && self.loop_hz <= 10_000.0) {
            return Err(invalid(
                "loop_hz",
                format!(
                    "must be in [tick_hz ({}), 10000], got {}",
                    self.tick_hz, self.loop_hz
                ),
            ));
        }
        if self.max_clients == 0 || self.max_clients > MAX_CLIENTS_LIMIT {
            return Err(invalid(
                "max_clients",
                format!(
                    "must be in 1..={MAX_CLIENTS_LIMIT} (netcode's limit), got {}",
                    self.max_clients
                ),
            ));
        }
        if !(self.idle_timeout_secs.is_finite() && self.idle_timeout_secs > 0.0) {
            return Err(invalid(
                "idle_timeout_secs",
                format!(
                    "must be a positive number of seconds, got {}",
                    self.idle_timeout_secs
                ),
            ));
        }
        if self.max_decode_failures == 0 {
            return Err(invalid(
                "max_decode_failures",
                "must be at least 1".to_owned(),
            ));
        }
        if !(self.stats_interval_secs.is_finite() && self.stats_interval_secs > 0.0) {
            return Err(invalid(
                "stats_interval_secs",
                format!(
                    "must be a positive number of seconds, got {}",
                    self.stats_interval_secs
                ),
            ));
        }
        if !(self.max_position_hz.is_finite() && self.max_position_hz >= 1.0) {
            return Err(invalid(
                "max_position_hz",
                format!(
                    "must be at least 1 (clients re-send once a second), got {}",
                    self.max_position_hz
                ),
            ));
        }
        if !(self.refresh_per_sec.is_finite() && self.refresh_per_sec > 0.0) {
            return Err(invalid(
                "refresh_per_sec",
                format!("must be a positive rate, got {}", self.refresh_per_sec),
            ));
        }
        if self.refresh_burst == 0 {
            return Err(invalid("refresh_burst", "must be at least 1".to_owned()));
        }
        if !(self.replace_margin.is_finite() && self.replace_margin >= 0.0) {
            return Err(invalid(
                "replace_margin",
                format!(
                    "must be a non-negative distance, got {}",
                    self.replace_margin
                ),
            ));
        }
        if self.ice_servers.len() > crate::protocol::MAX_ICE_URLS {
            return Err(invalid(
                "ice_servers",
                format!(
                    "at most {} URLs, got {}",
                    crate::protocol::MAX_ICE_URLS,
                    self.ice_servers.len()
                ),
            ));
        }
        for url in &self.ice_servers {
            let scheme_ok = ["stun:", "stuns:", "turn:", "turns:"]
                .iter()
                .any(|s| url.starts_with(s));
            if !scheme_ok || url.len() > crate::protocol::MAX_ICE_TEXT_BYTES {
                return Err(invalid(
                    "ice_servers",
                    format!(
                        "{url:?} must start with stun:, stuns:, turn: or turns: and be at most {} bytes",
                        crate::protocol::MAX_ICE_TEXT_BYTES
                    ),
                ));
            }
        }
        if !(60..=7 * 86_400).contains(&self.turn_credential_ttl_secs) {
            return Err(invalid(
                "turn_credential_ttl_secs",
                format!(
                    "must be between 60 s and 7 days, got {}",
                    self.turn_credential_ttl_secs
                ),
            ));
        }
        for space in &self.spaces {
            let range = space.range.unwrap_or(self.range);
            let leave = space.leave_range.unwrap_or(self.leave_range);
            if !(range.is_finite() && range > 0.0 && leave.is_finite() && leave >= range) {
                return Err(invalid(
                    "spaces",
                    format!(
                        "space {} needs 0 < range <= leave_range, got {range} / {leave}",
                        space.id
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The proximity distances of this configuration.
    pub fn proximity(&self) -> crate::proximity::ProximityConfig {
        let cap = |n: u32| (n > 0).then_some(n);
        crate::proximity::ProximityConfig {
            range: self.range,
            leave_range: self.leave_range,
            max_peers: cap(self.max_peers),
            replace_margin: self.replace_margin,
            spaces: self
                .spaces
                .iter()
                .map(|s| {
                    let rules = crate::proximity::SpaceRules {
                        range: s.range.unwrap_or(self.range),
                        leave_range: s.leave_range.unwrap_or(self.leave_range),
                        max_peers: s.max_peers.map_or(cap(self.max_peers), cap),
                    };
                    (crate::protocol::SpaceId(s.id), rules)
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_file_is_the_default() {
        let parsed = MingleServerConfig::from_toml(DEFAULT_CONFIG_TOML, "embedded").unwrap();
        assert_eq!(parsed, MingleServerConfig::default());
        assert_eq!(parsed.validate(), Ok(()));
    }

    #[test]
    fn partial_file_keeps_other_defaults() {
        let parsed = MingleServerConfig::from_toml("range = 5.0\nleave_range = 6.0", "t").unwrap();
        assert_eq!(parsed.range, 5.0);
        assert_eq!(parsed.max_clients, 1024);
    }

    #[test]
    fn invalid_values_name_their_field() {
        type Breaker = fn(&mut MingleServerConfig);
        let cases: [(&str, Breaker); 5] = [
            ("range", |c| c.range = -1.0),
            ("leave_range", |c| c.leave_range = 10.0),
            ("max_clients", |c| c.max_clients = 16_385),
            ("tick_hz", |c| c.tick_hz = 0.0),
            ("idle_timeout_secs", |c| c.idle_timeout_secs = f64::NAN),
        ];
        for (field, break_it) in cases {
            let mut c = MingleServerConfig::default();
            break_it(&mut c);
            match c.validate() {
                Err(ConfigError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: expected Invalid, got {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_or_mistyped_fields_are_parse_errors() {
        for text in ["rnage = 3.0", "range = \"far\"", "range = "] {
            let err = MingleServerConfig::from_toml(text, "bad.toml").unwrap_err();
            assert!(matches!(err, ConfigError::Parse { .. }), "{text}: {err}");
            assert!(err.to_string().contains("bad.toml"));
        }
    }
}
