//! Where telemetry goes: off, the bundled collector, or an external OTLP/HTTP endpoint.

use crate::netcalc::is_hostname;
use crate::profile::model::*;
use crate::profile::reader::Reader;

/// Reads `TELEMETRY` and its keys; returns the destination, whether logs are relayed and whether
/// the gateway exports its own metrics.
pub fn telemetry(
    r: &mut Reader,
    hostname: &str,
    cert: &CertMode,
) -> (Option<Telemetry>, bool, bool) {
    let mode = r.choice("TELEMETRY", &["off", "collector", "external"]);
    let t = match mode.as_str() {
        "off" => Some(Telemetry::Off),
        "collector" => {
            let host = r
                .opt("COLLECTOR_HOSTNAME")
                .unwrap_or_else(|| format!("otel.{hostname}"))
                .to_ascii_lowercase();
            if !is_hostname(&host) {
                r.err("COLLECTOR_HOSTNAME", format!("{host:?} is not a DNS name"));
            }
            if *cert == CertMode::SelfSigned {
                r.err("TELEMETRY", "collector needs a certificate the gateway trusts, which CERTIFICATE_MODE=self-signed cannot give; use TELEMETRY=external or off");
            }
            let certificate_arn = match cert {
                CertMode::Byo { arn } => Some(
                    r.opt("COLLECTOR_CERTIFICATE_ARN")
                        .unwrap_or_else(|| arn.clone()),
                ),
                _ => {
                    if r.is_set("COLLECTOR_CERTIFICATE_ARN") {
                        r.err(
                            "COLLECTOR_CERTIFICATE_ARN",
                            "applies only with CERTIFICATE_MODE=byo",
                        );
                    }
                    None
                }
            };
            Some(Telemetry::Collector {
                hostname: host,
                certificate_arn,
            })
        }
        "external" => {
            let endpoint = r
                .required("TELEMETRY_ENDPOINT", "with TELEMETRY=external")
                .trim_end_matches('/')
                .to_owned();
            match url::Url::parse(&endpoint) {
                _ if endpoint.is_empty() => {}
                Ok(u) if u.scheme() == "https" && u.path() == "/" && u.query().is_none() => {}
                Ok(u) if u.scheme() == "https" => r.err("TELEMETRY_ENDPOINT", format!("{endpoint:?} must be a bare origin: the gateway appends /v1/metrics itself (drop {:?})", u.path())),
                _ => r.err("TELEMETRY_ENDPOINT", format!("{endpoint:?} must be an https:// origin")),
            }
            Some(Telemetry::External { endpoint })
        }
        _ => None,
    };
    let logs = match r.opt("TELEMETRY_LOGS") {
        Some(_) => r.bool("TELEMETRY_LOGS"),
        None => mode == "collector",
    };
    let metrics = r.bool("GATEWAY_METRICS") && mode != "off";
    (t, logs, metrics)
}
