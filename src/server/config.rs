//! The server's configuration: one struct per concern, each field's default in its `Default`
//! (shipped as `assets/mingle.toml`, shown by `mingle-server --help`), each struct validated by
//! its own `validate`.

use std::net::SocketAddr;
use std::path::Path;

use bevy::prelude::Resource;
use serde::{Deserialize, Serialize};

use crate::proximity::ProximityConfig;
use crate::settings::{InvalidSetting, positive, require};

/// The default configuration file, embedded in the binary.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("../../assets/mingle.toml");

/// Most clients one server takes (netcode shards of [`SHARD_CLIENTS`](super::SHARD_CLIENTS) slots behind one socket).
pub const MAX_CLIENTS_LIMIT: usize = 16_384;

/// What the server sends when peer sets change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
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
/// values as `assets/mingle.toml`; in the file, each nested struct is a table.
#[derive(Debug, Clone, PartialEq, Resource, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MingleServerConfig {
    /// UDP address to listen on. Default: `127.0.0.1:5000`. Port 0 picks a free port.
    pub bind: SocketAddr,
    /// The address clients dial, written into connect tokens and checked by netcode (secure
    /// mode). Default: none, meaning the bound address; set it when binding `0.0.0.0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_addr: Option<SocketAddr>,
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
    /// Where to serve Prometheus metrics (`GET /metrics`), e.g. `127.0.0.1:9464`.
    /// Default: none (off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_addr: Option<SocketAddr>,
    /// STUN and TURN URLs given to every client (`stun:host:port`,
    /// `turn:host:port?transport=udp`). TURN URLs need the shared secret
    /// ([`TurnSecret`](super::TurnSecret)), which never lives in this struct. Default: none.
    pub ice_servers: Vec<String>,
    /// Lifetime of each client's TURN credentials, renewed at half of it. Default: 3600 s.
    pub turn_credential_ttl_secs: u64,
    /// Who is introduced to whom: distances, the peer cap, per-space rules (`[proximity]`).
    /// Default: [`ProximityConfig::default`].
    pub proximity: ProximityConfig,
    /// Voice rules: group size limit, voice range bounds, admin API (`[voice_rules]`).
    pub voice_rules: super::rules::VoiceRulesConfig,
}

impl Default for MingleServerConfig {
    fn default() -> Self {
        MingleServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 5000)),
            public_addr: None,
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
            ice_servers: Vec::new(),
            turn_credential_ttl_secs: 3600,
            proximity: ProximityConfig::default(),
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

impl From<InvalidSetting> for ConfigError {
    fn from(e: InvalidSetting) -> Self {
        ConfigError::Invalid {
            field: e.field,
            reason: e.reason,
        }
    }
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

