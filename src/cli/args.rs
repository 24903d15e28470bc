//! The command line, declared with clap's derive: one struct per subcommand, `--help` on each.
//! `fleetdb serve`'s settings are declared once in [`super::config`] (flag, variable, file key).
//! A mistake on the command line is one line on stderr starting `fleetdb: `, and exit status 2.

use clap::{Args, Parser, Subcommand};

use super::config::ServeArgs;

const ABOUT: &str = "fleetdb — a time-series database for device fleets";

const AFTER_HELP: &str = "\
Every 'fleetdb serve' setting also comes from a FLEETDB_* variable or a key of the TOML file
named by --config (see 'fleetdb serve --help'). Defaults: ./fleetdb-data, 127.0.0.1:5433,
127.0.0.1:8080, no broker, no password (clients are trusted, so only a loopback address is
allowed), 1GiB of working memory per query.";

#[derive(Parser, Debug)]
#[command(name = "fleetdb", bin_name = "fleetdb", version, about = ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// A simulated factory fleet streaming over an in-process MQTT broker through a pipeline;
    /// query it with psql.
    Demo(DemoArgs),
    /// Serve SQL (PostgreSQL protocol), HTTP (the AWS IoT Analytics ingest API) and MQTT.
    // A flag given twice keeps the last (a restart after a failed log appends the addresses).
    #[command(args_override_self = true)]
    Serve(Box<ServeArgs>),
    /// Dump and verify data files (WAL, channel, datastore).
    Inspect(InspectArgs),
    /// An AWS IoT Analytics pipeline or dataset (CreatePipeline / CreateDataset request or
    /// describe answer) as a CREATE PIPELINE or CREATE DATASET statement.
    #[command(name = "import-aws")]
    ImportAws(ImportAwsArgs),
    /// Simulated factory readings on stdout.
    Generate(GenerateArgs),
    /// Storage engine benchmark.
    #[command(name = "bench-storage")]
    BenchStorage(BenchStorageArgs),
    /// Ingest benchmark against a running server.
    #[command(name = "bench-ingest")]
    BenchIngest(BenchIngestArgs),
    /// Dataset refresh benchmark (full, delta, x10 history, freshness on a 1-second schedule).
    #[command(name = "bench-datasets")]
    BenchDatasets(BenchDatasetsArgs),
    /// Acknowledged-write load for crash testing.
    Stress(StressArgs),
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Simulated machines (1 to 100000).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub machines: u32,
    /// Stop after this many seconds (as in 120 or 120s); runs until Ctrl-C without it.
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub duration: Option<u64>,
    /// Keep the data here (it must be empty); without it a temporary folder, removed at exit.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// Address of the SQL listener.
    #[arg(long, value_name = "ADDR")]
    pub pg_listen: Option<String>,
    /// Address of the HTTP listener.
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<String>,
}

fn seconds(s: &str) -> Result<u64, String> {
    s.trim_end_matches('s').parse().map_err(|_| format!("'{s}' is not a number of seconds, as in 120s"))
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Data files to dump.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// Dump without checking checksums.
    #[arg(long)]
    pub no_verify: bool,
}

#[derive(Args, Debug)]
pub struct ImportAwsArgs {
    /// The JSON file of a pipeline or a dataset.
    #[arg(value_name = "FILE.json")]
    pub file: String,
    /// The reference table that an enrich activity's lookups read.
    #[arg(long, value_name = "TABLE")]
    pub enrich_table: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Csv,
    Ndjson,
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[arg(long, default_value_t = 100)]
    pub machines: usize,
    /// Hours of readings.
    #[arg(long, default_value_t = 1.0)]
    pub hours: f64,
    /// Seconds between two readings of a machine.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub interval: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The first reading's time, in seconds since 1970 (default: the simulator's fixed start).
    #[arg(long, value_name = "UNIX_SECS")]
    pub start: Option<i64>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Csv)]
    pub format: OutputFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    Fsync,
    None,
}

