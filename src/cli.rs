//! Command-line arguments of `mingle-server`: every flag overrides one field of the config file.

use std::net::SocketAddr;
use std::path::PathBuf;

use std::num::NonZeroU32;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::auth::{TokenRequest, parse_key};
use crate::protocol::Realm;
use crate::server::{ConfigError, DEFAULT_CONFIG_TOML, MingleServerConfig, NotifyMode};

/// mingle-server: proximity introductions for spatial voice chat.
///
/// Settings come from the embedded defaults (assets/mingle.toml), or the file given with
/// --config; each flag or MINGLE_* environment variable overrides one of them.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "mingle-server", version, about, long_about = None)]
pub struct ServerArgs {
    /// Something other than serving.
    #[command(subcommand)]
    pub command: Option<ServerCommand>,
    /// File holding the 32-byte private key as 64 hex digits; with a key only signed connect
    /// tokens are accepted. Alternatively set MINGLE_PRIVATE_KEY.
    #[arg(long, env = "MINGLE_KEY_FILE", value_name = "FILE", global = true)]
    pub key_file: Option<PathBuf>,
    /// Allow serving a non-loopback address without a key (any client may connect and pick
    /// its own id). Never do this on the open internet.
    #[arg(long, env = "MINGLE_INSECURE")]
    pub insecure: bool,
    /// Open a window drawing every client, circle and pair (feature `debug-window`).
    #[cfg(feature = "debug-window")]
    #[arg(long)]
    pub debug_window: bool,
    /// Simulated in-process clients walking about, for the debug window.
    #[cfg(feature = "debug-window")]
    #[arg(long, default_value_t = 0)]
    pub demo_bots: usize,
    /// Demo layout: `walking`, or `pair` (two still bots, fixed camera; for tests).
    #[cfg(feature = "debug-window")]
    #[arg(long, default_value = "walking")]
    pub demo_layout: String,
    /// Write a PNG of the debug window to FILE (with --exit-after-frames).
    #[cfg(feature = "debug-window")]
    #[arg(long, value_name = "FILE")]
    pub screenshot: Option<PathBuf>,
    /// Exit after this many frames of the debug window.
    #[cfg(feature = "debug-window")]
    #[arg(long)]
    pub exit_after_frames: Option<u32>,
    /// The address clients dial, written into tokens (unset: the bound address).
    #[arg(long, env = "MINGLE_PUBLIC_ADDR", value_name = "ADDR")]
    pub public_addr: Option<SocketAddr>,
    /// TOML config file to load instead of the embedded defaults.
    #[arg(long, env = "MINGLE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// UDP address to listen on
    #[arg(long, env = "MINGLE_BIND", value_name = "ADDR")]
    pub bind: Option<SocketAddr>,
    /// Introduction distance in world units
    #[arg(long, env = "MINGLE_RANGE", allow_negative_numbers = true)]
    pub range: Option<f32>,
    /// Departure distance in world units, >= range
    #[arg(long, env = "MINGLE_LEAVE_RANGE", allow_negative_numbers = true)]
    pub leave_range: Option<f32>,
    /// Proximity ticks per second
    #[arg(long, env = "MINGLE_TICK_HZ", allow_negative_numbers = true)]
    pub tick_hz: Option<f64>,
    /// App updates (socket reads/writes) per second, >= tick rate
    #[arg(long, env = "MINGLE_LOOP_HZ", allow_negative_numbers = true)]
    pub loop_hz: Option<f64>,
    /// Most clients at once, 1..=16384
    #[arg(long, env = "MINGLE_MAX_CLIENTS")]
    pub max_clients: Option<usize>,
    /// Seconds of silence before a client is disconnected
    #[arg(long, env = "MINGLE_IDLE_TIMEOUT_SECS", allow_negative_numbers = true)]
    pub idle_timeout_secs: Option<f64>,
    /// Undecodable messages tolerated per client before disconnecting it; invalid positions
    /// never count
    #[arg(long, env = "MINGLE_MAX_DECODE_FAILURES")]
    pub max_decode_failures: Option<u32>,
    /// Seconds between stats lines in the log
    #[arg(
        long,
        env = "MINGLE_STATS_INTERVAL_SECS",
        allow_negative_numbers = true
    )]
    pub stats_interval_secs: Option<f64>,
    /// Most position updates a client may send per second
    #[arg(long, env = "MINGLE_MAX_POSITION_HZ", allow_negative_numbers = true)]
    pub max_position_hz: Option<f64>,
    /// Refresh requests a client may send per second
    #[arg(long, env = "MINGLE_REFRESH_PER_SEC", allow_negative_numbers = true)]
    pub refresh_per_sec: Option<f64>,
    /// Refresh requests a client may send in a burst
    #[arg(long, env = "MINGLE_REFRESH_BURST")]
    pub refresh_burst: Option<u32>,
    /// Most introduced peers per client, nearest first: a number, or `unlimited`
    /// (unset: the file's, unlimited by default)
    #[arg(long, env = "MINGLE_MAX_PEERS", value_name = "N|unlimited", value_parser = parse_cap)]
    pub max_peers: Option<PeerCap>,
    /// With a cap, replace a pair only for a candidate nearer by this much
    #[arg(long, env = "MINGLE_REPLACE_MARGIN", allow_negative_numbers = true)]
    pub replace_margin: Option<f32>,
    /// Serve Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9464 (unset: off).
    #[arg(long, env = "MINGLE_METRICS_ADDR", value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// STUN/TURN URLs for clients, comma-separated, e.g.
    /// `stun:turn.example.com:3478,turn:turn.example.com:3478?transport=udp`
    #[arg(
        long,
        env = "MINGLE_ICE_SERVERS",
        value_name = "URLS",
        value_delimiter = ','
    )]
    pub ice_servers: Option<Vec<String>>,
    /// File holding the TURN shared secret (coturn's --static-auth-secret); alternatively set
    /// MINGLE_TURN_SECRET. Needed for TURN URLs. Never logged.
    #[arg(long, env = "MINGLE_TURN_SECRET_FILE", value_name = "FILE")]
    pub turn_secret_file: Option<PathBuf>,
    /// Lifetime of each client's TURN credentials, seconds
    #[arg(long, env = "MINGLE_TURN_CREDENTIAL_TTL_SECS")]
    pub turn_credential_ttl_secs: Option<u64>,
    /// What to send when peer sets change
    #[arg(long, env = "MINGLE_NOTIFY", value_enum)]
    pub notify: Option<NotifyMode>,
    /// Serve the voice rules' admin HTTP API at http://ADDR/v1/, e.g. 127.0.0.1:9465
    /// (unset: off). Off loopback it needs a bearer secret.
    #[arg(long, env = "MINGLE_ADMIN_ADDR", value_name = "ADDR")]
    pub admin_addr: Option<SocketAddr>,
    /// File holding the admin API's bearer secret; alternatively set MINGLE_ADMIN_SECRET.
    /// Never logged.
    #[arg(long, env = "MINGLE_ADMIN_SECRET_FILE", value_name = "FILE")]
    pub admin_secret_file: Option<PathBuf>,
    /// Most members of one voice group; joins beyond are refused
    #[arg(long, env = "MINGLE_MAX_GROUP_SIZE")]
    pub max_group_size: Option<u32>,
    /// Smallest voice range multiplier (a whisper), in (0, 1]
    #[arg(long, env = "MINGLE_MIN_VOICE_RANGE")]
    pub min_voice_range: Option<f32>,
    /// Largest voice range multiplier (a shout), in [1, 4]
    #[arg(long, env = "MINGLE_MAX_VOICE_RANGE")]
    pub max_voice_range: Option<f32>,
    /// Whether clients may set their own voice range (within the bounds)
    #[arg(long, env = "MINGLE_CLIENTS_SET_VOICE_RANGE", value_name = "BOOL")]
    pub clients_set_voice_range: Option<bool>,
    /// Most peers one client may block for its session
    #[arg(long, env = "MINGLE_MAX_SESSION_BLOCKS")]
    pub max_session_blocks: Option<u32>,
}

