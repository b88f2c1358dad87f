//! `grete`: a small kcat-like command line tool on top of the grete client.
//!
//! ```text
//! cargo run --release --example grete -- metadata -b 127.0.0.1:9092
//! cargo run --release --example grete -- metadata -z 127.0.0.1:2181/kafka -t events
//! cargo run --release --example grete -- metadata -b 127.0.0.1:9093 --tls-ca ca.pem
//! ```
//!
//! Run it without arguments for the options.

mod cli;

fn main() {
    match cli::run(std::env::args().skip(1)) {
        Ok(out) => print!("{out}"),
        Err(cli::CliError::Usage(message)) => {
            if !message.is_empty() {
                eprintln!("grete: {message}\n");
            }
            eprint!("{}", cli::USAGE);
            std::process::exit(2);
        }
        Err(cli::CliError::Failed(message)) => {
            eprintln!("grete: {message}");
            std::process::exit(1);
        }
    }
}
