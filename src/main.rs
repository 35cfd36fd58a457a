//! The medic command line. Errors become messages and exit codes here, and
//! nowhere else.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use medic::config::Config;
use medic::diagnose::llm::{RecordingLlm, live_llm};
use medic::playbook::schema::{SchemaKind, schema};
use medic::playbook::{FindingLevel, Library, lint_sources};
use medic::replay::record::{RecordRequest, record};
use medic::replay::{self, Loaded, ReplayOptions, Report, render};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

mod bundled;

#[derive(Parser)]
#[command(
    name = "medic",
    version,
    about = "An in-cluster healer for Kubernetes",
    after_help = "Environment: MEDIC_LOG sets the log filter (e.g. medic=debug; default warn).\nExit status: 0 done, 1 a check failed (replay, lint, detectors), 2 an error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// With --playbooks or lint paths: use only those files, not the
    /// built-in detectors and playbooks beside them.
    #[arg(long, global = true)]
    no_builtin: bool,
}

/// Set once from the command line: whether user files replace the
/// built-in detectors and playbooks instead of adding to them.
static NO_BUILTIN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// The detector and playbook sources for `paths`: the built-in ones with
/// the user's laid over them (a user document replaces the built-in one of
/// the same kind and name, said on stderr), or the user's alone with
/// --no-builtin. No paths: the built-in ones.
fn playbook_sources(paths: &[PathBuf]) -> Result<Vec<(String, String)>> {
    if paths.is_empty() {
        return Ok(medic::playbook::embedded_sources());
    }
    let user = Library::read_sources(paths)?;
    if NO_BUILTIN.get().copied().unwrap_or(false) {
        return Ok(user);
    }
    let (sources, notes) = medic::playbook::with_builtins(user);
    for note in notes {
        eprintln!("note: {note}");
    }
    Ok(sources)
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(clap::Args)]
struct AnswerArgs {
    /// The incident id, as in /api/v1/incidents and escalations.
    incident: String,
    /// The step, when more than one of the incident's steps waits.
    #[arg(long)]
    step: Option<usize>,
    /// Who answers (must be one of `approvals.approvers` when set).
    #[arg(long = "as")]
    by: String,
    /// The medic to ask: its leader (the medic-webhook Service in a cluster).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// A file with the API bearer token; else $MEDIC_API_TOKEN.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Refuse unless the plan is still the one with this digest (from the escalation).
    #[arg(long)]
    plan: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Replay recorded incidents through the pipeline against a real Prometheus.
    #[command(
        after_help = "Exit status: 0 every fixture passed, 1 one did not, 2 an error (a malformed fixture, Prometheus not installed).\nEnvironment: MEDIC_PROMETHEUS and MEDIC_PROMTOOL name the binaries replay starts (default: prometheus and promtool on PATH); MEDIC_LOG the log filter."
    )]
    Replay {
        /// Fixture files or directories; without one, the incidents bundled in the binary.
        paths: Vec<PathBuf>,
        /// The timeline, or json: the report (docs/fixtures.md).
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// The same as --format json.
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// Detector and playbook files or directories, laid over the built-in ones.
        #[arg(long = "playbooks")]
        playbooks: Vec<PathBuf>,
        /// medic.yaml to replay with (fixtures' `config:` is laid over it; default mode: enforce).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Ask the live LLM of the config's `llm:` section instead of the recorded
        /// answers, and print what it said as an `llm:` block to paste into the fixture.
        #[arg(long, requires = "config")]
        llm_live: bool,
        /// Keep a journal (and the simulated cluster) in this directory: a
        /// replay killed midway and run again resumes where it stopped.
        /// One fixture only.
        #[arg(long)]
        journal: Option<PathBuf>,
        /// With --journal: keep the journal in this NATS server's JetStream
        /// (stream MEDIC_JOURNAL), as `medic run` does with NATS, and only
        /// the simulated cluster in the directory.
        #[arg(long, requires = "journal")]
        journal_nats: Option<String>,
    },
    /// Show what a playbook would do for a recorded incident, without acting.
    #[command(
        after_help = "Exit status: 0 explained, 2 an error (no such playbook, a malformed fixture)."
    )]
    Explain {
        /// The playbook's name.
        playbook: String,
        /// The recorded incident (fixture file).
        #[arg(long)]
        fixture: PathBuf,
        /// medic.yaml whose bounds apply (default: the replay's, mode enforce).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Detector and playbook files or directories, laid over the built-in ones.
        #[arg(long = "playbooks")]
        playbooks: Vec<PathBuf>,
        /// Text, or json.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// The same as --format json.
        #[arg(long, conflicts_with = "format")]
        json: bool,
    },
    /// Write a fixture from a live Prometheus: the raw samples of the selected series.
    Record {
        /// Prometheus base URL, e.g. http://prometheus.monitoring:9090
        #[arg(long)]
        prometheus: String,
        /// Start of the window: RFC 3339 (2024-05-01T03:00:00Z) or unix seconds.
        #[arg(long)]
        from: String,
        /// End of the window.
        #[arg(long)]
        to: String,
        /// Series selectors, e.g. 'container_memory_working_set_bytes{namespace="prod"}'.
        #[arg(long = "match", required = true)]
        selectors: Vec<String>,
        /// Sample spacing (default: the most common spacing in the data).
        #[arg(long)]
        interval: Option<String>,
        /// The fixture's name.
        #[arg(long, default_value = "recorded incident")]
        name: String,
        /// Also read the pods, nodes and workloads the series name (and
        /// their ReplicaSets) from the cluster this kubeconfig points at.
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the action catalog reference (Markdown; docs/actions.md).
    Catalog,
    /// Print what medic does with each kube-prometheus alert (Markdown; docs/coverage.md).
    Coverage,
    /// Print the medic.yaml reference: every field, its type, default and meaning
    /// (Markdown; docs/configuration.md).
    Configuration,
    /// Write the built-in detectors and playbooks to a directory, to read or
    /// start your own from.
    Builtin {
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the detector reference (Markdown; docs/detectors.md), or with
    /// --prometheus, which detectors can fire there and which metrics they
    /// miss (exit 1 when none can).
    Detectors {
        /// Check against this Prometheus (base URL).
        #[arg(long)]
        prometheus: Option<String>,
        /// Detector and playbook files or directories, laid over the built-in ones.
        #[arg(long = "playbooks")]
        playbooks: Vec<PathBuf>,
    },
    /// Write a fixture from a scenario (docs/synth.md): a cluster's workloads,
    /// their churn and noise, as the exporters would have recorded them.
    Synth {
        /// Scenario files.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Write each fixture here as <scenario file name>, instead of to stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the JSON Schema of a document kind, or write all of them to a directory.
    Schema {
        #[arg(value_enum, required_unless_present = "write")]
        kind: Option<SchemaKind>,
        /// Write detector.json, playbook.json, document.json and config.json here.
        #[arg(long, conflicts_with = "kind")]
        write: Option<PathBuf>,
    },
    /// Watch the cluster: detect, diagnose, plan and act (in observe mode: plan and escalate).
    #[command(
        after_help = "Exit status: 0 stopped (SIGTERM, Ctrl-C), 2 could not start (medic.yaml, credentials, an enforcing webhook with none).\nEnvironment: POD_NAME and POD_NAMESPACE (the downward API) name the replica and where its Leases live; MEDIC_LOG the log filter."
    )]
    Run {
        /// medic.yaml (Prometheus, mode, autonomy, playbooksDir, listen, llm).
        #[arg(long)]
        config: PathBuf,
        /// Act on the objects of this fixture in memory instead of the cluster
        /// (for trying medic against a real Prometheus without a cluster; what
        /// medic does to them is kept in stateDir/cluster.json across restarts).
        #[arg(long)]
        sim_cluster: Option<PathBuf>,
    },
    /// Measure detection, memory, decision latency, alert intake and replay
    /// speed on a synthetic cluster (loopback only; needs prometheus and promtool).
    Bench {
        #[arg(long, default_value_t = 10_000)]
        pods: usize,
        #[arg(long, default_value_t = 500)]
        nodes: usize,
        /// Detection cycles for the memory figure (20 = 10 minutes at 30 s).
        #[arg(long, default_value_t = 20)]
        cycles: usize,
        #[arg(long, default_value_t = 10_000)]
        alerts: usize,
        /// Pods in the 24-hour replay; 0 skips it.
        #[arg(long, default_value_t = 200)]
        replay_pods: usize,
        /// Only the decision-latency figure (no Prometheus needed), e.g. to profile it.
        #[arg(long)]
        decision_only: bool,
    },
    /// Approve the step an incident waits at (through a running medic's API).
    #[command(
        after_help = "Exit status: 0 recorded, 2 refused or unreachable.\nEnvironment: MEDIC_API_TOKEN holds the API token when --token-file is not given."
    )]
    Approve(AnswerArgs),
    /// Deny the step an incident waits at; its plan ends there.
    #[command(
        after_help = "Exit status: 0 recorded, 2 refused or unreachable.\nEnvironment: MEDIC_API_TOKEN holds the API token when --token-file is not given."
    )]
    Deny(AnswerArgs),
    /// Check detector and playbook files, fixtures and medic.yaml (told apart by content).
    #[command(
        after_help = "Exit status: 0 no error (warnings allowed), 1 an error found, 2 a file could not be read."
    )]
    Lint {
        /// Files or directories; without one, the embedded defaults.
        paths: Vec<PathBuf>,
        /// Text (file:line:column: ...), or json for CI and editors.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// The same as --format json.
        #[arg(long, conflicts_with = "format")]
        json: bool,
    },
    /// Each playbook step's track record and whether it may run on its own
    /// (earned autonomy), from the journal `medic run` keeps: the file in
    /// its stateDir, or with `nats.url` set the JetStream stream replicas share.
    #[command(
        after_help = "Exit status: 0 printed, 2 no journal where it looked, or NATS unreachable."
    )]
    Trust {
        /// medic.yaml: where the journal is, and `autonomy.earn`.
        #[arg(long)]
        config: Option<PathBuf>,
        /// A journal file (journal.log) or the directory holding it, instead
        /// of the one medic.yaml names.
        #[arg(long)]
        journal: Option<PathBuf>,
        /// The standings as of this time (RFC 3339 or unix seconds; default now).
        #[arg(long)]
        at: Option<String>,
        /// A table, or json.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// The same as --format json.
        #[arg(long, conflicts_with = "format")]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = NO_BUILTIN.set(cli.no_builtin);
    medic::tls::install_crypto_provider();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MEDIC_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal, not in a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Replay {
                paths,
                format,
                json,
                playbooks,
                config,
                llm_live,
                journal,
                journal_nats,
            } => {
                let work = replay_command(
                    paths,
                    json || matches!(format, Format::Json),
                    playbooks,
                    config,
                    llm_live,
                    journal,
                    journal_nats,
                );
                // Dropping the replay on Ctrl-C, SIGTERM (CI's cancel) or
                // SIGHUP (a closed terminal) stops its Prometheus and
                // removes its files.
                tokio::select! {
                    r = work => r,
                    signal = interrupted() => {
                        eprintln!("interrupted by {}", signal.name);
                        Ok(ExitCode::from(128 + signal.number))
                    }
                }
            }
            Command::Lint {
                paths,
                format,
                json,
            } => lint_command(paths, if json { Format::Json } else { format }),
            Command::Schema { kind, write } => schema_command(kind, write),
            Command::Trust {
                config,
                journal,
                at,
                format,
                json,
            } => {
                trust_command(
                    config,
                    journal,
                    at,
                    if json { Format::Json } else { format },
                )
                .await
            }
            Command::Synth { scenarios, out } => synth_command(scenarios, out),
            Command::Run {
                config,
                sim_cluster,
            } => run_command(config, sim_cluster).await,
            Command::Bench {
                pods,
                nodes,
                cycles,
                alerts,
                replay_pods,
                decision_only,
            } => {
                if !decision_only {
                    replay::check_tools()?;
                }
                let options = medic::bench::BenchOptions {
                    pods,
                    nodes,
                    cycles,
                    alerts,
                    replay_pods,
                    decision_only,
                };
                print!("{}", medic::bench::run(&options).await?);
                Ok(ExitCode::SUCCESS)
            }
            Command::Approve(args) => answer_command(args, true).await,
            Command::Deny(args) => answer_command(args, false).await,
            Command::Record {
                prometheus,
                from,
                to,
                selectors,
                interval,
                name,
                kubeconfig,
                out,
            } => {
                let request = RecordRequest {
                    name,
                    selectors,
                    from: parse_time(&from).context("--from")?,
                    to: parse_time(&to).context("--to")?,
                    interval: interval
                        .map(|i| medic::model::parse_duration(&i))
                        .transpose()
                        .context("--interval")?,
                };
                let metrics = medic::metrics::PrometheusMetrics::new(&prometheus)?;
                let (mut fixture, labels) = record(&metrics, &request).await?;
                let mut todo = "the cluster objects, events and `expect`";
                if let Some(path) = kubeconfig {
                    let client = kube_client(&path).await?;
                    let refs = medic::replay::record_objects::referenced(&labels);
                    let fetched = medic::replay::record_objects::fetch(client, &refs).await?;
                    for s in &fetched.skipped {
                        eprintln!("skipped {s}");
                    }
                    eprintln!(
                        "recorded {} object(s) from the cluster, skipped {}",
                        fetched.objects.len(),
                        fetched.skipped.len()
                    );
                    fixture.cluster = fetched.objects;
                    todo = "the change events and `expect`";
                }
                let text = format!(
                    "# Recorded by medic record; add {todo} by hand.\n{}",
                    serde_yaml::to_string(&fixture)?
                );
                match out {
                    Some(path) => std::fs::write(&path, text)
                        .with_context(|| format!("cannot write {}", path.display()))?,
                    None => print!("{text}"),
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Explain {
                playbook,
                fixture,
                config,
                playbooks,
                format,
                json,
            } => {
                let json = json || matches!(format, Format::Json);
                explain_command(playbook, fixture, config, playbooks, json).await
            }
            Command::Catalog => {
                print!("{}", medic::act::reference::markdown());
                Ok(ExitCode::SUCCESS)
            }
            Command::Builtin { out } => {
                std::fs::create_dir_all(&out)
                    .with_context(|| format!("cannot create {}", out.display()))?;
                for (name, text) in medic::playbook::EMBEDDED {
                    let path = out.join(name);
                    std::fs::write(&path, text)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    println!("wrote {}", path.display());
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Configuration => {
                print!("{}", medic::config::reference::markdown());
                Ok(ExitCode::SUCCESS)
            }
            Command::Coverage => {
                let library = medic::playbook::Library::embedded()?;
                print!("{}", medic::signal::coverage::markdown(&library));
                Ok(ExitCode::SUCCESS)
            }
            Command::Detectors {
                prometheus,
                playbooks,
            } => detectors_command(prometheus, playbooks).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes, each said once (library errors often name
/// their cause in their own message already).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

fn options(playbooks: &[PathBuf], config: Option<PathBuf>) -> Result<ReplayOptions> {
    let mut options = ReplayOptions::embedded();
    options.sources = playbook_sources(playbooks)?;
    if let Some(path) = config {
        options.config = Config::load(&path)?;
    }
    Ok(options)
}

async fn detectors_command(
    prometheus: Option<String>,
    playbooks: Vec<PathBuf>,
) -> Result<ExitCode> {
    let library = Library::from_sources(&playbook_sources(&playbooks)?)?;
    let Some(url) = prometheus else {
        print!("{}", medic::signal::reference::markdown(&library.detectors));
        return Ok(ExitCode::SUCCESS);
    };
    let metrics = medic::metrics::PrometheusMetrics::new(&url)?;
    let now = chrono::Utc::now().timestamp();
    let rows = medic::signal::inputs::readiness(&metrics, &library.detectors, now)
        .await
        .with_context(|| format!("cannot ask {url} which metrics it holds"))?;
    print!("{}", medic::signal::reference::readiness_table(&rows));
    // A healer that can see nothing is not ready: say so to scripts too.
    if rows.iter().any(|r| r.can_fire) {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(1))
    }
}

async fn explain_command(
    playbook: String,
    fixture: PathBuf,
    config: Option<PathBuf>,
    playbooks: Vec<PathBuf>,
    json: bool,
) -> Result<ExitCode> {
    replay::check_tools()?;
    let options = options(&playbooks, config)?;
    let loaded = Loaded::load(&fixture)?;
    match replay::explain_loaded(&loaded, &options, &playbook).await? {
        None => {
            println!("{}: no incident, so nothing to explain", fixture.display());
        }
        Some(e) if json => println!("{}", serde_json::to_string_pretty(&e)?),
        Some(e) => print!("{}", e.render(loaded.start)),
    }
    Ok(ExitCode::SUCCESS)
}

async fn replay_command(
    paths: Vec<PathBuf>,
    json: bool,
    playbooks: Vec<PathBuf>,
    config: Option<PathBuf>,
    llm_live: bool,
    journal: Option<PathBuf>,
    journal_nats: Option<String>,
) -> Result<ExitCode> {
    replay::check_tools()?;
    let mut options = options(&playbooks, config)?;
    options.journal = journal;
    options.journal_nats = journal_nats.map(|url| medic::escalate::NatsConfig {
        url,
        ..options.config.nats.clone()
    });
    let recorder = if llm_live {
        let config = &options.config.llm;
        if !config.enabled {
            anyhow::bail!("--llm-live needs `llm: {{enabled: true, ...}}` in the config");
        }
        let llm = live_llm(config)?.ok_or_else(|| {
            anyhow::anyhow!(
                "--llm-live: no API key in ${} or llm.apiKeyFile",
                config.api_key_env
            )
        })?;
        let recorder = Arc::new(RecordingLlm::new(Arc::new(llm)));
        options.live_llm = Some(recorder.clone());
        Some(recorder)
    } else {
        None
    };
    let mut fixtures = Vec::new();
    if paths.is_empty() {
        for (name, text) in bundled::FIXTURES {
            fixtures.push(Loaded::parse(text, &format!("fixtures/incidents/{name}"))?);
        }
    }
    for path in &paths {
        for file in replay::fixture_files(path)
            .with_context(|| format!("cannot read {}", path.display()))?
        {
            fixtures.push(Loaded::load(&file)?);
        }
    }
    if fixtures.is_empty() {
        anyhow::bail!("no fixture files found");
    }
    if options.journal.is_some() && fixtures.len() != 1 {
        anyhow::bail!("--journal replays one fixture; {} given", fixtures.len());
    }
    let mut reports: Vec<Report> = Vec::new();
    for f in &fixtures {
        let report = replay::replay_loaded(f, &options).await?;
        if !json {
            println!("{}", render::timeline(&report));
        }
        reports.push(report);
    }
    if json {
        let text = if reports.len() == 1 && paths.len() == 1 && !paths[0].is_dir() {
            serde_json::to_string_pretty(&reports[0])?
        } else {
            serde_json::to_string_pretty(&reports)?
        };
        println!("{text}");
    } else if reports.len() > 1 {
        print!("{}", render::summary(&reports));
    }
    if let Some(recorder) = recorder {
        println!("# LLM answers captured; paste under the fixture's top level:");
        print!("{}", render::llm_block(&recorder.exchanges()));
    }
    Ok(if reports.iter().all(|r| r.passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn trust_command(
    config: Option<PathBuf>,
    journal: Option<PathBuf>,
    at: Option<String>,
    format: Format,
) -> Result<ExitCode> {
    let config = match &config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let now = match &at {
        Some(t) => parse_time(t).with_context(|| format!("--at {t}"))?,
        None => medic::model::unix_now(),
    };
    let state_file = PathBuf::from(&config.state_dir).join("journal.log");
    let restored = match journal {
        None if !config.nats.url.is_empty() => {
            let js = medic::escalate::connect_nats(&config.nats).await?;
            medic::journal::Journal::open(&state_file, Some((js, &config.nats)))
                .await?
                .1
        }
        journal => {
            let file = match journal {
                Some(p) if p.is_dir() => p.join("journal.log"),
                Some(p) => p,
                None => state_file,
            };
            if !file.exists() {
                anyhow::bail!(
                    "no journal at {} (the stateDir of medic.yaml, or --journal)",
                    file.display()
                );
            }
            // Read-only: a running medic may be writing it.
            medic::journal::FileJournal::read(&file)?
        }
    };
    if let Some(cut) = &restored.cut {
        eprintln!("note: the journal's read stopped early: {cut}");
    }
    let ledger = medic::trust::Ledger::from_entries(restored.ledger);
    let rows = medic::trust::rows(&ledger, config.autonomy.earn.as_ref(), now);
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Text => {
            if rows.is_empty() {
                println!("no step that changes the cluster has come up yet");
            } else {
                print!("{}", medic::trust::text_table(&rows));
            }
            match &config.autonomy.earn {
                Some(e) => println!(
                    "earned autonomy: {} approvals and {} verified runs within {}, none denied, failed or rolled back since",
                    e.approvals, e.verified, e.window
                ),
                None => println!(
                    "autonomy.earn is not set: the risk ceilings alone decide what runs on its own"
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn lint_command(paths: Vec<PathBuf>, format: Format) -> Result<ExitCode> {
    // Fixtures and medic.yaml files are checked as replay and `medic run`
    // read them; the rest are detectors and playbooks.
    let mut other = Vec::new();
    let mut other_files = 0;
    let mut documents = Vec::new();
    for (file, text) in Library::read_sources(&paths)? {
        match medic::playbook::file_kind(&text) {
            medic::playbook::FileKind::Documents => documents.push((file, text)),
            kind => {
                other_files += 1;
                other.extend(medic::playbook::lint_file(&file, &text, kind));
            }
        }
    }
    let sources = if paths.is_empty() {
        medic::playbook::embedded_sources()
    } else if NO_BUILTIN.get().copied().unwrap_or(false) {
        documents
    } else {
        let (sources, notes) = medic::playbook::with_builtins(documents);
        for note in notes {
            eprintln!("note: {note}");
        }
        sources
    };
    let (detectors, playbooks, mut findings) = lint_sources(&sources);
    findings.extend(other);
    let errors = findings
        .iter()
        .filter(|f| f.level == FindingLevel::Error)
        .count();
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&findings)?),
        Format::Text => {
            for f in &findings {
                println!("{f}");
            }
            println!(
                "{} file(s): {} detector(s), {} playbook(s), {errors} error(s), {} warning(s)",
                sources.len() + other_files,
                detectors.len(),
                playbooks.len(),
                findings.len() - errors
            );
        }
    }
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn schema_command(kind: Option<SchemaKind>, write: Option<PathBuf>) -> Result<ExitCode> {
    let render = |k| serde_json::to_string_pretty(&schema(k)).map(|s| s + "\n");
    match (kind, write) {
        (_, Some(dir)) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for k in SchemaKind::ALL {
                let path = dir.join(k.file_name());
                std::fs::write(&path, render(k)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("wrote {}", path.display());
            }
        }
        (Some(k), None) => print!("{}", render(k)?),
        (None, None) => anyhow::bail!("name a kind or --write DIR"),
    }
    Ok(ExitCode::SUCCESS)
}

fn synth_command(scenarios: Vec<PathBuf>, out: Option<PathBuf>) -> Result<ExitCode> {
    for path in scenarios {
        let scenario = medic::synth::Scenario::load(&path)?;
        let text = medic::synth::render(&scenario, &path.display().to_string())?;
        match &out {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                let name = path.file_name().context("a scenario file has a name")?;
                let target = dir.join(name);
                std::fs::write(&target, text)
                    .with_context(|| format!("cannot write {}", target.display()))?;
                eprintln!("wrote {}", target.display());
            }
            None => print!("{text}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// RFC 3339 or unix seconds.
fn parse_time(text: &str) -> Result<i64> {
    if let Ok(secs) = text.parse::<i64>() {
        return Ok(secs);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .with_context(|| {
            format!("`{text}` is neither RFC 3339 (2024-05-01T03:00:00Z) nor unix seconds")
        })
}

async fn answer_command(args: AnswerArgs, approved: bool) -> Result<ExitCode> {
    let token = match &args.token_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .trim()
            .to_string(),
        None => std::env::var("MEDIC_API_TOKEN")
            .context("no API token: pass --token-file or set MEDIC_API_TOKEN")?,
    };
    let verb = if approved { "approve" } else { "deny" };
    let url = format!(
        "{}/api/v1/incidents/{}/{verb}",
        args.server.trim_end_matches('/'),
        args.incident
    );
    let body = medic::run::AnswerRequest {
        by: args.by,
        step: args.step,
        plan_digest: args.plan,
    };
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        anyhow::bail!("{verb} refused ({status}): {text}");
    }
    let record: medic::escalate::ApprovalRecord =
        serde_json::from_str(&text).with_context(|| format!("unexpected answer from {url}"))?;
    println!(
        "{} step {} {} {} of incident {} (plan {}, playbook {})",
        if approved { "approved" } else { "denied" },
        record.step,
        record.action,
        record.target.as_deref().unwrap_or(""),
        record.incident,
        record.plan_digest,
        record.playbook
    );
    Ok(ExitCode::SUCCESS)
}

async fn run_command(config: PathBuf, sim_cluster: Option<PathBuf>) -> Result<ExitCode> {
    let config = Config::load(&config)?;
    let (cluster, leader): (Arc<dyn medic::cluster::Cluster>, _) = match sim_cluster {
        Some(path) => {
            let mut loaded = Loaded::load(&path)?;
            // The fixture's times are relative to its start; in a live run they start now.
            let shift = medic::model::unix_now() - loaded.start;
            let changes = loaded
                .changes
                .iter()
                .cloned()
                .map(|mut c| {
                    c.at += shift;
                    c
                })
                .collect();
            // Kept in stateDir, so a restarted medic sees what it already did.
            std::fs::create_dir_all(&config.state_dir)
                .with_context(|| format!("cannot create stateDir {}", config.state_dir))?;
            let sim = medic::cluster::SimCluster::new(std::mem::take(&mut loaded.objects), changes)
                .persisted(&std::path::Path::new(&config.state_dir).join("cluster.json"))?;
            (Arc::new(sim), None)
        }
        None => {
            let config_in = kube::Config::infer().await.context(
                "cannot reach the Kubernetes API (in-cluster ServiceAccount or KUBECONFIG)",
            )?;
            let client = medic::cluster::kube_client(config_in)?;
            // Listed once and then followed: a cycle reads memory, not the
            // API server. A standby keeps its view warm for a takeover.
            let kube: Arc<dyn medic::cluster::Cluster> =
                Arc::new(medic::cluster::WatchedCluster::start(client.clone()));
            let election = &config.leader_election;
            if election.enabled {
                let leader = Arc::new(
                    medic::ha::Leadership::start(client.clone(), election, &medic::ha::identity())
                        .await?,
                );
                let fenced =
                    medic::ha::FencedCluster::new(kube, leader.clone(), client, election.clone());
                (Arc::new(fenced), Some(leader))
            } else {
                (kube, None)
            }
        }
    };
    medic::run::run(config, cluster, leader, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// A client for the cluster a kubeconfig file names (its current context).
async fn kube_client(path: &std::path::Path) -> Result<kube::Client> {
    let file = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(file, &Default::default())
        .await
        .with_context(|| format!("kubeconfig {}", path.display()))?;
    Ok(medic::cluster::kube_client(config)?)
}

struct Interruption {
    name: &'static str,
    number: u8,
}

/// The first of SIGINT, SIGTERM and SIGHUP.
async fn interrupted() -> Interruption {
    use tokio::signal::unix::{SignalKind, signal};
    let wait = |kind: SignalKind, name: &'static str, number: u8| async move {
        match signal(kind) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
        Interruption { name, number }
    };
    tokio::select! {
        i = wait(SignalKind::interrupt(), "SIGINT", 2) => i,
        i = wait(SignalKind::terminate(), "SIGTERM", 15) => i,
        i = wait(SignalKind::hangup(), "SIGHUP", 1) => i,
    }
}

/// Ctrl-C or SIGTERM (what Kubernetes sends before killing the pod).
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