/// `mingle-server` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum ServerCommand {
    /// Print a connect token signed with the server's key (what a game backend would do).
    Token {
        /// The client id the token grants.
        #[arg(long)]
        client_id: u64,
        /// The realm (tenant) the client joins.
        #[arg(long, default_value_t = 0)]
        realm: u64,
        /// The server address the client dials (the server's public address).
        #[arg(long)]
        server: SocketAddr,
        /// Seconds until the token expires.
        #[arg(long, default_value_t = 300)]
        expire_secs: u64,
    },
    /// Print a fresh random private key (64 hex digits).
    Keygen,
}

/// The key given by `--key-file` or `MINGLE_PRIVATE_KEY`, if any.
///
/// # Errors
/// [`ConfigError`] naming the file or the variable when it cannot be read or is not a key.
pub fn load_key(key_file: Option<&std::path::Path>) -> Result<Option<[u8; 32]>, ConfigError> {
    let Some((text, origin)) = read_secret(key_file, "MINGLE_PRIVATE_KEY")? else {
        return Ok(None);
    };
    parse_key(&text)
        .map(Some)
        .map_err(|e| ConfigError::Invalid {
            field: "private key",
            reason: format!("{origin}: {e}"),
        })
}

/// A secret's text and where it came from: the file if given, else the environment variable
/// `var`; `None` if neither is set.
fn read_secret(
    file: Option<&std::path::Path>,
    var: &str,
) -> Result<Option<(String, String)>, ConfigError> {
    match file {
        Some(path) => std::fs::read_to_string(path)
            .map(|text| Some((text, path.display().to_string())))
            .map_err(|e| ConfigError::Read {
                path: path.display().to_string(),
                message: e.to_string(),
            }),
        None => Ok(std::env::var(var).ok().map(|text| (text, var.to_owned()))),
    }
}

