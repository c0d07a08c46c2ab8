//! Prints signed `GetImageInfo` request paths (`/?...`) for the simulator,
//! one a line, for load tools that replay a list of requests (see
//! `bench/sim-throughput`).
//!
//! Every path is a complete, valid request: a unique `SignatureNonce`, a
//! `Timestamp` taken now (the simulator allows 15 minutes of skew), and a
//! signature made with the simulator's default key. The image ids cycle
//! through the catalog the simulator generates with the same `--generate N
//! --seed S`, so every call is a hit.
//!
//! ```text
//! cargo run --release --example presign -- --generate 10000 --seed 1 --count 100000 --shards 2 --out /tmp/paths
//! ```
//!
//! With `--out PREFIX` the paths go to `PREFIX.0` … `PREFIX.{shards-1}`,
//! dealt round-robin (one file per load-tool thread, so no two threads ever
//! send the same nonce); without it, to standard output.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use vod_image_audit::api::signing;
use vod_image_audit::sim;

#[derive(Debug, Parser)]
#[command(about = "Print signed GetImageInfo request paths for the simulator")]
struct Args {
    /// Size of the simulator's generated catalog (its --generate).
    #[arg(long, default_value_t = 10_000)]
    generate: usize,
    /// The simulator's seed (its --seed).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The simulator's region (its --region).
    #[arg(long, default_value = "cn-shanghai")]
    region: String,
    /// How many request paths to print.
    #[arg(long, default_value_t = 100_000)]
    count: usize,
    /// Number of output files with --out.
    #[arg(long, default_value_t = 1)]
    shards: usize,
    /// Write to PREFIX.0 .. PREFIX.{shards-1} instead of standard output.
    #[arg(long, value_name = "PREFIX")]
    out: Option<PathBuf>,
    /// HTTP method to sign for.
    #[arg(long, default_value = "GET")]
    method: String,
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    let ids: Vec<String> = sim::catalog::generate(args.generate, args.seed, &args.region)
        .iter()
        .filter_map(|v| v.get("ImageId").and_then(|id| id.as_str()).map(str::to_owned))
        .collect();
    if ids.is_empty() {
        eprintln!("presign: the catalog is empty (--generate 0?)");
        std::process::exit(2);
    }
    let shards = args.shards.max(1);
    let mut outs: Vec<Box<dyn Write>> = match &args.out {
        Some(prefix) => (0..shards)
            .map(|i| {
                let path = format!("{}.{i}", prefix.display());
                File::create(&path).map(|f| Box::new(BufWriter::with_capacity(1 << 20, f)) as Box<dyn Write>)
            })
            .collect::<io::Result<_>>()?,
        None => vec![Box::new(BufWriter::with_capacity(1 << 20, io::stdout().lock()))],
    };
    // A run tag keeps nonces unique across invocations against one simulator.
    let now = SystemTime::now();
    let run = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as u64 ^ u64::from(std::process::id());
    let timestamp = humantime::format_rfc3339_seconds(now).to_string();
    let mut params: Vec<(&str, String)> = vec![
        ("AccessKeyId", sim::DEFAULT_KEY_ID.to_owned()),
        ("Action", "GetImageInfo".to_owned()),
        ("Format", "JSON".to_owned()),
        ("ImageId", String::new()),
        ("SignatureMethod", "HMAC-SHA1".to_owned()),
        ("SignatureNonce", String::new()),
        ("SignatureVersion", "1.0".to_owned()),
        ("Timestamp", timestamp),
        ("Version", "2017-03-21".to_owned()),
    ];
    for i in 0..args.count {
        params[3].1.clone_from(&ids[i % ids.len()]);
        params[5].1 = format!("{run:016x}-{i:x}");
        let query = signing::signed_query(&args.method, &params, sim::DEFAULT_KEY_SECRET);
        let n = outs.len();
        let out = &mut outs[i % n];
        out.write_all(b"/?")?;
        out.write_all(query.as_bytes())?;
        out.write_all(b"\n")?;
    }
    for mut out in outs {
        out.flush()?;
    }
    Ok(())
}
