//! `grete`: a small kcat-like command line tool on top of the grete client.
//!
//! ```text
//! cargo run --release --example grete -- metadata -b 127.0.0.1:9092
//! cargo run --release --example grete -- metadata -z 127.0.0.1:2181/kafka -t events
//! cargo run --release --example grete -- metadata -b 127.0.0.1:9093 --tls-ca ca.pem
//! printf 'k1:hello\nk2:world\n' | cargo run --release --example grete -- produce -b 127.0.0.1:9092 -t events -K :
//! cargo run --release --example grete -- bench produce -b 127.0.0.1:9092 -t events --count 1000000 --size 100 --acks 1
//! cargo run --release --example grete -- consume -b 127.0.0.1:9092 -t events -o beginning -e -f '%p %o %k %s\n'
//! cargo run --release --example grete -- bench consume -b 127.0.0.1:9092 -t events --count 1000000
//! ```
//!
//! Run it without arguments for the options.

mod cli;
mod consume;
mod produce;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let (result, usage) = match args.first().map(String::as_str) {
        Some("produce") => {
            args.remove(0);
            let stdin = std::io::stdin();
            let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
            let result =
                produce::run_produce(args, &mut stdin.lock(), &mut stdout, &mut std::io::stderr());
            drop(stdout);
            (
                result,
                [produce::PRODUCE_USAGE, produce::COMMON_USAGE].concat(),
            )
        }
        Some("consume") => {
            args.remove(0);
            let mut stdout = std::io::stdout().lock();
            let result = consume::run_consume(args, &mut stdout).map(|summary| {
                eprint!("{summary}");
                String::new()
            });
            (
                result,
                [consume::CONSUME_USAGE, consume::CONSUME_COMMON_USAGE].concat(),
            )
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("consume") => {
            args.drain(..2);
            let result = consume::run_bench_consume(args);
            (
                result,
                [consume::BENCH_CONSUME_USAGE, consume::CONSUME_COMMON_USAGE].concat(),
            )
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("produce") => {
            args.drain(..2);
            let result = produce::run_bench(args);
            (
                result,
                [produce::BENCH_USAGE, produce::COMMON_USAGE].concat(),
            )
        }
        _ => (cli::run(args), cli::USAGE.to_owned()),
    };
    match result {
        Ok(out) => print!("{out}"),
        Err(cli::CliError::Usage(message)) => {
            if !message.is_empty() {
                eprintln!("grete: {message}\n");
            }
            eprint!("{usage}");
            std::process::exit(2);
        }
        Err(cli::CliError::Failed(message)) => {
            eprintln!("grete: {message}");
            std::process::exit(1);
        }
    }
}
