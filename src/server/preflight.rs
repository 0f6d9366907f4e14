//! What a start would refuse, found by `knockr knockd --check` without
//! starting: the files (`config::server::check_files`, which a start calls
//! too), and the steps a start takes for real that can be tried read-only
//! here: the state file read as the start reads it, the one-time files'
//! current lines, the routers' clients made (passwords, CA files), the
//! nftables doors' sets asked of the kernel, the kernel filter compiled. A missing interface is only
//! a warning: it may appear before the start (a VPN, a veth).
//!
//! It captures nothing, takes no lock and writes nothing, so it can run
//! next to the knockd it checks for (before a reload, say).

use std::path::PathBuf;

use crate::config::profiles::ConfigError;
use crate::config::server::{self as config, Lint, ServerConfig};

use super::{DEFAULT_INTERFACE, Options, capture, state};

impl Options {
    /// The state file a start keeps: `--state-file`, else the config's.
    pub(crate) fn state_file_for(&self, config: &ServerConfig) -> PathBuf {
        self.state_file
            .clone()
            .unwrap_or_else(|| config.state_file.clone())
    }

    /// The interfaces a start captures on: `-i`, else the config's, else
    /// [`DEFAULT_INTERFACE`].
    pub(crate) fn interfaces_for(&self, config: &ServerConfig) -> Vec<String> {
        if !self.interfaces.is_empty() {
            self.interfaces.clone()
        } else if !config.interfaces.is_empty() {
            config.interfaces.clone()
        } else {
            vec![DEFAULT_INTERFACE.to_string()]
        }
    }
}

/// Why a live start with `config` and `options` would fail, as a
/// configuration error naming the file; else the warnings about what may
/// still change before it (interfaces that do not exist yet).
pub(crate) fn preflight(
    config: &ServerConfig,
    options: &Options,
) -> Result<Vec<Lint>, ConfigError> {
    let refuse = |message: String| ConfigError {
        path: config.path.clone(),
        position: None,
        message,
    };
    let state_file = options.state_file_for(config);
    config::check_files(config, Some(&state_file))?;
    super::with_one_time_sequences(config.clone()).map_err(|err| refuse(format!("{err:#}")))?;
    state::load(&state_file).map_err(|err| refuse(err.to_string()))?;
    // The routers' clients, made as a start makes them: passwords read, CA
    // files and pins loaded (nothing is sent). Their warnings are --check's
    // lint already.
    let quiet = super::log::Log::to_writer(Box::new(std::io::sink()), false, false);
    super::routers::Routers::new(
        config,
        false,
        std::sync::Arc::new(std::sync::Mutex::new(quiet)),
    )
    .map_err(|err| refuse(format!("{err:#}")))?;
    // The doors' nftables sets, asked of the kernel as a start asks.
    super::nftables::check_sets(config, &mut None).map_err(refuse)?;
    let filter = super::filter_for(config).expression;
    capture::filter_compiles(&filter)
        .map_err(|why| refuse(format!("the doors' kernel filter cannot be used: {why}")))?;
    Ok(missing_interfaces(&options.interfaces_for(config)))
}

/// A warning for each interface that does not exist now (`any` always does).
fn missing_interfaces(interfaces: &[String]) -> Vec<Lint> {
    interfaces
        .iter()
        .filter(|name| name.as_str() != DEFAULT_INTERFACE && !exists(name))
        .map(|name| Lint {
            door: None,
            message: format!(
                "interface {} does not exist now: a start fails until it does (fine if it \
                 appears first, as a VPN's or a veth may)",
                crate::core::text::sanitize(name)
            ),
        })
        .collect()
}

/// Whether the kernel knows an interface by this name.
fn exists(name: &str) -> bool {
    let Ok(name) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: a valid C string; if_nametoindex only reads it.
    unsafe { libc::if_nametoindex(name.as_ptr()) != 0 }
}
