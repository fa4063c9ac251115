//! `[control]`: the control socket of a live run (`flowtap ctl`).

use serde::Deserialize;

use super::ConfigError;

/// Where a live capture listens for `flowtap ctl` (status, stats, reload,
/// flush-export): a Unix stream socket, mode 0600.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ControlSection {
    /// Socket path; empty = no control socket (the systemd unit passes
    /// `--control-socket /run/flowtap/flowtap.sock`).
    pub socket: String,
}

impl ControlSection {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.socket.len() > 100 {
            return Err(ConfigError::Invalid(format!(
                "control.socket: {:?} is longer than a Unix socket path may be (100 bytes here)",
                self.socket
            )));
        }
        if !self.socket.is_empty() && self.socket.ends_with('/') {
            return Err(ConfigError::Invalid(format!(
                "control.socket: {:?} names a directory; give the socket's file name too",
                self.socket
            )));
        }
        Ok(())
    }
}