/// The TURN secret given by `--turn-secret-file` or `MINGLE_TURN_SECRET`, if any.
///
/// # Errors
/// [`ConfigError`] naming the file (never the secret) when it cannot be read or is empty.
pub fn load_turn_secret(
    file: Option<&std::path::Path>,
) -> Result<Option<crate::server::TurnSecret>, ConfigError> {
    let Some((text, origin)) = read_secret(file, "MINGLE_TURN_SECRET")? else {
        return Ok(None);
    };
    crate::server::TurnSecret::new(&text)
        .map(Some)
        .ok_or_else(|| ConfigError::Invalid {
            field: "turn secret",
            reason: format!("{origin} is empty"),
        })
}

/// The admin API's bearer secret given by `--admin-secret-file` or `MINGLE_ADMIN_SECRET`, if
/// any.
///
/// # Errors
/// [`ConfigError`] naming the file (never the secret) when it cannot be read or is empty.
pub fn load_admin_secret(file: Option<&std::path::Path>) -> Result<Option<String>, ConfigError> {
    let Some((text, origin)) = read_secret(file, "MINGLE_ADMIN_SECRET")? else {
        return Ok(None);
    };
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(ConfigError::Invalid {
            field: "admin secret",
            reason: format!("{origin} is empty"),
        });
    }
    Ok(Some(text))
}

impl ServerCommand {
    /// The token request of a `token` subcommand.
    pub fn token_request(&self) -> Option<TokenRequest> {
        match self {
            ServerCommand::Token {
                client_id,
                realm,
                server,
                expire_secs,
            } => Some(TokenRequest {
                client_id: *client_id,
                realm: Realm(*realm),
                server: *server,
                expire_secs: *expire_secs,
                timeout_secs: 15,
            }),
            ServerCommand::Keygen => None,
        }
    }
}

/// A peer cap as given on the command line: a positive number, or `unlimited` (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCap(pub Option<NonZeroU32>);

fn parse_cap(text: &str) -> Result<PeerCap, String> {
    if text == "unlimited" {
        return Ok(PeerCap(None));
    }
    text.parse::<NonZeroU32>()
        .map(|n| PeerCap(Some(n)))
        .map_err(|e| format!("{e}: give a positive number or `unlimited`"))
}

