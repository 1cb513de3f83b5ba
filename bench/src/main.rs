//! `gateway-bench`: what claude-gateway adds over calling the Bedrock test double directly.
//!
//! It runs the Bedrock test double in this process and `claude-gateway` (a release build) as a
//! separate process, both on loopback, then measures time to first byte and total time of streamed responses at 1 and 64
//! concurrent streams, non-streaming requests per second, idle and peak RSS of the gateway, and its
//! RSS with 1,000 streams open at once. Then the AWS proxy: the latency it adds to a SigV4-signed
//! call over calling an AWS stand-in directly, and the throughput of its masking per format. Run
//! it with `scripts/bench`.

mod aws;
mod fake_aws;
mod load;
mod masking;
mod procs;
mod stats;

use std::time::Duration;

use clap::Parser;

use load::{Target, Workload};
use stats::Summary;

/// Measure the gateway against the Bedrock test double.
#[derive(Parser)]
#[command(about)]
struct Args {
    /// The claude-gateway binary.
    #[arg(long)]
    gateway: String,
    /// A PostgreSQL URL the gateway may use.
    #[arg(long)]
    postgres: String,
    /// Streamed requests per worker at each concurrency.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// Seconds of non-streaming load.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Streams held open for the memory measurement.
    #[arg(long, default_value_t = 1000)]
    open_streams: usize,
    /// AWS calls per path in each proxy latency row.
    #[arg(long, default_value_t = 400)]
    aws_calls: usize,
    /// Runs of the masking of each 1 MB body (the median is reported).
    #[arg(long, default_value_t = 7)]
    mask_runs: usize,
    /// Only the AWS proxy's measurements (no Bedrock, streaming or memory runs).
    #[arg(long)]
    aws_only: bool,
}

