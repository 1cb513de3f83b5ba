//! Runs the Bedrock double standalone, for benchmarks.
//!
//! ```text
//! fake-bedrock [--port P] [--events N] [--delay-ms M] [--first-delay-ms F] [--accept-unsigned]
//! ```
//!
//! Prints `listening on http://127.0.0.1:PORT` and serves until killed.

use std::io::Write;
use std::time::Duration;

use testkit::{Behavior, FakeBedrock, Options, Reply, DEFAULT_MODEL};

const USAGE: &str = "usage: fake-bedrock [--port P] [--events N] [--delay-ms M] [--first-delay-ms F] [--accept-unsigned]

  --port P             port on 127.0.0.1 (default 0: any free port)
  --events N           text deltas in the streamed reply (default 20)
  --delay-ms M         pause between stream chunks, in milliseconds (default 0)
  --first-delay-ms F   pause before the first chunk, in milliseconds (default 0)
  --accept-unsigned    also serve requests without an Authorization header";

struct Args {
    port: u16,
    events: u64,
    delay_ms: u64,
    first_delay_ms: u64,
    accept_unsigned: bool,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut out = Args {
        port: 0,
        events: 20,
        delay_ms: 0,
        first_delay_ms: 0,
        accept_unsigned: false,
    };
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg, None),
        };
        if name == "--accept-unsigned" {
            out.accept_unsigned = true;
            continue;
        }
        if name == "--help" || name == "-h" {
            return Err(String::new());
        }
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{name} needs a value"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|e| format!("{name} {v}: {e}"));
        match name.as_str() {
            "--port" => out.port = value.parse().map_err(|e| format!("--port {value}: {e}"))?,
            "--events" => out.events = number(&value)?,
            "--delay-ms" => out.delay_ms = number(&value)?,
            "--first-delay-ms" => out.first_delay_ms = number(&value)?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(out)
}

#[tokio::main]
async fn main() {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("fake-bedrock: {e}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let text: String = (0..args.events).map(|i| format!("w{i} ")).collect();
    let reply = Reply::text(DEFAULT_MODEL, text.trim_end(), 12, args.events).with_delays(
        Duration::from_millis(args.first_delay_ms),
        Duration::from_millis(args.delay_ms),
    );
    let opts = Options {
        default_behavior: Behavior::Reply(reply),
        accept_unsigned: args.accept_unsigned,
        record_requests: false,
        ..Options::default()
    };
    let double = match FakeBedrock::start_on(opts, args.port).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("fake-bedrock: cannot listen: {e}");
            std::process::exit(1);
        }
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on {}", double.url());
    let _ = out.flush();
    std::future::pending::<()>().await;
}