/// Each setting's shipped value, from [`MingleServerConfig::default`], by its name in the file
/// (nested tables searched too): what `--help` shows as a flag's default.
pub fn shipped_defaults() -> Vec<(String, String)> {
    fn walk(table: &toml::Table, out: &mut Vec<(String, String)>) {
        for (key, value) in table {
            let shown = match value {
                toml::Value::Table(inner) => {
                    walk(inner, out);
                    continue;
                }
                toml::Value::String(text) => text.clone(),
                toml::Value::Array(items) if items.is_empty() => "none".to_owned(),
                toml::Value::Array(items) => {
                    let items: Vec<String> = items.iter().map(|i| i.to_string()).collect();
                    items.join(",")
                }
                other => other.to_string(),
            };
            out.push((key.clone(), shown));
        }
    }
    let table = toml::Table::try_from(MingleServerConfig::default())
        .expect("the default config serializes to a TOML table");
    let mut out = Vec::new();
    walk(&table, &mut out);
    out
}

impl ServerArgs {
    /// The command line, each setting's flag showing its shipped default (read from
    /// [`MingleServerConfig::default`], so it is written nowhere else).
    pub fn command_with_defaults() -> clap::Command {
        let mut command = Self::command();
        for (key, shown) in shipped_defaults() {
            if command.get_arguments().any(|a| a.get_id() == key.as_str()) {
                command = command.mut_arg(key, |arg| {
                    let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                    arg.help(format!("{help} [default: {shown}]"))
                });
            }
        }
        command
    }

    /// Parses the process's arguments against [`command_with_defaults`](Self::command_with_defaults);
    /// prints help or an error and exits as clap does.
    pub fn parse_with_defaults() -> Self {
        Self::from_arg_matches(&Self::command_with_defaults().get_matches())
            .unwrap_or_else(|e| e.exit())
    }

    /// Refuses to serve a non-loopback address without a key, unless `--insecure`.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for `bind`, saying what to do.
    pub fn check_security(
        &self,
        config: &MingleServerConfig,
        key: Option<&[u8; 32]>,
    ) -> Result<(), ConfigError> {
        if key.is_none() && !config.bind.ip().is_loopback() && !self.insecure {
            return Err(ConfigError::Invalid {
                field: "bind",
                reason: format!(
                    "{} is not a loopback address and no private key was given: anyone could \
                     connect with any id. Give --key-file FILE or MINGLE_PRIVATE_KEY (make one \
                     with `mingle-server keygen`), or --insecure to allow it anyway",
                    config.bind
                ),
            });
        }
        Ok(())
    }

