//! Prometheus metrics (to come).
