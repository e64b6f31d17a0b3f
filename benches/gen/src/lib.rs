//! The benchmark suite's generator and end-to-end harness (`vedette-bench`).
//!
//! [`stream::Stream`] is the one main type: a deterministic, endless stream of realistic
//! events (Windows Sysmon, Security and PowerShell, Linux Sysmon, auditd, syslog, CEF,
//! PAN-OS, CloudTrail, Okta) over a simulated estate of hosts and users, with attack
//! stories injected at known positions, each with the alert it must raise
//! ([`attacks::Truth`]). `vedette-bench generate` writes it to files (for `vedette detect`
//! and peers such as rsigma); `vedette-bench run` drives a running `vedette` with it over
//! HTTP and syslog and measures capacity, latency, resources, bytes stored and the
//! recall of the injected truth ([`run`]).

pub mod agree;
pub mod attacks;
pub mod generate;
pub mod http;
pub mod recall;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod service;
pub mod sources;
pub mod stream;
pub mod world;