    /// The configuration these arguments describe: file (or embedded defaults), then flags,
    /// then validation.
    ///
    /// # Errors
    /// The file cannot be read or parsed, or a value is invalid ([`ConfigError`] names the field).
    pub fn load(&self) -> Result<MingleServerConfig, ConfigError> {
        let mut config = match &self.config {
            Some(path) => MingleServerConfig::from_file(path)?,
            None => MingleServerConfig::from_toml(DEFAULT_CONFIG_TOML, "embedded defaults")?,
        };
        macro_rules! apply {
            ($to:expr; $($field:ident),*) => { $(if let Some(v) = self.$field { $to.$field = v; })* };
        }
        apply!(config.proximity; range, leave_range, replace_margin);
        if let Some(PeerCap(cap)) = self.max_peers {
            config.proximity.max_peers = cap;
        }
        apply!(
            config;
            bind,
            tick_hz,
            loop_hz,
            max_clients,
            idle_timeout_secs,
            max_decode_failures,
            stats_interval_secs,
            max_position_hz,
            refresh_per_sec,
            refresh_burst,
            notify,
            turn_credential_ttl_secs
        );
        if let Some(urls) = &self.ice_servers {
            config.ice_servers = urls.iter().filter(|u| !u.is_empty()).cloned().collect();
        }
        if self.public_addr.is_some() {
            config.public_addr = self.public_addr;
        }
        if self.metrics_addr.is_some() {
            config.metrics_addr = self.metrics_addr;
        }
        if self.admin_addr.is_some() {
            config.voice_rules.admin_addr = self.admin_addr;
        }
        apply!(
            config.voice_rules;
            max_group_size,
            min_voice_range,
            max_voice_range,
            clients_set_voice_range,
            max_session_blocks
        );
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_flags_give_the_shipped_defaults() {
        let args = ServerArgs::try_parse_from(["mingle-server"]).unwrap();
        assert_eq!(args.load(), Ok(MingleServerConfig::default()));
    }

    #[test]
    fn flags_override_fields() {
        let args = ServerArgs::try_parse_from([
            "mingle-server",
            "--range",
            "8",
            "--leave-range",
            "9",
            "--bind",
            "127.0.0.1:0",
        ])
        .unwrap();
        let config = args.load().unwrap();
        let p = &config.proximity;
        assert_eq!((p.range, p.leave_range), (8.0, 9.0));
        assert_eq!(config.bind.port(), 0);
    }

    #[test]
    fn a_public_bind_without_a_key_is_refused_unless_insecure() {
        let args = ServerArgs::try_parse_from(["mingle-server", "--bind", "0.0.0.0:5000"]).unwrap();
        let config = args.load().unwrap();
        assert!(matches!(
            args.check_security(&config, None),
            Err(ConfigError::Invalid { field: "bind", .. })
        ));
        assert_eq!(args.check_security(&config, Some(&[7; 32])), Ok(()));
        let args =
            ServerArgs::try_parse_from(["mingle-server", "--bind", "0.0.0.0:5000", "--insecure"])
                .unwrap();
        assert_eq!(args.check_security(&config, None), Ok(()));
    }

    #[test]
    fn ice_servers_and_ttl_from_flags() {
        let args = ServerArgs::try_parse_from([
            "mingle-server",
            "--ice-servers",
            "stun:203.0.113.1:3478,turn:203.0.113.1:3478?transport=udp",
            "--turn-credential-ttl-secs",
            "600",
        ])
        .unwrap();
        let config = args.load().unwrap();
        assert_eq!(config.ice_servers.len(), 2);
        assert_eq!(config.turn_credential_ttl_secs, 600);
        let bad =
            ServerArgs::try_parse_from(["mingle-server", "--ice-servers", "http://x"]).unwrap();
        assert!(matches!(
            bad.load(),
            Err(ConfigError::Invalid {
                field: "ice_servers",
                ..
            })
        ));
    }

    #[test]
    fn a_negative_range_names_the_field() {
        let args = ServerArgs::try_parse_from(["mingle-server", "--range", "-3"]).unwrap();
        assert!(matches!(
            args.load(),
            Err(ConfigError::Invalid {
                field: "proximity.range",
                ..
            })
        ));
    }

    #[test]
    fn the_cap_is_a_number_or_unlimited() {
        let load = |cap: &str| {
            ServerArgs::try_parse_from(["mingle-server", "--max-peers", cap]).map(|a| a.load())
        };
        let eight = load("8").unwrap().unwrap();
        assert_eq!(eight.proximity.max_peers, NonZeroU32::new(8));
        assert_eq!(
            load("unlimited").unwrap().unwrap().proximity.max_peers,
            None
        );
        assert!(load("0").is_err(), "0 is no cap: say `unlimited`");
    }

    #[test]
    fn every_setting_has_a_flag_showing_its_default() {
        let help = ServerArgs::command_with_defaults()
            .render_help()
            .to_string();
        let defaults = shipped_defaults();
        assert!(defaults.len() >= 15, "{defaults:?}");
        for (key, shown) in defaults {
            if key == "spaces" {
                continue; // per-space rules live in the file only
            }
            let flag = format!("--{}", key.replace('_', "-"));
            assert!(help.contains(&flag), "{key} has a flag {flag}");
            assert!(
                help.contains(&format!("[default: {shown}]")),
                "{flag} shows its default {shown}"
            );
        }
    }
}