#[derive(Args, Debug)]
pub struct BenchStorageArgs {
    #[arg(long, default_value_t = 1000)]
    pub machines: usize,
    #[arg(long, default_value_t = 24.0)]
    pub hours: f64,
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub interval: u32,
    #[arg(long, value_enum, default_value_t = Durability::Fsync)]
    pub durability: Durability,
    /// Concurrent writers.
    #[arg(long, default_value_t = 64)]
    pub writers: usize,
    #[arg(long, value_name = "DIR", default_value = "target/bench-storage")]
    pub dir: String,
    /// Keep the data directory afterwards.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Args, Debug)]
pub struct BenchIngestArgs {
    /// The server's HTTP address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub http: String,
    /// The server's SQL port.
    #[arg(long, value_name = "PORT", default_value_t = 5433)]
    pub pg_port: u16,
    /// An MQTT broker the server reads (HOST:PORT).
    #[arg(long, value_name = "HOST:PORT")]
    pub broker: Option<String>,
    #[arg(long, default_value_t = 200_000)]
    pub messages: usize,
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
}

#[derive(Args, Debug)]
pub struct BenchDatasetsArgs {
    #[arg(long, default_value_t = 1000)]
    pub machines: usize,
    #[arg(long, default_value_t = 28.0)]
    pub hours: f64,
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub interval: u32,
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    #[arg(long, value_name = "DIR", default_value = "target/bench-datasets")]
    pub dir: String,
}

#[derive(Args, Debug)]
pub struct StressArgs {
    #[arg(long, value_name = "DIR")]
    pub data_dir: String,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 1000)]
    pub batches: u64,
    /// Messages per batch.
    #[arg(long, default_value_t = 20)]
    pub messages: usize,
    /// Rows per batch.
    #[arg(long, default_value_t = 50)]
    pub rows: usize,
}

/// What to do with the command line: run, or print (help, version) and exit with `code`.
pub enum Parsed {
    Run(Cli),
    Print { text: String, to_stderr: bool, code: u8 },
}

/// Parses the command line; a mistake becomes one line (`fleetdb: …`, exit 2).
pub fn parse<I, T>(argv: I) -> Parsed
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString>,
{
    use clap::CommandFactory;
    use clap::error::ErrorKind;
    let argv: Vec<std::ffi::OsString> = argv.into_iter().map(Into::into).collect();
    // Where to look for help: the command's own when it is one.
    let command = argv
        .get(1)
        .and_then(|a| a.to_str())
        .filter(|a| Cli::command().get_subcommands().any(|c| c.get_name() == *a))
        .map_or_else(String::new, |a| format!(" {a}"));
    match Cli::try_parse_from(&argv) {
        Ok(cli) => Parsed::Run(cli),
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                Parsed::Print { text: e.render().to_string().trim_end().to_string(), to_stderr: false, code: 0 }
            }
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
                Parsed::Print { text: e.render().to_string().trim_end().to_string(), to_stderr: true, code: 2 }
            }
            _ => Parsed::Print { text: one_line(&e.render().to_string(), &command), to_stderr: true, code: 2 },
        },
    }
}

/// clap's error (`error: …`, a tip, the usage) as one line: its first, with where to look.
fn one_line(rendered: &str, command: &str) -> String {
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("invalid command line");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // "the following required arguments were not provided:" names them on the next line.
    let named =
        if first.ends_with(':') { lines.next().map(|n| format!(" {n}")).unwrap_or_default() } else { String::new() };
    format!("fleetdb: {first}{named} (see 'fleetdb{command} --help')")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn mistakes_are_one_line() {
        for argv in
            [&["fleetdb", "serve", "--bogus"][..], &["fleetdb", "frobnicate"], &["fleetdb", "generate", "--machines"]]
        {
            match parse(argv) {
                Parsed::Print { text, to_stderr: true, code: 2 } => {
                    assert_eq!(text.lines().count(), 1, "{text}");
                    assert!(text.starts_with("fleetdb: "), "{text}");
                }
                _ => panic!("{argv:?} was accepted"),
            }
        }
        match parse(["fleetdb", "inspect"]) {
            Parsed::Print { text, .. } => assert!(text.contains("<FILE>") && text.lines().count() == 1, "{text}"),
            Parsed::Run(_) => panic!("inspect without files accepted"),
        }
        match parse(["fleetdb", "generate", "--format", "xml"]) {
            Parsed::Print { text, .. } => assert!(text.contains("xml"), "{text}"),
            Parsed::Run(_) => panic!("xml accepted"),
        }
    }

    #[test]
    fn every_subcommand_has_help() {
        for cmd in [
            "serve",
            "demo",
            "inspect",
            "import-aws",
            "generate",
            "bench-storage",
            "bench-ingest",
            "bench-datasets",
            "stress",
        ] {
            match parse(["fleetdb", cmd, "--help"]) {
                Parsed::Print { text, to_stderr: false, code: 0 } => {
                    assert!(text.contains(&format!("fleetdb {cmd}")), "{cmd}: {text}")
                }
                _ => panic!("{cmd} --help"),
            }
        }
    }
}
