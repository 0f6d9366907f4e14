//! knockr: port knocking for MikroTik routers and Linux hosts.
//!
//! The binary is a thin shell around [`run`]; the tests use the modules directly.

#[cfg(feature = "server")]
pub mod capture;
pub mod cli;
pub mod config;
pub mod exit_codes;
pub mod knock;
#[cfg(feature = "server")]
pub mod knockd;
pub mod matcher;
pub mod onetime;
pub mod otp;
pub mod packet;
pub mod resolve;
pub mod routeros;
pub mod secret;
pub mod sequence;
pub mod values;

use std::io::{self, Write};

use clap::CommandFactory;

use cli::{Cli, Command, Shell};
use exit_codes::ExitCode;
use knock::plan::{self, Plan};

/// Runs a parsed command line. `Err` carries a [`plan::PlanError`] for usage
/// and profiles-file errors (exit 2), anything else for failures (exit 1).
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut stdout = io::stdout().lock();
    match cli.command {
        Some(Command::Connect {
            profile,
            port,
            config,
        }) => {
            // The relay writes through tokio's stdout, from another thread.
            drop(stdout);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let result = runtime.block_on(knock::connect::connect(
                &profile,
                port,
                config.or(cli.config),
            ));
            // A read of stdin may still be blocked in its thread: do not wait for it.
            runtime.shutdown_background();
            result
        }
        Some(Command::List { config }) => {
            let profiles = plan::load_profiles(config.or(cli.config))?;
            for name in profiles.profiles.keys() {
                writeln!(stdout, "{}", knock::report::sanitize(name))?;
            }
            Ok(ExitCode::Success)
        }
        Some(Command::Completions { shell }) => {
            write_completions(shell, &mut stdout)?;
            Ok(ExitCode::Success)
        }
        #[cfg(feature = "server")]
        Some(Command::Knockd(args)) => knockd::main(&args),
        Some(Command::Secret {
            command: cli::SecretCommand::New,
        }) => {
            let (base32, hex) = otp::new_secret().map_err(anyhow::Error::msg)?;
            writeln!(stdout, "base32: {base32}\nhex:    {hex}")?;
            writeln!(
                stdout,
                "# Store it in a file only you can read (chmod 600); give the same secret to the door and the profile."
            )?;
            Ok(ExitCode::Success)
        }
        Some(Command::Routeros {
            command: cli::RouterosCommand::Rules(args),
        }) => {
            let script = routeros_rules(&args, cli.config)?;
            stdout.write_all(script.as_bytes())?;
            Ok(ExitCode::Success)
        }
        #[cfg(feature = "server")]
        Some(Command::Routeros {
            command: cli::RouterosCommand::Check(args),
        }) => {
            let config = knockd::config::load(&args.config).map_err(plan::PlanError::Config)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let checks = runtime.block_on(routeros::check::check(&config));
            let ready = routeros::check::print(&checks, &mut stdout)?;
            Ok(ExitCode::from_ok(ready))
        }
        Some(Command::Man) => {
            clap_mangen::Man::new(Cli::command()).render(&mut stdout)?;
            Ok(ExitCode::Success)
        }
        None => {
            let plan = Plan::new(&cli.knock, cli.config)?;
            // One thread is plenty: the work is waiting on sockets and timers.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            if let Some(every) = cli.knock.every {
                return runtime.block_on(knock::every::repeat(&plan, every, &mut stdout));
            }
            let report = runtime.block_on(knock::run(&plan));
            report_failures_if_quiet(&report, plan.output);
            let unmarked = plan::spend_one_time_lines(&plan, &report);
            for problem in &unmarked {
                eprintln!("knockr: {}", knock::report::sanitize(problem));
            }
            let code = ExitCode::from_ok(report.ok && unmarked.is_empty());
            match knock::report::write(&report, plan.output, &mut stdout)
                .and_then(|()| stdout.flush())
            {
                // The reader went away; the knocks were still made, so the status stands.
                Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(code),
                Err(err) => Err(err.into()),
                Ok(()) => Ok(code),
            }
        }
    }
}

/// With `-q` the summary is not printed: failures still go to stderr.
pub fn report_failures_if_quiet(report: &knock::report::Report, output: plan::Output) {
    if output != plan::Output::Quiet {
        return;
    }
    for target in report.targets.iter().filter(|t| !t.ok) {
        let who = match &target.profile {
            Some(profile) => format!("{profile} {}", target.host),
            None => target.host.clone(),
        };
        let err = target.error.as_deref().unwrap_or("failed");
        eprintln!(
            "knockr: {}: {}",
            knock::report::sanitize(&who),
            knock::report::sanitize(err)
        );
    }
}

/// `knockr routeros rules`: the script for a profile's or the flags' sequence.
fn routeros_rules(
    args: &cli::RulesArgs,
    config: Option<std::path::PathBuf>,
) -> anyhow::Result<String> {
    use knock::plan::{DEFAULT_DELAY, Family, PlanError};
    use std::time::Duration;
    let usage = |message: String| anyhow::Error::from(PlanError::Usage(message));
    let (sequence, delay, name) = match &args.profile {
        Some(profile) => {
            let file = plan::load_profiles(args.config.clone().or(config))?;
            let members = file.members(std::slice::from_ref(profile))?;
            if let Some(config::Profile::Group { .. }) = file.profiles.get(profile) {
                return Err(usage(format!(
                    "profile `{profile}` is a group: name one of its profiles, whose sequence the router will detect"
                )));
            }
            let first = &members[0];
            let delay = first.settings.delay.unwrap_or(DEFAULT_DELAY);
            let config::Sequence::Fixed(sequence) = &first.sequence else {
                return Err(usage(format!(
                    "profile `{profile}` uses time-based or one-time sequences, which the router cannot follow: give --sequence"
                )));
            };
            (sequence.clone(), delay, format!("knockr-{profile}"))
        }
        None => {
            let sequence = args
                .sequence
                .iter()
                .map(|spec| {
                    sequence::parse_knock(spec, sequence::Proto::Tcp).map_err(|err| {
                        usage(format!("invalid value {spec:?} for --sequence: {err}"))
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            (sequence, DEFAULT_DELAY, "knockr".to_string())
        }
    };
    let spec = routeros::rules::RuleSpec {
        name: args.name.clone().unwrap_or(name),
        sequence,
        wan: args.wan.clone(),
        protect: args.protect.clone(),
        list: args.list.clone(),
        timeout: args.timeout,
        stage_timeout: args
            .stage_timeout
            .unwrap_or_else(|| (delay * 4).max(Duration::from_secs(10))),
        delay,
        ipv4: args.family != Family::Ipv6,
        ipv6: args.family != Family::Ipv4,
    };
    routeros::rules::script(&spec).map_err(usage)
}

/// The completion script for `shell`, as committed under `completions/`.
pub fn write_completions(shell: Shell, out: &mut dyn Write) -> io::Result<()> {
    use clap_complete::Shell as S;
    let shell = match shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Powershell => S::PowerShell,
        Shell::Elvish => S::Elvish,
    };
    clap_complete::generate(shell, &mut Cli::command(), "knockr", out);
    Ok(())
}
