//! The `postern` command: the desktop app by default, `serve` for a headless server, and
//! postconf-style commands for settings, domains and accounts. Errors become messages here
//! (`anyhow` lives only at this edge).

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use postern::cli;
use postern::engine::config::{edit, keys};
use postern::engine::dkim::KeyStore;
use postern::engine::events::EventBus;
use postern::engine::{self, EngineOptions};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

/// A desktop mail server: SMTP with local mailboxes, settings dialogs, live logs.
#[derive(Parser)]
#[command(name = "postern", version, about, long_about = None)]
struct Cli {
    /// Configuration file (default: the user's config dir, postern/postern.ron).
    #[arg(long, global = true, env = "POSTERN_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory for mailboxes, certificates and logs (default: the user's data dir).
    #[arg(long, global = true, env = "POSTERN_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Open the desktop app (the default).
    Gui(GuiArgs),
    /// Run the mail server in the foreground without a window; SIGINT/SIGTERM stop it.
    Serve,
    /// Show, read, change and check settings (like postconf).
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Manage local domains.
    #[command(subcommand)]
    Domain(DomainCmd),
    /// Manage local accounts.
    #[command(subcommand)]
    Account(AccountCmd),
    /// Outgoing SMTP Access Control credentials; the blocks in force.
    #[command(subcommand)]
    Access(AccessCmd),
    /// Look at and act on the outgoing queue (works with or without a running server).
    #[command(subcommand)]
    Queue(QueueCmd),
    /// DKIM keys of the local domains: the records to publish, rotation.
    #[command(subcommand)]
    Dkim(DkimCmd),
    /// The DNS records the local domains need for their mail to arrive, and a live check.
    #[command(subcommand)]
    Dns(DnsCmd),
    /// The running server's listeners (each up with its address, or down with why) and
    /// today's mail counters (accepted, sent, given up, refused; kept across restarts).
    Status,
}

#[derive(Subcommand)]
enum DnsCmd {
    /// Print the records to publish (MX, SPF, DKIM, DMARC, the server's address), as
    /// zone-file lines.
    Records {
        /// Only this local domain.
        domain: Option<String>,
    },
    /// Look each record up in DNS now (through `outgoing_mails.dns_hosts` when set) and say
    /// what differs. Exit 0 when all are right, 1 when one is missing or wrong, 2 when none
    /// is but a lookup failed.
    Check {
        /// Only this local domain.
        domain: Option<String>,
    },
}

#[derive(Subcommand)]
enum DkimCmd {
    /// Print each selector of a local domain with the DNS TXT record to publish (the keys
    /// are made first if the domain has none).
    Show {
        /// The local domain.
        domain: String,
    },
    /// Make a new key that signs from now on; the old one stays listed, to be published
    /// until it is removed.
    Rotate {
        /// The local domain.
        domain: String,
    },
    /// Remove an old key (never the active one).
    Remove {
        /// The domain.
        domain: String,
        /// The old selector, as `dkim show` lists it.
        selector: String,
    },
}