    /// Checks every field, the nested structs by their own `validate`.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check()?;
        self.proximity.validate()?;
        self.voice_rules.validate()?;
        Ok(())
    }

    fn check(&self) -> Result<(), InvalidSetting> {
        use crate::protocol::{MAX_ICE_TEXT_BYTES, MAX_ICE_URLS};
        let (tick, lp) = (self.tick_hz, self.loop_hz);
        require(
            "tick_hz",
            positive(tick) && tick <= 1000.0,
            "in (0, 1000]",
            tick,
        )?;
        let loop_ok = lp.is_finite() && lp >= tick && lp <= 10_000.0;
        require(
            "loop_hz",
            loop_ok,
            format_args!("in [tick_hz ({tick}), 10000]"),
            lp,
        )?;
        let clients_ok = (1..=MAX_CLIENTS_LIMIT).contains(&self.max_clients);
        let clients_rule = format_args!("in 1..={MAX_CLIENTS_LIMIT} (netcode's limit)");
        require("max_clients", clients_ok, clients_rule, self.max_clients)?;
        let idle = self.idle_timeout_secs;
        require(
            "idle_timeout_secs",
            positive(idle),
            "a positive number of seconds",
            idle,
        )?;
        let failures = self.max_decode_failures;
        require("max_decode_failures", failures >= 1, "at least 1", failures)?;
        let stats = self.stats_interval_secs;
        require(
            "stats_interval_secs",
            positive(stats),
            "a positive number of seconds",
            stats,
        )?;
        let position_hz = self.max_position_hz;
        let position_ok = position_hz.is_finite() && position_hz >= 1.0;
        let position_rule = "at least 1 (clients re-send once a second)";
        require("max_position_hz", position_ok, position_rule, position_hz)?;
        let refresh = self.refresh_per_sec;
        require(
            "refresh_per_sec",
            positive(refresh),
            "a positive rate",
            refresh,
        )?;
        require(
            "refresh_burst",
            self.refresh_burst >= 1,
            "at least 1",
            self.refresh_burst,
        )?;
        let urls = self.ice_servers.len();
        require(
            "ice_servers",
            urls <= MAX_ICE_URLS,
            format_args!("at most {MAX_ICE_URLS} URLs"),
            urls,
        )?;
        for url in &self.ice_servers {
            let scheme_ok = ["stun:", "stuns:", "turn:", "turns:"]
                .iter()
                .any(|s| url.starts_with(s));
            let rule = format_args!(
                "a stun:, stuns:, turn: or turns: URL of at most {MAX_ICE_TEXT_BYTES} bytes"
            );
            require(
                "ice_servers",
                scheme_ok && url.len() <= MAX_ICE_TEXT_BYTES,
                rule,
                url,
            )?;
        }
        let ttl = self.turn_credential_ttl_secs;
        let ttl_ok = (60..=7 * 86_400).contains(&ttl);
        require(
            "turn_credential_ttl_secs",
            ttl_ok,
            "between 60 s and 7 days",
            ttl,
        )?;
        Ok(())
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
        let parsed =
            MingleServerConfig::from_toml("[proximity]\nrange = 5.0\nleave_range = 6.0", "t")
                .unwrap();
        assert_eq!(parsed.proximity.range, 5.0);
        assert_eq!(parsed.max_clients, 1024);
    }

    #[test]
    fn invalid_values_name_their_field() {
        type Breaker = fn(&mut MingleServerConfig);
        let cases: [(&str, Breaker); 5] = [
            ("proximity.range", |c| c.proximity.range = -1.0),
            ("proximity.leave_range", |c| c.proximity.leave_range = 10.0),
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
    fn a_stage_space_and_a_cap_from_the_file() {
        let text = "[proximity]\nmax_peers = 8\n[[proximity.spaces]]\nid = 7\nrange = 60.0\n\
                    leave_range = 70.0\nmax_peers = 40\n[[proximity.spaces]]\nid = 8\n\
                    range = 5.0\nleave_range = 6.0";
        let parsed = MingleServerConfig::from_toml(text, "t").unwrap();
        assert_eq!(parsed.validate(), Ok(()));
        let p = &parsed.proximity;
        assert_eq!(p.max_peers, std::num::NonZeroU32::new(8));
        let stage = p.rules(crate::protocol::SpaceId(7));
        assert_eq!(
            (stage.range, stage.max_peers),
            (60.0, std::num::NonZeroU32::new(40))
        );
        assert_eq!(
            p.rules(crate::protocol::SpaceId(8)).max_peers,
            None,
            "absent: unlimited"
        );
        let back = toml::to_string(&parsed).unwrap();
        assert_eq!(MingleServerConfig::from_toml(&back, "again"), Ok(parsed));
    }

    #[test]
    fn unknown_or_mistyped_fields_are_parse_errors() {
        for text in [
            "[proximity]\nrnage = 3.0",
            "[proximity]\nrange = \"far\"",
            "range = 20.0",
            "[proximity]\nmax_peers = 0",
        ] {
            let err = MingleServerConfig::from_toml(text, "bad.toml").unwrap_err();
            assert!(matches!(err, ConfigError::Parse { .. }), "{text}: {err}");
            assert!(err.to_string().contains("bad.toml"));
        }
    }
}
