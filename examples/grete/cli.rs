//! The `grete` tool's `metadata` command (argument parsing, connecting and printing), kept
//! apart from `main` so that `tests/cli_metadata.rs` can run it in-process. `produce` and
//! `bench produce` are in `produce.rs`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use grete::cluster::Cluster;
use grete::config::{Bootstrap, BrokerAddress, BrokerVersion, ClientConfig, TlsConfig};

/// Printed on a usage error.
pub const USAGE: &str = "\
usage: grete metadata (-b HOST:PORT[,...] | -z ZK_HOST:PORT[,...][/chroot]) [options]
       grete produce -b HOST:PORT[,...] -t TOPIC [options] < lines   (--help for its options)
       grete bench produce -b HOST:PORT[,...] -t TOPIC [options]     (--help for its options)

Prints the brokers, then every topic with each partition's leader, replicas and
in-sync replicas.

options:
  -b, --brokers LIST         bootstrap brokers
  -z, --zookeeper CONNECT    bootstrap from ZooKeeper instead (Kafka 0.9 registration)
  -t, --topic NAME           only this topic (repeatable)
      --runtime NAME         blocking (default), tokio or smol
      --tls-ca FILE          connect with TLS, trusting the CA certificates in FILE (PEM)
      --tls-server-name NAME verify this name instead of the broker's host
      --broker-version V     the version of brokers that cannot tell (default 0.9.0)
      --timeout SECS         request timeout (default 10)
  -h, --help                 this text
";

/// Why the tool stopped.
#[derive(Debug)]
pub enum CliError {
    /// Bad arguments (the message; empty for `--help`).
    Usage(String),
    /// The command failed.
    Failed(String),
}

/// Which transport runs the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Blocking,
    Tokio,
    Smol,
}

/// The parsed `metadata` command.
#[derive(Debug)]
pub struct Options {
    pub config: ClientConfig,
    pub runtime: Runtime,
    pub topics: Vec<String>,
}

fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage(message.into())
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, CliError> {
    let mut args = args.into_iter();
    match args.next().as_deref() {
        Some("metadata") => {}
        Some("-h" | "--help") | None => return Err(usage("")),
        Some(other) => return Err(usage(format!("unknown command {other:?}"))),
    }
    let mut brokers = None;
    let mut zookeeper = None;
    let mut runtime = Runtime::Blocking;
    let mut tls_ca = None;
    let mut tls_name = None;
    let mut broker_version = None;
    let mut timeout = Duration::from_secs(10);
    let mut topics = Vec::new();
    while let Some(arg) = args.next() {
        // `--name=value` or `--name value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        if flag == "-h" || flag == "--help" {
            return Err(usage(""));
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| usage(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "-b" | "--brokers" => brokers = Some(value()?),
            "-z" | "--zookeeper" => zookeeper = Some(value()?),
            "-t" | "--topic" => topics.push(value()?),
            "--runtime" => {
                runtime = match value()?.as_str() {
                    "blocking" => Runtime::Blocking,
                    "tokio" => Runtime::Tokio,
                    "smol" => Runtime::Smol,
                    other => return Err(usage(format!("unknown runtime {other:?}"))),
                }
            }
            "--tls-ca" => tls_ca = Some(PathBuf::from(value()?)),
            "--tls-server-name" => tls_name = Some(value()?),
            "--broker-version" => {
                let v = value()?;
                broker_version = Some(
                    BrokerVersion::parse(&v)
                        .map_err(|e| usage(format!("--broker-version {v:?}: {e}")))?,
                );
            }
            "--timeout" => {
                let v = value()?;
                let secs: u64 = v.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                    usage(format!("--timeout {v:?}: a positive number of seconds"))
                })?;
                timeout = Duration::from_secs(secs);
            }
            other => return Err(usage(format!("unknown option {other:?}"))),
        }
    }
    let bootstrap = match (brokers, zookeeper) {
        (Some(b), None) => Bootstrap::Brokers(
            BrokerAddress::parse(&b).map_err(|e| usage(format!("-b {b:?}: {e}")))?,
        ),
        (None, Some(z)) => Bootstrap::ZooKeeper { connect: z },
        (Some(_), Some(_)) => return Err(usage("give -b or -z, not both")),
        (None, None) => return Err(usage("give the brokers (-b) or ZooKeeper (-z)")),
    };
    if tls_name.is_some() && tls_ca.is_none() {
        return Err(usage("--tls-server-name needs --tls-ca"));
    }
    let tls = tls_ca.map(|ca| TlsConfig {
        ca_file: Some(ca),
        client_cert_file: None,
        client_key_file: None,
        verify: true,
        server_name: tls_name,
    });
    let defaults = ClientConfig::default();
    let config = ClientConfig {
        client_id: "grete-cli".into(),
        bootstrap,
        broker_version: broker_version.unwrap_or(defaults.broker_version),
        request_timeout: timeout,
        connect_timeout: timeout.min(Duration::from_secs(10)),
        // Show everything, internal topics included, as kcat does.
        exclude_internal_topics: false,
        tls,
        ..defaults
    };
    Ok(Options {
        config,
        runtime,
        topics,
    })
}

