//! Command-line arguments of `mingle-server`: every flag overrides one field of the config file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::server::{ConfigError, DEFAULT_CONFIG_TOML, MingleServerConfig, NotifyMode};

/// mingle-server: proximity introductions for spatial voice chat.
///
/// Settings come from the embedded defaults (assets/mingle.toml), or the file given with
/// --config; each flag or MINGLE_* environment variable overrides one of them.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "mingle-server", version, about, long_about = None)]
pub struct ServerArgs {
    /// TOML config file to load instead of the embedded defaults.
    #[arg(long, env = "MINGLE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// UDP address to listen on [default: 127.0.0.1:5000].
    #[arg(long, env = "MINGLE_BIND", value_name = "ADDR")]
    pub bind: Option<SocketAddr>,
    /// Introduction distance in world units [default: 20].
    #[arg(long, env = "MINGLE_RANGE", allow_negative_numbers = true)]
    pub range: Option<f32>,
    /// Departure distance in world units, >= range [default: 25].
    #[arg(long, env = "MINGLE_LEAVE_RANGE", allow_negative_numbers = true)]
    pub leave_range: Option<f32>,
    /// Proximity ticks per second [default: 20].
    #[arg(long, env = "MINGLE_TICK_HZ", allow_negative_numbers = true)]
    pub tick_hz: Option<f64>,
    /// App updates (socket reads/writes) per second, >= tick rate [default: 20].
    #[arg(long, env = "MINGLE_LOOP_HZ", allow_negative_numbers = true)]
    pub loop_hz: Option<f64>,
    /// Most clients at once, 1..=1024 [default: 1024].
    #[arg(long, env = "MINGLE_MAX_CLIENTS")]
    pub max_clients: Option<usize>,
    /// Seconds of silence before a client is disconnected [default: 15].
    #[arg(long, env = "MINGLE_IDLE_TIMEOUT_SECS", allow_negative_numbers = true)]
    pub idle_timeout_secs: Option<f64>,
    /// Undecodable messages tolerated per client before disconnecting it [default: 10].
    #[arg(long, env = "MINGLE_MAX_DECODE_FAILURES")]
    pub max_decode_failures: Option<u32>,
    /// Seconds between stats lines in the log [default: 60].
    #[arg(
        long,
        env = "MINGLE_STATS_INTERVAL_SECS",
        allow_negative_numbers = true
    )]
    pub stats_interval_secs: Option<f64>,
    /// What to send when peer sets change [default: changes].
    #[arg(long, env = "MINGLE_NOTIFY", value_enum)]
    pub notify: Option<NotifyMode>,
}

impl ServerArgs {
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
            ($($field:ident),*) => { $(if let Some(v) = self.$field { config.$field = v; })* };
        }
        apply!(
            bind,
            range,
            leave_range,
            tick_hz,
            loop_hz,
            max_clients,
            idle_timeout_secs,
            max_decode_failures,
            stats_interval_secs,
            notify
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
        assert_eq!((config.range, config.leave_range), (8.0, 9.0));
        assert_eq!(config.bind.port(), 0);
    }

    #[test]
    fn a_negative_range_names_the_field() {
        let args = ServerArgs::try_parse_from(["mingle-server", "--range", "-3"]).unwrap();
        assert!(matches!(
            args.load(),
            Err(ConfigError::Invalid { field: "range", .. })
        ));
    }
}