#[derive(Subcommand)]
enum AccessCmd {
    /// Set "Allow Only The Following": the one user name and password that may relay
    /// (stored hashed; turns "Allow any account's login details" off).
    RelayUser {
        /// The user name.
        user: String,
        /// Read the password from the first line of stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set Relay mode's login at the relay host (the password is prompted for, or read from
    /// stdin, so it never appears on a command line or in the shell history).
    RelayLogin {
        /// The user name at the relay host.
        user: String,
        /// Read the password from the first line of stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the blocks in force in the running server (failed-login lockouts, tarpit
    /// blocks): IP, since, until, reason. Blocks live in the server's memory only.
    Blocked,
    /// Lift the block of an IP in the running server and clear its failure counts, so it
    /// can log in again at once.
    Unblock {
        /// The IP address (for IPv6, any address of the blocked network).
        ip: String,
    },
}

#[derive(Subcommand)]
enum QueueCmd {
    /// List queued mails, like mailq: id, age, size, sender, Subject, recipients, attempts, next try, last error.
    List,
    /// Show one mail: its state, delivery history and content.
    Show {
        /// Queue id.
        id: String,
    },
    /// Deliver now.
    Retry {
        /// Queue id.
        id: Option<String>,
        /// Every queued mail.
        #[arg(long)]
        all: bool,
    },
    /// Remove a mail (without a failure notice unless --notify).
    Delete {
        /// Queue id.
        id: Option<String>,
        /// Every queued mail.
        #[arg(long)]
        all: bool,
        /// Send the sender a failure notice for the recipients not yet delivered (the mail
        /// leaves the queue once the notice is queued; offline, after the next start).
        #[arg(long)]
        notify: bool,
    },
    /// Keep a mail in the queue without trying it.
    Hold {
        /// Queue id.
        id: String,
    },
    /// Undo hold (and try now).
    Release {
        /// Queue id.
        id: String,
    },
}

#[derive(Args, Default)]
struct GuiArgs {
    /// Do not create a system tray icon.
    #[arg(long)]
    no_tray: bool,
    /// Start minimized.
    #[arg(long)]
    minimized: bool,
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Print every setting as `key = value`.
    Show,
    /// Print one setting (or a whole section).
    Get {
        /// Dotted key, e.g. smtp.incoming.port.
        key: String,
    },
    /// Change settings: KEY=VALUE, VALUE a RON literal (a bare word is a string).
    Set {
        /// One or more KEY=VALUE.
        #[arg(required = true, value_name = "KEY=VALUE")]
        assignments: Vec<String>,
    },
    /// Check the file: exit 0 and print `ok`, or name each problem's line and field.
    Check,
}

#[derive(Subcommand)]
enum DomainCmd {
    /// Add a local domain.
    Add {
        /// e.g. example.com
        domain: String,
    },
    /// List local domains.
    List,
    /// Remove a local domain (it must have no accounts).
    Remove {
        /// The domain.
        domain: String,
    },
}

#[derive(Subcommand)]
enum AccountCmd {
    /// Add an account in a local domain.
    Add {
        /// user@domain
        address: String,
        /// Read the password from the first line of stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts (optionally of one domain), with the Max Account Size of those that have one.
    List {
        /// Only this domain.
        domain: Option<String>,
    },
    /// Remove an account (its mailbox files are kept).
    Remove {
        /// user@domain
        address: String,
    },
    /// Set an account's Max Account Size: 500M, 2G, 64K, octets; 0 = unlimited.
    Quota {
        /// user@domain
        address: String,
        /// The size (binary multiples: 1K = 1024 octets); 0 for unlimited.
        size: String,
    },
    /// Set an account's password.
    Passwd {
        /// user@domain
        address: String,
        /// Read the password from the first line of stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
}

fn main() -> ExitCode {
    // Before any other thread starts.
    one_malloc_arena();
    // Everything Postern writes is private (the config can hold the relay password).
    engine::perms::private_umask();
    let args = Cli::parse();
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("postern: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One malloc arena for every thread (glibc), unless `MALLOC_ARENA_MAX` says otherwise. With
/// an arena per thread, the queue's entries are made on the tokio workers while the spool's
/// replay (its own thread) and the sessions free their memory in other arenas, and the holes
/// stay resident: a restart with 100,000 queued mails held 91 MiB with the default arenas,
/// 61 MiB with one (docs/figures.md). Threads keep their own small-allocation caches
/// (tcache), so they rarely wait for the arena's lock.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a malloc parameter; called before any other thread.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

fn run(args: Cli) -> Result<ExitCode> {
    let (default_config, default_data) = cli::default_paths();
    let opts = EngineOptions {
        config_path: args.config.unwrap_or(default_config),
        data_dir: args.data_dir.unwrap_or(default_data),
    };
    let path = &opts.config_path;
    match args.command {
        None => gui(opts, GuiArgs::default()),
        Some(Command::Gui(g)) => gui(opts, g),
        Some(Command::Serve) => serve(opts),
        Some(Command::Config(c)) => match c {
            ConfigCmd::Show => {
                for (k, v) in keys::leaves(&edit::read(path)?) {
                    // The relay host's password is kept as given; show it only on `config get`.
                    let v = if k == "outgoing_mails.relay.password" && v != "\"\"" {
                        "\"********\"".into()
                    } else {
                        v
                    };
                    println!("{k} = {v}");
                }
                Ok(ExitCode::SUCCESS)
            }
            ConfigCmd::Get { key } => {
                println!("{}", keys::get(&edit::read(path)?, &key)?);
                Ok(ExitCode::SUCCESS)
            }
            ConfigCmd::Set { assignments } => {
                edit::config_set(path, &assignments)?;
                Ok(reload(&opts.data_dir))
            }
            ConfigCmd::Check => {
                let cfg = edit::read(path)?;
                for w in postern::engine::config::validate::warnings(&cfg) {
                    eprintln!("warning: {w}");
                }
                if !path.exists() {
                    println!(
                        "ok ({} does not exist yet; the defaults apply)",
                        path.display()
                    );
                } else {
                    println!("ok");
                }
                Ok(ExitCode::SUCCESS)
            }
        },
        Some(Command::Domain(d)) => {
            match d {
                DomainCmd::Add { domain } => {
                    edit::domain_add(path, &domain)?;
                    // Its DKIM key now, so `dkim show` has the record to publish at once.
                    let cfg = edit::read(path)?;
                    KeyStore::new(&opts.data_dir).ensure(&domain, cfg.auth.dkim.ed25519)?;
                }
                DomainCmd::Remove { domain } => edit::domain_remove(path, &domain)?,
                DomainCmd::List => {
                    for d in edit::read(path)?.domains {
                        println!("{d}");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Queue(q)) => queue(&opts.data_dir, q),
        Some(Command::Status) => status(&opts.data_dir),
        Some(Command::Dkim(d)) => dkim(path, &opts.data_dir, d),
        Some(Command::Dns(d)) => dns(path, &opts.data_dir, d),
        Some(Command::Access(AccessCmd::RelayUser {
            user,
            password_stdin,
        })) => {
            let p = read_password(password_stdin)?;
            edit::relay_user(path, &user, &p)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Access(AccessCmd::RelayLogin {
            user,
            password_stdin,
        })) => {
            let p = read_password(password_stdin)?;
            edit::relay_login(path, &user, &p)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Access(AccessCmd::Blocked)) => blocks(&opts.data_dir, None),
        Some(Command::Access(AccessCmd::Unblock { ip })) => {
            blocks(&opts.data_dir, Some(cli::access::parse_client(&ip)?))
        }
        Some(Command::Account(a)) => {
            match a {
                AccountCmd::Add {
                    address,
                    password_stdin,
                } => {
                    let p = read_password(password_stdin)?;
                    edit::account_add(path, &address, &p)?;
                }
                AccountCmd::Passwd {
                    address,
                    password_stdin,
                } => {
                    let p = read_password(password_stdin)?;
                    edit::account_passwd(path, &address, &p)?;
                }
                AccountCmd::Remove { address } => edit::account_remove(path, &address)?,
                AccountCmd::Quota { address, size } => {
                    let n = postern::engine::config::size::parse_size(&size)
                        .map_err(anyhow::Error::msg)?;
                    edit::account_quota(path, &address, n)?;
                }
                AccountCmd::List { domain } => {
                    let cfg = edit::read(path)?;
                    let suffix = domain
                        .map(|d| format!("@{}", postern::engine::config::normalize_domain(&d)));
                    for a in cfg.accounts {
                        if !suffix.as_ref().is_none_or(|s| a.address.ends_with(s)) {
                            continue;
                        }
                        if a.max_size == 0 {
                            println!("{}", a.address);
                        } else {
                            let max = postern::engine::config::size::format_size(a.max_size);
                            println!("{}  (max {max})", a.address);
                        }
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn dkim(config: &std::path::Path, data_dir: &std::path::Path, d: DkimCmd) -> Result<ExitCode> {
    let cfg = edit::read(config)?;
    let store = KeyStore::new(data_dir);
    let local = |domain: &str| -> Result<String> {
        let d = postern::engine::config::normalize_domain(domain);
        if !cfg.is_local_domain(&d) {
            anyhow::bail!("{domain} is not a local domain (see `postern domain list`)");
        }
        Ok(d)
    };
    match d {
        DkimCmd::Show { domain } => {
            let domain = local(&domain)?;
            store.ensure(&domain, cfg.auth.dkim.ed25519)?;
            print!("{}", cli::dkim::format_show(&domain, &store.list(&domain)?));
        }
        DkimCmd::Rotate { domain } => {
            let domain = local(&domain)?;
            for s in store.rotate(&domain, cfg.auth.dkim.ed25519)? {
                println!(
                    "new selector {s}: publish it before mail is signed with it (see `postern dkim show {domain}`)"
                );
            }
        }
        DkimCmd::Remove { domain, selector } => {
            let domain = postern::engine::config::normalize_domain(&domain);
            store.remove(&domain, &selector)?;
        }
    }
    // A running server signs with the new keys at once.
    use postern::engine::control::{self, ControlError, Request};
    match control::request(data_dir, &Request::Reload) {
        Ok(_) | Err(ControlError::NotRunning(_)) => {}
        Err(e) => eprintln!("postern: the running server was not told to reload: {e}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn dns(config: &std::path::Path, data_dir: &std::path::Path, d: DnsCmd) -> Result<ExitCode> {
    use postern::engine::records;
    let cfg = edit::read(config)?;
    let store = KeyStore::new(data_dir);
    let only = match &d {
        DnsCmd::Records { domain } | DnsCmd::Check { domain } => domain.clone(),
    };
    if let Some(domain) = &only
        && !cfg.is_local_domain(&postern::engine::config::normalize_domain(domain))
    {
        anyhow::bail!("{domain} is not a local domain (see `postern domain list`)");
    }
    if cfg.domains.is_empty() {
        anyhow::bail!("there is no local domain yet (`postern domain add DOMAIN`)");
    }
    // Like `dkim show`: a domain without a key gets one, so its record can be published.
    for domain in &cfg.domains {
        store.ensure(domain, cfg.auth.dkim.ed25519)?;
    }
    let selectors = records::selectors(&cfg, &store)?;
    let wanted = records::plan(&cfg, &selectors, only.as_deref());
    match d {
        DnsCmd::Records { .. } => {
            print!("{}", records::zone_text(&cfg, &wanted));
            Ok(ExitCode::SUCCESS)
        }
        DnsCmd::Check { .. } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let rows = rt.block_on(async {
                let resolver = postern::engine::dns::Resolver::new(&cfg.outgoing_mails.dns_hosts)?;
                anyhow::Ok(records::check(&resolver, &cfg, wanted).await)
            })?;
            print!("{}", cli::dns::format_check(&rows));
            Ok(ExitCode::from(cli::dns::exit_code(&rows)))
        }
    }
}

fn queue(data_dir: &std::path::Path, q: QueueCmd) -> Result<ExitCode> {
    use postern::cli::queue::{format_list, target};
    use postern::engine::control::offline::request;
    use postern::engine::control::{Request, Response};
    use postern::engine::queue::{QueueCommand, Target};
    let one = |id: &str| target(Some(id), false);
    let (req, verb) = match q {
        QueueCmd::List => {
            // Read and printed a page at a time: a long queue is never held whole.
            postern::cli::queue::write_list(data_dir, &mut std::io::stdout().lock())?;
            return Ok(ExitCode::SUCCESS);
        }
        QueueCmd::Show { id } => match one(&id)? {
            Target::Id(n) => (Request::Show(n), ""),
            Target::All => unreachable!(),
        },
        QueueCmd::Retry { id, all } => (
            Request::Queue(QueueCommand::Retry(target(id.as_deref(), all)?)),
            "scheduled for retry",
        ),
        QueueCmd::Delete { id, all, notify } => {
            let t = target(id.as_deref(), all)?;
            if notify {
                (
                    Request::Queue(QueueCommand::DeleteNotify(t)),
                    "deleted, with a failure notice to the sender",
                )
            } else {
                (Request::Queue(QueueCommand::Delete(t)), "deleted")
            }
        }
        QueueCmd::Hold { id } => (Request::Queue(QueueCommand::Hold(one(&id)?)), "put on hold"),
        QueueCmd::Release { id } => (Request::Queue(QueueCommand::Release(one(&id)?)), "released"),
    };
    match request(data_dir, req)? {
        Response::Show(Some((e, content))) => {
            print!("{}", format_list(std::slice::from_ref(&e)));
            if !e.history.is_empty() {
                println!("\nHistory:");
                for h in &e.history {
                    println!("  {h}");
                }
            }
            println!("\n{content}");
        }
        Response::Show(None) => anyhow::bail!("no such message in the queue"),
        Response::Count(0) => anyhow::bail!("no such message in the queue"),
        Response::Count(n) => println!("{n} message(s) {verb}"),
        Response::Ok => {}
        Response::Error(e) => anyhow::bail!("{e}"),
        Response::Page(_)
        | Response::Blocks(_)
        | Response::Unblocked(_)
        | Response::Reloaded(_)
        | Response::Status(_) => {
            anyhow::bail!("unexpected answer from the server")
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks the running server to apply the file now and prints what it did; failure (exit 1)
/// when it kept its configuration or a listener could not be opened. Saved but not applied
/// when no server runs.
fn reload(data_dir: &std::path::Path) -> ExitCode {
    use postern::engine::control::{self, ControlError, Request, Response};
    match control::request(data_dir, &Request::Reload) {
        Ok(Response::Reloaded(report)) => {
            for line in report.lines() {
                println!("{line}");
            }
            if report.has_failure() {
                return ExitCode::FAILURE;
            }
        }
        Ok(Response::Error(e)) => eprintln!("postern: the running server did not reload: {e}"),
        Ok(other) => eprintln!("postern: unexpected answer from the server: {other:?}"),
        Err(ControlError::NotRunning(_)) => {
            println!("Saved; no server is running, so it applies at the next start.")
        }
        Err(e) => eprintln!("postern: the running server was not told to reload: {e}"),
    }
    ExitCode::SUCCESS
}

/// `postern status`: the running server's listeners and today's counters (only the counters,
/// from the file, when no server runs).
fn status(data_dir: &std::path::Path) -> Result<ExitCode> {
    use postern::engine::control::{self, ControlError, Request, Response};
    match control::request(data_dir, &Request::Status) {
        Ok(Response::Status(s)) => print!("{}", cli::status::format_status(&s)),
        Ok(Response::Error(e)) => anyhow::bail!("{e}"),
        Ok(other) => anyhow::bail!("unexpected answer from the server: {other:?}"),
        Err(ControlError::NotRunning(_)) => {
            println!("no server is running on {}", data_dir.display());
            let s = postern::engine::stats::Stats::peek(data_dir).map_err(anyhow::Error::msg)?;
            print!("{}", cli::status::format_counts(&s));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(ExitCode::SUCCESS)
}

/// `postern access blocked` (`unblock` = None) or `postern access unblock IP`, through the
/// running server's control socket.
fn blocks(data_dir: &std::path::Path, unblock: Option<std::net::IpAddr>) -> Result<ExitCode> {
    use postern::engine::control::{self, ControlError, Request, Response};
    let req = match unblock {
        Some(ip) => Request::Unblock(ip),
        None => Request::Blocked,
    };
    let resp = match control::request(data_dir, &req) {
        Ok(r) => r,
        Err(ControlError::NotRunning(_)) => anyhow::bail!(
            "no Postern server is running on {}: blocks live in the running server's memory \
             only, so there are none to list or lift",
            data_dir.display()
        ),
        Err(e) => return Err(e.into()),
    };
    match resp {
        Response::Blocks(b) => print!(
            "{}",
            cli::access::format_blocked(&b, postern::engine::queue::now_secs())
        ),
        Response::Unblocked(Some(b)) => {
            println!("{} unblocked (was {})", b.client(), b.reason)
        }
        Response::Unblocked(None) => anyhow::bail!(
            "{} is not blocked",
            unblock.map(|ip| ip.to_string()).unwrap_or_default()
        ),
        Response::Error(e) => anyhow::bail!("{e}"),
        other => anyhow::bail!("unexpected answer from the server: {other:?}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The password from stdin's first line, or asked twice on the terminal.
fn read_password(from_stdin: bool) -> Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let p = rpassword::prompt_password("Password: ")
        .context("cannot read the password (use --password-stdin)")?;
    let again = rpassword::prompt_password("Again: ").context("cannot read the password")?;
    anyhow::ensure!(p == again, "the passwords differ");
    Ok(p)
}

/// The console (stderr) of `postern serve`: the server's own events and security events from
/// INFO, the lines of each mail and session (SMTP, IMAP, POP3, delivery) only from WARN; those
/// are in the log file (`logs.level`). `RUST_LOG=info` puts every line on the console too.
const CONSOLE_DEFAULT: &str = "info,postern::mail=warn";

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(CONSOLE_DEFAULT));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_level(false)
        .try_init();
}

fn serve(opts: EngineOptions) -> Result<ExitCode> {
    init_tracing();
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async {
        // No window reads the ring headless: protocol detail goes only where it is asked
        // for (the log file at Debug, RUST_LOG=debug).
        let events = EventBus::new();
        events.set_ring_level(postern::engine::events::Level::Info);
        let mut handle = engine::start(opts, events).await?;
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = hup.recv() => { handle.send(engine::handle::Command::Reload(None)); }
                _ = handle.wait() => return Ok(ExitCode::FAILURE),
            }
        }
        handle.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(feature = "gui")]
fn gui(opts: EngineOptions, args: GuiArgs) -> Result<ExitCode> {
    postern::gui::run(opts, args.no_tray, args.minimized)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "gui"))]
fn gui(_opts: EngineOptions, _args: GuiArgs) -> Result<ExitCode> {
    eprintln!(
        "postern was built without the desktop app (feature `gui`).\n\
         Run the server with `postern serve`; see `postern --help`."
    );
    Ok(ExitCode::from(2))
}
