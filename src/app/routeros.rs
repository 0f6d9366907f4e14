//! `knockr routeros rules` (the native knock script for a profile or
//! `--sequence`) and `knockr routeros check` (can knockd use its routers?).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::RulesArgs;
use crate::client::plan::{self, DEFAULT_DELAY, PlanError};
use crate::config::profiles::{Profile, Sequence};
use crate::core::knock::{self, Family, Proto};
use crate::exit_codes::ExitCode;

pub(super) fn rules(args: &RulesArgs, config: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let script = script(args, config)?;
    std::io::stdout().lock().write_all(script.as_bytes())?;
    Ok(ExitCode::Success)
}

/// The script for a profile's or the flags' sequence.
fn script(args: &RulesArgs, config: Option<PathBuf>) -> anyhow::Result<String> {
    let usage = |message: String| anyhow::Error::from(PlanError::Usage(message));
    let (sequence, delay, name) = match &args.profile {
        Some(profile) => {
            let file = plan::load_profiles(args.config.clone().or(config))?;
            let members = file.members(std::slice::from_ref(profile))?;
            if let Some(Profile::Group { .. }) = file.profiles.get(profile) {
                return Err(usage(format!(
                    "profile `{profile}` is a group: name one of its profiles, whose sequence the router will detect"
                )));
            }
            let first = &members[0];
            let delay = first.settings.delay.unwrap_or(DEFAULT_DELAY);
            let Sequence::Fixed(sequence) = &first.sequence else {
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
                    knock::parse_knock(spec, Proto::Tcp).map_err(|err| {
                        usage(format!("invalid value {spec:?} for --sequence: {err}"))
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            (sequence, DEFAULT_DELAY, "knockr".to_string())
        }
    };
    let family = Family::from(args.family);
    let spec = crate::routeros::rules::RuleSpec {
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
        ipv4: family != Family::Ipv6,
        ipv6: family != Family::Ipv4,
    };
    crate::routeros::rules::script(&spec).map_err(usage)
}

/// `knockr routeros check`: exit 0 when every router of every door is ready.
#[cfg(feature = "server")]
pub(super) fn check(args: &crate::cli::CheckArgs) -> anyhow::Result<ExitCode> {
    use crate::routeros::check;
    let config = crate::config::server::load(&args.config)?;
    let mut routers = Vec::new();
    for door in &config.doors {
        let Some(action) = &door.routeros else {
            continue;
        };
        for router in &action.routers {
            routers.push(check::Door {
                door: door.door.name.clone(),
                router: router.clone(),
                list: action.list.clone(),
                password: crate::config::secret::load_password(&router.password)
                    .map_err(|err| format!("router {}: {err}", router.url)),
            });
        }
    }
    let checks = super::runtime()?.block_on(check::check(routers));
    let ready = check::print(&checks, &mut std::io::stdout().lock())?;
    Ok(ExitCode::from_ok(ready))
}
