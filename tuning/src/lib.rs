//! tuning: CPU pinning plans and NIC preflight.

pub mod doctor;
pub mod dpdk;
