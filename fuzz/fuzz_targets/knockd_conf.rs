//! The server config loader as `knockr knockd -c` calls it, seeded with
//! classic knockd.conf files, so most inputs take the knockd.conf path
//! (`[options]`, `[NAME]` sections, `Key = value` lines).

#![no_main]

use std::path::Path;

use knockr::config::server::parse;
use knockr_fuzz::{check_server_config, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(text) = text(data) else { return };
    match parse(Path::new("knockd.conf"), text) {
        Ok(config) => check_server_config(&config),
        Err(err) => {
            let message = err.to_string();
            assert!(!message.contains('\n'), "not one line: {message}");
            assert!(message.starts_with("knockd.conf"), "{message}");
            if let Some((line, col)) = err.position {
                assert!(line >= 1 && col >= 1, "{message}");
                assert!(line <= text.split('\n').count(), "{message}");
            }
        }
    }
});
