//! `knockr nft rules`: the nftables ruleset that makes the kernel detect a
//! profile's or `--sequence`'s knock (see `nft::rules`).

use std::io::Write as _;
use std::path::PathBuf;

use super::routeros::{knocks, stage_timeout, usage, warn};
use crate::cli::NftRulesArgs;
use crate::core::knock::Family;
use crate::core::protect::parse_protect;
use crate::exit_codes::ExitCode;
use crate::nft::rules;

pub(super) fn rules(args: &NftRulesArgs, config: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let family = Family::from(args.family);
    // With --for-knockd and neither a profile nor --sequence, knockd's
    // config has the sequence; none is printed.
    let (sequence, delay) = if args.for_knockd && args.profile.is_none() && args.sequence.is_empty()
    {
        (Vec::new(), crate::client::plan::DEFAULT_DELAY)
    } else {
        knocks(
            args.profile.as_deref(),
            &args.sequence,
            args.config.clone().or(config),
        )?
    };
    let protect = args
        .protect
        .iter()
        .map(|text| parse_protect(text))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| usage(err.to_string()))?;
    let ruleset = rules::ruleset(&rules::RuleSpec {
        table: args.table.clone(),
        sequence,
        protect,
        set: args.set.clone(),
        timeout: args.timeout,
        stage_timeout: stage_timeout(args.stage_timeout, delay),
        delay,
        block_for: args.block_for,
        interface: args.interface.clone(),
        allow_weak: args.allow_weak,
        ipv4: family != Family::Ipv6,
        ipv6: family != Family::Ipv4,
        for_knockd: args.for_knockd,
    })
    .map_err(|err| usage(err.to_string()))?;
    warn(&ruleset.warnings)?;
    std::io::stdout()
        .lock()
        .write_all(ruleset.text.as_bytes())?;
    Ok(ExitCode::Success)
}
