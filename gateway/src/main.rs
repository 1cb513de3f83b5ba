//! `claude-gateway`: parse the command line, load and validate the config, then boot.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use claude_gateway::config::{self, Env, ProcessEnv};
use claude_gateway::{boot, telemetry};

/// A drop-in Claude apps gateway serving Claude Code from Amazon Bedrock.
#[derive(Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    /// Path to gateway.yaml.
    #[arg(long, value_name = "FILE", conflicts_with = "config_env")]
    config: Option<PathBuf>,
    /// Read gateway.yaml from this environment variable instead of a file (how ECS hands it over).
    #[arg(long, value_name = "VAR")]
    config_env: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a config and print a short summary; exit 1 with `path: message` lines on error.
    ///
    /// Example: claude-gateway check-config gateway.yaml
    CheckConfig {
        /// Path to gateway.yaml.
        file: PathBuf,
    },
    /// Print, for each project of a config's aws_access section and each of its levels, the
    /// session policy its credentials carry: one JSON object per line,
    /// {"project":…,"level":…,"policy":{…}} (for policy linters). Exit 1 on an invalid config.
    ///
    /// Example: claude-gateway aws-policies gateway.yaml
    AwsPolicies {
        /// Path to gateway.yaml.
        file: PathBuf,
    },
    /// Compute the fingerprint an `inference` audit event records for a prompt (read from standard
    /// input, exactly as sent), or with `--tool-input` for a tool input (JSON on standard input).
    ///
    /// Example: printf '%s' 'deploy it' | GATEWAY_PROMPT_HASH_KEY=... claude-gateway hash-prompt
    HashPrompt {
        /// The environment variable holding `audit.prompt_hash_key`.
        #[arg(long, default_value = "GATEWAY_PROMPT_HASH_KEY")]
        key_env: String,
        /// Standard input is a tool input (JSON), hashed in its canonical form.
        #[arg(long)]
        tool_input: bool,
    },
    /// Probe a running gateway's /healthz; exit 0 when it answers 200 (for container health checks).
    ///
    /// Example: claude-gateway healthcheck http://127.0.0.1:8080/healthz
    Healthcheck {
        /// The URL to probe.
        #[arg(default_value = "http://127.0.0.1:8080/healthz")]
        url: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = ProcessEnv;
    match cli.command {
        Some(Command::CheckConfig { file }) => check_config(&file, &env),
        Some(Command::AwsPolicies { file }) => aws_policies(&file, &env),
        Some(Command::Healthcheck { url }) => healthcheck(&url),
        Some(Command::HashPrompt {
            key_env,
            tool_input,
        }) => hash_prompt(&key_env, tool_input, &env),
        None => serve(cli.config, cli.config_env, &env),
    }
}

fn read_source(
    file: Option<PathBuf>,
    var: Option<String>,
    env: &dyn Env,
) -> Result<(String, String), String> {
    match (file, var) {
        (Some(path), _) => config::read_capped(&path)
            .map(|t| (t, path.display().to_string()))
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
        (None, Some(var)) => env
            .var(&var)
            .map(|t| (t, format!("${var}")))
            .ok_or_else(|| format!("environment variable {var} is not set")),
        (None, None) => Err("give --config FILE or --config-env VAR (see --help)".into()),
    }
}

fn check_config(file: &std::path::Path, env: &dyn Env) -> ExitCode {
    let text = match config::read_capped(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {}: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    match config::load(&text, env) {
        Ok(loaded) => {
            println!("{}: ok", file.display());
            print!("{}", config::summary(&loaded));
            let policies = claude_gateway::policy::Policies::new(&loaded.config);
            for warning in policies.iter().flat_map(|p| p.lint()) {
                println!("warning: {warning}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

fn aws_policies(file: &std::path::Path, env: &dyn Env) -> ExitCode {
    use claude_gateway::aws_access::policy::session_policy;

    let loaded = match config::read_capped(file) {
        Ok(text) => config::load(&text, env),
        Err(e) => {
            eprintln!("cannot read {}: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    let config = match loaded {
        Ok(l) => l.config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let projects = config.aws_access.map(|a| a.projects).unwrap_or_default();
    for p in &projects {
        for level in p.levels() {
            // The config loaded, so every level's policy was already built once.
            let policy = session_policy(&p.actions(level), &p.deny)
                .map_err(|e| e.to_string())
                .and_then(|text| {
                    serde_json::from_str::<serde_json::Value>(&text).map_err(|e| e.to_string())
                });
            match policy {
                Ok(policy) => println!(
                    "{}",
                    serde_json::json!({"project": p.name, "level": level, "policy": policy})
                ),
                Err(e) => {
                    eprintln!("aws_access project {}: {e}", p.name);
                    return ExitCode::from(1);
                }
            }
        }
    }
    ExitCode::SUCCESS
}

fn serve(file: Option<PathBuf>, var: Option<String>, env: &dyn Env) -> ExitCode {
    let (text, source) = match read_source(file, var, env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("claude-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    let loaded = match config::load(&text, env) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("claude-gateway: invalid config {source}:\n{e}");
            return ExitCode::from(1);
        }
    };
    telemetry::logging::init(env);
    // Every TLS client in the process uses aws-lc-rs, including ones built by libraries.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("claude-gateway: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(boot::run(loaded, &source, env)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("claude-gateway: {e}");
            ExitCode::from(1)
        }
    }
}

fn hash_prompt(key_env: &str, tool_input: bool, env: &dyn Env) -> ExitCode {
    use std::io::Read;
    let Some(key) = env.var(key_env) else {
        eprintln!("hash-prompt: environment variable {key_env} is not set");
        return ExitCode::from(2);
    };
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("hash-prompt: cannot read standard input: {e}");
        return ExitCode::from(1);
    }
    let data = if tool_input {
        match serde_json::from_slice::<serde_json::Value>(&input) {
            Ok(v) => claude_gateway::policy::canonical(&v).into_bytes(),
            Err(e) => {
                eprintln!("hash-prompt: standard input is not JSON: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        input
    };
    println!(
        "{}",
        claude_gateway::telemetry::prompt_hash::hmac_hex(&key, &data)
    );
    ExitCode::SUCCESS
}

/// A minimal HTTP/1.1 GET over plain TCP: the runtime image has no curl or shell.
fn healthcheck(url: &str) -> ExitCode {
    use std::io::{Read, Write};
    use std::net::{TcpStream, ToSocketAddrs};
    use std::time::Duration;

    let Some(rest) = url.strip_prefix("http://") else {
        eprintln!("healthcheck: only http:// URLs are probed");
        return ExitCode::from(2);
    };
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let addr = match authority.to_socket_addrs().ok().and_then(|mut a| a.next()) {
        Some(a) => a,
        None => {
            eprintln!("healthcheck: cannot resolve {authority}");
            return ExitCode::from(1);
        }
    };
    let result = (|| -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
        )?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    })();
    match result {
        Ok(head) if head.starts_with("HTTP/1.1 200") => ExitCode::SUCCESS,
        Ok(head) => {
            eprintln!(
                "healthcheck: {}",
                head.lines().next().unwrap_or("no answer")
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("healthcheck: {e}");
            ExitCode::from(1)
        }
    }
}
