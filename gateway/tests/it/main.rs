//! The integration tests: one binary, modules by concern, shared fixtures in `support`.

// A failed setup step should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abuse;
mod admin_api;
mod aws_approval_page;
mod aws_credentials;
mod aws_e2e;
mod aws_grants;
mod aws_store;
mod bearer;
mod body_budget;
mod claude_aws;
mod config_files;
mod dashboards;
mod device_pages;
mod edge;
mod faults;
mod inference;
mod log_hygiene;
mod max_tokens;
mod own_telemetry;
mod policy;
mod policy_client;
mod props;
mod python_sdk;
mod ratelimit;
mod readiness;
mod redirects;
mod relay;
mod shutdown;
mod signin;
mod signin_client;
mod signin_faults;
mod signin_harness;
mod signin_idp;
mod signin_limits;
mod spend_e2e;
mod spend_outage;
mod spend_store;
mod store;
mod support;
mod telemetry_client;
mod tls;
mod upload;
mod upstream_timeouts;
