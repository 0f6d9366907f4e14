//! The server config loader (`knockd::config::parse`) seeded with knockr's
//! TOML format (`[knockd]`, `[[door]]`), so most inputs take the TOML path.

#![no_main]

use std::path::Path;

use knockr::config::server::{Format, parse};
use knockr_fuzz::{check_server_config, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(text) = text(data) else { return };
    match parse(Path::new("knockd.toml"), text) {
        Ok(config) => {
            check_server_config(&config);
            if config.format == Format::KnockdConf {
                assert!(config.user.is_none(), "`user` is TOML only");
            }
        }
        Err(err) => {
            let message = err.to_string();
            assert!(!message.contains('\n'), "not one line: {message}");
            assert!(message.starts_with("knockd.toml"), "{message}");
            if let Some((line, col)) = err.position {
                assert!(line >= 1 && col >= 1, "{message}");
                assert!(line <= text.split('\n').count(), "{message}");
            }
        }
    }
});