/// The gateway's own AWS credential, for its `AssumeRole` calls to the stand-in.
const AWS_ENV: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "AKIDBENCHGATEWAY0001"),
    (
        "AWS_SECRET_ACCESS_KEY",
        "bench-gateway-secret-key-0123456789abcdef",
    ),
    ("AWS_REGION", "us-east-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

/// The Admin API key of the capped gateway.
const ADMIN_KEY: &str = "bench-admin-key-0123456789abcdef012345";

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("gateway-bench: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    if args.aws_only {
        let aws_rows = proxy_latency(&args).await?;
        let mask_runs = args.mask_runs;
        let mask_rows = tokio::task::spawn_blocking(move || masking::throughput(mask_runs))
            .await
            .map_err(|e| e.to_string())??;
        print_proxy(&aws_rows, args.aws_calls);
        print_masking(&mask_rows, mask_runs);
        return Ok(());
    }
    // 20 text deltas 10 ms apart: a short, realistic stream.
    let fake = procs::fake(20, 10).await?;
    let gateway = procs::Gateway::start(&args.gateway, &fake.url, &args.postgres).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_kib = gateway.rss_kib();

    let direct = Target::direct(&fake.url);
    let via = Target::gateway(&gateway.url);
    let mut rows = Vec::new();
    // About one stream's length: 20 deltas 10 ms apart, and the answer's head and tail.
    let stream_len = Duration::from_millis(270);
    for (label, concurrency, spread) in [
        ("1", 1usize, Duration::ZERO),
        ("64, arriving together", 64, Duration::ZERO),
        ("64, arrivals spread over a stream", 64, stream_len),
    ] {
        let w = Workload {
            concurrency,
            rounds: args.rounds,
            stream: true,
            spread,
        };
        // Warm both paths (connection pools, credentials, caches).
        load::streams(&direct, &Workload { rounds: 2, ..w }).await?;
        load::streams(&via, &Workload { rounds: 2, ..w }).await?;
        let d = load::streams(&direct, &w).await?;
        let g = load::streams(&via, &w).await?;
        rows.push((
            label,
            Summary::of(&d.ttfb),
            Summary::of(&g.ttfb),
            Summary::of(&d.total),
            Summary::of(&g.total),
        ));
    }
    let rps_direct = load::rps(&direct, 64, Duration::from_secs(args.seconds)).await?;
    let rps_gateway = load::rps(&via, 64, Duration::from_secs(args.seconds)).await?;
    let peak_kib = gateway.peak_kib();

    // The same load with a spend cap on every user: each request reserves its worst case and
    // settles in PostgreSQL.
    let capped = procs::Gateway::start_with(
        &args.gateway,
        &fake.url,
        &args.postgres,
        &format!("admin:\n  write_keys: [{{id: bench, key: {ADMIN_KEY}}}]\n"),
    )
    .await?;
    reqwest::Client::new()
        .post(format!("{}/v1/organizations/spend_limits", capped.url))
        .header("x-api-key", ADMIN_KEY)
        .json(&serde_json::json!({"scope": {"type": "organization"}, "amount": "100000000", "period": "monthly"}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let via_capped = Target::gateway(&capped.url);
    let w = Workload {
        concurrency: 64,
        rounds: args.rounds,
        stream: true,
        spread: Duration::ZERO,
    };
    load::streams(&via_capped, &Workload { rounds: 2, ..w }).await?;
    let plain = load::streams(&via, &w).await?;
    let metered = load::streams(&via_capped, &w).await?;
    let (p, m) = (Summary::of(&plain.ttfb), Summary::of(&metered.ttfb));
    let rps_capped = load::rps(&via_capped, 64, Duration::from_secs(args.seconds)).await?;

    // Memory with many streams open: a slow stream (one delta a second) held by each client.
    let slow = procs::fake(30, 1000).await?;
    let gw2 = procs::Gateway::start(&args.gateway, &slow.url, &args.postgres).await?;
    let open_kib = load::hold_open(&Target::gateway(&gw2.url), args.open_streams, || {
        gw2.rss_kib()
    })
    .await?;

    drop((gw2, slow, capped, gateway));
    let aws_rows = proxy_latency(&args).await?;
    let mask_runs = args.mask_runs;
    let mask_rows = tokio::task::spawn_blocking(move || masking::throughput(mask_runs))
        .await
        .map_err(|e| e.to_string())??;

    println!(
        "## claude-gateway benchmark (loopback, {} cores)\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!("| concurrent streams | TTFB p50 direct | TTFB p50 via gateway | TTFB p99 direct | TTFB p99 via gateway | added p99 TTFB | total p50 direct | total p50 via gateway |");
    println!("|---|---|---|---|---|---|---|---|");
    for (c, dt, gt, dtot, gtot) in &rows {
        println!(
            "| {c} | {} | {} | {} | {} | {} | {} | {} |",
            stats::ms(dt.p50),
            stats::ms(gt.p50),
            stats::ms(dt.p99),
            stats::ms(gt.p99),
            stats::ms(gt.p99.saturating_sub(dt.p99)),
            stats::ms(dtot.p50),
            stats::ms(gtot.p50)
        );
    }
    println!("\n| measure | value |\n|---|---|");
    println!("| non-streaming requests/s, 64 concurrent, direct | {rps_direct:.0} |");
    println!("| non-streaming requests/s, 64 concurrent, via gateway | {rps_gateway:.0} |");
    println!("| non-streaming requests/s, 64 concurrent, via gateway with spend caps | {rps_capped:.0} |");
    println!(
        "| TTFB p50 / p99 at 64 streams, gateway without caps | {} / {} |",
        stats::ms(p.p50),
        stats::ms(p.p99)
    );
    println!("| TTFB p50 / p99 at 64 streams, gateway with caps (reservation before, settlement after) | {} / {} |", stats::ms(m.p50), stats::ms(m.p99));
    println!(
        "| gateway RSS idle after boot | {:.1} MB |",
        idle_kib as f64 / 1024.0
    );
    println!(
        "| gateway peak RSS during the runs above | {:.1} MB |",
        peak_kib as f64 / 1024.0
    );
    println!(
        "| gateway RSS with {} streams open | {:.1} MB |",
        args.open_streams,
        open_kib as f64 / 1024.0
    );
    print_proxy(&aws_rows, args.aws_calls);
    print_masking(&mask_rows, mask_runs);
    Ok(())
}

/// One proxy latency row: the call, its concurrency, direct and through the gateway.
type ProxyRow = (aws::Call, usize, Summary, Summary);

/// The AWS proxy's added latency: each call sequentially and 16 at a time, directly to the
/// stand-in and through the gateway.
async fn proxy_latency(args: &Args) -> Result<Vec<ProxyRow>, String> {
    let fake = fake_aws::start().await?;
    let gw = procs::Gateway::start_env(
        &args.gateway,
        &fake.url,
        &args.postgres,
        &aws::config(&fake.url),
        &AWS_ENV,
    )
    .await?;
    let direct = std::sync::Arc::new(aws::Caller::direct(&fake.url));
    let via = std::sync::Arc::new(aws::Caller::gateway(&gw.url).await?);
    // The proxy must be doing its work: the secret comes back directly, masked through it.
    if !aws::answer_holds_secret(&direct, aws::Call::Secret).await? {
        return Err("the stand-in's secret answer holds no secret".into());
    }
    if aws::answer_holds_secret(&via, aws::Call::Secret).await? {
        return Err("the secret came back unmasked through the gateway".into());
    }
    let mut rows = Vec::new();
    for call in [aws::Call::Describe, aws::Call::Secret] {
        // Warm both paths: connections, and the just-in-time credential the first call mints.
        aws::run(&direct, call, 4, 40).await?;
        aws::run(&via, call, 4, 40).await?;
        for concurrency in [1, 16] {
            let d = aws::run(&direct, call, concurrency, args.aws_calls).await?;
            let g = aws::run(&via, call, concurrency, args.aws_calls).await?;
            rows.push((call, concurrency, d, g));
        }
    }
    Ok(rows)
}

fn print_proxy(rows: &[ProxyRow], calls: usize) {
    println!(
        "\n### AWS proxy: latency per call (SigV4-signed JSON-protocol calls to a loopback AWS stand-in, {calls} per path and row)\n"
    );
    println!("| call | concurrent | p50 direct | p50 via gateway | added p50 | p99 direct | p99 via gateway | added p99 |");
    println!("|---|---|---|---|---|---|---|---|");
    for (call, concurrency, d, g) in rows {
        println!(
            "| {} | {concurrency} | {} | {} | {} | {} | {} | {} |",
            call.label(),
            stats::ms(d.p50),
            stats::ms(g.p50),
            stats::ms(g.p50.saturating_sub(d.p50)),
            stats::ms(d.p99),
            stats::ms(g.p99),
            stats::ms(g.p99.saturating_sub(d.p99)),
        );
    }
}

fn print_masking(rows: &[masking::Row], runs: usize) {
    println!("\n### AWS proxy: masking throughput (in process, one core, median of {runs} runs)\n");
    println!("| format | body | MB/s, a few secrets | values masked | MB/s, nothing to mask |");
    println!("|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {:.2} MB | {:.1} | {} | {:.1} |",
            r.format,
            r.bytes as f64 / 1e6,
            r.with_secrets,
            r.masked,
            r.clean
        );
    }
}
