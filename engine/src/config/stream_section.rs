//! `[stream]`: TCP reassembly limits. (`[app]` is read straight into
//! `dissect::app::AppConfig`, one section per registered protocol.)

use serde::Deserialize;

use super::ConfigError;
use crate::stream::StreamLimits;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StreamSection {
    /// Out-of-order bytes held per flow and direction; past it the hole becomes a gap.
    pub max_ooo_bytes_per_flow: usize,
    /// Bytes a parser may leave unconsumed per flow and direction.
    pub max_pending_bytes_per_flow: usize,
    /// All reassembly and parser buffers of one worker together.
    pub max_bytes_per_worker: usize,
    /// Bytes of a direction examined to detect its protocol.
    pub detect_bytes: usize,
    /// Microseconds (capture time) that bytes acknowledged by the peer but
    /// not yet delivered by the mirror are waited for before they count as
    /// a gap; 0 declares the gap at once.
    pub reorder_window_us: u64,
}

impl Default for StreamSection {
    fn default() -> Self {
        let l = StreamLimits::default();
        StreamSection {
            max_ooo_bytes_per_flow: l.max_ooo_per_flow,
            max_pending_bytes_per_flow: l.max_pending_per_flow,
            max_bytes_per_worker: 256 << 20,
            detect_bytes: l.max_detect_bytes,
            reorder_window_us: l.reorder_window_ns / 1_000,
        }
    }
}

impl StreamSection {
    pub fn limits(&self, app_enabled: bool) -> StreamLimits {
        StreamLimits {
            max_ooo_per_flow: self.max_ooo_bytes_per_flow,
            max_pending_per_flow: self.max_pending_bytes_per_flow,
            max_detect_bytes: self.detect_bytes,
            reorder_window_ns: self.reorder_window_us.saturating_mul(1_000),
            app_enabled,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.detect_bytes == 0 {
            return Err(ConfigError::Invalid(
                "stream.detect_bytes: must be at least 1".into(),
            ));
        }
        Ok(())
    }
}
