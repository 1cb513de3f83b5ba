//! Masking throughput: `aws_proxy::mask::mask` in this process over generated 1 MB answers
//! (JSON with many fields, XML, plain-text logs), each with a few secrets and again with
//! nothing to mask, timed as the median of several runs.

use std::time::{Duration, Instant};

use claude_gateway::aws_proxy::mask::{self, Format, Rules};

/// The size of each generated body: just under the default masking limit of 1 MiB.
const BODY_BYTES: usize = 1_000_000;

/// One format's result.
pub struct Row {
    /// The format's name.
    pub format: &'static str,
    /// The body's size in bytes.
    pub bytes: usize,
    /// MB/s with a few secrets in the body.
    pub with_secrets: f64,
    /// Values masked in that body.
    pub masked: u64,
    /// MB/s with nothing to mask.
    pub clean: f64,
}

/// A few secrets, of the kinds the detectors and key names catch; `i` picks one.
fn secret(i: u64) -> (&'static str, &'static str) {
    match i % 4 {
        0 => ("DbPassword", "Zq7-bench-db-Pa55word-x81"),
        1 => ("accessKey", "AKIA2BENCHQ7XKWZ4M3P"),
        2 => (
            "session",
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkJlbmNoIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        ),
        _ => (
            "databaseUrl",
            "postgres://app:Ur1Pa55w0rdZ@db.internal:5432/payments",
        ),
    }
}

/// A small deterministic sequence, so bodies vary without a random source.
struct Seq(u64);

impl Seq {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Items of a JSON answer until the body is about 1 MB; every `every`-th item (0: none) carries a
/// secret.
fn json_body(every: u64) -> String {
    let mut seq = Seq(0x9e37_79b9_7f4a_7c15);
    let mut out = String::from(r#"{"NextToken":"bmV4dC1wYWdlLTAwMDE=","Items":["#);
    let mut i = 0u64;
    loop {
        let n = seq.next();
        let mut item = format!(
            r#"{{"Id":"i-{n:016x}","Name":"payments-worker-{i}","Arn":"arn:aws:ec2:eu-west-1:123456789012:instance/i-{n:016x}","State":{{"Code":16,"Name":"running"}},"LaunchTime":"2026-12-0{}T10:{:02}:00Z","InstanceType":"m7g.large","PrivateIpAddress":"10.0.{}.{}","Monitoring":false,"CpuCount":{},"Tags":[{{"Key":"project","Value":"payments"}},{{"Key":"owner","Value":"team-{}"}}],"Description":"worker {i} of the settlement batch, started by the scheduler""#,
            1 + n % 9,
            n % 60,
            n % 256,
            (n >> 8) % 256,
            2 + n % 6,
            n % 17,
        );
        if every > 0 && i % every == every / 2 {
            let (k, v) = secret(i / every);
            item.push_str(&format!(r#","{k}":"{v}""#));
        }
        item.push('}');
        if out.len() + item.len() + 3 > BODY_BYTES {
            break;
        }
        if i > 0 {
            out.push(',');
        }
        out.push_str(&item);
        i += 1;
    }
    out.push_str("]}");
    out
}

/// An EC2-style XML answer of about 1 MB.
fn xml_body(every: u64) -> String {
    let mut seq = Seq(0x2545_f491_4f6c_dd1d);
    let mut out = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId><reservationSet>"#,
    );
    let end = "</reservationSet></DescribeInstancesResponse>";
    let mut i = 0u64;
    loop {
        let n = seq.next();
        let mut item = format!(
            r#"<item><reservationId>r-{n:016x}</reservationId><ownerId>123456789012</ownerId><instancesSet><item><instanceId>i-{n:016x}</instanceId><imageId>ami-{:08x}</imageId><instanceState><code>16</code><name>running</name></instanceState><privateDnsName>ip-10-0-{}-{}.eu-west-1.compute.internal</privateDnsName><instanceType>m7g.large</instanceType><launchTime>2026-12-0{}T10:{:02}:00.000Z</launchTime><placement><availabilityZone>eu-west-1a</availabilityZone><tenancy>default</tenancy></placement><monitoring><state>disabled</state></monitoring><tagSet><item><key>project</key><value>payments</value></item><item><key>Name</key><value>payments-worker-{i}</value></item></tagSet>"#,
            n >> 32,
            n % 256,
            (n >> 8) % 256,
            1 + n % 9,
            n % 60,
        );
        if every > 0 && i % every == every / 2 {
            let (k, v) = secret(i / every);
            item.push_str(&format!("<{k}>{v}</{k}>"));
        }
        item.push_str("</item></instancesSet></item>");
        if out.len() + item.len() + end.len() > BODY_BYTES {
            break;
        }
        out.push_str(&item);
        i += 1;
    }
    out.push_str(end);
    out
}

/// Application log lines of about 1 MB, as CloudWatch Logs or S3 might hold them.
fn text_body(every: u64) -> String {
    let mut seq = Seq(0x1405_7b7e_f767_814f);
    let mut out = String::new();
    let mut i = 0u64;
    loop {
        let n = seq.next();
        let mut line = format!(
            "2026-12-06T10:{:02}:{:02}.{:03}Z INFO  [req-{n:012x}] POST /v1/orders/{} status=200 duration_ms={} user=u{} region=eu-west-1 bytes={} settled batch {} of payments",
            n % 60,
            (n >> 6) % 60,
            (n >> 12) % 1000,
            n % 100_000,
            n % 900,
            (n >> 20) % 5000,
            (n >> 30) % 65_536,
            i % 97,
        );
        if every > 0 && i % every == every / 2 {
            let (k, v) = secret(i / every);
            line.push_str(&format!(" {k}={v}"));
        }
        line.push('\n');
        if out.len() + line.len() > BODY_BYTES {
            break;
        }
        out.push_str(&line);
        i += 1;
    }
    out
}

/// The median time of `runs` maskings of `body` (after one untimed), and how many values each masked.
fn time(
    body: &str,
    content_type: &str,
    want: Format,
    runs: usize,
) -> Result<(Duration, u64), String> {
    let rules = Rules::default();
    // One run untimed: the allocator's first growth to a megabyte is not masking.
    std::hint::black_box(mask::mask(body.as_bytes(), Some(content_type), &rules).ok());
    let mut times = Vec::with_capacity(runs);
    let mut masked = 0;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let out = mask::mask(body.as_bytes(), Some(content_type), &rules)
            .map_err(|e| format!("{}: {e}", want.as_str()))?;
        times.push(started.elapsed());
        if out.format != want || out.fell_back {
            return Err(format!(
                "{} body masked as {}",
                want.as_str(),
                out.format.as_str()
            ));
        }
        masked = out.counts.total();
        std::hint::black_box(&out);
    }
    times.sort_unstable();
    Ok((times[times.len() / 2], masked))
}

fn mb_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9)
}