/// Parses, connects, fetches the metadata and returns the text to print.
pub fn run(args: impl IntoIterator<Item = String>) -> Result<String, CliError> {
    let options = parse(args)?;
    let cluster = fetch(&options)?;
    render(&cluster, &options.topics)
}

/// The cluster metadata, through the chosen runtime.
pub fn fetch(options: &Options) -> Result<Cluster, CliError> {
    let failed = |e: grete::error::Error| CliError::Failed(e.to_string());
    match options.runtime {
        Runtime::Blocking => {
            let client =
                grete_blocking::KafkaClient::connect(options.config.clone()).map_err(failed)?;
            let cluster = client.cluster();
            client.close();
            Ok(cluster)
        }
        Runtime::Tokio => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| CliError::Failed(format!("tokio runtime: {e}")))?;
            runtime.block_on(async {
                let client = grete_tokio::KafkaClient::connect(options.config.clone())
                    .await
                    .map_err(failed)?;
                let cluster = client.cluster();
                client.close().await;
                Ok(cluster)
            })
        }
        Runtime::Smol => smol::block_on(async {
            let client = grete_smol::KafkaClient::connect(options.config.clone())
                .await
                .map_err(failed)?;
            let cluster = client.cluster();
            client.close().await;
            Ok(cluster)
        }),
    }
}

fn list(ids: &[i32]) -> String {
    let items: Vec<String> = ids.iter().map(i32::to_string).collect();
    format!("[{}]", items.join(","))
}

/// The text of the `metadata` command: brokers by id, then topics by name (only `only`
/// when it is not empty), each partition with its leader, replicas and ISR.
pub fn render(cluster: &Cluster, only: &[String]) -> Result<String, CliError> {
    let mut out = String::new();
    let brokers: Vec<_> = cluster.brokers().collect();
    let _ = writeln!(out, "brokers ({}):", brokers.len());
    for b in brokers {
        let role = if cluster.controller() == Some(b.id) {
            "  controller"
        } else {
            ""
        };
        let rack = b
            .rack
            .as_deref()
            .map(|r| format!("  rack={r}"))
            .unwrap_or_default();
        let _ = writeln!(out, "  {}  {}:{}{rack}{role}", b.id, b.host, b.port);
    }
    let topics: Vec<_> = cluster
        .topics()
        .filter(|t| only.is_empty() || only.contains(&t.name))
        .collect();
    if let Some(missing) = only.iter().find(|n| cluster.topic(n).is_none()) {
        return Err(CliError::Failed(format!("topic {missing:?} not found")));
    }
    let _ = writeln!(out, "topics ({}):", topics.len());
    for t in topics {
        let mut line = format!("  {}  partitions={}", t.name, t.partitions.len());
        if t.is_internal {
            line.push_str("  internal");
        }
        if let Some(e) = t.error {
            let _ = write!(line, "  error={e:?}");
        }
        let _ = writeln!(out, "{line}");
        for p in t.partitions.values() {
            let leader = p.leader.map_or("-1".to_owned(), |l| l.to_string());
            let mut line = format!(
                "    {}  leader={leader}  replicas={}  isr={}",
                p.id,
                list(&p.replicas),
                list(&p.isr)
            );
            if let Some(e) = p.error {
                let _ = write!(line, "  error={e:?}");
            }
            let _ = writeln!(out, "{line}");
        }
    }
    Ok(out)
}