/// One body format measured: its generator (a secret every `every` items; 0: none).
struct Spec {
    name: &'static str,
    make: fn(u64) -> String,
    content_type: &'static str,
    format: Format,
    every: u64,
}

/// Masking throughput per format, the median of `runs` runs each.
pub fn throughput(runs: usize) -> Result<Vec<Row>, String> {
    // A secret every few hundred items, instances or lines: a handful per megabyte.
    let formats = [
        Spec {
            name: "JSON",
            make: json_body,
            content_type: "application/x-amz-json-1.1",
            format: Format::Json,
            every: 800,
        },
        Spec {
            name: "XML",
            make: xml_body,
            content_type: "text/xml",
            format: Format::Xml,
            every: 200,
        },
        Spec {
            name: "text (log lines)",
            make: text_body,
            content_type: "text/plain",
            format: Format::Text,
            every: 1000,
        },
    ];
    let mut rows = Vec::new();
    for Spec {
        name,
        make,
        content_type,
        format,
        every,
    } in formats
    {
        let dirty = make(every);
        let clean = make(0);
        let (d, masked) = time(&dirty, content_type, format, runs)?;
        let (c, none) = time(&clean, content_type, format, runs)?;
        if masked == 0 || none != 0 {
            return Err(format!(
                "{name}: {masked} values masked with secrets, {none} without"
            ));
        }
        rows.push(Row {
            format: name,
            bytes: dirty.len(),
            with_secrets: mb_per_s(dirty.len(), d),
            masked,
            clean: mb_per_s(clean.len(), c),
        });
    }
    Ok(rows)
}
